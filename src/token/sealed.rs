//! Secrets that must be shown again (the SSO document's `secret_value`, the account document's
//! `key`) are stored sealed: PASETO v4.local (XChaCha20 + BLAKE2b-MAC) under a server key, with
//! the record they belong to as implicit assertion, so a sealed value copied onto another
//! record does not open.

use pasetors::{
    keys::SymmetricKey,
    token::UntrustedToken,
    version4::{LocalToken, V4},
};

/// Seals and opens short secrets under one 256-bit key.
pub struct Sealer {
    key: SymmetricKey<V4>,
}

/// A sealed value did not open: wrong key, wrong record, or tampered.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret could not be opened")]
pub struct Unsealable;

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            // A 32-byte slice is always a valid v4.local key.
            key: SymmetricKey::<V4>::from(key).expect("32-byte key"),
        }
    }

    /// Encrypts `secret`, bound to `context` (for example `client_secret:<client_id>`).
    pub fn seal(&self, secret: &str, context: &str) -> Result<String, Unsealable> {
        LocalToken::encrypt(&self.key, secret.as_bytes(), None, Some(context.as_bytes()))
            .map_err(|_| Unsealable)
    }

    /// Decrypts a value sealed with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, Unsealable> {
        let token =
            UntrustedToken::<pasetors::Local, V4>::try_from(sealed).map_err(|_| Unsealable)?;
        let trusted = LocalToken::decrypt(&self.key, &token, None, Some(context.as_bytes()))
            .map_err(|_| Unsealable)?;
        Ok(trusted.payload().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal("s3cret-value", "client_secret:abc").unwrap();
        assert!(
            !sealed.contains("s3cret-value"),
            "ciphertext, not clear text"
        );
        assert_eq!(
            sealer.open(&sealed, "client_secret:abc").unwrap(),
            "s3cret-value"
        );
        assert!(sealer.open(&sealed, "client_secret:xyz").is_err());
        assert!(
            Sealer::new(&[8; 32])
                .open(&sealed, "client_secret:abc")
                .is_err()
        );
        assert!(sealer.open("garbage", "client_secret:abc").is_err());
    }
}
