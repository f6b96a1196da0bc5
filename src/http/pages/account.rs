//! `/ui/account`: the signed-in user's own page — second factors, passkeys, recent activity,
//! sign out. Every form is CSRF-protected (bound to the session cookie) and calls the same
//! service operation as the native API.

use std::collections::HashMap;

use askama::Template;
use poem::{Endpoint, Request, Response, Route, get, http::StatusCode, post};

use super::{
    SESSION_COOKIE, Ui, bad_form, clear_session_cookie, cookie, csrf_refused, form,
    internal_error_page, invalid_msg, page, page_origin, rendered, see_other, signed_in, templates,
    weak_password_msg,
};
use crate::{
    i18n::Msg,
    service::{
        ServiceError, Services, audit::EventQuery, mfa::Proof, oauth2::authorize::SignedIn,
        sessions::Principal,
    },
};

/// What the account forms' CSRF tokens are bound to (with the session cookie).
const ACCOUNT_FORM: &str = "account";
/// How to retry after a refused form (a catalogue key).
const AGAIN: &str = "again-account-page";

/// The `/ui/account` routes (nested under `/ui/account`).
pub(super) fn routes(services: Services) -> Route {
    let action = |action| {
        post(Action {
            services: services.clone(),
            action,
        })
    };
    Route::new()
        .at(
            "/",
            get(AccountPage {
                services: services.clone(),
            }),
        )
        .at("/totp/begin", action(Act::TotpBegin))
        .at("/totp/confirm", action(Act::TotpConfirm))
        .at("/totp/remove", action(Act::TotpRemove))
        .at("/recovery-codes", action(Act::RecoveryCodes))
        .at("/passkeys/begin", action(Act::PasskeyBegin))
        .at("/passkeys/finish", action(Act::PasskeyFinish))
        .at("/passkeys/rename", action(Act::PasskeyRename))
        .at("/passkeys/remove", action(Act::PasskeyRemove))
        .at("/signout", action(Act::SignOut))
        .at("/profile", action(Act::Profile))
        .at("/password", action(Act::Password))
        .at("/api-key", action(Act::ApiKey))
        .at("/sessions/revoke-others", action(Act::RevokeOthers))
        .at("/sessions/end", action(Act::EndSession))
        .at("/consents/revoke", action(Act::RevokeConsent))
        .at("/delete", action(Act::Delete))
        .at("/email", action(Act::EmailRequest))
        .at("/email/confirm", action(Act::EmailConfirm))
        .at("/identities/link", action(Act::LinkIdentity))
        .at("/identities/unlink", action(Act::UnlinkIdentity))
        .at(
            "/avatar",
            post(AvatarUpload {
                services: services.clone(),
            }),
        )
}

/// One line of the activity table.
struct ActivityRow {
    when: String,
    what: Msg,
    from: String,
}

/// One session row.
struct SessionRow {
    id: String,
    /// The app, or the browser and system with the address.
    app: Msg,
    created: String,
    last_used: String,
    expires: String,
}

/// One connected application.
struct ConsentRow {
    client_id: String,
    name: String,
    scope: String,
}

/// One linked identity at an upstream provider.
struct IdentityRow {
    upstream_id: String,
    name: String,
    /// What the provider called the person.
    display: String,
    linked: String,
    last_used: Option<String>,
}

/// One passkey row.
struct PasskeyRow {
    id: String,
    name: String,
    added: String,
    last_used: Option<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTemplate<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    username: &'a str,
    email: &'a str,
    display_name: &'a str,
    /// The current avatar's URL, if there is one.
    avatar_src: Option<String>,
    has_api_key: bool,
    notice: Option<&'a Msg>,
    error: Option<&'a Msg>,
    /// The form field the error concerns (empty: shown above the forms).
    error_field: &'a str,
    totp: bool,
    recovery_codes_left: usize,
    passkeys: Vec<PasskeyRow>,
    passkeys_available: bool,
    events: Vec<ActivityRow>,
    sessions: Vec<SessionRow>,
    consents: Vec<ConsentRow>,
    identities: Vec<IdentityRow>,
    /// (id, name) of enabled providers not linked yet.
    linkable: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "email_confirm.html")]
struct EmailConfirmTemplate<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    new_email: &'a str,
    dev_code: Option<&'a str>,
    error: Option<&'a Msg>,
}

#[derive(Template)]
#[template(path = "totp_enrolment.html")]
struct TotpEnrolmentTemplate<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    enrolment_token: &'a str,
    secret: &'a str,
    qr_data_url: String,
    error: Option<&'a Msg>,
}

/// "2026-11-24 10:27 UTC".
pub(super) fn when(at: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(at) else {
        return at.to_string();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// An audit event's kind in words.
fn what(kind: &str, method: Option<&str>) -> Msg {
    let key = match kind {
        "login_succeeded" => match method {
            Some(amr) => {
                let has = |v: &str| amr.split(' ').any(|m| m == v);
                let key = has("hwk") || has("swk");
                match (has("pwd"), key, has("otp")) {
                    _ if has("fed") => "event-upstream-sign-in",
                    (true, true, _) => "event-login-password-passkey",
                    (false, true, _) => "event-login-passkey",
                    (true, false, true) => "event-login-password-code",
                    (true, false, false) => "event-login-password",
                    _ => "event-login",
                }
            }
            None => "event-login",
        },
        "login_failed" => "event-login-failed",
        "second_factor_required" => "event-second-factor-required",
        "second_factor_failed" => "event-second-factor-failed",
        "login_throttled" => "event-login-throttled",
        "account_unlocked" => "event-account-unlocked",
        "totp_enrolled" => "event-totp-enrolled",
        "totp_removed" => "event-totp-removed",
        "recovery_codes_generated" => "event-recovery-codes-generated",
        "recovery_code_used" => "event-recovery-code-used",
        "passkey_added" => "event-passkey-added",
        "passkey_renamed" => "event-passkey-renamed",
        "passkey_removed" => "event-passkey-removed",
        "passkey_possibly_cloned" => "event-passkey-possibly-cloned",
        "second_factors_reset" => "event-second-factors-reset",
        "password_changed" => "event-password-changed",
        "password_reset" => "event-password-reset",
        "refresh_token_reuse" => "event-refresh-token-reuse",
        "email_changed" => "event-email-changed",
        "session_revoked" => "event-session-revoked",
        "consent_revoked" => "event-consent-revoked",
        "upstream_sign_in" => "event-upstream-sign-in",
        "identity_linked" => "event-identity-linked",
        "identity_unlinked" => "event-identity-unlinked",
        other => return Msg::new("plain").with("text", other.replace('_', " ")),
    };
    Msg::new(key)
}

/// Renders the account page of `current`, with a notice or an error (`(field, message)`;
/// an empty field shows it above the forms).
async fn account_page(
    services: &Services,
    ui: &Ui,
    current: &SignedIn,
    notice: Option<Msg>,
    error: Option<(&str, Msg)>,
    status: StatusCode,
) -> Response {
    // Read again: the session's copy predates this request's change.
    let user = match services.accounts.active_user(&current.user.id).await {
        Ok(u) => u,
        Err(_) => return see_other("/ui/login"),
    };
    let user = &user;
    let (error_field, error) = match error {
        Some((field, message)) => (field, Some(message)),
        None => ("", None),
    };
    let (notice, error) = (notice.as_ref(), error.as_ref());
    let factors = match services.mfa.status(&user.id).await {
        Ok(f) => f,
        Err(e) => return internal_error_page("reading second factors failed", &e),
    };
    let query = EventQuery {
        subject: Some(user.id.clone()),
        kind: None,
        before: None,
        limit: 15,
    };
    let events = match services.audit.list(query).await {
        Ok(page) => page.events,
        Err(e) => return internal_error_page("reading the activity failed", &e),
    };
    let me = Principal::browser(user.clone(), &current.cookie);
    let (sessions, consents) = match (
        services.sessions.list_own(&me).await,
        services.oauth2.consents(&user.id).await,
    ) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => return internal_error_page("reading sessions failed", &e),
    };
    let app_name = |client_id: &Option<String>| match client_id {
        None => Msg::new("session-api"),
        Some(id) => Msg::new("plain").with(
            "text",
            consents
                .iter()
                .find(|c| &c.client_id == id)
                .map_or_else(|| id.clone(), |c| c.client_name.clone()),
        ),
    };
    let sessions = sessions
        .iter()
        .map(|s| SessionRow {
            id: s.id.clone(),
            app: match (&s.client_id, &s.user_agent, &s.ip) {
                (None, Some(ua), ip) => {
                    let device = device(ua);
                    match ip {
                        Some(ip) => Msg::new("session-device-from")
                            .with("device", device)
                            .with("ip", ip.as_str()),
                        None => device,
                    }
                }
                (client, _, _) => app_name(client),
            },
            created: when(s.created_at),
            last_used: when(s.last_used_at),
            expires: when(s.expires_at),
        })
        .collect();
    let consents = consents
        .into_iter()
        .map(|c| ConsentRow {
            client_id: c.client_id,
            name: c.client_name,
            scope: c.scope,
        })
        .collect();
    let identities = match services.upstreams.identities(&user.id).await {
        Ok(i) => i,
        Err(e) => return internal_error_page("reading linked identities failed", &e),
    };
    let linkable = services
        .upstreams
        .buttons()
        .await
        .into_iter()
        .filter(|b| !identities.iter().any(|(i, _)| i.upstream_id == b.id))
        .map(|b| (b.id, b.name))
        .collect();
    let identities = identities
        .into_iter()
        .map(|(i, name)| IdentityRow {
            name,
            display: i.display.unwrap_or_default(),
            linked: when(i.linked_at),
            last_used: i.last_used_at.map(when),
            upstream_id: i.upstream_id,
        })
        .collect();
    let csrf = services.oauth2.csrf_token(&current.cookie, ACCOUNT_FORM);
    let html = AccountTemplate {
        ui,
        identities,
        linkable,
        sessions,
        consents,
        csrf: &csrf,
        username: &user.username,
        email: &user.email,
        display_name: user.display_name.as_deref().unwrap_or_default(),
        avatar_src: user
            .avatar_etag
            .as_ref()
            .map(|etag| format!("/api/v1/users/{}/avatar?v={etag}", user.id)),
        has_api_key: user.has_api_key,
        notice,
        error,
        error_field,
        totp: factors.totp,
        recovery_codes_left: factors.recovery_codes_left,
        passkeys: factors
            .passkeys
            .into_iter()
            .map(|p| PasskeyRow {
                id: p.id,
                name: p.name,
                added: when(p.created_at),
                last_used: p.last_used_at.map(when),
            })
            .collect(),
        passkeys_available: services.mfa.passkeys_available(),
        events: events
            .into_iter()
            .map(|(_, e)| ActivityRow {
                when: when(e.at),
                what: what(&e.kind, e.method.as_deref()),
                from: [e.ip.as_deref(), e.surface.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
    }
    .render();
    rendered(status, html)
}

/// "Firefox on Linux": a user agent in words (the browser and system it names first).
fn device(user_agent: &str) -> Msg {
    let has = |s: &str| user_agent.contains(s);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else {
        let shown: String = user_agent.chars().take(40).collect();
        return Msg::new("plain").with("text", shown);
    };
    let system = if has("Android") {
        "Android"
    } else if has("iPhone") || has("iPad") {
        "iOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS") {
        "macOS"
    } else if has("Linux") {
        "Linux"
    } else {
        return Msg::new("plain").with("text", browser);
    };
    Msg::new("session-device")
        .with("browser", browser)
        .with("system", system)
}

/// What a notice code in `?done=` says (only these; nothing from the URL is shown as is).
fn notice(code: &str) -> Option<Msg> {
    Some(Msg::new(match code {
        "totp-added" => "done-totp-added",
        "totp-removed" => "done-totp-removed",
        "passkey-added" => "done-passkey-added",
        "passkey-renamed" => "done-passkey-renamed",
        "passkey-removed" => "done-passkey-removed",
        "profile-saved" => "done-profile-saved",
        "avatar-saved" => "done-avatar-saved",
        "password-changed" => "done-password-changed",
        "others-signed-out" => "done-others-signed-out",
        "session-ended" => "done-session-ended",
        "email-changed" => "done-email-changed",
        "consent-revoked" => "done-consent-revoked",
        "identity-linked" => "done-identity-linked",
        "identity-unlinked" => "done-identity-unlinked",
        _ => return None,
    }))
}

/// `GET /ui/account`.
struct AccountPage {
    services: Services,
}

impl Endpoint for AccountPage {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let Some(current) = signed_in(&self.services, &req).await else {
            return Ok(see_other("/ui/login"));
        };
        let done = super::query(&req).get("done").and_then(|d| notice(d));
        let ui = Ui::new(&self.services, &req);
        Ok(account_page(&self.services, &ui, &current, done, None, StatusCode::OK).await)
    }
}

#[derive(Clone, Copy)]
enum Act {
    TotpBegin,
    TotpConfirm,
    TotpRemove,
    RecoveryCodes,
    PasskeyBegin,
    PasskeyFinish,
    PasskeyRename,
    PasskeyRemove,
    SignOut,
    Profile,
    Password,
    ApiKey,
    RevokeOthers,
    EndSession,
    RevokeConsent,
    Delete,
    EmailRequest,
    EmailConfirm,
    LinkIdentity,
    UnlinkIdentity,
}

/// `POST /ui/account/…`: one form of the account page.
struct Action {
    services: Services,
    action: Act,
}

impl Endpoint for Action {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let Some(current) = signed_in(services, &req).await else {
            return Ok(see_other("/ui/login"));
        };
        let Some(f) = form(&mut req).await else {
            return Ok(bad_form());
        };
        if let Some(refused) = csrf_refused(services, &current.cookie, ACCOUNT_FORM, &f, AGAIN) {
            return Ok(refused);
        }
        let origin = page_origin(services, &req);
        let ui = &Ui::new(services, &req);
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let user = &current.user;
        let mfa = &services.mfa;
        let outcome = match self.action {
            Act::TotpBegin => {
                return Ok(match mfa.begin_totp(user).await {
                    Ok(e) => totp_page(
                        services,
                        ui,
                        &current,
                        &e.enrolment_token,
                        &e.secret,
                        &e.qr_svg,
                        None,
                    ),
                    Err(e) => self.refused(ui, &current, e).await,
                });
            }
            Act::TotpConfirm => {
                let token = field("enrolment_token");
                match mfa.confirm_totp(user, token, field("code"), &origin).await {
                    Ok(Some(codes)) => {
                        return Ok(page(
                            StatusCode::OK,
                            templates::recovery_codes(ui, &codes, "/ui/account?done=totp-added"),
                        ));
                    }
                    Ok(None) => Ok("totp-added"),
                    Err(ServiceError::InvalidCode) => {
                        // The same secret again, for another try.
                        return Ok(self.totp_retry(ui, &current, token).await);
                    }
                    Err(e) => Err(e),
                }
            }
            Act::TotpRemove => mfa
                .disable_totp(user, &proof(&f), &origin)
                .await
                .map(|()| "totp-removed"),
            Act::RecoveryCodes => match mfa
                .regenerate_recovery_codes(user, &proof(&f), &origin)
                .await
            {
                Ok(codes) => {
                    return Ok(page(
                        StatusCode::OK,
                        templates::recovery_codes(ui, &codes, "/ui/account"),
                    ));
                }
                Err(e) => Err(e),
            },
            Act::PasskeyBegin => {
                // Called by the page's script: JSON either way.
                return Ok(
                    match mfa.begin_passkey_registration(user, field("name")).await {
                        Ok(c) => json(
                            StatusCode::OK,
                            serde_json::json!({"ceremony_token": c.token, "options": c.options}),
                        ),
                        Err(e) => json(
                            StatusCode::BAD_REQUEST,
                            serde_json::json!({"error": e.to_string()}),
                        ),
                    },
                );
            }
            Act::PasskeyFinish => {
                let credential =
                    serde_json::from_str(field("credential")).unwrap_or(serde_json::Value::Null);
                match mfa
                    .finish_passkey_registration(user, field("ceremony_token"), credential, &origin)
                    .await
                {
                    // The first factor: its recovery codes, shown once.
                    Ok((_, Some(codes))) => {
                        return Ok(page(
                            StatusCode::OK,
                            templates::recovery_codes(ui, &codes, "/ui/account?done=passkey-added"),
                        ));
                    }
                    Ok((_, None)) => Ok("passkey-added"),
                    Err(e) => Err(e),
                }
            }
            Act::PasskeyRename => mfa
                .rename_passkey(user, field("id"), field("name"), &origin)
                .await
                .map(|_| "passkey-renamed"),
            Act::PasskeyRemove => mfa
                .remove_passkey(user, field("id"), &proof(&f), &origin)
                .await
                .map(|()| "passkey-removed"),
            Act::Profile => {
                let name = Some(field("display_name").trim()).filter(|n| !n.is_empty());
                services
                    .accounts
                    .update_display_name(&principal(&current), name)
                    .await
                    .map(|_| "profile-saved")
            }
            Act::Password => {
                let changed = services
                    .accounts
                    .change_password(
                        &principal(&current),
                        field("current_password"),
                        field("new_password"),
                        &origin,
                    )
                    .await;
                match changed {
                    Ok(()) => Ok("password-changed"),
                    Err(ServiceError::WrongPassword) => {
                        let error = ("current_password", Msg::new("error-not-current-password"));
                        return Ok(account_page(
                            services,
                            ui,
                            &current,
                            None,
                            Some(error),
                            StatusCode::UNAUTHORIZED,
                        )
                        .await);
                    }
                    Err(e @ (ServiceError::WeakPassword(_) | ServiceError::Invalid(_))) => {
                        let message = match &e {
                            ServiceError::WeakPassword(weak) => weak_password_msg(weak),
                            ServiceError::Invalid(inv) => invalid_msg(inv),
                            _ => Msg::new("error-generic"),
                        };
                        return Ok(account_page(
                            services,
                            ui,
                            &current,
                            None,
                            Some(("new_password", message)),
                            StatusCode::BAD_REQUEST,
                        )
                        .await);
                    }
                    Err(e) => Err(e),
                }
            }
            Act::ApiKey => match services.accounts.rotate_api_key(&principal(&current)).await {
                Ok(key) => return Ok(page(StatusCode::OK, templates::api_key(ui, &key))),
                Err(e) => Err(e),
            },
            Act::RevokeOthers => services
                .sessions
                .revoke_others(&user.id, principal(&current).own_session())
                .await
                .map(|_| "others-signed-out"),
            Act::EndSession => services
                .sessions
                .revoke_own(&principal(&current), field("id"), &origin)
                .await
                .map(|()| "session-ended"),
            Act::RevokeConsent => services
                .oauth2
                .revoke_consent(&user.id, field("client_id"), &origin)
                .await
                .map(|()| "consent-revoked"),
            Act::EmailRequest => {
                let new_email = field("new_email").trim();
                match services
                    .accounts
                    .request_email_change(&principal(&current), new_email, Some(ui.lang()))
                    .await
                {
                    Ok(code) => {
                        let dev = code.filter(|_| services.dev);
                        return Ok(email_confirm_page(
                            services,
                            ui,
                            &current,
                            new_email,
                            dev.as_deref(),
                            None,
                            StatusCode::OK,
                        ));
                    }
                    Err(ServiceError::Invalid(inv)) => {
                        return Ok(account_page(
                            services,
                            ui,
                            &current,
                            None,
                            Some(("new_email", invalid_msg(&inv))),
                            StatusCode::BAD_REQUEST,
                        )
                        .await);
                    }
                    Err(ServiceError::ResendTooSoon { retry_after }) => {
                        return Ok(account_page(
                            services,
                            ui,
                            &current,
                            None,
                            Some(("new_email", super::resend_too_soon(retry_after))),
                            StatusCode::TOO_MANY_REQUESTS,
                        )
                        .await);
                    }
                    Err(e) => Err(e),
                }
            }
            Act::EmailConfirm => {
                let new_email = field("new_email").trim();
                let changed = services
                    .accounts
                    .change_email(
                        &principal(&current),
                        new_email,
                        field("email_code"),
                        &proof(&f),
                        &origin,
                    )
                    .await;
                let message = match changed {
                    Ok(_) => return Ok(see_other("/ui/account?done=email-changed")),
                    Err(ServiceError::InvalidCode | ServiceError::CodeExpired) => {
                        Msg::new("error-code-wrong")
                    }
                    Err(ServiceError::WrongPassword) => Msg::new("error-proof-wrong"),
                    Err(ServiceError::EmailTaken) => Msg::new("error-email-in-use"),
                    Err(e) => return Ok(self.refused(ui, &current, e).await),
                };
                return Ok(email_confirm_page(
                    services,
                    ui,
                    &current,
                    new_email,
                    None,
                    Some(&message),
                    StatusCode::BAD_REQUEST,
                ));
            }
            Act::Delete => {
                let deleted = services
                    .accounts
                    .delete_own_account(&principal(&current), &proof(&f), &origin)
                    .await;
                match deleted {
                    Ok(()) => {
                        let mut resp = page(StatusCode::OK, templates::account_deleted(ui));
                        clear_session_cookie(&mut resp, services);
                        return Ok(resp);
                    }
                    Err(e) => Err(e),
                }
            }
            Act::LinkIdentity => {
                return Ok(
                    super::upstream::link_from_account(services, &req, field("upstream")).await,
                );
            }
            Act::UnlinkIdentity => services
                .upstreams
                .unlink(&principal(&current), field("upstream"), &origin)
                .await
                .map(|()| "identity-unlinked"),
            Act::SignOut => {
                let session = cookie(&req, SESSION_COOKIE).unwrap_or_default();
                if let Err(e) = services.oauth2.end_browser_session(&session).await {
                    return Ok(internal_error_page("signing out failed", &e));
                }
                let mut resp = super::signed_out_page(ui);
                clear_session_cookie(&mut resp, services);
                return Ok(resp);
            }
        };
        Ok(match outcome {
            Ok(done) => see_other(&format!("/ui/account?done={done}")),
            Err(e) => self.refused(ui, &current, e).await,
        })
    }
}

impl Action {
    /// The account page again, saying why the action was refused.
    async fn refused(&self, ui: &Ui, current: &SignedIn, e: ServiceError) -> Response {
        use ServiceError as E;
        let (status, message) = match e {
            E::WrongPassword | E::SecondFactorInvalid | E::InvalidCode => {
                (StatusCode::UNAUTHORIZED, Msg::new("error-proof-wrong"))
            }
            E::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                Msg::new("error-too-many-wrong").with("wait", super::human_wait(retry_after)),
            ),
            E::MfaChallengeInvalid => (StatusCode::BAD_REQUEST, Msg::new("error-took-too-long")),
            E::Invalid(inv) => (StatusCode::BAD_REQUEST, invalid_msg(&inv)),
            E::NotFound(_) => (StatusCode::BAD_REQUEST, Msg::new("error-gone")),
            E::PasskeyRefused(_) => (StatusCode::BAD_REQUEST, Msg::new("error-passkey-not-added")),
            // The service's own words say which rule it was.
            e @ (E::Conflict(..) | E::Forbidden(..)) => (
                StatusCode::BAD_REQUEST,
                Msg::new("error-refused").with("detail", e.to_string()),
            ),
            other => return internal_error_page("an account action failed", &other),
        };
        account_page(
            &self.services,
            ui,
            current,
            None,
            Some(("", message)),
            status,
        )
        .await
    }

    /// The TOTP enrolment page again after a wrong first code.
    async fn totp_retry(&self, ui: &Ui, current: &SignedIn, token: &str) -> Response {
        match self.services.mfa.enrolment(token, &current.user.id).await {
            Ok(Some(e)) => totp_page(
                &self.services,
                ui,
                current,
                &e.enrolment_token,
                &e.secret,
                &e.qr_svg,
                Some(&Msg::new("error-enrolment-code")),
            ),
            Ok(None) => {
                self.refused(ui, current, ServiceError::MfaChallengeInvalid)
                    .await
            }
            Err(e) => internal_error_page("reading an enrolment failed", &e),
        }
    }
}

fn email_confirm_page(
    services: &Services,
    ui: &Ui,
    current: &SignedIn,
    new_email: &str,
    dev_code: Option<&str>,
    error: Option<&Msg>,
    status: StatusCode,
) -> Response {
    let csrf = services.oauth2.csrf_token(&current.cookie, ACCOUNT_FORM);
    let html = EmailConfirmTemplate {
        ui,
        csrf: &csrf,
        new_email,
        dev_code,
        error,
    }
    .render();
    rendered(status, html)
}

fn totp_page(
    services: &Services,
    ui: &Ui,
    current: &SignedIn,
    enrolment_token: &str,
    secret: &str,
    qr_svg: &str,
    error: Option<&Msg>,
) -> Response {
    let csrf = services.oauth2.csrf_token(&current.cookie, ACCOUNT_FORM);
    let html = TotpEnrolmentTemplate {
        ui,
        csrf: &csrf,
        enrolment_token,
        secret,
        qr_data_url: templates::svg_data_url(qr_svg),
        error,
    }
    .render();
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    rendered(status, html)
}

/// The signed-in browser as the services' principal (no token session of its own).
fn principal(current: &SignedIn) -> Principal {
    Principal::browser(current.user.clone(), &current.cookie)
}

/// `POST /ui/account/avatar`: a multipart form with `csrf` and `file`.
struct AvatarUpload {
    services: Services,
}

impl Endpoint for AvatarUpload {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        use poem::FromRequest;
        let services = &self.services;
        let Some(current) = signed_in(services, &req).await else {
            return Ok(see_other("/ui/login"));
        };
        let mut body = poem::RequestBody::new(req.take_body());
        let Ok(mut multipart) = poem::web::Multipart::from_request(&req, &mut body).await else {
            return Ok(bad_form());
        };
        let (mut csrf, mut file) = (String::new(), None);
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(_) => {
                    return Ok(bad_form());
                }
            };
            // A part that cannot be read (cut off, not UTF-8) is a form that did not arrive;
            // a body over the server's limit was answered 413 before this handler ran.
            let read = match field.name() {
                Some("csrf") => field.text().await.map(|t| csrf = t),
                Some("file") => field.bytes().await.map(|b| file = Some(b)),
                _ => Ok(()),
            };
            if read.is_err() {
                return Ok(bad_form());
            }
        }
        let form = HashMap::from([("csrf".to_string(), csrf)]);
        if let Some(refused) = csrf_refused(services, &current.cookie, ACCOUNT_FORM, &form, AGAIN) {
            return Ok(refused);
        }
        let set = services
            .avatars
            .set(&principal(&current), file.unwrap_or_default())
            .await;
        Ok(match set {
            Ok(_) => see_other("/ui/account?done=avatar-saved"),
            Err(
                e @ (ServiceError::UnsupportedImage
                | ServiceError::InvalidImage(_)
                | ServiceError::TooLarge { .. }),
            ) => {
                let message = match e {
                    ServiceError::TooLarge { .. } => Msg::new("error-picture-too-large"),
                    _ => Msg::new("error-picture-unreadable"),
                };
                let ui = Ui::new(services, &req);
                account_page(
                    services,
                    &ui,
                    &current,
                    None,
                    Some(("", message)),
                    StatusCode::BAD_REQUEST,
                )
                .await
            }
            Err(e) => internal_error_page("an avatar upload failed", &e),
        })
    }
}

/// The password or code a form proves the account with.
fn proof(f: &HashMap<String, String>) -> Proof {
    let given = |k: &str| f.get(k).filter(|v| !v.trim().is_empty()).cloned();
    Proof {
        password: given("password"),
        code: given("code"),
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn user_agents_read_as_browser_and_system() {
        use crate::i18n::{Lang, Texts};
        let texts = Texts::built_in();
        let en = |ua| texts.msg(Lang::En, &device(ua));
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";
        assert_eq!(en(firefox), "Firefox on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(en(iphone), "Safari on iOS");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(en(edge), "Edge on Windows");
        assert_eq!(en("curl/8.5.0"), "curl/8.5.0");
        assert_eq!(
            texts.msg(Lang::ZhCn, &device(firefox)),
            "Linux 上的 Firefox"
        );
    }
}
