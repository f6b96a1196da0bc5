//! `POST /oauth2/register` (Dynamic Client Registration, RFC 7591) and
//! `GET|PUT|DELETE /oauth2/register/{client_id}` (RFC 7592), in the RFCs' wire format:
//! JSON metadata in and out, `{error, error_description}` errors (RFC 7591 §3.2.2), Bearer
//! tokens per RFC 6750.

use poem::{
    Endpoint, Request, Response,
    http::{Method, StatusCode, header},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::no_store_json;
use crate::{
    service::views::ClientView,
    service::{
        ServiceError, Services,
        clients::{NewClient, confidential_from},
        registration::Registrar,
        sessions::Credential,
    },
};

/// Client metadata as RFC 7591 §2 names it (plus OIDC Registration's logout and signing
/// fields, and our documented extensions `allowed_origins` and `access_token_format`).
/// Unknown fields are ignored (§2: "the authorization server MUST ignore any client
/// metadata sent by the client that it does not understand").
#[derive(Debug, Default, Deserialize)]
struct ClientMetadata {
    client_id: Option<String>,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    post_logout_redirect_uris: Option<Vec<String>>,
    backchannel_logout_uri: Option<String>,
    id_token_signed_response_alg: Option<String>,
    allowed_origins: Option<Vec<String>>,
    access_token_format: Option<String>,
    require_pushed_authorization_requests: Option<bool>,
}

/// Why a registration request failed, in RFC 7591 §3.2.2 / RFC 6750 §3.1 terms.
fn registration_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = no_store_json(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = header::HeaderValue::from_str(&format!("Bearer error=\"{error}\""))
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn metadata_error(description: &str) -> Response {
    registration_error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// One path from service errors to this protocol's answers.
fn service_error(e: ServiceError) -> Response {
    match e {
        ServiceError::Invalid(inv) => registration_error(
            StatusCode::BAD_REQUEST,
            if inv.field.contains("redirect_uri") {
                "invalid_redirect_uri"
            } else {
                "invalid_client_metadata"
            },
            &format!("{}: {}", inv.field, inv.message),
        ),
        ServiceError::InvalidToken => registration_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is invalid, expired, used up, or not for this client",
        ),
        ServiceError::Forbidden(_, why) => {
            registration_error(StatusCode::FORBIDDEN, "insufficient_scope", &why)
        }
        ServiceError::InvalidScope(why) => metadata_error(&why),
        ServiceError::ClientIdTaken => metadata_error("that client_id is already registered"),
        ServiceError::Unavailable(_) => {
            let mut resp = registration_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server cannot store data right now; retry shortly",
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(crate::service::oauth2::error::STORAGE_RETRY_AFTER),
            );
            resp
        }
        other => {
            tracing::error!(error = %other, "client registration failed");
            registration_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "an unexpected error occurred; it has been logged",
            )
        }
    }
}

/// The bearer token of the request.
fn bearer(req: &Request) -> Option<String> {
    req.header(header::AUTHORIZATION)
        .and_then(crate::http::bearer_token)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// RFC 6750 §3.1: no token at all is a bare `WWW-Authenticate: Bearer` 401.
fn token_missing() -> Response {
    let mut resp = no_store_json(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_token", "error_description": "send a developer's access token, an initial access token or the registration access token as Authorization: Bearer"}),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// Reads the JSON metadata and turns it into a client to build.
async fn metadata(
    req: &mut Request,
) -> Result<(ClientMetadata, NewClient, Option<bool>), Response> {
    let json = req
        .content_type()
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(metadata_error("the body must be application/json"));
    }
    let bytes = req
        .take_body()
        .into_bytes()
        .await
        .map_err(|e| metadata_error(&format!("could not read the body: {e}")))?;
    let m: ClientMetadata = serde_json::from_slice(&bytes)
        .map_err(|e| metadata_error(&format!("the metadata is not valid: {e}")))?;
    // RFC 7591 §2.1: only the code flow is offered; response_types must agree with it.
    if let Some(types) = &m.response_types
        && types.iter().any(|t| t != "code")
    {
        return Err(metadata_error("response_types: only `code` is supported"));
    }
    let confidential =
        confidential_from(None, m.token_endpoint_auth_method.as_deref()).map_err(service_error)?;
    let asked = m.token_endpoint_auth_method.as_ref().map(|_| confidential);
    let grant_types = m.grant_types.clone().unwrap_or_else(|| {
        // §2: the default grant is authorization_code; we add refresh_token, which the code
        // grant is useless without for long-lived apps.
        vec!["authorization_code".into(), "refresh_token".into()]
    });
    let new = NewClient {
        require_mfa: false,
        client_id: None,
        name: m
            .client_name
            .clone()
            .unwrap_or_else(|| "Dynamically registered client".into()),
        redirect_uris: m.redirect_uris.clone().unwrap_or_default(),
        post_logout_redirect_uris: m.post_logout_redirect_uris.clone().unwrap_or_default(),
        allowed_origins: m.allowed_origins.clone().unwrap_or_default(),
        grant_types,
        confidential,
        scopes: m
            .scope
            .as_deref()
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        secret: None,
        id_token_alg: m.id_token_signed_response_alg.clone(),
        show_secret_again: false,
        legacy_short_secret: false,
        backchannel_logout_uri: m.backchannel_logout_uri.clone(),
        require_pushed_authorization_requests: m
            .require_pushed_authorization_requests
            .unwrap_or(false),
        access_token_format: m.access_token_format.clone(),
    };
    Ok((m, new, asked))
}

/// The registered metadata (RFC 7591 §3.2.1, RFC 7592 §3).
fn client_information(services: &Services, c: &ClientView) -> Value {
    let mut v = json!({
        "client_id": c.client_id,
        "client_id_issued_at": c.created_at,
        "client_name": c.name,
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types,
        "response_types": if c.grant_types.iter().any(|g| g == "authorization_code") { json!(["code"]) } else { json!([]) },
        "token_endpoint_auth_method": if c.confidential { "client_secret_basic" } else { "none" },
        "scope": c.scopes.join(" "),
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "id_token_signed_response_alg": c.id_token_alg.as_deref().unwrap_or("RS256"),
        "allowed_origins": c.allowed_origins,
        "access_token_format": c.access_token_format.as_str(),
        "require_pushed_authorization_requests": c.require_pushed_authorization_requests,
        "registration_client_uri": format!("{}/oauth2/register/{}", services.public_url, c.client_id),
    });
    if let Some(uri) = &c.backchannel_logout_uri {
        v["backchannel_logout_uri"] = json!(uri);
        v["backchannel_logout_session_required"] = json!(true);
    }
    if c.confidential {
        // §3.2.1: 0 means the secret does not expire.
        v["client_secret_expires_at"] = json!(0);
    }
    v
}

/// `POST /oauth2/register`.
pub struct RegisterEndpoint {
    pub services: Services,
}

impl Endpoint for RegisterEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some(token) = bearer(&req) else {
            return Ok(token_missing());
        };
        let origin = crate::http::origin(&req, self.services.trust_forwarded_for, "oauth2");
        let (_, new, _) = match metadata(&mut req).await {
            Ok(m) => m,
            Err(resp) => return Ok(resp),
        };
        // A developer's own access token, or else an initial access token.
        let registrar = match self
            .services
            .sessions
            .authenticate(Credential::Bearer(token.clone()))
            .await
        {
            Ok(principal) => Registrar::Developer(Box::new(principal)),
            Err(ServiceError::InvalidToken) => Registrar::InitialAccessToken(token),
            Err(e) => return Ok(service_error(e)),
        };
        Ok(
            match self
                .services
                .clients
                .register_dynamic(registrar, new, &origin)
                .await
            {
                Ok(r) => {
                    let mut body = client_information(&self.services, &r.client);
                    body["registration_access_token"] = json!(r.registration_access_token);
                    if let Some(secret) = r.client_secret {
                        body["client_secret"] = json!(secret);
                    }
                    no_store_json(StatusCode::CREATED, &body)
                }
                Err(e) => service_error(e),
            },
        )
    }
}

/// `GET|PUT|DELETE /oauth2/register/{client_id}` (RFC 7592 §2).
pub struct ManageEndpoint {
    pub services: Services,
}

impl Endpoint for ManageEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let client_id = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(token) = bearer(&req) else {
            return Ok(token_missing());
        };
        let clients = &self.services.clients;
        let method = req.method().clone();
        let origin = crate::http::origin(&req, self.services.trust_forwarded_for, "oauth2");
        Ok(if method == Method::GET {
            match clients.registered_client(&client_id, &token).await {
                Ok(c) => no_store_json(StatusCode::OK, &client_information(&self.services, &c)),
                Err(e) => service_error(e),
            }
        } else if method == Method::PUT {
            let (m, new, asked) = match metadata(&mut req).await {
                Ok(m) => m,
                Err(resp) => return Ok(resp),
            };
            // §2.2: the body names the client it replaces.
            if m.client_id.as_deref() != Some(client_id.as_str()) {
                return Ok(metadata_error("client_id must be this client's"));
            }
            match clients
                .replace_registered(&client_id, &token, new, asked, &origin)
                .await
            {
                Ok(c) => no_store_json(StatusCode::OK, &client_information(&self.services, &c)),
                Err(e) => service_error(e),
            }
        } else {
            match clients.delete_registered(&client_id, &token, &origin).await {
                Ok(()) => Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .header(header::CACHE_CONTROL, "no-store")
                    .finish(),
                Err(e) => service_error(e),
            }
        })
    }
}
