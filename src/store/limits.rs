//! Failed sign-ins counted in the database: the login throttles of nodes that share a
//! PostgreSQL database (see `service::limiter`). Each count is one expiring record, so the
//! sweeper removes a key once its window has passed quietly.

use serde::{Deserialize, Serialize};

use super::{
    Store, StoreError, codec,
    expiry::{self, Kind},
    tables,
};

/// Failures of one key within its window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailureRecord {
    pub count: u32,
    /// When the last failure happened.
    pub last: i64,
    /// `last` plus the window: a quiet window forgets the key.
    pub expires_at: i64,
}

impl Store {
    /// The failures counted for `key`, if any are within their window at `now`.
    pub fn login_failures(&self, key: &str, now: i64) -> Result<Option<FailureRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(tables::LOGIN_FAILURES)?;
            let Some(v) = table.get(key.as_bytes())? else {
                return Ok(None);
            };
            let record: FailureRecord = codec::decode("login_failures", v.value())?;
            Ok((record.expires_at > now).then_some(record))
        })
    }

    /// Counts one more failure of `key` at `now` (starting over after a quiet `window`), in
    /// one transaction, so failures on every node add up; returns the new count.
    pub fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<u32, StoreError> {
        self.write(|txn| {
            let previous = {
                let table = txn.open_table(tables::LOGIN_FAILURES)?;
                let found = table.get(key.as_bytes())?;
                match found {
                    Some(v) => Some(codec::decode::<FailureRecord>("login_failures", v.value())?),
                    None => None,
                }
            };
            let count = match previous {
                Some(p) if now - p.last < window => p.count.saturating_add(1),
                _ => 1,
            };
            let record = FailureRecord {
                count,
                last: now,
                expires_at: now + window,
            };
            expiry::put(
                txn,
                Kind::LoginFailure,
                key.as_bytes(),
                record.expires_at,
                &record,
            )?;
            Ok(count)
        })
    }

    /// Forgets the failures of `key` (a successful sign-in, a password reset).
    pub fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let known = self.read(|txn| {
            Ok(txn
                .open_table(tables::LOGIN_FAILURES)?
                .get(key.as_bytes())?
                .is_some())
        })?;
        // Look before writing: most sign-ins follow no failure and commit nothing here.
        if known {
            self.write(|txn| {
                txn.open_table(tables::LOGIN_FAILURES)?
                    .remove(key.as_bytes())?;
                Ok(())
            })?;
        }
        Ok(())
    }
}
