//! CORS (the Fetch standard's CORS protocol) for browser apps on other origins: the public
//! documents answer any origin; the token, revocation and userinfo endpoints answer only the
//! origins registered by a client (`allowed_origins`, by default a public client's redirect
//! URI origins). A disallowed origin gets no CORS headers at all, so the browser blocks it.

use poem::{
    Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};

use crate::service::clients::Clients;

/// Who may read a path from another origin, and with which methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Public, cacheable documents without credentials: any origin.
    AnyOrigin,
    /// Token-bearing endpoints: the origins registered by clients.
    RegisteredOrigins,
}

fn policy(path: &str) -> Option<(Policy, &'static str)> {
    match path {
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/oauth2/jwks"
        | "/oauth2/paserk" => Some((Policy::AnyOrigin, "GET")),
        "/oauth2/token" | "/oauth2/revoke" => Some((Policy::RegisteredOrigins, "POST")),
        "/oauth2/userinfo" => Some((Policy::RegisteredOrigins, "GET, POST")),
        _ => None,
    }
}

/// The request's `Origin`, when it is a CORS request to a path with a policy.
pub struct CorsRequest {
    origin: HeaderValue,
    policy: Policy,
    methods: &'static str,
}

impl CorsRequest {
    pub fn of(req: &Request) -> Option<Self> {
        let (policy, methods) = policy(req.uri().path())?;
        let origin = req.headers().get(header::ORIGIN)?.clone();
        Some(Self {
            origin,
            policy,
            methods,
        })
    }

    /// Whether `req` is a preflight (`OPTIONS` with `Access-Control-Request-Method`).
    pub fn is_preflight(req: &Request) -> bool {
        req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    async fn allowed(&self, clients: &Clients) -> bool {
        match self.policy {
            Policy::AnyOrigin => true,
            Policy::RegisteredOrigins => match self.origin.to_str() {
                Ok(origin) => clients.origin_allowed(origin).await,
                Err(_) => false,
            },
        }
    }

    /// The answer to a preflight: 204, with the CORS headers only for an allowed origin.
    pub async fn preflight(&self, clients: &Clients) -> Response {
        let mut resp = Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(header::VARY, "Origin")
            .finish();
        if self.allowed(clients).await {
            self.decorate_allowed(&mut resp);
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(self.methods),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        resp
    }

    /// Adds the CORS headers to an actual response when the origin is allowed.
    pub async fn decorate(&self, resp: &mut Response, clients: &Clients) {
        if self.allowed(clients).await {
            self.decorate_allowed(resp);
            resp.headers_mut().insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("www-authenticate, retry-after"),
            );
        }
    }

    fn decorate_allowed(&self, resp: &mut Response) {
        let h = resp.headers_mut();
        match self.policy {
            Policy::AnyOrigin => {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            Policy::RegisteredOrigins => {
                // No credentials mode: tokens travel in headers and bodies, never cookies.
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.origin.clone());
                h.append(header::VARY, HeaderValue::from_static("Origin"));
            }
        }
    }
}
