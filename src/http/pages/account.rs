//! `/ui/account`: the signed-in user's own page — second factors, passkeys, recent activity,
//! sign out. Every form is CSRF-protected (bound to the session cookie) and calls the same
//! service operation as the native API.

use std::collections::HashMap;

use askama::Template;
use poem::{Endpoint, Request, Response, Route, get, http::StatusCode, post};

use super::{
    SESSION_COOKIE, bad_form, clear_session_cookie, cookie, csrf_refused, form,
    internal_error_page, page, page_origin, rendered, see_other, signed_in, templates,
};
use crate::service::{
    ServiceError, Services, audit::EventQuery, mfa::Proof, oauth2::authorize::SignedIn,
    sessions::Principal,
};

/// What the account forms' CSRF tokens are bound to (with the session cookie).
const ACCOUNT_FORM: &str = "account";
const AGAIN: &str = "Open your account page again.";

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
    what: String,
    from: String,
}

/// One session row.
struct SessionRow {
    id: String,
    app: String,
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

/// One passkey row.
struct PasskeyRow {
    id: String,
    name: String,
    added: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTemplate<'a> {
    csrf: &'a str,
    username: &'a str,
    email: &'a str,
    display_name: &'a str,
    /// The current avatar's URL, if there is one.
    avatar_src: Option<String>,
    has_api_key: bool,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    /// The form field the error concerns (empty: shown above the forms).
    error_field: &'a str,
    totp: bool,
    recovery_codes_left: usize,
    passkeys: Vec<PasskeyRow>,
    passkeys_available: bool,
    events: Vec<ActivityRow>,
    sessions: Vec<SessionRow>,
    consents: Vec<ConsentRow>,
}

#[derive(Template)]
#[template(path = "email_confirm.html")]
struct EmailConfirmTemplate<'a> {
    csrf: &'a str,
    new_email: &'a str,
    dev_code: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "totp_enrolment.html")]
struct TotpEnrolmentTemplate<'a> {
    csrf: &'a str,
    enrolment_token: &'a str,
    secret: &'a str,
    qr_data_url: String,
    error: Option<&'a str>,
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
fn what(kind: &str, method: Option<&str>) -> String {
    let base = match kind {
        "login_succeeded" => "Signed in",
        "login_failed" => "Wrong password",
        "second_factor_required" => "Password right; second step asked",
        "second_factor_failed" => "Wrong second-step answer",
        "login_throttled" => "Sign-ins slowed down after wrong passwords",
        "account_unlocked" => "Unlock link used",
        "totp_enrolled" => "Authenticator app added",
        "totp_removed" => "Authenticator app removed",
        "recovery_codes_generated" => "New recovery codes",
        "recovery_code_used" => "Recovery code used",
        "passkey_added" => "Passkey added",
        "passkey_renamed" => "Passkey renamed",
        "passkey_removed" => "Passkey removed",
        "passkey_possibly_cloned" => "A passkey looked cloned and was refused",
        "second_factors_reset" => "Second factors reset by an administrator",
        "password_changed" => "Password changed",
        "password_reset" => "Password reset",
        "refresh_token_reuse" => "A used sign-in token was presented again; that session ended",
        other => return other.replace('_', " "),
    };
    match method {
        Some(amr) if kind == "login_succeeded" => {
            let has = |v: &str| amr.split(' ').any(|m| m == v);
            let key = has("hwk") || has("swk");
            match (has("pwd"), key, has("otp")) {
                (true, true, _) => "Signed in with password and passkey",
                (false, true, _) => "Signed in with a passkey",
                (true, false, true) => "Signed in with password and code",
                (true, false, false) => "Signed in with password",
                _ => base,
            }
            .to_string()
        }
        _ => base.to_string(),
    }
}

/// Renders the account page of `current`, with a notice or an error (`(field, message)`;
/// an empty field shows it above the forms).
async fn account_page(
    services: &Services,
    current: &SignedIn,
    notice: Option<&str>,
    error: Option<(&str, &str)>,
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
        None => "This server's API".to_string(),
        Some(id) => consents
            .iter()
            .find(|c| &c.client_id == id)
            .map_or_else(|| id.clone(), |c| c.client_name.clone()),
    };
    let sessions = sessions
        .iter()
        .map(|s| SessionRow {
            id: s.id.clone(),
            app: match (&s.client_id, &s.user_agent, &s.ip) {
                (None, Some(ua), ip) => {
                    let from = ip
                        .as_deref()
                        .map(|ip| format!(", {ip}"))
                        .unwrap_or_default();
                    format!("{}{from}", device(ua))
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
    let csrf = services.oauth2.csrf_token(&current.cookie, ACCOUNT_FORM);
    let html = AccountTemplate {
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
                last_used: p.last_used_at.map(when).unwrap_or_else(|| "never".into()),
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
fn device(user_agent: &str) -> String {
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
        return user_agent.chars().take(40).collect();
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
        return browser.to_string();
    };
    format!("{browser} on {system}")
}

/// What a notice code in `?done=` says (only these; nothing from the URL is shown as is).
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "totp-added" => "The authenticator app is set up.",
        "totp-removed" => "The authenticator app was removed.",
        "passkey-added" => "The passkey was added.",
        "passkey-renamed" => "The passkey was renamed.",
        "passkey-removed" => "The passkey was removed.",
        "profile-saved" => "Your profile was saved.",
        "avatar-saved" => "Your picture was saved.",
        "password-changed" => "Your password was changed; your sessions in apps were signed out.",
        "others-signed-out" => "Every other session was signed out.",
        "session-ended" => "That session was signed out.",
        "email-changed" => "Your email address was changed; the old address was told.",
        "consent-revoked" => "The application's access was revoked; it will ask again next time.",
        _ => return None,
    })
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
        Ok(account_page(&self.services, &current, done, None, StatusCode::OK).await)
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
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let user = &current.user;
        let mfa = &services.mfa;
        let outcome = match self.action {
            Act::TotpBegin => {
                return Ok(match mfa.begin_totp(user).await {
                    Ok(e) => totp_page(
                        services,
                        &current,
                        &e.enrolment_token,
                        &e.secret,
                        &e.qr_svg,
                        None,
                    ),
                    Err(e) => self.refused(&current, e).await,
                });
            }
            Act::TotpConfirm => {
                let token = field("enrolment_token");
                match mfa.confirm_totp(user, token, field("code"), &origin).await {
                    Ok(Some(codes)) => {
                        return Ok(page(
                            StatusCode::OK,
                            templates::recovery_codes(&codes, "/ui/account?done=totp-added"),
                        ));
                    }
                    Ok(None) => Ok("totp-added"),
                    Err(ServiceError::InvalidCode) => {
                        // The same secret again, for another try.
                        return Ok(self.totp_retry(&current, token).await);
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
                        templates::recovery_codes(&codes, "/ui/account"),
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
                            templates::recovery_codes(&codes, "/ui/account?done=passkey-added"),
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
                        let error = ("current_password", "That is not your current password.");
                        return Ok(account_page(
                            services,
                            &current,
                            None,
                            Some(error),
                            StatusCode::UNAUTHORIZED,
                        )
                        .await);
                    }
                    Err(e @ (ServiceError::WeakPassword(_) | ServiceError::Invalid(_))) => {
                        let message = e.to_string();
                        return Ok(account_page(
                            services,
                            &current,
                            None,
                            Some(("new_password", &message)),
                            StatusCode::BAD_REQUEST,
                        )
                        .await);
                    }
                    Err(e) => Err(e),
                }
            }
            Act::ApiKey => match services.accounts.rotate_api_key(&principal(&current)).await {
                Ok(key) => return Ok(page(StatusCode::OK, templates::api_key(&key))),
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
                    .request_email_change(&principal(&current), new_email)
                    .await
                {
                    Ok(code) => {
                        let dev = code.filter(|_| services.dev);
                        return Ok(email_confirm_page(
                            services,
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
                            &current,
                            None,
                            Some(("new_email", &inv.message)),
                            StatusCode::BAD_REQUEST,
                        )
                        .await);
                    }
                    Err(ServiceError::ResendTooSoon { retry_after }) => {
                        let message = format!(
                            "A code was sent to that address less than a minute ago. Use it, or ask again in {}.",
                            super::human_wait(retry_after)
                        );
                        return Ok(account_page(
                            services,
                            &current,
                            None,
                            Some(("new_email", &message)),
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
                        "The code is wrong, used or expired. Check the mail, or ask for a new one."
                    }
                    Err(ServiceError::WrongPassword) => {
                        "That password or code is not right. Nothing was changed."
                    }
                    Err(ServiceError::EmailTaken) => {
                        "That address already belongs to another account."
                    }
                    Err(e) => return Ok(self.refused(&current, e).await),
                };
                return Ok(email_confirm_page(
                    services,
                    &current,
                    new_email,
                    None,
                    Some(message),
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
                        let mut resp = page(StatusCode::OK, templates::account_deleted());
                        clear_session_cookie(&mut resp, services);
                        return Ok(resp);
                    }
                    Err(e) => Err(e),
                }
            }
            Act::SignOut => {
                let session = cookie(&req, SESSION_COOKIE).unwrap_or_default();
                if let Err(e) = services.oauth2.end_browser_session(&session).await {
                    return Ok(internal_error_page("signing out failed", &e));
                }
                let mut resp = super::signed_out_page();
                clear_session_cookie(&mut resp, services);
                return Ok(resp);
            }
        };
        Ok(match outcome {
            Ok(done) => see_other(&format!("/ui/account?done={done}")),
            Err(e) => self.refused(&current, e).await,
        })
    }
}

impl Action {
    /// The account page again, saying why the action was refused.
    async fn refused(&self, current: &SignedIn, e: ServiceError) -> Response {
        use ServiceError as E;
        let (status, message) = match e {
            E::WrongPassword | E::SecondFactorInvalid | E::InvalidCode => (
                StatusCode::UNAUTHORIZED,
                "That password or code is not right. Nothing was changed.".to_string(),
            ),
            E::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many wrong attempts. Try again in {}.",
                    super::human_wait(retry_after)
                ),
            ),
            E::MfaChallengeInvalid => (
                StatusCode::BAD_REQUEST,
                "That took too long; start again.".to_string(),
            ),
            e @ (E::Invalid(_)
            | E::Conflict(..)
            | E::PasskeyRefused(_)
            | E::NotFound(_)
            | E::Forbidden(..)) => (StatusCode::BAD_REQUEST, e.to_string()),
            other => return internal_error_page("an account action failed", &other),
        };
        account_page(&self.services, current, None, Some(("", &message)), status).await
    }

    /// The TOTP enrolment page again after a wrong first code.
    async fn totp_retry(&self, current: &SignedIn, token: &str) -> Response {
        match self.services.mfa.enrolment(token, &current.user.id).await {
            Ok(Some(e)) => totp_page(
                &self.services,
                current,
                &e.enrolment_token,
                &e.secret,
                &e.qr_svg,
                Some("That code did not match. Enter the app's current code."),
            ),
            Ok(None) => {
                self.refused(current, ServiceError::MfaChallengeInvalid)
                    .await
            }
            Err(e) => internal_error_page("reading an enrolment failed", &e),
        }
    }
}

fn email_confirm_page(
    services: &Services,
    current: &SignedIn,
    new_email: &str,
    dev_code: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = services.oauth2.csrf_token(&current.cookie, ACCOUNT_FORM);
    let html = EmailConfirmTemplate {
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
    current: &SignedIn,
    enrolment_token: &str,
    secret: &str,
    qr_svg: &str,
    error: Option<&str>,
) -> Response {
    let csrf = services.oauth2.csrf_token(&current.cookie, ACCOUNT_FORM);
    let html = TotpEnrolmentTemplate {
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
                let message = format!("That picture was not accepted: {e}");
                account_page(
                    services,
                    &current,
                    None,
                    Some(("", &message)),
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
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";
        assert_eq!(device(firefox), "Firefox on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device(iphone), "Safari on iOS");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(device(edge), "Edge on Windows");
        assert_eq!(device("curl/8.5.0"), "curl/8.5.0");
    }
}
