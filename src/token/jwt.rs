//! JWTs this server signs — OpenID Connect id_tokens, RFC 9068 access tokens for clients that
//! ask for them, Back-Channel Logout tokens — and the JWKS that publishes their keys.
//!
//! Algorithms: RS256 (the OIDC default), EdDSA, and its fully specified name Ed25519
//! (RFC 9864 §2.2), each with its own key so that every JWK names exactly one `alg`.
//! Keys exist for every algorithm from the first start (made in the background) and after
//! every rotation; a rotation may be *staged*: the next key is published at once and signs
//! only from `active_from`, so relying parties that cache the JWKS already know it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Value, json};

use super::KeyError;
use crate::domain::KeyWindow;

/// The signing algorithms offered for id_tokens (and JWT access tokens).
pub const ID_TOKEN_ALGS: [&str; 3] = ["RS256", "EdDSA", "Ed25519"];

/// A new key's material: what is stored, and the public JWK that publishes it.
#[derive(Debug, Clone)]
pub struct JwtKeyMaterial {
    pub kid: String,
    /// `RS256`, `EdDSA` or `Ed25519`.
    pub alg: String,
    /// Private key: PKCS#1 DER (RSA) or PKCS#8 DER (Ed25519), base64url.
    pub private_der: String,
    /// The public JWK.
    pub jwk: Value,
}

/// Generates a key for `alg` (RSA 2048 for RS256, Ed25519 otherwise).
pub fn generate(alg: &str) -> Result<JwtKeyMaterial, KeyError> {
    let kid = crate::token::opaque::random_token(12);
    let (der, jwk) = match alg {
        "RS256" => {
            use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| KeyError::Crypto(format!("RSA key generation failed: {e}")))?;
            let der = key
                .to_pkcs1_der()
                .map_err(|e| KeyError::Crypto(format!("RSA key encoding failed: {e}")))?;
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
    Ok(JwtKeyMaterial {
        kid,
        alg: alg.to_string(),
        private_der: URL_SAFE_NO_PAD.encode(der),
        jwk,
    })
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

/// A key, decoded once, with its signing window.
struct LoadedKey {
    kid: String,
    alg: String,
    window: KeyWindow,
    signing: EncodingKey,
    verifying: DecodingKey,
}

impl LoadedKey {
    fn load(material: &JwtKeyMaterial, window: KeyWindow) -> Result<Self, KeyError> {
        let invalid = |detail: String| KeyError::Invalid {
            kid: material.kid.clone(),
            detail,
        };
        let der = URL_SAFE_NO_PAD
            .decode(&material.private_der)
            .map_err(|e| invalid(e.to_string()))?;
        let text = |field: &str| {
            material.jwk[field]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid(format!("the JWK has no `{field}`")))
        };
        let (signing, verifying) = match algorithm(&material.alg) {
            Some(Algorithm::RS256) => (
                EncodingKey::from_rsa_der(&der),
                DecodingKey::from_rsa_components(&text("n")?, &text("e")?)
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            Some(_) => (
                EncodingKey::from_ed_der(&der),
                DecodingKey::from_ed_components(&text("x")?).map_err(|e| invalid(e.to_string()))?,
            ),
            None => return Err(invalid(format!("unknown algorithm {}", material.alg))),
        };
        Ok(Self {
            kid: material.kid.clone(),
            alg: material.alg.clone(),
            window,
            signing,
            verifying,
        })
    }
}

/// Every key, loaded, and the JWKS document that publishes them.
pub struct JwtKeySet {
    keys: Vec<LoadedKey>,
    jwks: Value,
}

/// A JWT this server signed whose signature and issuer check out.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    /// The header's `typ`, if any (`at+jwt` for RFC 9068 access tokens).
    pub typ: Option<String>,
    pub claims: Value,
}

/// A JWT ready to be signed: its signing input and the key to sign it with.
pub struct Unsigned {
    message: String,
    algorithm: Algorithm,
    signing: EncodingKey,
}

impl Unsigned {
    /// Whether signing takes long enough (RSA: about a millisecond) to belong off the async
    /// workers; Ed25519 signs in microseconds, less than a hop to another thread.
    pub fn is_slow(&self) -> bool {
        self.algorithm == Algorithm::RS256
    }

    /// The compact serialization (RFC 7515 §7.1).
    pub fn sign(self) -> Result<String, KeyError> {
        jsonwebtoken::crypto::sign(self.message.as_bytes(), &self.signing, self.algorithm)
            .map(|sig| format!("{}.{sig}", self.message))
            .map_err(|e| KeyError::Crypto(format!("JWT signing failed: {e}")))
    }
}

impl JwtKeySet {
    /// Loads every key (staged, active, or retired but not pruned: all are published).
    pub fn load(keys: &[(JwtKeyMaterial, KeyWindow)]) -> Result<Self, KeyError> {
        let jwks = json!({ "keys": keys.iter().map(|(k, _)| k.jwk.clone()).collect::<Vec<_>>() });
        let keys = keys
            .iter()
            .map(|(material, window)| LoadedKey::load(material, *window))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys, jwks })
    }

    /// The JWKS document.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Prepares `claims` as a JWT of type `typ` (RFC 7515) for the key that signs at `now`
    /// for `alg` (one of [`ID_TOKEN_ALGS`]; anything else falls back to RS256).
    pub fn prepare(
        &self,
        alg: &str,
        typ: &str,
        claims: &Value,
        now: i64,
    ) -> Result<Unsigned, KeyError> {
        let alg = if ID_TOKEN_ALGS.contains(&alg) {
            alg
        } else {
            "RS256"
        };
        let key = self
            .keys
            .iter()
            .filter(|k| k.alg == alg && k.window.signs_at(now))
            .max_by_key(|k| k.window.signs_from())
            .ok_or_else(|| {
                KeyError::NoSigningKey(format!(
                    "no {alg} key signs now; run `portcullis keys rotate`"
                ))
            })?;
        let header = json!({"alg": alg, "typ": typ, "kid": key.kid});
        Ok(Unsigned {
            message: format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            ),
            algorithm: algorithm(alg).unwrap_or(Algorithm::RS256),
            signing: key.signing.clone(),
        })
    }

    /// Verifies a JWT this server signed: a published key by `kid`, that key's algorithm,
    /// the signature, and our issuer. Time claims are left to the caller — an expired
    /// `id_token_hint` still identifies who signed in (RP-Initiated Logout §2).
    pub fn verify(&self, token: &str, issuer: &str) -> Option<VerifiedJwt> {
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let kid = header["kid"].as_str()?;
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        // The key's own algorithm, never the header's choice (RFC 8725 §3.1).
        if header["alg"].as_str() != Some(key.alg.as_str()) {
            return None;
        }
        let algorithm = algorithm(&key.alg)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(created_at: i64, active_from: Option<i64>) -> KeyWindow {
        KeyWindow {
            created_at,
            active_from,
            retired_at: None,
        }
    }

    #[test]
    fn the_ed25519_key_names_its_fully_specified_algorithm() {
        let key = generate("Ed25519").unwrap();
        assert_eq!(key.jwk["alg"], "Ed25519");
        assert_eq!(key.jwk["crv"], "Ed25519");
    }

    #[test]
    fn the_newest_key_open_at_the_time_signs_and_every_published_key_verifies() {
        let old = generate("EdDSA").unwrap();
        let staged = generate("EdDSA").unwrap();
        let set = JwtKeySet::load(&[
            (old.clone(), window(0, None)),
            (staged.clone(), window(10, Some(100))),
        ])
        .unwrap();
        assert_eq!(set.jwks()["keys"].as_array().unwrap().len(), 2);
        let claims = json!({"iss": "https://op.example", "sub": "u"});
        let before = set
            .prepare("EdDSA", "JWT", &claims, 50)
            .unwrap()
            .sign()
            .unwrap();
        let after = set
            .prepare("EdDSA", "JWT", &claims, 100)
            .unwrap()
            .sign()
            .unwrap();
        let kid = |t: &str| {
            let header = URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap();
            serde_json::from_slice::<Value>(&header).unwrap()["kid"].clone()
        };
        assert_eq!(kid(&before), old.kid.as_str());
        assert_eq!(kid(&after), staged.kid.as_str());
        for token in [&before, &after] {
            assert!(set.verify(token, "https://op.example").is_some());
            assert!(set.verify(token, "https://other.example").is_none());
        }
        assert!(matches!(
            set.prepare("RS256", "JWT", &claims, 50),
            Err(KeyError::NoSigningKey(_))
        ));
    }
}
