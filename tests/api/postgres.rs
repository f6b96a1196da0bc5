//! The suite again with every server on PostgreSQL: a fresh database per server on a cluster
//! the tests start (`pg::shared`), chosen in `helpers::test_config` by the test's path
//! (`postgres::…`). What the store promises must hold on both backends.
//!
//! Left out: the tests of the file itself (disk faults, `check`, the data directory's lock),
//! of the socket layer and of the build, which no backend changes; and the browser tests,
//! whose pages run over the same services, tested here through HTTP.

#[path = "account_page.rs"]
mod account_page;
#[path = "accounts.rs"]
mod accounts;
#[path = "admin.rs"]
mod admin;
#[path = "admin_console.rs"]
mod admin_console;
#[path = "avatars.rs"]
mod avatars;
#[path = "bad_input.rs"]
mod bad_input;
#[path = "captcha.rs"]
mod captcha;
#[path = "clients.rs"]
mod clients;
#[path = "codes.rs"]
mod codes;
#[path = "compat_account.rs"]
mod compat_account;
#[path = "compat_auth_server.rs"]
mod compat_auth_server;
#[path = "compat_cross.rs"]
mod compat_cross;
#[path = "compat_sso.rs"]
mod compat_sso;
#[path = "cors.rs"]
mod cors;
#[path = "headers.rs"]
mod headers;
#[path = "i18n.rs"]
mod i18n;
#[path = "import.rs"]
mod import;
#[path = "me.rs"]
mod me;
#[path = "metrics.rs"]
mod metrics;
#[path = "mfa.rs"]
mod mfa;
#[path = "oauth_dcr.rs"]
mod oauth_dcr;
#[path = "oauth_device.rs"]
mod oauth_device;
#[path = "oauth_flow.rs"]
mod oauth_flow;
#[path = "oauth_jwt_access.rs"]
mod oauth_jwt_access;
#[path = "oauth_par.rs"]
mod oauth_par;
#[path = "oauth_token.rs"]
mod oauth_token;
#[path = "oidc_conformance.rs"]
mod oidc_conformance;
#[path = "oidc_keys.rs"]
mod oidc_keys;
#[path = "oidc_logout.rs"]
mod oidc_logout;
#[path = "policy.rs"]
mod policy;
#[path = "register_page.rs"]
mod register_page;
#[path = "reset_page.rs"]
mod reset_page;
#[path = "rp_libraries.rs"]
mod rp_libraries;
#[path = "self_service.rs"]
mod self_service;
#[path = "sessions.rs"]
mod sessions;
#[path = "upstream.rs"]
mod upstream;
