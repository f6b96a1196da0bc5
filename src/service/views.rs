//! What services hand to their callers instead of stored records: the same facts without the
//! secrets (a user's password hash, API key hash and sealed key), so no caller — the HTTP
//! layer above all — can serialise one by mistake.

use crate::{
    domain::Role,
    store::records::{AccessTokenFormat, ClientRecord, UserRecord},
};

/// A user account, without its secrets.
#[derive(Debug, Clone)]
pub struct UserView {
    /// Random UUID; the `sub` of every token.
    pub id: String,
    /// Sequential number (1, 2, …), which the account-API document exposes as `id`.
    pub number: u64,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub email_verified: bool,
    pub roles: Vec<Role>,
    pub disabled: bool,
    /// Whether a personal API key has been issued.
    pub has_api_key: bool,
    /// ETag of the stored avatar, if any.
    pub avatar_etag: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserView {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The display name, or the username when there is none.
    pub fn shown_name(&self) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| self.username.clone())
    }
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            number: u.number,
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            email_verified: u.email_verified,
            roles: u.roles.clone(),
            disabled: u.disabled,
            has_api_key: u.api_key_hash.is_some(),
            avatar_etag: u.avatar_etag.clone(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self::from(&u)
    }
}

/// A registered OAuth client, without its secrets (the secret's hash and sealed form, the
/// registration access token's hash).
#[derive(Debug, Clone)]
pub struct ClientView {
    pub client_id: String,
    /// The user (developer) who manages it.
    pub owner_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Confidential clients authenticate with a secret; public ones use PKCE.
    pub confidential: bool,
    pub scopes: Vec<String>,
    /// `id_token_signed_response_alg`, when not the default (RS256).
    pub id_token_alg: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub require_pushed_authorization_requests: bool,
    pub require_mfa: bool,
    pub access_token_format: AccessTokenFormat,
    /// Its secret was imported shorter than today's minimum (to be rotated).
    pub legacy_short_secret: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&ClientRecord> for ClientView {
    fn from(c: &ClientRecord) -> Self {
        Self {
            client_id: c.client_id.clone(),
            owner_id: c.owner_id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            grant_types: c.grant_types.clone(),
            confidential: c.confidential,
            scopes: c.scopes.clone(),
            id_token_alg: c.id_token_alg.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            allowed_origins: c.allowed_origins.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            require_mfa: c.require_mfa,
            access_token_format: c.access_token_format,
            legacy_short_secret: c.legacy_short_secret,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<ClientRecord> for ClientView {
    fn from(c: ClientRecord) -> Self {
        Self::from(&c)
    }
}
