//! The native API (`/api/v1`) and operational endpoints, one module per tag.

pub mod accounts;
pub mod me;
pub mod ops;
pub mod sessions;
pub mod text;
pub mod types;

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Registration and username availability.
    Accounts,
    /// Login, token refresh and logout.
    Sessions,
    /// The signed-in user's own account.
    Me,
    /// Health and readiness probes.
    Operations,
}
