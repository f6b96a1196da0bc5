//! The command line. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{
    app::{Application, mail_settings, settings, shutdown_signal},
    clock::{Clock, rfc3339},
    config::ServeConfig,
    domain::Role,
    mail::{Mailer, setup_hint},
    service::{Services, accounts::Registration},
    store::{OpenMode, OpenOptions, Store},
};

/// portcullis — authentication server and OAuth 2.0 / OpenID Connect provider in one binary.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// TOML file of settings; keys are long flag names (`listen = "0.0.0.0:8080"`).
    /// Command-line flags and PORTCULLIS_* variables take precedence over it.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per process: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeConfig),
    /// Write the OpenAPI spec as JSON to PATH, or to standard output.
    ExportOpenapi {
        /// File to write; standard output when omitted.
        path: Option<PathBuf>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Open the database, decode every record and report table sizes.
    Check(ServeConfig),
    /// Copy the database, as of one consistent moment, into a new file, then open the copy
    /// and check it. Run it with the server stopped (redb allows one process per file).
    Backup {
        /// The new file (must not exist), e.g. `backups/portcullis-2026-11-23.redb`.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Copy everything from one database to another: a data directory (its redb file) or a
    /// `postgres://` URL on either side. The destination must be empty. The copy is one
    /// transaction, then checked table by table (rows and a digest of every record). Run it
    /// with the servers stopped.
    Migrate {
        /// Where the data is: a data directory or a `postgres://` URL.
        #[arg(long)]
        from: String,
        /// Where it goes: a data directory (the file must not exist yet) or a `postgres://`
        /// URL of an empty database.
        #[arg(long)]
        to: String,
    },
    /// Import accounts from another system: JSON Lines, one account per line
    /// (`{"username", "email", "display_name", "password_hash" | "password_md5",
    /// "email_verified", "roles", "disabled", "created_at"}`). Password hashes in PHC format
    /// (scrypt, argon2, pbkdf2) or bcrypt are kept and re-hashed to scrypt at each user's next
    /// sign-in. Refused lines are listed and skipped. Run it with the server stopped.
    Import {
        /// The JSON Lines file; `-` for standard input.
        #[arg(long)]
        file: PathBuf,
        /// Accounts written per transaction.
        #[arg(long, default_value_t = 5000)]
        batch_size: usize,
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Send one test message with the configured mail settings; on failure, say why.
    SendTestEmail {
        /// Recipient address.
        to: String,
        #[command(flatten)]
        config: ServeConfig,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (for example the first admin).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// The password; prefer the environment variable to keep it out of shell history.
        #[arg(long, env = "PORTCULLIS_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Grant the admin role.
        #[arg(long)]
        admin: bool,
        /// Grant the developer role.
        #[arg(long)]
        developer: bool,
        #[command(flatten)]
        config: ServeConfig,
    },
    /// List users.
    List {
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Disable a user (by username or email) and end all their sessions.
    Disable {
        login: String,
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Re-enable a disabled user.
    Enable {
        login: String,
        #[command(flatten)]
        config: ServeConfig,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make new access-token and id_token keys (one per algorithm) and retire the current
    /// ones. Run it while the server is stopped; old keys stay published until their tokens
    /// expire.
    Rotate {
        /// Stage the rotation: publish the new keys now, sign with them only after this many
        /// seconds (at least the time relying parties cache the JWKS, 300). 0 switches at once.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=30 * 86400))]
        stage: u32,
        #[command(flatten)]
        config: ServeConfig,
    },
}

// Parsed once per process: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an OAuth client owned by a user; prints its id and (confidential) secret.
    Create {
        /// Username or email of the owning user.
        #[arg(long)]
        owner: String,
        #[arg(long)]
        name: String,
        /// Choose the client id (default: random).
        #[arg(long)]
        client_id: Option<String>,
        /// Redirect URI (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where RP-Initiated Logout may return the browser (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Browser origin allowed to call the token endpoints (CORS; repeat for several).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// Grant type (repeat): authorization_code, refresh_token, client_credentials, password.
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Scope the client may request (repeat).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long)]
        public: bool,
        /// Choose the secret (default: random), for instance to import a client of another
        /// deployment. Prefer the environment variable: a flag stays in shell history.
        #[arg(long, env = "PORTCULLIS_CLIENT_SECRET", hide_env_values = true)]
        client_secret: Option<String>,
        /// Accept a `--client-secret` shorter than 16 characters (a legacy client, such as the
        /// auth-server document's `watup`); warned about at every start until rotated.
        #[arg(long)]
        allow_short_secret: bool,
        /// How the client authenticates at the token endpoint (RFC 7591 §2):
        /// client_secret_basic, client_secret_post (both: confidential) or none (public).
        #[arg(long)]
        token_endpoint_auth_method: Option<String>,
        /// id_token signing algorithm: RS256 (default), EdDSA or Ed25519.
        #[arg(long)]
        id_token_signed_response_alg: Option<String>,
        /// Access token format: paseto (default) or jwt (RFC 9068).
        #[arg(long)]
        access_token_format: Option<String>,
        /// Where logout tokens are POSTed when a session ends (OIDC Back-Channel Logout).
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// Accept only pushed authorization requests (RFC 9126).
        #[arg(long)]
        require_pushed_authorization_requests: bool,
        /// Demand a second factor of every sign-in to this client.
        #[arg(long)]
        require_mfa: bool,
        #[command(flatten)]
        config: ServeConfig,
    },
    /// List all OAuth clients.
    List {
        #[command(flatten)]
        config: ServeConfig,
    },
    /// Issue an initial access token for Dynamic Client Registration (RFC 7591): its holder
    /// may register clients at POST /oauth2/register, owned by the admin named here.
    InitialAccessToken {
        /// Username or email of the admin who will own the registered clients.
        #[arg(long)]
        admin: String,
        /// Seconds it stays valid (60 to 2592000).
        #[arg(long, default_value_t = 86400)]
        expires_in: i64,
        /// How many clients it may register.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        #[command(flatten)]
        config: ServeConfig,
    },
}

impl Cli {
    /// Long flag names that a config file may set.
    pub fn config_keys() -> Vec<String> {
        let cmd = <Self as clap::CommandFactory>::command();
        cmd.find_subcommand("serve")
            .map(|serve| {
                serve
                    .get_arguments()
                    .filter_map(|a| a.get_long().map(str::to_string))
                    .filter(|l| l != "config")
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What `main` reports on failure.
pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Runs a parsed command.
pub async fn run(command: Command) -> CliResult {
    match command {
        Command::Serve(config) => serve(config).await,
        Command::ExportOpenapi { path } => export_openapi(path).await,
        Command::User(cmd) => user(cmd).await,
        Command::Client(cmd) => client(cmd).await,
        Command::Keys(KeysCommand::Rotate { stage, config }) => {
            let store = open_store(&config, OpenMode::MustExist).await?;
            let audit = crate::service::audit::Audit::new(store.clone(), 0);
            let (paseto, jwts) = store
                .run(move |s| {
                    s.rotate_keys(
                        i64::from(stage),
                        crate::service::keys::new_access_token_key,
                        &crate::token::jwt::ID_TOKEN_ALGS,
                        crate::service::keys::new_id_token_key,
                    )
                })
                .await?;
            let when = if stage == 0 {
                "now".to_string()
            } else {
                format!("in {stage} s (published from the next start)")
            };
            println!("new access-token key {}, signing {when}", paseto.kid);
            let origin = crate::service::audit::Origin::internal("cli");
            let kids: Vec<&str> = std::iter::once(paseto.kid.as_str())
                .chain(jwts.iter().map(|k| k.kid.as_str()))
                .collect();
            let detail = format!("keys {}, signing {when}", kids.join(" "));
            let event = crate::service::audit::Event {
                kind: crate::service::audit::EventKind::KeyRotated,
                origin: &origin,
                actor: None,
                subject: None,
                method: None,
                detail: Some(&detail),
            };
            audit.record(event).await;
            for key in jwts {
                println!("new {} id_token key {}, signing {when}", key.alg, key.kid);
            }
            Ok(())
        }
        Command::Check(config) => check(config).await,
        Command::Backup { out, config } => backup(&out, config).await,
        Command::Migrate { from, to } => migrate(&from, &to).await,
        Command::SendTestEmail { to, config } => send_test_email(&to, &config).await,
        Command::Import {
            file,
            batch_size,
            config,
        } => import(&file, batch_size, config).await,
    }
}

/// Sends a test message and, on failure, names the likely cause.
pub async fn send_test_email(to: &str, config: &ServeConfig) -> CliResult {
    let settings = mail_settings(config)?;
    let mailer = Mailer::new(&settings)?;
    eprintln!("sending a test message to {to} via {}", mailer.describe());
    match mailer.send(mailer.letters(None).test_message(to)).await {
        Ok(()) => {
            println!("sent: mail delivery works ({})", mailer.describe());
            Ok(())
        }
        Err(e) => {
            let hint = setup_hint(&e);
            Err(format!("{e}\nhint: {hint}").into())
        }
    }
}

async fn serve(config: ServeConfig) -> CliResult {
    let app = Application::build(&config).await?;
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Services on an in-memory store with default settings: the spec depends only on the code.
pub fn spec_services() -> Result<Services, Box<dyn std::error::Error + Send + Sync>> {
    let store = Store::open_in_memory(Clock::system())?;
    let config = ServeConfig::defaults();
    let mailer = Mailer::new(&mail_settings(&config)?)?;
    Ok(Services::build(
        store,
        settings(&config, "http://127.0.0.1:8080"),
        mailer,
    )?)
}

async fn export_openapi(path: Option<PathBuf>) -> CliResult {
    let spec = crate::http::spec_json(&spec_services()?);
    match path {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, spec)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{spec}"),
    }
    Ok(())
}

/// Opens the configured database file for a tool; `MustExist` for tools that only read or
/// change what is there, so a mistyped `--data-dir` is an error instead of a new database.
async fn open_store(
    config: &ServeConfig,
    mode: OpenMode,
) -> Result<Store, Box<dyn std::error::Error + Send + Sync>> {
    let config = config.clone();
    Ok(tokio::task::spawn_blocking(move || config.open_store(Clock::system(), mode)).await??)
}

async fn open_services(
    config: &ServeConfig,
) -> Result<Services, Box<dyn std::error::Error + Send + Sync>> {
    let store = open_store(config, OpenMode::CreateIfMissing).await?;
    let public = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let settings = settings(config, &public);
    let mailer = Mailer::new(&mail_settings(config)?)?;
    Ok(tokio::task::spawn_blocking(move || Services::build(store, settings, mailer)).await??)
}

async fn user(cmd: UserCommand) -> CliResult {
    match cmd {
        UserCommand::Create {
            username,
            email,
            password,
            display_name,
            admin,
            developer,
            config,
        } => {
            let services = open_services(&config).await?;
            let mut roles = Vec::new();
            if admin {
                roles.push(Role::Admin);
            }
            if developer {
                roles.push(Role::Developer);
            }
            let user = services
                .accounts
                .create_user(
                    Registration {
                        username,
                        email,
                        password,
                        display_name,
                        ..Registration::default()
                    },
                    roles,
                    true,
                    false,
                )
                .await?;
            println!(
                "created user {} ({}) id {}",
                user.username, user.email, user.id
            );
        }
        UserCommand::List { config } => {
            let services = open_services(&config).await?;
            let users = services.store.run(|s| s.list_users()).await?;
            println!(
                "{:<6} {:<24} {:<32} {:<18} {:<8} created",
                "no", "username", "email", "roles", "status"
            );
            for u in &users {
                let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<6} {:<24} {:<32} {:<18} {:<8} {}",
                    u.number,
                    u.username,
                    u.email,
                    roles.join(","),
                    if u.disabled { "disabled" } else { "active" },
                    rfc3339(u.created_at)
                );
            }
            eprintln!("{} user(s)", users.len());
        }
        UserCommand::Disable { login, config } => set_disabled(&login, &config, true).await?,
        UserCommand::Enable { login, config } => set_disabled(&login, &config, false).await?,
    }
    Ok(())
}

async fn client(cmd: ClientCommand) -> CliResult {
    match cmd {
        ClientCommand::Create {
            owner,
            name,
            client_id,
            redirect_uris,
            post_logout_redirect_uris,
            allowed_origins,
            grant_types,
            scopes,
            public,
            client_secret,
            allow_short_secret,
            token_endpoint_auth_method,
            id_token_signed_response_alg,
            access_token_format,
            backchannel_logout_uri,
            require_pushed_authorization_requests,
            require_mfa,
            config,
        } => {
            let confidential = crate::service::clients::confidential_from(
                public.then_some(false),
                token_endpoint_auth_method.as_deref(),
            )?;
            let services = open_services(&config).await?;
            let user = services
                .accounts
                .find(&owner)
                .await?
                .ok_or_else(|| format!("no user with username or email `{owner}`"))?;
            let (client, secret) = services
                .clients
                .create(
                    &user.id,
                    crate::service::clients::NewClient {
                        client_id,
                        name,
                        redirect_uris,
                        post_logout_redirect_uris,
                        allowed_origins,
                        grant_types,
                        confidential,
                        scopes,
                        secret: client_secret,
                        id_token_alg: id_token_signed_response_alg,
                        show_secret_again: false,
                        legacy_short_secret: allow_short_secret,
                        backchannel_logout_uri,
                        require_pushed_authorization_requests,
                        require_mfa,
                        access_token_format,
                    },
                )
                .await?;
            println!("client_id     {}", client.client_id);
            if client.legacy_short_secret {
                eprintln!(
                    "warning: client {} has a short legacy secret; rotate it once its apps can take a new one",
                    client.client_id
                );
            }
            if let Some(secret) = secret {
                println!("client_secret {secret}");
                eprintln!("store the secret now: it is not shown again");
            }
        }
        ClientCommand::InitialAccessToken {
            admin,
            expires_in,
            uses,
            config,
        } => {
            let services = open_services(&config).await?;
            let user = services
                .accounts
                .find(&admin)
                .await?
                .filter(|u| u.has_role(crate::domain::Role::Admin))
                .ok_or_else(|| format!("no admin with username or email `{admin}`"))?;
            let (token, expires_at) = services
                .clients
                .issue_initial_access_token_for(&user.id, expires_in, uses)
                .await?;
            println!("initial_access_token {token}");
            eprintln!(
                "valid until {} for {uses} registration(s); store it now: it is not shown again",
                crate::clock::rfc3339(expires_at)
            );
        }
        ClientCommand::List { config } => {
            let services = open_services(&config).await?;
            let clients = services.store.run(|s| s.all_clients()).await?;
            for c in &clients {
                println!(
                    "{:<24} {:<24} {:<13} {}",
                    c.client_id,
                    c.name,
                    if c.confidential {
                        "confidential"
                    } else {
                        "public"
                    },
                    c.grant_types.join(",")
                );
            }
            eprintln!("{} client(s)", clients.len());
        }
    }
    Ok(())
}

async fn set_disabled(login: &str, config: &ServeConfig, disabled: bool) -> CliResult {
    let services = open_services(config).await?;
    let user = services
        .accounts
        .find(login)
        .await?
        .ok_or_else(|| format!("no user with username or email `{login}`"))?;
    services.accounts.set_disabled(&user.id, disabled).await?;
    println!(
        "{} user {}",
        if disabled { "disabled" } else { "enabled" },
        user.username
    );
    Ok(())
}

/// `portcullis check`: reads every record of every table (each must decode and its index
/// entries resolve), then runs redb's integrity check on a copy of the file. Creates nothing.
async fn check(config: ServeConfig) -> CliResult {
    let path = config.database_path();
    eprintln!("checking {}", config.database_shown());
    let damaged = |e: &dyn std::fmt::Display| -> Box<dyn std::error::Error + Send + Sync> {
        eprintln!("problem: the file is damaged beyond reading ({e}); restore it from a backup");
        "the database file is damaged".into()
    };
    let store = match open_store(&config, OpenMode::MustExist).await {
        Ok(store) => store,
        // A missing file or one in use is not damage: say so as it is.
        Err(e) if e.downcast_ref::<tokio::task::JoinError>().is_none() => return Err(e),
        Err(e) => return Err(damaged(&e)),
    };
    let (counts, problems) = store
        .run(|s| Ok((s.table_counts()?, s.verify()?)))
        .await
        .map_err(|e| damaged(&e))?;
    // Closed before the copy, so the copy is of a cleanly closed file.
    drop(store);
    for (table, n) in counts {
        println!("{table:<18} {n}");
    }
    let mut failures = problems.len();
    for p in &problems {
        eprintln!("problem: {p}");
    }
    // PostgreSQL checks its own pages; a file has redb's check, on a copy.
    let integrity = if config.database_url.is_some() {
        None
    } else {
        let scratch = std::env::temp_dir();
        Some(
            tokio::task::spawn_blocking(move || {
                crate::store::check_file_integrity(&path, &scratch)
            })
            .await
            .map_err(|e| damaged(&e))??,
        )
    };
    match integrity {
        None => {}
        Some(crate::store::Integrity::Sound) => {
            println!("ok: page checksums and trees are sound")
        }
        Some(crate::store::Integrity::Repaired) => {
            failures += 1;
            eprintln!(
                "problem: redb had to repair a copy of the file: it is damaged or was not closed cleanly; back it up and restore from a backup if records are missing"
            );
        }
        Some(crate::store::Integrity::Corrupt(detail)) => {
            failures += 1;
            eprintln!("problem: redb integrity check failed: {detail}; restore from a backup");
        }
    }
    if failures == 0 {
        println!("ok: every record of every table decodes");
        Ok(())
    } else {
        Err(format!("{failures} problem(s) found").into())
    }
}

/// `portcullis backup`: copies table by table with a line per table, then verifies the copy
/// opens, decodes and holds the same rows.
pub async fn backup(out: &std::path::Path, config: ServeConfig) -> CliResult {
    eprintln!(
        "backing up {} to {}",
        config.database_shown(),
        out.display()
    );
    let store = open_store(&config, OpenMode::MustExist).await?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let dest = out.to_path_buf();
    let started = std::time::Instant::now();
    let copied = tokio::task::spawn_blocking(move || {
        let total = crate::store::tables_count();
        let mut done = 0;
        store.backup_to(&dest, |table, rows| {
            done += 1;
            eprintln!("  [{done:>2}/{total}] {table:<18} {rows} rows");
        })
    })
    .await??;
    let dest = out.to_path_buf();
    let copy = tokio::task::spawn_blocking(move || {
        Store::open_with(
            &dest,
            Clock::system(),
            OpenOptions {
                mode: OpenMode::MustExist,
                ..OpenOptions::default()
            },
        )
    })
    .await??;
    let (counts, problems) = copy.run(|s| Ok((s.table_counts()?, s.verify()?))).await?;
    if counts != copied {
        return Err(format!("the copy holds {counts:?}, expected {copied:?}").into());
    }
    if !problems.is_empty() {
        return Err(format!("the copy has {} undecodable record(s)", problems.len()).into());
    }
    let rows: u64 = copied.iter().map(|(_, n)| n).sum();
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup written: {} ({rows} rows in {} tables, {bytes} bytes, {:.1?}); verified",
        out.display(),
        copied.len(),
        started.elapsed()
    );
    Ok(())
}

/// The settings that open one side of `portcullis migrate`: a `postgres://` URL or a data
/// directory.
fn place_config(place: &str) -> ServeConfig {
    // The defaults read the environment too: the place alone must decide.
    let mut config = ServeConfig::defaults();
    config.dev = false;
    config.database_pool = 4;
    if place.starts_with("postgres://") || place.starts_with("postgresql://") {
        config.database_url = Some(place.to_string());
    } else {
        config.database_url = None;
        config.data_dir = place.into();
    }
    config
}

/// `portcullis migrate`: every table copied in one transaction with a line per table, then
/// the destination's rows and record digests compared with the source's.
async fn migrate(from: &str, to: &str) -> CliResult {
    let (from, to) = (place_config(from), place_config(to));
    eprintln!(
        "migrating {} to {}",
        from.database_shown(),
        to.database_shown()
    );
    if to.database_url.is_none() && to.database_path().exists() {
        return Err(format!(
            "{} already exists; migrate only into a new data directory",
            to.database_path().display()
        )
        .into());
    }
    let shown = to.database_shown();
    let (source, target) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::OpenError>((
            from.open_store(Clock::system(), OpenMode::MustExist)?,
            to.open_store(Clock::system(), OpenMode::CreateIfMissing)?,
        ))
    })
    .await??;
    let started = std::time::Instant::now();
    let copied = tokio::task::spawn_blocking(move || {
        let filled: Vec<_> = target
            .table_counts()?
            .into_iter()
            .filter(|(t, n)| *t != "meta" && *n > 0)
            .collect();
        if !filled.is_empty() {
            return Err(format!(
                "the destination is not empty ({}); migrate only into an empty database",
                filled
                    .iter()
                    .map(|(t, n)| format!("{t}: {n} rows"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into());
        }
        let total = crate::store::tables_count();
        let mut done = 0;
        let copied = source.copy_into(&target, |table, rows| {
            done += 1;
            let bar = "#".repeat(done * 20 / total.max(1));
            eprintln!("  [{bar:<20}] {done:>2}/{total} {table:<22} {rows} rows");
        })?;
        eprintln!("  checking the copy");
        let (expected, found) = (source.table_digests()?, target.table_digests()?);
        for ((table, rows, sum), (_, copied_rows, copied_sum)) in expected.iter().zip(&found) {
            if rows != copied_rows || sum != copied_sum {
                return Err(format!(
                    "table {table}: the copy holds {copied_rows} rows, the source {rows}, or their records differ"
                )
                .into());
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(copied)
    })
    .await??;
    let rows: u64 = copied.iter().map(|(_, n)| n).sum();
    println!(
        "migrated {rows} rows in {} tables to {shown} in {:.1?}; every table's rows and records verified",
        copied.len(),
        started.elapsed()
    );
    Ok(())
}

/// `portcullis import`: reads the file in batches with a progress line (redrawn on a
/// terminal, every 10 % otherwise), then lists the refused lines.
async fn import(file: &std::path::Path, batch_size: usize, config: ServeConfig) -> CliResult {
    use std::io::IsTerminal as _;
    // The input first: a mistyped file name must not leave a new, empty database behind.
    let (input, total): (Box<dyn std::io::BufRead + Send>, Option<u64>) = if file.as_os_str() == "-"
    {
        (Box::new(std::io::BufReader::new(std::io::stdin())), None)
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::with_capacity(1 << 20, f)), len)
    };
    let store = open_store(&config, OpenMode::CreateIfMissing).await?;
    eprintln!(
        "importing {} into {}",
        file.display(),
        config.database_path().display()
    );
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let writer = store.clone();
    let report = tokio::task::spawn_blocking(move || {
        let mut next_tenth = 1u64;
        crate::service::import::import_accounts(&writer, input, batch_size, |p| {
            let rate = p.imported as f64 / started.elapsed().as_secs_f64().max(1e-3);
            let share = total
                .filter(|t| *t > 0)
                .map(|t| p.bytes_read as f64 / t as f64);
            let line = format!(
                "{}{} imported, {} refused, {rate:.0}/s",
                share.map_or(String::new(), |s| format!("{:>3.0}%  ", s * 100.0)),
                p.imported,
                p.refused
            );
            if terminal {
                eprint!("\r{line}   ");
            } else if share.is_none_or(|s| s * 10.0 >= next_tenth as f64) {
                eprintln!("{line}");
                next_tenth = share.map_or(next_tenth, |s| (s * 10.0) as u64 + 1);
            }
        })
    })
    .await??;
    if terminal {
        eprintln!();
    }
    if report.imported > 0 {
        eprintln!("compacting the file…");
        store.run(|s| s.compact()).await?;
    }
    const SHOWN: usize = 100;
    for (line, why) in report.refusals.iter().take(SHOWN) {
        eprintln!("line {line}: {why}");
    }
    if report.refused > SHOWN as u64 {
        eprintln!("… and {} more refused lines", report.refused - SHOWN as u64);
    }
    println!(
        "imported {} accounts in {:.1?}; {} lines refused",
        report.imported,
        started.elapsed(),
        report.refused
    );
    if report.refused > 0 {
        return Err(format!(
            "{} lines were refused (listed above); the other accounts were imported",
            report.refused
        )
        .into());
    }
    Ok(())
}
