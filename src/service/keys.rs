//! Signing keys between the store and the token code: new keys as records to store, stored
//! records as the key sets that sign. (The token code knows no records; the store knows no
//! cryptography.)

use crate::{
    store::{
        StoreError,
        records::{JwtKeyRecord, SigningKeyRecord},
    },
    token::{
        KeyError,
        jwt::{self, JwtKeyMaterial},
        paseto::{self, PasetoKeyPair},
    },
};

/// Key material that failed to be made, decoded or used, as the storage-level error the key
/// paths answer with.
pub(super) fn key_failed(e: KeyError) -> StoreError {
    StoreError::Encode(e.to_string())
}

/// A new access-token (PASETO v4.public) key created at `now`, signing at once.
pub fn new_access_token_key(now: i64) -> Result<SigningKeyRecord, StoreError> {
    let pair = paseto::generate_key_pair().map_err(key_failed)?;
    Ok(SigningKeyRecord {
        kid: pair.kid,
        secret: pair.secret,
        public: pair.public,
        created_at: now,
        retired_at: None,
        active_from: None,
    })
}

/// A new id_token key for `alg`, created at `now`, signing from `active_from` (`None`: at
/// once).
pub fn new_id_token_key(
    alg: &str,
    now: i64,
    active_from: Option<i64>,
) -> Result<JwtKeyRecord, StoreError> {
    let key = jwt::generate(alg).map_err(key_failed)?;
    Ok(JwtKeyRecord {
        kid: key.kid,
        alg: key.alg,
        private_der: key.private_der,
        jwk: key.jwk,
        created_at: now,
        retired_at: None,
        active_from,
    })
}

/// Stored access-token keys as the token code takes them.
pub fn access_token_keys(
    records: &[SigningKeyRecord],
) -> Vec<(PasetoKeyPair, crate::domain::KeyWindow)> {
    records
        .iter()
        .map(|r| {
            (
                PasetoKeyPair {
                    kid: r.kid.clone(),
                    secret: r.secret.clone(),
                    public: r.public.clone(),
                },
                r.window(),
            )
        })
        .collect()
}

/// Stored id_token keys as the token code takes them.
pub fn id_token_keys(records: &[JwtKeyRecord]) -> Vec<(JwtKeyMaterial, crate::domain::KeyWindow)> {
    records
        .iter()
        .map(|r| {
            (
                JwtKeyMaterial {
                    kid: r.kid.clone(),
                    alg: r.alg.clone(),
                    private_der: r.private_der.clone(),
                    jwk: r.jwk.clone(),
                },
                r.window(),
            )
        })
        .collect()
}
