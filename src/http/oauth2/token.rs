//! `POST /oauth2/token` (RFC 6749 §3.2), `/oauth2/introspect` (RFC 7662) and
//! `/oauth2/revoke` (RFC 7009).

use poem::{Endpoint, Request, Response, http::StatusCode};
use serde_json::{Map, Value, json};

use super::{client_form, no_store_json, oauth_error};
use crate::service::{
    Services,
    oauth2::{OAuthError, PresentedClient, TokenRequest},
};

pub struct TokenEndpoint {
    pub services: Services,
}

impl Endpoint for TokenEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let result = async {
            let (client, params) = client_form(&mut req).await?;
            let origin = crate::http::origin(&req, self.services.trust_forwarded_for, "oauth2");
            self.services
                .oauth2
                .token(TokenRequest {
                    params,
                    client,
                    origin,
                })
                .await
        }
        .await;
        Ok(match result {
            Ok(t) => {
                let mut body = json!({
                    "access_token": t.access_token,
                    "token_type": "Bearer",
                    "expires_in": t.expires_in,
                    "scope": t.scope,
                });
                if let Some(r) = t.refresh_token {
                    body["refresh_token"] = json!(r);
                }
                if let Some(id) = t.id_token {
                    body["id_token"] = json!(id);
                }
                no_store_json(StatusCode::OK, &body)
            }
            Err(e) => oauth_error(&e),
        })
    }
}

/// The shared shape of introspection and revocation requests: client credentials and a
/// required `token` parameter (RFC 7662 §2.1, RFC 7009 §2.1).
async fn token_request(req: &mut Request) -> Result<(PresentedClient, String), OAuthError> {
    let (client, mut params) = client_form(req).await?;
    let token = params
        .remove("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::InvalidRequest("missing `token`".into()))?;
    Ok((client, token))
}

pub struct IntrospectEndpoint {
    pub services: Services,
}

impl Endpoint for IntrospectEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let result = async {
            let (client, token) = token_request(&mut req).await?;
            self.services.oauth2.introspect(&client, &token).await
        }
        .await;
        Ok(match result {
            Ok(None) => no_store_json(StatusCode::OK, &json!({"active": false})),
            Ok(Some(info)) => {
                let mut body = Map::new();
                body.insert("active".into(), json!(true));
                body.insert("scope".into(), json!(info.scope));
                body.insert("sub".into(), json!(info.sub));
                body.insert("exp".into(), json!(info.exp));
                body.insert("iat".into(), json!(info.iat));
                body.insert("token_type".into(), json!(info.token_type));
                body.insert("iss".into(), json!(self.services.public_url));
                if let Some(c) = info.client_id {
                    body.insert("client_id".into(), json!(c));
                }
                if let Some(u) = &info.user {
                    body.insert("username".into(), json!(u.username));
                }
                if let Some(a) = info.aud {
                    body.insert("aud".into(), json!(a));
                }
                if let Some(j) = info.jti {
                    body.insert("jti".into(), json!(j));
                }
                no_store_json(StatusCode::OK, &Value::Object(body))
            }
            Err(e) => oauth_error(&e),
        })
    }
}

pub struct RevokeEndpoint {
    pub services: Services,
}

impl Endpoint for RevokeEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let result = async {
            let (client, token) = token_request(&mut req).await?;
            self.services.oauth2.revoke(&client, &token).await
        }
        .await;
        Ok(match result {
            // RFC 7009 §2.2: 200 whether or not the token was known.
            Ok(()) => no_store_json(StatusCode::OK, &json!({})),
            Err(e) => oauth_error(&e),
        })
    }
}
