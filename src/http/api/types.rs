//! Wire types of the native API, kept apart from the stored records.

use poem_openapi::{Enum, Object, types::MaybeUndefined};

use super::text::Text;
use crate::{clock::rfc3339, service::IssuedSession, service::views::UserView};

/// A user as the API shows it.
#[derive(Object, Debug, Clone)]
pub struct User {
    /// Stable user id (the `sub` of this user's tokens).
    pub id: String,
    pub username: String,
    pub email: String,
    /// `null` when none is set.
    #[oai(nullable)]
    pub display_name: Option<String>,
    pub email_verified: bool,
    /// Roles: `admin`, `developer`.
    pub roles: Vec<String>,
    /// URL of the avatar image; `null` when none is set.
    #[oai(nullable)]
    pub avatar_url: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl User {
    /// The API view of a stored user; `base` is the public URL for links.
    pub fn of(u: &UserView, base: &str) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            email_verified: u.email_verified,
            roles: u.roles.iter().map(|r| r.as_str().to_string()).collect(),
            avatar_url: u
                .avatar_etag
                .as_ref()
                .map(|etag| format!("{base}/api/v1/users/{}/avatar?v={etag}", u.id)),
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
    /// Only after a sign-in that enrolled the user's first second factor: their recovery
    /// codes, shown this once.
    #[oai(skip_serializing_if_is_none)]
    pub recovery_codes: Option<Vec<String>>,
}

impl TokenPair {
    pub fn of(s: IssuedSession, base: &str) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "Bearer".into(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
            user: User::of(&s.user, base),
            recovery_codes: None,
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
    #[oai(nullable)]
    pub display_name: Option<Text>,
    /// The code mailed for purpose `register` (needed when email verification is required).
    #[oai(nullable)]
    pub email_code: Option<Text>,
    /// Captcha challenge id (needed when the captcha policy covers registration).
    #[oai(nullable)]
    pub captcha_id: Option<Text>,
    #[oai(nullable)]
    pub captcha_answer: Option<Text>,
    /// Shared key (needed when registration is by invitation).
    #[oai(write_only)]
    #[oai(nullable)]
    pub registration_key: Option<Text>,
}

/// Login form.
#[derive(Object)]
pub struct LoginRequest {
    /// Username or email.
    pub login: Text,
    #[oai(write_only)]
    pub password: Text,
    /// Captcha challenge id (needed when the captcha policy covers login).
    #[oai(nullable)]
    pub captcha_id: Option<Text>,
    #[oai(nullable)]
    pub captcha_answer: Option<Text>,
    /// The token of the unlock link mailed to the account's owner while its sign-ins are
    /// slowed down: lets this attempt past the per-account delay (spent by a success).
    #[oai(nullable, write_only)]
    pub unlock_token: Option<Text>,
}

/// The password was right and a second factor is needed: answer at
/// `POST /api/v1/sessions/mfa` with `mfa_token` within `expires_in` seconds.
#[derive(Object, Debug)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Names this sign-in in the second step; single use, 5 wrong answers at most.
    pub mfa_token: String,
    /// What the user may answer with: `totp`, `recovery_code`, `webauthn`.
    pub methods: Vec<String>,
    /// With `webauthn`: the options for `navigator.credentials.get()` (`{"publicKey": …}`,
    /// binary fields base64url).
    #[oai(skip_serializing_if_is_none)]
    pub webauthn: Option<serde_json::Value>,
    /// Under a policy that requires a second factor, for a user without one: the
    /// authenticator app to enrol now. Answer with `totp` (its first code); the answer
    /// carries the new `recovery_codes`.
    #[oai(skip_serializing_if_is_none)]
    pub totp_enrolment: Option<TotpEnrolmentOffer>,
    pub expires_in: i64,
}

/// A TOTP secret to enrol as part of a sign-in.
#[derive(Object, Debug)]
pub struct TotpEnrolmentOffer {
    /// Base32, for typing in.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub otpauth_uri: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
}

impl MfaChallenge {
    pub fn of(c: crate::service::mfa::SecondFactorChallenge) -> Self {
        Self {
            mfa_required: true,
            mfa_token: c.token,
            methods: c.methods.into_iter().map(str::to_string).collect(),
            webauthn: c.webauthn,
            totp_enrolment: None,
            expires_in: c.expires_in,
        }
    }

    /// The challenge of a sign-in that must enrol TOTP first.
    pub fn enrolment(e: crate::service::mfa::TotpEnrolment) -> Self {
        Self {
            mfa_required: true,
            mfa_token: e.enrolment_token,
            methods: vec!["totp".into()],
            webauthn: None,
            totp_enrolment: Some(TotpEnrolmentOffer {
                secret: e.secret,
                otpauth_uri: e.otpauth_uri,
                qr_svg: e.qr_svg,
            }),
            expires_in: e.expires_in,
        }
    }
}

/// The second step of a sign-in: exactly one of `totp`, `recovery_code`, `webauthn`.
#[derive(Object)]
pub struct MfaAnswer {
    #[oai(write_only)]
    pub mfa_token: Text,
    /// A 6-digit code from the authenticator app.
    #[oai(nullable, write_only)]
    pub totp: Option<Text>,
    /// One of the recovery codes (spent).
    #[oai(nullable, write_only)]
    pub recovery_code: Option<Text>,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON (binary fields
    /// base64url).
    #[oai(nullable)]
    pub webauthn: Option<serde_json::Value>,
}

/// A WebAuthn ceremony: pass `options` to `navigator.credentials.create()` or `.get()`, then
/// send the result with `ceremony_token`.
#[derive(Object, Debug)]
pub struct WebauthnCeremony {
    pub ceremony_token: String,
    /// `{"publicKey": …}` (binary fields base64url).
    pub options: serde_json::Value,
    pub expires_in: i64,
}

impl WebauthnCeremony {
    pub fn of(c: crate::service::mfa::Ceremony) -> Self {
        Self {
            ceremony_token: c.token,
            options: c.options,
            expires_in: c.expires_in,
        }
    }
}

/// The browser's answer to a WebAuthn ceremony.
#[derive(Object)]
pub struct WebauthnFinish {
    #[oai(write_only)]
    pub ceremony_token: Text,
    /// The `PublicKeyCredential`, as JSON (binary fields base64url).
    pub credential: serde_json::Value,
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
    #[oai(nullable)]
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

/// What an emailed code is for.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum CodePurpose {
    Register,
    ResetPassword,
}

/// Ask for a code by email.
#[derive(Object)]
pub struct CodeRequest {
    pub email: Text,
    pub purpose: CodePurpose,
}

/// Always the same answer, whether or not the address has an account.
#[derive(Object, Debug)]
pub struct CodeSent {
    pub message: String,
    /// Seconds the code stays valid.
    pub expires_in: i64,
    /// Seconds before another code can be requested for this address.
    pub resend_after: i64,
    /// Dev mode only: the code itself.
    #[oai(skip_serializing_if_is_none)]
    pub dev_code: Option<String>,
}

impl CodeSent {
    /// The answer to a code request; `code` is shown only in dev mode.
    pub fn new(code: Option<String>, dev: bool) -> Self {
        Self {
            message: "if the address can receive it, a code has been sent".into(),
            expires_in: crate::service::codes::CODE_TTL,
            resend_after: crate::service::codes::RESEND_COOLDOWN,
            dev_code: code.filter(|_| dev),
        }
    }
}

/// Set a new password with an emailed reset code.
#[derive(Object)]
pub struct PasswordResetRequest {
    pub email: Text,
    pub code: Text,
    #[oai(write_only)]
    pub new_password: Text,
}

/// A captcha to show the user.
#[derive(Object, Debug)]
pub struct CaptchaChallenge {
    pub captcha_id: String,
    /// `data:image/png;base64,…`
    pub image: String,
    pub expires_in: i64,
    /// Dev mode only: the answer.
    #[oai(skip_serializing_if_is_none)]
    pub dev_answer: Option<String>,
}

/// Where a captcha is required.
#[derive(Object, Debug)]
pub struct CaptchaSettings {
    pub register: bool,
    pub login: bool,
}

/// The public settings a front end needs to render the right forms.
#[derive(Object, Debug)]
pub struct PublicConfig {
    /// `open`, `invite` (needs `registration_key`) or `closed`.
    pub registration: String,
    /// `required` (registration needs `email_code`) or `off`.
    pub email_verification: String,
    pub captcha: CaptchaSettings,
    pub password_min_length: u32,
    pub password_max_length: u32,
    pub username_max_length: u32,
    pub avatar_max_bytes: u64,
    /// Second factors: `off`, `optional`, `required-for-admins` or `required`.
    pub mfa_policy: String,
    /// Second factors offered: `totp`, `recovery_code`, `webauthn`.
    pub mfa_methods: Vec<String>,
    /// Passkeys work here (passwordless sign-in at `/api/v1/sessions/passkey/begin`).
    pub passkeys: bool,
}
