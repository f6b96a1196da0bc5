//! OpenID Connect id_tokens as JWTs (RS256 by default, EdDSA for clients that ask for it)
//! and the JWKS that publishes their keys.
//!
//! Keys are generated on first use — not at start, so an instance that never serves OIDC
//! never pays for an RSA key — and persisted, so tokens verify across restarts.

use std::{collections::HashMap, sync::Mutex};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::{Store, StoreError};

/// The signing algorithms offered for id_tokens.
pub const ID_TOKEN_ALGS: [&str; 2] = ["RS256", "EdDSA"];

/// A persisted id_token signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtKeyRecord {
    pub kid: String,
    /// `RS256` or `EdDSA`.
    pub alg: String,
    /// Private key: PKCS#1 DER (RSA) or PKCS#8 DER (Ed25519), base64url.
    pub private_der: String,
    /// The public JWK.
    pub jwk: Value,
    pub created_at: i64,
    #[serde(default)]
    pub retired_at: Option<i64>,
}

/// Signs id_tokens and lists the public keys.
pub struct IdTokenSigner {
    store: Store,
    /// Loaded keys by algorithm.
    cache: Mutex<HashMap<String, (String, EncodingKey)>>,
    /// The JWKS document, once built.
    jwks: std::sync::RwLock<Option<Value>>,
    /// Set once every algorithm has an active key: the start-up task and the first use share
    /// one initialisation, and nothing writes after it.
    keys_ready: tokio::sync::OnceCell<()>,
}

fn generate(alg: &str, now: i64) -> Result<JwtKeyRecord, StoreError> {
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
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
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
    })
}

impl IdTokenSigner {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
            jwks: std::sync::RwLock::new(None),
            keys_ready: tokio::sync::OnceCell::new(),
        }
    }

    /// Signs `claims` with the active key for `alg` (generated on first use).
    pub async fn sign(&self, alg: &str, claims: &Value) -> Result<String, StoreError> {
        let alg = if alg == "EdDSA" { "EdDSA" } else { "RS256" };
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(alg)
            .cloned();
        let (kid, key) = match cached {
            Some(k) => k,
            None => {
                let a = alg.to_string();
                self.ensure_keys().await?;
                let record = self
                    .store
                    .run(move |s| {
                        s.jwt_keys()?
                            .into_iter()
                            .find(|k| k.alg == a && k.retired_at.is_none())
                            .ok_or_else(|| StoreError::Corrupt {
                                table: "jwt_keys",
                                detail: format!("no active {a} key"),
                            })
                    })
                    .await?;
                let der = URL_SAFE_NO_PAD.decode(&record.private_der).map_err(|e| {
                    StoreError::Corrupt {
                        table: "jwt_keys",
                        detail: e.to_string(),
                    }
                })?;
                let key = if alg == "EdDSA" {
                    EncodingKey::from_ed_der(&der)
                } else {
                    EncodingKey::from_rsa_der(&der)
                };
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(alg.to_string(), (record.kid.clone(), key.clone()));
                (record.kid, key)
            }
        };
        let mut header = Header::new(if alg == "EdDSA" {
            Algorithm::EdDSA
        } else {
            Algorithm::RS256
        });
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &key)
            .map_err(|e| StoreError::Encode(format!("id_token signing failed: {e}")))
    }

    /// Verifies an id_token this server issued, as an `id_token_hint` (OIDC RP-Initiated
    /// Logout §2): our signature by a published key and our issuer. Expiry is not checked —
    /// an expired hint still identifies who signed in. Returns the claims, or `None`.
    pub async fn verify_hint(&self, token: &str, issuer: &str) -> Option<Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let keys = self.store.run(|s| s.jwt_keys()).await.ok()?;
        let record = keys.into_iter().find(|k| k.kid == kid)?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(record.jwk).ok()?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
        let alg = match record.alg.as_str() {
            "EdDSA" => Algorithm::EdDSA,
            _ => Algorithm::RS256,
        };
        if header.alg != alg {
            return None;
        }
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// The JWKS document: every id_token key, active or retired (retired keys stay published
    /// until the tokens they signed have expired). Built once from the store (creating a
    /// missing key, which happens only before the start-up task has made them), then served
    /// from memory: a GET writes nothing. Keys change only while the server is stopped
    /// (`portcullis keys rotate`).
    pub async fn jwks(&self) -> Result<Value, StoreError> {
        if let Some(doc) = self
            .jwks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(doc);
        }
        self.ensure_keys().await?;
        let keys = self.store.run(|s| s.jwt_keys()).await?;
        let doc = json!({ "keys": keys.into_iter().map(|k| k.jwk).collect::<Vec<_>>() });
        *self
            .jwks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(doc.clone());
        Ok(doc)
    }

    /// Makes sure an active key exists for each algorithm in [`ID_TOKEN_ALGS`], so both are
    /// published before either signs (a relying party that cached the JWKS knows them).
    /// Started in the background at start; the first JWKS or signature waits for it.
    pub async fn ensure_keys(&self) -> Result<(), StoreError> {
        self.keys_ready
            .get_or_try_init(|| self.store.run(ensure_every_key))
            .await
            .map(|_| ())
    }
}

/// Generates the active id_token keys that are missing (only a read when none is).
fn ensure_every_key(store: &Store) -> Result<(), StoreError> {
    let keys = store.jwt_keys()?;
    for alg in ID_TOKEN_ALGS {
        if !keys.iter().any(|k| k.alg == alg && k.retired_at.is_none()) {
            store.ensure_jwt_key(alg, |now| generate(alg, now))?;
        }
    }
    Ok(())
}
