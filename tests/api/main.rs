//! Integration tests: the real server in-process on 127.0.0.1:0 with a temporary data dir,
//! driven over HTTP. One module per feature.

mod helpers;
mod smtp;

mod account_page;
mod accounts;
mod admin;
mod admin_console;
mod avatars;
mod bad_input;
mod browser_cors;
mod browser_pages;
mod browser_passkeys;
mod browser_upstream;
mod captcha;
mod check;
mod chromium;
mod clients;
mod codes;
mod compat_account;
mod compat_auth_server;
mod compat_cross;
mod compat_sso;
mod connections;
mod cors;
mod deploy;
mod dev;
mod faults;
mod headers;
mod i18n;
mod import;
mod layering;
mod me;
mod metrics;
mod mfa;
mod multi_node;
mod oauth_dcr;
mod oauth_device;
mod oauth_flow;
mod oauth_jwt_access;
mod oauth_par;
mod oauth_token;
mod oidc_conformance;
mod oidc_keys;
mod oidc_logout;
mod openapi;
mod pg;
mod pg_storage;
mod policy;
mod register_page;
mod reset_page;
mod rp_libraries;
mod self_service;
mod sessions;
mod storage;
mod upstream;

/// The suite again, every server on PostgreSQL (see `postgres.rs`): loading each test file
/// a second time is the point.
#[allow(dead_code, clippy::duplicate_mod)]
mod postgres;
