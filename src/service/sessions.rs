//! First-party sessions: a login yields a short-lived PASETO access token and a rotating
//! refresh token; requests authenticate with the access token or a personal API key.

use std::sync::Arc;

use super::{Result, ServiceError};
use crate::{
    store::{
        Store,
        records::{FamilyRecord, UserRecord},
        sessions::{RefreshLifetimes, Rotation},
    },
    token::{
        AccessTokens,
        opaque::{self, API_KEY_PREFIX},
        paseto::AccessGrant,
    },
};

/// Scope of first-party session tokens: the native API on the user's behalf.
pub const FIRST_PARTY_SCOPE: &str = "api";

/// A new access + refresh token pair and the user it belongs to.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub session_id: String,
    pub user: UserRecord,
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
    pub user: UserRecord,
    /// The session (refresh-token family) of an access token; `None` for an API key.
    pub session_id: Option<String>,
}

#[derive(Clone)]
pub struct Sessions {
    store: Store,
    tokens: Arc<AccessTokens>,
    lifetimes: RefreshLifetimes,
}

impl Sessions {
    pub fn new(store: Store, tokens: Arc<AccessTokens>, lifetimes: RefreshLifetimes) -> Self {
        Self {
            store,
            tokens,
            lifetimes,
        }
    }

    /// The access-token issuer and key set (for publishing keys and offline checks).
    pub fn tokens(&self) -> &Arc<AccessTokens> {
        &self.tokens
    }

    /// Starts a session (a new refresh-token family) for `user`.
    pub async fn start(&self, user: UserRecord) -> Result<IssuedSession> {
        let family_id = opaque::random_token(16);
        let refresh_token = opaque::random_token(32);
        let now = self.store.clock().now();
        let family = FamilyRecord {
            user_id: user.id.clone(),
            client_id: None,
            scope: FIRST_PARTY_SCOPE.into(),
            created_at: now,
            expires_at: now + self.lifetimes.absolute,
            revoked: false,
        };
        let (fid, hash, lifetimes) = (
            family_id.clone(),
            opaque::digest(&refresh_token),
            self.lifetimes,
        );
        self.store
            .run(move |s| s.create_session(&fid, family, hash, lifetimes))
            .await?;
        self.issue(user, family_id, refresh_token)
    }

    /// Rotates a refresh token (RFC 6749 §6, with the rotation and reuse detection of
    /// RFC 9700 §4.14.2): a reused token revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<IssuedSession> {
        let old = opaque::digest(refresh_token);
        let new_token = opaque::random_token(32);
        let new = opaque::digest(&new_token);
        let lifetimes = self.lifetimes;
        let rotation = self
            .store
            .run(move |s| s.rotate_refresh_token(old, new, lifetimes))
            .await?;
        match rotation {
            Rotation::Rotated { family_id, family } => {
                let uid = family.user_id.clone();
                let user = self.store.run(move |s| s.get_user(&uid)).await?;
                match user {
                    Some(user) if !user.disabled => self.issue(user, family_id, new_token),
                    _ => Err(ServiceError::InvalidRefreshToken),
                }
            }
            Rotation::ReuseDetected { family_id, user_id } => {
                tracing::warn!(user_id = %user_id, session = %family_id, "refresh token reuse detected; session revoked");
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

    /// Revokes every session of a user except `keep`.
    pub async fn revoke_others(&self, user_id: &str, keep: Option<String>) -> Result<usize> {
        let uid = user_id.to_string();
        Ok(self
            .store
            .run(move |s| s.revoke_user_sessions(&uid, keep.as_deref()))
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
                    user,
                    session_id: None,
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
        let (user, live) = self
            .store
            .run(move |s| {
                let user = s.get_user(&claims.sub)?;
                let live = match &claims.sid {
                    Some(sid) => s.session_active(sid)?,
                    None => true,
                };
                Ok((user, live))
            })
            .await?;
        match user {
            Some(user) if live && !user.disabled => Ok(Principal {
                user,
                session_id: sid,
            }),
            _ => Err(ServiceError::InvalidToken),
        }
    }

    fn issue(
        &self,
        user: UserRecord,
        session_id: String,
        refresh_token: String,
    ) -> Result<IssuedSession> {
        let (access_token, _) = self.tokens.issue(AccessGrant {
            subject: user.id.clone(),
            audience: self.tokens.issuer().to_string(),
            scope: FIRST_PARTY_SCOPE.into(),
            session_id: Some(session_id.clone()),
            client_id: None,
        })?;
        Ok(IssuedSession {
            access_token,
            expires_in: self.tokens.ttl(),
            refresh_token,
            session_id,
            user,
        })
    }
}
