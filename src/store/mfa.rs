//! Second factors (TOTP, recovery codes, passkeys) and the short-lived challenges of the
//! flows that use them (enrolment, the second step of a sign-in, passwordless sign-in, the
//! mailed unlock link).
//!
//! A user's factors are one record, so every change (a TOTP step spent, a recovery code used,
//! a passkey's counter moved) is one read-modify-write in one transaction: two requests that
//! race with the same code cannot both succeed.

use super::kv::ReadTransaction;
use serde::{Deserialize, Serialize};

use super::{
    Store, StoreError, codec,
    expiry::{self, Kind},
    tables,
};

/// Every second factor of one user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FactorsRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpRecord>,
    /// SHA-256 (hex) of each unused recovery code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_codes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passkeys: Vec<PasskeyRecord>,
}

impl FactorsRecord {
    /// Whether the user has a second factor (recovery codes alone are a way back, not one).
    pub fn has_factor(&self) -> bool {
        self.totp.is_some() || !self.passkeys.is_empty()
    }

    fn is_empty(&self) -> bool {
        !self.has_factor() && self.recovery_codes.is_empty()
    }
}

/// A confirmed TOTP authenticator (RFC 6238).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotpRecord {
    /// The shared secret, sealed (`token::sealed`) to the user.
    pub secret: String,
    pub created_at: i64,
    /// The last time step a code was accepted for: that step and earlier ones are spent
    /// (RFC 6238 §5.2, one use per code).
    pub last_step: u64,
}

/// A registered passkey (a WebAuthn credential).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyRecord {
    /// Our short id for it (the API's path parameter), not the credential id.
    pub id: String,
    pub name: String,
    /// The `webauthn_rs::prelude::Passkey`, as the crate serialises it (public key, counter,
    /// backup state).
    pub credential: serde_json::Value,
    pub created_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// A challenge waiting for the user's next step (stored under the SHA-256 of its token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRecord {
    pub expires_at: i64,
    #[serde(default)]
    pub user_id: Option<String>,
    /// Wrong answers so far (the second step of a sign-in allows a few).
    #[serde(default)]
    pub attempts: u32,
    pub step: ChallengeStep,
}

/// What a challenge is for, with the state its next step needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ChallengeStep {
    /// A TOTP secret shown to the user, kept until a first valid code confirms it.
    TotpEnrolment {
        secret: String,
        /// Enrolment inside a sign-in whose password was right (the `amr` so far), under a
        /// policy that requires a factor: confirming it signs the user in. `None`: a
        /// signed-in user adding a factor.
        #[serde(default)]
        sign_in: Option<Vec<String>>,
        /// That sign-in came through this upstream provider.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idp: Option<String>,
    },
    /// A passkey registration under way (`webauthn_rs` `PasskeyRegistration`).
    PasskeyRegistration {
        name: String,
        state: serde_json::Value,
    },
    /// A sign-in whose first factor passed (`amr` so far), waiting for the second. With
    /// passkeys, the authentication state of the assertion it offered.
    SecondFactor {
        amr: Vec<String>,
        #[serde(default)]
        passkey_state: Option<serde_json::Value>,
        /// The first factor was a sign-in through this upstream provider.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idp: Option<String>,
    },
    /// A passwordless, usernameless passkey sign-in (`DiscoverableAuthentication`).
    Passwordless { state: serde_json::Value },
    /// The link mailed to an account's owner while its sign-ins are throttled: whoever holds
    /// it signs in without the per-account delay, once.
    Unlock,
    /// The first-run setup link: whoever holds it creates the first administrator, once,
    /// while there is none.
    FirstAdmin,
    /// A sign-in sent to an upstream provider (stored under the SHA-256 of its `state`):
    /// what the callback checks and needs.
    UpstreamAttempt {
        upstream: String,
        /// The pending authorization request it continues (empty: the account pages).
        request: String,
        /// PKCE (RFC 7636) `code_verifier`.
        verifier: String,
        /// OIDC Core §3.1.2.1 `nonce`, expected back in the id_token.
        nonce: String,
        /// SHA-256 (hex) of the browser-binding cookie set when it started.
        binding: String,
        /// Linking from the account page: the signed-in user the identity goes to.
        #[serde(default)]
        link_to: Option<String>,
    },
    /// An upstream identity that came back with no account linked, waiting for its owner to
    /// prove an existing account (to link it) or to choose a username (a new account).
    UpstreamIdentity {
        upstream: String,
        request: String,
        subject: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        email: Option<String>,
        #[serde(default)]
        email_verified: bool,
        #[serde(default)]
        name: Option<String>,
        /// The URL of the person's picture at the upstream, brought over on creation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        picture: Option<String>,
        /// `amr` values the upstream vouched for (counted only for a trusted upstream).
        #[serde(default)]
        amr: Vec<String>,
        binding: String,
    },
}

fn read_factors(txn: &ReadTransaction, user_id: &str) -> Result<Option<FactorsRecord>, StoreError> {
    txn.open_table(tables::MFA_FACTORS)?
        .get(user_id)?
        .map(|v| codec::decode("mfa_factors", v.value()))
        .transpose()
}

impl Store {
    /// A user's factors (none when they have none).
    pub fn factors(&self, user_id: &str) -> Result<FactorsRecord, StoreError> {
        Ok(self
            .read(|txn| read_factors(txn, user_id))?
            .unwrap_or_default())
    }

    /// Changes a user's factors in one transaction: `change` sees the current record and
    /// decides; on `Err` nothing is written. Refused (`Ok(None)`) when the user is gone.
    pub fn update_factors<T, E>(
        &self,
        user_id: &str,
        change: impl FnOnce(&mut FactorsRecord) -> Result<T, E>,
    ) -> Result<Option<Result<T, E>>, StoreError> {
        self.write(|txn| {
            if txn.open_table(tables::USERS)?.get(user_id)?.is_none() {
                return Ok(None);
            }
            let mut table = txn.open_table(tables::MFA_FACTORS)?;
            let mut record: FactorsRecord = table
                .get(user_id)?
                .map(|v| codec::decode("mfa_factors", v.value()))
                .transpose()?
                .unwrap_or_default();
            let outcome = change(&mut record);
            if outcome.is_ok() {
                if record.is_empty() {
                    table.remove(user_id)?;
                } else {
                    table.insert(user_id, codec::encode(&record)?.as_slice())?;
                }
            }
            Ok(Some(outcome))
        })
    }

    /// Stores a challenge under the SHA-256 of its token.
    pub fn put_challenge(
        &self,
        hash: [u8; 32],
        record: &ChallengeRecord,
    ) -> Result<(), StoreError> {
        self.write(|txn| expiry::put(txn, Kind::MfaChallenge, &hash, record.expires_at, record))
    }

    /// Removes and returns a live challenge: each is answered at most once (a caller that
    /// allows another try puts it back).
    pub fn take_challenge(&self, hash: [u8; 32]) -> Result<Option<ChallengeRecord>, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let record = txn
                .open_table(tables::MFA_CHALLENGES)?
                .remove(hash.as_slice())?
                .map(|v| codec::decode::<ChallengeRecord>("mfa_challenges", v.value()))
                .transpose()?;
            Ok(record.filter(|r| r.expires_at > now))
        })
    }

    /// A live challenge, left in place.
    pub fn peek_challenge(&self, hash: [u8; 32]) -> Result<Option<ChallengeRecord>, StoreError> {
        let now = self.clock().now();
        self.read(|txn| {
            Ok(txn
                .open_table(tables::MFA_CHALLENGES)?
                .get(hash.as_slice())?
                .map(|v| codec::decode::<ChallengeRecord>("mfa_challenges", v.value()))
                .transpose()?
                .filter(|r| r.expires_at > now))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    /// `store` with a user row (only its presence matters to `update_factors`).
    fn with_user(store: Store) -> (Store, String) {
        store
            .write(|txn| {
                txn.open_table(tables::USERS)?
                    .insert("u1", b"{}".as_slice())?;
                Ok(())
            })
            .unwrap();
        (store, "u1".to_string())
    }

    #[test]
    fn a_refused_change_writes_nothing_and_an_emptied_record_is_removed() {
        for (backend, store) in crate::store::testing::stores(&Clock::manual()) {
            println!("on {backend}");
            let (store, id) = with_user(store);
            let r = store
                .update_factors(&id, |f| {
                    f.recovery_codes.push("aa".into());
                    Err::<(), _>("no")
                })
                .unwrap();
            assert_eq!(r, Some(Err("no")));
            assert!(store.factors(&id).unwrap().recovery_codes.is_empty());
            store
                .update_factors(&id, |f| {
                    f.recovery_codes.push("aa".into());
                    Ok::<_, ()>(())
                })
                .unwrap();
            assert_eq!(store.factors(&id).unwrap().recovery_codes, ["aa"]);
            store
                .update_factors(&id, |f| {
                    f.recovery_codes.clear();
                    Ok::<_, ()>(())
                })
                .unwrap();
            let rows = store.read(|txn| txn.open_table(tables::MFA_FACTORS)?.len());
            assert_eq!(rows.unwrap(), 0);
            assert_eq!(
                store.update_factors("nobody", |_| Ok::<_, ()>(())).unwrap(),
                None
            );
        }
    }

    #[test]
    fn a_challenge_is_taken_once_and_not_after_it_expires() {
        let clock = Clock::manual();
        for (backend, store) in crate::store::testing::stores(&clock) {
            println!("on {backend}");
            let now = clock.now();
            let record = ChallengeRecord {
                expires_at: now + 60,
                user_id: None,
                attempts: 0,
                step: ChallengeStep::Unlock,
            };
            store.put_challenge([1; 32], &record).unwrap();
            store.put_challenge([2; 32], &record).unwrap();
            assert!(store.peek_challenge([1; 32]).unwrap().is_some());
            assert!(store.take_challenge([1; 32]).unwrap().is_some());
            assert!(store.take_challenge([1; 32]).unwrap().is_none());
            clock.advance(61);
            assert!(store.take_challenge([2; 32]).unwrap().is_none());
        }
    }
}
