//! OAuth 2.0 endpoints under `/oauth2`. They speak the RFCs' wire formats (form-encoded
//! requests, `{error, error_description}` answers), not the native API's problem+json.

mod device;
pub mod oidc;
mod register;
mod token;

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::{
    Request, Response, Route, get,
    http::{StatusCode, header},
    post,
};
use serde_json::{Value, json};

use crate::service::{
    Services,
    oauth2::{OAuthError, PresentedClient},
};

/// The `/oauth2` routes (nested under `/oauth2`).
pub fn routes(services: Services) -> Route {
    let s = || services.clone();
    Route::new()
        .at("/token", post(token::TokenEndpoint { services: s() }))
        .at(
            "/introspect",
            post(token::IntrospectEndpoint { services: s() }),
        )
        .at("/revoke", post(token::RevokeEndpoint { services: s() }))
        .at(
            "/device_authorization",
            post(device::DeviceAuthorizationEndpoint { services: s() }),
        )
        .at(
            "/par",
            post(device::PushedAuthorizationEndpoint { services: s() }),
        )
        .at(
            "/register",
            post(register::RegisterEndpoint { services: s() }),
        )
        .at(
            "/register/:client_id",
            get(register::ManageEndpoint { services: s() })
                .put(register::ManageEndpoint { services: s() })
                .delete(register::ManageEndpoint { services: s() }),
        )
        .at("/jwks", get(oidc::Jwks { services: s() }))
        .at("/paserk", get(oidc::Paserk { services: s() }))
        .at(
            "/userinfo",
            get(oidc::UserInfo { services: s() }).post(oidc::UserInfo { services: s() }),
        )
        .at("/logout", crate::http::pages::logout(s()))
}

/// A JSON answer that must never be cached (RFC 6749 §5.1).
pub fn no_store_json(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::PRAGMA, "no-cache")
        .body(body.to_string())
}

/// An RFC 6749 §5.2 error answer.
pub fn oauth_error(e: &OAuthError) -> Response {
    let description = match e {
        OAuthError::ServerError(_) => {
            "an unexpected error occurred; it has been logged".to_string()
        }
        other => other.to_string(),
    };
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = no_store_json(
        status,
        &json!({"error": e.code(), "error_description": description}),
    );
    if let OAuthError::InvalidClient { basic: true } = e {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"portcullis\""),
        );
    }
    let retry_after = match e {
        OAuthError::Throttled(secs) => Some(*secs),
        OAuthError::Busy(secs) => Some(*secs),
        OAuthError::TemporarilyUnavailable => {
            Some(crate::service::oauth2::error::STORAGE_RETRY_AFTER)
        }
        _ => None,
    };
    if let Some(secs) = retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Reads a form-encoded body (RFC 6749 §3.2): the media type must be
/// `application/x-www-form-urlencoded` and no parameter may appear twice.
pub async fn read_form(
    req: &Request,
    body: poem::Body,
) -> Result<HashMap<String, String>, OAuthError> {
    let form_type = req
        .content_type()
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let bytes = body
        .into_bytes()
        .await
        .map_err(|e| OAuthError::InvalidRequest(format!("could not read the body: {e}")))?;
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter `{k}` appears more than once"
            )));
        }
    }
    Ok(params)
}

/// A client-authenticated form post (the token, introspection, revocation, device and PAR
/// endpoints): the client's credentials and the remaining parameters.
pub async fn client_form(
    req: &mut Request,
) -> Result<(PresentedClient, HashMap<String, String>), OAuthError> {
    let body = req.take_body();
    let mut params = read_form(req, body).await?;
    let client = presented_client(req, &mut params)?;
    Ok((client, params))
}

/// Client credentials from `Authorization: Basic` or the body (RFC 6749 §2.3.1), removing them
/// from `params`. Using both methods at once is an error.
pub fn presented_client(
    req: &Request,
    params: &mut HashMap<String, String>,
) -> Result<PresentedClient, OAuthError> {
    let body_id = params.remove("client_id");
    let body_secret = params.remove("client_secret");
    let basic = req.header(header::AUTHORIZATION).and_then(|h| {
        h.strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
    });
    let Some(encoded) = basic else {
        return Ok(PresentedClient {
            client_id: body_id,
            client_secret: body_secret,
            via_basic: false,
        });
    };
    let bad = || OAuthError::InvalidClient { basic: true };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // The id and secret are form-urlencoded before base64 (RFC 6749 §2.3.1).
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .next()
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if body_secret.is_some() {
        return Err(OAuthError::InvalidRequest(
            "use one client authentication method, not two".into(),
        ));
    }
    if body_id.as_deref().is_some_and(|b| b != id) {
        return Err(OAuthError::InvalidRequest(
            "client_id differs between the header and the body".into(),
        ));
    }
    Ok(PresentedClient {
        client_id: Some(id),
        client_secret: Some(secret),
        via_basic: true,
    })
}
