//! `POST /oauth2/device_authorization` (RFC 8628 §3.1) and `POST /oauth2/par` (RFC 9126 §2):
//! client-authenticated form posts that answer JSON, like the token endpoint.

use poem::{Endpoint, Request, Response, http::StatusCode};
use serde_json::json;

use super::{client_form, no_store_json, oauth_error};
use crate::service::{Services, oauth2::authorize::AuthorizeParams};

pub struct DeviceAuthorizationEndpoint {
    pub services: Services,
}

impl Endpoint for DeviceAuthorizationEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let result = async {
            let (client, params) = client_form(&mut req).await?;
            self.services
                .oauth2
                .begin_device_authorization(&client, params.get("scope").map(String::as_str))
                .await
        }
        .await;
        Ok(match result {
            // §3.2.
            Ok(d) => no_store_json(
                StatusCode::OK,
                &json!({
                    "device_code": d.device_code,
                    "user_code": d.user_code,
                    "verification_uri": d.verification_uri,
                    "verification_uri_complete": d.verification_uri_complete,
                    "expires_in": d.expires_in,
                    "interval": d.interval,
                }),
            ),
            Err(e) => oauth_error(&e),
        })
    }
}

pub struct PushedAuthorizationEndpoint {
    pub services: Services,
}

impl Endpoint for PushedAuthorizationEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let result = async {
            let (client, params) = client_form(&mut req).await?;
            self.services
                .oauth2
                .push_authorization(&client, AuthorizeParams::from_map(&params))
                .await
        }
        .await;
        Ok(match result {
            // RFC 9126 §2.2: 201 with the request_uri and its lifetime.
            Ok((request_uri, expires_in)) => no_store_json(
                StatusCode::CREATED,
                &json!({"request_uri": request_uri, "expires_in": expires_in}),
            ),
            Err(e) => oauth_error(&e),
        })
    }
}
