//! `/api/v1/clients`: developers manage their OAuth clients.

use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::{ApiTags, me::principal, text::Text};
use crate::{
    clock::rfc3339,
    http::{error::Result, security::Auth},
    service::views::ClientView,
    service::{
        Services,
        clients::{ClientChanges, NewClient},
    },
};

pub struct ClientsApi {
    pub services: Services,
}

/// An OAuth client.
#[derive(Object, Debug)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// Exact-match redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Where RP-Initiated Logout may return the browser (exact match), apart from the login
    /// redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins that may call the token, revocation and userinfo endpoints (CORS);
    /// empty means a public client's redirect URI origins.
    pub allowed_origins: Vec<String>,
    /// Allowed grants: `authorization_code`, `refresh_token`, `client_credentials`, `password`.
    pub grant_types: Vec<String>,
    /// Confidential clients authenticate with `client_secret`; public ones use PKCE.
    pub confidential: bool,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// How id_tokens for this client are signed: `RS256`, `EdDSA` or `Ed25519`.
    pub id_token_signed_response_alg: String,
    /// `client_secret_basic` (confidential clients, which may also use `client_secret_post`)
    /// or `none` (public clients).
    pub token_endpoint_auth_method: String,
    /// Where logout tokens are POSTed when a session ends (OIDC Back-Channel Logout 1.0).
    #[oai(skip_serializing_if_is_none)]
    pub backchannel_logout_uri: Option<String>,
    /// Authorization requests must be pushed first (RFC 9126).
    pub require_pushed_authorization_requests: bool,
    /// Users signing in to this client need a second factor (those without one enrol first;
    /// a password-only session is stepped up).
    pub require_mfa: bool,
    /// `paseto` (default) or `jwt` (RFC 9068 access tokens).
    pub access_token_format: String,
    pub created_at: String,
    /// Only in the answers to create and secret rotation: store it now, it is not shown again.
    #[oai(skip_serializing_if_is_none)]
    pub client_secret: Option<String>,
}

impl Client {
    pub fn of(c: &ClientView, secret: Option<String>) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            allowed_origins: c.allowed_origins.clone(),
            grant_types: c.grant_types.clone(),
            confidential: c.confidential,
            scopes: c.scopes.clone(),
            id_token_signed_response_alg: c.id_token_alg.clone().unwrap_or_else(|| "RS256".into()),
            token_endpoint_auth_method: if c.confidential {
                "client_secret_basic".into()
            } else {
                "none".into()
            },
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            require_mfa: c.require_mfa,
            access_token_format: c.access_token_format.as_str().into(),
            created_at: rfc3339(c.created_at),
            client_secret: secret,
        }
    }
}

/// A client to register.
#[derive(Object)]
pub struct CreateClientRequest {
    pub name: Text,
    /// Absolute, no fragment or wildcard, https unless loopback. Needed for
    /// `authorization_code`.
    #[oai(default)]
    pub redirect_uris: Vec<Text>,
    /// Where RP-Initiated Logout may return the browser; same rules as `redirect_uris`.
    #[oai(default)]
    pub post_logout_redirect_uris: Vec<Text>,
    /// Origins (`https://app.example`, no path) of browser apps that call the token,
    /// revocation and userinfo endpoints. Defaults to a public client's redirect URI origins.
    #[oai(default)]
    pub allowed_origins: Vec<Text>,
    /// Defaults to `["authorization_code", "refresh_token"]`.
    #[oai(default)]
    pub grant_types: Vec<Text>,
    /// Defaults to true. Public clients (SPAs, CLIs) get no secret and must use PKCE.
    #[oai(nullable)]
    pub confidential: Option<bool>,
    /// RFC 7591 §2: `client_secret_basic` or `client_secret_post` (a confidential client,
    /// which may use either), or `none` (a public client). Must agree with `confidential`.
    #[oai(nullable)]
    pub token_endpoint_auth_method: Option<Text>,
    /// Defaults to `["openid", "profile", "email", "offline_access"]`.
    #[oai(default)]
    pub scopes: Vec<Text>,
    /// `RS256` (default), `EdDSA` or `Ed25519` (RFC 9864).
    #[oai(nullable)]
    pub id_token_signed_response_alg: Option<Text>,
    /// OIDC Back-Channel Logout 1.0: where logout tokens are POSTed; the rules of
    /// `redirect_uris`.
    #[oai(nullable)]
    pub backchannel_logout_uri: Option<Text>,
    /// RFC 9126 §6: accept only pushed authorization requests. Absent or null: false.
    #[oai(nullable)]
    pub require_pushed_authorization_requests: Option<bool>,
    /// Demand a second factor of every sign-in to this client. Absent or null: false.
    #[oai(nullable)]
    pub require_mfa: Option<bool>,
    /// `paseto` (default) or `jwt` (RFC 9068 access tokens, verifiable with the JWKS).
    #[oai(nullable)]
    pub access_token_format: Option<Text>,
}

/// Client changes; absent (or `null`) fields are left as they are.
#[derive(Object)]
pub struct UpdateClientRequest {
    #[oai(nullable)]
    pub name: Option<Text>,
    #[oai(nullable)]
    pub redirect_uris: Option<Vec<Text>>,
    #[oai(nullable)]
    pub post_logout_redirect_uris: Option<Vec<Text>>,
    #[oai(nullable)]
    pub allowed_origins: Option<Vec<Text>>,
    #[oai(nullable)]
    pub grant_types: Option<Vec<Text>>,
    #[oai(nullable)]
    pub scopes: Option<Vec<Text>>,
    /// An empty string removes it.
    #[oai(nullable)]
    pub backchannel_logout_uri: Option<String>,
    #[oai(nullable)]
    pub require_pushed_authorization_requests: Option<bool>,
    #[oai(nullable)]
    pub require_mfa: Option<bool>,
    #[oai(nullable)]
    pub access_token_format: Option<Text>,
    #[oai(nullable)]
    pub id_token_signed_response_alg: Option<Text>,
}

fn strings(v: Vec<Text>) -> Vec<String> {
    v.into_iter().map(String::from).collect()
}

#[derive(ApiResponse)]
enum Created {
    /// Registered. `client_secret` (confidential clients) is shown only here.
    #[oai(status = 201)]
    Created(Json<Client>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Clients")]
impl ClientsApi {
    /// List my clients
    ///
    /// Needs the developer role (`POST /api/v1/me/developer`).
    #[oai(path = "/api/v1/clients", method = "get", operation_id = "listClients")]
    async fn list(&self, auth: Auth) -> Result<Json<Vec<Client>>> {
        let p = principal(&self.services, auth).await?;
        let clients = self.services.clients.list(&p).await?;
        Ok(Json(clients.iter().map(|c| Client::of(c, None)).collect()))
    }

    /// Register a client
    ///
    /// Needs the developer role. Redirect URIs are checked (absolute, no fragment, no
    /// wildcard, no user info, https unless loopback); `client_credentials` needs a
    /// confidential client.
    #[oai(
        path = "/api/v1/clients",
        method = "post",
        operation_id = "createClient"
    )]
    async fn create(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<CreateClientRequest>,
    ) -> Result<Created> {
        let p = principal(&self.services, auth).await?;
        let body = body.0;
        let (client, secret) = self
            .services
            .clients
            .register(
                &p,
                NewClient {
                    name: body.name.into(),
                    redirect_uris: strings(body.redirect_uris),
                    post_logout_redirect_uris: strings(body.post_logout_redirect_uris),
                    allowed_origins: strings(body.allowed_origins),
                    grant_types: strings(body.grant_types),
                    confidential: crate::service::clients::confidential_from(
                        body.confidential,
                        body.token_endpoint_auth_method.as_deref(),
                    )?,
                    scopes: strings(body.scopes),
                    id_token_alg: body.id_token_signed_response_alg.map(String::from),
                    backchannel_logout_uri: body.backchannel_logout_uri.map(String::from),
                    require_pushed_authorization_requests: body
                        .require_pushed_authorization_requests
                        .unwrap_or(false),
                    require_mfa: body.require_mfa.unwrap_or(false),
                    access_token_format: body.access_token_format.map(String::from),
                    ..NewClient::default()
                },
                &super::origin(&self.services, req),
            )
            .await?;
        Ok(Created::Created(Json(Client::of(&client, secret))))
    }

    /// Get a client
    #[oai(
        path = "/api/v1/clients/:client_id",
        method = "get",
        operation_id = "getClient"
    )]
    async fn get(&self, auth: Auth, client_id: Path<String>) -> Result<Json<Client>> {
        let p = principal(&self.services, auth).await?;
        let client = self.services.clients.get(&p, &client_id).await?;
        Ok(Json(Client::of(&client, None)))
    }

    /// Update a client
    #[oai(
        path = "/api/v1/clients/:client_id",
        method = "patch",
        operation_id = "updateClient"
    )]
    async fn update(
        &self,
        req: &poem::Request,
        auth: Auth,
        client_id: Path<String>,
        body: Json<UpdateClientRequest>,
    ) -> Result<Json<Client>> {
        let p = principal(&self.services, auth).await?;
        let body = body.0;
        let changes = ClientChanges {
            name: body.name.map(String::from),
            redirect_uris: body.redirect_uris.map(strings),
            post_logout_redirect_uris: body.post_logout_redirect_uris.map(strings),
            allowed_origins: body.allowed_origins.map(strings),
            grant_types: body.grant_types.map(strings),
            scopes: body.scopes.map(strings),
            backchannel_logout_uri: body.backchannel_logout_uri,
            require_pushed_authorization_requests: body.require_pushed_authorization_requests,
            require_mfa: body.require_mfa,
            access_token_format: body.access_token_format.map(String::from),
            id_token_alg: body.id_token_signed_response_alg.map(String::from),
        };
        let client = self
            .services
            .clients
            .update(&p, &client_id, changes, &super::origin(&self.services, req))
            .await?;
        Ok(Json(Client::of(&client, None)))
    }

    /// Delete a client
    #[oai(
        path = "/api/v1/clients/:client_id",
        method = "delete",
        operation_id = "deleteClient"
    )]
    async fn delete(
        &self,
        req: &poem::Request,
        auth: Auth,
        client_id: Path<String>,
    ) -> Result<Deleted> {
        let p = principal(&self.services, auth).await?;
        let origin = super::origin(&self.services, req);
        self.services
            .clients
            .delete(&p, &client_id, &origin)
            .await?;
        Ok(Deleted::NoContent)
    }

    /// Rotate a client's secret
    ///
    /// Issues a new `client_secret`, shown only in this answer; the old one stops working.
    #[oai(
        path = "/api/v1/clients/:client_id/secret",
        method = "post",
        operation_id = "rotateClientSecret"
    )]
    async fn rotate_secret(
        &self,
        req: &poem::Request,
        auth: Auth,
        client_id: Path<String>,
    ) -> Result<Json<Client>> {
        let p = principal(&self.services, auth).await?;
        let origin = super::origin(&self.services, req);
        let (client, secret) = self
            .services
            .clients
            .rotate_secret(&p, &client_id, &origin)
            .await?;
        Ok(Json(Client::of(&client, Some(secret))))
    }
}
