//! The expiry index and its sweeper.
//!
//! Every expiring record is written together with an `(expires_at, kind, key)` entry in
//! [`tables::EXPIRY`], in the same transaction. The sweeper walks that index from the oldest
//! entry and deletes what is due, in bounded batches so one sweep never holds the write lock
//! for long. It is housekeeping only: readers check `expires_at` themselves.

use std::time::Duration;

use super::kv::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, codec, records::FamilyRecord, tables};

/// The part of every expiring record the sweeper needs.
#[derive(Debug, Deserialize)]
pub struct Expiring {
    pub expires_at: i64,
}

/// Which table an expiry entry points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RefreshToken,
    SessionFamily,
    EmailCode,
    Captcha,
    RevokedToken,
    AuthRequest,
    AuthCode,
    BrowserSession,
    DeviceCode,
    DeviceUserCode,
    PushedRequest,
    InitialAccessToken,
    PendingLogout,
    MfaChallenge,
    LoginFailure,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RefreshToken => "refresh_token",
            Kind::SessionFamily => "session_family",
            Kind::EmailCode => "email_code",
            Kind::Captcha => "captcha",
            Kind::RevokedToken => "revoked_token",
            Kind::AuthRequest => "auth_request",
            Kind::AuthCode => "auth_code",
            Kind::BrowserSession => "browser_session",
            Kind::DeviceCode => "device_code",
            Kind::DeviceUserCode => "device_user_code",
            Kind::PushedRequest => "pushed_request",
            Kind::InitialAccessToken => "initial_access_token",
            Kind::PendingLogout => "pending_logout",
            Kind::MfaChallenge => "mfa_challenge",
            Kind::LoginFailure => "login_failure",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "refresh_token" => Some(Kind::RefreshToken),
            "session_family" => Some(Kind::SessionFamily),
            "email_code" => Some(Kind::EmailCode),
            "captcha" => Some(Kind::Captcha),
            "revoked_token" => Some(Kind::RevokedToken),
            "auth_request" => Some(Kind::AuthRequest),
            "auth_code" => Some(Kind::AuthCode),
            "browser_session" => Some(Kind::BrowserSession),
            "device_code" => Some(Kind::DeviceCode),
            "device_user_code" => Some(Kind::DeviceUserCode),
            "pushed_request" => Some(Kind::PushedRequest),
            "initial_access_token" => Some(Kind::InitialAccessToken),
            "pending_logout" => Some(Kind::PendingLogout),
            "mfa_challenge" => Some(Kind::MfaChallenge),
            "login_failure" => Some(Kind::LoginFailure),
            _ => None,
        }
    }

    fn table(self) -> super::kv::Table<&'static [u8], &'static [u8]> {
        match self {
            Kind::RefreshToken => tables::REFRESH_TOKENS,
            Kind::SessionFamily => tables::SESSION_FAMILIES,
            Kind::EmailCode => tables::EMAIL_CODES,
            Kind::Captcha => tables::CAPTCHAS,
            Kind::RevokedToken => tables::REVOKED_TOKENS,
            Kind::AuthRequest => tables::AUTH_REQUESTS,
            Kind::AuthCode => tables::AUTH_CODES,
            Kind::BrowserSession => tables::BROWSER_SESSIONS,
            Kind::DeviceCode => tables::DEVICE_CODES,
            Kind::DeviceUserCode => tables::DEVICE_USER_CODES,
            Kind::PushedRequest => tables::PUSHED_REQUESTS,
            Kind::InitialAccessToken => tables::INITIAL_ACCESS_TOKENS,
            Kind::PendingLogout => tables::LOGOUT_OUTBOX,
            Kind::MfaChallenge => tables::MFA_CHALLENGES,
            Kind::LoginFailure => tables::LOGIN_FAILURES,
        }
    }
}

/// Inserts `record` under `key` in `kind`'s table and indexes its expiry, in `txn`.
pub fn put<T: Serialize>(
    txn: &WriteTransaction,
    kind: Kind,
    key: &[u8],
    expires_at: i64,
    record: &T,
) -> Result<(), StoreError> {
    let bytes = codec::encode(record)?;
    txn.open_table(kind.table())?
        .insert(key, bytes.as_slice())?;
    txn.open_table(tables::EXPIRY)?
        .insert((expires_at.max(0) as u64, kind.as_str(), key), ())?;
    Ok(())
}

/// Overwrites an expiring record whose `expires_at` is unchanged (the index entry stays valid).
pub fn update<T: Serialize>(
    txn: &WriteTransaction,
    kind: Kind,
    key: &[u8],
    record: &T,
) -> Result<(), StoreError> {
    let bytes = codec::encode(record)?;
    txn.open_table(kind.table())?
        .insert(key, bytes.as_slice())?;
    Ok(())
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub records_deleted: usize,
    pub batches: usize,
}

impl Store {
    /// Deletes every record due at the store clock's `now`, `batch` entries per transaction.
    pub fn sweep_expired(&self, batch: usize) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        loop {
            let now = self.clock().now().max(0) as u64;
            // Look before writing: an idle server commits nothing (and fsyncs nothing).
            let due = self.read(|txn| {
                let index = txn.open_table(tables::EXPIRY)?;
                let first = index.first()?.map(|(k, _)| k.value().0);
                Ok(first.is_some_and(|at| at <= now))
            })?;
            if !due {
                return Ok(report);
            }
            let (deleted, more) = self.write(|txn| sweep_batch(txn, now, batch.max(1)))?;
            report.records_deleted += deleted;
            report.batches += 1;
            if !more {
                return Ok(report);
            }
        }
    }
}

/// Deletes up to `batch` due entries; returns how many records went and whether more are due.
fn sweep_batch(
    txn: &WriteTransaction,
    now: u64,
    batch: usize,
) -> Result<(usize, bool), StoreError> {
    let mut index = txn.open_table(tables::EXPIRY)?;
    let mut due: Vec<(u64, String, Vec<u8>)> = Vec::with_capacity(batch);
    let mut more = false;
    for row in index.iter()? {
        let (k, _) = row?;
        let (at, kind, key) = k.value();
        if at > now {
            break;
        }
        if due.len() == batch {
            more = true;
            break;
        }
        due.push((at, kind.to_string(), key.to_vec()));
    }
    let mut deleted = 0;
    for (at, kind_name, key) in &due {
        index.remove((*at, kind_name.as_str(), key.as_slice()))?;
        let Some(kind) = Kind::parse(kind_name) else {
            tracing::warn!(kind = %kind_name, "expiry entry for an unknown record kind dropped");
            continue;
        };
        let mut table = txn.open_table(kind.table())?;
        let Some(bytes) = table.get(key.as_slice())?.map(|v| v.value().to_vec()) else {
            continue;
        };
        // A record rewritten with a later expiry keeps its newer index entry; skip it here.
        let expiring: Expiring = codec::decode(kind.as_str(), &bytes)?;
        if expiring.expires_at.max(0) as u64 > now {
            continue;
        }
        table.remove(key.as_slice())?;
        if kind == Kind::SessionFamily {
            let family: FamilyRecord = codec::decode("session_families", &bytes)?;
            txn.open_table(tables::USER_SESSIONS)?
                .remove((family.user_id.as_str(), key.as_slice()))?;
        }
        if kind == Kind::BrowserSession {
            let session: super::authz::BrowserSessionRecord =
                codec::decode("browser_sessions", &bytes)?;
            txn.open_table(tables::USER_BROWSER_SESSIONS)?
                .remove((session.user_id.as_str(), key.as_slice()))?;
        }
        deleted += 1;
    }
    Ok((deleted, more))
}

/// Runs [`Store::sweep_expired`] (and [`Store::sweep_events`] for events older than
/// `event_retention` seconds) every `interval` on the blocking pool until `stop` fires.
/// A failed sweep is logged and retried at the next tick; it never ends the task.
pub async fn run_sweeper(
    store: Store,
    interval: Duration,
    batch: usize,
    event_retention: i64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        // One node at a time sweeps a shared database; the others skip their turn.
        let swept = store
            .run(move |s| {
                s.as_only_sweeper(|| {
                    let report = s.sweep_expired(batch)?;
                    let cutoff = s.clock().now() - event_retention;
                    Ok((report, s.sweep_events(cutoff, batch)?))
                })
            })
            .await;
        match swept {
            Ok(Some((r, events))) => {
                if r.records_deleted > 0 {
                    tracing::debug!(
                        deleted = r.records_deleted,
                        batches = r.batches,
                        "expired records swept"
                    );
                }
                if events > 0 {
                    tracing::debug!(deleted = events, "old security events swept");
                }
            }
            Ok(None) => tracing::debug!("another node is sweeping"),
            Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
        }
    }
}
