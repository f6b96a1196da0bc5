//! `/ui/setup?token=…`: the first-run page. While no account is an administrator, `serve`
//! prints a single-use link (valid for an hour) to this page, which creates the first one
//! and signs the browser in.

use askama::Template;
use poem::{Endpoint, Request, Response, http::StatusCode};

use super::{
    CSRF_COOKIE, Flow, after_password, bad_form, cookie, csrf_form_page, csrf_refused, error_page,
    form, internal_error_page, page_origin, query,
};
use crate::service::{ServiceError, Services, accounts::Registration};

const SETUP_FORM: &str = "setup";
const DEAD_LINK: &str = "This setup link has expired, was used, or an administrator exists already. Restart the server for a new link, or run `portcullis user create --admin`.";

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    csrf: &'a str,
    token: &'a str,
    username: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    error_field: &'a str,
}

fn render(
    services: &Services,
    req: &Request,
    token: &str,
    kept: (&str, &str),
    error: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let (error_field, error) = match error {
        Some((field, message)) => (field, Some(message)),
        None => ("", None),
    };
    csrf_form_page(services, req, SETUP_FORM, status, |csrf| {
        SetupPage {
            csrf,
            token,
            username: kept.0,
            email: kept.1,
            error,
            error_field,
        }
        .render()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the setup page failed to render");
            String::new()
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
        if let Some(refused) = csrf_refused(
            services,
            &binding,
            SETUP_FORM,
            &f,
            "Open the setup link again.",
        ) {
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
            Err(ServiceError::Invalid(inv)) => (inv.field, inv.message),
            Err(e @ ServiceError::WeakPassword(_)) => ("password", e.to_string()),
            Err(ServiceError::UsernameTaken) => ("username", "That username is taken.".into()),
            Err(ServiceError::EmailTaken) => ("email", "That address has an account.".into()),
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
            Some((field, &error.1)),
            StatusCode::BAD_REQUEST,
        ))
    }
}
