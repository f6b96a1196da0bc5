//! Tokens: PASETO v4.public access tokens and opaque secrets (refresh tokens, API keys).

pub mod jwt;
pub mod opaque;
pub mod paseto;
pub mod sealed;

pub use paseto::{AccessClaims, AccessTokens, TokenError};
