//! Emailed codes and captcha challenges: short-lived, single-use secrets stored as HMACs.

use super::kv::WriteTransaction;
use subtle::ConstantTimeEq;

use super::{
    Store, StoreError, codec,
    expiry::{self, Kind},
    records::{CaptchaRecord, EmailCodeRecord},
    tables,
};

/// Result of presenting an emailed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Correct: the code is now spent.
    Accepted,
    /// Unknown, already used or wrong (the wrong guess was counted).
    Rejected,
    /// A code was issued but its time ran out (it is now deleted).
    Expired,
}

impl Store {
    /// Stores a new code for `key`, replacing any previous one, unless the previous one is
    /// younger than `cooldown` seconds: then `Err(seconds to wait)` and nothing changes.
    pub fn put_email_code(
        &self,
        key: &str,
        record: EmailCodeRecord,
        cooldown: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            if let Some(v) = txn.open_table(tables::EMAIL_CODES)?.get(key.as_bytes())? {
                let old: EmailCodeRecord = codec::decode("email_codes", v.value())?;
                let wait = old.created_at + cooldown - now;
                if wait > 0 && old.expires_at > now {
                    return Ok(Err(wait as u64));
                }
            }
            expiry::put(
                txn,
                Kind::EmailCode,
                key.as_bytes(),
                record.expires_at,
                &record,
            )?;
            Ok(Ok(()))
        })
    }

    /// Checks `mac` against the live code for `key`. With `consume`, a correct code is
    /// deleted (single use); without, it stays for a later [`spend_email_code_in`] in the
    /// transaction that uses it. A wrong one counts an attempt either way, and the
    /// `max_attempts`-th wrong one deletes the code. The count is committed, so it survives a
    /// restart.
    pub fn check_email_code(
        &self,
        key: &str,
        mac: &[u8; 32],
        max_attempts: u32,
        consume: bool,
    ) -> Result<CodeCheck, StoreError> {
        let now = self.clock().now();
        self.write(|txn| check_email_code_in(txn, key, mac, max_attempts, consume, now))
    }

    /// Wrong guesses recorded for a code (tests and diagnostics).
    pub fn email_code_attempts(&self, key: &str) -> Result<Option<u32>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(tables::EMAIL_CODES)?
                .get(key.as_bytes())?
                .map(|v| codec::decode::<EmailCodeRecord>("email_codes", v.value()))
                .transpose()?
                .map(|r| r.attempts))
        })
    }

    pub fn put_captcha(&self, id: &str, record: CaptchaRecord) -> Result<(), StoreError> {
        self.write(|txn| {
            expiry::put(
                txn,
                Kind::Captcha,
                id.as_bytes(),
                record.expires_at,
                &record,
            )
        })
    }

    /// Removes and returns a live captcha: each challenge is answered at most once.
    pub fn take_captcha(&self, id: &str) -> Result<Option<CaptchaRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let record = txn
                .open_table(tables::CAPTCHAS)?
                .remove(id.as_bytes())?
                .map(|v| codec::decode::<CaptchaRecord>("captchas", v.value()))
                .transpose()?;
            Ok(record.filter(|r| r.expires_at > now))
        })
    }
}

/// A code to spend in the transaction that acts on it: its record key and the HMAC of what
/// the user typed.
#[derive(Debug, Clone)]
pub struct CodeSpend {
    pub key: String,
    pub mac: [u8; 32],
}

/// [`Store::check_email_code`] inside `txn`.
pub(crate) fn check_email_code_in(
    txn: &WriteTransaction,
    key: &str,
    mac: &[u8; 32],
    max_attempts: u32,
    consume: bool,
    now: i64,
) -> Result<CodeCheck, StoreError> {
    let mut table = txn.open_table(tables::EMAIL_CODES)?;
    let Some(mut record) = table
        .get(key.as_bytes())?
        .map(|v| codec::decode::<EmailCodeRecord>("email_codes", v.value()))
        .transpose()?
    else {
        return Ok(CodeCheck::Rejected);
    };
    match verdict(&record, mac, now) {
        CodeCheck::Accepted => {
            if consume {
                table.remove(key.as_bytes())?;
            }
            return Ok(CodeCheck::Accepted);
        }
        CodeCheck::Expired => {
            table.remove(key.as_bytes())?;
            return Ok(CodeCheck::Expired);
        }
        // No code was sent to this address: nothing to count against.
        CodeCheck::Rejected if record.code_mac.is_none() => return Ok(CodeCheck::Rejected),
        CodeCheck::Rejected => {}
    }
    record.attempts += 1;
    if record.attempts >= max_attempts {
        table.remove(key.as_bytes())?;
    } else {
        drop(table);
        expiry::update(txn, Kind::EmailCode, key.as_bytes(), &record)?;
    }
    Ok(CodeCheck::Rejected)
}

/// Spends a code already checked in an earlier transaction: `true` if it is still live and
/// right (it is now deleted), `false` if it went meanwhile (used by a concurrent request,
/// expired); a `false` counts no attempt, since the same code was right a moment ago.
pub(crate) fn spend_email_code_in(
    txn: &WriteTransaction,
    code: &CodeSpend,
    now: i64,
) -> Result<bool, StoreError> {
    let mut table = txn.open_table(tables::EMAIL_CODES)?;
    let Some(record) = table
        .get(code.key.as_bytes())?
        .map(|v| codec::decode::<EmailCodeRecord>("email_codes", v.value()))
        .transpose()?
    else {
        return Ok(false);
    };
    let right = verdict(&record, &code.mac, now) == CodeCheck::Accepted;
    if right {
        table.remove(code.key.as_bytes())?;
    }
    Ok(right)
}

/// What `mac` is against a stored code, without side effects: accepted, expired, or rejected
/// (wrong, or no code sent to the address). Compared in constant time.
fn verdict(record: &EmailCodeRecord, mac: &[u8; 32], now: i64) -> CodeCheck {
    let Some(stored) = record.code_mac.as_deref() else {
        return CodeCheck::Rejected;
    };
    if record.expires_at <= now {
        return CodeCheck::Expired;
    }
    if bool::from(stored.as_bytes().ct_eq(hex(mac).as_bytes())) {
        CodeCheck::Accepted
    } else {
        CodeCheck::Rejected
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
