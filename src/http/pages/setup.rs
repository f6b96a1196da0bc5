//! `/ui/setup?token=…`: the first-run page. While no account is an administrator, `serve`
//! prints a single-use link (valid for an hour) to this page, which creates the first one
//! and signs the browser in.

use askama::Template;
use poem::{Endpoint, Request, Response, http::StatusCode};

use super::{
    CSRF_COOKIE, Flow, Ui, after_password, bad_form, cookie, csrf_form_page, csrf_refused,
    error_page, form, internal_error_page, invalid_msg, page_origin, query, templates,
    weak_password_msg,
};
use crate::{
    i18n::Msg,
    service::{ServiceError, Services, accounts::Registration},
};

const SETUP_FORM: &str = "setup";
/// "This setup link has expired…" (a catalogue key).
const DEAD_LINK: &str = "error-setup-link-dead";

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    token: &'a str,
    username: &'a str,
    email: &'a str,
    error: Option<&'a Msg>,
    error_field: &'a str,
}

fn render(
    services: &Services,
    req: &Request,
    token: &str,
    kept: (&str, &str),
    error: Option<(&str, Msg)>,
    status: StatusCode,
) -> Response {
    let (error_field, error) = match error {
        Some((field, message)) => (field, Some(message)),
        None => ("", None),
    };
    let ui = Ui::new(services, req);
    csrf_form_page(services, req, SETUP_FORM, status, |csrf| {
        templates::render(&SetupPage {
            ui: &ui,
            csrf,
            token,
            username: kept.0,
            email: kept.1,
            error: error.as_ref(),
            error_field,
        })
    })
}

/// `GET /ui/setup?token=…`.
pub(super) struct SetupPageEp {
    pub(super) services: Services,
}

impl Endpoint for SetupPageEp {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let token = query(&req).get("token").cloned().unwrap_or_default();
        Ok(match self.services.admin.first_run_valid(&token).await {
            Ok(true) => render(&self.services, &req, &token, ("", ""), None, StatusCode::OK),
            Ok(false) => error_page(StatusCode::NOT_FOUND, DEAD_LINK),
            Err(e) => internal_error_page("checking a setup link failed", &e),
        })
    }
}

/// `POST /ui/setup`.
pub(super) struct SetupSubmit {
    pub(super) services: Services,
}

impl Endpoint for SetupSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let Some(f) = form(&mut req).await else {
            return Ok(bad_form());
        };
        let binding = cookie(&req, CSRF_COOKIE).unwrap_or_default();
        if let Some(refused) = csrf_refused(services, &binding, SETUP_FORM, &f, "again-setup-link")
        {
            return Ok(refused);
        }
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let (token, username, email) = (
            field("token"),
            field("username").trim(),
            field("email").trim(),
        );
        let registration = Registration {
            username: username.into(),
            email: email.into(),
            password: field("password").into(),
            ..Registration::default()
        };
        let origin = page_origin(services, &req);
        let error = match services
            .admin
            .create_first_admin(token, registration, &origin)
            .await
        {
            Ok(user) => {
                return Ok(after_password(services, &req, &Flow::Account, user, &origin).await);
            }
            Err(ServiceError::InvalidToken) => {
                return Ok(error_page(StatusCode::NOT_FOUND, DEAD_LINK));
            }
            Err(ServiceError::Invalid(inv)) => (inv.field, invalid_msg(&inv)),
            Err(ServiceError::WeakPassword(weak)) => ("password", weak_password_msg(&weak)),
            Err(ServiceError::UsernameTaken) => ("username", Msg::new("error-username-taken")),
            Err(ServiceError::EmailTaken) => ("email", Msg::new("error-email-registered")),
            Err(e) => {
                return Ok(internal_error_page(
                    "creating the first administrator failed",
                    &e,
                ));
            }
        };
        let field = match error.0 {
            "username" | "email" | "password" => error.0,
            _ => "",
        };
        Ok(render(
            services,
            &req,
            token,
            (username, email),
            Some((field, error.1)),
            StatusCode::BAD_REQUEST,
        ))
    }
}
