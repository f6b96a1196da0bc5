//! JWTs this server signs — OpenID Connect id_tokens, RFC 9068 access tokens for clients that
//! ask for them, Back-Channel Logout tokens — and the JWKS that publishes their keys.
//!
//! Algorithms: RS256 (the OIDC default), EdDSA, and its fully specified name Ed25519
//! (RFC 9864 §2.2), each with its own key so that every JWK names exactly one `alg`.
//! Keys exist for every algorithm from the first start (made in the background) and after
//! every rotation; a rotation may be *staged*: the next key is published at once and signs
//! only from `active_from`, so relying parties that cache the JWKS already know it.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::{Store, StoreError};

/// The signing algorithms offered for id_tokens (and JWT access tokens).
pub const ID_TOKEN_ALGS: [&str; 3] = ["RS256", "EdDSA", "Ed25519"];

/// A persisted id_token signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtKeyRecord {
    pub kid: String,
    /// `RS256`, `EdDSA` or `Ed25519`.
    pub alg: String,
    /// Private key: PKCS#1 DER (RSA) or PKCS#8 DER (Ed25519), base64url.
    pub private_der: String,
    /// The public JWK.
    pub jwk: Value,
    pub created_at: i64,
    /// When it stops signing (it stays published until pruned). May lie in the future: a
    /// staged rotation retires the current key when the next one becomes active.
    #[serde(default)]
    pub retired_at: Option<i64>,
    /// When it starts signing (`None`: from `created_at`). Later than `created_at` for a key
    /// staged by `keys rotate --stage`: published now, used from then.
    #[serde(default)]
    pub active_from: Option<i64>,
}

/// A new key for `alg`, created at `now`, signing from `active_from` (`None`: at once).
pub fn generate(alg: &str, now: i64, active_from: Option<i64>) -> Result<JwtKeyRecord, StoreError> {
    let kid = crate::token::opaque::random_token(12);
    let (der, jwk) = match alg {
        "RS256" => {
            use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| StoreError::Encode(format!("RSA key generation failed: {e}")))?;
            let der = key
                .to_pkcs1_der()
                .map_err(|e| StoreError::Encode(format!("RSA key encoding failed: {e}")))?;
            let public = key.to_public_key();
            let jwk = json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            });
            (der.as_bytes().to_vec(), jwk)
        }
        _ => {
            let pair = ed25519_compact::KeyPair::generate();
            let seed = pair.sk.seed();
            // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410 §7).
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            der.extend_from_slice(seed.as_ref());
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": alg, "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(pair.pk.as_ref()),
            });
            (der, jwk)
        }
    };
    Ok(JwtKeyRecord {
        kid,
        alg: alg.to_string(),
        private_der: URL_SAFE_NO_PAD.encode(der),
        jwk,
        created_at: now,
        retired_at: None,
        active_from,
    })
}

impl JwtKeyRecord {
    /// Whether this key signs at `now`: active, and not (yet) retired.
    pub fn signs_at(&self, now: i64) -> bool {
        crate::store::records::key_signs_at(self.created_at, self.active_from, self.retired_at, now)
    }
}

/// The `jsonwebtoken` algorithm behind one of [`ID_TOKEN_ALGS`]: `Ed25519` is EdDSA over
/// Ed25519 under its fully specified name (RFC 9864), the same signature.
fn algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "RS256" => Some(Algorithm::RS256),
        "EdDSA" | "Ed25519" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// A stored key, decoded once.
struct LoadedKey {
    record: JwtKeyRecord,
    signing: EncodingKey,
    verifying: DecodingKey,
}

impl LoadedKey {
    fn load(record: JwtKeyRecord) -> Result<Self, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            table: "jwt_keys",
            detail: format!("key {}: {detail}", record.kid),
        };
        let der = URL_SAFE_NO_PAD
            .decode(&record.private_der)
            .map_err(|e| corrupt(e.to_string()))?;
        let text = |field: &str| {
            record.jwk[field]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| corrupt(format!("the JWK has no `{field}`")))
        };
        let (signing, verifying) = match algorithm(&record.alg) {
            Some(Algorithm::RS256) => (
                EncodingKey::from_rsa_der(&der),
                DecodingKey::from_rsa_components(&text("n")?, &text("e")?)
                    .map_err(|e| corrupt(e.to_string()))?,
            ),
            Some(_) => (
                EncodingKey::from_ed_der(&der),
                DecodingKey::from_ed_components(&text("x")?).map_err(|e| corrupt(e.to_string()))?,
            ),
            None => return Err(corrupt(format!("unknown algorithm {}", record.alg))),
        };
        Ok(Self {
            record,
            signing,
            verifying,
        })
    }
}

/// Every key, loaded, and the JWKS document that publishes them.
struct KeySet {
    keys: Vec<LoadedKey>,
    jwks: Value,
}

/// Signs JWTs, verifies the ones we issued, and publishes the keys.
pub struct IdTokenSigner {
    store: Store,
    /// Loaded once (after making any missing key): keys change only while the server is
    /// stopped (`portcullis keys rotate`), and a staged key is already among them.
    keys: tokio::sync::OnceCell<Arc<KeySet>>,
}

/// A JWT this server signed whose signature and issuer check out.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    /// The header's `typ`, if any (`at+jwt` for RFC 9068 access tokens).
    pub typ: Option<String>,
    pub claims: Value,
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

impl IdTokenSigner {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            keys: tokio::sync::OnceCell::new(),
        }
    }

    /// Makes sure a key signing now exists for each algorithm in [`ID_TOKEN_ALGS`], so all
    /// are published before any signs (a relying party that cached the JWKS knows them), and
    /// loads the key set. Started in the background at start; the first use waits for it.
    pub async fn ensure_keys(&self) -> Result<(), StoreError> {
        self.key_set().await.map(|_| ())
    }

    async fn key_set(&self) -> Result<&Arc<KeySet>, StoreError> {
        self.keys
            .get_or_try_init(|| async {
                let store = self.store.clone();
                let records = at_low_priority(move || {
                    ensure_every_key(&store)?;
                    store.jwt_keys()
                })
                .await??;
                let jwks =
                    json!({ "keys": records.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
                let keys = records
                    .into_iter()
                    .map(LoadedKey::load)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Arc::new(KeySet { keys, jwks }))
            })
            .await
    }

    /// Signs `claims` as a JWT of type `typ` (RFC 7515) with the key that signs now for
    /// `alg` (one of [`ID_TOKEN_ALGS`]; anything else falls back to RS256).
    pub async fn sign_typed(
        &self,
        alg: &str,
        typ: &str,
        claims: &Value,
    ) -> Result<String, StoreError> {
        let alg = if ID_TOKEN_ALGS.contains(&alg) {
            alg
        } else {
            "RS256"
        };
        let now = self.store.clock().now();
        let set = self.key_set().await?;
        let key = set
            .keys
            .iter()
            .filter(|k| k.record.alg == alg && k.record.signs_at(now))
            .max_by_key(|k| k.record.active_from.unwrap_or(k.record.created_at))
            .ok_or_else(|| StoreError::Corrupt {
                table: "jwt_keys",
                detail: format!("no {alg} key signs now; run `portcullis keys rotate`"),
            })?;
        let header = json!({"alg": alg, "typ": typ, "kid": key.record.kid});
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let algorithm = algorithm(alg).unwrap_or(Algorithm::RS256);
        let sign = move |signing: &EncodingKey| {
            jsonwebtoken::crypto::sign(message.as_bytes(), signing, algorithm)
                .map(|sig| format!("{message}.{sig}"))
                .map_err(|e| StoreError::Encode(format!("JWT signing failed: {e}")))
        };
        if algorithm != Algorithm::RS256 {
            // Ed25519 signs in microseconds: less than the hop to the blocking pool.
            return sign(&key.signing);
        }
        // RSA signing takes about a millisecond: keep it off the async workers.
        let signing = key.signing.clone();
        tokio::task::spawn_blocking(move || sign(&signing))
            .await
            .map_err(|e| StoreError::Encode(format!("signing task failed: {e}")))?
    }

    /// Signs an id_token (`typ: JWT`).
    pub async fn sign(&self, alg: &str, claims: &Value) -> Result<String, StoreError> {
        self.sign_typed(alg, "JWT", claims).await
    }

    /// Verifies a JWT this server signed: a published key by `kid`, that key's algorithm,
    /// the signature, and our issuer. Time claims are left to the caller — an expired
    /// `id_token_hint` still identifies who signed in (RP-Initiated Logout §2).
    pub async fn verify(&self, token: &str, issuer: &str) -> Option<VerifiedJwt> {
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let kid = header["kid"].as_str()?;
        let set = self.key_set().await.ok()?;
        let key = set.keys.iter().find(|k| k.record.kid == kid)?;
        // The key's own algorithm, never the header's choice (RFC 8725 §3.1).
        if header["alg"].as_str() != Some(key.record.alg.as_str()) {
            return None;
        }
        let algorithm = algorithm(&key.record.alg)?;
        if !jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.verifying, algorithm)
            .ok()?
        {
            return None;
        }
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        if claims["iss"].as_str() != Some(issuer) {
            return None;
        }
        Some(VerifiedJwt {
            typ: header["typ"].as_str().map(str::to_string),
            claims,
        })
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
        Ok(self.key_set().await?.jwks.clone())
    }
}

/// Generates the keys that are missing: one signing now for every algorithm (only a read
/// when none is missing).
fn ensure_every_key(store: &Store) -> Result<(), StoreError> {
    let now = store.clock().now();
    let keys = store.jwt_keys()?;
    for alg in ID_TOKEN_ALGS {
        if !keys.iter().any(|k| k.alg == alg && k.signs_at(now)) {
            store.ensure_jwt_key(alg, |now| generate(alg, now, None))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_key_signs_only_from_its_activation_and_a_retired_one_stops() {
        let mut key = generate("EdDSA", 100, Some(200)).unwrap();
        assert!(!key.signs_at(150));
        assert!(key.signs_at(200));
        key.retired_at = Some(300);
        assert!(key.signs_at(299));
        assert!(!key.signs_at(300));
    }

    #[test]
    fn the_ed25519_key_names_its_fully_specified_algorithm() {
        let key = generate("Ed25519", 0, None).unwrap();
        assert_eq!(key.jwk["alg"], "Ed25519");
        assert_eq!(key.jwk["crv"], "Ed25519");
    }
}
