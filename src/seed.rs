//! Seed files: users (and, once OAuth clients exist, clients) created at start so a CI job
//! gets a known fixture. Loading is idempotent: existing users are kept, missing roles added.

use std::path::Path;

use serde::Deserialize;

use crate::{
    domain::Role,
    service::{Services, accounts::Registration},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    users: Vec<SeedUser>,
    #[serde(default)]
    clients: Vec<SeedClient>,
    /// Upstream identity providers (`[[upstreams]]` blocks): added, or brought up to date,
    /// at every start.
    #[serde(default)]
    upstreams: Vec<crate::service::upstream::UpstreamInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedClient {
    client_id: String,
    /// Omitted for a public client.
    #[serde(default)]
    client_secret: Option<String>,
    /// Username of the owning user.
    owner: String,
    name: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    id_token_signed_response_alg: Option<String>,
    /// Import a secret shorter than 16 characters from a legacy deployment (warned about at
    /// every start).
    #[serde(default)]
    legacy_short_secret: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedUser {
    username: String,
    email: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// What a seed run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub users_created: usize,
    pub users_existing: usize,
    pub clients_created: usize,
    pub clients_existing: usize,
    pub upstreams_configured: usize,
}

/// Loads `path` into the store.
pub async fn load(services: &Services, path: &Path) -> Result<SeedReport, String> {
    let shown = path.display();
    let owned = path.to_path_buf();
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(owned))
        .await
        .map_err(|e| format!("seed file {shown}: {e}"))?
        .map_err(|e| format!("seed file {shown}: {e}"))?;
    let file: SeedFile = toml::from_str(&text).map_err(|e| format!("seed file {shown}: {e}"))?;
    let mut report = SeedReport::default();
    for (i, u) in file.users.into_iter().enumerate() {
        let at = format!("seed file {shown}, users[{i}] ({})", u.username);
        let mut roles = Vec::new();
        for r in &u.roles {
            roles.push(
                Role::parse(r)
                    .ok_or_else(|| format!("{at}: unknown role {r:?} (admin, developer)"))?,
            );
        }
        let existing = services
            .accounts
            .find(&u.username)
            .await
            .map_err(|e| format!("{at}: {e}"))?;
        match existing {
            Some(user) => {
                for role in roles {
                    services
                        .accounts
                        .grant_role(&user.id, role)
                        .await
                        .map_err(|e| format!("{at}: {e}"))?;
                }
                report.users_existing += 1;
            }
            None => {
                let registration = Registration {
                    username: u.username,
                    email: u.email,
                    password: u.password,
                    display_name: u.display_name,
                    ..Registration::default()
                };
                // Operator-chosen fixtures: the strength rule is for self-service sign-ups.
                services
                    .accounts
                    .create_user(registration, roles, true, false)
                    .await
                    .map_err(|e| format!("{at}: {e}"))?;
                report.users_created += 1;
            }
        }
    }
    for (i, c) in file.clients.into_iter().enumerate() {
        let at = format!("seed file {shown}, clients[{i}] ({})", c.client_id);
        let id = c.client_id.clone();
        if services
            .store
            .run(move |s| s.get_client(&id))
            .await
            .map_err(|e| format!("{at}: {e}"))?
            .is_some()
        {
            report.clients_existing += 1;
            continue;
        }
        let owner = services
            .accounts
            .find(&c.owner)
            .await
            .map_err(|e| format!("{at}: {e}"))?
            .ok_or_else(|| format!("{at}: no user `{}` to own it", c.owner))?;
        let new = crate::service::clients::NewClient {
            client_id: Some(c.client_id),
            name: c.name,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            allowed_origins: c.allowed_origins,
            grant_types: c.grant_types,
            confidential: c.client_secret.is_some(),
            scopes: c.scopes,
            secret: c.client_secret,
            id_token_alg: c.id_token_signed_response_alg,
            show_secret_again: false,
            legacy_short_secret: c.legacy_short_secret,
            ..Default::default()
        };
        services
            .clients
            .create(&owner.id, new)
            .await
            .map_err(|e| format!("{at}: {e}"))?;
        report.clients_created += 1;
    }
    let origin = crate::service::audit::Origin::internal("seed");
    for (i, u) in file.upstreams.into_iter().enumerate() {
        let at = format!("seed file {shown}, upstreams[{i}] ({})", u.id);
        services
            .upstreams
            .configure(u, &origin, None)
            .await
            .map_err(|e| format!("{at}: {e}"))?;
        report.upstreams_configured += 1;
    }
    Ok(report)
}
