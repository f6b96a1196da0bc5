//! First-party sessions: a login yields a short-lived PASETO access token and a rotating
//! refresh token; requests authenticate with the access token or a personal API key.

use std::sync::Arc;

use super::audit::{Event, EventKind, Origin};
use super::{Result, ServiceError};
pub use crate::store::sessions::KeepSession;
use crate::{
    domain::Scope,
    service::{id_tokens::IdTokenSigner, views::UserView},
    store::{
        Store,
        records::FamilyRecord,
        sessions::{NewSession, RefreshLifetimes, Rotation},
    },
    token::{
        AccessTokens,
        opaque::{self, API_KEY_PREFIX},
        paseto::{AccessClaims, AccessGrant, PublishedKey, VerifiedAccess},
    },
};

/// Scope of first-party session tokens: the native API on the user's behalf.
pub const FIRST_PARTY_SCOPE: &str = "api";

/// A new access + refresh token pair and the user it belongs to.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub access_token: String,
    /// What the access token says (an RFC 9068 JWT for the same grant carries the same).
    pub access_claims: AccessClaims,
    pub expires_in: i64,
    pub refresh_token: String,
    pub session_id: String,
    /// Granted scope (space-separated).
    pub scope: String,
    pub user: UserView,
}

/// Who a session's tokens are for: first-party (`client_id: None`) or an OAuth client.
#[derive(Debug, Clone)]
pub struct SessionGrant {
    pub client_id: Option<String>,
    pub scope: String,
}

impl SessionGrant {
    pub fn first_party() -> Self {
        Self {
            client_id: None,
            scope: FIRST_PARTY_SCOPE.into(),
        }
    }
}

/// What introspection (RFC 7662 §2.2) reports about a live token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub token_type: &'static str,
    pub scope: String,
    pub client_id: Option<String>,
    pub sub: String,
    /// The user the token acts for (none for client tokens).
    pub user: Option<UserView>,
    pub exp: i64,
    pub iat: i64,
    pub aud: Option<String>,
    pub jti: Option<String>,
}

/// A credential presented with a request.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `Authorization: Bearer …` — an access token or a personal API key.
    Bearer(String),
    /// `X-Api-Key: …`.
    ApiKey(String),
}

/// Who a request acts as.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserView,
    /// The session (refresh-token family) of an access token; `None` for an API key.
    pub session_id: Option<String>,
    /// For a signed-in browser (the pages): SHA-256 of its session cookie.
    pub browser_session: Option<[u8; 32]>,
}

impl Principal {
    /// A signed-in browser's user, acting on its own account pages.
    pub fn browser(user: UserView, cookie: &str) -> Self {
        Self {
            user,
            session_id: None,
            browser_session: Some(opaque::digest(cookie)),
        }
    }

    /// The caller's own session, which "sign out everywhere else" keeps.
    pub fn own_session(&self) -> KeepSession {
        match (&self.session_id, self.browser_session) {
            (Some(family), _) => KeepSession::Family(family.clone()),
            (None, Some(hash)) => KeepSession::Browser(hash),
            (None, None) => KeepSession::None,
        }
    }
}

/// A session chosen by [`Sessions::prepare`]: its secrets stay here until it is written.
pub struct PreparedSession {
    family_id: String,
    refresh_token: String,
    grant: SessionGrant,
}

#[derive(Clone)]
pub struct Sessions {
    store: Store,
    tokens: Arc<AccessTokens>,
    /// The JWT signer, to verify RFC 9068 access tokens of clients that use them.
    jwts: Arc<IdTokenSigner>,
    lifetimes: RefreshLifetimes,
    /// Records refresh-token reuse.
    audit: super::audit::Audit,
}

impl Sessions {
    /// Reads the stored access-token keys again and uses them if they changed (see
    /// [`Services::reload_keys`](super::Services::reload_keys)); returns whether they did.
    pub async fn reload_access_keys(&self) -> Result<bool, crate::store::StoreError> {
        let records = self.store.run(|s| s.signing_keys()).await?;
        self.tokens
            .replace_keys(&super::keys::access_token_keys(&records))
            .map_err(super::keys::key_failed)
    }

    pub fn new(
        store: Store,
        tokens: Arc<AccessTokens>,
        jwts: Arc<IdTokenSigner>,
        lifetimes: RefreshLifetimes,
        audit: super::audit::Audit,
    ) -> Self {
        Self {
            store,
            tokens,
            jwts,
            lifetimes,
            audit,
        }
    }

    /// Verifies an access token of either format — PASETO v4.public, or an RFC 9068 JWT
    /// (`typ: at+jwt`, signed by a published key, our issuer, within its lifetime) — for any
    /// audience. Liveness (revocation, session, user) is the caller's next step.
    async fn verify_access(&self, token: &str) -> Option<VerifiedAccess> {
        if let Ok(v) = self.tokens.verify_any_audience(token) {
            return Some(v);
        }
        if token.starts_with("v4.") || token.split('.').count() != 3 {
            return None;
        }
        let jwt = self.jwts.verify(token, self.tokens.issuer()).await?;
        // RFC 9068 §4: the type must be at+jwt, so an id_token is never taken for one.
        if !jwt.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        }) {
            return None;
        }
        let c = jwt.claims;
        let (exp, iat) = (c["exp"].as_i64()?, c["iat"].as_i64()?);
        if self.store.clock().now() >= exp {
            return None;
        }
        let text = |k: &str| c[k].as_str().map(str::to_string);
        Some(VerifiedAccess {
            claims: AccessClaims {
                iss: text("iss")?,
                sub: text("sub")?,
                aud: text("aud")?,
                exp: crate::clock::rfc3339(exp),
                iat: crate::clock::rfc3339(iat),
                nbf: crate::clock::rfc3339(iat),
                jti: text("jti")?,
                scope: text("scope").unwrap_or_default(),
                sid: text("sid"),
                client_id: text("client_id"),
            },
            expires_at: exp,
            issued_at: iat,
            not_before: iat,
        })
    }

    /// Refresh-token lifetimes in force.
    pub fn lifetimes(&self) -> RefreshLifetimes {
        self.lifetimes
    }

    /// Issues the tokens of a session the store already created (authorization code grant).
    pub fn issue_existing(
        &self,
        user: UserView,
        family_id: String,
        refresh_token: String,
        grant: &SessionGrant,
    ) -> Result<IssuedSession> {
        self.issue(user, family_id, refresh_token, grant)
    }

    /// Every access-token signing key this server knows (retired ones until they expire,
    /// staged ones before they sign), as PASERK public keys for offline checks.
    pub fn published_access_token_keys(&self) -> Vec<PublishedKey> {
        self.tokens.published()
    }

    /// The access-token issuer and key set (for publishing keys and offline checks).
    pub fn tokens(&self) -> &Arc<AccessTokens> {
        &self.tokens
    }

    /// Starts a first-party session (a new refresh-token family) for `user`, signed in
    /// from `origin`.
    pub async fn start(&self, user: UserView, origin: &Origin) -> Result<IssuedSession> {
        let (prepared, record) = self.prepare(&user.id, SessionGrant::first_party(), Some(origin));
        self.store.create_session(record).await?;
        self.issue_prepared(user, prepared)
    }

    /// Starts a session for `user` with the given client and scope.
    pub async fn start_with(&self, user: UserView, grant: SessionGrant) -> Result<IssuedSession> {
        let (prepared, record) = self.prepare(&user.id, grant, None);
        self.store.create_session(record).await?;
        self.issue_prepared(user, prepared)
    }

    /// Chooses a new session for `user_id` without writing it: the store writes the returned
    /// record (alone, or with the records it belongs to), then [`Sessions::issue_prepared`]
    /// makes its tokens.
    /// `origin`: where a first-party sign-in came from, kept for the owner's session list.
    pub fn prepare(
        &self,
        user_id: &str,
        grant: SessionGrant,
        origin: Option<&Origin>,
    ) -> (PreparedSession, NewSession) {
        let family_id = opaque::random_token(16);
        let refresh_token = opaque::random_token(32);
        let now = self.store.clock().now();
        let record = NewSession {
            family_id: family_id.clone(),
            family: FamilyRecord {
                user_id: user_id.to_string(),
                client_id: grant.client_id.clone(),
                scope: grant.scope.clone(),
                created_at: now,
                expires_at: now + self.lifetimes.absolute,
                revoked: false,
                ip: origin.and_then(|o| o.ip).map(|ip| ip.to_string()),
                user_agent: origin.and_then(|o| o.user_agent.clone()),
                last_used: None,
            },
            token_hash: opaque::digest(&refresh_token),
            lifetimes: self.lifetimes,
        };
        (
            PreparedSession {
                family_id,
                refresh_token,
                grant,
            },
            record,
        )
    }

    /// The tokens of a prepared session, once the store has written it.
    pub fn issue_prepared(
        &self,
        user: UserView,
        prepared: PreparedSession,
    ) -> Result<IssuedSession> {
        let PreparedSession {
            family_id,
            refresh_token,
            grant,
        } = prepared;
        self.issue(user, family_id, refresh_token, &grant)
    }

    /// Rotates a refresh token (RFC 6749 §6, with the rotation and reuse detection of
    /// RFC 9700 §4.14.2): a reused token revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str, origin: &Origin) -> Result<IssuedSession> {
        self.refresh_for(refresh_token, None, None, origin).await
    }

    /// Rotates a refresh token presented by `client_id` (`None`: first party). With `scope`,
    /// the new access token carries only that scope, which must be within the session's
    /// (RFC 6749 §6: a refresh cannot widen scope); the session keeps its original scope.
    pub async fn refresh_for(
        &self,
        refresh_token: &str,
        client_id: Option<&str>,
        scope: Option<&Scope>,
        origin: &Origin,
    ) -> Result<IssuedSession> {
        let old = opaque::digest(refresh_token);
        if let Some(requested) = scope {
            let info = self.store.run(move |s| s.live_refresh_token(old)).await?;
            if let Some(info) = info {
                let granted = Scope::parse(&info.family.scope)?;
                if !requested.is_subset(&granted) {
                    return Err(ServiceError::InvalidScope(format!(
                        "the refresh token was granted `{granted}`; `{requested}` is wider"
                    )));
                }
            }
        }
        let new_token = opaque::random_token(32);
        let new = opaque::digest(&new_token);
        let lifetimes = self.lifetimes;
        let client = client_id.map(str::to_string);
        let rotation = self
            .store
            .rotate_refresh_token(old, new, client, lifetimes)
            .await?;
        match rotation {
            Rotation::Rotated { family_id, family } => {
                let uid = family.user_id.clone();
                let user = self.store.point_read(move |s| s.get_user(&uid))?;
                let grant = SessionGrant {
                    client_id: family.client_id.clone(),
                    scope: scope.map(|s| s.to_string()).unwrap_or(family.scope),
                };
                match user {
                    Some(user) if !user.disabled => {
                        self.issue(user.into(), family_id, new_token, &grant)
                    }
                    _ => Err(ServiceError::InvalidRefreshToken),
                }
            }
            Rotation::ReuseDetected { family_id, user_id } => {
                tracing::warn!(user_id = %user_id, session = %family_id, "refresh token reuse detected; session revoked");
                // The presenter may be the thief or the owner: no actor, the owner's subject.
                let event = Event {
                    actor: None,
                    ..Event::by_user(EventKind::RefreshTokenReuse, origin, &user_id)
                };
                self.audit
                    .record(event.detail(client_id.unwrap_or("first-party")))
                    .await;
                Err(ServiceError::InvalidRefreshToken)
            }
            Rotation::Invalid => Err(ServiceError::InvalidRefreshToken),
        }
    }

    /// Ends the session a refresh token belongs to. Unknown tokens are not an error: the
    /// outcome the caller wants (that token no longer works) already holds.
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let hash = opaque::digest(refresh_token);
        self.store
            .run(move |s| s.revoke_session_by_token(hash))
            .await?;
        Ok(())
    }

    /// The caller's live sessions (API and application sign-ins), newest first.
    pub async fn list_own(&self, principal: &Principal) -> Result<Vec<SessionView>> {
        let uid = principal.user.id.clone();
        let own = principal.session_id.clone();
        let live = self.store.run(move |s| s.live_sessions_of(&uid)).await?;
        Ok(live
            .into_iter()
            .map(|(id, f)| SessionView {
                current: own.as_deref() == Some(id.as_str()),
                ip: f.ip,
                user_agent: f.user_agent,
                last_used_at: f.last_used.unwrap_or(f.created_at),
                id,
                client_id: f.client_id,
                scope: f.scope,
                created_at: f.created_at,
                expires_at: f.expires_at,
            })
            .collect())
    }

    /// Ends one of the caller's sessions; someone else's, or an ended one, is not found.
    pub async fn revoke_own(&self, principal: &Principal, id: &str, origin: &Origin) -> Result<()> {
        let (uid, fid) = (principal.user.id.clone(), id.to_string());
        if !self
            .store
            .run(move |s| s.revoke_own_session(&uid, &fid))
            .await?
        {
            return Err(ServiceError::NotFound("session"));
        }
        let event = Event::by_user(EventKind::SessionRevoked, origin, &principal.user.id);
        self.audit.record(event.detail(id)).await;
        Ok(())
    }

    /// Revokes every session of a user except `keep`.
    pub async fn revoke_others(&self, user_id: &str, keep: KeepSession) -> Result<usize> {
        let uid = user_id.to_string();
        Ok(self
            .store
            .run(move |s| s.revoke_user_sessions(&uid, &keep))
            .await?)
    }

    /// Resolves a credential to a principal: verifies the token (signature, issuer, audience,
    /// time), then checks the session is still live and the user still enabled.
    pub async fn authenticate(&self, credential: Credential) -> Result<Principal> {
        let secret = match &credential {
            Credential::Bearer(s) | Credential::ApiKey(s) => s.trim(),
        };
        if secret.starts_with(API_KEY_PREFIX) || matches!(credential, Credential::ApiKey(_)) {
            let hash = opaque::digest(secret);
            let user = self.store.run(move |s| s.user_by_api_key(&hash)).await?;
            return match user {
                Some(user) if !user.disabled => Ok(Principal {
                    user: user.into(),
                    session_id: None,
                    browser_session: None,
                }),
                _ => Err(ServiceError::InvalidToken),
            };
        }
        let verified = self
            .tokens
            .verify(secret, self.tokens.issuer())
            .map_err(|e| {
                tracing::debug!(reason = %e, "access token rejected");
                ServiceError::InvalidToken
            })?;
        let claims = verified.claims;
        let sid = claims.sid.clone();
        let (user, live) = self.store.point_read(move |s| {
            let user = s.get_user(&claims.sub)?;
            let live = s.access_token_live(&claims.jti, claims.sid.as_deref())?;
            Ok((user, live))
        })?;
        match user {
            Some(user) if live && !user.disabled => Ok(Principal {
                user: user.into(),
                session_id: sid,
                browser_session: None,
            }),
            _ => Err(ServiceError::InvalidToken),
        }
    }

    fn issue(
        &self,
        user: UserView,
        session_id: String,
        refresh_token: String,
        grant: &SessionGrant,
    ) -> Result<IssuedSession> {
        let (access_token, access_claims) = self.tokens.issue(AccessGrant {
            subject: user.id.clone(),
            // First-party tokens are for this server's API; client tokens name their client.
            audience: match grant.client_id.as_deref() {
                Some(c) if c != super::clients::SWAGGER_CLIENT_ID => c.to_string(),
                _ => self.tokens.issuer().to_string(),
            },
            scope: grant.scope.clone(),
            session_id: Some(session_id.clone()),
            client_id: grant.client_id.clone(),
        })?;
        Ok(IssuedSession {
            access_token,
            access_claims,
            expires_in: self.tokens.ttl(),
            refresh_token,
            session_id,
            scope: grant.scope.clone(),
            user,
        })
    }

    /// An access token for a client acting on its own behalf (RFC 6749 §4.4); no refresh token.
    pub fn issue_for_client(
        &self,
        client_id: &str,
        scope: &str,
    ) -> Result<(String, AccessClaims, i64)> {
        let (token, claims) = self.tokens.issue(AccessGrant {
            subject: client_id.to_string(),
            audience: client_id.to_string(),
            scope: scope.to_string(),
            session_id: None,
            client_id: Some(client_id.to_string()),
        })?;
        Ok((token, claims, self.tokens.ttl()))
    }

    /// Describes a live access or refresh token; `None` for anything inactive — garbage,
    /// expired, revoked, or of a disabled user (RFC 7662 §2.2).
    pub async fn introspect(&self, token: &str) -> Result<Option<TokenInfo>> {
        if let Some(v) = self.verify_access(token).await {
            let c = v.claims;
            // A client_credentials token acts for its client: no session, subject = client.
            let client_token = c.sid.is_none() && c.client_id.as_deref() == Some(c.sub.as_str());
            let (jti, sid, sub) = (c.jti.clone(), c.sid.clone(), c.sub.clone());
            let (live, user) = self.store.point_read(move |s| {
                let live = s.access_token_live(&jti, sid.as_deref())?;
                let user = if client_token {
                    None
                } else {
                    s.get_user(&sub)?
                };
                Ok((live, user))
            })?;
            if !live || (!client_token && user.as_ref().is_none_or(|u| u.disabled)) {
                return Ok(None);
            }
            return Ok(Some(TokenInfo {
                token_type: "Bearer",
                scope: c.scope,
                client_id: c.client_id,
                user: user.map(UserView::from),
                sub: c.sub,
                exp: v.expires_at,
                iat: v.issued_at,
                aud: Some(c.aud),
                jti: Some(c.jti),
            }));
        }
        let hash = opaque::digest(token);
        let found = self
            .store
            .run(move |s| match s.live_refresh_token(hash)? {
                Some(info) => {
                    let user = s.get_user(&info.family.user_id)?;
                    Ok(user.map(|u| (info, u)))
                }
                None => Ok(None),
            })
            .await?;
        let Some((info, user)) = found.filter(|(_, u)| !u.disabled) else {
            return Ok(None);
        };
        Ok(Some(TokenInfo {
            token_type: "refresh_token",
            scope: info.family.scope,
            client_id: info.family.client_id,
            sub: user.id.clone(),
            user: Some(user.into()),
            exp: info.token.expires_at,
            iat: info.token.issued_at,
            aud: None,
            jti: None,
        }))
    }

    /// Ends the session of whoever presents `token` — an access token or a refresh token — as
    /// a logout does: an access token also goes on the revocation list until it expires.
    /// Unknown tokens are not an error (RFC 7009 §2.2's reasoning: the outcome already holds).
    pub async fn revoke_presented(&self, token: &str) -> Result<()> {
        if let Some(v) = self.verify_access(token).await {
            let (jti, exp, sid) = (v.claims.jti, v.expires_at, v.claims.sid);
            self.store
                .run(move |s| s.revoke_access_token_and_session(&jti, exp, sid.as_deref()))
                .await?;
            return Ok(());
        }
        self.logout(token).await
    }

    /// Revokes a token presented by `client_id` (RFC 7009 §2.1): a refresh token ends its
    /// session; an access token goes on the revocation list until it expires. Tokens of other
    /// clients, and unknown tokens, are left alone and reported as done — the caller cannot
    /// learn anything from the answer.
    pub async fn revoke(&self, token: &str, client_id: &str) -> Result<()> {
        if let Some(v) = self.verify_access(token).await {
            if v.claims.client_id.as_deref() == Some(client_id) {
                let (jti, exp) = (v.claims.jti.clone(), v.expires_at);
                self.store
                    .run(move |s| s.revoke_access_token(&jti, exp))
                    .await?;
            }
            return Ok(());
        }
        let hash = opaque::digest(token);
        if let Some(info) = self.store.run(move |s| s.live_refresh_token(hash)).await?
            && info.family.client_id.as_deref() == Some(client_id)
        {
            let fid = info.family_id;
            self.store.run(move |s| s.revoke_session(&fid)).await?;
        }
        Ok(())
    }
}

/// One of a user's sessions, as they see it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: String,
    /// The application it was issued to; `None` for this server's own API sign-ins.
    pub client_id: Option<String>,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The session of the token making the request.
    pub current: bool,
    /// Where a first-party sign-in came from.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// When a refresh last used it (to the hour), or when it began.
    pub last_used_at: i64,
}
