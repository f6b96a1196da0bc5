//! Wire types of the native API, kept apart from the stored records.

use poem_openapi::{Object, types::MaybeUndefined};

use super::text::Text;
use crate::{clock::rfc3339, service::IssuedSession, store::records::UserRecord};

/// A user as the API shows it.
#[derive(Object, Debug, Clone)]
pub struct User {
    /// Stable user id (the `sub` of this user's tokens).
    pub id: String,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub email_verified: bool,
    /// Roles: `admin`, `developer`.
    pub roles: Vec<String>,
    /// URL of the avatar image, if one is set.
    pub avatar_url: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl From<&UserRecord> for User {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            email_verified: u.email_verified,
            roles: u.roles.iter().map(|r| r.as_str().to_string()).collect(),
            avatar_url: None,
            created_at: rfc3339(u.created_at),
        }
    }
}

/// An access + refresh token pair.
#[derive(Object, Debug)]
pub struct TokenPair {
    /// PASETO v4.public access token; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// Opaque refresh token; single use, rotated on every refresh.
    pub refresh_token: String,
    pub user: User,
}

impl From<IssuedSession> for TokenPair {
    fn from(s: IssuedSession) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "Bearer".into(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
            user: User::from(&s.user),
        }
    }
}

/// Registration form.
#[derive(Object)]
pub struct RegisterRequest {
    /// 1–64 letters, digits, `_`, `.` or `-` (any script); unique ignoring case.
    pub username: Text,
    pub email: Text,
    /// 8–256 characters; guessable passwords are rejected with a reason.
    #[oai(write_only)]
    pub password: Text,
    pub display_name: Option<Text>,
}

/// Login form.
#[derive(Object)]
pub struct LoginRequest {
    /// Username or email.
    pub login: Text,
    #[oai(write_only)]
    pub password: Text,
}

/// A refresh token to rotate or revoke.
#[derive(Object)]
pub struct RefreshRequest {
    #[oai(write_only)]
    pub refresh_token: Text,
}

#[derive(Object, Debug)]
pub struct UsernameAvailability {
    /// The name as it would be stored (NFKC-normalised).
    pub username: String,
    pub available: bool,
}

/// Profile changes. An absent field is left as it is; `null` clears it.
#[derive(Object)]
pub struct UpdateProfileRequest {
    pub display_name: MaybeUndefined<Text>,
}

#[derive(Object)]
pub struct ChangePasswordRequest {
    #[oai(write_only)]
    pub current_password: Text,
    #[oai(write_only)]
    pub new_password: Text,
}

/// A newly issued personal API key. It is shown once; only its hash is stored.
#[derive(Object, Debug)]
pub struct ApiKeyCreated {
    pub api_key: String,
}

/// Probe answer.
#[derive(Object, Debug)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: String,
}
