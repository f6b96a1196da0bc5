//! Tokens: PASETO v4.public access tokens and opaque secrets (refresh tokens, API keys).

pub mod jwt;
pub mod opaque;
pub mod paseto;
pub mod sealed;

pub use paseto::{AccessClaims, AccessTokens, TokenError};

/// Key material that cannot be used, or signing that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// A stored key does not decode.
    #[error("key {kid}: {detail}")]
    Invalid { kid: String, detail: String },
    /// No key signs now (all retired, or none made yet).
    #[error("{0}")]
    NoSigningKey(String),
    #[error("{0}")]
    Crypto(String),
}
