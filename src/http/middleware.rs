//! Cross-cutting request handling: body limits and pre-parsing, turning every framework error
//! into problem+json, security headers, and a one-line access log that never prints query
//! strings (they can carry codes and tokens).

use std::time::Instant;

use poem::{
    Body, Endpoint, IntoResponse, Request, Response,
    error::{MethodNotAllowedError, NotFoundError, ReadBodyError},
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseMultipartError, ParseParamError, ParsePathError,
    ParseRequestPayloadError,
};

use super::error::{ApiError, Problem};

/// Body size limits.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// For JSON and form bodies.
    pub json: usize,
    /// For everything else (multipart uploads).
    pub other: usize,
}

/// Builds a problem+json response directly (for errors raised outside an operation).
pub fn problem_response(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    let problem = Problem::new(status, code, detail);
    match status.as_u16() {
        // Statuses with an `ApiError` variant go through it (it adds their headers).
        400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503 => {
            ApiError::from_problem(problem).into_response()
        }
        _ => {
            use poem_openapi::types::ToJSON;
            let body = problem.to_json().map(|v| v.to_string()).unwrap_or_default();
            Response::builder()
                .status(status)
                .content_type("application/problem+json")
                .body(body)
        }
    }
}

fn is_json(req: &Request) -> bool {
    req.header(header::CONTENT_TYPE)
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Enforces body limits before anything is buffered past them, and pre-parses JSON so that
/// syntax and encoding errors get their own precise answers (the typed extractors then only
/// see well-formed JSON, and their failures mean "wrong shape").
pub async fn guard_body<E: Endpoint>(
    ep: &E,
    mut req: Request,
    limits: BodyLimits,
    compat: bool,
) -> poem::Result<Response> {
    let json = is_json(&req);
    let limit = if json
        || req
            .content_type()
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        limits.json
    } else {
        limits.other
    };
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(too_large(limit));
    }
    // The compatible APIs read their own bodies and answer bad ones with in-body codes.
    if json && !compat {
        let bytes = match req.take_body().into_bytes_limit(limit).await {
            Ok(b) => b,
            Err(ReadBodyError::PayloadTooLarge) => return Ok(too_large(limit)),
            Err(e) => {
                return Ok(problem_response(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    format!("could not read the request body: {e}"),
                ));
            }
        };
        if let Err(e) = std::str::from_utf8(&bytes) {
            return Ok(problem_response(
                StatusCode::BAD_REQUEST,
                "invalid_utf8",
                format!(
                    "the body is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(problem_response(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the request body is empty; a JSON object is required",
            ));
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
            return Ok(problem_response(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            ));
        }
        req.set_body(Body::from_bytes(bytes));
    } else if declared.is_none() && limit > 0 {
        // Chunked body of unknown size: stop reading at the limit.
        let body = req.take_body();
        req.set_body(Body::from_bytes_stream(limited_stream(body, limit)));
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

fn limited_stream(
    body: Body,
    limit: usize,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    use futures_util::StreamExt;
    let mut seen = 0usize;
    body.into_bytes_stream().map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len();
        if seen > limit {
            return Err(std::io::Error::other("request body exceeds the size limit"));
        }
        Ok(chunk)
    })
}

fn too_large(limit: usize) -> Response {
    problem_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body exceeds the limit of {limit} bytes"),
    )
}

/// Maps any error that escaped an operation (framework parse errors, routing misses) to a
/// problem+json response. Errors that already are responses (our `ApiError`) pass through.
pub fn error_to_response(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let (status, code, detail) = if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!(
                "the JSON body does not match the expected schema: {}",
                e.reason
            ),
        )
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        (
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("parameter `{}` is invalid: {}", e.name, e.reason),
        )
    } else if let Some(e) = err.downcast_ref::<ParsePathError>() {
        (
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("path segment `{}` is invalid: {}", e.name, e.reason),
        )
    } else if let Some(e) = err.downcast_ref::<ParseMultipartError>() {
        (
            StatusCode::BAD_REQUEST,
            "invalid_multipart",
            format!("the multipart body is invalid: {}", e.reason),
        )
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            e.to_string(),
        )
    } else if err.is::<AuthorizationError>() {
        (
            StatusCode::UNAUTHORIZED,
            "missing_credentials",
            "this operation needs `Authorization: Bearer <access token or API key>` or `X-Api-Key`"
                .to_string(),
        )
    } else if err.is::<NotFoundError>() {
        (
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource".to_string(),
        )
    } else if err.is::<MethodNotAllowedError>() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this resource".to_string(),
        )
    } else if err.status().is_server_error() {
        return ApiError::internal(&err).into_response();
    } else {
        let status = err.status();
        // Client errors raised by the framework (for instance a body cut off at the limit).
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        (status, code, err.to_string())
    };
    problem_response(status, code, detail)
}

/// Paths whose answers are the same for everyone and may be cached; every other answer is
/// per-user or carries a token, code or CSRF-bound form, and gets `no-store` unless its
/// handler chose otherwise (RFC 6749 §5.1 asks it of token responses).
const CACHEABLE_PREFIXES: &[&str] = &[
    "/swagger",
    "/openapi.json",
    "/.well-known/",
    "/oauth2/jwks",
    "/oauth2/paserk",
];

/// The policy for HTML that has not set its own: nothing loads from elsewhere; style and
/// scripts only from our own files (the stylesheet, the passkey script); never framed.
const HTML_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";
/// Swagger UI is one page of inline script and style that calls this server's API.
const SWAGGER_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds headers every response should carry: `nosniff`, no referrer, `no-store` where
/// answers are personal, HSTS when served over https (`hsts`), and frame protection and a
/// content security policy on every HTML answer.
pub fn secure_headers(mut resp: Response, path: &str, hsts: bool) -> Response {
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // No allocation: this runs on every response.
            v.trim_start()
                .as_bytes()
                .get(..9)
                .is_some_and(|m| m.eq_ignore_ascii_case(b"text/html"))
        });
    let headers = resp.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(header::CACHE_CONTROL)
        && !CACHEABLE_PREFIXES.iter().any(|p| path.starts_with(p))
    {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if hsts {
        // RFC 6797: browsers remember to use https only.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if html {
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            let csp = if path.starts_with("/swagger") {
                SWAGGER_CSP
            } else {
                HTML_CSP
            };
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            );
        }
    }
    resp
}

/// The methods each route answers, for the `Allow` header every 405 must carry (RFC 9110
/// §15.5.6). Built once from the served spec and the routes outside it.
#[derive(Debug, Default)]
pub struct AllowIndex {
    /// Path template segments (`{id}` matches any one segment) and the `Allow` value.
    routes: Vec<(Vec<String>, HeaderValue)>,
}

impl AllowIndex {
    /// From the spec's `paths` plus `extra` (path, methods) routes that are not in it.
    pub fn new(spec: &serde_json::Value, extra: &[(&str, &[&str])]) -> Self {
        let mut by_path: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, ops) in paths {
                let methods = ops
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                by_path.push((path.clone(), methods));
            }
        }
        for (path, methods) in extra {
            by_path.push((
                path.to_string(),
                methods.iter().map(|m| m.to_string()).collect(),
            ));
        }
        let routes = by_path
            .into_iter()
            .filter_map(|(path, mut methods)| {
                if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                    methods.push("HEAD".into());
                }
                let value = HeaderValue::from_str(&methods.join(", ")).ok()?;
                let segments = path
                    .trim_end_matches('/')
                    .split('/')
                    .map(str::to_string)
                    .collect();
                Some((segments, value))
            })
            .collect();
        Self { routes }
    }

    fn allow(&self, path: &str) -> Option<&HeaderValue> {
        let asked: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.routes
            .iter()
            .find(|(segments, _)| {
                segments.len() == asked.len()
                    && segments
                        .iter()
                        .zip(&asked)
                        .all(|(s, a)| s == a || (s.starts_with('{') && s.ends_with('}')))
            })
            .map(|(_, v)| v)
    }
}

/// The outermost layer: body guard, error mapping, headers and access log.
/// What the outermost layer needs, built once.
pub struct Outer {
    pub limits: BodyLimits,
    pub metrics: std::sync::Arc<crate::service::metrics::Metrics>,
    /// Send `Strict-Transport-Security` (the public URL is https).
    pub hsts: bool,
    /// The documents, for the `Allow` index (built off the start-up path).
    pub(crate) docs: std::sync::Arc<super::LazyDocs>,
    /// For CORS: the origins clients registered.
    pub clients: crate::service::clients::Clients,
}

pub async fn outer<E: Endpoint>(ep: &E, req: Request, ctx: &Outer) -> poem::Result<Response> {
    let Outer {
        limits,
        metrics,
        hsts,
        docs,
        clients,
    } = ctx;
    let (limits, hsts) = (*limits, *hsts);
    let started = Instant::now();
    let cors = super::cors::CorsRequest::of(&req);
    if let Some(cors) = &cors
        && super::cors::CorsRequest::is_preflight(&req)
    {
        let resp = secure_headers(cors.preflight(clients).await, req.uri().path(), hsts);
        metrics.record_response(resp.status().as_u16(), started.elapsed().as_micros() as u64);
        return Ok(resp);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let flavour = super::compat::Flavour::of_path(&path);
    let mut req = req;
    if let Some(routed) = super::compat::route_path(&path) {
        let target = match req.uri().query() {
            Some(q) => format!("{routed}?{q}"),
            None => routed.to_string(),
        };
        if let Ok(uri) = target.parse() {
            *req.uri_mut() = uri;
        }
    }
    let resp = match guard_body(ep, req, limits, flavour.is_some()).await {
        Ok(resp) => resp,
        Err(err) => flavour
            .and_then(|f| super::compat::framework_error(f, &err))
            .unwrap_or_else(|| error_to_response(err)),
    };
    let mut resp = secure_headers(resp, &path, hsts);
    if let Some(cors) = &cors {
        cors.decorate(&mut resp, clients).await;
    }
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::ALLOW)
        && let Some(methods) = docs.get().allow.allow(&path)
    {
        resp.headers_mut().insert(header::ALLOW, methods.clone());
    }
    let micros = started.elapsed().as_micros() as u64;
    metrics.record_response(resp.status().as_u16(), micros);
    tracing::info!(
        target: "portcullis::access",
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        micros,
    );
    Ok(resp)
}
