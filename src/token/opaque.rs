//! Opaque high-entropy secrets. They are stored as SHA-256 digests: with 256 bits of entropy a
//! plain hash is enough (no salt or slow KDF needed), and lookups stay O(log n).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// `n` random bytes from the OS generator, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token's text, the form it is stored and looked up by.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Prefix that marks a personal API key, so a bearer credential is routed without guessing.
pub const API_KEY_PREFIX: &str = "pcl_";

/// A new personal API key (256 bits).
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert!(new_api_key().starts_with(API_KEY_PREFIX));
    }

    #[test]
    fn digest_is_stable() {
        assert_eq!(digest("x"), digest("x"));
        assert_ne!(digest("x"), digest("y"));
    }
}
