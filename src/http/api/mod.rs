//! The native API (`/api/v1`) and operational endpoints, one module per tag.

pub mod accounts;
pub mod admin;
pub mod avatars;
pub mod clients;
pub mod me;
pub mod mfa;
pub mod ops;
pub mod sessions;
pub mod text;
pub mod types;
pub mod upstreams;
pub mod verification;

use poem_openapi::Tags;

use crate::service::Services;

/// The caller of a native API operation, for throttling and the audit trail.
fn origin(services: &Services, req: &poem::Request) -> crate::service::audit::Origin {
    crate::http::origin(req, services.trust_forwarded_for, "api")
}

#[derive(Tags)]
pub enum ApiTags {
    /// Registration and username availability.
    Accounts,
    /// Login, token refresh and logout.
    Sessions,
    /// Emailed codes, password reset and captchas.
    Verification,
    /// The signed-in user's own account.
    Me,
    /// Second factors, passkeys and sign-in history of the signed-in user.
    Mfa,
    /// OAuth clients, managed by developers.
    Clients,
    /// User administration (admins only).
    Admin,
    /// Health and readiness probes.
    Operations,
    /// `sso-api.md`, served as written: envelopes `{code, message, data}` with HTTP 200.
    #[oai(rename = "Compatible: sso-api.md")]
    CompatibleSso,
    /// `account-api.md`, served as written: `{message, code}` with HTTP 200.
    #[oai(rename = "Compatible: account-api.md")]
    CompatibleAccount,
    /// `auth-server-api.md`, served as written: envelopes with HTTP 200, except the
    /// Spring-style `/oauth/token` and `/oauth/check_token`.
    #[oai(rename = "Compatible: auth-server-api.md")]
    CompatibleAuthServer,
}
