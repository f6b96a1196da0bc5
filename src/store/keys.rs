//! Persisted key material: PASETO access-token keys, id_token keys and named secrets.
//!
//! Both kinds of signing key follow one life cycle — the newest unretired key signs, retired
//! keys keep verifying until pruned — written once below over `KeyRecord`.

use rand::RngCore;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};

use super::{Store, StoreError, codec, records::SigningKeyRecord, tables};
use crate::token::jwt::JwtKeyRecord;

type KeyTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// What the key life cycle needs to know about a stored key.
trait KeyRecord: Serialize + DeserializeOwned {
    const TABLE: KeyTable;
    const NAME: &'static str;
    fn kid(&self) -> &str;
    fn created_at(&self) -> i64;
    fn retired_at(&self) -> Option<i64>;
    fn retire(&mut self, at: i64);
}

/// Both key records keep their life cycle in the same fields.
macro_rules! key_record {
    ($record:ty, $table:expr, $name:literal) => {
        impl KeyRecord for $record {
            const TABLE: KeyTable = $table;
            const NAME: &'static str = $name;
            fn kid(&self) -> &str {
                &self.kid
            }
            fn created_at(&self) -> i64 {
                self.created_at
            }
            fn retired_at(&self) -> Option<i64> {
                self.retired_at
            }
            fn retire(&mut self, at: i64) {
                self.retired_at = Some(at);
            }
        }
    };
}

key_record!(SigningKeyRecord, tables::SIGNING_KEYS, "signing_keys");
key_record!(JwtKeyRecord, tables::JWT_KEYS, "jwt_keys");

/// Every key of one kind in `txn`.
fn all_keys<R: KeyRecord>(txn: &WriteTransaction) -> Result<Vec<R>, StoreError> {
    let table = txn.open_table(R::TABLE)?;
    let mut keys = Vec::new();
    for row in table.iter()? {
        let (_, v) = row?;
        keys.push(codec::decode::<R>(R::NAME, v.value())?);
    }
    Ok(keys)
}

fn put_key<R: KeyRecord>(txn: &WriteTransaction, key: &R) -> Result<(), StoreError> {
    let bytes = codec::encode(key)?;
    txn.open_table(R::TABLE)?
        .insert(key.kid(), bytes.as_slice())?;
    Ok(())
}

/// The newest unretired key accepted by `wanted`, or the one `generate` makes (stored).
/// Check and insert share the transaction, so two starts cannot both create one.
fn ensure_key<R: KeyRecord>(
    txn: &WriteTransaction,
    wanted: impl Fn(&R) -> bool,
    generate: impl FnOnce() -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let newest = all_keys::<R>(txn)?
        .into_iter()
        .filter(|k| k.retired_at().is_none() && wanted(k))
        .max_by_key(|k| k.created_at());
    if let Some(key) = newest {
        return Ok(key);
    }
    let key = generate()?;
    put_key(txn, &key)?;
    Ok(key)
}

fn retire_all<R: KeyRecord>(txn: &WriteTransaction, now: i64) -> Result<(), StoreError> {
    for mut key in all_keys::<R>(txn)? {
        if key.retired_at().is_none() {
            key.retire(now);
            put_key(txn, &key)?;
        }
    }
    Ok(())
}

fn prune<R: KeyRecord>(txn: &WriteTransaction, cutoff: i64) -> Result<usize, StoreError> {
    let old: Vec<R> = all_keys::<R>(txn)?
        .into_iter()
        .filter(|k| k.retired_at().is_some_and(|t| t < cutoff))
        .collect();
    let mut table = txn.open_table(R::TABLE)?;
    for key in &old {
        table.remove(key.kid())?;
    }
    Ok(old.len())
}

impl Store {
    /// All PASETO signing keys, newest first.
    pub fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(tables::SIGNING_KEYS)?;
            let mut keys = Vec::new();
            for row in table.iter()? {
                let (_, v) = row?;
                keys.push(codec::decode::<SigningKeyRecord>(
                    "signing_keys",
                    v.value(),
                )?);
            }
            keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.kid.cmp(&a.kid)));
            Ok(keys)
        })
    }

    /// Returns the active signing key, inserting the one `generate` makes if there is none.
    pub fn ensure_signing_key(
        &self,
        generate: impl FnOnce() -> Result<SigningKeyRecord, StoreError>,
    ) -> Result<SigningKeyRecord, StoreError> {
        self.write(|txn| ensure_key(txn, |_: &SigningKeyRecord| true, generate))
    }

    /// The active id_token key for `alg`, created with `generate` if there is none.
    pub fn ensure_jwt_key(
        &self,
        alg: &str,
        generate: impl FnOnce(i64) -> Result<JwtKeyRecord, StoreError>,
    ) -> Result<JwtKeyRecord, StoreError> {
        let now = self.clock().now();
        self.write(|txn| ensure_key(txn, |k: &JwtKeyRecord| k.alg == alg, || generate(now)))
    }

    /// Every id_token key, newest first.
    pub fn jwt_keys(&self) -> Result<Vec<JwtKeyRecord>, StoreError> {
        self.read(|txn| {
            let mut keys = Vec::new();
            for row in txn.open_table(tables::JWT_KEYS)?.iter()? {
                let (_, v) = row?;
                keys.push(codec::decode::<JwtKeyRecord>("jwt_keys", v.value())?);
            }
            keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
            Ok(keys)
        })
    }

    /// Retires the active PASETO and id_token keys and adds a new PASETO key from `generate`.
    /// Retired keys keep verifying (and stay published) until [`Store::prune_retired_keys`]
    /// drops them; new id_token keys are generated on first use.
    pub fn rotate_keys(
        &self,
        generate: impl FnOnce(i64) -> Result<SigningKeyRecord, StoreError>,
    ) -> Result<SigningKeyRecord, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            retire_all::<SigningKeyRecord>(txn, now)?;
            retire_all::<JwtKeyRecord>(txn, now)?;
            let fresh = generate(now)?;
            put_key(txn, &fresh)?;
            Ok(fresh)
        })
    }

    /// Deletes keys retired more than `max_token_lifetime` seconds ago: nothing they signed
    /// can still be valid. Returns how many went.
    pub fn prune_retired_keys(&self, max_token_lifetime: i64) -> Result<usize, StoreError> {
        let cutoff = self.clock().now() - max_token_lifetime;
        self.write(|txn| {
            Ok(prune::<SigningKeyRecord>(txn, cutoff)? + prune::<JwtKeyRecord>(txn, cutoff)?)
        })
    }
}

impl Store {
    /// A 32-byte secret by name, generated and persisted on first use.
    pub fn ensure_secret(&self, name: &str) -> Result<[u8; 32], StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(tables::SECRETS)?;
            if let Some(v) = table.get(name)? {
                let bytes = v.value();
                if let Ok(key) = <[u8; 32]>::try_from(bytes) {
                    return Ok(key);
                }
                return Err(StoreError::Corrupt {
                    table: "secrets",
                    detail: format!("secret {name} has {} bytes, expected 32", bytes.len()),
                });
            }
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            table.insert(name, key.as_slice())?;
            Ok(key)
        })
    }
}
