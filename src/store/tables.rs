//! Every redb table the server uses, in one place. Keys are chosen for the lookups each table
//! serves; values are JSON-encoded records (see `codec`) unless they are plain ids.

use super::kv::Table;

/// `meta`: schema version and counters.
pub const META: Table<&str, u64> = Table::new("meta");
/// `users`: user id → `UserRecord`.
pub const USERS: Table<&str, &[u8]> = Table::new("users");
/// `usernames`: case-folded username → user id. Uniqueness is enforced here.
pub const USERNAMES: Table<&str, &str> = Table::new("usernames");
/// `username_skeletons`: UTS #39 confusable skeleton of the case-folded username → user id.
/// No two accounts may have names that look alike (schema v2).
pub const USERNAME_SKELETONS: Table<&str, &str> = Table::new("username_skeletons");
/// `emails`: lower-cased email → user id. Uniqueness is enforced here.
pub const EMAILS: Table<&str, &str> = Table::new("emails");
/// `api_keys`: SHA-256 of a personal API key → user id.
pub const API_KEYS: Table<&[u8], &str> = Table::new("api_keys");
/// `refresh_tokens`: SHA-256 of a refresh token → `RefreshTokenRecord` (expiring).
pub const REFRESH_TOKENS: Table<&[u8], &[u8]> = Table::new("refresh_tokens");
/// `session_families`: family id → `FamilyRecord` (expiring). A family is one login's chain of
/// rotated refresh tokens; access tokens carry its id as `sid`.
pub const SESSION_FAMILIES: Table<&[u8], &[u8]> = Table::new("session_families");
/// `user_sessions`: (user id, family id) → (). Lets "log out everywhere" find a user's families.
pub const USER_SESSIONS: Table<(&str, &[u8]), ()> = Table::new("user_sessions");
/// `signing_keys`: PASERK key id → `SigningKeyRecord`.
pub const SIGNING_KEYS: Table<&str, &[u8]> = Table::new("signing_keys");
/// `email_codes`: `"<purpose>:<lower-cased email>"` → `EmailCodeRecord` (expiring). One live
/// code per address and purpose; a new one replaces the old.
pub const EMAIL_CODES: Table<&[u8], &[u8]> = Table::new("email_codes");
/// `captchas`: challenge id → `CaptchaRecord` (expiring).
pub const CAPTCHAS: Table<&[u8], &[u8]> = Table::new("captchas");
/// `avatars`: user id → PNG bytes (the user record holds the ETag).
pub const AVATARS: Table<&str, &[u8]> = Table::new("avatars");
/// `secrets`: name → 32 random bytes generated on first use (HMAC keys).
pub const SECRETS: Table<&str, &[u8]> = Table::new("secrets");
/// `clients`: client id → `ClientRecord`.
pub const CLIENTS: Table<&str, &[u8]> = Table::new("clients");
/// `clients_by_owner`: (owner user id, client id) → ().
pub const CLIENTS_BY_OWNER: Table<(&str, &str), ()> = Table::new("clients_by_owner");
/// `revoked_tokens`: access-token `jti` → expiry (expiring): revoked before their `exp`.
pub const REVOKED_TOKENS: Table<&[u8], &[u8]> = Table::new("revoked_tokens");
/// `auth_requests`: id → `AuthRequestRecord` (expiring): an authorization request waiting
/// for login and consent.
pub const AUTH_REQUESTS: Table<&[u8], &[u8]> = Table::new("auth_requests");
/// `auth_codes`: SHA-256 of an authorization code → `AuthCodeRecord` (expiring).
pub const AUTH_CODES: Table<&[u8], &[u8]> = Table::new("auth_codes");
/// `browser_sessions`: SHA-256 of the session cookie → `BrowserSessionRecord` (expiring).
pub const BROWSER_SESSIONS: Table<&[u8], &[u8]> = Table::new("browser_sessions");
/// `user_browser_sessions`: (user id, SHA-256 of the session cookie) → (). Lets "end every
/// session" (password reset, disabling, deletion) find a user's browser sessions (schema v3).
pub const USER_BROWSER_SESSIONS: Table<(&str, &[u8]), ()> = Table::new("user_browser_sessions");
/// `logout_outbox`: random id → `PendingLogout` (expiring): a browser session that ended
/// with clients to tell (Back-Channel Logout), written in the transaction that ended it and
/// taken by the delivery task.
pub const LOGOUT_OUTBOX: Table<&[u8], &[u8]> = Table::new("logout_outbox");
/// `consents`: (user id, client id) → granted scope (space-separated).
pub const CONSENTS: Table<(&str, &str), &str> = Table::new("consents");
/// `device_codes`: SHA-256 of a device code → `DeviceCodeRecord` (expiring; RFC 8628).
pub const DEVICE_CODES: Table<&[u8], &[u8]> = Table::new("device_codes");
/// `device_user_codes`: normalised user code → `DeviceUserCodeRecord` (expiring). Lives only
/// while its device authorization is undecided.
pub const DEVICE_USER_CODES: Table<&[u8], &[u8]> = Table::new("device_user_codes");
/// `pushed_requests`: request id → `AuthRequestRecord` (expiring): a pushed authorization
/// request (RFC 9126) waiting for its `request_uri` to be used, once.
pub const PUSHED_REQUESTS: Table<&[u8], &[u8]> = Table::new("pushed_requests");
/// `initial_access_tokens`: SHA-256 of an initial access token → `InitialAccessTokenRecord`
/// (expiring): admin-issued permission to register clients dynamically (RFC 7591 §3).
pub const INITIAL_ACCESS_TOKENS: Table<&[u8], &[u8]> = Table::new("initial_access_tokens");
/// `jwt_keys`: key id → `JwtKeyRecord` (OpenID Connect id_token keys).
pub const JWT_KEYS: Table<&str, &[u8]> = Table::new("jwt_keys");
/// `upstreams`: upstream id → `UpstreamRecord`: the identity providers people may sign in
/// with (schema v5).
pub const UPSTREAMS: Table<&str, &[u8]> = Table::new("upstreams");
/// `federated_identities`: (upstream id, the upstream's subject) → user id. One account per
/// upstream identity; uniqueness is enforced here (schema v5).
pub const FEDERATED_IDENTITIES: Table<(&str, &str), &str> = Table::new("federated_identities");
/// `user_identities`: (user id, upstream id) → `IdentityRecord`: a user's linked identities,
/// at most one per upstream (schema v5).
pub const USER_IDENTITIES: Table<(&str, &str), &[u8]> = Table::new("user_identities");
/// `login_failures`: `"<throttle>:<key>"` → `FailureRecord` (expiring): failed sign-ins per
/// account and per address, when the nodes share a PostgreSQL database (schema v6).
pub const LOGIN_FAILURES: Table<&[u8], &[u8]> = Table::new("login_failures");
/// `mfa_factors`: user id → `FactorsRecord`: TOTP, recovery codes and passkeys (schema v4).
pub const MFA_FACTORS: Table<&str, &[u8]> = Table::new("mfa_factors");
/// `mfa_challenges`: SHA-256 of a challenge token → `ChallengeRecord` (expiring): enrolment,
/// second-step, passwordless and unlock challenges (schema v4).
pub const MFA_CHALLENGES: Table<&[u8], &[u8]> = Table::new("mfa_challenges");
/// `events`: (time, event id) → `EventRecord`: the audit trail, removed by age (schema v4).
pub const EVENTS: Table<(u64, &str), &[u8]> = Table::new("events");
/// `user_events`: (user id, time, event id) → (): a user's events (schema v4).
pub const USER_EVENTS: Table<(&str, u64, &str), ()> = Table::new("user_events");
/// `expiry`: (expires_at, kind, key) → (). Written in the same transaction as each expiring
/// record; the sweeper walks it in order. See `expiry`.
pub const EXPIRY: Table<(u64, &str, &[u8]), ()> = Table::new("expiry");

/// Calls `$f!(TABLE, check)` for every table above, so code that must touch all of them
/// (creation, row counts, backup, `portcullis check`) cannot miss one added later. `check` is
/// the function in [`super::checks`] that validates one stored value of that table.
macro_rules! every_table {
    ($f:ident) => {
        $f!(META, checks::any);
        $f!(USERS, checks::json::<records::UserRecord>);
        $f!(USERNAMES, checks::user_ref);
        $f!(USERNAME_SKELETONS, checks::user_ref);
        $f!(EMAILS, checks::user_ref);
        $f!(API_KEYS, checks::user_ref);
        $f!(REFRESH_TOKENS, checks::json::<records::RefreshTokenRecord>);
        $f!(SESSION_FAMILIES, checks::json::<records::FamilyRecord>);
        $f!(USER_SESSIONS, checks::any);
        $f!(SIGNING_KEYS, checks::json::<records::SigningKeyRecord>);
        $f!(EMAIL_CODES, checks::json::<records::EmailCodeRecord>);
        $f!(CAPTCHAS, checks::json::<records::CaptchaRecord>);
        $f!(AVATARS, checks::png);
        $f!(SECRETS, checks::secret);
        $f!(CLIENTS, checks::json::<records::ClientRecord>);
        $f!(CLIENTS_BY_OWNER, checks::any);
        $f!(REVOKED_TOKENS, checks::json::<expiry::Expiring>);
        $f!(AUTH_REQUESTS, checks::json::<authz::AuthRequestRecord>);
        $f!(AUTH_CODES, checks::json::<authz::AuthCodeRecord>);
        $f!(
            BROWSER_SESSIONS,
            checks::json::<authz::BrowserSessionRecord>
        );
        $f!(USER_BROWSER_SESSIONS, checks::any);
        $f!(LOGOUT_OUTBOX, checks::json::<authz::PendingLogout>);
        $f!(CONSENTS, checks::scope);
        $f!(DEVICE_CODES, checks::json::<device::DeviceCodeRecord>);
        $f!(
            DEVICE_USER_CODES,
            checks::json::<device::DeviceUserCodeRecord>
        );
        $f!(PUSHED_REQUESTS, checks::json::<authz::AuthRequestRecord>);
        $f!(
            INITIAL_ACCESS_TOKENS,
            checks::json::<registration::InitialAccessTokenRecord>
        );
        $f!(
            JWT_KEYS,
            checks::json::<crate::store::records::JwtKeyRecord>
        );
        $f!(MFA_FACTORS, checks::json::<mfa::FactorsRecord>);
        $f!(MFA_CHALLENGES, checks::json::<mfa::ChallengeRecord>);
        $f!(EVENTS, checks::json::<events::EventRecord>);
        $f!(UPSTREAMS, checks::json::<upstreams::UpstreamRecord>);
        $f!(FEDERATED_IDENTITIES, checks::any);
        $f!(USER_IDENTITIES, checks::json::<upstreams::IdentityRecord>);
        $f!(USER_EVENTS, checks::any);
        $f!(LOGIN_FAILURES, checks::json::<limits::FailureRecord>);
        $f!(EXPIRY, checks::any);
    };
}
pub(crate) use every_table;
