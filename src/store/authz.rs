//! Authorization-code flow state: pending requests, codes, browser sessions and consents.

use serde::{Deserialize, Serialize};

use super::{
    Store, StoreError, codec,
    expiry::{self, Kind},
    records::FamilyRecord,
    sessions::{self, RefreshLifetimes, create_session_in, revoke_family_in},
    tables,
};

/// An authorization request that passed validation and waits for login and consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequestRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    pub expires_at: i64,
    /// When the request was made (0 in records written before it was kept).
    #[serde(default)]
    pub created_at: i64,
    /// `prompt=login`: only a sign-in after `created_at` will do.
    #[serde(default)]
    pub prompt_login: bool,
    /// `prompt=none`: answered at once, never with a page.
    #[serde(default)]
    pub prompt_none: bool,
    /// `max_age`: seconds since the sign-in that are acceptable.
    #[serde(default)]
    pub max_age: Option<i64>,
    /// A login name to prefill.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// The `id_token_hint` as sent (verified when used).
    #[serde(default)]
    pub id_token_hint: Option<String>,
    /// A device authorization (RFC 8628) the user is approving through the login and
    /// consent pages: the SHA-256 of its device code, hex. Such a request has no redirect
    /// URI; its outcome is recorded on the device authorization instead.
    #[serde(default)]
    pub device: Option<String>,
    /// A second factor is demanded (`acr_values` asking for one, or the client's
    /// `require_mfa`): a sign-in without one does not satisfy the request.
    #[serde(default)]
    pub mfa_demanded: bool,
    /// OIDC Core §3.1.2.1 `ui_locales`: the languages the relying party would like the
    /// pages in, most preferred first (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_locales: Option<String>,
}

/// An issued authorization code (stored under its SHA-256).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scope: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub expires_at: i64,
    /// Set at the first redemption: the session it created, revoked if the code is replayed.
    #[serde(default)]
    pub redeemed_family: Option<String>,
    /// The browser session (its public `sid`) the code was issued in: the id_token carries
    /// it, and Back-Channel Logout names it when that session ends.
    #[serde(default)]
    pub sid: Option<String>,
    /// How the user signed in (RFC 8176 values); empty in codes issued before it was kept.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The upstream provider the user signed in through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
}

/// How a code redemption checks the redirect URI.
#[derive(Debug, Clone)]
pub enum RedirectCheck {
    /// RFC 6749 §4.1.3: the token request's `redirect_uri`, which must equal the code's.
    Equals(Option<String>),
    /// The protocol does not carry it at redemption (the SSO document's `POST /oauth/`); the
    /// URI was matched exactly against the registered ones when the code was issued.
    NotCarried,
}

/// A signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrowserSessionRecord {
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
    /// The session's public id (OIDC `sid` claim); empty in records written before it.
    #[serde(default)]
    pub sid: String,
    /// Clients that were issued a code in this session: told by Back-Channel Logout when it
    /// ends.
    #[serde(default)]
    pub clients: Vec<String>,
    /// How the user signed in (RFC 8176 values); empty in sessions started before it was
    /// kept, which were password sign-ins.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The upstream provider the user signed in through (the id_token's `idp`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
}

impl BrowserSessionRecord {
    /// The session's public id, if it has one (records written before it was kept do not).
    pub fn public_sid(&self) -> Option<String> {
        Some(self.sid.clone()).filter(|s| !s.is_empty())
    }
}

/// A browser session that ended with clients to notify by Back-Channel Logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogout {
    pub user_id: String,
    pub sid: String,
    pub clients: Vec<String>,
    /// Dropped unsent after this (a logout token older than this is of no use).
    pub expires_at: i64,
}

/// How long an ended session's logout notice waits for delivery.
const OUTBOX_TTL: i64 = 600;

/// Reads a browser session record in `txn`, expired or not.
fn browser_session_in(
    txn: &super::kv::WriteTransaction,
    hash: &[u8],
) -> Result<Option<BrowserSessionRecord>, StoreError> {
    txn.open_table(tables::BROWSER_SESSIONS)?
        .get(hash)?
        .map(|v| codec::decode::<BrowserSessionRecord>("browser_sessions", v.value()))
        .transpose()
}

/// Removes a browser session (record and user index) in `txn` and, when it was still live
/// and clients were issued codes in it, queues their Back-Channel Logout in the outbox of the
/// same transaction (an expired session has ended already: nobody is told twice).
fn end_session_in(
    txn: &super::kv::WriteTransaction,
    hash: &[u8],
    session: &BrowserSessionRecord,
    now: i64,
) -> Result<(), StoreError> {
    txn.open_table(tables::BROWSER_SESSIONS)?.remove(hash)?;
    txn.open_table(tables::USER_BROWSER_SESSIONS)?
        .remove((session.user_id.as_str(), hash))?;
    let live = session.expires_at > now;
    if live && !session.clients.is_empty() && !session.sid.is_empty() {
        let notice = PendingLogout {
            user_id: session.user_id.clone(),
            sid: session.sid.clone(),
            clients: session.clients.clone(),
            expires_at: now + OUTBOX_TTL,
        };
        let id = crate::token::opaque::random_token(16);
        expiry::put(
            txn,
            Kind::PendingLogout,
            id.as_bytes(),
            notice.expires_at,
            &notice,
        )?;
    }
    Ok(())
}

/// Ends every live browser session of `user_id` in `txn` (with their logout notices);
/// returns how many there were.
pub(crate) fn end_browser_sessions_in(
    txn: &super::kv::WriteTransaction,
    user_id: &str,
    now: i64,
    keep: Option<&[u8]>,
) -> Result<usize, StoreError> {
    let hashes: Vec<Vec<u8>> = {
        let index = txn.open_table(tables::USER_BROWSER_SESSIONS)?;
        let mut out = Vec::new();
        for row in index.range((user_id, [].as_slice())..)? {
            let (k, _) = row?;
            let (uid, hash) = k.value();
            if uid != user_id {
                break;
            }
            out.push(hash.to_vec());
        }
        out
    };
    let mut ended = 0;
    for hash in hashes.into_iter().filter(|h| Some(h.as_slice()) != keep) {
        match browser_session_in(txn, &hash)? {
            Some(s) => {
                ended += usize::from(s.expires_at > now);
                end_session_in(txn, &hash, &s, now)?;
            }
            None => {
                txn.open_table(tables::USER_BROWSER_SESSIONS)?
                    .remove((user_id, hash.as_slice()))?;
            }
        }
    }
    Ok(ended)
}

/// What redeeming a code did.
#[derive(Debug)]
pub enum Redemption {
    /// The code was good; the session `family_id` now exists with its first refresh token.
    Redeemed(Box<AuthCodeRecord>),
    /// The code had been redeemed before: that session has been revoked (RFC 6749 §4.1.2).
    Replayed,
    /// Unknown, expired, or issued to another client or redirect URI, or a PKCE mismatch.
    Invalid(&'static str),
}

/// The session a successful redemption creates, in the same transaction.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub family_id: String,
    pub refresh_hash: [u8; 32],
    pub lifetimes: RefreshLifetimes,
}

impl NewSession {
    /// Writes this session in `txn`: a family of `user_id` for `client_id` with `scope`, and
    /// its first refresh token (a grant's redemption: a code, an approved device).
    pub(crate) fn create_in(
        &self,
        txn: &super::kv::WriteTransaction,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let family = FamilyRecord {
            user_id: user_id.to_string(),
            client_id: Some(client_id.to_string()),
            scope: scope.to_string(),
            created_at: now,
            expires_at: now + self.lifetimes.absolute,
            revoked: false,
            ip: None,
            user_agent: None,
            last_used: None,
        };
        create_session_in(
            txn,
            &sessions::NewSession {
                family_id: self.family_id.clone(),
                family,
                token_hash: self.refresh_hash,
                lifetimes: self.lifetimes,
            },
            now,
        )
    }
}

impl Store {
    pub fn put_auth_request(&self, id: &str, record: &AuthRequestRecord) -> Result<(), StoreError> {
        self.write(|txn| {
            expiry::put(
                txn,
                Kind::AuthRequest,
                id.as_bytes(),
                record.expires_at,
                record,
            )
        })
    }

    pub fn get_auth_request(&self, id: &str) -> Result<Option<AuthRequestRecord>, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            Ok(txn
                .open_table(tables::AUTH_REQUESTS)?
                .get(id.as_bytes())?
                .map(|v| codec::decode::<AuthRequestRecord>("auth_requests", v.value()))
                .transpose()?
                .filter(|r| r.expires_at > now))
        })
    }

    /// Ends a pending request and stores the code it produced, in one transaction, so a
    /// request yields at most one code. With a code, the browser session it was issued in
    /// (`session_hash`) records the client, for Back-Channel Logout.
    pub fn complete_auth_request(
        &self,
        id: &str,
        code_hash: Option<([u8; 32], AuthCodeRecord)>,
        session_hash: Option<[u8; 32]>,
    ) -> Result<bool, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let existed = txn
                .open_table(tables::AUTH_REQUESTS)?
                .remove(id.as_bytes())?
                .is_some();
            if existed && let Some((hash, record)) = code_hash {
                expiry::put(txn, Kind::AuthCode, &hash, record.expires_at, &record)?;
                if let Some(session_hash) = session_hash {
                    let session =
                        browser_session_in(txn, &session_hash)?.filter(|s| s.expires_at > now);
                    if let Some(mut session) = session
                        && !session.clients.contains(&record.client_id)
                    {
                        session.clients.push(record.client_id.clone());
                        expiry::update(txn, Kind::BrowserSession, &session_hash, &session)?;
                    }
                }
            }
            Ok(existed)
        })
    }

    /// Stores a code issued without a pending browser request (the SSO document's login with
    /// `secret_id` and `redirect_uri`).
    pub fn put_auth_code(&self, hash: [u8; 32], record: &AuthCodeRecord) -> Result<(), StoreError> {
        self.write(|txn| expiry::put(txn, Kind::AuthCode, &hash, record.expires_at, record))
    }

    /// Redeems a code: checks it (client, redirect URI, expiry, and `check` for PKCE), marks it
    /// used and creates the session, all in one transaction, so of concurrent redemptions
    /// exactly one succeeds and a replay always finds the session to revoke.
    /// A batched write (see `Store::write_batched`).
    pub async fn redeem_code(
        &self,
        hash: [u8; 32],
        client_id: String,
        redirect_uri: RedirectCheck,
        check: impl Fn(&AuthCodeRecord) -> Result<(), &'static str> + Send + 'static,
        session: Option<NewSession>,
    ) -> Result<Redemption, StoreError> {
        let now = self.clock().now();
        self.write_batched(move |txn| {
            let Some(mut code) = txn
                .open_table(tables::AUTH_CODES)?
                .get(hash.as_slice())?
                .map(|v| codec::decode::<AuthCodeRecord>("auth_codes", v.value()))
                .transpose()?
            else {
                return Ok(Redemption::Invalid("unknown authorization code"));
            };
            if let Some(family) = &code.redeemed_family {
                // An identity-only redemption created no session (empty id): nothing to revoke.
                if !family.is_empty() {
                    let family = family.clone();
                    revoke_family_in(txn, &family)?;
                }
                return Ok(Redemption::Replayed);
            }
            if code.expires_at <= now {
                return Ok(Redemption::Invalid("the authorization code has expired"));
            }
            if code.client_id != client_id {
                return Ok(Redemption::Invalid(
                    "the authorization code was issued to another client",
                ));
            }
            // RFC 6749 §4.1.3: redirect_uri must be identical when the request had one.
            if let RedirectCheck::Equals(given) = &redirect_uri
                && given.as_deref() != Some(code.redirect_uri.as_str())
            {
                return Ok(Redemption::Invalid(
                    "redirect_uri does not match the authorization request",
                ));
            }
            if let Err(reason) = check(&code) {
                return Ok(Redemption::Invalid(reason));
            }
            code.redeemed_family = Some(
                session
                    .as_ref()
                    .map(|s| s.family_id.clone())
                    .unwrap_or_default(),
            );
            expiry::update(txn, Kind::AuthCode, &hash, &code)?;
            if let Some(session) = &session {
                session.create_in(txn, &code.user_id, &code.client_id, &code.scope, now)?;
            }
            Ok(Redemption::Redeemed(Box::new(code)))
        })
        .await
    }

    pub fn put_browser_session(
        &self,
        hash: [u8; 32],
        record: &BrowserSessionRecord,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            expiry::put(txn, Kind::BrowserSession, &hash, record.expires_at, record)?;
            txn.open_table(tables::USER_BROWSER_SESSIONS)?
                .insert((record.user_id.as_str(), hash.as_slice()), ())?;
            Ok(())
        })
    }

    /// Records a second factor proven in a live browser session (step-up): its `amr` and
    /// a new `auth_time`. `false` if the session is gone.
    pub fn step_up_browser_session(
        &self,
        hash: [u8; 32],
        amr: Vec<String>,
    ) -> Result<bool, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut session) = browser_session_in(txn, &hash)?.filter(|s| s.expires_at > now)
            else {
                return Ok(false);
            };
            session.amr = amr;
            session.auth_time = now;
            expiry::update(txn, Kind::BrowserSession, &hash, &session)?;
            Ok(true)
        })
    }

    pub fn get_browser_session(
        &self,
        hash: [u8; 32],
    ) -> Result<Option<BrowserSessionRecord>, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            Ok(txn
                .open_table(tables::BROWSER_SESSIONS)?
                .get(hash.as_slice())?
                .map(|v| codec::decode::<BrowserSessionRecord>("browser_sessions", v.value()))
                .transpose()?
                .filter(|r| r.expires_at > now))
        })
    }

    /// Ends a browser session, queueing its Back-Channel Logout notices in the same
    /// transaction; returns it if it was live.
    pub fn delete_browser_session(
        &self,
        hash: [u8; 32],
    ) -> Result<Option<BrowserSessionRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(session) = browser_session_in(txn, &hash)? else {
                return Ok(None);
            };
            end_session_in(txn, &hash, &session, now)?;
            Ok(Some(session).filter(|s| s.expires_at > now))
        })
    }

    /// Takes up to `max` queued logout notices (a read, and a write only when there are
    /// some): the delivery task owns them from here.
    pub fn take_pending_logouts(&self, max: usize) -> Result<Vec<PendingLogout>, StoreError> {
        let now = self.clock().now();
        let any = self.read(|txn| Ok(txn.open_table(tables::LOGOUT_OUTBOX)?.first()?.is_some()))?;
        if !any {
            return Ok(Vec::new());
        }
        self.write(|txn| {
            let mut table = txn.open_table(tables::LOGOUT_OUTBOX)?;
            let mut taken = Vec::new();
            let mut keys = Vec::new();
            for row in table.iter()?.take(max) {
                let (k, v) = row?;
                keys.push(k.value().to_vec());
                let notice: PendingLogout = codec::decode("logout_outbox", v.value())?;
                if notice.expires_at > now {
                    taken.push(notice);
                }
            }
            for k in keys {
                table.remove(k.as_slice())?;
            }
            Ok(taken)
        })
    }

    /// The scope a user has already granted a client.
    pub fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(tables::CONSENTS)?
                .get((user_id, client_id))?
                .map(|v| v.value().to_string()))
        })
    }

    /// Every consent of a user: (client id, granted scope).
    pub fn consents_of(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(tables::CONSENTS)?;
            let mut out = Vec::new();
            for row in table.range((user_id, "")..)? {
                let (k, v) = row?;
                let (uid, client) = k.value();
                if uid != user_id {
                    break;
                }
                out.push((client.to_string(), v.value().to_string()));
            }
            Ok(out)
        })
    }

    /// Withdraws a user's consent to a client and, in the same transaction, revokes the
    /// sessions (refresh tokens) that client holds for the user. Whether there was one.
    pub fn revoke_consent(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
        self.write(|txn| {
            let existed = txn
                .open_table(tables::CONSENTS)?
                .remove((user_id, client_id))?
                .is_some();
            let ids =
                super::sessions::families_of(&txn.open_table(tables::USER_SESSIONS)?, user_id)?;
            for id in ids {
                let family = txn
                    .open_table(tables::SESSION_FAMILIES)?
                    .get(id.as_bytes())?
                    .map(|v| {
                        codec::decode::<super::records::FamilyRecord>("session_families", v.value())
                    })
                    .transpose()?;
                if family.is_some_and(|f| f.client_id.as_deref() == Some(client_id)) {
                    super::sessions::revoke_family_in(txn, &id)?;
                }
            }
            Ok(existed)
        })
    }

    pub fn set_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(tables::CONSENTS)?
                .insert((user_id, client_id), scope)?;
            Ok(())
        })
    }
}
