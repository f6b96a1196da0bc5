//! OpenID Connect and discovery: `/oauth2/jwks`, `/oauth2/paserk`, `/oauth2/userinfo`,
//! `/oauth2/logout`, `/.well-known/openid-configuration` and
//! `/.well-known/oauth-authorization-server` (RFC 8414).

use poem::{
    Endpoint, Request, Response,
    http::{StatusCode, header},
};
use serde_json::{Value, json};

use super::no_store_json;
use crate::{domain::Scope, service::Services};

/// Public JSON that caches may keep briefly.
fn public_json(body: &Value) -> Response {
    Response::builder()
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(body.to_string())
}

/// The discovery metadata: exactly what this server does.
pub fn metadata(services: &Services) -> Value {
    let issuer = &services.public_url;
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "device_authorization_endpoint": format!("{issuer}/oauth2/device_authorization"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth2/par"),
        "registration_endpoint": format!("{issuer}/oauth2/register"),
        // RFC 9126 §5: individual clients may still require it.
        "require_pushed_authorization_requests": false,
        "paserk_uri": format!("{issuer}/oauth2/paserk"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": crate::service::clients::GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": crate::token::jwt::ID_TOKEN_ALGS,
        // `api`: the native API as the signed-in user (Swagger UI asks for it).
        "scopes_supported": crate::domain::OIDC_SCOPES.iter().copied().chain(["api"]).collect::<Vec<_>>(),
        "acr_values_supported": crate::service::mfa::acr::SUPPORTED,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "sid", "amr", "acr", "name", "preferred_username", "updated_at", "email", "email_verified"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        // Request objects are refused (`request_not_supported`, `request_uri_not_supported`);
        // request_uri_parameter_supported defaults to true, so it is said explicitly.
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent"],
        // OIDC Back-Channel Logout 1.0 §2.1: logout tokens carry `sid`.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    })
}

pub struct Discovery {
    pub services: Services,
}

impl Endpoint for Discovery {
    type Output = Response;
    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(public_json(&metadata(&self.services)))
    }
}

pub struct Jwks {
    pub services: Services,
}

impl Endpoint for Jwks {
    type Output = Response;
    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(match self.services.oauth2.id_tokens().jwks().await {
            Ok(keys) => public_json(&keys),
            Err(e) => {
                tracing::error!(error = %e, "JWKS failed");
                no_store_json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": "server_error"}),
                )
            }
        })
    }
}

/// The PASETO v4.public keys access tokens are signed with, as PASERK, for offline checks.
pub struct Paserk {
    pub services: Services,
}

impl Endpoint for Paserk {
    type Output = Response;
    async fn call(&self, _req: Request) -> poem::Result<Response> {
        let keys: Vec<Value> = self
            .services
            .sessions
            .published_access_token_keys()
            .into_iter()
            .map(|k| json!({"kid": k.kid, "paserk": k.paserk, "version": "v4", "purpose": "public", "active": k.active}))
            .collect();
        Ok(public_json(
            &json!({"issuer": self.services.public_url, "keys": keys}),
        ))
    }
}

/// `GET|POST /oauth2/userinfo` (OIDC Core §5.3) with the access token as a Bearer token.
pub struct UserInfo {
    pub services: Services,
}

fn bearer_error(status: StatusCode, error: &str, description: &str) -> Response {
    // RFC 6750 §3.
    let mut resp = no_store_json(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "Bearer error=\"{error}\", error_description=\"{description}\""
    )) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

impl Endpoint for UserInfo {
    type Output = Response;
    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let mut token = req
            .header(header::AUTHORIZATION)
            .and_then(crate::http::bearer_token)
            .unwrap_or_default()
            .to_string();
        // RFC 6750 §2.2: or as `access_token` in a form-encoded POST body.
        let form_post = req.method() == poem::http::Method::POST
            && req
                .content_type()
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if token.is_empty() && form_post {
            let body = req.take_body().into_bytes().await.unwrap_or_default();
            token = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
        }
        if token.is_empty() {
            let mut resp = no_store_json(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_request", "error_description": "send the access token as Authorization: Bearer (or access_token in a form POST)"}),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return Ok(resp);
        }
        let info = match self.services.sessions.introspect(&token).await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "userinfo failed");
                return Ok(no_store_json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": "server_error"}),
                ));
            }
        };
        let Some(info) = info.filter(|i| i.token_type == "Bearer") else {
            return Ok(bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is invalid, expired or revoked",
            ));
        };
        let scope = Scope::parse(&info.scope).unwrap_or_default();
        let Some(user) = info.user.filter(|_| scope.contains("openid")) else {
            return Ok(bearer_error(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the token was not granted the openid scope",
            ));
        };
        let mut body = json!({"sub": user.id});
        for (k, v) in crate::service::oauth2::user_claims(&user, &scope) {
            body[k] = v;
        }
        Ok(no_store_json(StatusCode::OK, &body))
    }
}
