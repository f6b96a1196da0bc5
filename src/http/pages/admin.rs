//! `/ui/admin`: the admin console — a dashboard of the `/metrics` figures, users (search,
//! page, disable/enable, admin role, reset second factors, delete), OAuth clients (list,
//! create, redirect URIs, new secret, delete) and the audit trail. Admins only; under an MFA
//! policy that covers admins, only from a session that showed a second factor. Every action
//! is the same service call as the native admin API, CSRF-protected.

use askama::Template;
use poem::{Endpoint, Request, Response, Route, get, http::StatusCode, post};

use super::{
    Ui, bad_form, csrf_refused, error_page, form, internal_error_page, invalid_msg, page_origin,
    query, rendered, see_other, signed_in,
};
use crate::{
    config::MfaPolicy,
    domain::Role,
    i18n::Msg,
    service::{
        ServiceError, Services,
        admin::UserChanges,
        audit::{EventQuery, parse_cursor},
        clients::{ClientChanges, NewClient},
        oauth2::authorize::SignedIn,
        sessions::Principal,
    },
};

const ADMIN_FORM: &str = "admin";
/// How to retry after a refused form (a catalogue key).
const AGAIN: &str = "again-admin-page";

/// The `/ui/admin` routes (nested under `/ui/admin`).
pub(super) fn routes(services: Services) -> Route {
    let s = || services.clone();
    Route::new()
        .at(
            "/",
            get(Console {
                services: s(),
                view: View::Dashboard,
            }),
        )
        .at(
            "/users",
            get(Console {
                services: s(),
                view: View::Users,
            }),
        )
        .at(
            "/clients",
            get(Console {
                services: s(),
                view: View::Clients,
            }),
        )
        .at(
            "/events",
            get(Console {
                services: s(),
                view: View::Events,
            }),
        )
        .at(
            "/upstreams",
            get(Console {
                services: s(),
                view: View::Upstreams,
            }),
        )
        .at("/upstreams/action", post(UpstreamAction { services: s() }))
        .at("/users/action", post(UserAction { services: s() }))
        .at("/clients/action", post(ClientAction { services: s() }))
}

#[derive(Clone, Copy)]
enum View {
    Dashboard,
    Users,
    Clients,
    Events,
    Upstreams,
}

/// The admin signed in to this browser, or the page that turns the browser away.
async fn admin(services: &Services, req: &Request) -> Result<(SignedIn, Principal), Response> {
    let Some(current) = signed_in(services, req).await else {
        return Err(see_other("/ui/login"));
    };
    if !current.user.has_role(Role::Admin) {
        return Err(error_page(StatusCode::FORBIDDEN, "error-admins-only"));
    }
    let policy = services.mfa.policy();
    let needs_factor = matches!(policy, MfaPolicy::Required | MfaPolicy::RequiredForAdmins);
    if needs_factor && !crate::service::mfa::is_multi_factor(&current.amr()) {
        return Err(error_page(StatusCode::FORBIDDEN, "error-admin-needs-mfa"));
    }
    let principal = Principal::browser(current.user.clone(), &current.cookie);
    Ok((current, principal))
}

/// What a `?done=` code says on the console.
fn notice(code: &str) -> Option<Msg> {
    Some(Msg::new(match code {
        "disabled" => "done-user-disabled",
        "enabled" => "done-user-enabled",
        "roles" => "done-roles",
        "mfa-reset" => "done-mfa-reset",
        "deleted" => "done-deleted",
        "redirects" => "done-client-saved",
        "upstream-saved" => "done-upstream-saved",
        _ => return None,
    }))
}

struct UserRow {
    id: String,
    username: String,
    email: String,
    roles: String,
    disabled: bool,
    admin: bool,
    /// The upstream providers linked to the account.
    identities: String,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    notice: Option<&'a Msg>,
    error: Option<&'a Msg>,
    q: &'a str,
    users: Vec<UserRow>,
    /// "Users: 12; page 1 of 2."
    summary: Msg,
    previous: Option<String>,
    next: Option<String>,
}

struct ClientRow {
    client_id: String,
    name: String,
    confidential: bool,
    grants: String,
    redirect_uris: String,
    origins: String,
    /// (grant type, label's catalogue key, enabled) for the checkboxes.
    grant_choices: Vec<(&'static str, &'static str, bool)>,
}

/// The grants a client may have, as the console offers them (with their labels' keys).
const GRANT_CHOICES: [(&str, &str); 5] = [
    ("authorization_code", "grant-authorization-code"),
    ("refresh_token", "grant-refresh-token"),
    ("client_credentials", "grant-client-credentials"),
    (
        crate::service::clients::DEVICE_CODE_GRANT,
        "grant-device-code",
    ),
    ("password", "grant-password"),
];

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    notice: Option<&'a Msg>,
    error: Option<&'a Msg>,
    clients: Vec<ClientRow>,
}

struct EventRow {
    when: String,
    kind: String,
    actor: String,
    subject: String,
    from: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin_events.html")]
struct EventsPage<'a> {
    ui: &'a Ui,
    notice: Option<&'a Msg>,
    error: Option<&'a Msg>,
    kind: &'a str,
    subject: &'a str,
    events: Vec<EventRow>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_dashboard.html")]
struct DashboardPage<'a> {
    ui: &'a Ui,
    notice: Option<&'a Msg>,
    error: Option<&'a Msg>,
    /// (label's catalogue key, value).
    figures: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "admin_upstreams.html")]
struct UpstreamsPage<'a> {
    ui: &'a Ui,
    csrf: &'a str,
    notice: Option<&'a Msg>,
    error: Option<&'a Msg>,
    upstreams: Vec<crate::service::upstream::UpstreamView>,
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage<'a> {
    ui: &'a Ui,
    /// A catalogue key.
    title: &'a str,
    client_id: &'a str,
    secret: Option<&'a str>,
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /ui/admin[/users|/clients|/events]`.
struct Console {
    services: Services,
    view: View,
}

impl Endpoint for Console {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let (current, principal) = match admin(&self.services, &req).await {
            Ok(a) => a,
            Err(resp) => return Ok(resp),
        };
        let q = query(&req);
        let done = q.get("done").and_then(|d| notice(d));
        let ui = Ui::new(&self.services, &req);
        Ok(render(
            &self.services,
            &ui,
            &current,
            &principal,
            self.view,
            &q,
            done,
            None,
            StatusCode::OK,
        )
        .await)
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    services: &Services,
    ui: &Ui,
    current: &SignedIn,
    principal: &Principal,
    view: View,
    q: &std::collections::HashMap<String, String>,
    notice: Option<Msg>,
    error: Option<Msg>,
    status: StatusCode,
) -> Response {
    let (notice, error) = (notice.as_ref(), error.as_ref());
    let csrf = services.oauth2.csrf_token(&current.cookie, ADMIN_FORM);
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default().trim();
    match view {
        View::Dashboard => {
            let d = match services.ops.dashboard().await {
                Ok(d) => d,
                Err(e) => return internal_error_page("reading the dashboard failed", &e),
            };
            let rows = |t: &str| {
                d.table_rows
                    .iter()
                    .find(|(n, _)| *n == t)
                    .map_or(0, |(_, c)| *c)
                    .to_string()
            };
            let logins = |o: &str| {
                d.logins
                    .iter()
                    .find(|(n, _)| *n == o)
                    .map_or(0, |(_, c)| *c)
                    .to_string()
            };
            let mut last_hour = Vec::new();
            for kind in ["login_succeeded", "login_failed"] {
                match services.admin.events_last_hour(principal, kind, 1000).await {
                    Ok(n) if n >= 1000 => last_hour.push(ui.t("figure-1000-or-more")),
                    Ok(n) => last_hour.push(n.to_string()),
                    Err(e) => return internal_error_page("counting sign-ins failed", &e),
                }
            }
            let figures = vec![
                ("figure-logins-hour", last_hour[0].clone()),
                ("figure-failures-hour", last_hour[1].clone()),
                ("figure-users", rows("users")),
                ("figure-sessions", rows("session_families")),
                ("figure-browser-sessions", rows("browser_sessions")),
                ("figure-clients", rows("clients")),
                ("figure-logins-start", logins("success")),
                ("figure-failures-start", logins("failure")),
                ("figure-throttled-start", logins("throttled")),
                (
                    "figure-uptime",
                    ui.msg(&super::human_wait(d.uptime.max(0) as u64)),
                ),
                (
                    "figure-mail",
                    ui.t(if d.mail_failing {
                        "figure-failing"
                    } else {
                        "figure-working"
                    }),
                ),
                (
                    "figure-database",
                    ui.t(if d.store_writable {
                        "figure-writable"
                    } else {
                        "figure-cannot-write"
                    }),
                ),
            ];
            rendered(
                status,
                DashboardPage {
                    ui,
                    notice,
                    error,
                    figures,
                }
                .render(),
            )
        }
        View::Users => {
            let page_no = get("page").parse().unwrap_or(1usize).max(1);
            let search = get("q");
            let listed = match services.admin.list(principal, Some(search), page_no).await {
                Ok(l) => l,
                Err(e) => return internal_error_page("listing users failed", &e),
            };
            let pages = listed.total.div_ceil(listed.per_page).max(1);
            let link = |p: usize| format!("/ui/admin/users?q={}&page={p}", encode(search));
            let ids = listed.users.iter().map(|u| u.id.clone()).collect();
            let linked = match services.upstreams.identities_of_users(ids).await {
                Ok(l) => l,
                Err(e) => return internal_error_page("reading linked identities failed", &e),
            };
            let mut users = Vec::new();
            for (u, identities) in listed.users.into_iter().zip(linked) {
                users.push(UserRow {
                    identities: identities
                        .into_iter()
                        .map(|(_, name)| name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    admin: u.has_role(Role::Admin),
                    roles: u
                        .roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    id: u.id,
                    username: u.username,
                    email: u.email,
                    disabled: u.disabled,
                });
            }
            let summary = Msg::new(if search.is_empty() {
                "admin-users-summary"
            } else {
                "admin-users-summary-matching"
            })
            .with("total", listed.total)
            .with("page", listed.page)
            .with("pages", pages);
            let page = UsersPage {
                ui,
                csrf: &csrf,
                notice,
                error,
                q: search,
                users,
                summary,
                previous: (listed.page > 1).then(|| link(listed.page - 1)),
                next: (listed.page < pages).then(|| link(listed.page + 1)),
            };
            rendered(status, page.render())
        }
        View::Clients => {
            let clients = match services.clients.list_all(principal).await {
                Ok(c) => c,
                Err(e) => return internal_error_page("listing clients failed", &e),
            };
            let clients = clients
                .into_iter()
                .map(|c| ClientRow {
                    grant_choices: GRANT_CHOICES
                        .iter()
                        .map(|(g, label)| (*g, *label, c.grant_types.iter().any(|have| have == g)))
                        .collect(),
                    grants: c.grant_types.join(", "),
                    redirect_uris: c.redirect_uris.join("\n"),
                    origins: c.allowed_origins.join("\n"),
                    client_id: c.client_id,
                    name: c.name,
                    confidential: c.confidential,
                })
                .collect();
            rendered(
                status,
                ClientsPage {
                    ui,
                    csrf: &csrf,
                    notice,
                    error,
                    clients,
                }
                .render(),
            )
        }
        View::Upstreams => {
            let upstreams = match services.upstreams.list(principal).await {
                Ok(u) => u,
                Err(e) => return internal_error_page("listing upstreams failed", &e),
            };
            rendered(
                status,
                UpstreamsPage {
                    ui,
                    csrf: &csrf,
                    notice,
                    error,
                    upstreams,
                }
                .render(),
            )
        }
        View::Events => {
            let (kind, subject) = (get("kind"), get("subject"));
            let query = EventQuery {
                subject: Some(subject.to_string()).filter(|s| !s.is_empty()),
                kind: Some(kind.to_string()).filter(|k| !k.is_empty()),
                before: parse_cursor(get("before")),
                limit: 50,
            };
            let listed = match services.admin.events(principal, query).await {
                Ok(l) => l,
                Err(e) => return internal_error_page("listing events failed", &e),
            };
            let next = listed.next.map(|cursor| {
                format!(
                    "/ui/admin/events?kind={}&subject={}&before={}",
                    encode(kind),
                    encode(subject),
                    encode(&cursor)
                )
            });
            let events = listed
                .events
                .into_iter()
                .map(|(_, e)| EventRow {
                    when: super::account::when(e.at),
                    kind: e.kind,
                    actor: e.actor.unwrap_or_else(|| "-".into()),
                    subject: e.subject.unwrap_or_else(|| "-".into()),
                    from: [e.ip.as_deref(), e.surface.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", "),
                    detail: [e.method, e.detail]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                })
                .collect();
            rendered(
                status,
                EventsPage {
                    ui,
                    notice,
                    error,
                    kind,
                    subject,
                    events,
                    next,
                }
                .render(),
            )
        }
    }
}

/// The page again with why an action was refused.
async fn refused(
    services: &Services,
    ui: &Ui,
    current: &SignedIn,
    principal: &Principal,
    view: View,
    e: ServiceError,
) -> Response {
    use ServiceError as E;
    let message = match e {
        E::Invalid(inv) => invalid_msg(&inv),
        E::NotFound(_) => Msg::new("error-gone"),
        E::Conflict("confirm", _) => Msg::new("error-tick-sure"),
        // The service's own words say which rule it was.
        e @ (E::Forbidden(..) | E::Conflict(..)) => {
            Msg::new("error-refused").with("detail", e.to_string())
        }
        other => return internal_error_page("an admin action failed", &other),
    };
    let q = Default::default();
    render(
        services,
        ui,
        current,
        principal,
        view,
        &q,
        None,
        Some(message),
        StatusCode::BAD_REQUEST,
    )
    .await
}

/// The answer to a console action: back to `view` with its `?done=` notice, or the page
/// again saying why it was refused.
async fn answered(
    services: &Services,
    ui: &Ui,
    current: &SignedIn,
    principal: &Principal,
    view: View,
    done: Result<&str, ServiceError>,
) -> Response {
    let path = match view {
        View::Users => "/ui/admin/users",
        View::Clients => "/ui/admin/clients",
        View::Upstreams => "/ui/admin/upstreams",
        View::Dashboard | View::Events => "/ui/admin",
    };
    match done {
        Ok(done) => see_other(&format!("{path}?done={done}")),
        Err(e) => refused(services, ui, current, principal, view, e).await,
    }
}

/// A posted console form, CSRF-checked: the admin, the form, and the page refusing it.
async fn admin_form(
    services: &Services,
    req: &mut Request,
) -> Result<
    (
        SignedIn,
        Principal,
        std::collections::HashMap<String, String>,
    ),
    Response,
> {
    let (current, principal) = admin(services, req).await?;
    let Some(f) = form(req).await else {
        return Err(bad_form());
    };
    if let Some(refused) = csrf_refused(services, &current.cookie, ADMIN_FORM, &f, AGAIN) {
        return Err(refused);
    }
    Ok((current, principal, f))
}

/// `POST /ui/admin/users/action`: `action` is `disable`, `enable`, `grant-admin`,
/// `revoke-admin`, `reset-mfa` or `delete` (with `confirm=yes`) on user `id`.
struct UserAction {
    services: Services,
}

impl Endpoint for UserAction {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let (current, principal, f) = match admin_form(services, &mut req).await {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
        let origin = page_origin(services, &req);
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let id = field("id");
        let admin = &services.admin;
        let done = match field("action") {
            "disable" | "enable" => {
                let disabled = field("action") == "disable";
                let changes = UserChanges {
                    disabled: Some(disabled),
                    ..UserChanges::default()
                };
                admin
                    .update(&principal, id, changes, &origin)
                    .await
                    .map(|_| if disabled { "disabled" } else { "enabled" })
            }
            action @ ("grant-admin" | "revoke-admin") => {
                let changes = UserChanges {
                    admin: Some(action == "grant-admin"),
                    ..UserChanges::default()
                };
                admin
                    .update(&principal, id, changes, &origin)
                    .await
                    .map(|_| "roles")
            }
            "reset-mfa" => admin
                .reset_factors(&principal, id, &origin)
                .await
                .map(|()| "mfa-reset"),
            "delete" if field("confirm") == "yes" => admin
                .delete(&principal, id, &origin)
                .await
                .map(|()| "deleted"),
            "delete" => Err(ServiceError::Conflict(
                "confirm",
                "tick “sure” next to Delete to delete a user".into(),
            )),
            _ => {
                return Ok(bad_form());
            }
        };
        let ui = Ui::new(services, &req);
        Ok(answered(services, &ui, &current, &principal, View::Users, done).await)
    }
}

/// `POST /ui/admin/upstreams/action`: `save` (add or change: a preset or an issuer, the
/// client id and secret, the account policy), `toggle` (enable or disable) or `delete`
/// (with `confirm=yes`).
struct UpstreamAction {
    services: Services,
}

impl Endpoint for UpstreamAction {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let (current, principal, f) = match admin_form(services, &mut req).await {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
        let origin = page_origin(services, &req);
        let field = |k: &str| {
            f.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let id = field("id").unwrap_or_default();
        let upstreams = &services.upstreams;
        let done = match field("action").as_deref() {
            Some("save") => {
                let input = crate::service::upstream::UpstreamInput {
                    id: id.clone(),
                    name: field("name"),
                    preset: field("preset").filter(|p| p != "none"),
                    issuer: field("issuer"),
                    client_id: field("client_id").unwrap_or_default(),
                    client_secret: field("client_secret"),
                    accounts: field("accounts"),
                    ..Default::default()
                };
                upstreams
                    .put(&principal, input, &origin)
                    .await
                    .map(|_| "upstream-saved")
            }
            Some("toggle") => upstreams
                .toggle(&principal, &id, &origin)
                .await
                .map(|_| "upstream-saved"),
            Some("delete") if field("confirm").as_deref() == Some("yes") => upstreams
                .delete(&principal, &id, &origin)
                .await
                .map(|()| "deleted"),
            Some("delete") => Err(ServiceError::Conflict(
                "confirm",
                "tick “sure” next to Delete to delete a provider".into(),
            )),
            _ => return Ok(bad_form()),
        };
        let ui = Ui::new(services, &req);
        Ok(answered(services, &ui, &current, &principal, View::Upstreams, done).await)
    }
}

/// `POST /ui/admin/clients/action`: `create`, `redirects`, `rotate` or `delete` (with
/// `confirm=yes`).
struct ClientAction {
    services: Services,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

impl Endpoint for ClientAction {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let services = &self.services;
        let (current, principal, f) = match admin_form(services, &mut req).await {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
        let origin = page_origin(services, &req);
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
        let clients = &services.clients;
        let id = field("id");
        let ui = &Ui::new(services, &req);
        let shown = |title: &str, client_id: &str, secret: Option<&str>| {
            rendered(
                StatusCode::OK,
                SecretPage {
                    ui,
                    title,
                    client_id,
                    secret,
                }
                .render(),
            )
        };
        let done = match field("action") {
            "create" => {
                let new = NewClient {
                    name: field("name").trim().to_string(),
                    redirect_uris: lines(field("redirect_uris")),
                    confidential: field("public") != "yes",
                    ..NewClient::default()
                };
                match clients.register(&principal, new, &origin).await {
                    Ok((client, secret)) => {
                        return Ok(shown(
                            "secret-created",
                            &client.client_id,
                            secret.as_deref(),
                        ));
                    }
                    Err(e) => Err(e),
                }
            }
            "redirects" => {
                let grants: Vec<String> = GRANT_CHOICES
                    .iter()
                    .filter(|(g, _)| field(&format!("grant:{g}")) == "on")
                    .map(|(g, _)| g.to_string())
                    .collect();
                let changes = ClientChanges {
                    redirect_uris: Some(lines(field("redirect_uris"))),
                    allowed_origins: Some(lines(field("allowed_origins"))),
                    grant_types: Some(grants),
                    ..ClientChanges::default()
                };
                clients
                    .update(&principal, id, changes, &origin)
                    .await
                    .map(|_| "redirects")
            }
            "rotate" => match clients.rotate_secret(&principal, id, &origin).await {
                Ok((client, secret)) => {
                    return Ok(shown("secret-rotated", &client.client_id, Some(&secret)));
                }
                Err(e) => Err(e),
            },
            "delete" if field("confirm") == "yes" => clients
                .delete(&principal, id, &origin)
                .await
                .map(|()| "deleted"),
            "delete" => Err(ServiceError::Conflict(
                "confirm",
                "tick “sure” next to Delete to delete a client".into(),
            )),
            _ => {
                return Ok(bad_form());
            }
        };
        Ok(answered(services, ui, &current, &principal, View::Clients, done).await)
    }
}
