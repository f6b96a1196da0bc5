//! `/api/v1/admin/upstreams`: the identity providers people may sign in with (admins).

use std::collections::HashMap;

use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::{ApiTags, me::principal, text::Text};
use crate::{
    http::{error::Result, security::Auth},
    service::{
        Services,
        upstream::{UpstreamInput, UpstreamView},
    },
};

pub struct UpstreamsApi {
    pub services: Services,
}

/// An upstream identity provider (its client secret is never shown).
#[derive(Object, Debug, Clone)]
pub struct Upstream {
    pub id: String,
    /// Shown on the login page's button: "Sign in with {name}".
    pub name: String,
    /// `oidc` or `oauth2`.
    pub protocol: String,
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    pub scope: String,
    /// `link-only`, `create` or `create-if-registration-open`.
    pub accounts: String,
    /// The provider's own second factor satisfies ours (its `amr`/`acr` say so).
    pub trust_mfa: bool,
    /// The provider's `email_verified` marks a new account's address verified.
    pub trust_email: bool,
    pub enabled: bool,
    /// Register this redirect URI at the provider.
    pub redirect_uri: String,
}

impl From<UpstreamView> for Upstream {
    fn from(v: UpstreamView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            protocol: v.protocol.into(),
            issuer: v.issuer,
            authorization_endpoint: v.authorization_endpoint,
            token_endpoint: v.token_endpoint,
            userinfo_endpoint: v.userinfo_endpoint,
            client_id: v.client_id,
            scope: v.scope,
            accounts: v.accounts.into(),
            trust_mfa: v.trust_mfa,
            trust_email: v.trust_email,
            enabled: v.enabled,
            redirect_uri: v.redirect_uri,
        }
    }
}

/// An upstream to add or change. With a `preset` (`github`, `gitlab`, `google`, `microsoft`)
/// only `client_id` and `client_secret` are needed; every field given overrides the preset.
#[derive(Object, Debug)]
pub struct UpstreamBody {
    pub name: Option<Text>,
    pub preset: Option<Text>,
    /// `oidc` (the default without a preset) or `oauth2`.
    pub protocol: Option<Text>,
    /// OpenID Connect: the issuer (its discovery document gives the endpoints).
    pub issuer: Option<Text>,
    /// Microsoft: the tenant (default `common`).
    pub tenant: Option<Text>,
    pub authorization_endpoint: Option<Text>,
    pub token_endpoint: Option<Text>,
    pub userinfo_endpoint: Option<Text>,
    pub client_id: Text,
    /// Required when adding; an update without it keeps the stored one. Stored sealed.
    pub client_secret: Option<Text>,
    pub scope: Option<Text>,
    /// Which claim (or userinfo member) holds each detail: `subject`, `username`, `email`,
    /// `email_verified`, `name`, `picture`.
    pub claims: Option<HashMap<String, String>>,
    /// `link-only`, `create` or `create-if-registration-open` (the default).
    pub accounts: Option<Text>,
    pub trust_mfa: Option<bool>,
    pub trust_email: Option<bool>,
    pub enabled: Option<bool>,
}

#[derive(ApiResponse)]
enum Removed {
    /// Removed, with every identity linked through it.
    #[oai(status = 204)]
    NoContent,
}

fn text(t: Option<Text>) -> Option<String> {
    t.map(|t| t.0)
}

#[OpenApi(tag = "ApiTags::Admin")]
impl UpstreamsApi {
    /// List upstream identity providers
    #[oai(
        path = "/api/v1/admin/upstreams",
        method = "get",
        operation_id = "adminListUpstreams"
    )]
    async fn list(&self, auth: Auth) -> Result<Json<Vec<Upstream>>> {
        let p = principal(&self.services, auth).await?;
        let all = self.services.upstreams.list(&p).await?;
        Ok(Json(all.into_iter().map(Upstream::from).collect()))
    }

    /// Add or change an upstream identity provider
    ///
    /// Its button appears on the login page at once (when enabled). Audited
    /// (`upstream_changed`).
    #[oai(
        path = "/api/v1/admin/upstreams/:id",
        method = "put",
        operation_id = "adminPutUpstream"
    )]
    async fn put(
        &self,
        req: &poem::Request,
        auth: Auth,
        id: Path<String>,
        body: Json<UpstreamBody>,
    ) -> Result<Json<Upstream>> {
        let p = principal(&self.services, auth).await?;
        let b = body.0;
        let input = UpstreamInput {
            id: id.0,
            name: text(b.name),
            preset: text(b.preset),
            protocol: text(b.protocol),
            issuer: text(b.issuer),
            tenant: text(b.tenant),
            authorization_endpoint: text(b.authorization_endpoint),
            token_endpoint: text(b.token_endpoint),
            userinfo_endpoint: text(b.userinfo_endpoint),
            client_id: b.client_id.0,
            client_secret: text(b.client_secret),
            scope: text(b.scope),
            claims: b.claims.unwrap_or_default(),
            accounts: text(b.accounts),
            trust_mfa: b.trust_mfa,
            trust_email: b.trust_email,
            enabled: b.enabled,
        };
        let origin = crate::http::origin(req, self.services.trust_forwarded_for, "admin");
        let view = self.services.upstreams.put(&p, input, &origin).await?;
        Ok(Json(view.into()))
    }

    /// Remove an upstream identity provider
    ///
    /// Unlinks every identity linked through it (accounts that had no other way to sign in
    /// keep the password reset). Audited.
    #[oai(
        path = "/api/v1/admin/upstreams/:id",
        method = "delete",
        operation_id = "adminDeleteUpstream"
    )]
    async fn delete(&self, req: &poem::Request, auth: Auth, id: Path<String>) -> Result<Removed> {
        let p = principal(&self.services, auth).await?;
        let origin = crate::http::origin(req, self.services.trust_forwarded_for, "admin");
        self.services.upstreams.delete(&p, &id, &origin).await?;
        Ok(Removed::NoContent)
    }
}
