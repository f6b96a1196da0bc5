//! Persisted key material: PASETO access-token keys, id_token keys and named secrets.
//!
//! Both kinds of signing key follow one life cycle — the newest unretired key signs, retired
//! keys keep verifying until pruned — written once below over `KeyRecord`.

use rand::RngCore;

use super::kv::{Table, WriteTransaction};
use crate::domain::KeyWindow;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    Store, StoreError, codec,
    records::{JwtKeyRecord, SigningKeyRecord},
    tables,
};

type KeyTable = Table<&'static str, &'static [u8]>;

/// What the key life cycle needs to know about a stored key.
trait KeyRecord: Serialize + DeserializeOwned {
    const TABLE: KeyTable;
    const NAME: &'static str;
    fn kid(&self) -> &str;
    fn window(&self) -> KeyWindow;
    fn retire(&mut self, at: i64);
    /// Signs at `now`: active, and not (yet) retired.
    fn signs_at(&self, now: i64) -> bool {
        self.window().signs_at(now)
    }
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
            fn window(&self) -> KeyWindow {
                <$record>::window(self)
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

/// The newest key accepted by `wanted` that signs at `now`, or the one `generate` makes
/// (stored). Check and insert share the transaction, so two starts cannot both create one.
fn ensure_key<R: KeyRecord>(
    txn: &WriteTransaction,
    now: i64,
    wanted: impl Fn(&R) -> bool,
    generate: impl FnOnce() -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let newest = all_keys::<R>(txn)?
        .into_iter()
        .filter(|k| k.signs_at(now) && wanted(k))
        .max_by_key(|k| k.window().signs_from());
    if let Some(key) = newest {
        return Ok(key);
    }
    let key = generate()?;
    put_key(txn, &key)?;
    Ok(key)
}

/// Retires at `at` every key that would still sign then (a key staged by an earlier rotation
/// included): from `at` only the keys of this rotation sign.
fn retire_all<R: KeyRecord>(txn: &WriteTransaction, at: i64) -> Result<(), StoreError> {
    for mut key in all_keys::<R>(txn)? {
        if key.window().retired_at.is_none_or(|r| r > at) {
            key.retire(at);
            put_key(txn, &key)?;
        }
    }
    Ok(())
}

fn prune<R: KeyRecord>(txn: &WriteTransaction, cutoff: i64) -> Result<usize, StoreError> {
    let old: Vec<R> = all_keys::<R>(txn)?
        .into_iter()
        .filter(|k| k.window().retired_at.is_some_and(|t| t < cutoff))
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
        let now = self.clock().now();
        self.write(|txn| ensure_key(txn, now, |_: &SigningKeyRecord| true, generate))
    }

    /// The active id_token key for `alg`, created with `generate` if there is none.
    pub fn ensure_jwt_key(
        &self,
        alg: &str,
        generate: impl FnOnce(i64) -> Result<JwtKeyRecord, StoreError>,
    ) -> Result<JwtKeyRecord, StoreError> {
        let now = self.clock().now();
        self.write(|txn| ensure_key(txn, now, |k: &JwtKeyRecord| k.alg == alg, || generate(now)))
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

    /// Rotates every signing key: new PASETO and id_token keys (one per algorithm `jwt_algs`
    /// names, from `generate_jwt`) are stored and published now and sign from `now + stage`;
    /// the current keys stop signing then. With `stage` 0 the switch is immediate; a stage
    /// at least as long as relying parties cache the JWKS (and PASERK) lets them learn the
    /// new keys before any token uses them. Old keys keep verifying until pruned.
    pub fn rotate_keys(
        &self,
        stage: i64,
        generate_paseto: impl FnOnce(i64) -> Result<SigningKeyRecord, StoreError>,
        jwt_algs: &[&str],
        generate_jwt: impl Fn(&str, i64, Option<i64>) -> Result<JwtKeyRecord, StoreError>,
    ) -> Result<(SigningKeyRecord, Vec<JwtKeyRecord>), StoreError> {
        let now = self.clock().now();
        let switch = now + stage.max(0);
        let active_from = (switch > now).then_some(switch);
        // Key generation (RSA takes a while) happens before the transaction opens.
        let mut paseto = generate_paseto(now)?;
        paseto.active_from = active_from;
        let jwts = jwt_algs
            .iter()
            .map(|alg| generate_jwt(alg, now, active_from))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(|txn| {
            retire_all::<SigningKeyRecord>(txn, switch)?;
            retire_all::<JwtKeyRecord>(txn, switch)?;
            put_key(txn, &paseto)?;
            for key in &jwts {
                put_key(txn, key)?;
            }
            Ok(())
        })?;
        Ok((paseto, jwts))
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
