//! `/api/v1/sessions`: first-party login (with its second step and passwordless passkey
//! sign-in), refresh and logout.

use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiTags,
    accounts::opt,
    types::{
        LoginRequest, MfaAnswer, MfaChallenge, RefreshRequest, TokenPair, WebauthnCeremony,
        WebauthnFinish,
    },
};
use crate::{
    http::error::{ApiError, Result},
    service::{
        Services,
        accounts::{CaptchaAnswer, LoginStep},
        mfa::SecondFactorAnswer,
    },
};

pub struct SessionsApi {
    pub services: Services,
}

#[derive(ApiResponse)]
enum LoggedOut {
    /// The session is over; its refresh and access tokens no longer work.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
enum LoginAnswer {
    /// Signed in.
    #[oai(status = 200)]
    SignedIn(Json<TokenPair>),
    /// The password was right; the account has a second factor. Complete the sign-in at
    /// `POST /api/v1/sessions/mfa`.
    #[oai(status = 202)]
    SecondFactor(Json<MfaChallenge>),
}

use super::origin;

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Log in
    ///
    /// Exchanges a username or email and password for a token pair (200), or, when the
    /// account has a second factor, for a challenge (202 with `mfa_required`, `mfa_token`
    /// and the methods) to answer at `POST /api/v1/sessions/mfa`. Unknown accounts, wrong
    /// passwords and disabled accounts get the same 401. After 5 failures within 15 minutes
    /// further attempts are slowed down (429 with `Retry-After`: 30 s, doubling with each
    /// failure, at most 15 minutes) and the owner is mailed a link whose token
    /// (`unlock_token`) lets them past the delay. Under the `required` MFA policies a user
    /// without a factor gets a 202 whose `totp_enrolment` is an authenticator app to enrol: its
    /// first code, sent to `POST /api/v1/sessions/mfa`, completes the login. When the captcha policy covers
    /// login, `captcha_id` and `captcha_answer` are required.
    #[oai(path = "/api/v1/sessions", method = "post", operation_id = "login")]
    async fn login(&self, req: &poem::Request, body: Json<LoginRequest>) -> Result<LoginAnswer> {
        let origin = origin(&self.services, req);
        let body = body.0;
        let captcha = CaptchaAnswer {
            id: opt(body.captcha_id),
            answer: opt(body.captcha_answer),
        };
        let unlock = opt(body.unlock_token);
        let step = self
            .services
            .accounts
            .login(
                &body.login,
                &body.password,
                &captcha,
                &origin,
                unlock.as_deref(),
            )
            .await?;
        Ok(match step {
            LoginStep::SignedIn(session) => {
                LoginAnswer::SignedIn(Json(TokenPair::of(*session, &self.services.public_url)))
            }
            LoginStep::SecondFactor(c) => LoginAnswer::SecondFactor(Json(MfaChallenge::of(c))),
            LoginStep::MustEnrol(e) => LoginAnswer::SecondFactor(Json(MfaChallenge::enrolment(e))),
        })
    }

    /// Complete a login with the second factor
    ///
    /// Answers the challenge of a 202 login with exactly one of `totp` (a 6-digit code; each
    /// 30-second step is accepted once), `recovery_code` (spent) or `webauthn` (the assertion
    /// for the challenge's `webauthn` options). A wrong answer is 401
    /// `invalid_second_factor` and leaves the challenge usable up to 5 answers; an unknown,
    /// expired or used-up challenge is 401 `invalid_mfa_token`.
    #[oai(
        path = "/api/v1/sessions/mfa",
        method = "post",
        operation_id = "loginSecondFactor"
    )]
    async fn second_factor(
        &self,
        req: &poem::Request,
        body: Json<MfaAnswer>,
    ) -> Result<Json<TokenPair>> {
        let origin = origin(&self.services, req);
        let body = body.0;
        let answer = match (body.totp, body.recovery_code, body.webauthn) {
            (Some(code), None, None) | (None, Some(code), None) => SecondFactorAnswer::Code(code.0),
            (None, None, Some(credential)) => SecondFactorAnswer::Passkey(credential),
            _ => {
                return Err(ApiError::new(
                    poem::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    "give exactly one of `totp`, `recovery_code`, `webauthn`",
                ));
            }
        };
        let (session, recovery_codes) = self
            .services
            .accounts
            .complete_login(&body.mfa_token, answer, &origin)
            .await?;
        let mut pair = TokenPair::of(session, &self.services.public_url);
        pair.recovery_codes = (!recovery_codes.is_empty()).then_some(recovery_codes);
        Ok(Json(pair))
    }

    /// Start a passkey sign-in
    ///
    /// Passwordless and usernameless: the options ask for any discoverable credential of
    /// this site (`allowCredentials` empty). Pass `options` to `navigator.credentials.get()`
    /// (with `mediation: "conditional"` for autofill), then send the result to
    /// `POST /api/v1/sessions/passkey/finish`. 403 `passkeys_unavailable` when the server's
    /// public URL is not a domain name.
    #[oai(
        path = "/api/v1/sessions/passkey/begin",
        method = "post",
        operation_id = "passkeyLoginBegin"
    )]
    async fn passkey_begin(&self) -> Result<Json<WebauthnCeremony>> {
        let c = self.services.mfa.begin_passwordless().await?;
        Ok(Json(WebauthnCeremony::of(c)))
    }

    /// Finish a passkey sign-in
    ///
    /// Signs in the passkey's owner. Password failures never slow this down. A refused
    /// assertion (wrong origin or challenge, unknown credential, a counter that went
    /// backwards as a cloned key's does) is 400 `passkey_refused`.
    #[oai(
        path = "/api/v1/sessions/passkey/finish",
        method = "post",
        operation_id = "passkeyLoginFinish"
    )]
    async fn passkey_finish(
        &self,
        req: &poem::Request,
        body: Json<WebauthnFinish>,
    ) -> Result<Json<TokenPair>> {
        let origin = origin(&self.services, req);
        let body = body.0;
        let session = self
            .services
            .accounts
            .passkey_login(&body.ceremony_token, body.credential, &origin)
            .await?;
        Ok(Json(TokenPair::of(session, &self.services.public_url)))
    }

    /// Refresh tokens
    ///
    /// Exchanges a refresh token for a new pair. Each refresh token works once; presenting a
    /// used one again revokes the whole session (reuse detection).
    #[oai(
        path = "/api/v1/sessions/refresh",
        method = "post",
        operation_id = "refreshSession"
    )]
    async fn refresh(
        &self,
        req: &poem::Request,
        body: Json<RefreshRequest>,
    ) -> Result<Json<TokenPair>> {
        let session = self
            .services
            .sessions
            .refresh(&body.refresh_token, &origin(&self.services, req))
            .await?;
        Ok(Json(TokenPair::of(session, &self.services.public_url)))
    }

    /// Log out
    ///
    /// Revokes the session the refresh token belongs to. Unknown tokens are accepted too.
    #[oai(
        path = "/api/v1/sessions/logout",
        method = "post",
        operation_id = "logout"
    )]
    async fn logout(&self, body: Json<RefreshRequest>) -> Result<LoggedOut> {
        self.services.sessions.logout(&body.refresh_token).await?;
        Ok(LoggedOut::NoContent)
    }
}
