//! OAuth 2.0 error responses (RFC 6749 §5.2).

use crate::{service::ServiceError, store::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Unknown client, wrong or missing secret (401; with `WWW-Authenticate` when the client
    /// used HTTP Basic).
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    #[error("{0}")]
    InvalidGrant(String),
    /// The password grant's username or password is wrong (`invalid_grant`).
    #[error("the username or password is incorrect")]
    BadCredentials,
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("unsupported grant_type `{0}`")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    /// Too many failed password attempts: `invalid_grant` with `Retry-After`.
    #[error("too many failed attempts; retry in {0} seconds")]
    Throttled(u64),
    #[error("internal error")]
    ServerError(String),
    /// The store cannot write right now (disk full, I/O error): 503 with `Retry-After`, and
    /// nothing of the request was kept.
    #[error("the server cannot store data right now; retry shortly")]
    TemporarilyUnavailable,
    /// Too many password checks waiting: `temporarily_unavailable` 503 with `Retry-After`.
    #[error("the server is busy; retry in {0} seconds")]
    Busy(u64),
    /// A pushed authorization request (RFC 9126 §2.3) refused with the authorization
    /// endpoint's error code.
    #[error("{}", .0.description)]
    Rejected(super::authorize::Rejection),
    /// RFC 8628 §3.5: the user has not decided yet.
    #[error("the user has not yet approved the device")]
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval grew by 5 seconds.
    #[error("polling too fast; wait 5 seconds longer between requests")]
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    #[error("the device code has expired; start again")]
    ExpiredToken,
    /// RFC 8628 §3.5: the user refused.
    #[error("the user denied the request")]
    AccessDenied,
}

/// Seconds a client should wait before retrying after a storage fault.
pub const STORAGE_RETRY_AFTER: u64 = 5;

impl OAuthError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) | Self::BadCredentials | Self::Throttled(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::ServerError(_) => "server_error",
            Self::TemporarilyUnavailable | Self::Busy(_) => "temporarily_unavailable",
            Self::Rejected(r) => r.error,
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::AccessDenied => "access_denied",
        }
    }

    /// The HTTP status: 401 for `invalid_client`, 500 for server errors, else 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidClient { .. } => 401,
            Self::ServerError(_) => 500,
            Self::TemporarilyUnavailable | Self::Busy(_) => 503,
            _ => 400,
        }
    }
}

impl From<ServiceError> for OAuthError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidCredentials => Self::BadCredentials,
            ServiceError::InvalidRefreshToken => Self::InvalidGrant(
                "the refresh token is invalid, expired, revoked or not this client's".into(),
            ),
            ServiceError::RateLimited { retry_after } => Self::Throttled(retry_after),
            ServiceError::Overloaded { retry_after } => Self::Busy(retry_after),
            ServiceError::InvalidScope(m) => Self::InvalidScope(m),
            ServiceError::Invalid(inv) => Self::InvalidRequest(inv.to_string()),
            ServiceError::CaptchaRequired | ServiceError::CaptchaInvalid => {
                Self::InvalidGrant(e.to_string())
            }
            ServiceError::Unavailable(_) => Self::TemporarilyUnavailable,
            ServiceError::Store(e) => e.into(),
            other => {
                tracing::error!(error = %other, "token endpoint failure");
                Self::ServerError(other.to_string())
            }
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::TemporarilyUnavailable,
            other => {
                tracing::error!(error = %other, "store failure");
                Self::ServerError(other.to_string())
            }
        }
    }
}
