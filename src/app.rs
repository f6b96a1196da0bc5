//! Wiring: opens the store, binds the listener, builds the services and runs the server with
//! its background tasks until a shutdown signal.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;

use crate::{
    clock::Clock,
    config::{CompatApi, EmailVerification, RegistrationPolicy, ServeConfig},
    http::{self, middleware::BodyLimits},
    mail::{MailError, MailSettings, Mailer},
    service::{Services, Settings, accounts::Policy, passwords::ScryptCost},
    store::{OpenError, StoreError, expiry, sessions::RefreshLifetimes},
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("could not initialise: {0}")]
    Init(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("{0}")]
    Seed(String),
}

/// Multipart framing allowance on top of the avatar size limit.
const MULTIPART_OVERHEAD: usize = 16 * 1024;

/// Expired records deleted per sweep transaction.
const SWEEP_BATCH: usize = 500;

/// A built, bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    connections: http::server::ConnectionLimits,
    public_url: String,
    database: String,
    services: Services,
    limits: BodyLimits,
    sweep_interval: Duration,
    warnings: Vec<String>,
}

/// Service settings derived from the configuration.
pub fn settings(config: &ServeConfig, public_url: &str) -> Settings {
    Settings {
        issuer: public_url.to_string(),
        access_token_ttl: i64::from(config.access_token_ttl),
        refresh: RefreshLifetimes {
            reuse_grace: i64::from(config.refresh_reuse_grace),
            idle: i64::from(config.refresh_idle_ttl),
            absolute: i64::from(config.refresh_absolute_ttl),
        },
        scrypt: ScryptCost {
            log_n: config.effective_scrypt_log_n(),
            ..ScryptCost::default()
        },
        hash_queue_max_wait: std::time::Duration::from_millis(config.hash_queue_max_wait),
        hash_priority: config.hash_priority,
        login_max_failures: config.login_max_failures,
        login_max_failures_per_ip: config.login_max_failures_per_ip,
        login_window: i64::from(config.login_failure_window),
        policy: Policy {
            registration: config.registration,
            registration_key: config.registration_key.clone(),
            forget_password_key: config.forget_password_key.clone(),
            captcha: config.captcha,
            email_verification: config.effective_email_verification(),
        },
        max_avatar_bytes: config.max_avatar_bytes,
        trust_forwarded_for: config.trust_forwarded_for,
        dev: config.dev,
        compat: crate::service::Compat {
            sso: config.compat_enabled(CompatApi::Sso),
            account: config.compat_enabled(CompatApi::Account),
            auth_server: config.compat_enabled(CompatApi::AuthServer),
        },
        mfa: config.mfa,
        audit_retention: i64::from(config.audit_retention_days) * 86_400,
    }
}

/// Mail settings derived from the configuration, with the catalogues and brand the messages
/// (and pages) are written with; an unreadable logo or a bad colour is an error here.
pub fn mail_settings(config: &ServeConfig) -> Result<MailSettings, String> {
    Ok(MailSettings {
        smtp_url: config.smtp_url.clone(),
        smtp_username: config.smtp_username.clone(),
        smtp_password: config.smtp_password.clone(),
        timeout: Duration::from_secs(config.smtp_timeout.max(1)),
        from: config.mail_from.clone(),
        outbox_dir: config.data_dir.join("outbox"),
        dev: config.dev,
        texts: config.texts()?,
    })
}

/// Settings that cannot work together are refused before anything starts.
fn check_settings(config: &ServeConfig) -> Result<Vec<String>, StartError> {
    let mut warnings = Vec::new();
    if let Some(public) = &config.public_url {
        check_public_url(public, config.dev).map_err(StartError::Config)?;
    }
    if config.registration == RegistrationPolicy::Invite
        && config.registration_key.as_deref().is_none_or(str::is_empty)
    {
        return Err(StartError::Config(
            "--registration invite needs --registration-key".into(),
        ));
    }
    for spec in &config.upstreams {
        crate::service::upstream::UpstreamInput::parse_flag(spec).map_err(StartError::Config)?;
    }
    if config.dev {
        warnings.push(
            "DEVELOPMENT MODE: data is in memory and lost at exit, codes and captcha answers are returned to callers. NOT FOR PRODUCTION."
                .into(),
        );
    }
    if config.smtp_url.is_none() && !config.dev && config.email_verification.is_none() {
        warnings.push(
            "no --smtp-url: mail goes to the outbox folder and email verification is off; set --smtp-url to require verified addresses"
                .into(),
        );
    }
    if config.effective_email_verification() == EmailVerification::Required
        && config.smtp_url.is_none()
        && !config.dev
    {
        warnings
            .push("email verification is required but mail only reaches the outbox folder".into());
    }
    if config.effective_scrypt_log_n() < 15 && !config.dev {
        warnings.push(format!(
            "scrypt cost 2^{} is below the recommended 2^17; use it only for tests",
            config.effective_scrypt_log_n()
        ));
    }
    Ok(warnings)
}

/// `--public-url` must be an absolute http(s) URL without query or fragment, and https unless
/// it is on this machine (a loopback address, `localhost` or `*.localhost`, RFC 6761 §6.3) or
/// the server runs in dev mode: it is the token issuer and the base of every redirect.
fn check_public_url(text: &str, dev: bool) -> Result<(), String> {
    let bad = |why: &str| format!("--public-url {text:?}: {why}");
    let url = url::Url::parse(text).map_err(|e| bad(&format!("not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be https (or http on this machine)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it may not have a query or a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it may not carry a user name or password"));
    }
    let Some(host) = url.host_str() else {
        return Err(bad("it needs a host"));
    };
    // Redirect URIs' loopback rule, plus `*.localhost` names (RFC 6761 §6.3).
    let local =
        crate::domain::is_loopback(&url) || host.to_ascii_lowercase().ends_with(".localhost");
    if url.scheme() == "http" && !local && !dev {
        return Err(bad(
            "https is required unless the host is loopback (or with --dev)",
        ));
    }
    Ok(())
}

impl Application {
    /// Opens the database and binds the listener (port 0 picks a free port).
    pub async fn build(config: &ServeConfig) -> Result<Self, StartError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// [`Application::build`] with a given clock (tests move time with a manual one).
    pub async fn build_with_clock(config: &ServeConfig, clock: Clock) -> Result<Self, StartError> {
        let warnings = check_settings(config)?;
        let opening = config.clone();
        let store = tokio::task::spawn_blocking(move || {
            opening.open_store(clock, crate::store::OpenMode::CreateIfMissing)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        let mailer = Mailer::new(&mail_settings(config).map_err(StartError::Config)?)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().unwrap_or(config.listen);
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_string();
        let settings = settings(config, &public_url);
        let services = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || Services::build(store, settings, mailer))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??
        };
        let mut warnings = warnings;
        if let Some(seed) = &config.seed {
            let report = crate::seed::load(&services, seed)
                .await
                .map_err(StartError::Seed)?;
            tracing::info!(
                created = report.users_created,
                existing = report.users_existing,
                "seed file loaded"
            );
        }
        let origin = crate::service::audit::Origin::internal("config");
        for spec in &config.upstreams {
            let input = crate::service::upstream::UpstreamInput::parse_flag(spec)
                .map_err(StartError::Config)?;
            let id = input.id.clone();
            services
                .upstreams
                .configure(input, &origin, None)
                .await
                .map_err(|e| StartError::Config(format!("--upstream {id}: {e}")))?;
        }
        // Every start, until rotated: a short secret imported from a legacy deployment.
        let clients = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.all_clients())
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??
        };
        for c in clients.iter().filter(|c| c.legacy_short_secret) {
            warnings.push(format!(
                "client `{}` uses a short legacy secret (imported with legacy_short_secret); rotate it with POST /api/v1/clients/{}/secret once its apps can take a new one",
                c.client_id, c.client_id
            ));
        }
        Ok(Self {
            listener,
            addr,
            connections: config.connection_limits(),
            public_url,
            database: if config.dev {
                "in memory (dev mode)".into()
            } else {
                config.database_shown()
            },
            services,
            limits: BodyLimits {
                json: config.max_json_body,
                other: config.max_avatar_bytes + MULTIPART_OVERHEAD,
            },
            sweep_interval: Duration::from_secs(config.sweep_interval),
            warnings,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The public base URL (token issuer).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to 30 s),
    /// stops the background tasks and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            addr,
            connections,
            public_url,
            database,
            services,
            limits,
            sweep_interval,
            warnings,
        } = self;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        match services.admin.first_run_token().await {
            Ok(Some(token)) => tracing::warn!(
                "no administrator yet: open {public_url}/ui/setup?token={token} within the hour to create one (or run `portcullis user create --admin`)"
            ),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not check for an administrator"),
        }
        tracing::info!(
            "portcullis listening on http://{addr} — data {database}, mail to {}, issuer {public_url}, Swagger UI {public_url}/swagger, compatible APIs: {}",
            services.mailer.describe(),
            services.compat.describe()
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let sweeper = tokio::spawn(expiry::run_sweeper(
            services.store.clone(),
            sweep_interval,
            SWEEP_BATCH,
            services.audit.retention(),
            stop_rx.clone(),
        ));
        // Nodes sharing a database pick up each other's key rotations.
        let key_reloads = services.store.is_shared().then(|| {
            let services = services.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(crate::service::KEY_RELOAD_INTERVAL);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = ticker.tick() => {}
                        _ = stop.changed() => return,
                    }
                    match services.reload_keys().await {
                        Ok(true) => {
                            tracing::info!("signing keys changed in the database; using them now")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "could not read the signing keys again")
                        }
                    }
                }
            })
        });
        let warm = {
            let accounts = services.accounts.clone();
            tokio::spawn(async move { accounts.warm_up().await })
        };
        // Both id_token keys exist (and are published) before either signs. RSA generation
        // takes a while, so it runs once the server listens; shutdown waits for it, since it
        // holds the database.
        let keys = {
            let oauth2 = services.oauth2.clone();
            tokio::spawn(async move {
                if let Err(e) = oauth2.id_tokens().ensure_keys().await {
                    tracing::warn!(error = %e, "could not create the id_token keys; will retry on first use");
                }
            })
        };
        // Back-Channel Logout deliveries: their own task, drained at shutdown.
        let logouts = match crate::outbound::http_client(
            crate::service::oauth2::backchannel::DELIVERY_TIMEOUT,
        ) {
            Ok(client) => Some(tokio::spawn(
                crate::service::oauth2::backchannel::run_deliveries(
                    services.oauth2.backchannel().clone(),
                    client,
                    stop_rx.clone(),
                ),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "back-channel logout is off: no HTTP client");
                None
            }
        };
        let endpoint = http::endpoint(services, limits);
        let result = http::server::serve(listener, endpoint, connections, shutdown).await;
        let _ = stop_tx.send(true);
        warm.abort();
        let _ = warm.await;
        let _ = keys.await;
        let _ = sweeper.await;
        if let Some(reloads) = key_reloads {
            let _ = reloads.await;
        }
        if let Some(logouts) = logouts {
            let _ = logouts.await;
        }
        tracing::info!("portcullis stopped; database closed");
        result
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::check_public_url;

    #[test]
    fn public_url_rules() {
        for ok in [
            "https://auth.example.com",
            "https://auth.example.com/id/",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://portcullis.localhost",
        ] {
            assert_eq!(check_public_url(ok, false), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("auth.example.com", "not an absolute URL"),
            ("ftp://auth.example.com", "scheme"),
            ("https://auth.example.com/?a=b", "query"),
            ("https://auth.example.com/#x", "fragment"),
            ("http://auth.example.com", "https is required"),
            ("https://user:pw@auth.example.com", "user name"),
        ] {
            let err = check_public_url(bad, false).unwrap_err();
            assert!(err.starts_with("--public-url"), "{err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert_eq!(check_public_url("http://auth.example.com", true), Ok(()));
    }
}
