//! How operations declare authentication. Extraction only takes the raw credential; checking
//! it is the sessions service's job, so every failure gets the same precise problem answer.

use poem_openapi::{
    SecurityScheme,
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

/// Either credential. When both are missing the request is answered `401 missing_credentials`.
#[derive(SecurityScheme)]
pub enum Auth {
    Bearer(BearerAuth),
    ApiKey(ApiKeyAuth),
}

impl Auth {
    pub fn credential(self) -> Credential {
        match self {
            Auth::Bearer(b) => Credential::Bearer(b.0.token),
            Auth::ApiKey(k) => Credential::ApiKey(k.0.key),
        }
    }
}
