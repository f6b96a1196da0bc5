//! `/ui/upstream/…`: signing in through another identity provider. The login page's buttons
//! lead to `/ui/upstream/{id}/start`, which binds the attempt to this browser (a cookie) and
//! sends it to the upstream; `/ui/upstream/{id}/callback` takes the answer and signs the
//! linked account in (the second-factor policy still applies), or shows
//! `/ui/upstream/account`, where a person without a linked account proves an existing one or
//! names a new one.

use askama::Template;
use poem::{Endpoint, Request, Response, Route, get, http::StatusCode};

use super::{
    Flow, Ui, after_first_factor, cookie, csrf_checked_form, csrf_form_page, error_page, flow,
    internal_error_page, invalid_msg, page_origin, query, see_other, set_cookie, signed_in,
    templates,
};
use crate::{
    i18n::Msg,
    service::{
        ServiceError, Services,
        upstream::{CallbackParams, FederatedSignIn, PendingIdentity, Returned, UpstreamFailure},
    },
};

/// The cookie binding an upstream sign-in to the browser that started it.
const BINDING_COOKIE: &str = "portcullis_upstream";
/// What the choice page's CSRF tokens are bound to.
const ACCOUNT_FORM: &str = "upstream-account";

/// The `/ui/upstream` routes (nested under `/ui/upstream`).
pub(super) fn routes(services: Services) -> Route {
    let s = || services.clone();
    Route::new()
        .at("/:id/start", get(Start { services: s() }))
        .at("/:id/callback", get(Callback { services: s() }))
        .at(
            "/account",
            get(AccountChoice { services: s() }).post(AccountSubmit { services: s() }),
        )
}

/// The login page's button for upstream `id` in the flow of `request`.
pub(super) fn start_href(id: &str, request: &str) -> String {
    match request {
        "" => format!("/ui/upstream/{id}/start"),
        r => format!("/ui/upstream/{id}/start?request={r}"),
    }
}

/// Sends the browser to upstream `id`, binding the attempt to it; `link_to` links the
/// identity to that signed-in user instead of signing in.
pub(super) async fn go_upstream(
    services: &Services,
    id: &str,
    request: &str,
    link_to: Option<&str>,
) -> Response {
    match services.upstreams.begin(id, request, link_to).await {
        Ok(started) => {
            let mut resp = see_other(&started.location);
            set_cookie(&mut resp, services, BINDING_COOKIE, &started.binding, 600);
            resp
        }
        Err(failure) => failure_page(&failure),
    }
}

/// What the person reads when an upstream sign-in fails (the log has the reason).
fn failure_page(failure: &UpstreamFailure) -> Response {
    match failure {
        UpstreamFailure::Unknown => error_page(StatusCode::NOT_FOUND, "error-upstream-unknown"),
        UpstreamFailure::BadState => error_page(StatusCode::BAD_REQUEST, "error-upstream-state"),
        UpstreamFailure::Refused(_) => error_page(StatusCode::FORBIDDEN, "error-upstream-refused"),
        UpstreamFailure::Unreachable => {
            error_page(StatusCode::BAD_GATEWAY, "error-upstream-unreachable")
        }
        UpstreamFailure::Invalid => error_page(StatusCode::BAD_GATEWAY, "error-upstream-invalid"),
        UpstreamFailure::NoAccount => {
            error_page(StatusCode::FORBIDDEN, "error-upstream-no-account")
        }
        UpstreamFailure::LinkedElsewhere => {
            error_page(StatusCode::CONFLICT, "error-upstream-linked-elsewhere")
        }
    }
}

/// `GET /ui/upstream/{id}/start[?request=…]`.
struct Start {
    services: Services,
}

impl Endpoint for Start {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let id = req.path_params::<String>().unwrap_or_default();
        let q = query(&req);
        let request = q.get("request").cloned().unwrap_or_default();
        // A pending request that is gone is said now, not after the upstream.
        if let Err(resp) = flow(&self.services, Some(&request)).await {
            return Ok(resp);
        }
        Ok(go_upstream(&self.services, &id, &request, None).await)
    }
}

/// `GET /ui/upstream/{id}/callback` (RFC 6749 §4.1.2, RFC 9207).
struct Callback {
    services: Services,
}

impl Endpoint for Callback {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let id = req.path_params::<String>().unwrap_or_default();
        let q = query(&req);
        let params = CallbackParams {
            code: q.get("code").cloned(),
            state: q.get("state").cloned(),
            iss: q.get("iss").cloned(),
            error: q.get("error").cloned(),
        };
        let binding = cookie(&req, BINDING_COOKIE);
        let origin = page_origin(services, &req);
        let returned = services
            .upstreams
            .callback(&id, &params, binding.as_deref(), &origin)
            .await;
        Ok(match returned {
            Ok(Returned::SignedIn(done)) => continue_sign_in(services, &req, done).await,
            Ok(Returned::Linked { .. }) => {
                let mut resp = see_other("/ui/account?done=identity-linked");
                // The attempt is spent; the binding has done its work.
                set_cookie(&mut resp, services, BINDING_COOKIE, "", 0);
                resp
            }
            // The binding cookie stays: the choice page checks the identity is this
            // browser's.
            Ok(Returned::NeedsAccount { token, .. }) => {
                see_other(&format!("/ui/upstream/account?token={token}"))
            }
            Err(failure) => failure_page(&failure),
        })
    }
}

/// A federated sign-in goes on like a password one: the second-factor policy, then the
/// pending request's consent (or the account page).
async fn continue_sign_in(services: &Services, req: &Request, done: FederatedSignIn) -> Response {
    let p = match flow(services, Some(&done.request)).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let origin = page_origin(services, req);
    let mut resp = after_first_factor(
        services,
        req,
        &p,
        done.user,
        done.amr,
        Some(done.idp),
        &origin,
    )
    .await;
    set_cookie(&mut resp, services, BINDING_COOKIE, "", 0);
    resp
}

#[derive(Template)]
#[template(path = "upstream_account.html")]
struct AccountChoicePage<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    token: &'a str,
    pending: &'a PendingIdentity,
    login: &'a str,
    username: &'a str,
    error: Option<&'a Msg>,
    /// `link` or `create`: the form the error belongs to.
    error_form: &'a str,
}

/// The choice page for the identity `token` names, with an error on one of its forms.
#[allow(clippy::too_many_arguments)]
fn choice_page(
    services: &Services,
    req: &Request,
    token: &str,
    pending: &PendingIdentity,
    kept: (&str, &str),
    error: Option<(&str, Msg)>,
    status: StatusCode,
    p: &Flow,
) -> Response {
    let ui = super::flow_ui(services, req, p);
    let (error_form, error) = match &error {
        Some((form, message)) => (*form, Some(message)),
        None => ("", None),
    };
    csrf_form_page(services, req, ACCOUNT_FORM, status, |csrf| {
        templates::render(&AccountChoicePage {
            ui: &ui,
            csrf,
            token,
            pending,
            login: kept.0,
            username: kept.1,
            error,
            error_form,
        })
    })
}

/// The identity `token` names, waiting for an account in this browser, and the flow it
/// belongs to; or the page that says it is gone.
async fn waiting(
    services: &Services,
    token: &str,
    binding: Option<&str>,
) -> Result<(PendingIdentity, Flow), Response> {
    let pending = match services.upstreams.pending(token, binding).await {
        Ok(p) => p,
        Err(ServiceError::MfaChallengeInvalid) => {
            return Err(error_page(StatusCode::BAD_REQUEST, "error-upstream-state"));
        }
        Err(e) => {
            return Err(internal_error_page(
                "reading an upstream identity failed",
                &e,
            ));
        }
    };
    let p = flow(services, Some(&pending.request)).await?;
    Ok((pending, p))
}

/// `GET /ui/upstream/account?token=…`.
struct AccountChoice {
    services: Services,
}

impl Endpoint for AccountChoice {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let token = query(&req).get("token").cloned().unwrap_or_default();
        let binding = cookie(&req, BINDING_COOKIE);
        let (pending, p) = match waiting(services, &token, binding.as_deref()).await {
            Ok(w) => w,
            Err(resp) => return Ok(resp),
        };
        let suggestion = pending.username.clone();
        Ok(choice_page(
            services,
            &req,
            &token,
            &pending,
            ("", &suggestion),
            None,
            StatusCode::OK,
            &p,
        ))
    }
}

/// `POST /ui/upstream/account`: `action=link` (an existing account's login and password)
/// or `action=create` (a username for a new account).
struct AccountSubmit {
    services: Services,
}

impl Endpoint for AccountSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let f = match csrf_checked_form(services, &mut req, ACCOUNT_FORM, "again-from-app").await {
            Ok(f) => f,
            Err(refused) => return Ok(refused),
        };
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let token = field("token");
        let binding = cookie(&req, BINDING_COOKIE);
        let origin = page_origin(services, &req);
        let (pending, p) = match waiting(services, token, binding.as_deref()).await {
            Ok(w) => w,
            Err(resp) => return Ok(resp),
        };
        let (login, username) = (field("login").trim(), field("username").trim());
        let result = match field("action") {
            "link" => {
                services
                    .upstreams
                    .link_with_password(
                        token,
                        binding.as_deref(),
                        login,
                        field("password"),
                        &origin,
                    )
                    .await
            }
            "create" => {
                services
                    .upstreams
                    .create_account(token, binding.as_deref(), username, &origin)
                    .await
            }
            _ => return Ok(super::bad_form()),
        };
        let refused = |form: &'static str, status: StatusCode, message: Msg| {
            choice_page(
                services,
                &req,
                token,
                &pending,
                (login, username),
                Some((form, message)),
                status,
                &p,
            )
        };
        use ServiceError as E;
        Ok(match result {
            Ok(done) => continue_sign_in(services, &req, done).await,
            Err(E::InvalidCredentials) => refused(
                "link",
                StatusCode::UNAUTHORIZED,
                Msg::new("error-credentials"),
            ),
            Err(E::RateLimited { retry_after }) => refused(
                "link",
                StatusCode::TOO_MANY_REQUESTS,
                Msg::new("error-too-many-wrong").with("wait", super::human_wait(retry_after)),
            ),
            Err(E::Conflict("second_factor", _)) => refused(
                "link",
                StatusCode::CONFLICT,
                Msg::new("error-upstream-link-needs-mfa"),
            ),
            Err(E::Conflict(..)) => refused(
                "link",
                StatusCode::CONFLICT,
                Msg::new("error-upstream-linked-elsewhere"),
            ),
            Err(E::UsernameTaken) => refused(
                "create",
                StatusCode::CONFLICT,
                Msg::new("error-username-taken"),
            ),
            Err(E::EmailTaken) => refused(
                "create",
                StatusCode::CONFLICT,
                Msg::new("error-upstream-email-taken"),
            ),
            Err(E::Invalid(inv)) => refused("create", StatusCode::BAD_REQUEST, invalid_msg(&inv)),
            Err(E::RegistrationClosed) => refused(
                "create",
                StatusCode::FORBIDDEN,
                Msg::new("error-registration-closed"),
            ),
            Err(E::MfaChallengeInvalid) => {
                error_page(StatusCode::BAD_REQUEST, "error-upstream-state")
            }
            Err(other) => internal_error_page("an upstream account step failed", &other),
        })
    }
}

/// The account page's link action: a signed-in user sends the browser to upstream `id` to
/// link their identity there.
pub(super) async fn link_from_account(services: &Services, req: &Request, id: &str) -> Response {
    match signed_in(services, req).await {
        Some(current) => go_upstream(services, id, "", Some(&current.user.id)).await,
        None => see_other("/ui/login"),
    }
}
