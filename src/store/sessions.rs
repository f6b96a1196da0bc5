//! Refresh-token families: creation, rotation with reuse detection, and revocation.

use super::kv::{ReadableTable, WriteTransaction};

use super::{
    Store, StoreError, codec,
    expiry::{self, Kind},
    records::{FamilyRecord, RefreshTokenRecord},
    tables,
};

/// Lifetimes for a new or rotated refresh token.
#[derive(Debug, Clone, Copy)]
pub struct RefreshLifetimes {
    /// Seconds a token stays valid unused.
    pub idle: i64,
    /// Seconds the whole family stays valid, however often it is rotated.
    pub absolute: i64,
    /// Seconds after its rotation during which a rotated token may be presented again and
    /// gets a fresh successor instead of revoking the family (0: never).
    pub reuse_grace: i64,
}

/// Outcome of presenting a refresh token for rotation.
#[derive(Debug)]
pub enum Rotation {
    /// The token was current; it is now spent and `new_hash` is the family's current token.
    Rotated {
        family_id: String,
        family: FamilyRecord,
    },
    /// The token had already been rotated: the family is now revoked (RFC 9700 §4.14.2).
    ReuseDetected { family_id: String, user_id: String },
    /// Unknown, expired or revoked.
    Invalid,
}

impl Store {
    /// Starts a family with its first token (a batched write: see `Store::write_batched`).
    pub async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        let now = self.clock().now();
        self.write_batched(move |txn| create_session_in(txn, &session, now))
            .await
    }

    /// Exchanges the token with hash `old` for `new`, or detects reuse. All in one
    /// transaction, so two concurrent uses of one token cannot both rotate it. `client` is
    /// who presents it (`None` for first-party sessions): a token of another client's family
    /// is refused untouched (RFC 6749 §6: refresh tokens are bound to their client).
    /// A batched write (see `Store::write_batched`).
    pub async fn rotate_refresh_token(
        &self,
        old: [u8; 32],
        new: [u8; 32],
        client: Option<String>,
        lifetimes: RefreshLifetimes,
    ) -> Result<Rotation, StoreError> {
        let now = self.clock().now();
        self.write_batched(move |txn| {
            let Some(mut token) = get_token(txn, &old)? else {
                return Ok(Rotation::Invalid);
            };
            let Some(family) = get_family(txn, &token.family_id)? else {
                return Ok(Rotation::Invalid);
            };
            if family.client_id != client {
                return Ok(Rotation::Invalid);
            }
            if family.revoked || family.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            if token.rotated {
                // A retry of a refresh whose answer was lost (RFC 9700 §4.14.2 allows such a
                // grace, as Hydra and Cognito do): the old token gets another successor in the
                // same family, while the first successor stays valid too.
                // A grace of 0 turns it off: within the same second too.
                let retried = lifetimes.reuse_grace > 0
                    && token
                        .rotated_at
                        .is_some_and(|at| now - at <= lifetimes.reuse_grace && now >= at);
                if retried && token.expires_at > now {
                    put_token(txn, &token.family_id, &family, new, now, lifetimes)?;
                    return Ok(Rotation::Rotated {
                        family_id: token.family_id,
                        family,
                    });
                }
                revoke_family_in(txn, &token.family_id)?;
                return Ok(Rotation::ReuseDetected {
                    family_id: token.family_id,
                    user_id: token.user_id,
                });
            }
            if token.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            token.rotated = true;
            token.rotated_at = Some(now);
            expiry::update(txn, Kind::RefreshToken, &old, &token)?;
            put_token(txn, &token.family_id, &family, new, now, lifetimes)?;
            let stale = family
                .last_used
                .is_none_or(|at| now - at >= super::records::LAST_USED_RESOLUTION);
            if stale {
                let mut used = family.clone();
                used.last_used = Some(now);
                expiry::update(txn, Kind::SessionFamily, token.family_id.as_bytes(), &used)?;
            }
            Ok(Rotation::Rotated {
                family_id: token.family_id,
                family,
            })
        })
        .await
    }

    /// Revokes the family a refresh token belongs to; returns whether the token was known.
    pub fn revoke_session_by_token(&self, hash: [u8; 32]) -> Result<bool, StoreError> {
        self.write(|txn| match get_token(txn, &hash)? {
            Some(token) => {
                revoke_family_in(txn, &token.family_id)?;
                Ok(true)
            }
            None => Ok(false),
        })
    }

    /// Revokes every family and browser session of `user_id` except `keep`; returns how
    /// many families were revoked.
    pub fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: &KeepSession,
    ) -> Result<usize, StoreError> {
        let now = self.clock().now();
        self.write(|txn| revoke_user_sessions_in(txn, user_id, keep, now))
    }

    /// A user's live sessions (refresh-token families), newest first.
    pub fn live_sessions_of(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, FamilyRecord)>, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            let ids = families_of(&txn.open_table(tables::USER_SESSIONS)?, user_id)?;
            let families = txn.open_table(tables::SESSION_FAMILIES)?;
            let mut live = Vec::new();
            for id in ids {
                if let Some(v) = families.get(id.as_bytes())? {
                    let family: FamilyRecord = codec::decode("session_families", v.value())?;
                    if !family.revoked && family.expires_at > now && family.user_id == user_id {
                        live.push((id, family));
                    }
                }
            }
            live.sort_by_key(|(_, f)| std::cmp::Reverse(f.created_at));
            Ok(live)
        })
    }

    /// Revokes the session `family_id` if it is one of `user_id`'s; whether it was live.
    pub fn revoke_own_session(&self, user_id: &str, family_id: &str) -> Result<bool, StoreError> {
        self.write(|txn| match get_family(txn, family_id)? {
            Some(f) if f.user_id == user_id => revoke_family_in(txn, family_id),
            _ => Ok(false),
        })
    }

    /// Whether a family exists, is not revoked and has not expired.
    pub fn session_active(&self, family_id: &str) -> Result<bool, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            let table = txn.open_table(tables::SESSION_FAMILIES)?;
            let Some(v) = table.get(family_id.as_bytes())? else {
                return Ok(false);
            };
            let family: FamilyRecord = codec::decode("session_families", v.value())?;
            Ok(!family.revoked && family.expires_at > now)
        })
    }
}

/// A session (refresh-token family) chosen before the transaction that writes it, so it can
/// be written together with the records it belongs to (a registration's user).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub family_id: String,
    pub family: FamilyRecord,
    /// SHA-256 of the first refresh token.
    pub token_hash: [u8; 32],
    pub lifetimes: RefreshLifetimes,
}

/// Writes a new family, its user index entry and its first refresh token, in `txn`.
pub(crate) fn create_session_in(
    txn: &WriteTransaction,
    session: &NewSession,
    now: i64,
) -> Result<(), StoreError> {
    let NewSession {
        family_id,
        family,
        token_hash,
        lifetimes,
    } = session;
    expiry::put(
        txn,
        Kind::SessionFamily,
        family_id.as_bytes(),
        family.expires_at,
        family,
    )?;
    txn.open_table(tables::USER_SESSIONS)?
        .insert((family.user_id.as_str(), family_id.as_bytes()), ())?;
    put_token(txn, family_id, family, *token_hash, now, *lifetimes)
}

fn put_token(
    txn: &WriteTransaction,
    family_id: &str,
    family: &FamilyRecord,
    hash: [u8; 32],
    now: i64,
    lifetimes: RefreshLifetimes,
) -> Result<(), StoreError> {
    let record = RefreshTokenRecord {
        family_id: family_id.to_string(),
        user_id: family.user_id.clone(),
        issued_at: now,
        expires_at: (now + lifetimes.idle).min(family.expires_at),
        rotated: false,
        rotated_at: None,
    };
    expiry::put(txn, Kind::RefreshToken, &hash, record.expires_at, &record)
}

fn get_token(
    txn: &WriteTransaction,
    hash: &[u8; 32],
) -> Result<Option<RefreshTokenRecord>, StoreError> {
    match txn
        .open_table(tables::REFRESH_TOKENS)?
        .get(hash.as_slice())?
    {
        Some(v) => Ok(Some(codec::decode("refresh_tokens", v.value())?)),
        None => Ok(None),
    }
}

fn get_family(txn: &WriteTransaction, id: &str) -> Result<Option<FamilyRecord>, StoreError> {
    match txn
        .open_table(tables::SESSION_FAMILIES)?
        .get(id.as_bytes())?
    {
        Some(v) => Ok(Some(codec::decode("session_families", v.value())?)),
        None => Ok(None),
    }
}

/// Revokes every family of `user_id` except `keep`, and ends every browser session of the
/// user (each queueing its Back-Channel Logout), in `txn`; returns how many families were
/// live.
pub(crate) fn revoke_user_sessions_in(
    txn: &WriteTransaction,
    user_id: &str,
    keep: &KeepSession,
    now: i64,
) -> Result<usize, StoreError> {
    let ids = families_of(&txn.open_table(tables::USER_SESSIONS)?, user_id)?;
    let mut revoked = 0;
    for id in ids
        .iter()
        .filter(|id| !matches!(keep, KeepSession::Family(k) if k == *id))
    {
        if revoke_family_in(txn, id)? {
            revoked += 1;
        }
    }
    let keep_browser = match keep {
        KeepSession::Browser(hash) => Some(hash.as_slice()),
        _ => None,
    };
    super::authz::end_browser_sessions_in(txn, user_id, now, keep_browser)?;
    Ok(revoked)
}

/// The one session a "sign out everywhere else" keeps: the caller's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeepSession {
    /// None: every session ends.
    #[default]
    None,
    /// A refresh-token family (an API caller's session).
    Family(String),
    /// A browser session (SHA-256 of its cookie).
    Browser([u8; 32]),
}

/// Marks a family revoked (kept until its expiry so reuse and `sid` checks still see it).
pub(crate) fn revoke_family_in(txn: &WriteTransaction, id: &str) -> Result<bool, StoreError> {
    let Some(mut family) = get_family(txn, id)? else {
        return Ok(false);
    };
    if family.revoked {
        return Ok(false);
    }
    family.revoked = true;
    expiry::update(txn, Kind::SessionFamily, id.as_bytes(), &family)?;
    Ok(true)
}

/// What a refresh token is, for introspection.
#[derive(Debug, Clone)]
pub struct RefreshTokenInfo {
    pub family_id: String,
    pub family: FamilyRecord,
    pub token: RefreshTokenRecord,
}

impl Store {
    /// A refresh token's record and family, if it is live (known, not rotated, not expired,
    /// family not revoked).
    pub fn live_refresh_token(
        &self,
        hash: [u8; 32],
    ) -> Result<Option<RefreshTokenInfo>, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            let Some(token) = txn
                .open_table(tables::REFRESH_TOKENS)?
                .get(hash.as_slice())?
                .map(|v| codec::decode::<RefreshTokenRecord>("refresh_tokens", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let Some(family) = txn
                .open_table(tables::SESSION_FAMILIES)?
                .get(token.family_id.as_bytes())?
                .map(|v| codec::decode::<FamilyRecord>("session_families", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let live = !token.rotated
                && token.expires_at > now
                && !family.revoked
                && family.expires_at > now;
            Ok(live.then(|| RefreshTokenInfo {
                family_id: token.family_id.clone(),
                family,
                token,
            }))
        })
    }

    /// Revokes a family by id; returns whether it was live.
    pub fn revoke_session(&self, family_id: &str) -> Result<bool, StoreError> {
        self.write(|txn| revoke_family_in(txn, family_id))
    }

    /// Puts an access token's id on the revocation list until it would expire anyway.
    pub fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        self.revoke_access_token_and_session(jti, expires_at, None)
    }

    /// Puts an access token on the revocation list and, with `session`, revokes its family,
    /// in one transaction (a logout by access token).
    pub fn revoke_access_token_and_session(
        &self,
        jti: &str,
        expires_at: i64,
        session: Option<&str>,
    ) -> Result<(), StoreError> {
        #[derive(serde::Serialize)]
        struct Revoked {
            expires_at: i64,
        }
        self.write(|txn| {
            expiry::put(
                txn,
                Kind::RevokedToken,
                jti.as_bytes(),
                expires_at,
                &Revoked { expires_at },
            )?;
            if let Some(family) = session {
                revoke_family_in(txn, family)?;
            }
            Ok(())
        })
    }

    /// Whether an access token is still live online: its id is not on the revocation list and
    /// its session (if it has one) is active.
    pub fn access_token_live(&self, jti: &str, sid: Option<&str>) -> Result<bool, StoreError> {
        Ok(!self.access_token_revoked(jti)?
            && match sid {
                Some(sid) => self.session_active(sid)?,
                None => true,
            })
    }

    /// Whether an access token's id is on the revocation list.
    pub fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(tables::REVOKED_TOKENS)?
                .get(jti.as_bytes())?
                .is_some())
        })
    }
}

/// The session (family) ids of a user, from the `user_sessions` index.
pub(crate) fn families_of(
    index: &impl ReadableTable<(&'static str, &'static [u8]), ()>,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    for row in index.range((user_id, &[][..])..)? {
        let (k, _) = row?;
        let (uid, fid) = k.value();
        if uid != user_id {
            break;
        }
        ids.push(String::from_utf8_lossy(fid).into_owned());
    }
    Ok(ids)
}
