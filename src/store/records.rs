//! Stored records. These are the on-disk shapes, kept apart from the wire types in `http`.

use serde::{Deserialize, Serialize};

use crate::domain::{KeyWindow, Role};

/// A user account. Empty and default fields are left out of the stored JSON (a user record
/// is the bulk of the file: about 90 bytes less per user); reading fills them in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    /// Random UUID; the `sub` of every token.
    pub id: String,
    /// Sequential number (1, 2, …), which the account-API document exposes as `id`.
    pub number: u64,
    /// The username as registered (NFKC-normalised).
    pub username: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The password hash: a scrypt PHC string as this server writes it. Imported accounts
    /// may hold another `service::passwords::HashFormat` until their next sign-in.
    pub password_hash: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// SHA-256 of the current personal API key, if one was issued.
    #[serde(default, with = "opt_hex", skip_serializing_if = "Option::is_none")]
    pub api_key_hash: Option<[u8; 32]>,
    /// The current API key sealed (see `token::sealed`): the account document shows it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_sealed: Option<String>,
    /// ETag of the stored avatar, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_etag: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRecord {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Adds `role` (kept sorted); false if the user already had it.
    pub fn add_role(&mut self, role: Role) -> bool {
        if self.has_role(role) {
            return false;
        }
        self.roles.push(role);
        self.roles.sort();
        true
    }

    /// The name to show: the display name, else the username.
    pub fn shown_name(&self) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| self.username.clone())
    }
}

/// One login's chain of refresh tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyRecord {
    pub user_id: String,
    /// The OAuth client the family was issued to; `None` for first-party sessions.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: String,
    pub created_at: i64,
    /// Absolute lifetime end; no token of the family outlives it.
    pub expires_at: i64,
    #[serde(default)]
    pub revoked: bool,
    /// Where a first-party sign-in came from (client address, user agent), for the owner's
    /// list of sessions; absent for applications' sessions and in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// When a refresh last used the session, to the hour ([`LAST_USED_RESOLUTION`]): kept
    /// coarse so a busy session costs one extra write an hour, not one per refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<i64>,
}

/// Seconds between updates of [`FamilyRecord::last_used`].
pub const LAST_USED_RESOLUTION: i64 = 3600;

/// One refresh token of a family.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    pub family_id: String,
    pub user_id: String,
    pub issued_at: i64,
    /// Idle lifetime end, capped by the family's absolute end.
    pub expires_at: i64,
    /// Set when the token has been exchanged; presenting it again is reuse.
    #[serde(default)]
    pub rotated: bool,
    /// When it was exchanged (absent in records written before the reuse grace existed,
    /// which then get no grace).
    #[serde(default)]
    pub rotated_at: Option<i64>,
}

/// An emailed code (or, for addresses that get no code, only the resend cooldown).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailCodeRecord {
    /// HMAC-SHA256 of the code, hex; `None` when no code was sent (unknown address).
    #[serde(default)]
    pub code_mac: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Wrong guesses so far; persisted so a restart does not reset it.
    #[serde(default)]
    pub attempts: u32,
}

/// A captcha challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptchaRecord {
    /// HMAC-SHA256 of the lower-cased answer, hex.
    pub answer_mac: String,
    pub expires_at: i64,
}

/// A registered OAuth client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    /// The user (developer) who manages it.
    pub owner_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`, `password`.
    pub grant_types: Vec<String>,
    /// Confidential clients authenticate with a secret; public ones use PKCE.
    pub confidential: bool,
    /// SHA-256 of the client secret, hex.
    #[serde(default)]
    pub secret_hash: Option<String>,
    /// The secret sealed (see `token::sealed`), for clients whose secret the SSO document
    /// shows again (`GET /auth/`); `None` for all others.
    #[serde(default)]
    pub secret_sealed: Option<String>,
    pub scopes: Vec<String>,
    /// `RS256` (default) or `EdDSA` (OIDC `id_token_signed_response_alg`).
    #[serde(default)]
    pub id_token_alg: Option<String>,
    /// Where RP-Initiated Logout may send the browser back; kept apart from the login
    /// `redirect_uris`, so a login address is never an open redirect after logout.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins (`https://app.example`) that may call the token, revocation and
    /// userinfo endpoints (CORS). Empty: a public client's redirect URI origins.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The secret was imported shorter than the minimum from a legacy deployment; the server
    /// warns about it at every start until it is rotated.
    #[serde(default)]
    pub legacy_short_secret: bool,
    /// OIDC Back-Channel Logout 1.0 §2.2: where a logout token is POSTed when a browser
    /// session in which this client was issued a code ends.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// RFC 9126 §6: authorization requests must come through the pushed authorization
    /// request endpoint.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Sign-ins for this client need a second factor (step-up for a password-only session).
    #[serde(default)]
    pub require_mfa: bool,
    /// The format of the access tokens issued to this client.
    #[serde(default)]
    pub access_token_format: AccessTokenFormat,
    /// SHA-256 (hex) of the registration access token that manages this client through
    /// RFC 7592; set for clients registered dynamically.
    #[serde(default)]
    pub registration_token_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a client's access tokens are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    /// PASETO v4.public, verifiable offline with the PASERK keys (the default).
    #[default]
    Paseto,
    /// A JWT access token (RFC 9068), verifiable with the JWKS by API gateways.
    Jwt,
}

impl AccessTokenFormat {
    /// The names used on the wire (`access_token_format`).
    pub const NAMES: [&'static str; 2] = ["paseto", "jwt"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "paseto" => Some(Self::Paseto),
            "jwt" => Some(Self::Jwt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paseto => "paseto",
            Self::Jwt => "jwt",
        }
    }
}

/// A persisted PASETO v4.public signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// PASERK `k4.pid.…` of the public key.
    pub kid: String,
    /// Ed25519 secret key (64 bytes), base64.
    pub secret: String,
    /// Ed25519 public key (32 bytes), base64.
    pub public: String,
    pub created_at: i64,
    /// When set, the key no longer signs from then on but still verifies until its tokens
    /// expire. May lie in the future (a staged rotation).
    #[serde(default)]
    pub retired_at: Option<i64>,
    /// When it starts signing (`None`: from `created_at`); later for a staged key.
    #[serde(default)]
    pub active_from: Option<i64>,
}

impl SigningKeyRecord {
    pub fn window(&self) -> KeyWindow {
        KeyWindow {
            created_at: self.created_at,
            active_from: self.active_from,
            retired_at: self.retired_at,
        }
    }
}

/// A persisted id_token (JWT) signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtKeyRecord {
    pub kid: String,
    /// `RS256`, `EdDSA` or `Ed25519`.
    pub alg: String,
    /// Private key: PKCS#1 DER (RSA) or PKCS#8 DER (Ed25519), base64url.
    pub private_der: String,
    /// The public JWK.
    pub jwk: serde_json::Value,
    pub created_at: i64,
    /// When it stops signing (it stays published until pruned). May lie in the future: a
    /// staged rotation retires the current key when the next one becomes active.
    #[serde(default)]
    pub retired_at: Option<i64>,
    /// When it starts signing (`None`: from `created_at`). Later than `created_at` for a key
    /// staged by `keys rotate --stage`: published now, used from then.
    #[serde(default)]
    pub active_from: Option<i64>,
}

impl JwtKeyRecord {
    pub fn window(&self) -> KeyWindow {
        KeyWindow {
            created_at: self.created_at,
            active_from: self.active_from,
            retired_at: self.retired_at,
        }
    }
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_some(&hex(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(serde::de::Error::custom("expected 64 hex digits"));
        }
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let pair = std::str::from_utf8(chunk).map_err(serde::de::Error::custom)?;
            out[i] = u8::from_str_radix(pair, 16).map_err(serde::de::Error::custom)?;
        }
        Ok(Some(out))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
