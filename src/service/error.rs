//! The service layer's one error type. `http::error` maps it to status codes in one place.

use crate::{
    domain::{Invalid, WeakPassword},
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An input broke a validation rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    WeakPassword(#[from] WeakPassword),
    #[error("that username is already taken")]
    UsernameTaken,
    #[error("an account with that email already exists")]
    EmailTaken,
    /// Wrong login or password, unknown or disabled account: deliberately indistinguishable.
    #[error("the login or password is incorrect")]
    InvalidCredentials,
    /// Missing, malformed, expired or revoked access token or API key.
    #[error("the access token or API key is invalid, expired or revoked")]
    InvalidToken,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    /// The current password given to confirm a change is wrong.
    #[error("the current password is incorrect")]
    WrongPassword,
    #[error("too many failed attempts; retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// More sign-ins are waiting for the password hasher than it can serve soon: refused
    /// at once (503) instead of queued for seconds.
    #[error("the server is busy checking other passwords; retry in {retry_after} seconds")]
    Overloaded { retry_after: u64 },
    #[error("{1}")]
    Forbidden(&'static str, String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("that client_id is already registered")]
    ClientIdTaken,
    #[error("the code is invalid, expired or already used")]
    InvalidCode,
    /// The code was right once but its time ran out (only APIs whose contract tells this
    /// apart report it; the native API answers `InvalidCode`).
    #[error("the code has expired; request a new one")]
    CodeExpired,
    #[error("setting a password with the forget-password key is not enabled")]
    ResetByKeyDisabled,
    #[error("the forget-password key is wrong")]
    InvalidResetKey,
    #[error("registration needs the code mailed to the address (`email_code`)")]
    EmailCodeRequired,
    #[error("another code was sent less than a minute ago; retry in {retry_after} seconds")]
    ResendTooSoon { retry_after: u64 },
    #[error("a captcha is required (`captcha_id` and `captcha_answer`)")]
    CaptchaRequired,
    #[error("the captcha answer is wrong or the challenge expired; request a new one")]
    CaptchaInvalid,
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("a valid registration key is required")]
    InvalidRegistrationKey,
    #[error("email delivery is failing right now; try again in a minute")]
    MailUnavailable,
    #[error("the file is not a PNG, JPEG, GIF or WebP image")]
    UnsupportedImage,
    #[error("the image cannot be decoded within the limits: {0}")]
    InvalidImage(String),
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The challenge token of a sign-in's second step (or an enrolment) is unknown, expired,
    /// used, or has had too many wrong answers.
    #[error("the challenge is invalid, expired or used up; start again")]
    MfaChallengeInvalid,
    /// The second factor given was wrong (a code, a recovery code, a passkey assertion).
    #[error("the second factor was not accepted")]
    SecondFactorInvalid,
    /// A WebAuthn response the relying party refuses.
    #[error("the passkey response was refused: {0}")]
    PasskeyRefused(String),
    /// The thing to create exists already (its code names what).
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The database cannot store anything right now (a full disk, an I/O fault); nothing of
    /// the operation was kept, and retrying shortly may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Any other storage failure: the server's fault.
    #[error(transparent)]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::token::KeyError> for ServiceError {
    /// A key that does not decode or cannot sign is the server's fault, not the caller's.
    fn from(e: crate::token::KeyError) -> Self {
        ServiceError::Internal(e.to_string())
    }
}

impl From<StoreError> for ServiceError {
    /// The one place a storage failure becomes a service error: "cannot write right now"
    /// is its own answer (503 and `Retry-After` at every surface); the rest are internal.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => ServiceError::Unavailable(cause),
            other => ServiceError::Store(other),
        }
    }
}
