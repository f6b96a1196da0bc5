//! The browser side of the authorization code flow: `GET /oauth2/authorize`, the login page
//! (`/ui/login`) and the consent page (`/ui/consent`); and the forgotten-password page
//! (`/ui/reset-password`).
//!
//! Browser sessions use an `HttpOnly`, `SameSite=Lax` cookie (`Secure` when the public URL
//! is https). Every form carries a CSRF token bound to the browser (its session cookie, or
//! before login a dedicated cookie) and to the pending request. Pages are never framed
//! (`frame-ancestors 'none'`) and never cached. Form answers redirect with 303.

mod account;
mod admin;
mod register;
mod setup;
pub mod templates;
mod ui;
mod upstream;

pub use ui::Ui;

use std::collections::HashMap;

use poem::{
    Endpoint, Request, Response, Route, get,
    http::{HeaderValue, StatusCode, header},
};

use crate::i18n::Msg;
use crate::service::{
    Services,
    accounts::{CaptchaAnswer, SignedInUser},
    mfa::{AfterPassword, SecondFactorAnswer, SecondFactorChallenge, TotpEnrolment},
    oauth2::authorize::{AuthorizeError, AuthorizeParams, Pending, SignedIn},
};

const SESSION_COOKIE: &str = "portcullis_session";
const CSRF_COOKIE: &str = "portcullis_csrf";

/// `GET /`: a signed-in browser goes to its account page, any other to the sign-in page.
pub async fn home(services: &Services, req: &Request) -> Response {
    match signed_in(services, req).await {
        Some(_) => see_other(ACCOUNT_PAGE),
        None => see_other("/ui/login"),
    }
}

/// `GET /oauth2/authorize`.
pub fn authorize(services: Services) -> impl Endpoint<Output = Response> {
    // OIDC Core §3.1.2.1: the authorization endpoint takes GET and form POST alike.
    let endpoint = get(Authorize {
        services: services.clone(),
    })
    .post(Authorize {
        services: services.clone(),
    });
    localised(services, endpoint)
}

/// `GET|POST /oauth2/logout`: RP-Initiated Logout 1.0.
pub fn logout(services: Services) -> impl Endpoint<Output = Response> {
    let endpoint = get(Logout {
        services: services.clone(),
    })
    .post(Logout {
        services: services.clone(),
    });
    localised(services, endpoint)
}

/// The `/ui` pages (nested under `/ui`).
pub fn ui_routes(services: Services) -> impl Endpoint<Output = Response> {
    let s = || services.clone();
    // The operator's accent colour, after the built-in rules.
    let stylesheet = format!(
        "{}{}",
        include_str!("static/style.css"),
        services.texts.brand.stylesheet()
    );
    let mut routes = Route::new()
        .at(
            "/login",
            get(LoginPageEp { services: s() }).post(LoginSubmit { services: s() }),
        )
        .at(
            "/login/mfa",
            poem::post(SecondFactorSubmit { services: s() }),
        )
        .at(
            "/login/passkey/begin",
            poem::post(PasskeyBegin { services: s() }),
        )
        .at(
            "/login/passkey",
            poem::post(PasskeySubmit { services: s() }),
        )
        // The passkey ceremonies, the account page's picture preview, the stylesheet.
        .at(
            "/webauthn.js",
            get(static_file(JAVASCRIPT, include_str!("static/webauthn.js"))),
        )
        .at(
            "/account.js",
            get(static_file(JAVASCRIPT, include_str!("static/account.js"))),
        )
        .at(
            "/style.css",
            get(static_file("text/css; charset=utf-8", stylesheet)),
        )
        .nest("/account", account::routes(s()))
        .nest("/upstream", upstream::routes(s()))
        .nest("/admin", admin::routes(s()))
        .at(
            "/setup",
            get(setup::SetupPageEp { services: s() }).post(setup::SetupSubmit { services: s() }),
        )
        .at(
            "/register",
            get(register::RegisterPageEp { services: s() })
                .post(register::RegisterSubmit { services: s() }),
        )
        .at("/unlock", get(UnlockPage { services: s() }))
        .at(
            "/lang",
            get(poem::endpoint::make_sync({
                let services = s();
                move |req| ui::switch_language(&services, &req)
            })),
        )
        .at(
            "/consent",
            get(ConsentPageEp { services: s() }).post(ConsentSubmit { services: s() }),
        )
        .at(
            "/reset-password",
            get(ResetPageEp { services: s() }).post(ResetSubmit { services: s() }),
        )
        .at(
            "/device",
            get(DevicePageEp { services: s() }).post(DeviceSubmit { services: s() }),
        );
    if let Some(logo) = &services.texts.brand.logo {
        routes = routes.at("/logo", get(logo_file(logo.clone())));
    }
    localised(services, routes)
}

/// `GET /ui/logo`: the operator's logo. An SVG could carry script, so the file gets a policy
/// of its own that runs none, should someone open it directly.
fn logo_file(logo: crate::i18n::Logo) -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(logo.content_type)
            .header(header::CACHE_CONTROL, "public, max-age=3600")
            .header(
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            )
            .body(logo.bytes.to_vec())
    })
}

/// An HTML page with its own strict policy (`X-Frame-Options` is added to every HTML answer
/// by the outer middleware).
fn page(status: StatusCode, html: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        // The content security policy is the HTML one of `middleware::secure_headers`.
        .body(html)
}

/// A rendered template as a page; a template that failed to render (a formatting error, not
/// input) is logged and answered with the generic error page.
fn rendered(status: StatusCode, html: askama::Result<String>) -> Response {
    match html {
        Ok(html) => page(status, html),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, "error-generic")
        }
    }
}

fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

/// What a page says while the database cannot write.
const STORAGE_UNAVAILABLE: &str = "error-storage-unavailable";

/// Logs an unexpected failure and shows a generic page (details stay in the log): 503 with
/// `Retry-After` when the database cannot write right now (nothing was kept), else 500.
fn internal_error_page(what: &str, error: &crate::service::ServiceError) -> Response {
    use crate::service::ServiceError;
    if let ServiceError::Unavailable(cause) = error {
        tracing::warn!(error = %cause, "{what}: storage unavailable");
        let mut resp = error_page(StatusCode::SERVICE_UNAVAILABLE, STORAGE_UNAVAILABLE);
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::service::oauth2::error::STORAGE_RETRY_AFTER),
        );
        return resp;
    }
    tracing::error!(error = %error, "{what}");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "error-generic")
}

/// The answer to a form that did not arrive as one (not form-encoded, not UTF-8, fields
/// missing).
fn bad_form() -> Response {
    error_page(StatusCode::BAD_REQUEST, "error-bad-form")
}

/// A page's error, waiting to be written in the reader's language by [`localised`].
#[derive(Clone)]
struct ErrorMessage(Msg);

/// An error page saying `message`. Handlers decide what to say; the page itself is
/// rendered on the way out by [`localised`], which knows the reader's language, so the many
/// early returns of the handlers need not carry it.
fn error_page(status: StatusCode, message: impl Into<Msg>) -> Response {
    let mut resp = page(status, String::new());
    resp.extensions_mut().insert(ErrorMessage(message.into()));
    resp
}

/// Wraps the pages' endpoints: error answers ([`error_page`]) are rendered in the language
/// of the request.
pub fn localised<E>(services: Services, endpoint: E) -> impl Endpoint<Output = Response>
where
    E: Endpoint + 'static,
{
    use poem::{EndpointExt, IntoResponse};
    endpoint.around(move |inner, req| {
        let services = services.clone();
        async move {
            let ui = Ui::new(&services, &req);
            let mut resp = inner.call(req).await?.into_response();
            if let Some(ErrorMessage(message)) = resp.extensions_mut().remove::<ErrorMessage>() {
                resp.set_body(templates::error(&ui, &message));
            }
            Ok(resp)
        }
    })
}

/// The language and brand of a sign-in page: an authorization request's `ui_locales` count.
fn flow_ui(services: &Services, req: &Request, p: &Flow) -> Ui {
    let ui = Ui::new(services, req);
    match p {
        Flow::Authorize(pending) => pending_ui(ui, pending),
        Flow::Account => ui,
    }
}

/// `ui` with an authorization request's `ui_locales`.
fn pending_ui(ui: Ui, p: &Pending) -> Ui {
    ui.for_authorization(p.request.ui_locales.as_deref(), login_location(p))
}

/// A value a service refused, in the reader's language: by its rule, else in its own words.
fn invalid_msg(inv: &crate::domain::Invalid) -> Msg {
    let key = match inv.code {
        "invalid_username" => "invalid-username",
        "invalid_email" => "invalid-email",
        "invalid_password" => "invalid-password",
        "invalid_display_name" => "invalid-display-name",
        "same_email" => "invalid-same-email",
        _ => "invalid-other",
    };
    Msg::new(key).with("rule", inv.message.as_str())
}

/// A password the strength estimator refused (its English advice is shown in English).
fn weak_password_msg(weak: &crate::domain::WeakPassword) -> Msg {
    Msg::new("weak-password").with("reason", weak.reason.as_str())
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    crate::http::cookie_value(req, name)
}

fn set_cookie(resp: &mut Response, services: &Services, name: &str, value: &str, max_age: i64) {
    let secure = if services.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let header =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&header) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The browser session cookie, if any.
pub fn session_cookie(req: &Request) -> Option<String> {
    cookie(req, SESSION_COOKIE)
}

/// Deletes the browser session cookie.
pub fn clear_session_cookie(resp: &mut Response, services: &Services) {
    set_cookie(resp, services, SESSION_COOKIE, "", 0);
}

/// The "you are signed out" page.
pub fn signed_out_page(ui: &Ui) -> Response {
    page(StatusCode::OK, templates::signed_out(ui))
}

fn query(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The parameters of an endpoint that takes GET with a query and POST with a form alike
/// (OIDC Core §3.1.2.1, RP-Initiated Logout §2); a POST that is not a form gets a 400 page.
async fn query_or_form(req: &mut Request) -> Result<HashMap<String, String>, Response> {
    if req.method() != poem::http::Method::POST {
        return Ok(query(req));
    }
    form(req)
        .await
        .ok_or_else(|| error_page(StatusCode::BAD_REQUEST, "error-not-a-form"))
}

async fn form(req: &mut Request) -> Option<HashMap<String, String>> {
    let form_type = req
        .content_type()
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return None;
    }
    let bytes = req.take_body().into_bytes().await.ok()?;
    strict_form(&bytes)
}

/// An `application/x-www-form-urlencoded` body, or `None` when a name or value is not UTF-8
/// once decoded (a lossy decode would store replacement characters the user never typed).
fn strict_form(bytes: &[u8]) -> Option<HashMap<String, String>> {
    fn decode(part: &[u8]) -> Option<String> {
        let mut out = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            match part[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = part.get(i + 1..i + 3)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    let hex = std::str::from_utf8(hex).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).ok()
    }
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |b| *b == b'=');
            let key = decode(kv.next().unwrap_or_default())?;
            let value = decode(kv.next().unwrap_or_default())?;
            Some((key, value))
        })
        .collect()
}

/// Where a sign-in on these pages goes on to: a pending authorization request (its consent
/// page), or, with no request, the account pages.
enum Flow {
    Authorize(Box<Pending>),
    Account,
}

/// The CSRF form id of a sign-in to the account pages.
const ACCOUNT_SIGN_IN: &str = "account-sign-in";
/// Where a sign-in without an authorization request ends.
const ACCOUNT_PAGE: &str = "/ui/account";

impl Flow {
    /// The `request` field of the forms (empty for the account pages).
    fn request_id(&self) -> &str {
        match self {
            Flow::Authorize(p) => &p.id,
            Flow::Account => "",
        }
    }

    /// What the forms' CSRF tokens are bound to.
    fn form_id(&self) -> &str {
        match self {
            Flow::Authorize(p) => &p.id,
            Flow::Account => ACCOUNT_SIGN_IN,
        }
    }

    fn client_name(&self) -> &str {
        match self {
            Flow::Authorize(p) => &p.client.name,
            Flow::Account => "your account",
        }
    }

    fn login_hint(&self) -> &str {
        match self {
            Flow::Authorize(p) => p.request.login_hint.as_deref().unwrap_or_default(),
            Flow::Account => "",
        }
    }

    /// Whether the relying party demands a second factor (`acr_values`, `require_mfa`).
    fn mfa_demanded(&self) -> bool {
        matches!(self, Flow::Authorize(p) if p.request.mfa_demanded)
    }

    /// Where the browser goes once signed in.
    fn next(&self) -> String {
        match self {
            Flow::Authorize(p) => format!("/ui/consent?request={}", p.id),
            Flow::Account => ACCOUNT_PAGE.into(),
        }
    }

    /// How to start over after a dead end (a catalogue key).
    fn again(&self) -> &'static str {
        match self {
            Flow::Authorize(_) => FROM_THE_APP,
            Flow::Account => "again-sign-in-page",
        }
    }
}

/// The flow a sign-in page belongs to: the pending request `id` names, or the account
/// pages when there is none.
async fn flow(services: &Services, id: Option<&String>) -> Result<Flow, Response> {
    match id.filter(|id| !id.is_empty()) {
        None => Ok(Flow::Account),
        Some(_) => pending(services, id)
            .await
            .map(|p| Flow::Authorize(Box::new(p))),
    }
}

/// A posted sign-in form (password, second step, passkey) and its flow, its CSRF token
/// checked.
async fn posted_sign_in(
    services: &Services,
    req: &mut Request,
) -> Result<(HashMap<String, String>, Flow), Response> {
    let Some(f) = form(req).await else {
        return Err(bad_form());
    };
    let flow = flow(services, f.get("request")).await?;
    let binding = cookie(req, CSRF_COOKIE).unwrap_or_default();
    if let Some(refused) = csrf_refused(services, &binding, flow.form_id(), &f, flow.again()) {
        return Err(refused);
    }
    Ok((f, flow))
}

/// A posted login or consent form and the pending request it belongs to.
async fn posted_form(
    services: &Services,
    req: &mut Request,
) -> Result<(HashMap<String, String>, Pending), Response> {
    let Some(f) = form(req).await else {
        return Err(bad_form());
    };
    let p = pending(services, f.get("request")).await?;
    Ok((f, p))
}

/// The signed-in user of this browser, with the session cookie.
async fn signed_in(services: &Services, req: &Request) -> Option<SignedIn> {
    let c = cookie(req, SESSION_COOKIE)?;
    services.oauth2.browser_session(&c).await.ok()?
}

async fn pending(services: &Services, id: Option<&String>) -> Result<Pending, Response> {
    let Some(id) = id else {
        return Err(error_page(StatusCode::BAD_REQUEST, "error-request-missing"));
    };
    match services.oauth2.pending(id).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(error_page(StatusCode::BAD_REQUEST, "error-request-expired")),
        Err(e) => Err(internal_error_page(
            "loading a pending authorization request failed",
            &e,
        )),
    }
}

/// Where a validated authorization request continues: the login page.
pub fn login_location(p: &Pending) -> String {
    format!("/ui/login?request={}", p.id)
}

/// `GET` or `POST /oauth2/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1).
struct Authorize {
    services: Services,
}

impl Endpoint for Authorize {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let q = match query_or_form(&mut req).await {
            Ok(q) => q,
            Err(refused) => return Ok(refused),
        };
        let params = AuthorizeParams::from_map(&q);
        Ok(
            match self.services.oauth2.begin_authorization(params).await {
                Ok(p) if p.request.prompt_none => {
                    let current = signed_in(&self.services, &req).await;
                    match self
                        .services
                        .oauth2
                        .answer_without_prompting(&p, current.as_ref())
                        .await
                    {
                        Ok(url) => Response::builder()
                            .status(StatusCode::FOUND)
                            .header(header::LOCATION, url)
                            .finish(),
                        Err(e) => internal_error_page("answering prompt=none failed", &e),
                    }
                }
                Ok(p) => see_other(&login_location(&p)),
                Err(AuthorizeError::Page(msg)) => error_page(StatusCode::BAD_REQUEST, msg),
                Err(AuthorizeError::Redirect(url)) => Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, url)
                    .finish(),
            },
        )
    }
}

/// Renders the login form (or skips it when the browser is already signed in).
/// A page whose form carries a CSRF token bound to this browser (its pre-login cookie, set
/// here if it has none) and to `form_id`.
fn csrf_form_page(
    services: &Services,
    req: &Request,
    form_id: &str,
    status: StatusCode,
    render: impl FnOnce(&str) -> String,
) -> Response {
    let binding =
        cookie(req, CSRF_COOKIE).unwrap_or_else(|| crate::token::opaque::random_token(16));
    let csrf = services.oauth2.csrf_token(&binding, form_id);
    let mut resp = page(status, render(&csrf));
    set_cookie(&mut resp, services, CSRF_COOKIE, &binding, 3600);
    resp
}

/// "Start again from the application." (a catalogue key).
const FROM_THE_APP: &str = "again-from-app";

/// `Some(403 page)` unless the form's `csrf` field is valid for `binding` and `form_id`;
/// `again` (a catalogue key) tells the user how to retry.
fn csrf_refused(
    services: &Services,
    binding: &str,
    form_id: &str,
    form: &HashMap<String, String>,
    again: &'static str,
) -> Option<Response> {
    let token = form.get("csrf").map(String::as_str).unwrap_or_default();
    (!services.oauth2.csrf_valid(binding, form_id, token)).then(|| {
        error_page(
            StatusCode::FORBIDDEN,
            Msg::new("error-form-expired").with("again", Msg::new(again)),
        )
    })
}

/// A posted form whose CSRF token is bound to this browser's pre-login cookie and `form_id`;
/// otherwise the page that refuses it (`again` says how to retry).
async fn csrf_checked_form(
    services: &Services,
    req: &mut Request,
    form_id: &str,
    again: &'static str,
) -> Result<HashMap<String, String>, Response> {
    let Some(f) = form(req).await else {
        return Err(bad_form());
    };
    let binding = cookie(req, CSRF_COOKIE).unwrap_or_default();
    match csrf_refused(services, &binding, form_id, &f, again) {
        Some(refused) => Err(refused),
        None => Ok(f),
    }
}

async fn render_login(
    services: &Services,
    req: &Request,
    p: &Flow,
    login: &str,
    error: Option<&Msg>,
    status: StatusCode,
) -> Response {
    let challenge = if services.accounts.policy().captcha.on_login() {
        services.captchas.create().await.ok()
    } else {
        None
    };
    let ui = flow_ui(services, req, p);
    let upstreams: Vec<(String, String)> = services
        .upstreams
        .buttons()
        .await
        .into_iter()
        .map(|b| (upstream::start_href(&b.id, p.request_id()), b.name))
        .collect();
    csrf_form_page(services, req, p.form_id(), status, |csrf| {
        templates::login(&templates::LoginPage {
            ui: &ui,
            upstreams: &upstreams,
            request_id: p.request_id(),
            csrf,
            client_name: p.client_name(),
            login,
            error,
            captcha: challenge
                .as_ref()
                .map(|c| (c.id.as_str(), c.image.as_str())),
            dev_answer: challenge
                .as_ref()
                .filter(|_| services.dev)
                .map(|c| c.answer.as_str()),
            passkeys: services.mfa.passkeys_available(),
            register_href: register::href(services, p),
        })
    })
}

struct LoginPageEp {
    services: Services,
}

impl Endpoint for LoginPageEp {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let q = query(&req);
        let p = match flow(&self.services, q.get("request")).await {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
        if let Some(current) = signed_in(&self.services, &req).await {
            match &p {
                Flow::Account => return Ok(see_other(ACCOUNT_PAGE)),
                Flow::Authorize(pending) => {
                    if self.services.oauth2.session_satisfies(pending, &current) {
                        return Ok(see_other(&p.next()));
                    }
                    // Signed in, but the request wants a second factor the session has not
                    // shown: ask for it alone (step-up), not for the password again.
                    if self.services.oauth2.needs_step_up(pending, &current) {
                        return Ok(step_up(&self.services, &req, &p, &current).await);
                    }
                }
            }
        }
        let hint = p.login_hint().to_string();
        Ok(render_login(&self.services, &req, &p, &hint, None, StatusCode::OK).await)
    }
}

struct LoginSubmit {
    services: Services,
}

impl Endpoint for LoginSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let (f, p) = match posted_sign_in(&self.services, &mut req).await {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
        let login = f.get("login").cloned().unwrap_or_default();
        let password = f.get("password").cloned().unwrap_or_default();
        let captcha = CaptchaAnswer {
            id: f.get("captcha_id").cloned(),
            answer: f.get("captcha_answer").cloned(),
        };
        let accounts = self.services.oauth2.accounts();
        let origin = page_origin(&self.services, &req);
        let unlock = cookie(&req, UNLOCK_COOKIE);
        let result = match accounts.check_login_captcha(&captcha).await {
            Ok(()) => {
                accounts
                    .authenticate_password_unlocking(&login, &password, &origin, unlock.as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        let user = match result {
            Ok(user) => user,
            Err(e) => {
                use crate::service::ServiceError as E;
                let (status, message) = match e {
                    E::Overloaded { retry_after } => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Msg::new("error-overloaded").with("wait", human_wait(retry_after)),
                    ),
                    E::RateLimited { retry_after } => (
                        StatusCode::TOO_MANY_REQUESTS,
                        Msg::new("error-throttled").with("wait", human_wait(retry_after)),
                    ),
                    E::CaptchaRequired | E::CaptchaInvalid => {
                        (StatusCode::BAD_REQUEST, Msg::new("error-captcha"))
                    }
                    E::InvalidCredentials => {
                        (StatusCode::UNAUTHORIZED, Msg::new("error-credentials"))
                    }
                    E::Unavailable(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Msg::new(STORAGE_UNAVAILABLE),
                    ),
                    other => {
                        tracing::error!(error = %other, "login page failure");
                        (StatusCode::INTERNAL_SERVER_ERROR, Msg::new("error-generic"))
                    }
                };
                return Ok(
                    render_login(&self.services, &req, &p, &login, Some(&message), status).await,
                );
            }
        };
        Ok(after_password(&self.services, &req, &p, user, &origin).await)
    }
}

/// What follows a right password (a sign-in, or a new account): signed in, the second
/// step, or enrolment first.
async fn after_password(
    services: &Services,
    req: &Request,
    p: &Flow,
    user: crate::service::views::UserView,
    origin: &crate::service::audit::Origin,
) -> Response {
    let password = vec![crate::service::mfa::amr::PASSWORD.to_string()];
    after_first_factor(services, req, p, user, password, None, origin).await
}

/// What follows any first factor (`first`: its `amr`; `idp`: the upstream provider it came
/// from): signed in, the second step, or enrolment first.
async fn after_first_factor(
    services: &Services,
    req: &Request,
    p: &Flow,
    user: crate::service::views::UserView,
    first: Vec<String>,
    idp: Option<String>,
    origin: &crate::service::audit::Origin,
) -> Response {
    match services
        .mfa
        .after_first_factor(&user, first, idp.clone(), p.mfa_demanded(), origin)
        .await
    {
        Ok(AfterPassword::SignedIn(amr)) => {
            services
                .oauth2
                .accounts()
                .signed_in(&user.id, &amr, origin)
                .await;
            let done = SignedInUser {
                user,
                amr,
                idp,
                recovery_codes: Vec::new(),
            };
            finish_sign_in(services, req, p, done).await
        }
        Ok(AfterPassword::SecondFactor(challenge)) => second_factor_page(
            services,
            req,
            p,
            &user.username,
            &challenge,
            None,
            StatusCode::OK,
        ),
        Ok(AfterPassword::MustEnrol(enrolment)) => {
            enrolment_page(services, req, p, &enrolment, None, StatusCode::OK)
        }
        Err(e) => internal_error_page("deciding the second step failed", &e),
    }
}

const UNLOCK_COOKIE: &str = "portcullis_unlock";

fn page_origin(services: &Services, req: &Request) -> crate::service::audit::Origin {
    crate::http::origin(req, services.trust_forwarded_for, "page")
}

/// "15 minutes", "30 seconds": how long to wait, in words.
/// Never less than the real wait: rounded up to the unit it is told in.
fn human_wait(seconds: u64) -> Msg {
    let (key, n) = match seconds {
        0..=59 => ("wait-seconds", seconds.max(1)),
        60..=7199 => ("wait-minutes", seconds.div_ceil(60)),
        _ => ("wait-hours", seconds.div_ceil(3600)),
    };
    Msg::new(key).with("n", n)
}

/// "A code was sent less than a minute ago…".
fn resend_too_soon(retry_after: u64) -> Msg {
    Msg::new("error-resend-too-soon").with("wait", human_wait(retry_after))
}

/// Signs the browser in with `amr` (or records a step-up in its current session) and goes on
/// to consent.
async fn finish_sign_in(
    services: &Services,
    req: &Request,
    p: &Flow,
    SignedInUser {
        user,
        amr,
        idp,
        recovery_codes,
    }: SignedInUser,
) -> Response {
    let next = p.next();
    if let Some(current) = signed_in(services, req).await
        && current.user.id == user.id
        && crate::service::mfa::is_multi_factor(&amr)
    {
        return match services.oauth2.step_up(&current, amr).await {
            Ok(true) => see_other(&next),
            Ok(false) => error_page(StatusCode::BAD_REQUEST, "error-session-ended"),
            Err(e) => internal_error_page("recording a step-up failed", &e),
        };
    }
    let (session_cookie, _) = match services.oauth2.start_browser_session(&user, amr, idp).await {
        Ok(s) => s,
        Err(e) => return internal_error_page("could not start a browser session", &e),
    };
    // A factor enrolled during this sign-in: its recovery codes, shown once, before going on.
    let mut resp = if recovery_codes.is_empty() {
        see_other(&next)
    } else {
        let ui = flow_ui(services, req, p);
        page(
            StatusCode::OK,
            templates::recovery_codes(&ui, &recovery_codes, &next),
        )
    };
    set_cookie(
        &mut resp,
        services,
        SESSION_COOKIE,
        &session_cookie,
        crate::service::oauth2::authorize::BROWSER_SESSION_TTL,
    );
    resp
}

/// The sign-in of a user who must enrol a second factor first: the authenticator app to
/// add, and its first code.
fn enrolment_page(
    services: &Services,
    req: &Request,
    p: &Flow,
    enrolment: &TotpEnrolment,
    error: Option<&Msg>,
    status: StatusCode,
) -> Response {
    let ui = flow_ui(services, req, p);
    csrf_form_page(services, req, p.form_id(), status, |csrf| {
        templates::sign_in_enrolment(&templates::SignInEnrolmentPage {
            ui: &ui,
            request_id: p.request_id(),
            csrf,
            mfa_token: &enrolment.enrolment_token,
            secret: &enrolment.secret,
            qr_svg: &enrolment.qr_svg,
            error,
        })
    })
}

fn second_factor_page(
    services: &Services,
    req: &Request,
    p: &Flow,
    username: &str,
    challenge: &SecondFactorChallenge,
    error: Option<&Msg>,
    status: StatusCode,
) -> Response {
    let ui = flow_ui(services, req, p);
    let options = challenge.webauthn.as_ref().map(|o| o.to_string());
    let codes = challenge
        .methods
        .iter()
        .any(|m| *m == "totp" || *m == "recovery_code");
    csrf_form_page(services, req, p.form_id(), status, |csrf| {
        templates::second_factor(&templates::SecondFactorPage {
            ui: &ui,
            request_id: p.request_id(),
            csrf,
            mfa_token: &challenge.token,
            username,
            codes,
            webauthn: options.as_deref(),
            error,
        })
    })
}

/// A signed-in browser whose session lacks the second factor the request demands.
async fn step_up(services: &Services, req: &Request, p: &Flow, current: &SignedIn) -> Response {
    match services
        .mfa
        .step_up_challenge(&current.user, current.amr())
        .await
    {
        Ok(None) => error_page(StatusCode::FORBIDDEN, "error-needs-second-factor"),
        Ok(Some(c)) => second_factor_page(
            services,
            req,
            p,
            &current.user.username,
            &c,
            None,
            StatusCode::OK,
        ),
        Err(e) => internal_error_page("starting a step-up failed", &e),
    }
}

/// `POST /ui/login/mfa`: the second step's answer (a code, or a passkey assertion).
struct SecondFactorSubmit {
    services: Services,
}

impl Endpoint for SecondFactorSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let (f, p) = match posted_sign_in(&self.services, &mut req).await {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
        let origin = page_origin(&self.services, &req);
        let token = f.get("mfa_token").cloned().unwrap_or_default();
        let answer = match f.get("webauthn").filter(|w| !w.is_empty()) {
            // Unreadable JSON is refused by the service like any malformed assertion.
            Some(json) => SecondFactorAnswer::Passkey(
                serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
            ),
            None => SecondFactorAnswer::Code(f.get("code").cloned().unwrap_or_default()),
        };
        match self
            .services
            .oauth2
            .accounts()
            .second_factor_signed_in(&token, answer, &origin)
            .await
        {
            Ok(done) => Ok(finish_sign_in(&self.services, &req, &p, done).await),
            Err(e) => {
                use crate::service::ServiceError as E;
                let message = match e {
                    E::SecondFactorInvalid | E::PasskeyRefused(_) => {
                        Msg::new("error-second-factor-wrong")
                    }
                    E::MfaChallengeInvalid => {
                        return Ok(error_page(
                            StatusCode::BAD_REQUEST,
                            Msg::new("error-sign-in-too-long").with("again", Msg::new(p.again())),
                        ));
                    }
                    other => {
                        return Ok(internal_error_page(
                            "checking a second factor failed",
                            &other,
                        ));
                    }
                };
                // A wrong first code of an enrolment: the same app to add, again.
                match self.services.mfa.sign_in_enrolment(&token).await {
                    Ok(Some(enrolment)) => {
                        return Ok(enrolment_page(
                            &self.services,
                            &req,
                            &p,
                            &enrolment,
                            Some(&Msg::new("error-enrolment-code")),
                            StatusCode::UNAUTHORIZED,
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => return Ok(internal_error_page("reading an enrolment failed", &e)),
                }
                // A wrong answer leaves the challenge live until its last try: offer it
                // again, or send the user back to start over.
                let (user_id, challenge) = match self.services.mfa.retry(&token).await {
                    Ok(Some(retry)) => retry,
                    Ok(None) => {
                        return Ok(error_page(
                            StatusCode::BAD_REQUEST,
                            Msg::new("error-last-try").with("again", Msg::new(p.again())),
                        ));
                    }
                    Err(e) => return Ok(internal_error_page("reading second factors failed", &e)),
                };
                let username = self
                    .services
                    .oauth2
                    .accounts()
                    .active_user(&user_id)
                    .await
                    .map(|u| u.username)
                    .unwrap_or_default();
                Ok(second_factor_page(
                    &self.services,
                    &req,
                    &p,
                    &username,
                    &challenge,
                    Some(&message),
                    StatusCode::UNAUTHORIZED,
                ))
            }
        }
    }
}

/// `POST /ui/login/passkey/begin`: the options of a passwordless sign-in (JSON).
struct PasskeyBegin {
    services: Services,
}

impl Endpoint for PasskeyBegin {
    type Output = Response;

    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(match self.services.mfa.begin_passwordless().await {
            Ok(c) => Response::builder().content_type("application/json").body(
                serde_json::json!({
                    "ceremony_token": c.token,
                    "options": c.options,
                    "expires_in": c.expires_in,
                })
                .to_string(),
            ),
            // Passkeys off here: the script shows the reason.
            Err(e @ crate::service::ServiceError::Forbidden(..)) => Response::builder()
                .status(StatusCode::FORBIDDEN)
                .content_type("application/json")
                .body(serde_json::json!({ "error": e.to_string() }).to_string()),
            Err(e) => poem::IntoResponse::into_response(crate::http::error::ApiError::from(e)),
        })
    }
}

/// `POST /ui/login/passkey`: a passwordless sign-in's assertion.
struct PasskeySubmit {
    services: Services,
}

impl Endpoint for PasskeySubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let (f, p) = match posted_sign_in(&self.services, &mut req).await {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
        use crate::service::ServiceError as E;
        let origin = page_origin(&self.services, &req);
        let token = f.get("ceremony_token").cloned().unwrap_or_default();
        let credential = f
            .get("credential")
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or(serde_json::Value::Null);
        match self
            .services
            .oauth2
            .accounts()
            .passkey_signed_in(&token, credential, &origin)
            .await
        {
            Ok(done) => Ok(finish_sign_in(&self.services, &req, &p, done).await),
            Err(e @ (E::Store(_) | E::Internal(_) | E::Unavailable(_))) => {
                Ok(internal_error_page("a passkey sign-in failed", &e))
            }
            Err(e) => {
                tracing::info!(error = %e, "passkey sign-in refused");
                Ok(render_login(
                    &self.services,
                    &req,
                    &p,
                    "",
                    Some(&Msg::new("error-passkey-refused")),
                    StatusCode::UNAUTHORIZED,
                )
                .await)
            }
        }
    }
}

/// `GET /ui/unlock?token=…`: the link mailed while an account's sign-ins are slowed. It
/// marks this browser (a cookie holding the token) so its next sign-in skips the delay.
struct UnlockPage {
    services: Services,
}

impl Endpoint for UnlockPage {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let token = query(&req).get("token").cloned().unwrap_or_default();
        let live = self
            .services
            .mfa
            .unlock_link_live(&token)
            .await
            .unwrap_or(false);
        let mut resp = page(
            if live {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            },
            templates::unlocked(&Ui::new(&self.services, &req), live),
        );
        if live {
            set_cookie(
                &mut resp,
                &self.services,
                UNLOCK_COOKIE,
                &token,
                crate::service::mfa::UNLOCK_TTL,
            );
        }
        Ok(resp)
    }
}

/// One of the pages' own files (script or stylesheet), compiled in; revalidated on each
/// use so a new version is picked up at once.
fn static_file(
    content_type: &'static str,
    body: impl Into<bytes::Bytes>,
) -> impl Endpoint<Output = Response> {
    let body: bytes::Bytes = body.into();
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .header(header::CACHE_CONTROL, "no-cache")
            .body(body.clone())
    })
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Issues the code and redirects, or explains why not.
async fn approve(services: &Services, p: &Pending, signed_in: &SignedIn) -> Response {
    match services.oauth2.approve(p, signed_in).await {
        Ok(Some(url)) => see_other(&url),
        Ok(None) => error_page(StatusCode::BAD_REQUEST, "error-request-completed"),
        Err(e) => internal_error_page("issuing an authorization code failed", &e),
    }
}

struct ConsentPageEp {
    services: Services,
}

impl Endpoint for ConsentPageEp {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let q = query(&req);
        let p = match pending(&self.services, q.get("request")).await {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
        let Some(current) = signed_in(&self.services, &req)
            .await
            .filter(|s| self.services.oauth2.session_satisfies(&p, s))
        else {
            return Ok(see_other(&login_location(&p)));
        };
        // Consent is remembered per user, client and scope: a repeat visit goes straight back.
        // Not for a device: a user code can arrive in someone else's message, so the user
        // always confirms which device they let in (RFC 8628 §5.4).
        if p.request.device.is_none()
            && self
                .services
                .oauth2
                .has_consent(&current.user.id, &p)
                .await
                .unwrap_or(false)
        {
            return Ok(approve(&self.services, &p, &current).await);
        }
        let csrf = self.services.oauth2.csrf_token(&current.cookie, &p.id);
        let ui = pending_ui(Ui::new(&self.services, &req), &p);
        let html = templates::consent(&templates::ConsentPage {
            ui: &ui,
            request_id: &p.id,
            csrf: &csrf,
            client_name: &p.client.name,
            username: &current.user.username,
            device: p.request.device.is_some(),
            scopes: p
                .request
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .collect(),
        });
        Ok(page(StatusCode::OK, html))
    }
}

struct ConsentSubmit {
    services: Services,
}

impl Endpoint for ConsentSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let (f, p) = match posted_form(&self.services, &mut req).await {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
        let Some(current) = signed_in(&self.services, &req)
            .await
            .filter(|s| self.services.oauth2.session_satisfies(&p, s))
        else {
            return Ok(see_other(&login_location(&p)));
        };
        if let Some(refused) =
            csrf_refused(&self.services, &current.cookie, &p.id, &f, FROM_THE_APP)
        {
            return Ok(refused);
        }
        match f.get("decision").map(String::as_str) {
            Some("allow") => Ok(approve(&self.services, &p, &current).await),
            Some("deny") => Ok(match self.services.oauth2.deny(&p).await {
                Ok(url) => see_other(&url),
                Err(e) => internal_error_page("recording a denial failed", &e),
            }),
            _ => Ok(error_page(
                StatusCode::BAD_REQUEST,
                "error-choose-allow-deny",
            )),
        }
    }
}

/// The CSRF "request id" of the reset form, which has no pending request of its own.
const RESET_FORM: &str = "reset-password";

/// A reset page with a fresh CSRF token bound to this browser.
fn reset_page(
    services: &Services,
    req: &Request,
    status: StatusCode,
    render: impl FnOnce(&str) -> String,
) -> Response {
    csrf_form_page(services, req, RESET_FORM, status, render)
}

/// `GET /ui/reset-password`: asks for the address.
struct ResetPageEp {
    services: Services,
}

impl Endpoint for ResetPageEp {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let ui = Ui::new(&self.services, &req);
        Ok(reset_page(&self.services, &req, StatusCode::OK, |csrf| {
            templates::reset_request(&ui, csrf, "", None)
        }))
    }
}

/// `POST /ui/reset-password`: `step=request` mails a code (the page looks the same whether or
/// not the address has an account); `step=reset` sets the new password with it.
struct ResetSubmit {
    services: Services,
}

impl Endpoint for ResetSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        use crate::service::{ServiceError as E, codes::CodePurpose};
        let f = match csrf_checked_form(&self.services, &mut req, RESET_FORM, "again-page").await {
            Ok(f) => f,
            Err(refused) => return Ok(refused),
        };
        let ui = Ui::new(&self.services, &req);
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let email = field("email").trim().to_string();
        let services = &self.services;
        match field("step") {
            "request" => {
                let (status, error, code) = match services
                    .accounts
                    .request_code(&email, CodePurpose::ResetPassword, Some(ui.lang()))
                    .await
                {
                    Ok(code) => (StatusCode::OK, None, code.filter(|_| services.dev)),
                    Err(E::Invalid(inv)) => {
                        (StatusCode::BAD_REQUEST, Some(invalid_msg(&inv)), None)
                    }
                    Err(E::ResendTooSoon { retry_after }) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        Some(resend_too_soon(retry_after)),
                        None,
                    ),
                    Err(E::MailUnavailable) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some(Msg::new("error-mail-unavailable")),
                        None,
                    ),
                    Err(other) => {
                        return Ok(internal_error_page("reset code request failed", &other));
                    }
                };
                Ok(reset_page(services, &req, status, |csrf| match status {
                    StatusCode::BAD_REQUEST | StatusCode::SERVICE_UNAVAILABLE => {
                        templates::reset_request(&ui, csrf, &email, error.as_ref())
                    }
                    _ => templates::reset_confirm(&templates::ResetConfirmPage {
                        ui: &ui,
                        csrf,
                        email: &email,
                        error: error.as_ref(),
                        dev_code: code.as_deref(),
                        code: "",
                    }),
                }))
            }
            "reset" => {
                let result = services
                    .accounts
                    .reset_password(
                        &email,
                        field("code").trim(),
                        field("new_password"),
                        &page_origin(services, &req),
                    )
                    .await;
                // Only a refused password keeps the typed code: a wrong code must be typed again.
                let (status, message, kept) = match result {
                    Ok(()) => return Ok(page(StatusCode::OK, templates::reset_done(&ui))),
                    Err(E::InvalidCode | E::CodeExpired) => {
                        (StatusCode::BAD_REQUEST, Msg::new("error-code-wrong"), "")
                    }
                    Err(E::Invalid(inv)) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        invalid_msg(&inv),
                        field("code").trim(),
                    ),
                    Err(E::WeakPassword(weak)) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        weak_password_msg(&weak),
                        field("code").trim(),
                    ),
                    Err(other) => {
                        return Ok(internal_error_page("password reset failed", &other));
                    }
                };
                Ok(reset_page(services, &req, status, |csrf| {
                    templates::reset_confirm(&templates::ResetConfirmPage {
                        ui: &ui,
                        csrf,
                        email: &email,
                        error: Some(&message),
                        dev_code: None,
                        code: kept,
                    })
                }))
            }
            _ => Ok(bad_form()),
        }
    }
}

/// RP-Initiated Logout 1.0 (GET or form POST, §2). A valid `id_token_hint` naming the
/// signed-in user (or any valid hint when no one is signed in) is the relying party's proof
/// and ends the session at once; otherwise the user confirms on a CSRF-protected page first
/// (§6: a logout request without a hint could come from any page). The browser goes back
/// only to a **post-logout** redirect URI registered by that client, with `state`.
struct Logout {
    services: Services,
}

/// The form the confirmation page posts, bound to the session it would end.
const LOGOUT_FORM: &str = "logout";
/// Request parameters the confirmation page carries through.
const LOGOUT_CARRIED: [&str; 4] = [
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
];

impl Endpoint for Logout {
    type Output = Response;
    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let q = match query_or_form(&mut req).await {
            Ok(q) => q,
            Err(refused) => return Ok(refused),
        };
        let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let oauth2 = &self.services.oauth2;
        let hinted_sub = match get("id_token_hint") {
            Some(hint) => oauth2
                .id_tokens()
                .verify_hint(hint, oauth2.issuer())
                .await
                .and_then(|c| c["sub"].as_str().map(str::to_string)),
            None => None,
        };
        let current = signed_in(&self.services, &req).await;
        if let Some(SignedIn { cookie, user, .. }) = &current {
            let proven = hinted_sub.as_deref() == Some(user.id.as_str());
            let confirmed = req.method() == poem::http::Method::POST
                && get("confirm") == Some("yes")
                && oauth2.csrf_valid(cookie, LOGOUT_FORM, get("csrf").unwrap_or_default());
            if !proven && !confirmed {
                let carried: Vec<(&str, &str)> = LOGOUT_CARRIED
                    .iter()
                    .filter_map(|k| get(k).map(|v| (*k, v)))
                    .collect();
                let csrf = oauth2.csrf_token(cookie, LOGOUT_FORM);
                // RP-Initiated Logout 1.0 §2: `ui_locales` asks for the page's language.
                let ui =
                    Ui::new(&self.services, &req).for_authorization(get("ui_locales"), "/".into());
                return Ok(page(
                    StatusCode::OK,
                    templates::logout_confirm(&ui, &user.username, &csrf, &carried),
                ));
            }
            if let Err(e) = oauth2.end_browser_session(cookie).await {
                return Ok(internal_error_page("signing out failed", &e));
            }
        }
        let target = oauth2
            .post_logout_target(
                get("id_token_hint"),
                get("client_id"),
                get("post_logout_redirect_uri"),
                get("state"),
            )
            .await;
        let mut resp = match target {
            Some(url) => see_other(&url),
            None => signed_out_page(
                &Ui::new(&self.services, &req).for_authorization(get("ui_locales"), "/".into()),
            ),
        };
        clear_session_cookie(&mut resp, &self.services);
        Ok(resp)
    }
}

/// The form id the device page's CSRF token is bound to.
const DEVICE_FORM: &str = "device";

/// `GET /ui/device` (RFC 8628 §3.3): where the user types the code their device shows
/// (prefilled from `verification_uri_complete`), and where they land when done.
struct DevicePageEp {
    services: Services,
}

impl Endpoint for DevicePageEp {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let q = query(&req);
        let ui = Ui::new(&self.services, &req);
        if let Some(done) = q.get("done") {
            return Ok(page(StatusCode::OK, templates::device_done(&ui, done)));
        }
        let code = q.get("user_code").cloned().unwrap_or_default();
        Ok(csrf_form_page(
            &self.services,
            &req,
            DEVICE_FORM,
            StatusCode::OK,
            |csrf| templates::device_entry(&ui, csrf, &code, None),
        ))
    }
}

/// `POST /ui/device`: a valid code continues to the login and consent pages.
struct DeviceSubmit {
    services: Services,
}

impl Endpoint for DeviceSubmit {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let f = match csrf_checked_form(&self.services, &mut req, DEVICE_FORM, "again-device").await
        {
            Ok(f) => f,
            Err(refused) => return Ok(refused),
        };
        let ui = Ui::new(&self.services, &req);
        let code = f.get("user_code").cloned().unwrap_or_default();
        Ok(match self.services.oauth2.device_request(&code).await {
            Ok(Some(p)) => see_other(&login_location(&p)),
            Ok(None) => csrf_form_page(
                &self.services,
                &req,
                DEVICE_FORM,
                StatusCode::BAD_REQUEST,
                |csrf| {
                    templates::device_entry(&ui, csrf, &code, Some(&Msg::new("error-device-code")))
                },
            ),
            Err(e) => internal_error_page("looking up a device code failed", &e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{human_wait, strict_form};

    #[test]
    fn forms_decode_strictly() {
        let f = strict_form(b"a=1&b=x+y%21&c=&d").unwrap();
        assert_eq!(f["a"], "1");
        assert_eq!(f["b"], "x y!");
        assert_eq!(f["c"], "");
        assert_eq!(f["d"], "");
        assert_eq!(
            strict_form(b"name=%E5%B0%8F%E6%98%8E").unwrap()["name"],
            "小明"
        );
        assert!(strict_form(b"name=%FF%FE").is_none(), "not UTF-8");
        assert!(strict_form(b"name=%F").is_none(), "a cut escape");
        assert!(strict_form(b"name=%zz").is_none(), "not hex");
        assert!(
            strict_form(b"name=%+1").is_none(),
            "a sign is not a hex digit"
        );
    }

    #[test]
    fn waits_read_in_words_and_never_understate() {
        use crate::i18n::{Lang, Texts};
        let texts = Texts::built_in();
        let en = |s| texts.msg(Lang::En, &human_wait(s));
        assert_eq!(en(0), "a second");
        assert_eq!(en(1), "a second");
        assert_eq!(en(30), "30 seconds");
        assert_eq!(en(60), "a minute");
        assert_eq!(en(90), "2 minutes");
        assert_eq!(en(900), "15 minutes");
        assert_eq!(en(7200), "2 hours");
        assert_eq!(texts.msg(Lang::ZhCn, &human_wait(900)), "15 分钟");
    }
}
