//! The JWTs this server signs — OpenID Connect id_tokens, RFC 9068 access tokens for clients
//! that ask for them, Back-Channel Logout tokens — with the stored id_token keys, and the
//! JWKS that publishes them.
//!
//! Keys exist for every algorithm of [`ID_TOKEN_ALGS`] from the first start (made in the
//! background) and after every rotation; a rotation may be *staged*: the next key is
//! published at once and signs only from its activation, so relying parties that cache the
//! JWKS already know it.

use std::sync::Arc;

use serde_json::Value;

use super::keys::key_failed;
use crate::{
    store::{Store, StoreError},
    token::jwt::{ID_TOKEN_ALGS, JwtKeySet, VerifiedJwt},
};

/// Signs JWTs, verifies the ones we issued, and publishes the keys.
pub struct IdTokenSigner {
    store: Store,
    /// Set once the missing keys were made and the first key set loaded.
    ensured: tokio::sync::OnceCell<()>,
    /// The key set in use, with the stored keys it was made from (a staged key is already
    /// among them); replaced when [`IdTokenSigner::reload`] finds the stored keys changed.
    current: std::sync::RwLock<Option<LoadedKeys>>,
}

/// A key set and what it was loaded from: each stored key's id and signing window.
struct LoadedKeys {
    stored: Vec<(String, crate::domain::KeyWindow)>,
    set: Arc<JwtKeySet>,
}

/// Runs `f` on a thread of its own at nice 19: making the keys at a first start (RSA
/// generation takes a tenth of a second of CPU and more) runs alongside the first requests,
/// and must not hold them up on a one-core machine.
async fn at_low_priority<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("portcullis-keygen".into())
        .spawn(move || {
            // SAFETY: setpriority with this thread's id changes only this thread's nice value
            // (threads are scheduled separately on Linux); the thread ends with `f`.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 19);
            }
            let _ = done.send(f());
        })
        .map_err(|e| StoreError::Task(format!("could not start the key thread: {e}")))?;
    result
        .await
        .map_err(|_| StoreError::Task("the key thread ended without an answer".into()))
}

/// Generates the keys that are missing: one signing now for every algorithm (only a read
/// when none is missing).
fn ensure_every_key(store: &Store) -> Result<(), StoreError> {
    let now = store.clock().now();
    let keys = store.jwt_keys()?;
    for alg in ID_TOKEN_ALGS {
        if !keys
            .iter()
            .any(|k| k.alg == alg && k.window().signs_at(now))
        {
            store.ensure_jwt_key(alg, |now| super::keys::new_id_token_key(alg, now, None))?;
        }
    }
    Ok(())
}

impl IdTokenSigner {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            ensured: tokio::sync::OnceCell::new(),
            current: std::sync::RwLock::new(None),
        }
    }

    /// Reads the stored keys again and uses them from now on if any was added, retired or
    /// removed since (a rotation made by another node sharing the database, or by
    /// `portcullis keys rotate`); returns whether they changed.
    pub async fn reload(&self) -> Result<bool, StoreError> {
        if self.ensured.get().is_none() {
            // Not loaded yet: the first use loads them as they are then.
            return Ok(false);
        }
        let records = self.store.run(|s| s.jwt_keys()).await?;
        self.install(&records)
    }

    /// Uses the key set of `records` unless it is the one in use; whether it replaced one.
    fn install(&self, records: &[crate::store::records::JwtKeyRecord]) -> Result<bool, StoreError> {
        let mut stored: Vec<_> = records
            .iter()
            .map(|r| (r.kid.clone(), r.window()))
            .collect();
        stored.sort_by(|a, b| a.0.cmp(&b.0));
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| c.stored == stored) {
            return Ok(false);
        }
        let set = JwtKeySet::load(&super::keys::id_token_keys(records)).map_err(|e| {
            StoreError::Corrupt {
                table: "jwt_keys",
                detail: e.to_string(),
            }
        })?;
        let replaced = current.is_some();
        *current = Some(LoadedKeys {
            stored,
            set: Arc::new(set),
        });
        Ok(replaced)
    }

    /// Makes sure a key signing now exists for each algorithm in [`ID_TOKEN_ALGS`], so all
    /// are published before any signs (a relying party that cached the JWKS knows them), and
    /// loads the key set. Started in the background at start; the first use waits for it.
    pub async fn ensure_keys(&self) -> Result<(), StoreError> {
        self.key_set().await.map(|_| ())
    }

    async fn key_set(&self) -> Result<Arc<JwtKeySet>, StoreError> {
        self.ensured
            .get_or_try_init(|| async {
                let store = self.store.clone();
                let records = at_low_priority(move || {
                    ensure_every_key(&store)?;
                    store.jwt_keys()
                })
                .await??;
                self.install(&records).map(|_| ())
            })
            .await?;
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|c| c.set.clone())
            .ok_or_else(|| StoreError::Task("the id_token keys were not loaded".into()))
    }

    /// Signs `claims` as a JWT of type `typ` (RFC 7515) with the key that signs now for
    /// `alg` (one of [`ID_TOKEN_ALGS`]; anything else falls back to RS256).
    pub async fn sign_typed(
        &self,
        alg: &str,
        typ: &str,
        claims: &Value,
    ) -> Result<String, StoreError> {
        let now = self.store.clock().now();
        let unsigned = self
            .key_set()
            .await?
            .prepare(alg, typ, claims, now)
            .map_err(key_failed)?;
        if !unsigned.is_slow() {
            return unsigned.sign().map_err(key_failed);
        }
        // RSA signing takes about a millisecond: keep it off the async workers.
        tokio::task::spawn_blocking(move || unsigned.sign().map_err(key_failed))
            .await
            .map_err(|e| StoreError::Encode(format!("signing task failed: {e}")))?
    }

    /// Signs an id_token (`typ: JWT`).
    pub async fn sign(&self, alg: &str, claims: &Value) -> Result<String, StoreError> {
        self.sign_typed(alg, "JWT", claims).await
    }

    /// Verifies a JWT this server signed (see [`JwtKeySet::verify`]).
    pub async fn verify(&self, token: &str, issuer: &str) -> Option<VerifiedJwt> {
        self.key_set().await.ok()?.verify(token, issuer)
    }

    /// Verifies an `id_token_hint` (see [`IdTokenSigner::verify`]); returns its claims.
    pub async fn verify_hint(&self, token: &str, issuer: &str) -> Option<Value> {
        self.verify(token, issuer)
            .await
            .filter(|v| {
                v.typ
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case("JWT"))
            })
            .map(|v| v.claims)
    }

    /// The JWKS document: every key — staged, active, or retired but not yet pruned (its
    /// tokens may still be live). Served from memory: a GET writes nothing.
    pub async fn jwks(&self) -> Result<Value, StoreError> {
        Ok(self.key_set().await?.jwks().clone())
    }
}
