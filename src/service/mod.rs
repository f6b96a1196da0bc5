//! Business logic. Services take domain types and plain values, never an HTTP request, so the
//! native API, the compatible APIs and the CLI all go through the same code.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod avatars;
pub mod captcha;
pub mod clients;
pub mod codes;
pub mod error;
pub mod id_tokens;
pub mod import;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod mfa;
pub mod oauth2;
pub mod ops;
pub mod passwords;
pub mod registration;
pub mod sessions;
pub mod upstream;
pub mod views;

use std::sync::Arc;

pub use accounts::Accounts;
pub use error::ServiceError;
pub use sessions::{Credential, IssuedSession, Principal, Sessions, TokenInfo};

use crate::{
    clock::Clock,
    mail::Mailer,
    store::{Store, StoreError, sessions::RefreshLifetimes},
    token::{AccessTokens, sealed::Sealer},
};

/// `Result` with [`ServiceError`] as the default error.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Tunables the services need, taken from the server configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Issuer and first-party audience of access tokens (the public URL).
    pub issuer: String,
    pub access_token_ttl: i64,
    pub refresh: RefreshLifetimes,
    pub scrypt: passwords::ScryptCost,
    /// Sign-ins that would wait longer for the hasher are refused (503).
    pub hash_queue_max_wait: std::time::Duration,
    /// The hashing threads' CPU priority.
    pub hash_priority: crate::config::HashPriority,
    pub login_max_failures: u32,
    /// Failed logins from one client address within the window before it is refused.
    pub login_max_failures_per_ip: u32,
    pub login_window: i64,
    pub policy: accounts::Policy,
    pub max_avatar_bytes: usize,
    pub trust_forwarded_for: bool,
    /// Dev mode: codes and captcha answers may be shown to the caller.
    pub dev: bool,
    /// The compatible APIs that are switched on.
    pub compat: Compat,
    /// When second factors are asked for.
    pub mfa: crate::config::MfaPolicy,
    /// Seconds security events are kept.
    pub audit_retention: i64,
}

/// Which compatible APIs (`--compat`) are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compat {
    pub sso: bool,
    pub account: bool,
    pub auth_server: bool,
}

impl Compat {
    /// The switched-on APIs for the start-up line: `sso, account, auth-server` or `none`.
    pub fn describe(&self) -> String {
        let on: Vec<&str> = [
            (self.sso, "sso"),
            (self.account, "account"),
            (self.auth_server, "auth-server"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if on.is_empty() {
            "none".into()
        } else {
            on.join(", ")
        }
    }
}

/// Every service, wired to one store. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub accounts: Accounts,
    pub admin: admin::Admin,
    pub sessions: Sessions,
    pub captchas: captcha::Captchas,
    pub avatars: avatars::Avatars,
    pub clients: clients::Clients,
    pub oauth2: oauth2::OAuth2,
    /// Second factors and passkeys.
    pub mfa: mfa::Mfa,
    /// The audit trail.
    pub audit: audit::Audit,
    /// Upstream identity providers and linked identities.
    pub upstreams: upstream::Upstreams,
    /// Readiness and metrics.
    pub ops: ops::Operations,
    pub mailer: Mailer,
    /// The pages' and mail's catalogues, default language and brand.
    pub texts: Arc<crate::i18n::Texts>,
    /// Public base URL (for links such as `avatar_url`).
    pub public_url: String,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    pub dev: bool,
    pub compat: Compat,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// When the services were built (Unix time), for `/metrics`.
    pub started_at: i64,
}

/// How often nodes sharing a database read the signing keys again: a rotation made on one
/// node (or with `portcullis keys rotate`) is used by all within this; stage a rotation
/// (`--stage`) at least this long so no node meets a token of a key it does not know yet.
pub const KEY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

impl Services {
    /// Reads the stored signing keys (access tokens and id_tokens) again and uses them from
    /// now on; returns whether any changed. Run every [`KEY_RELOAD_INTERVAL`] by nodes that
    /// share a PostgreSQL database.
    pub async fn reload_keys(&self) -> Result<bool, StoreError> {
        let access = self.sessions.reload_access_keys().await?;
        let id_tokens = self.oauth2.id_tokens().reload().await?;
        Ok(access || id_tokens)
    }

    /// Loads (or creates) the signing key and secrets and wires the services together.
    /// Blocking: call it off the async workers.
    pub fn build(store: Store, settings: Settings, mailer: Mailer) -> Result<Self, StoreError> {
        // The keys, secrets and built-in client this writes on a first start are made durable
        // together, with one fsync instead of one each.
        let build_store = store.clone();
        build_store.deferring_durability(|| Self::build_now(store, settings, mailer))
    }

    fn build_now(store: Store, settings: Settings, mailer: Mailer) -> Result<Self, StoreError> {
        let clock: Clock = store.clock().clone();
        let now = clock.now();
        // Tokens live at most access_token_ttl; keys retired longer ago than that verify nothing.
        let pruned = store.prune_retired_keys(settings.access_token_ttl)?;
        if pruned > 0 {
            tracing::info!(pruned, "retired signing keys removed");
        }
        store.ensure_signing_key(|| keys::new_access_token_key(now))?;
        let all = store.signing_keys()?;
        let tokens = Arc::new(
            AccessTokens::new(
                settings.issuer.clone(),
                settings.access_token_ttl,
                clock.clone(),
                &keys::access_token_keys(&all),
            )
            .map_err(|e| StoreError::Corrupt {
                table: "signing_keys",
                detail: e.to_string(),
            })?,
        );
        let jwts = Arc::new(id_tokens::IdTokenSigner::new(store.clone()));
        let audit = audit::Audit::new(store.clone(), settings.audit_retention);
        let sessions = Sessions::new(
            store.clone(),
            tokens,
            jwts.clone(),
            settings.refresh,
            audit.clone(),
        );
        let passwords = Arc::new(
            passwords::PasswordHasher::new(settings.scrypt, settings.hash_queue_max_wait)
                .map_err(|e| StoreError::Encode(format!("invalid scrypt parameters: {e}")))?
                .with_priority(settings.hash_priority),
        );
        let limits = Arc::new(if store.is_shared() {
            limiter::LoginLimits {
                account: limiter::LoginLimiter::shared(
                    settings.login_max_failures,
                    settings.login_window,
                    clock.clone(),
                    store.clone(),
                    "account",
                ),
                address: limiter::LoginLimiter::shared(
                    settings.login_max_failures_per_ip,
                    settings.login_window,
                    clock,
                    store.clone(),
                    "address",
                ),
            }
        } else {
            limiter::LoginLimits {
                account: limiter::LoginLimiter::new(
                    settings.login_max_failures,
                    settings.login_window,
                    clock.clone(),
                ),
                address: limiter::LoginLimiter::new(
                    settings.login_max_failures_per_ip,
                    settings.login_window,
                    clock,
                ),
            }
        });
        let sealer = Arc::new(Sealer::new(&store.ensure_secret("seal_key")?));
        let mfa = mfa::Mfa::new(mfa::MfaParts {
            store: store.clone(),
            sealer: sealer.clone(),
            passwords: passwords.clone(),
            limits: limits.clone(),
            audit: audit.clone(),
            mailer: mailer.clone(),
            policy: settings.mfa,
            public_url: settings.issuer.clone(),
            product_name: mailer.texts().brand.name.clone(),
        });
        let clients = clients::Clients::new(store.clone(), sealer.clone(), audit.clone());
        clients.ensure_swagger_client(&settings.issuer)?;
        let codes = codes::EmailCodes::new(
            store.clone(),
            mailer.clone(),
            store.ensure_secret("email_code_hmac")?,
        );
        let captchas = captcha::Captchas::new(store.clone(), store.ensure_secret("captcha_hmac")?);
        let metrics = Arc::new(metrics::Metrics::default());
        let upstream_sealer = sealer.clone();
        let avatars = avatars::Avatars::new(store.clone(), settings.max_avatar_bytes);
        let registration = settings.policy.registration;
        let accounts = Accounts::new(accounts::AccountsParts {
            store: store.clone(),
            passwords,
            limits,
            sessions: sessions.clone(),
            codes,
            captchas: captchas.clone(),
            sealer,
            metrics: metrics.clone(),
            policy: settings.policy,
            mfa: mfa.clone(),
        });
        Ok(Self {
            avatars: avatars.clone(),
            oauth2: oauth2::OAuth2::new(
                clients.clone(),
                accounts.clone(),
                sessions.clone(),
                store.clone(),
                store.ensure_secret("csrf_hmac")?,
                jwts,
                mfa.clone(),
            ),
            admin: admin::Admin::new(store.clone(), accounts.clone(), mfa.clone()),
            upstreams: upstream::Upstreams::new(
                store.clone(),
                upstream_sealer,
                audit.clone(),
                accounts.clone(),
                avatars.clone(),
                settings.issuer.clone(),
                registration,
            ),
            ops: ops::Operations::new(store.clone(), mailer.clone(), metrics.clone(), now),
            clients,
            mfa,
            audit,
            public_url: settings.issuer,
            trust_forwarded_for: settings.trust_forwarded_for,
            dev: settings.dev,
            compat: settings.compat,
            metrics,
            started_at: now,
            store,
            accounts,
            sessions,
            captchas,
            texts: mailer.texts().clone(),
            mailer,
        })
    }
}
