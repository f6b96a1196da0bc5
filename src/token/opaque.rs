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

/// HMAC-SHA256 under a server secret of `parts`, each followed by a 0 byte so that
/// ("ab", "c") and ("a", "bc") differ. Used for short codes, captcha answers and CSRF tokens,
/// whose small input space a plain hash would not protect.
pub fn keyed_digest(key: &[u8; 32], parts: &[&str]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC accepts keys of any length, so construction cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC-SHA256 accepts any key length")
    };
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().into()
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
    fn keyed_digest_separates_parts_and_keys() {
        let k = [7u8; 32];
        assert_ne!(
            keyed_digest(&k, &["ab", "c"]),
            keyed_digest(&k, &["a", "bc"])
        );
        assert_ne!(keyed_digest(&k, &["x"]), keyed_digest(&[8u8; 32], &["x"]));
        assert_eq!(keyed_digest(&k, &["x"]), keyed_digest(&k, &["x"]));
    }

    #[test]
    fn digest_is_stable() {
        assert_eq!(digest("x"), digest("x"));
        assert_ne!(digest("x"), digest("y"));
    }
}
