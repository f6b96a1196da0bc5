//! The HTTP error type. Every error leaves the server as `application/problem+json`
//! (RFC 9457) with a stable machine `code`; `From<ServiceError>` below is the one place where
//! service outcomes become status codes.

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::service::{ServiceError, oauth2::error::STORAGE_RETRY_AFTER};

/// `Result` with [`ApiError`] as the default error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// RFC 9457 problem details, plus a stable `code` to branch on.
#[derive(Object, Debug, Clone)]
pub struct Problem {
    /// URI identifying the problem type (`urn:portcullis:problem:<code>`).
    #[oai(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type (the HTTP reason phrase).
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, in words.
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: String,
    /// The request field the problem is about, for validation errors.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// Seconds until a retry may succeed (also in the `Retry-After` header).
    #[oai(skip_serializing_if_is_none)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:portcullis:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            field: None,
            retry_after: None,
        }
    }
}

/// An error answer. Each variant documents when its status is used.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed: invalid JSON syntax (`malformed_json`), invalid UTF-8
    /// (`invalid_utf8`), an invalid path or query parameter (`invalid_parameter`, or the
    /// rule's own code such as `invalid_username`), a refused WebAuthn response
    /// (`passkey_refused`), a bad or missing code or captcha
    /// (`invalid_code`, `email_code_required`, `captcha_required`, `captcha_invalid`), or an
    /// unusable image (`unsupported_image_type`, `invalid_image`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No credentials (`missing_credentials`), or they are invalid, expired or revoked
    /// (`invalid_token`, `invalid_credentials`, `invalid_refresh_token`), or a sign-in's
    /// second step failed (`invalid_mfa_token`, `invalid_second_factor`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Not allowed (`forbidden`, `wrong_password`, `registration_closed`,
    /// `invalid_registration_key`, `developer_role_required`).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// The resource does not exist (`not_found`).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The resource conflicts with an existing one (`username_taken`, `email_taken`,
    /// `client_id_taken`, `totp_already_enrolled`, `passkey_already_registered`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than the configured limit (`payload_too_large`).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body's media type is not accepted (`unsupported_media_type`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Well-formed JSON of the wrong shape (`invalid_body`) or a value breaking a rule
    /// (`invalid_username`, `invalid_email`, `invalid_password`, `weak_password`, …).
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many attempts (`rate_limited`) or a code requested again too soon
    /// (`resend_too_soon`); retry after `Retry-After` seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Unexpected server fault (`internal_error`); details are in the server log only.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency is unavailable (`unavailable`, `mail_unavailable`), or the database cannot
    /// write right now (`storage_unavailable`: nothing of the request was kept; retry after
    /// `Retry-After` seconds).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] Option<u64>),
}

impl ApiError {
    /// Builds the error for `status` (any status without its own variant becomes 400 or 500).
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self::from_problem(Problem::new(status, code, detail))
    }

    pub fn from_problem(p: Problem) -> Self {
        match p.status {
            401 => Self::Unauthorized(Json(p), "Bearer".into()),
            403 => Self::Forbidden(Json(p)),
            404 => Self::NotFound(Json(p)),
            409 => Self::Conflict(Json(p)),
            413 => Self::PayloadTooLarge(Json(p)),
            415 => Self::UnsupportedMediaType(Json(p)),
            422 => Self::Unprocessable(Json(p)),
            429 => {
                let retry = p.retry_after.unwrap_or(1);
                Self::TooManyRequests(Json(p), retry)
            }
            503 => {
                let retry = p.retry_after;
                Self::Unavailable(Json(p), retry)
            }
            s if s >= 500 => Self::Internal(Json(p)),
            _ => Self::BadRequest(Json(p)),
        }
    }

    /// A 500 whose cause is logged here and never sent to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred; it has been logged",
        )
    }

    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use ServiceError as E;
        let detail = e.to_string();
        match e {
            E::Invalid(inv) => {
                let mut p =
                    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, inv.code, inv.to_string());
                p.field = Some(inv.field.to_string());
                Self::from_problem(p)
            }
            E::WeakPassword(_) => {
                let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", detail);
                p.field = Some("password".into());
                Self::from_problem(p)
            }
            E::UsernameTaken => Self::new(StatusCode::CONFLICT, "username_taken", detail),
            E::EmailTaken => Self::new(StatusCode::CONFLICT, "email_taken", detail),
            E::InvalidCredentials => Self::unauthorized("invalid_credentials", detail),
            E::InvalidToken => Self::unauthorized("invalid_token", detail),
            E::InvalidRefreshToken => Self::unauthorized("invalid_refresh_token", detail),
            E::WrongPassword => Self::new(StatusCode::FORBIDDEN, "wrong_password", detail),
            E::RateLimited { retry_after } => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
                p.retry_after = Some(retry_after);
                Self::from_problem(p)
            }
            E::Overloaded { retry_after } => {
                let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", detail);
                p.retry_after = Some(retry_after);
                Self::from_problem(p)
            }
            E::Forbidden(code, _) => Self::new(StatusCode::FORBIDDEN, code, detail),
            E::InvalidScope(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_scope", detail),
            E::ClientIdTaken => Self::new(StatusCode::CONFLICT, "client_id_taken", detail),
            // The native API does not tell expired codes apart from wrong ones.
            E::InvalidCode | E::CodeExpired => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_code",
                ServiceError::InvalidCode.to_string(),
            ),
            E::ResetByKeyDisabled | E::InvalidResetKey => {
                Self::new(StatusCode::FORBIDDEN, "reset_by_key_refused", detail)
            }
            E::EmailCodeRequired => {
                Self::new(StatusCode::BAD_REQUEST, "email_code_required", detail)
            }
            E::ResendTooSoon { retry_after } => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "resend_too_soon", detail);
                p.retry_after = Some(retry_after);
                Self::from_problem(p)
            }
            E::CaptchaRequired => Self::new(StatusCode::BAD_REQUEST, "captcha_required", detail),
            E::CaptchaInvalid => Self::new(StatusCode::BAD_REQUEST, "captcha_invalid", detail),
            E::RegistrationClosed => {
                Self::new(StatusCode::FORBIDDEN, "registration_closed", detail)
            }
            E::InvalidRegistrationKey => {
                Self::new(StatusCode::FORBIDDEN, "invalid_registration_key", detail)
            }
            E::MailUnavailable => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "mail_unavailable", detail)
            }
            E::UnsupportedImage => {
                Self::new(StatusCode::BAD_REQUEST, "unsupported_image_type", detail)
            }
            E::InvalidImage(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_image", detail),
            E::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
            }
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", detail),
            E::MfaChallengeInvalid => Self::unauthorized("invalid_mfa_token", detail),
            E::SecondFactorInvalid => Self::unauthorized("invalid_second_factor", detail),
            E::PasskeyRefused(_) => Self::new(StatusCode::BAD_REQUEST, "passkey_refused", detail),
            E::Conflict(code, _) => Self::new(StatusCode::CONFLICT, code, detail),
            E::Unavailable(ref cause) => {
                tracing::warn!(error = %cause, "request refused: storage unavailable");
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the server cannot store data right now; nothing was changed, retry shortly",
                );
                p.retry_after = Some(STORAGE_RETRY_AFTER);
                Self::from_problem(p)
            }
            E::Store(ref cause) => Self::internal(cause),
            E::Internal(ref cause) => Self::internal(cause),
        }
    }
}
