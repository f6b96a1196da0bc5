//! portcullis — a self-hosted authentication server and OAuth 2.0 / OpenID Connect provider,
//! in one binary with its data in one embedded redb file.
//!
//! # Layout
//!
//! Dependencies point one way: `http → service → {store, token, mail, domain}`.
//!
//! - [`domain`]: validated value types (`Username::parse`, `Email::parse`, …). Holding one
//!   means it is valid.
//! - [`store`]: the redb database — every table in [`store::tables`], JSON records that fail
//!   cleanly when corrupt, and the expiry index with its sweeper. Synchronous by design;
//!   async code reaches it through [`store::Store::run`] on the blocking pool.
//! - [`token`]: PASETO v4.public access tokens, OIDC id_tokens, opaque secrets (stored as
//!   SHA-256) and the few secrets shown again (sealed with PASETO v4.local).
//! - [`service`]: accounts, sessions, password hashing, login throttling, email codes,
//!   captchas, avatars, OAuth clients and grants (one file per grant type). Services take
//!   domain values, never HTTP requests, so every API shares them.
//! - [`i18n`]: the Fluent catalogues of pages and mail (English, Simplified Chinese), the
//!   choice of language per request, and the operator's brand.
//! - [`mail`]: outgoing mail through lettre (SMTP, an outbox folder, or the dev outbox).
//! - [`http`]: the only module that imports poem — the native OpenAPI operations
//!   (`http::api`), the OAuth 2.0 / OIDC endpoints (`http::oauth2`), the login and consent
//!   pages (`http::pages`), the three compatible APIs as thin adapters (`http::compat`), the
//!   problem+json error type and the middleware.
//! - [`app`]: wiring. [`app::Application::build`] opens the store and binds the listener
//!   (port 0 works, for tests); `run_until_stopped` takes the shutdown signal as a future.
//! - [`cli`] and [`config`]: the command line, environment and TOML settings.
//!
//! No globals: everything a handler needs is handed to it when the app is built.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod i18n;
pub mod mail;
pub mod outbound;
pub mod seed;
pub mod service;
pub mod store;
pub mod token;

pub use app::Application;
pub use config::ServeConfig;
