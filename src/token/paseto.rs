//! PASETO v4.public access tokens.
//!
//! Claims follow the PASETO registered claims (iss, sub, aud, exp, iat, nbf, jti; times as
//! RFC 3339 strings) plus `scope`, and `sid` (the refresh-token family) for first-party
//! sessions. The footer carries `kid`, the PASERK id (`k4.pid.…`) of the signing key, so a
//! verifier picks the right public key during rotation. Time checks use the server clock
//! rather than pasetors' validator so tests can move time.

use std::{collections::HashMap, sync::Arc};

use base64::{Engine, engine::general_purpose::STANDARD};
use pasetors::{
    keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate},
    paserk::{FormatAsPaserk, Id},
    token::UntrustedToken,
    version4::{PublicToken, V4},
};
use serde::{Deserialize, Serialize};

use crate::{
    clock::{Clock, parse_rfc3339, rfc3339},
    domain::KeyWindow,
};

/// Why a token was not accepted. Callers answer all of these with the same 401; the variant is
/// for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a v4.public PASETO")]
    Malformed,
    #[error("signed by an unknown key")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("issued by another issuer")]
    WrongIssuer,
    #[error("meant for another audience")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
}

/// The claims of an access token as signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: String,
    pub iat: String,
    pub nbf: String,
    pub jti: String,
    pub scope: String,
    /// Refresh-token family of a first-party session; revoking the family ends the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// OAuth client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// A verified token's claims with parsed times.
#[derive(Debug, Clone)]
pub struct VerifiedAccess {
    pub claims: AccessClaims,
    pub expires_at: i64,
    pub issued_at: i64,
    pub not_before: i64,
}

/// Verified tokens remembered (about 1 KiB each); beyond this, expired ones are dropped, and
/// if that is not enough, all.
const VERIFIED_CACHE_ENTRIES: usize = 16_384;

/// What to put in a new access token.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub subject: String,
    pub audience: String,
    pub scope: String,
    pub session_id: Option<String>,
    pub client_id: Option<String>,
}

struct SigningKey {
    kid: String,
    secret: AsymmetricSecretKey<V4>,
    window: KeyWindow,
}

/// An access-token key as published (`GET /oauth2/paserk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub kid: String,
    /// `k4.public.…`.
    pub paserk: String,
    /// Whether it signs new tokens now.
    pub active: bool,
}

/// Issues and verifies access tokens with the persisted key set.
pub struct AccessTokens {
    issuer: String,
    ttl: i64,
    clock: Clock,
    /// The key set; replaced whole when the stored keys change (nodes sharing a database
    /// pick up a rotation made elsewhere).
    keys: std::sync::RwLock<Arc<KeySet>>,
    /// Tokens whose signature already checked out, by SHA-256: a client presenting the same
    /// token again skips the Ed25519 verification (the time window is still checked on every
    /// use, and revocation is the store's business, checked by the caller every time).
    verified: std::sync::Mutex<HashMap<[u8; 32], VerifiedAccess>>,
}

/// A v4.public key pair, as it is stored.
#[derive(Debug, Clone)]
pub struct PasetoKeyPair {
    /// PASERK `k4.pid.…` of the public key.
    pub kid: String,
    /// Ed25519 secret key (64 bytes), base64.
    pub secret: String,
    /// Ed25519 public key (32 bytes), base64.
    pub public: String,
}

/// A new v4.public key pair.
pub fn generate_key_pair() -> Result<PasetoKeyPair, super::KeyError> {
    let pair = AsymmetricKeyPair::<V4>::generate()
        .map_err(|e| super::KeyError::Crypto(format!("key generation failed: {e}")))?;
    Ok(PasetoKeyPair {
        kid: paserk_id(&pair.public),
        secret: STANDARD.encode(pair.secret.as_bytes()),
        public: STANDARD.encode(pair.public.as_bytes()),
    })
}

fn paserk_id(public: &AsymmetricPublicKey<V4>) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = Id::from(public).fmt(&mut out);
    out
}

/// The PASERK `k4.public.…` form of a public key, for offline verifiers.
fn paserk_public(key: &AsymmetricPublicKey<V4>) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = key.fmt(&mut out);
    out
}

/// Every key with its signing window; the newest one open at the time signs.
struct KeySet {
    signing: Vec<SigningKey>,
    verifying: HashMap<String, AsymmetricPublicKey<V4>>,
}

impl KeySet {
    fn load(all: &[(PasetoKeyPair, KeyWindow)]) -> Result<Self, super::KeyError> {
        let mut verifying = HashMap::new();
        let mut signing = Vec::new();
        for (key, window) in all {
            let bad = |what: &str| super::KeyError::Invalid {
                kid: key.kid.clone(),
                detail: format!("{what} is not a valid Ed25519 key"),
            };
            let bytes = STANDARD
                .decode(&key.public)
                .map_err(|_| bad("public key"))?;
            let public = AsymmetricPublicKey::<V4>::from(&bytes).map_err(|_| bad("public key"))?;
            verifying.insert(key.kid.clone(), public);
            let secret_bytes = STANDARD.decode(&key.secret).map_err(|_| bad("secret"))?;
            let secret =
                AsymmetricSecretKey::<V4>::from(&secret_bytes).map_err(|_| bad("secret"))?;
            signing.push(SigningKey {
                kid: key.kid.clone(),
                secret,
                window: *window,
            });
        }
        signing.sort_by_key(|k| std::cmp::Reverse(k.window.signs_from()));
        Ok(Self { signing, verifying })
    }
}

impl AccessTokens {
    /// Builds the key set: each key signs within its window (the newest open one at the
    /// time), every key verifies.
    pub fn new(
        issuer: String,
        ttl: i64,
        clock: Clock,
        all: &[(PasetoKeyPair, KeyWindow)],
    ) -> Result<Self, super::KeyError> {
        Ok(Self {
            issuer,
            ttl,
            clock,
            keys: std::sync::RwLock::new(Arc::new(KeySet::load(all)?)),
            verified: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the key set with `all` (the stored keys, read again); returns whether any
    /// key was added or removed.
    pub fn replace_keys(
        &self,
        all: &[(PasetoKeyPair, KeyWindow)],
    ) -> Result<bool, super::KeyError> {
        let fresh = KeySet::load(all)?;
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut before: Vec<_> = keys.signing.iter().map(|k| (&k.kid, k.window)).collect();
        let mut after: Vec<_> = fresh.signing.iter().map(|k| (&k.kid, k.window)).collect();
        before.sort_by(|a, b| a.0.cmp(b.0));
        after.sort_by(|a, b| a.0.cmp(b.0));
        let changed = before != after;
        if changed {
            *keys = Arc::new(fresh);
        }
        Ok(changed)
    }

    fn key_set(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Every key of the set — staged, active, or retired but still verifying — as published
    /// for offline checks, by kid.
    pub fn published(&self) -> Vec<PublishedKey> {
        let now = self.clock.now();
        let set = self.key_set();
        let mut keys: Vec<PublishedKey> = set
            .signing
            .iter()
            .filter_map(|k| {
                Some(PublishedKey {
                    kid: k.kid.clone(),
                    paserk: paserk_public(set.verifying.get(&k.kid)?),
                    active: k.window.signs_at(now),
                })
            })
            .collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        keys
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Lifetime of new tokens in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Signs a new access token; returns it with its claims.
    pub fn issue(&self, grant: AccessGrant) -> Result<(String, AccessClaims), super::KeyError> {
        let now = self.clock.now();
        let set = self.key_set();
        let signing = set
            .signing
            .iter()
            .find(|k| k.window.signs_at(now))
            .ok_or_else(|| {
                super::KeyError::NoSigningKey(
                    "no access-token key signs now; run `portcullis keys rotate`".into(),
                )
            })?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.subject,
            aud: grant.audience,
            exp: rfc3339(now + self.ttl),
            iat: rfc3339(now),
            nbf: rfc3339(now),
            jti: super::opaque::random_token(16),
            scope: grant.scope,
            sid: grant.session_id,
            client_id: grant.client_id,
        };
        let payload =
            serde_json::to_vec(&claims).map_err(|e| super::KeyError::Crypto(e.to_string()))?;
        let footer = serde_json::json!({ "kid": signing.kid }).to_string();
        let token = PublicToken::sign(&signing.secret, &payload, Some(footer.as_bytes()), None)
            .map_err(|e| super::KeyError::Crypto(format!("signing failed: {e}")))?;
        Ok((token, claims))
    }

    /// Verifies signature, issuer, audience and time window.
    pub fn verify(&self, token: &str, audience: &str) -> Result<VerifiedAccess, TokenError> {
        let v = self.verify_any_audience(token)?;
        if v.claims.aud != audience {
            return Err(TokenError::WrongAudience);
        }
        Ok(v)
    }

    /// Verifies signature, issuer and time window, whatever the audience (introspection and
    /// revocation accept tokens issued to any client).
    pub fn verify_any_audience(&self, token: &str) -> Result<VerifiedAccess, TokenError> {
        let digest = super::opaque::digest(token);
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .cloned();
        let verified = match cached {
            Some(v) => v,
            None => {
                let v = self.verify_signature(token)?;
                let mut cache = self
                    .verified
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.len() >= VERIFIED_CACHE_ENTRIES {
                    let now = self.clock.now();
                    cache.retain(|_, v| v.expires_at > now);
                    if cache.len() >= VERIFIED_CACHE_ENTRIES {
                        cache.clear();
                    }
                }
                cache.insert(digest, v.clone());
                v
            }
        };
        let now = self.clock.now();
        if now >= verified.expires_at {
            return Err(TokenError::Expired);
        }
        if now < verified.not_before {
            return Err(TokenError::NotYetValid);
        }
        Ok(verified)
    }

    /// Checks the signature, issuer and claims' form of a token (not its time window).
    fn verify_signature(&self, token: &str) -> Result<VerifiedAccess, TokenError> {
        let untrusted = UntrustedToken::<pasetors::token::Public, V4>::try_from(token)
            .map_err(|_| TokenError::Malformed)?;
        #[derive(Deserialize)]
        struct Footer {
            kid: String,
        }
        let footer: Footer = serde_json::from_slice(untrusted.untrusted_footer())
            .map_err(|_| TokenError::UnknownKey)?;
        let set = self.key_set();
        let key = set
            .verifying
            .get(&footer.kid)
            .ok_or(TokenError::UnknownKey)?;
        let trusted =
            PublicToken::verify(key, &untrusted, Some(untrusted.untrusted_footer()), None)
                .map_err(|_| TokenError::BadSignature)?;
        let claims: AccessClaims =
            serde_json::from_str(trusted.payload()).map_err(|_| TokenError::Malformed)?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        let expires_at = parse_rfc3339(&claims.exp).ok_or(TokenError::Malformed)?;
        let not_before = parse_rfc3339(&claims.nbf).ok_or(TokenError::Malformed)?;
        let issued_at = parse_rfc3339(&claims.iat).ok_or(TokenError::Malformed)?;
        Ok(VerifiedAccess {
            claims,
            expires_at,
            issued_at,
            not_before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(created_at: i64, active_from: Option<i64>, retired_at: Option<i64>) -> KeyWindow {
        KeyWindow {
            created_at,
            active_from,
            retired_at,
        }
    }

    fn tokens(clock: &Clock) -> AccessTokens {
        let key = generate_key_pair().unwrap();
        let keys = [(key, window(clock.now(), None, None))];
        AccessTokens::new("http://issuer.test".into(), 900, clock.clone(), &keys).unwrap()
    }

    fn grant() -> AccessGrant {
        AccessGrant {
            subject: "user-1".into(),
            audience: "http://issuer.test".into(),
            scope: "api".into(),
            session_id: Some("fam".into()),
            client_id: None,
        }
    }

    #[test]
    fn issues_and_verifies() {
        let clock = Clock::manual();
        let t = tokens(&clock);
        let (token, claims) = t.issue(grant()).unwrap();
        assert!(token.starts_with("v4.public."));
        let v = t.verify(&token, "http://issuer.test").unwrap();
        assert_eq!(v.claims, claims);
        assert_eq!(v.expires_at - v.issued_at, 900);
    }

    #[test]
    fn rejects_expired_wrong_audience_tampered_and_foreign_tokens() {
        let clock = Clock::manual();
        let t = tokens(&clock);
        let (token, _) = t.issue(grant()).unwrap();
        assert_eq!(
            t.verify(&token, "other").unwrap_err(),
            TokenError::WrongAudience
        );

        let mut tampered = token.clone().into_bytes();
        let i = "v4.public.".len() + 5;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(t.verify(&tampered, "http://issuer.test").is_err());

        let other = tokens(&clock);
        assert_eq!(
            other.verify(&token, "http://issuer.test").unwrap_err(),
            TokenError::UnknownKey
        );
        assert_eq!(
            t.verify("v4.local.abc", "x").unwrap_err(),
            TokenError::Malformed
        );

        clock.advance(900);
        assert_eq!(
            t.verify(&token, "http://issuer.test").unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn a_staged_key_takes_over_signing_at_its_activation() {
        let clock = Clock::manual();
        let now = clock.now();
        let old = generate_key_pair().unwrap();
        let staged = generate_key_pair().unwrap();
        let t = AccessTokens::new(
            "http://issuer.test".into(),
            900,
            clock.clone(),
            &[
                (old.clone(), window(now, None, Some(now + 60))),
                (staged.clone(), window(now, Some(now + 60), None)),
            ],
        )
        .unwrap();
        let kid_of = |token: &str| {
            let untrusted = UntrustedToken::<pasetors::token::Public, V4>::try_from(token).unwrap();
            serde_json::from_slice::<serde_json::Value>(untrusted.untrusted_footer()).unwrap()["kid"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (before, _) = t.issue(grant()).unwrap();
        assert_eq!(kid_of(&before), old.kid);
        clock.advance(60);
        let (after, _) = t.issue(grant()).unwrap();
        assert_eq!(kid_of(&after), staged.kid);
        // The old key's tokens still verify.
        assert!(t.verify(&before, "http://issuer.test").is_ok());
    }

    #[test]
    fn every_key_is_published_as_paserk_with_whether_it_signs_now() {
        let clock = Clock::manual();
        let now = clock.now();
        let (current, staged) = (generate_key_pair().unwrap(), generate_key_pair().unwrap());
        let t = AccessTokens::new(
            "http://issuer.test".into(),
            900,
            clock.clone(),
            &[
                (current.clone(), window(now, None, Some(now + 60))),
                (staged.clone(), window(now, Some(now + 60), None)),
            ],
        )
        .unwrap();
        let published = t.published();
        assert_eq!(published.len(), 2);
        for key in &published {
            assert!(key.kid.starts_with("k4.pid."), "{}", key.kid);
            assert!(key.paserk.starts_with("k4.public."), "{}", key.paserk);
            assert_eq!(key.active, key.kid == current.kid);
        }
        clock.advance(60);
        let active: Vec<_> = t.published().into_iter().filter(|k| k.active).collect();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].kid, staged.kid);
    }
}
