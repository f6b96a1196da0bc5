//! The OAuth 2.0 token endpoint's logic (RFC 6749 §3.2, §4, §5), introspection (RFC 7662)
//! and revocation (RFC 7009). One file per grant type. The HTTP layer parses the form and
//! renders [`OAuthError`]; everything else happens here.

mod authorization_code;
pub mod authorize;
pub mod backchannel;
mod client_credentials;
pub mod device;
pub mod error;
mod identity_code;
mod password;
mod refresh_token;

use std::collections::HashMap;

pub use error::OAuthError;

use super::{Accounts, Sessions, TokenInfo, clients::Clients};
use crate::store::Store;
use crate::{
    domain::Scope,
    store::records::{AccessTokenFormat, ClientRecord},
};

/// Client credentials as presented (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Default)]
pub struct PresentedClient {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The credentials came in an `Authorization: Basic` header (errors then carry
    /// `WWW-Authenticate`, RFC 6749 §5.2).
    pub via_basic: bool,
}

/// A token request: the form parameters (each at most once) and the client credentials.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub params: HashMap<String, String>,
    pub client: PresentedClient,
    /// The caller, for the per-address login limit of the password grant and the audit
    /// trail.
    pub origin: crate::service::audit::Origin,
}

impl TokenRequest {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.param(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("missing `{name}`")))
    }
}

/// How the user signed in, for the id_token of a new session.
#[derive(Clone, Copy)]
struct SignIn<'a> {
    nonce: Option<&'a str>,
    auth_time: i64,
    sid: Option<&'a str>,
    /// RFC 8176 method values.
    amr: &'a [String],
    /// The upstream provider the user signed in through, if any.
    idp: Option<&'a str>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    /// What the access token says; the source of its RFC 9068 JWT form.
    pub access_claims: crate::token::paseto::AccessClaims,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
    pub scope: String,
    pub id_token: Option<String>,
    /// The user the tokens act for (none for `client_credentials`).
    pub user: Option<crate::service::views::UserView>,
}

#[derive(Clone)]
pub struct OAuth2 {
    clients: Clients,
    accounts: Accounts,
    sessions: Sessions,
    store: Store,
    csrf_key: [u8; 32],
    id_tokens: std::sync::Arc<crate::service::id_tokens::IdTokenSigner>,
    backchannel: std::sync::Arc<backchannel::Backchannel>,
    mfa: crate::service::mfa::Mfa,
}

impl OAuth2 {
    pub fn new(
        clients: Clients,
        accounts: Accounts,
        sessions: Sessions,
        store: Store,
        csrf_key: [u8; 32],
        id_tokens: std::sync::Arc<crate::service::id_tokens::IdTokenSigner>,
        mfa: crate::service::mfa::Mfa,
    ) -> Self {
        let backchannel = std::sync::Arc::new(backchannel::Backchannel::new(
            store.clone(),
            id_tokens.clone(),
            sessions.tokens().issuer().to_string(),
        ));
        Self {
            clients,
            accounts,
            sessions,
            id_tokens,
            backchannel,
            store,
            csrf_key,
            mfa,
        }
    }

    /// Second factors (the pages' second step, step-up, passkeys).
    pub fn mfa(&self) -> &crate::service::mfa::Mfa {
        &self.mfa
    }

    /// Back-Channel Logout: the server runs its delivery task.
    pub fn backchannel(&self) -> &std::sync::Arc<backchannel::Backchannel> {
        &self.backchannel
    }

    /// The id_token signer (also serves the JWKS).
    pub fn id_tokens(&self) -> &crate::service::id_tokens::IdTokenSigner {
        &self.id_tokens
    }

    /// Builds and signs an OpenID Connect id_token (OIDC Core §2, §5.4 claims by scope).
    async fn id_token(
        &self,
        client: &ClientRecord,
        user: &crate::service::views::UserView,
        scope: &Scope,
        signed_in: &SignIn<'_>,
    ) -> Result<String, OAuthError> {
        let SignIn {
            nonce,
            auth_time,
            sid,
            amr,
            idp,
        } = *signed_in;
        let now = self.store.clock().now();
        let mut claims = serde_json::json!({
            "iss": self.issuer(),
            "sub": user.id,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + self.sessions.tokens().ttl(),
            "iat": now,
            "auth_time": auth_time,
        });
        if let Some(n) = nonce {
            claims["nonce"] = serde_json::json!(n);
        }
        // OIDC Back-Channel Logout 1.0 §2.1 / Front-Channel Logout §3: the session id, which a
        // logout token names when that session ends.
        if let Some(sid) = sid.filter(|s| !s.is_empty()) {
            claims["sid"] = serde_json::json!(sid);
        }
        // OIDC Core §2: how the user signed in (RFC 8176 values) and the class it meets.
        let amr = crate::service::mfa::amr_or_password(amr);
        claims["acr"] = serde_json::json!(crate::service::mfa::acr::of(&amr));
        claims["amr"] = serde_json::json!(amr);
        // The identity provider that authenticated the user (OpenID Connect Federation's
        // `idp` name, as Keycloak and Azure AD issue it), when it was not us.
        if let Some(idp) = idp {
            claims["idp"] = serde_json::json!(idp);
        }
        for (k, v) in user_claims(user, scope) {
            claims[k] = v;
        }
        let alg = client.id_token_alg.as_deref().unwrap_or("RS256");
        self.id_tokens
            .sign(alg, &claims)
            .await
            .map_err(OAuthError::from)
    }

    fn store(&self) -> &Store {
        &self.store
    }

    /// Where RP-Initiated Logout (OIDC RP-Initiated Logout 1.0 §2–3) may send the browser
    /// afterwards: `post_logout_redirect_uri` with `state`, only when it is registered as a
    /// **post-logout** URI (never a login redirect URI) of the client that the verified
    /// `id_token_hint` was issued to, or of `client_id` (when both are given they must agree).
    /// `None`: show the signed-out page instead, so the endpoint is no open redirector.
    pub async fn post_logout_target(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        uri: Option<&str>,
        state: Option<&str>,
    ) -> Option<String> {
        let uri = uri?;
        let hinted = match id_token_hint {
            Some(hint) => {
                let claims = self.id_tokens.verify_hint(hint, self.issuer()).await?;
                let aud = match &claims["aud"] {
                    serde_json::Value::String(a) => vec![a.clone()],
                    serde_json::Value::Array(items) => items
                        .iter()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                };
                Some(aud)
            }
            None => None,
        };
        let client_id = match (hinted, client_id) {
            (Some(aud), Some(id)) => aud.iter().any(|a| a == id).then(|| id.to_string())?,
            (Some(aud), None) => aud.into_iter().next()?,
            (None, Some(id)) => id.to_string(),
            (None, None) => return None,
        };
        let client = self
            .store()
            .run(move |s| s.get_client(&client_id))
            .await
            .ok()??;
        if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
            return None;
        }
        let params: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
        Some(authorize::with_query(uri, &params))
    }

    /// The issuer identifier (RFC 9207 `iss` on authorization responses).
    pub fn issuer(&self) -> &str {
        self.sessions.tokens().issuer()
    }

    /// The applications `user_id` has let access their account, with what they granted.
    pub async fn consents(
        &self,
        user_id: &str,
    ) -> Result<Vec<ConsentView>, crate::service::ServiceError> {
        let uid = user_id.to_string();
        // Only the consented clients are read (one point read each), not every client.
        let named = self
            .store()
            .run(move |s| {
                s.consents_of(&uid)?
                    .into_iter()
                    .map(|(client_id, scope)| {
                        let name = s.get_client(&client_id)?.map(|c| c.name);
                        Ok((client_id, scope, name))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(named
            .into_iter()
            .map(|(client_id, scope, name)| ConsentView {
                client_name: name.unwrap_or_else(|| client_id.clone()),
                client_id,
                scope,
            })
            .collect())
    }

    /// Withdraws `user_id`'s consent to `client_id` and revokes the sessions the client
    /// holds for them (its refresh tokens, and so its access tokens); the next authorization
    /// asks again. Not found when there was no consent.
    pub async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        origin: &crate::service::audit::Origin,
    ) -> Result<(), crate::service::ServiceError> {
        let (uid, cid) = (user_id.to_string(), client_id.to_string());
        if !self
            .store()
            .run(move |s| s.revoke_consent(&uid, &cid))
            .await?
        {
            return Err(crate::service::ServiceError::NotFound("consent"));
        }
        let event = crate::service::audit::Event::by_user(
            crate::service::audit::EventKind::ConsentRevoked,
            origin,
            user_id,
        );
        self.mfa.audit().record(event.detail(client_id)).await;
        Ok(())
    }

    /// Accounts (the login page checks passwords and captchas through it).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Authenticates the client (RFC 6749 §2.3): confidential clients by secret, public
    /// clients by id alone.
    pub async fn authenticate_client(
        &self,
        presented: &PresentedClient,
    ) -> Result<ClientRecord, OAuthError> {
        let invalid = || OAuthError::InvalidClient {
            basic: presented.via_basic,
        };
        let id = presented
            .client_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(invalid)?;
        let client = self
            .clients
            .authenticate(id, presented.client_secret.as_deref())
            .await?
            .ok_or_else(invalid)?;
        // A public client sending a secret is confused, not authenticated.
        if !client.confidential && presented.client_secret.is_some() {
            return Err(invalid());
        }
        Ok(client)
    }

    /// [`OAuth2::authenticate_client`] for endpoints only confidential clients may use.
    pub async fn authenticate_confidential_client(
        &self,
        presented: &PresentedClient,
    ) -> Result<ClientRecord, OAuthError> {
        let client = self.authenticate_client(presented).await?;
        if !client.confidential {
            return Err(OAuthError::InvalidClient {
                basic: presented.via_basic,
            });
        }
        Ok(client)
    }

    /// The tokens of a session the store just created for a grant (authorization code,
    /// device code): the access and refresh tokens, and an id_token when the scope has
    /// `openid` (OIDC Core §3.1.3.3). The refresh token is handed out only to clients allowed
    /// the refresh grant; the session exists either way.
    async fn issue_for_new_session(
        &self,
        client: &ClientRecord,
        user_id: &str,
        scope: &str,
        (family_id, refresh_token): (String, String),
        signed_in: SignIn<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let user = self.active_user(user_id.to_string()).await?;
        let grant = crate::service::sessions::SessionGrant {
            client_id: Some(client.client_id.clone()),
            scope: scope.to_string(),
        };
        let issued = self
            .sessions
            .issue_existing(user, family_id, refresh_token, &grant)?;
        let scope =
            Scope::parse(&issued.scope).map_err(|e| OAuthError::ServerError(e.to_string()))?;
        let id_token = if scope.contains("openid") {
            Some(
                self.id_token(client, &issued.user, &scope, &signed_in)
                    .await?,
            )
        } else {
            None
        };
        let refresh = client.grant_types.iter().any(|g| g == "refresh_token");
        Ok(TokenResponse {
            access_token: issued.access_token,
            access_claims: issued.access_claims,
            expires_in: issued.expires_in,
            refresh_token: refresh.then_some(issued.refresh_token),
            scope: issued.scope,
            id_token,
            user: Some(issued.user),
        })
    }

    /// The user a redeemed code was issued for, if still enabled.
    async fn active_user(
        &self,
        user_id: String,
    ) -> Result<crate::service::views::UserView, OAuthError> {
        self.store()
            .run(move |s| s.get_user(&user_id))
            .await
            .map_err(OAuthError::from)?
            .filter(|u| !u.disabled)
            .map(crate::service::views::UserView::from)
            .ok_or_else(|| OAuthError::InvalidGrant("the user is no longer active".into()))
    }

    /// `POST /oauth2/token`.
    pub async fn token(&self, request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let grant_type = request.required("grant_type")?.to_string();
        let client = self.authenticate_client(&request.client).await?;
        if !crate::service::clients::GRANT_TYPES.contains(&grant_type.as_str()) {
            return Err(OAuthError::UnsupportedGrantType(grant_type));
        }
        if !client.grant_types.contains(&grant_type) {
            return Err(OAuthError::UnauthorizedClient(format!(
                "this client may not use the `{grant_type}` grant"
            )));
        }
        let mut response = match grant_type.as_str() {
            "client_credentials" => client_credentials::grant(self, &client, &request).await,
            "password" => password::grant(self, &client, &request).await,
            "refresh_token" => refresh_token::grant(self, &client, &request).await,
            "authorization_code" => authorization_code::grant(self, &client, &request).await,
            crate::service::clients::DEVICE_CODE_GRANT => {
                device::grant(self, &client, &request).await
            }
            other => Err(OAuthError::UnsupportedGrantType(other.to_string())),
        }?;
        if client.access_token_format == AccessTokenFormat::Jwt {
            response.access_token = self
                .jwt_access_token(&client, &response.access_claims)
                .await?;
        }
        Ok(response)
    }

    /// The RFC 9068 form of an access token: the same claims (so revocation by `jti` and the
    /// session by `sid` work alike), as a JWT of type `at+jwt` signed with the client's
    /// id_token algorithm, verifiable with the JWKS.
    async fn jwt_access_token(
        &self,
        client: &ClientRecord,
        c: &crate::token::paseto::AccessClaims,
    ) -> Result<String, OAuthError> {
        let time = |t: &str| {
            crate::clock::parse_rfc3339(t)
                .ok_or_else(|| OAuthError::ServerError("an access token time did not parse".into()))
        };
        let mut claims = serde_json::json!({
            "iss": c.iss,
            "sub": c.sub,
            "aud": c.aud,
            "client_id": client.client_id,
            "iat": time(&c.iat)?,
            "exp": time(&c.exp)?,
            "jti": c.jti,
            "scope": c.scope,
        });
        if let Some(sid) = &c.sid {
            claims["sid"] = serde_json::json!(sid);
        }
        let alg = client.id_token_alg.as_deref().unwrap_or("RS256");
        Ok(self.id_tokens.sign_typed(alg, "at+jwt", &claims).await?)
    }

    /// `POST /oauth2/introspect` (RFC 7662): only authenticated confidential clients (resource
    /// servers) may ask; anything not live is just inactive.
    pub async fn introspect(
        &self,
        presented: &PresentedClient,
        token: &str,
    ) -> Result<Option<TokenInfo>, OAuthError> {
        self.authenticate_confidential_client(presented).await?;
        Ok(self.sessions.introspect(token).await?)
    }

    /// `POST /oauth2/revoke` (RFC 7009).
    pub async fn revoke(&self, presented: &PresentedClient, token: &str) -> Result<(), OAuthError> {
        let client = self.authenticate_client(presented).await?;
        Ok(self.sessions.revoke(token, &client.client_id).await?)
    }
}

/// The code a redemption yielded, or the `invalid_grant` (RFC 6749 §5.2) it earns. A replay
/// is logged: the store has revoked whatever the first redemption issued (§4.1.2).
fn redeemed(
    redemption: crate::store::authz::Redemption,
    client_id: &str,
) -> Result<crate::store::authz::AuthCodeRecord, OAuthError> {
    use crate::store::authz::Redemption;
    match redemption {
        Redemption::Redeemed(code) => Ok(*code),
        Redemption::Replayed => {
            tracing::warn!(client_id = %client_id, "authorization code replayed; what it issued was revoked");
            Err(OAuthError::InvalidGrant(
                "the authorization code was already used".into(),
            ))
        }
        Redemption::Invalid(reason) => Err(OAuthError::InvalidGrant(reason.into())),
    }
}

/// The scope to grant: the requested one if it is within what the client may have (RFC 6749
/// §3.3), otherwise the client's default.
fn grant_scope(
    client: &ClientRecord,
    requested: Option<&str>,
    exclude_user_scopes: bool,
) -> Result<Scope, OAuthError> {
    let allowed = Scope::from_tokens(
        client
            .scopes
            .iter()
            .filter(|s| !exclude_user_scopes || !crate::domain::OIDC_SCOPES.contains(&s.as_str())),
    )
    .map_err(|e| OAuthError::ServerError(e.to_string()))?;
    match requested {
        None => Ok(allowed),
        Some(r) => {
            let scope = Scope::parse(r).map_err(|e| OAuthError::InvalidScope(e.message))?;
            if scope.is_subset(&allowed) {
                Ok(scope)
            } else {
                Err(OAuthError::InvalidScope(format!(
                    "this client may request only `{allowed}`"
                )))
            }
        }
    }
}

/// Profile and email claims a scope releases (OIDC Core §5.4).
pub fn user_claims(
    user: &crate::service::views::UserView,
    scope: &Scope,
) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let mut out = Vec::new();
    if scope.contains("profile") {
        out.push(("name", json!(user.shown_name())));
        out.push(("preferred_username", json!(user.username)));
        out.push(("updated_at", json!(user.updated_at)));
    }
    if scope.contains("email") {
        out.push(("email", json!(user.email)));
        out.push(("email_verified", json!(user.email_verified)));
    }
    out
}

/// An application a user has let access their account.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub client_id: String,
    pub client_name: String,
    /// What they granted (space-separated scopes).
    pub scope: String,
}
