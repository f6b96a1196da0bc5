//! The HTTP surface — the only module that knows about poem. It turns requests into service
//! calls and service results into responses; it holds no logic of its own.

pub mod api;
pub mod compat;
pub mod cors;
pub mod error;
pub mod middleware;
pub mod oauth2;
pub mod pages;
pub mod security;
pub mod server;
mod static_doc;

use poem::{
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Response, Route, endpoint::make_sync,
};
use poem_openapi::OpenApiService;

use self::compat::{account::AccountApi, auth_server::AuthServerApi, sso::SsoApi};
use self::{
    api::{
        accounts::AccountsApi, admin::AdminApi, avatars::AvatarsApi, clients::ClientsApi,
        me::MeApi, mfa::MfaApi, ops::OpsApi, sessions::SessionsApi, upstreams::UpstreamsApi,
        verification::VerificationApi,
    },
    middleware::BodyLimits,
};
use crate::service::{Compat, Services};

type Apis = (
    OpsApi,
    AccountsApi,
    SessionsApi,
    VerificationApi,
    MeApi,
    MfaApi,
    AvatarsApi,
    ClientsApi,
    AdminApi,
    UpstreamsApi,
    Switch<SsoApi>,
    Switch<AccountApi>,
    Switch<AuthServerApi>,
);

/// An API whose routes exist only when switched on (`--compat`). Its operations are in the
/// generated document either way; `spec_text` removes those of switched-off APIs.
pub struct Switch<T> {
    api: T,
    on: bool,
}

impl<T: poem_openapi::OpenApi> poem_openapi::OpenApi for Switch<T> {
    fn meta() -> Vec<poem_openapi::registry::MetaApi> {
        T::meta()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn add_routes(
        self,
        route_table: &mut std::collections::HashMap<
            String,
            std::collections::HashMap<poem::http::Method, poem::endpoint::BoxEndpoint<'static>>,
        >,
    ) {
        if self.on {
            self.api.add_routes(route_table);
        }
    }
}

/// The OpenAPI service: every documented operation, generated from the code.
pub fn openapi(services: &Services) -> OpenApiService<Apis, ()> {
    let s = || services.clone();
    OpenApiService::new(
        (
            OpsApi { services: s() },
            AccountsApi { services: s() },
            SessionsApi { services: s() },
            VerificationApi { services: s() },
            MeApi { services: s() },
            MfaApi { services: s() },
            AvatarsApi { services: s() },
            ClientsApi { services: s() },
            AdminApi { services: s() },
            UpstreamsApi { services: s() },
            Switch {
                api: SsoApi { services: s() },
                on: services.compat.sso,
            },
            Switch {
                api: AccountApi { services: s() },
                on: services.compat.account,
            },
            Switch {
                api: AuthServerApi { services: s() },
                on: services.compat.auth_server,
            },
        ),
        "portcullis",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Self-hosted authentication server and OAuth 2.0 / OpenID Connect provider.\n\n\
         Errors are `application/problem+json` (RFC 9457) with a stable `code`. \
         To try protected operations: register or log in, then press **Authorize** and paste \
         the `access_token` (or a personal API key).",
    )
}

/// The generated spec as pretty JSON — what `/openapi.json` serves and `export-openapi` writes.
pub fn spec_json(services: &Services) -> String {
    spec_text(&openapi(services).spec(), services.compat)
}

/// The generated spec (`raw`) as served: the documented trailing slashes restored, and the
/// operations (and tags) of switched-off compatible APIs removed.
fn spec_text(raw: &str, compat: Compat) -> String {
    use self::api::ApiTags;
    use poem_openapi::Tags;
    let off: Vec<&str> = [
        (compat.sso, ApiTags::CompatibleSso),
        (compat.account, ApiTags::CompatibleAccount),
        (compat.auth_server, ApiTags::CompatibleAuthServer),
    ]
    .into_iter()
    .filter(|(on, _)| !on)
    .map(|(_, tag)| tag.name())
    .collect();
    let tagged_off = |op: &serde_json::Value| {
        op["tags"].as_array().is_some_and(|tags| {
            tags.iter()
                .any(|t| off.contains(&t.as_str().unwrap_or_default()))
        })
    };
    let mut spec = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(mut doc) => {
            if let Some(paths) = doc["paths"].as_object_mut() {
                // The documents' trailing slashes, which poem-openapi drops.
                for p in compat::TRAILING_SLASH_PATHS {
                    if let Some(ops) = paths.remove(*p) {
                        paths.insert(format!("{p}/"), ops);
                    }
                }
                for ops in paths.values_mut() {
                    if let Some(ops) = ops.as_object_mut() {
                        ops.retain(|_, op| !tagged_off(op));
                    }
                }
                paths.retain(|_, ops| ops.as_object().is_some_and(|o| !o.is_empty()));
            }
            // poem-openapi gives a union of an object and a string `"type": "object"`, which
            // its string alternative then violates: the alternatives say it all.
            if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
                for schema in schemas.values_mut() {
                    if let Some(s) = schema.as_object_mut()
                        && (s.contains_key("anyOf") || s.contains_key("oneOf"))
                    {
                        s.remove("type");
                    }
                }
            }
            if let Some(tags) = doc["tags"].as_array_mut() {
                tags.retain(|t| !off.contains(&t["name"].as_str().unwrap_or_default()));
            }
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| raw.to_string())
        }
        Err(_) => raw.to_string(),
    };
    if !spec.ends_with('\n') {
        spec.push('\n');
    }
    spec
}

/// What is derived from the OpenAPI document: the served spec, the Swagger page and the
/// `Allow` index. Generating them takes tens of milliseconds, so they are built off the path
/// to the first answer: by the first request that needs one (others wait for it).
pub(crate) struct Docs {
    pub spec: static_doc::StaticDoc,
    pub swagger_page: static_doc::StaticDoc,
    pub allow: middleware::AllowIndex,
}

pub(crate) struct LazyDocs {
    services: Services,
    docs: std::sync::OnceLock<Docs>,
}

impl LazyDocs {
    pub fn get(&self) -> &Docs {
        self.docs.get_or_init(|| build_docs(&self.services))
    }
}

fn build_docs(services: &Services) -> Docs {
    let api = openapi(services);
    let raw = api.spec();
    let spec = spec_text(&raw, services.compat);
    // The Swagger page (1.6 MB with the bundled UI) embeds the generated spec, which is
    // swapped for the served one.
    let page = api
        .swagger_ui_html()
        .replacen(raw.as_str(), spec.trim_end(), 1);
    let allow = middleware::AllowIndex::new(
        &serde_json::from_str(&spec).unwrap_or_default(),
        NON_SPEC_ROUTES,
    );
    Docs {
        spec: static_doc::StaticDoc::new("application/json", spec),
        swagger_page: static_doc::StaticDoc::new(
            "text/html; charset=utf-8",
            swagger_with_oauth(&page, &services.public_url),
        ),
        allow,
    }
}

/// Every route with its middleware.
pub fn endpoint(services: Services, limits: BodyLimits) -> impl Endpoint<Output = Response> {
    let api = openapi(&services);
    let docs = std::sync::Arc::new(LazyDocs {
        services: services.clone(),
        docs: std::sync::OnceLock::new(),
    });
    let (spec, swagger_page) = (docs.clone(), docs.clone());
    let swagger = api.swagger_ui();
    let dev_outbox = services.mailer.clone();
    let dev = services.dev;
    let hsts = services.public_url.starts_with("https://");
    let outer = std::sync::Arc::new(middleware::Outer {
        limits,
        metrics: services.metrics.clone(),
        hsts,
        docs,
        clients: services.clients.clone(),
    });
    let mut route = Route::new();
    if dev {
        // Dev mode only: the route does not exist otherwise.
        route = route.at(
            "/dev/outbox",
            poem::get(make_sync(move |_| {
                let messages = dev_outbox.dev_messages().unwrap_or_default();
                poem::web::Json(serde_json::json!({ "messages": messages }))
            })),
        );
    }
    route
        .at(
            "/openapi.json",
            make_sync(move |req| spec.get().spec.respond(&req)),
        )
        .nest(
            "/swagger",
            // poem-openapi's route still serves `oauth-receiver.html`; the page itself is ours.
            swagger.around(move |ep, req| {
                let page = swagger_page.clone();
                async move {
                    if req.uri().path().ends_with(".html") {
                        return Ok(ep.call(req).await?.into_response());
                    }
                    Ok(page.get().swagger_page.respond(&req))
                }
            }),
        )
        .nest(
            "/oauth2",
            oauth2::routes(services.clone()).at("/authorize", pages::authorize(services.clone())),
        )
        .nest("/ui", pages::ui_routes(services.clone()))
        .at(
            "/.well-known/openid-configuration",
            poem::get(oauth2::oidc::Discovery {
                services: services.clone(),
            }),
        )
        .at(
            "/.well-known/oauth-authorization-server",
            poem::get(oauth2::oidc::Discovery {
                services: services.clone(),
            }),
        )
        .nest("/", {
            // `/` itself is a page (the API's catch-all nest would otherwise answer it).
            let services = services.clone();
            api.into_endpoint().around(move |ep, req| {
                let services = services.clone();
                async move {
                    if req.uri().path() == "/" && req.method() == poem::http::Method::GET {
                        return Ok(pages::home(&services, &req).await);
                    }
                    Ok(ep.call(req).await?.into_response())
                }
            })
        })
        .around(move |ep, req| {
            let outer = outer.clone();
            async move { middleware::outer(ep.as_ref(), req, &outer).await }
        })
}

/// Routes served outside the OpenAPI document, with their methods (for `Allow` on a 405).
const NON_SPEC_ROUTES: &[(&str, &[&str])] = &[
    ("/openapi.json", &["GET"]),
    ("/swagger", &["GET"]),
    ("/oauth2/authorize", &["GET", "POST"]),
    ("/oauth2/token", &["POST"]),
    ("/oauth2/introspect", &["POST"]),
    ("/oauth2/revoke", &["POST"]),
    ("/oauth2/device_authorization", &["POST"]),
    ("/oauth2/par", &["POST"]),
    ("/oauth2/register", &["POST"]),
    ("/oauth2/register/{client_id}", &["GET", "PUT", "DELETE"]),
    ("/oauth2/jwks", &["GET"]),
    ("/oauth2/paserk", &["GET"]),
    ("/oauth2/userinfo", &["GET", "POST"]),
    ("/oauth2/logout", &["GET", "POST"]),
    ("/ui/login", &["GET", "POST"]),
    ("/ui/consent", &["GET", "POST"]),
    ("/ui/reset-password", &["GET", "POST"]),
    ("/ui/device", &["GET", "POST"]),
    ("/", &["GET"]),
    ("/ui/account", &["GET"]),
    ("/ui/account/totp/begin", &["POST"]),
    ("/ui/account/totp/confirm", &["POST"]),
    ("/ui/account/totp/remove", &["POST"]),
    ("/ui/account/recovery-codes", &["POST"]),
    ("/ui/account/passkeys/begin", &["POST"]),
    ("/ui/account/passkeys/finish", &["POST"]),
    ("/ui/account/passkeys/rename", &["POST"]),
    ("/ui/account/passkeys/remove", &["POST"]),
    ("/ui/account/signout", &["POST"]),
    ("/ui/account/profile", &["POST"]),
    ("/ui/account/avatar", &["POST"]),
    ("/ui/account/password", &["POST"]),
    ("/ui/account/api-key", &["POST"]),
    ("/ui/account/sessions/revoke-others", &["POST"]),
    ("/ui/account/sessions/end", &["POST"]),
    ("/ui/account/consents/revoke", &["POST"]),
    ("/ui/account/delete", &["POST"]),
    ("/ui/account/email", &["POST"]),
    ("/ui/account/email/confirm", &["POST"]),
    ("/ui/register", &["GET", "POST"]),
    ("/ui/setup", &["GET", "POST"]),
    ("/ui/admin", &["GET"]),
    ("/ui/admin/users", &["GET"]),
    ("/ui/admin/clients", &["GET"]),
    ("/ui/admin/events", &["GET"]),
    ("/ui/admin/users/action", &["POST"]),
    ("/ui/admin/clients/action", &["POST"]),
    ("/.well-known/openid-configuration", &["GET"]),
    ("/.well-known/oauth-authorization-server", &["GET"]),
];

/// Pre-configures Swagger UI's "Authorize" dialog for the built-in PKCE client, so a
/// developer signs in on our login page and "Try it out" sends the resulting token.
///
/// The sign-in returns to the receiver registered for the built-in client, at the public URL:
/// Swagger UI would otherwise derive it from the page address, which breaks on a deep link
/// (`/swagger#/Me/getMe`). A page opened through another host name moves to the public URL
/// first, since the receiver must share the page's origin to hand the code back.
fn swagger_with_oauth(html: &str, public_url: &str) -> String {
    // JSON string literals, with `</` broken up so no value can close the script element.
    let js = |s: &str| {
        serde_json::to_string(s)
            .unwrap_or_default()
            .replace("</", "<\\/")
    };
    let receiver = js(&format!("{public_url}/swagger/oauth-receiver.html"));
    let origin = js(&url::Url::parse(public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default());
    let home = js(&format!("{public_url}/swagger"));
    let init = format!(
        "    window.ui.initOAuth({{clientId: \"{}\", usePkceWithAuthorizationCodeGrant: true, scopes: \"api\"}});\n</script>",
        crate::service::clients::SWAGGER_CLIENT_ID
    );
    let to_public = format!(
        "<head>\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<script>if (window.location.origin !== {origin}) {{ window.location.replace({home} + window.location.hash); }}</script>"
    );
    html.replacen("<head>", &to_public, 1)
        .replacen("SwaggerUIBundle({", "window.ui = SwaggerUIBundle({", 1)
        .replacen(
            "oauth2RedirectUrl: oauth2RedirectUrl,",
            &format!("oauth2RedirectUrl: {receiver},"),
            1,
        )
        .replacen("})\n</script>", &format!("}})\n{init}"), 1)
}

/// The credentials of an `Authorization: Bearer …` value (RFC 6750 §2.1; the scheme name is
/// case-insensitive, RFC 9110 §11.1), trimmed; `None` for another scheme.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.trim_start().split_at_checked(7)?;
    scheme.eq_ignore_ascii_case("bearer ").then(|| rest.trim())
}

/// The client's address: the TCP peer, or with `--trust-forwarded-for` the last
/// `X-Forwarded-For` entry (the one our proxy added).
/// Who is calling, for the audit trail: address, user agent and the surface (`api`, `page`,
/// `oauth2`, `compat-sso`, …).
pub fn origin(
    req: &poem::Request,
    trust_forwarded_for: bool,
    surface: &'static str,
) -> crate::service::audit::Origin {
    crate::service::audit::Origin {
        lang: request_lang(req),
        ..crate::service::audit::Origin::new(
            surface,
            client_ip(req, trust_forwarded_for),
            req.header("user-agent"),
        )
    }
}

/// The cookie that keeps a visitor's pick from the pages' language switch.
pub const LANG_COOKIE: &str = "portcullis_lang";

/// The language a request asks for, if we have it: the visitor's pick on our pages (its
/// cookie), else `Accept-Language`.
pub fn request_lang(req: &poem::Request) -> Option<crate::i18n::Lang> {
    use crate::i18n::Lang;
    cookie_value(req, LANG_COOKIE)
        .and_then(|tag| Lang::from_tag(&tag))
        .or_else(|| {
            req.header("accept-language")
                .and_then(Lang::from_accept_language)
        })
}

/// A cookie's value, if the request carries it non-empty.
pub fn cookie_value(req: &poem::Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

pub fn client_ip(req: &poem::Request, trust_forwarded_for: bool) -> Option<std::net::IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = req
            .header("x-forwarded-for")
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(ip);
    }
    req.remote_addr().as_socket_addr().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_not_bearer() {
        assert_eq!(bearer_token("Bearer abc "), Some("abc"));
        assert_eq!(bearer_token("bEaReR abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("abc"), None);
        assert_eq!(
            bearer_token("小明小明小明"),
            None,
            "no panic on multi-byte text"
        );
    }
}
