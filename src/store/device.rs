//! Device Authorization Grant state (RFC 8628) and pushed authorization requests (RFC 9126).

use serde::{Deserialize, Serialize};

use super::{
    Store, StoreError, codec,
    expiry::{self, Kind},
    tables,
};
use crate::store::authz::{AuthRequestRecord, NewSession};

/// What the user decided on the device page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeviceState {
    /// Waiting for the user (RFC 8628 §3.5 `authorization_pending`).
    Pending,
    /// Approved by this user in this browser session.
    Approved {
        user_id: String,
        auth_time: i64,
        #[serde(default)]
        sid: Option<String>,
        /// How the user signed in (RFC 8176 values), for the id_token; empty in records
        /// written before second factors existed.
        #[serde(default)]
        amr: Vec<String>,
    },
    /// Refused (§3.5 `access_denied`).
    Denied,
}

/// A device authorization (stored under the SHA-256 of its `device_code`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceCodeRecord {
    pub client_id: String,
    pub scope: String,
    /// The code the user types, normalised (`BCDFGHJK`), without the dash.
    pub user_code: String,
    pub expires_at: i64,
    /// Seconds the client must wait between polls (§3.2, raised by `slow_down`).
    pub interval: i64,
    /// When the client last polled (0: never).
    #[serde(default)]
    pub last_poll: i64,
    pub state: DeviceState,
}

/// The user-code index entry: which device authorization a typed code names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceUserCodeRecord {
    /// SHA-256 of the device code, hex.
    pub device: String,
    pub expires_at: i64,
}

/// What a poll of the token endpoint found (RFC 8628 §3.5).
#[derive(Debug)]
pub enum DevicePoll {
    /// Approved: the session now exists, and the authorization is spent.
    Issued {
        /// The scope the device asked for and the user approved.
        scope: String,
        user_id: String,
        auth_time: i64,
        sid: Option<String>,
        amr: Vec<String>,
    },
    Pending,
    /// Polled faster than `interval`: the interval grew by 5 seconds.
    SlowDown,
    Denied,
    Expired,
    /// Unknown, spent, or another client's.
    Invalid,
}

pub use super::codes::hex;

/// The digest back from [`hex`].
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

fn get_device(
    txn: &super::kv::WriteTransaction,
    hash: &[u8; 32],
) -> Result<Option<DeviceCodeRecord>, StoreError> {
    txn.open_table(tables::DEVICE_CODES)?
        .get(hash.as_slice())?
        .map(|v| codec::decode::<DeviceCodeRecord>("device_codes", v.value()))
        .transpose()
}

impl Store {
    /// Stores a new device authorization and its user-code index entry. `false` when the
    /// user code is already in use (the caller draws another).
    pub fn put_device_code(
        &self,
        hash: [u8; 32],
        record: &DeviceCodeRecord,
    ) -> Result<bool, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let taken = txn
                .open_table(tables::DEVICE_USER_CODES)?
                .get(record.user_code.as_bytes())?
                .map(|v| codec::decode::<DeviceUserCodeRecord>("device_user_codes", v.value()))
                .transpose()?
                .is_some_and(|r| r.expires_at > now);
            if taken {
                return Ok(false);
            }
            expiry::put(txn, Kind::DeviceCode, &hash, record.expires_at, record)?;
            let index = DeviceUserCodeRecord {
                device: hex(&hash),
                expires_at: record.expires_at,
            };
            expiry::put(
                txn,
                Kind::DeviceUserCode,
                record.user_code.as_bytes(),
                record.expires_at,
                &index,
            )?;
            Ok(true)
        })
    }

    /// The live, undecided device authorization a typed user code names.
    pub fn device_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<([u8; 32], DeviceCodeRecord)>, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            let Some(index) = txn
                .open_table(tables::DEVICE_USER_CODES)?
                .get(user_code.as_bytes())?
                .map(|v| codec::decode::<DeviceUserCodeRecord>("device_user_codes", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let Some(hash) = unhex(&index.device) else {
                return Ok(None);
            };
            let record = txn
                .open_table(tables::DEVICE_CODES)?
                .get(hash.as_slice())?
                .map(|v| codec::decode::<DeviceCodeRecord>("device_codes", v.value()))
                .transpose()?
                .filter(|r| r.expires_at > now && r.state == DeviceState::Pending);
            Ok(record.map(|r| (hash, r)))
        })
    }

    /// Records the user's decision on a pending device authorization; its user code stops
    /// working at once. `false` if it was no longer pending (expired, decided, unknown).
    pub fn decide_device_code(
        &self,
        hash: [u8; 32],
        decision: DeviceState,
    ) -> Result<bool, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut record) = get_device(txn, &hash)? else {
                return Ok(false);
            };
            if record.expires_at <= now || record.state != DeviceState::Pending {
                return Ok(false);
            }
            txn.open_table(tables::DEVICE_USER_CODES)?
                .remove(record.user_code.as_bytes())?;
            record.state = decision;
            expiry::update(txn, Kind::DeviceCode, &hash, &record)?;
            Ok(true)
        })
    }

    /// A client's poll (RFC 8628 §3.4–3.5), in one transaction: an approved authorization
    /// is spent and its session created together, so two polls cannot both get tokens.
    pub fn poll_device_code(
        &self,
        hash: [u8; 32],
        client_id: &str,
        session: NewSession,
    ) -> Result<DevicePoll, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let Some(mut record) = get_device(txn, &hash)? else {
                return Ok(DevicePoll::Invalid);
            };
            if record.client_id != client_id {
                return Ok(DevicePoll::Invalid);
            }
            if record.expires_at <= now {
                return Ok(DevicePoll::Expired);
            }
            match record.state.clone() {
                DeviceState::Pending => {
                    let too_soon = record.last_poll > 0 && now - record.last_poll < record.interval;
                    record.last_poll = now;
                    let answer = if too_soon {
                        // §3.5: "the interval MUST be increased by 5 seconds for this and all
                        // subsequent requests".
                        record.interval += 5;
                        DevicePoll::SlowDown
                    } else {
                        DevicePoll::Pending
                    };
                    expiry::update(txn, Kind::DeviceCode, &hash, &record)?;
                    Ok(answer)
                }
                DeviceState::Denied => {
                    txn.open_table(tables::DEVICE_CODES)?
                        .remove(hash.as_slice())?;
                    Ok(DevicePoll::Denied)
                }
                DeviceState::Approved {
                    user_id,
                    auth_time,
                    sid,
                    amr,
                } => {
                    txn.open_table(tables::DEVICE_CODES)?
                        .remove(hash.as_slice())?;
                    session.create_in(txn, &user_id, &record.client_id, &record.scope, now)?;
                    Ok(DevicePoll::Issued {
                        scope: record.scope,
                        user_id,
                        auth_time,
                        sid,
                        amr,
                    })
                }
            }
        })
    }

    /// Stores a pushed authorization request (RFC 9126 §2) under its id.
    pub fn put_pushed_request(
        &self,
        id: &str,
        record: &AuthRequestRecord,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            expiry::put(
                txn,
                Kind::PushedRequest,
                id.as_bytes(),
                record.expires_at,
                record,
            )
        })
    }

    /// Takes a pushed request: once only (RFC 9126 §4), and only while live.
    pub fn take_pushed_request(&self, id: &str) -> Result<Option<AuthRequestRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let record = txn
                .open_table(tables::PUSHED_REQUESTS)?
                .remove(id.as_bytes())?
                .map(|v| codec::decode::<AuthRequestRecord>("pushed_requests", v.value()))
                .transpose()?;
            Ok(record.filter(|r| r.expires_at > now))
        })
    }
}
