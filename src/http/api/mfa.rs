//! `/api/v1/me/mfa`, `/api/v1/me/passkeys`, `/api/v1/me/events`: the signed-in user's second
//! factors, passkeys and sign-in history.

use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{
    ApiTags,
    me::principal,
    text::Text,
    types::{WebauthnCeremony, WebauthnFinish},
};
use crate::{
    clock::rfc3339,
    http::{error::Result, security::Auth},
    service::{
        Services,
        audit::{EventPage, EventQuery, parse_cursor},
        mfa::{FactorsView, PasskeyView, Proof},
    },
};

pub struct MfaApi {
    pub services: Services,
}

/// What the user has enrolled.
#[derive(Object, Debug)]
pub struct Factors {
    /// An authenticator app (TOTP) is enrolled.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    pub passkeys: Vec<PasskeyInfo>,
    /// The server's policy: `off`, `optional`, `required-for-admins`, `required`.
    pub policy: String,
    /// Whether passkeys work on this server.
    pub passkeys_available: bool,
}

/// A registered passkey.
#[derive(Object, Debug)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<String>,
}

impl PasskeyInfo {
    fn of(p: &PasskeyView) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
        }
    }
}

/// A TOTP secret to put in an authenticator app, shown once.
#[derive(Object, Debug)]
pub struct TotpSetup {
    /// Send with the first code to `POST /api/v1/me/mfa/totp/confirm`.
    pub enrolment_token: String,
    /// Base32, for typing in.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub otpauth_uri: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
    pub expires_in: i64,
}

#[derive(Object)]
pub struct TotpConfirm {
    #[oai(write_only)]
    pub enrolment_token: Text,
    /// The app's current 6-digit code.
    #[oai(write_only)]
    pub code: Text,
}

/// Recovery codes, shown only here: each works once in place of a second factor.
#[derive(Object, Debug)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Proof of the account: the password, or a current TOTP or recovery code.
#[derive(Object)]
pub struct AccountProof {
    #[oai(nullable, write_only)]
    pub password: Option<Text>,
    #[oai(nullable, write_only)]
    pub code: Option<Text>,
}

impl AccountProof {
    pub fn proof(self) -> Proof {
        Proof {
            password: self.password.map(|t| t.0),
            code: self.code.map(|t| t.0),
        }
    }
}

#[derive(Object)]
pub struct PasskeyName {
    /// 1–64 characters.
    pub name: Text,
}

/// A passkey registered; with the recovery codes when it is the first factor.
#[derive(Object, Debug)]
pub struct PasskeyAdded {
    pub passkey: PasskeyInfo,
    #[oai(skip_serializing_if_is_none)]
    pub recovery_codes: Option<Vec<String>>,
}

/// TOTP enrolled; with the recovery codes when it is the first factor.
#[derive(Object, Debug)]
pub struct TotpEnrolled {
    #[oai(skip_serializing_if_is_none)]
    pub recovery_codes: Option<Vec<String>>,
}

/// A security event.
#[derive(Object, Debug)]
pub struct SecurityEvent {
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// `login_succeeded`, `login_failed`, `totp_enrolled`, `passkey_added`, …
    pub kind: String,
    #[oai(skip_serializing_if_is_none)]
    pub actor: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub ip: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub surface: Option<String>,
    /// How (`pwd`, `pwd otp mfa`, `hwk user mfa`, …).
    #[oai(skip_serializing_if_is_none)]
    pub method: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

/// A page of events, newest first.
#[derive(Object, Debug)]
pub struct EventList {
    pub events: Vec<SecurityEvent>,
    /// Pass as `before` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

impl EventList {
    pub fn of(page: EventPage) -> Self {
        Self {
            events: page
                .events
                .into_iter()
                .map(|(id, e)| SecurityEvent {
                    id,
                    at: rfc3339(e.at),
                    kind: e.kind,
                    actor: e.actor,
                    subject: e.subject,
                    ip: e.ip,
                    user_agent: e.user_agent,
                    surface: e.surface,
                    method: e.method,
                    detail: e.detail,
                })
                .collect(),
            next: page.next,
        }
    }
}

/// An event listing query; `None` when `before` is not a cursor this server gave.
pub fn event_query(
    subject: Option<String>,
    kind: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
) -> Option<EventQuery> {
    let before = match before.filter(|b| !b.is_empty()) {
        Some(b) => Some(parse_cursor(&b)?),
        None => None,
    };
    Some(EventQuery {
        subject,
        kind: kind.filter(|k| !k.is_empty()),
        before,
        limit: limit.unwrap_or(50) as usize,
    })
}

#[derive(ApiResponse)]
enum Removed {
    /// Removed.
    #[oai(status = 204)]
    NoContent,
}

fn factors(services: &Services, f: FactorsView) -> Factors {
    Factors {
        totp: f.totp,
        recovery_codes_left: f.recovery_codes_left as u32,
        passkeys: f.passkeys.iter().map(PasskeyInfo::of).collect(),
        policy: services.mfa.policy().as_str().into(),
        passkeys_available: services.mfa.passkeys_available(),
    }
}

/// The answer to a `before` this server did not give.
pub fn bad_cursor() -> crate::http::error::ApiError {
    crate::http::error::ApiError::new(
        poem::http::StatusCode::BAD_REQUEST,
        "invalid_parameter",
        "`before` is not a cursor this server gave",
    )
}

use super::origin;

#[OpenApi(tag = "ApiTags::Mfa")]
impl MfaApi {
    /// My second factors
    #[oai(path = "/api/v1/me/mfa", method = "get", operation_id = "getMyFactors")]
    async fn get(&self, auth: Auth) -> Result<Json<Factors>> {
        let p = principal(&self.services, auth).await?;
        let f = self.services.mfa.status(&p.user.id).await?;
        Ok(Json(factors(&self.services, f)))
    }

    /// Start enrolling an authenticator app
    ///
    /// A new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s) as text, `otpauth://` URI and QR
    /// code. Nothing changes until a first code confirms it. 409 `totp_already_enrolled` if
    /// one is enrolled; 403 `mfa_disabled` when the policy is `off`.
    #[oai(
        path = "/api/v1/me/mfa/totp",
        method = "post",
        operation_id = "beginTotp"
    )]
    async fn begin_totp(&self, auth: Auth) -> Result<Json<TotpSetup>> {
        let p = principal(&self.services, auth).await?;
        let e = self.services.mfa.begin_totp(&p.user).await?;
        Ok(Json(TotpSetup {
            enrolment_token: e.enrolment_token,
            secret: e.secret,
            otpauth_uri: e.otpauth_uri,
            qr_svg: e.qr_svg,
            expires_in: e.expires_in,
        }))
    }

    /// Confirm the authenticator app
    ///
    /// Enrols it with a first valid code (400 `invalid_code` otherwise). The first factor
    /// comes with 10 recovery codes, shown only in this answer.
    #[oai(
        path = "/api/v1/me/mfa/totp/confirm",
        method = "post",
        operation_id = "confirmTotp"
    )]
    async fn confirm_totp(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<TotpConfirm>,
    ) -> Result<Json<TotpEnrolled>> {
        let p = principal(&self.services, auth).await?;
        let codes = self
            .services
            .mfa
            .confirm_totp(
                &p.user,
                &body.enrolment_token,
                &body.code,
                &origin(&self.services, req),
            )
            .await?;
        Ok(Json(TotpEnrolled {
            recovery_codes: codes,
        }))
    }

    /// Remove the authenticator app
    ///
    /// Needs the password or a current code (403 `wrong_password`).
    #[oai(
        path = "/api/v1/me/mfa/totp/remove",
        method = "post",
        operation_id = "removeTotp"
    )]
    async fn remove_totp(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<AccountProof>,
    ) -> Result<Removed> {
        let p = principal(&self.services, auth).await?;
        self.services
            .mfa
            .disable_totp(&p.user, &body.0.proof(), &origin(&self.services, req))
            .await?;
        Ok(Removed::NoContent)
    }

    /// New recovery codes
    ///
    /// Replaces the recovery codes (the old ones stop working); needs the password or a
    /// current code, and a second factor (403 `no_second_factor`).
    #[oai(
        path = "/api/v1/me/mfa/recovery-codes",
        method = "post",
        operation_id = "regenerateRecoveryCodes"
    )]
    async fn recovery_codes(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<AccountProof>,
    ) -> Result<Json<RecoveryCodes>> {
        let p = principal(&self.services, auth).await?;
        let codes = self
            .services
            .mfa
            .regenerate_recovery_codes(&p.user, &body.0.proof(), &origin(&self.services, req))
            .await?;
        Ok(Json(RecoveryCodes {
            recovery_codes: codes,
        }))
    }

    /// Start registering a passkey
    ///
    /// Pass `options` to `navigator.credentials.create()`, then send the result to
    /// `POST /api/v1/me/passkeys/finish`. The passkey works as a second factor and for
    /// passwordless sign-in.
    #[oai(
        path = "/api/v1/me/passkeys/begin",
        method = "post",
        operation_id = "beginPasskeyRegistration"
    )]
    async fn passkey_begin(
        &self,
        auth: Auth,
        body: Json<PasskeyName>,
    ) -> Result<Json<WebauthnCeremony>> {
        let p = principal(&self.services, auth).await?;
        let c = self
            .services
            .mfa
            .begin_passkey_registration(&p.user, &body.name)
            .await?;
        Ok(Json(WebauthnCeremony::of(c)))
    }

    /// Finish registering a passkey
    #[oai(
        path = "/api/v1/me/passkeys/finish",
        method = "post",
        operation_id = "finishPasskeyRegistration"
    )]
    async fn passkey_finish(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<WebauthnFinish>,
    ) -> Result<Json<PasskeyAdded>> {
        let p = principal(&self.services, auth).await?;
        let body = body.0;
        let (passkey, codes) = self
            .services
            .mfa
            .finish_passkey_registration(
                &p.user,
                &body.ceremony_token,
                body.credential,
                &origin(&self.services, req),
            )
            .await?;
        Ok(Json(PasskeyAdded {
            passkey: PasskeyInfo::of(&passkey),
            recovery_codes: codes,
        }))
    }

    /// Rename a passkey
    #[oai(
        path = "/api/v1/me/passkeys/:id",
        method = "patch",
        operation_id = "renamePasskey"
    )]
    async fn passkey_rename(
        &self,
        req: &poem::Request,
        auth: Auth,
        id: Path<String>,
        body: Json<PasskeyName>,
    ) -> Result<Json<PasskeyInfo>> {
        let p = principal(&self.services, auth).await?;
        let view = self
            .services
            .mfa
            .rename_passkey(&p.user, &id, &body.name, &origin(&self.services, req))
            .await?;
        Ok(Json(PasskeyInfo::of(&view)))
    }

    /// Remove a passkey
    ///
    /// Needs the password or a current code (403 `wrong_password`).
    #[oai(
        path = "/api/v1/me/passkeys/:id/remove",
        method = "post",
        operation_id = "removePasskey"
    )]
    async fn passkey_remove(
        &self,
        req: &poem::Request,
        auth: Auth,
        id: Path<String>,
        body: Json<AccountProof>,
    ) -> Result<Removed> {
        let p = principal(&self.services, auth).await?;
        self.services
            .mfa
            .remove_passkey(&p.user, &id, &body.0.proof(), &origin(&self.services, req))
            .await?;
        Ok(Removed::NoContent)
    }

    /// My sign-in history
    ///
    /// Security events about my account (sign-ins and failures, factor changes, …), newest
    /// first.
    #[oai(
        path = "/api/v1/me/events",
        method = "get",
        operation_id = "getMyEvents"
    )]
    async fn events(
        &self,
        auth: Auth,
        /// Only this kind (`login_succeeded`, …).
        kind: Query<Option<String>>,
        /// The `next` of the previous page.
        before: Query<Option<String>>,
        /// 1–200; default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<EventList>> {
        let p = principal(&self.services, auth).await?;
        let query = event_query(Some(p.user.id.clone()), kind.0, before.0, limit.0)
            .ok_or_else(bad_cursor)?;
        let page = self.services.audit.list(query).await?;
        Ok(Json(EventList::of(page)))
    }
}
