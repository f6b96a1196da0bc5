//! `/ui/register`: sign-up on the pages, under the server's registration policy (open,
//! invitation key, closed), captcha and email verification (a code mailed first, typed on
//! the next step). The new account is signed in and goes on where it came from: a pending
//! authorization request, or the account page.

use poem::{Endpoint, Request, Response, http::StatusCode};

use super::{
    CSRF_COOKIE, Flow, after_password, bad_form, cookie, csrf_form_page, csrf_refused, flow,
    flow_ui, form, internal_error_page, invalid_msg, page_origin, query, templates,
    weak_password_msg,
};
use crate::{
    config::{EmailVerification, RegistrationPolicy},
    i18n::Msg,
    service::{
        ServiceError, Services,
        accounts::{CaptchaAnswer, Registration},
        codes::CodePurpose,
    },
};

/// The sign-up page of `p`, unless registration is closed.
pub(super) fn href(services: &Services, p: &Flow) -> Option<String> {
    if services.accounts.policy().registration == RegistrationPolicy::Closed {
        return None;
    }
    Some(match p.request_id() {
        "" => "/ui/register".into(),
        id => format!("/ui/register?request={id}"),
    })
}

/// What the CSRF tokens of the sign-up forms are bound to.
fn form_id(p: &Flow) -> String {
    format!("register:{}", p.request_id())
}

fn sign_in_href(p: &Flow) -> String {
    match p.request_id() {
        "" => "/ui/login".into(),
        id => format!("/ui/login?request={id}"),
    }
}

/// The fields a refused form keeps (never the password).
#[derive(Default)]
struct Kept<'a> {
    email: &'a str,
    email_code: &'a str,
    username: &'a str,
    display_name: &'a str,
    registration_key: &'a str,
}

/// Which step the page shows.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    /// Verification on: the address, to mail a code to.
    Email,
    /// Everything else (with the code when verification is on).
    Details,
}

#[allow(clippy::too_many_arguments)]
async fn render(
    services: &Services,
    req: &Request,
    p: &Flow,
    step: Step,
    kept: &Kept<'_>,
    dev_code: Option<&str>,
    error: Option<(&str, Msg)>,
    status: StatusCode,
) -> Response {
    let policy = services.accounts.policy();
    let verify = policy.email_verification == EmailVerification::Required;
    let challenge = if step == Step::Details && policy.captcha.on_register() {
        services.captchas.create().await.ok()
    } else {
        None
    };
    let invite = policy.registration == RegistrationPolicy::Invite;
    // An error about a field this step does not show goes above the form.
    let shown = |field: &str| match field {
        "email" => !(verify && step == Step::Details),
        "registration_key" => invite,
        "captcha" => challenge.is_some(),
        _ => true,
    };
    let (error_field, error) = match error {
        Some((field, message)) if shown(field) => (field, Some(message)),
        Some((_, message)) => ("", Some(message)),
        None => ("", None),
    };
    let sign_in = sign_in_href(p);
    let ui = flow_ui(services, req, p);
    csrf_form_page(services, req, &form_id(p), status, |csrf| {
        templates::register(&templates::RegisterPage {
            ui: &ui,
            request_id: p.request_id(),
            csrf,
            client_name: p.client_name(),
            closed: policy.registration == RegistrationPolicy::Closed,
            ask_email_first: verify && step == Step::Email,
            verify_email: verify && step == Step::Details,
            invite,
            email: kept.email,
            email_code: kept.email_code,
            username: kept.username,
            display_name: kept.display_name,
            registration_key: kept.registration_key,
            captcha: challenge
                .as_ref()
                .map(|c| (c.id.as_str(), c.image.as_str())),
            dev_answer: challenge
                .as_ref()
                .filter(|_| services.dev)
                .map(|c| c.answer.as_str()),
            dev_code,
            error: error.as_ref(),
            error_field,
            sign_in_href: &sign_in,
        })
    })
}

/// `GET /ui/register[?request=…]`.
pub(super) struct RegisterPageEp {
    pub(super) services: Services,
}

impl Endpoint for RegisterPageEp {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let q = query(&req);
        let p = match flow(&self.services, q.get("request")).await {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
        let status = if self.services.accounts.policy().registration == RegistrationPolicy::Closed {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        };
        let kept = Kept::default();
        Ok(render(
            &self.services,
            &req,
            &p,
            Step::Email,
            &kept,
            None,
            None,
            status,
        )
        .await)
    }
}

/// `POST /ui/register`: `step=email` mails the code; `step=details` creates the account.
pub(super) struct RegisterSubmit {
    pub(super) services: Services,
}

impl Endpoint for RegisterSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let Some(f) = form(&mut req).await else {
            return Ok(bad_form());
        };
        let p = match flow(services, f.get("request")).await {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
        let binding = cookie(&req, CSRF_COOKIE).unwrap_or_default();
        if let Some(refused) = csrf_refused(services, &binding, &form_id(&p), &f, p.again()) {
            return Ok(refused);
        }
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let kept = Kept {
            email: field("email").trim(),
            email_code: field("email_code").trim(),
            username: field("username").trim(),
            display_name: field("display_name").trim(),
            registration_key: field("registration_key").trim(),
        };
        if field("step") == "email" {
            return Ok(self.mail_code(&req, &p, &kept).await);
        }
        let registration = Registration {
            username: kept.username.into(),
            email: kept.email.into(),
            password: field("password").into(),
            display_name: Some(kept.display_name.to_string()).filter(|d| !d.is_empty()),
            email_code: Some(kept.email_code.to_string()).filter(|c| !c.is_empty()),
            captcha: CaptchaAnswer {
                id: f.get("captcha_id").cloned(),
                answer: f.get("captcha_answer").cloned(),
            },
            registration_key: Some(kept.registration_key.to_string()).filter(|k| !k.is_empty()),
            ..Registration::default()
        };
        let origin = page_origin(services, &req);
        match services.accounts.register_user(registration).await {
            Ok(user) => Ok(after_password(services, &req, &p, user, &origin).await),
            Err(e) => Ok(self.refused(&req, &p, &kept, e).await),
        }
    }
}

impl RegisterSubmit {
    /// Step one under email verification: mail a code (the page reads the same whether or
    /// not the address already has an account).
    async fn mail_code(&self, req: &Request, p: &Flow, kept: &Kept<'_>) -> Response {
        let services = &self.services;
        match services
            .accounts
            .request_code(
                kept.email,
                CodePurpose::Register,
                Some(flow_ui(services, req, p).lang()),
            )
            .await
        {
            Ok(code) => {
                let dev = code.filter(|_| services.dev);
                render(
                    services,
                    req,
                    p,
                    Step::Details,
                    kept,
                    dev.as_deref(),
                    None,
                    StatusCode::OK,
                )
                .await
            }
            Err(e) => {
                let (status, message) = match e {
                    ServiceError::Invalid(inv) => (StatusCode::BAD_REQUEST, invalid_msg(&inv)),
                    ServiceError::ResendTooSoon { retry_after } => (
                        StatusCode::TOO_MANY_REQUESTS,
                        super::resend_too_soon(retry_after),
                    ),
                    ServiceError::MailUnavailable => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Msg::new("error-mail-unavailable"),
                    ),
                    other => return internal_error_page("a sign-up code request failed", &other),
                };
                let error = Some(("email", message));
                render(services, req, p, Step::Email, kept, None, error, status).await
            }
        }
    }

    /// The form again, with the error next to the field it concerns.
    async fn refused(&self, req: &Request, p: &Flow, kept: &Kept<'_>, e: ServiceError) -> Response {
        use ServiceError as E;
        let (status, field, message) = match e {
            E::Invalid(inv) => (StatusCode::BAD_REQUEST, inv.field, invalid_msg(&inv)),
            E::WeakPassword(weak) => (
                StatusCode::BAD_REQUEST,
                "password",
                weak_password_msg(&weak),
            ),
            E::UsernameTaken => (
                StatusCode::CONFLICT,
                "username",
                Msg::new("error-username-taken"),
            ),
            E::EmailTaken => (
                StatusCode::CONFLICT,
                "email",
                Msg::new("error-email-registered"),
            ),
            E::EmailCodeRequired | E::InvalidCode | E::CodeExpired => (
                StatusCode::BAD_REQUEST,
                "email_code",
                Msg::new("error-code-wrong"),
            ),
            E::CaptchaRequired | E::CaptchaInvalid => (
                StatusCode::BAD_REQUEST,
                "captcha",
                Msg::new("error-captcha"),
            ),
            E::InvalidRegistrationKey => (
                StatusCode::FORBIDDEN,
                "registration_key",
                Msg::new("error-invitation-key"),
            ),
            E::RegistrationClosed => (
                StatusCode::FORBIDDEN,
                "",
                Msg::new("error-registration-closed"),
            ),
            other => return internal_error_page("a sign-up failed", &other),
        };
        let field = match field {
            "email" | "email_code" | "username" | "display_name" | "password"
            | "registration_key" | "captcha" => field,
            _ => "",
        };
        let error = Some((field, message));
        render(
            &self.services,
            req,
            p,
            Step::Details,
            kept,
            None,
            error,
            status,
        )
        .await
    }
}
