//! Persisted signing keys.

use redb::ReadableTable;

use rand::RngCore;

use super::{Store, StoreError, codec, records::SigningKeyRecord, tables};

impl Store {
    /// All signing keys, newest first.
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
    /// Check and insert share a transaction, so two starts cannot both create one.
    pub fn ensure_signing_key(
        &self,
        generate: impl FnOnce() -> Result<SigningKeyRecord, StoreError>,
    ) -> Result<SigningKeyRecord, StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(tables::SIGNING_KEYS)?;
            let mut newest: Option<SigningKeyRecord> = None;
            for row in table.iter()? {
                let (_, v) = row?;
                let key: SigningKeyRecord = codec::decode("signing_keys", v.value())?;
                if key.retired_at.is_none()
                    && newest
                        .as_ref()
                        .is_none_or(|n| key.created_at > n.created_at)
                {
                    newest = Some(key);
                }
            }
            if let Some(key) = newest {
                return Ok(key);
            }
            let key = generate()?;
            let bytes = codec::encode(&key)?;
            table.insert(key.kid.as_str(), bytes.as_slice())?;
            Ok(key)
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

impl Store {
    /// The active id_token key for `alg`, created with `generate` if there is none.
    pub fn ensure_jwt_key(
        &self,
        alg: &str,
        generate: impl FnOnce(i64) -> Result<crate::token::jwt::JwtKeyRecord, StoreError>,
    ) -> Result<crate::token::jwt::JwtKeyRecord, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let mut table = txn.open_table(tables::JWT_KEYS)?;
            let mut newest: Option<crate::token::jwt::JwtKeyRecord> = None;
            for row in table.iter()? {
                let (_, v) = row?;
                let key: crate::token::jwt::JwtKeyRecord = codec::decode("jwt_keys", v.value())?;
                if key.alg == alg
                    && key.retired_at.is_none()
                    && newest
                        .as_ref()
                        .is_none_or(|n| key.created_at > n.created_at)
                {
                    newest = Some(key);
                }
            }
            if let Some(key) = newest {
                return Ok(key);
            }
            let key = generate(now)?;
            let bytes = codec::encode(&key)?;
            table.insert(key.kid.as_str(), bytes.as_slice())?;
            Ok(key)
        })
    }

    /// Every id_token key, newest first.
    pub fn jwt_keys(&self) -> Result<Vec<crate::token::jwt::JwtKeyRecord>, StoreError> {
        self.read(|txn| {
            let mut keys = Vec::new();
            for row in txn.open_table(tables::JWT_KEYS)?.iter()? {
                let (_, v) = row?;
                keys.push(codec::decode::<crate::token::jwt::JwtKeyRecord>(
                    "jwt_keys",
                    v.value(),
                )?);
            }
            keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
            Ok(keys)
        })
    }
}

impl Store {
    /// Retires the active PASETO and id_token keys and adds a new PASETO key from `generate`.
    /// Retired keys keep verifying (and stay published) until [`Store::prune_retired_keys`]
    /// drops them; new id_token keys are generated on first use.
    pub fn rotate_keys(
        &self,
        generate: impl FnOnce(i64) -> Result<SigningKeyRecord, StoreError>,
    ) -> Result<SigningKeyRecord, StoreError> {
        let now = self.clock().now();
        self.write(|txn| {
            let mut paseto = txn.open_table(tables::SIGNING_KEYS)?;
            let mut retire = Vec::new();
            for row in paseto.iter()? {
                let (_, v) = row?;
                let key: SigningKeyRecord = codec::decode("signing_keys", v.value())?;
                if key.retired_at.is_none() {
                    retire.push(key);
                }
            }
            for mut key in retire {
                key.retired_at = Some(now);
                let bytes = codec::encode(&key)?;
                paseto.insert(key.kid.as_str(), bytes.as_slice())?;
            }
            let fresh = generate(now)?;
            let bytes = codec::encode(&fresh)?;
            paseto.insert(fresh.kid.as_str(), bytes.as_slice())?;

            let mut jwt = txn.open_table(tables::JWT_KEYS)?;
            let mut retire = Vec::new();
            for row in jwt.iter()? {
                let (_, v) = row?;
                let key: crate::token::jwt::JwtKeyRecord = codec::decode("jwt_keys", v.value())?;
                if key.retired_at.is_none() {
                    retire.push(key);
                }
            }
            for mut key in retire {
                key.retired_at = Some(now);
                let bytes = codec::encode(&key)?;
                jwt.insert(key.kid.as_str(), bytes.as_slice())?;
            }
            Ok(fresh)
        })
    }

    /// Deletes keys retired more than `max_token_lifetime` seconds ago: nothing they signed
    /// can still be valid. Returns how many went.
    pub fn prune_retired_keys(&self, max_token_lifetime: i64) -> Result<usize, StoreError> {
        let cutoff = self.clock().now() - max_token_lifetime;
        self.write(|txn| {
            let mut removed = 0;
            let mut paseto = txn.open_table(tables::SIGNING_KEYS)?;
            let mut old = Vec::new();
            for row in paseto.iter()? {
                let (k, v) = row?;
                let key: SigningKeyRecord = codec::decode("signing_keys", v.value())?;
                if key.retired_at.is_some_and(|t| t < cutoff) {
                    old.push(k.value().to_string());
                }
            }
            for kid in old {
                paseto.remove(kid.as_str())?;
                removed += 1;
            }
            let mut jwt = txn.open_table(tables::JWT_KEYS)?;
            let mut old = Vec::new();
            for row in jwt.iter()? {
                let (k, v) = row?;
                let key: crate::token::jwt::JwtKeyRecord = codec::decode("jwt_keys", v.value())?;
                if key.retired_at.is_some_and(|t| t < cutoff) {
                    old.push(k.value().to_string());
                }
            }
            for kid in old {
                jwt.remove(kid.as_str())?;
                removed += 1;
            }
            Ok(removed)
        })
    }
}
