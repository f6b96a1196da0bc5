//! Server configuration: clap flags, each with a `PORTCULLIS_*` environment variable, and an
//! optional TOML file (`--config`) whose keys are the long flag names.
//! Precedence: command line > environment > config file > built-in default.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How far the password-hashing threads lower their CPU priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum HashPriority {
    /// Linux `SCHED_IDLE`: hashes run only on CPU time nothing else wants, so a login flood
    /// never delays other requests; but sign-ins wait (and are shed with 503) while anything
    /// on the machine keeps every core busy.
    #[default]
    Idle,
    /// nice 10: hashes get a small share of a contended core, so sign-ins go on under any
    /// load, at the cost of some latency for other requests during a login flood. For hosts
    /// shared with other busy processes.
    Low,
}

/// When a second factor is asked for at sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum MfaPolicy {
    /// No second factors: none can be enrolled and none is asked for.
    Off,
    /// Users may enrol factors; a user who has one is asked for it after the password.
    #[default]
    Optional,
    /// As `optional`, and admins without a factor are taken to enrolment after the password.
    RequiredForAdmins,
    /// Every user needs a second factor; those without one enrol after the password.
    Required,
}

impl MfaPolicy {
    /// The name the flag takes and the API reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MfaPolicy::Off => "off",
            MfaPolicy::Optional => "optional",
            MfaPolicy::RequiredForAdmins => "required-for-admins",
            MfaPolicy::Required => "required",
        }
    }
}

/// Whether registration needs a code mailed to the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmailVerification {
    Required,
    Off,
}

/// Who may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistrationPolicy {
    /// Anyone.
    Open,
    /// Only with the shared `--registration-key`.
    Invite,
    /// Nobody (accounts come from the CLI or a seed file).
    Closed,
}

/// Where a captcha is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptchaPolicy {
    Off,
    Register,
    Login,
    Both,
}

impl CaptchaPolicy {
    pub fn on_register(self) -> bool {
        matches!(self, Self::Register | Self::Both)
    }
    pub fn on_login(self) -> bool {
        matches!(self, Self::Login | Self::Both)
    }
}

/// A compatible API (one of the documents in `reference/`), for `--compat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum CompatApi {
    /// `sso-api.md`: `/register/`, `/login/`, `/auth/`, `/oauth/`.
    Sso,
    /// `account-api.md`: `/api/registered`, `/api/login`, `/api/user_info/`, ….
    Account,
    /// `auth-server-api.md`: `/oauth/sendCode`, `/oauth/token`, `/oauth/check_token`, ….
    AuthServer,
    /// No compatible API.
    None,
}

/// Settings of `portcullis serve` (and of the CLI commands that open the database).
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "PORTCULLIS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory holding the database file (portcullis.redb).
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = "./portcullis-data")]
    pub data_dir: PathBuf,

    /// Keep the data in PostgreSQL instead of the redb file: `postgres://user:pass@host/db`.
    /// Several portcullis processes on one database serve as one.
    #[arg(long, env = "PORTCULLIS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The most PostgreSQL connections this process opens.
    #[arg(long, env = "PORTCULLIS_DATABASE_POOL", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool: u32,

    /// Public base URL: the token issuer and base of links. Defaults to `http://<listen>`.
    #[arg(long, env = "PORTCULLIS_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Log format.
    #[arg(
        long,
        env = "PORTCULLIS_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// scrypt cost as log2(N). Default 17 (OWASP's recommendation), or 10 with --dev.
    #[arg(long, env = "PORTCULLIS_SCRYPT_LOG_N", value_parser = clap::value_parser!(u8).range(1..=24))]
    pub scrypt_log_n: Option<u8>,

    /// The longest a sign-in or registration may expect to wait for the password hasher, in
    /// milliseconds; beyond it the request is refused at once with 503 and Retry-After.
    #[arg(long, env = "PORTCULLIS_HASH_QUEUE_MAX_WAIT", default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub hash_queue_max_wait: u64,

    /// The password-hashing threads' CPU priority: `idle` (Linux SCHED_IDLE: a login flood
    /// never delays other requests) or `low` (nice 10: sign-ins keep a share of the CPU when
    /// other processes keep the machine busy).
    #[arg(long, env = "PORTCULLIS_HASH_PRIORITY", value_enum, default_value_t = HashPriority::Idle)]
    pub hash_priority: HashPriority,

    /// Access token lifetime in seconds.
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u32,

    /// Seconds a refresh token stays valid unused (default 14 days).
    #[arg(long, env = "PORTCULLIS_REFRESH_IDLE_TTL", default_value_t = 14 * 24 * 3600)]
    pub refresh_idle_ttl: u32,

    /// Seconds a login session lasts at most, however often refreshed (default 30 days).
    #[arg(long, env = "PORTCULLIS_REFRESH_ABSOLUTE_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_absolute_ttl: u32,

    /// Seconds after a refresh during which presenting the just-rotated token again (a
    /// response lost to a network cut, a retry, a double submit) gets a fresh successor
    /// instead of revoking the session; 0 disables it (RFC 9700 §4.14.2).
    #[arg(long, env = "PORTCULLIS_REFRESH_REUSE_GRACE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=300))]
    pub refresh_reuse_grace: u32,

    /// Largest accepted JSON or form body, in bytes.
    #[arg(long, env = "PORTCULLIS_MAX_JSON_BODY", default_value_t = 64 * 1024)]
    pub max_json_body: usize,

    /// Seconds a client may take to send a request's head (slowloris clients are cut off).
    #[arg(long, env = "PORTCULLIS_HEADER_READ_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout: u64,

    /// Seconds a keep-alive connection may stay idle between requests.
    #[arg(long, env = "PORTCULLIS_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,

    /// Seconds a response write may make no progress (a client that stops reading).
    #[arg(long, env = "PORTCULLIS_WRITE_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout: u64,

    /// Most connections served at once (default: the open-file limit less 32); more wait in
    /// the listen backlog, and reaching it is logged.
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// redb page cache in MiB: the most memory the database keeps for cached pages (RSS is
    /// about this plus a few tens of MiB at most).
    #[arg(long, env = "PORTCULLIS_CACHE_SIZE", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub cache_size: u64,

    /// Seconds between sweeps of expired records.
    #[arg(long, env = "PORTCULLIS_SWEEP_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval: u64,

    /// SMTP server: smtp://host:25 (plain), smtp://host:587?tls=required (STARTTLS),
    /// smtps://host:465 (TLS). User and password may be in the URL. Without it, mail is
    /// written to `<data-dir>/outbox` as .eml files.
    #[arg(long, env = "PORTCULLIS_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// SMTP user name (overrides one in the URL).
    #[arg(long, env = "PORTCULLIS_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// SMTP password (overrides one in the URL).
    #[arg(long, env = "PORTCULLIS_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// Seconds to wait for the SMTP server to connect and to answer each command.
    #[arg(long, env = "PORTCULLIS_SMTP_TIMEOUT", default_value_t = 10)]
    pub smtp_timeout: u64,

    /// Sender of outgoing mail.
    #[arg(
        long,
        env = "PORTCULLIS_MAIL_FROM",
        default_value = "portcullis <noreply@localhost>"
    )]
    pub mail_from: String,

    /// Require a mailed code to register. Default: required when --smtp-url is set, else off.
    #[arg(long, env = "PORTCULLIS_EMAIL_VERIFICATION", value_enum)]
    pub email_verification: Option<EmailVerification>,

    /// Who may register.
    #[arg(
        long,
        env = "PORTCULLIS_REGISTRATION",
        value_enum,
        default_value = "open"
    )]
    pub registration: RegistrationPolicy,

    /// Shared key required to register when --registration invite.
    #[arg(long, env = "PORTCULLIS_REGISTRATION_KEY", hide_env_values = true)]
    pub registration_key: Option<String>,

    /// Where a captcha is required.
    #[arg(long, env = "PORTCULLIS_CAPTCHA", value_enum, default_value = "off")]
    pub captcha: CaptchaPolicy,

    /// Shared key that lets the account API's `/api/forget_password/` set any user's password
    /// given their username and email. Unset (the default) switches that endpoint off.
    #[arg(long, env = "PORTCULLIS_FORGET_PASSWORD_KEY", hide_env_values = true)]
    pub forget_password_key: Option<String>,

    /// Compatible APIs to serve, comma-separated: sso, account, auth-server, or none.
    #[arg(
        long,
        env = "PORTCULLIS_COMPAT",
        value_enum,
        value_delimiter = ',',
        default_value = "sso,account,auth-server"
    )]
    pub compat: Vec<CompatApi>,

    /// Largest accepted avatar upload, in bytes.
    #[arg(long, env = "PORTCULLIS_MAX_AVATAR_BYTES", default_value_t = 1024 * 1024)]
    pub max_avatar_bytes: usize,

    /// Development mode: in-memory data, mail to GET /dev/outbox, codes in responses.
    /// Never use in production.
    #[arg(long, env = "PORTCULLIS_DEV")]
    pub dev: bool,

    /// TOML file of users (and OAuth clients) to create at start; safe to load repeatedly.
    #[arg(long, env = "PORTCULLIS_SEED", value_name = "FILE")]
    pub seed: Option<PathBuf>,

    /// Second factors: off, optional (users choose), required-for-admins, required.
    #[arg(long, env = "PORTCULLIS_MFA", value_enum, default_value_t = MfaPolicy::Optional)]
    pub mfa: MfaPolicy,

    /// Days security events (sign-ins, factor changes, admin actions) are kept.
    #[arg(long, env = "PORTCULLIS_AUDIT_RETENTION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub audit_retention_days: u32,

    /// Failed logins per account within the window before further attempts are slowed down
    /// (each further failure doubles the wait, up to the window; the owner is mailed an
    /// unlock link).
    #[arg(long, env = "PORTCULLIS_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Failed logins from one client address within the window before further attempts
    /// from it get 429.
    #[arg(
        long,
        env = "PORTCULLIS_LOGIN_MAX_FAILURES_PER_IP",
        default_value_t = 50
    )]
    pub login_max_failures_per_ip: u32,

    /// Take the client address from the last `X-Forwarded-For` entry. Enable only behind a
    /// reverse proxy that sets it; otherwise clients could pick their own address.
    #[arg(long, env = "PORTCULLIS_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Language of pages and mail when the visitor's choice, the app's `ui_locales` and the
    /// browser's `Accept-Language` name none we have: en or zh-CN.
    #[arg(long, env = "PORTCULLIS_DEFAULT_LOCALE", value_enum, default_value_t = crate::i18n::Lang::En)]
    pub default_locale: crate::i18n::Lang,

    /// Product name shown on the pages, in mail and in authenticator apps.
    #[arg(long, env = "PORTCULLIS_BRAND_NAME", default_value = "portcullis")]
    pub brand_name: String,

    /// Logo shown on every page: a .png, .jpg, .gif, .webp or .svg file (at most 512 KiB),
    /// read at start and served at /ui/logo.
    #[arg(long, env = "PORTCULLIS_BRAND_LOGO", value_name = "FILE")]
    pub brand_logo: Option<PathBuf>,

    /// Accent colour of buttons and links on the pages, as hex (#2f5bd3).
    #[arg(long, env = "PORTCULLIS_BRAND_COLOR", value_name = "HEX")]
    pub brand_color: Option<String>,

    /// Where people get help, shown on every page and mail: an email address or an
    /// http(s) URL.
    #[arg(long, env = "PORTCULLIS_SUPPORT_CONTACT")]
    pub support_contact: Option<String>,

    /// An upstream identity provider, as comma-separated `key=value` pairs with the keys of a
    /// seed file's `[[upstreams]]` block (`-` or `_`; `claims.email=mail` for the claims):
    /// `id=github,preset=github,client-id=…,client-secret=…`. Repeat the flag for more; in
    /// the environment, separate them with `;`. Applied at every start.
    #[arg(
        long = "upstream",
        env = "PORTCULLIS_UPSTREAMS",
        value_delimiter = ';',
        hide_env_values = true,
        value_name = "KEY=VALUE,…"
    )]
    pub upstreams: Vec<String>,

    /// Window, in seconds, over which failed logins are counted.
    #[arg(long, env = "PORTCULLIS_LOGIN_FAILURE_WINDOW", default_value_t = 900)]
    pub login_failure_window: u32,
}

impl ServeConfig {
    /// The built-in defaults (plus any `PORTCULLIS_*` variables set in the environment).
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            config: ServeConfig,
        }
        <Only as clap::Parser>::parse_from(["portcullis"]).config
    }

    /// The scrypt cost in effect: the flag, else 17, or 10 in dev mode.
    pub fn effective_scrypt_log_n(&self) -> u8 {
        self.scrypt_log_n.unwrap_or(if self.dev { 10 } else { 17 })
    }

    /// The catalogues with the configured default language and brand (the logo file is
    /// read here).
    pub fn texts(&self) -> Result<std::sync::Arc<crate::i18n::Texts>, String> {
        use crate::i18n::{Brand, Colour, Logo, Support, Texts};
        let name = self.brand_name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err("--brand-name: give 1 to 64 characters".into());
        }
        let brand = Brand {
            name: name.to_string(),
            logo: self.brand_logo.as_deref().map(Logo::read).transpose()?,
            accent: self.brand_color.as_deref().map(Colour::parse).transpose()?,
            support: self
                .support_contact
                .as_deref()
                .map(Support::parse)
                .transpose()?,
        };
        Texts::new(self.default_locale, brand).map(std::sync::Arc::new)
    }

    /// Whether registration needs an emailed code.
    pub fn effective_email_verification(&self) -> EmailVerification {
        self.email_verification
            .unwrap_or(if self.smtp_url.is_some() {
                EmailVerification::Required
            } else {
                EmailVerification::Off
            })
    }

    /// Whether a compatible API is switched on (`none` anywhere switches all off).
    pub fn compat_enabled(&self, api: CompatApi) -> bool {
        !self.compat.contains(&CompatApi::None) && self.compat.contains(&api)
    }

    /// How the serving store opens its file: created when missing, with the configured cache.
    pub fn open_options(&self) -> crate::store::OpenOptions {
        crate::store::OpenOptions {
            mode: crate::store::OpenMode::CreateIfMissing,
            cache_bytes: (self.cache_size as usize).saturating_mul(1024 * 1024),
        }
    }

    /// Connection limits and timeouts for the listener.
    pub fn connection_limits(&self) -> crate::http::server::ConnectionLimits {
        use std::time::Duration;
        crate::http::server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            write_timeout: Duration::from_secs(self.write_timeout),
            max_connections: self.max_connections.map_or_else(
                crate::http::server::ConnectionLimits::default_max_connections,
                |n| n as usize,
            ),
        }
    }

    /// Opens the configured store (blocking): in memory with `--dev`, PostgreSQL with
    /// `--database-url`, else the file in `--data-dir` (`mode` says whether it may be created).
    pub fn open_store(
        &self,
        clock: crate::clock::Clock,
        mode: crate::store::OpenMode,
    ) -> Result<crate::store::Store, crate::store::OpenError> {
        use crate::store::Store;
        if self.dev {
            return Store::open_in_memory(clock);
        }
        if let Some(url) = &self.database_url {
            return Store::open_postgres(url, clock, self.database_pool as usize);
        }
        let options = crate::store::OpenOptions {
            mode,
            ..self.open_options()
        };
        Store::open_with(&self.database_path(), clock, options)
    }

    /// Where the data lives, for the start-up line and messages (no password).
    pub fn database_shown(&self) -> String {
        match &self.database_url {
            Some(url) => crate::store::redacted_url(url),
            None => self.database_path().display().to_string(),
        }
    }

    /// Path of the database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("portcullis.redb")
    }
}

/// Where `--config` / `PORTCULLIS_CONFIG` points, found before clap parses anything.
pub fn config_path_from_args(args: &[String]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        if a == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("PORTCULLIS_CONFIG").map(PathBuf::from)
}

/// Turns a TOML config file into `PORTCULLIS_*` variables for the keys the environment does
/// not already set. `known` lists the accepted keys (long flag names); others are an error.
pub fn config_file_env(
    text: &str,
    known: &[String],
    env_is_set: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if !known.contains(&flag) {
            return Err(format!(
                "unknown setting `{key}`; valid keys: {}",
                known.join(", ")
            ));
        }
        let var = format!("PORTCULLIS_{}", flag.to_uppercase().replace('-', "_"));
        if env_is_set(&var) {
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => {
                return Err(format!(
                    "setting `{key}` must be a string, number, boolean or list"
                ));
            }
        };
        out.push((var, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["listen".into(), "data-dir".into(), "scrypt-log-n".into()]
    }

    #[test]
    fn toml_keys_become_env_vars_unless_already_set() {
        let text = "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/p\"\nscrypt-log-n = 15\n";
        let vars = config_file_env(text, &known(), |v| v == "PORTCULLIS_DATA_DIR").unwrap();
        assert_eq!(
            vars,
            vec![
                ("PORTCULLIS_LISTEN".to_string(), "0.0.0.0:9000".to_string()),
                ("PORTCULLIS_SCRYPT_LOG_N".to_string(), "15".to_string()),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_toml_are_errors() {
        assert!(
            config_file_env("nope = 1", &known(), |_| false)
                .unwrap_err()
                .contains("unknown setting `nope`")
        );
        assert!(config_file_env("listen = ", &known(), |_| false).is_err());
    }

    #[test]
    fn config_flag_is_found_in_either_form() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config_path_from_args(&a(&["p", "--config", "x.toml"])),
            Some("x.toml".into())
        );
        assert_eq!(
            config_path_from_args(&a(&["p", "serve", "--config=y.toml"])),
            Some("y.toml".into())
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = ServeConfig::defaults();
        assert_eq!(c.effective_scrypt_log_n(), 17);
        assert_eq!(c.effective_email_verification(), EmailVerification::Off);
        let dev = ServeConfig {
            dev: true,
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            ..c.clone()
        };
        assert_eq!(dev.effective_scrypt_log_n(), 10);
        assert_eq!(
            dev.effective_email_verification(),
            EmailVerification::Required
        );
        assert_eq!(
            c.database_path(),
            PathBuf::from("./portcullis-data/portcullis.redb")
        );
    }
}
