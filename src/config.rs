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

/// Settings of `portcullis serve` (and of the CLI commands that open the database).
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "PORTCULLIS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory holding the database file (portcullis.redb).
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = "./portcullis-data")]
    pub data_dir: PathBuf,

    /// Public base URL: the token issuer and base of links. Defaults to http://<listen>.
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

    /// scrypt cost as log2(N). 17 is OWASP's recommendation; lower only for tests.
    #[arg(long, env = "PORTCULLIS_SCRYPT_LOG_N", default_value_t = 17, value_parser = clap::value_parser!(u8).range(1..=24))]
    pub scrypt_log_n: u8,

    /// Access token lifetime in seconds.
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u32,

    /// Seconds a refresh token stays valid unused (default 14 days).
    #[arg(long, env = "PORTCULLIS_REFRESH_IDLE_TTL", default_value_t = 14 * 24 * 3600)]
    pub refresh_idle_ttl: u32,

    /// Seconds a login session lasts at most, however often refreshed (default 30 days).
    #[arg(long, env = "PORTCULLIS_REFRESH_ABSOLUTE_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_absolute_ttl: u32,

    /// Largest accepted JSON or form body, in bytes.
    #[arg(long, env = "PORTCULLIS_MAX_JSON_BODY", default_value_t = 64 * 1024)]
    pub max_json_body: usize,

    /// Largest accepted body of any other type (uploads), in bytes.
    #[arg(long, env = "PORTCULLIS_MAX_UPLOAD", default_value_t = 1024 * 1024 + 16 * 1024)]
    pub max_upload: usize,

    /// Seconds between sweeps of expired records.
    #[arg(long, env = "PORTCULLIS_SWEEP_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval: u64,

    /// Failed logins per account within the window before further attempts get 429.
    #[arg(long, env = "PORTCULLIS_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

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
        assert_eq!(c.scrypt_log_n, 17);
        assert_eq!(
            c.database_path(),
            PathBuf::from("./portcullis-data/portcullis.redb")
        );
    }
}
