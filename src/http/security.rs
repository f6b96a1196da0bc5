//! How operations declare authentication. Extraction only takes the raw credential; checking
//! it is the sessions service's job, so every failure gets the same precise problem answer.

use poem_openapi::{
    OAuthScopes, SecurityScheme,
    auth::{ApiKey, Bearer},
};

use crate::service::Credential;

/// `Authorization: Bearer <PASETO access token or personal API key>`.
#[derive(SecurityScheme)]
#[oai(
    ty = "bearer",
    bearer_format = "PASETO v4.public access token, or a personal API key (pcl_…)"
)]
pub struct BearerAuth(Bearer);

/// `X-Api-Key: <personal API key>`.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "X-Api-Key", key_in = "header")]
pub struct ApiKeyAuth(ApiKey);

/// Scopes the Swagger UI sign-in asks for.
#[derive(OAuthScopes)]
pub enum SwaggerScopes {
    /// Call the native API as yourself.
    #[oai(rename = "api")]
    Api,
}

/// Sign in through this server from Swagger UI ("Authorize"): the authorization code flow
/// with PKCE, using the built-in public client `portcullis-swagger`.
#[derive(SecurityScheme)]
#[oai(
    ty = "oauth2",
    flows(authorization_code(
        authorization_url = "/oauth2/authorize",
        token_url = "/oauth2/token",
        scopes = "SwaggerScopes"
    ))
)]
pub struct OAuth2Auth(Bearer);

/// Any of the credentials. When all are missing the request is answered
/// `401 missing_credentials`.
#[derive(SecurityScheme)]
pub enum Auth {
    Bearer(BearerAuth),
    ApiKey(ApiKeyAuth),
    OAuth2(OAuth2Auth),
}

impl Auth {
    pub fn credential(self) -> Credential {
        match self {
            Auth::Bearer(b) => Credential::Bearer(b.0.token),
            Auth::ApiKey(k) => Credential::ApiKey(k.0.key),
            Auth::OAuth2(b) => Credential::Bearer(b.0.token),
        }
    }
}
