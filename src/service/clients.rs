//! OAuth client registration and management (RFC 6749 §2). Developers manage their own
//! clients; admins may see and manage all. Secrets are 256-bit, shown once, stored as SHA-256
//! and checked in constant time.

use std::{collections::HashSet, sync::Arc};

use subtle::ConstantTimeEq;

use super::audit::{Audit, Event, EventKind, Origin};
use super::{
    Principal, Result, ServiceError,
    views::{ClientView, UserView},
};
use crate::{
    domain::{Invalid, RedirectUri, Role, Scope},
    store::{
        Store,
        clients::CreateClientOutcome,
        codes::hex,
        records::{AccessTokenFormat, ClientRecord},
    },
    token::{opaque, sealed::Sealer},
};

/// The built-in public client Swagger UI signs in with. Its tokens are first-party (their
/// audience is this server), so "Try it out" works on the native API.
pub const SWAGGER_CLIENT_ID: &str = "portcullis-swagger";

/// Grant types a client may be allowed (RFC 6749 §4).
pub const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    DEVICE_CODE_GRANT,
];
/// The Device Authorization Grant's grant type (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Scopes a client gets when it names none.
const DEFAULT_SCOPES: &str = "openid profile email offline_access";
const MAX_REDIRECT_URIS: usize = 20;

/// Whether a new client is confidential, from `confidential` and/or the RFC 7591 §2
/// `token_endpoint_auth_method` (`none` is a public client; `client_secret_basic` and
/// `client_secret_post` are confidential ones, which may use either). Confidential when
/// neither is given; contradictory settings are refused.
pub fn confidential_from(confidential: Option<bool>, auth_method: Option<&str>) -> Result<bool> {
    let by_method = match auth_method {
        None => None,
        Some("none") => Some(false),
        Some("client_secret_basic" | "client_secret_post") => Some(true),
        Some(other) => {
            return Err(Invalid::new(
                "invalid_client_metadata",
                "token_endpoint_auth_method",
                format!("`{other}` is not supported: use client_secret_basic, client_secret_post or none"),
            )
            .into());
        }
    };
    match (confidential, by_method) {
        (Some(c), Some(m)) if c != m => Err(Invalid::new(
            "invalid_client_metadata",
            "token_endpoint_auth_method",
            "contradicts `confidential`",
        )
        .into()),
        (c, m) => Ok(c.or(m).unwrap_or(true)),
    }
}

/// The shortest client secret accepted, except for an explicit legacy import.
pub const MIN_SECRET_CHARS: usize = 16;

/// A client to register.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// Chosen id (CLI and seed files); random when `None`.
    pub client_id: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Where RP-Initiated Logout may return the browser.
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins allowed to call the token endpoints (CORS); see `ClientRecord`.
    pub allowed_origins: Vec<String>,
    /// Defaults to `authorization_code` + `refresh_token`.
    pub grant_types: Vec<String>,
    pub confidential: bool,
    pub scopes: Vec<String>,
    /// Chosen secret (seed files); random when `None`.
    pub secret: Option<String>,
    /// id_token signing algorithm: `RS256` (default) or `EdDSA`.
    pub id_token_alg: Option<String>,
    /// Keep the secret sealed so it can be shown again (the SSO document's `GET /auth/`).
    pub show_secret_again: bool,
    /// Accept a chosen `secret` shorter than 16 characters: only to import a client of a
    /// legacy deployment (the auth-server document's `watup`), and warned about at every
    /// start until the secret is rotated.
    pub legacy_short_secret: bool,
    /// Back-Channel Logout receiver (OIDC Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// RFC 9126 §6: only pushed authorization requests.
    pub require_pushed_authorization_requests: bool,
    /// Every sign-in to this client needs a second factor.
    pub require_mfa: bool,
    /// `paseto` (default) or `jwt` (RFC 9068).
    pub access_token_format: Option<String>,
}

/// Changes to a client; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    /// `Some("")` removes it.
    pub backchannel_logout_uri: Option<String>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub require_mfa: Option<bool>,
    pub access_token_format: Option<String>,
    pub id_token_alg: Option<String>,
}

#[derive(Clone)]
pub struct Clients {
    store: Store,
    sealer: Arc<Sealer>,
    /// Client created, changed and deleted events.
    audit: Audit,
    /// Every client's CORS origins, read at most once a second (a node-local cache: changes
    /// made here clear it at once, others show within the second).
    origins: Arc<std::sync::Mutex<Option<CachedOrigins>>>,
}

/// When the set was read, and the set.
type CachedOrigins = (std::time::Instant, Arc<HashSet<String>>);

/// How long the cached set of CORS origins is trusted.
const ORIGINS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// What a sealed client secret is bound to.
fn secret_context(client_id: &str) -> String {
    format!("client_secret:{client_id}")
}

impl Clients {
    pub fn new(store: Store, sealer: Arc<Sealer>, audit: Audit) -> Self {
        Self {
            store,
            sealer,
            audit,
            origins: Arc::default(),
        }
    }

    /// Records a change to the client `client_id` (the event's subject) made by `actor`.
    pub(super) async fn audit(
        &self,
        kind: EventKind,
        actor: Option<&str>,
        client_id: &str,
        origin: &Origin,
        detail: &str,
    ) {
        let event = Event {
            kind,
            origin,
            actor,
            subject: Some(client_id),
            method: None,
            detail: Some(detail),
        };
        self.audit.record(event).await;
    }

    /// Whether some client lets browser apps on `origin` call the token endpoints.
    pub async fn origin_allowed(&self, origin: &str) -> bool {
        let cached = self
            .origins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < ORIGINS_TTL)
            .map(|(_, set)| set.clone());
        let set = match cached {
            Some(set) => set,
            None => {
                let Ok(clients) = self.store.run(|s| s.all_clients()).await else {
                    return false;
                };
                let set: Arc<HashSet<String>> =
                    Arc::new(clients.iter().flat_map(effective_origins).collect());
                *self
                    .origins
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((std::time::Instant::now(), set.clone()));
                set
            }
        };
        set.contains(origin)
    }

    /// The store (for the registration protocol in `registration`).
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// A client was added, changed or removed through this node: drops the cached CORS
    /// origins, so they are re-read at once.
    pub(super) fn changed(&self) {
        *self
            .origins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The secret of a client created with `show_secret_again`, unsealed; `None` for others.
    pub fn revealed_secret(&self, client: &ClientRecord) -> Result<Option<String>> {
        client
            .secret_sealed
            .as_deref()
            .map(|s| self.sealer.open(s, &secret_context(&client.client_id)))
            .transpose()
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The caller's (oldest) client whose secret can be shown again, with the secret; `None`
    /// if they have none (or are not a developer).
    pub async fn revealable_client(
        &self,
        principal: &Principal,
    ) -> Result<Option<(ClientRecord, String)>> {
        if !principal.user.has_role(Role::Developer) {
            return Ok(None);
        }
        let id = principal.user.id.clone();
        let found = self
            .store
            .run(move |s| s.clients_of(&id))
            .await?
            .into_iter()
            .filter(|c| c.secret_sealed.is_some())
            .min_by_key(|c| c.created_at);
        match found {
            Some(c) => {
                let secret = self.revealed_secret(&c)?.unwrap_or_default();
                Ok(Some((c, secret)))
            }
            None => Ok(None),
        }
    }

    /// The caller's client whose secret can be shown again, created on first call (the SSO
    /// document's "become a developer"): confidential, authorization code grant, the
    /// `openid profile email` scopes. `redirect_uris`, when given, replace the registered ones.
    /// A first call grants the developer role and creates the client in one transaction, after
    /// every check: a refused call changes nothing. Returns the user as it is now.
    pub async fn ensure_revealable_client(
        &self,
        principal: &Principal,
        redirect_uris: Option<Vec<String>>,
        origin: &Origin,
    ) -> Result<(UserView, ClientView, String)> {
        match (self.revealable_client(principal).await?, redirect_uris) {
            (Some((c, secret)), None) => Ok((principal.user.clone(), c.into(), secret)),
            (Some((c, secret)), Some(uris)) => {
                let changes = ClientChanges {
                    redirect_uris: Some(uris),
                    ..ClientChanges::default()
                };
                let client = self
                    .update(principal, &c.client_id, changes, origin)
                    .await?;
                Ok((principal.user.clone(), client, secret))
            }
            (None, redirect_uris) => {
                let new = NewClient {
                    name: format!("{} (SSO)", principal.user.username),
                    redirect_uris: redirect_uris.unwrap_or_default(),
                    grant_types: vec!["authorization_code".into()],
                    confidential: true,
                    scopes: vec!["openid".into(), "profile".into(), "email".into()],
                    show_secret_again: true,
                    ..NewClient::default()
                };
                let (record, secret) = self.build(&principal.user.id, new)?;
                let stored = record.clone();
                let user = match self
                    .store
                    .run(move |s| s.create_client_granting_role(&stored, Role::Developer))
                    .await?
                {
                    CreateClientOutcome::Created(user) => *user,
                    CreateClientOutcome::IdTaken => return Err(ServiceError::ClientIdTaken),
                    CreateClientOutcome::NoOwner => return Err(ServiceError::NotFound("user")),
                };
                tracing::info!(client_id = %record.client_id, owner = %user.id, "developer role granted with its SSO client");
                let (id, actor) = (&record.client_id, Some(user.id.as_str()));
                self.audit(EventKind::ClientCreated, actor, id, origin, "sso_developer")
                    .await;
                // A confidential client always has a secret.
                Ok((user.into(), record.into(), secret.unwrap_or_default()))
            }
        }
    }

    /// Creates or refreshes the built-in Swagger UI client for the current public URL.
    pub fn ensure_swagger_client(
        &self,
        public_url: &str,
    ) -> Result<ClientRecord, crate::store::StoreError> {
        let now = self.store.clock().now();
        let record = ClientRecord {
            client_id: SWAGGER_CLIENT_ID.into(),
            owner_id: "system".into(),
            name: "Swagger UI (built in)".into(),
            redirect_uris: vec![format!("{public_url}/swagger/oauth-receiver.html")],
            post_logout_redirect_uris: Vec::new(),
            allowed_origins: Vec::new(),
            backchannel_logout_uri: None,
            require_pushed_authorization_requests: false,
            require_mfa: false,
            access_token_format: AccessTokenFormat::Paseto,
            registration_token_hash: None,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            confidential: false,
            secret_hash: None,
            secret_sealed: None,
            scopes: vec![
                "api".into(),
                "email".into(),
                "openid".into(),
                "profile".into(),
            ],
            id_token_alg: None,
            legacy_short_secret: false,
            created_at: now,
            updated_at: now,
        };
        self.store.upsert_builtin_client(record)
    }

    /// Registers a client for the signed-in developer; returns it and its secret (shown once).
    pub async fn register(
        &self,
        principal: &Principal,
        new: NewClient,
        origin: &Origin,
    ) -> Result<(ClientView, Option<String>)> {
        require_developer(principal)?;
        let id = &principal.user.id;
        let created = self.create(id, new).await?;
        let client_id = &created.0.client_id;
        self.audit(EventKind::ClientCreated, Some(id), client_id, origin, "api")
            .await;
        Ok(created)
    }

    /// Registers a client owned by `owner_id` without a role check (CLI, seed files).
    pub async fn create(
        &self,
        owner_id: &str,
        new: NewClient,
    ) -> Result<(ClientView, Option<String>)> {
        let (record, secret) = self.build(owner_id, new)?;
        let view = ClientView::from(&record);
        if !self.store.run(move |s| s.create_client(&record)).await? {
            return Err(ServiceError::ClientIdTaken);
        }
        self.changed();
        tracing::info!(client_id = %view.client_id, owner = %owner_id, "OAuth client registered");
        Ok((view, secret))
    }

    /// Checks a new client's settings and builds its record and secret, writing nothing.
    pub(super) fn build(
        &self,
        owner_id: &str,
        new: NewClient,
    ) -> Result<(ClientRecord, Option<String>)> {
        let name = valid_name(&new.name)?;
        let grant_types = valid_grants(if new.grant_types.is_empty() {
            vec!["authorization_code".into(), "refresh_token".into()]
        } else {
            new.grant_types
        })?;
        let redirect_uris = valid_redirects(new.redirect_uris, &grant_types)?;
        let post_logout_redirect_uris = valid_post_logout(new.post_logout_redirect_uris)?;
        let allowed_origins = valid_origins(new.allowed_origins)?;
        check_combination(new.confidential, &grant_types)?;
        let scopes = valid_scopes(new.scopes)?;
        let id_token_alg = valid_alg(new.id_token_alg)?;
        let backchannel_logout_uri = valid_backchannel(new.backchannel_logout_uri)?;
        let access_token_format = valid_format(new.access_token_format.as_deref())?;
        let client_id = match new.client_id {
            Some(id) => valid_client_id(&id)?,
            None => opaque::random_token(16),
        };
        let secret = match (new.confidential, new.secret) {
            (false, _) => None,
            (true, Some(s)) if s.chars().count() >= MIN_SECRET_CHARS => Some(s),
            (true, Some(s)) if new.legacy_short_secret && !s.is_empty() => Some(s),
            (true, Some(_)) => {
                return Err(Invalid::new(
                    "invalid_client_secret",
                    "client_secret",
                    "must be at least 16 characters (a legacy client's shorter secret can be imported with legacy_short_secret / --allow-short-secret)",
                )
                .into());
            }
            (true, None) => Some(opaque::random_token(32)),
        };
        let now = self.store.clock().now();
        let record = ClientRecord {
            client_id: client_id.clone(),
            owner_id: owner_id.to_string(),
            name,
            redirect_uris,
            post_logout_redirect_uris,
            allowed_origins,
            grant_types,
            confidential: new.confidential,
            secret_hash: secret.as_deref().map(|s| hex(&opaque::digest(s))),
            secret_sealed: match (&secret, new.show_secret_again) {
                (Some(secret), true) => Some(
                    self.sealer
                        .seal(secret, &secret_context(&client_id))
                        .map_err(|e| ServiceError::Internal(e.to_string()))?,
                ),
                _ => None,
            },
            scopes,
            id_token_alg,
            legacy_short_secret: secret
                .as_deref()
                .is_some_and(|s| s.chars().count() < MIN_SECRET_CHARS),
            backchannel_logout_uri,
            require_pushed_authorization_requests: new.require_pushed_authorization_requests,
            require_mfa: new.require_mfa,
            access_token_format,
            registration_token_hash: None,
            created_at: now,
            updated_at: now,
        };
        Ok((record, secret))
    }

    /// The caller's clients (all clients for an admin).
    pub async fn list(&self, principal: &Principal) -> Result<Vec<ClientView>> {
        require_developer(principal)?;
        let id = principal.user.id.clone();
        let clients = self.store.run(move |s| s.clients_of(&id)).await?;
        Ok(clients.iter().map(ClientView::from).collect())
    }

    /// Every client (admins only: the console's list).
    pub async fn list_all(&self, principal: &Principal) -> Result<Vec<ClientView>> {
        if !principal.user.has_role(Role::Admin) {
            return Err(ServiceError::Forbidden(
                "admin_role_required",
                "listing every client needs the admin role".into(),
            ));
        }
        let clients = self.store.run(|s| s.all_clients()).await?;
        Ok(clients.iter().map(ClientView::from).collect())
    }

    /// A client the caller manages; others' clients are "not found", revealing nothing.
    pub async fn get(&self, principal: &Principal, client_id: &str) -> Result<ClientView> {
        Ok(self.owned(principal, client_id).await?.into())
    }

    /// [`Clients::get`], as stored.
    async fn owned(&self, principal: &Principal, client_id: &str) -> Result<ClientRecord> {
        require_developer(principal)?;
        let id = client_id.to_string();
        match self.store.run(move |s| s.get_client(&id)).await? {
            Some(c) if c.owner_id == principal.user.id || principal.user.has_role(Role::Admin) => {
                Ok(c)
            }
            _ => Err(ServiceError::NotFound("client")),
        }
    }

    pub async fn update(
        &self,
        principal: &Principal,
        client_id: &str,
        changes: ClientChanges,
        origin: &Origin,
    ) -> Result<ClientView> {
        let current = self.owned(principal, client_id).await?;
        let name = changes.name.as_deref().map(valid_name).transpose()?;
        let grant_types = changes.grant_types.map(valid_grants).transpose()?;
        let effective_grants = grant_types.clone().unwrap_or(current.grant_types.clone());
        check_combination(current.confidential, &effective_grants)?;
        let redirect_uris = valid_redirects(
            changes
                .redirect_uris
                .unwrap_or(current.redirect_uris.clone()),
            &effective_grants,
        )?;
        let scopes = changes.scopes.map(valid_scopes).transpose()?;
        let post_logout = changes
            .post_logout_redirect_uris
            .map(valid_post_logout)
            .transpose()?;
        let origins = changes.allowed_origins.map(valid_origins).transpose()?;
        let backchannel = changes
            .backchannel_logout_uri
            .map(|u| valid_backchannel(Some(u)))
            .transpose()?;
        let format = changes
            .access_token_format
            .as_deref()
            .map(|f| valid_format(Some(f)))
            .transpose()?;
        let alg = changes
            .id_token_alg
            .map(|a| valid_alg(Some(a)))
            .transpose()?;
        let require_par = changes.require_pushed_authorization_requests;
        let require_mfa = changes.require_mfa;
        let id = client_id.to_string();
        let updated = self
            .store
            .run(move |s| {
                s.update_client(&id, |c| {
                    if let Some(n) = name {
                        c.name = n;
                    }
                    if let Some(g) = grant_types {
                        c.grant_types = g;
                    }
                    c.redirect_uris = redirect_uris;
                    if let Some(p) = post_logout {
                        c.post_logout_redirect_uris = p;
                    }
                    if let Some(o) = origins {
                        c.allowed_origins = o;
                    }
                    if let Some(sc) = scopes {
                        c.scopes = sc;
                    }
                    if let Some(b) = backchannel {
                        c.backchannel_logout_uri = b;
                    }
                    if let Some(f) = format {
                        c.access_token_format = f;
                    }
                    if let Some(a) = alg {
                        c.id_token_alg = a;
                    }
                    if let Some(r) = require_par {
                        c.require_pushed_authorization_requests = r;
                    }
                    if let Some(r) = require_mfa {
                        c.require_mfa = r;
                    }
                })
            })
            .await?
            .map(ClientView::from)
            .ok_or(ServiceError::NotFound("client"))?;
        self.changed();
        let actor = Some(principal.user.id.as_str());
        self.audit(
            EventKind::ClientChanged,
            actor,
            client_id,
            origin,
            "metadata",
        )
        .await;
        Ok(updated)
    }

    pub async fn delete(
        &self,
        principal: &Principal,
        client_id: &str,
        origin: &Origin,
    ) -> Result<()> {
        self.owned(principal, client_id).await?;
        let id = client_id.to_string();
        self.store.run(move |s| s.delete_client(&id)).await?;
        self.changed();
        let actor = Some(principal.user.id.as_str());
        self.audit(EventKind::ClientDeleted, actor, client_id, origin, "api")
            .await;
        Ok(())
    }

    /// Issues a new secret; the old one stops working at once.
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        client_id: &str,
        origin: &Origin,
    ) -> Result<(ClientView, String)> {
        let current = self.owned(principal, client_id).await?;
        if !current.confidential {
            return Err(Invalid::new(
                "public_client",
                "client_id",
                "a public client has no secret",
            )
            .into());
        }
        let secret = opaque::random_token(32);
        let hash = hex(&opaque::digest(&secret));
        // A secret that is shown again stays shown again, now the new one.
        let sealed = match current.secret_sealed {
            Some(_) => Some(
                self.sealer
                    .seal(&secret, &secret_context(client_id))
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let id = client_id.to_string();
        let record = self
            .store
            .run(move |s| {
                s.update_client(&id, |c| {
                    c.secret_hash = Some(hash);
                    c.legacy_short_secret = false;
                    c.secret_sealed = sealed;
                })
            })
            .await?
            .ok_or(ServiceError::NotFound("client"))?;
        let actor = Some(principal.user.id.as_str());
        self.audit(
            EventKind::ClientChanged,
            actor,
            client_id,
            origin,
            "secret_rotated",
        )
        .await;
        Ok((record.into(), secret))
    }

    /// Looks up a client and, for confidential ones, checks the secret in constant time.
    /// `None` means the client does not exist or the secret is wrong or missing.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<Option<ClientRecord>> {
        let id = client_id.to_string();
        let Some(client) = self.store.point_read(move |s| s.get_client(&id))? else {
            return Ok(None);
        };
        if !client.confidential {
            return Ok(Some(client));
        }
        let (Some(given), Some(stored)) = (secret, client.secret_hash.as_deref()) else {
            return Ok(None);
        };
        let given = hex(&opaque::digest(given));
        Ok(bool::from(given.as_bytes().ct_eq(stored.as_bytes())).then_some(client))
    }
}

pub(super) fn require_developer(p: &Principal) -> Result<()> {
    if p.user.has_role(Role::Developer) || p.user.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "developer_role_required",
            "managing OAuth clients needs the developer role (POST /api/v1/me/developer)".into(),
        ))
    }
}

fn valid_name(name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(Invalid::new(
            "invalid_client_name",
            "name",
            "must be 1–100 characters without control characters",
        )
        .into());
    }
    Ok(trimmed.to_string())
}

fn valid_client_id(id: &str) -> Result<String> {
    if (3..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Ok(id.to_string())
    } else {
        Err(Invalid::new(
            "invalid_client_id",
            "client_id",
            "must be 3–64 letters, digits, '-', '_' or '.'",
        )
        .into())
    }
}

fn valid_grants(grants: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for g in grants {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(Invalid::new(
                "invalid_grant_type",
                "grant_types",
                format!("`{g}` is not one of {}", GRANT_TYPES.join(", ")),
            )
            .into());
        }
        if !out.contains(&g) {
            out.push(g);
        }
    }
    if out.is_empty() {
        return Err(Invalid::new(
            "invalid_grant_type",
            "grant_types",
            "must name at least one grant type",
        )
        .into());
    }
    Ok(out)
}

/// Browser origins for CORS: `scheme://host[:port]` only, https unless loopback (the rules
/// of redirect URIs), stored in their serialised form.
fn valid_origins(origins: Vec<String>) -> Result<Vec<String>> {
    let bad = |why: &str| -> ServiceError {
        Invalid::new("invalid_origin", "allowed_origins", why.to_string()).into()
    };
    if origins.len() > MAX_REDIRECT_URIS {
        return Err(bad(&format!("at most {MAX_REDIRECT_URIS} origins")));
    }
    let mut out: Vec<String> = Vec::new();
    for o in &origins {
        let url =
            url::Url::parse(o).map_err(|_| bad("each origin must be scheme://host[:port]"))?;
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || o.ends_with('/')
        {
            return Err(bad(
                "an origin has no path, query or fragment: scheme://host[:port]",
            ));
        }
        // The same scheme rules as redirect URIs: https, or http on loopback.
        RedirectUri::parse(&format!("{o}/")).map_err(|e| bad(&e.message))?;
        let origin = url.origin().ascii_serialization();
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    Ok(out)
}

/// The origins a client's browser app may call from: its registered ones, or for a public
/// client without any, the origins of its redirect URIs.
pub fn effective_origins(c: &ClientRecord) -> Vec<String> {
    if !c.allowed_origins.is_empty() || c.confidential {
        return c.allowed_origins.clone();
    }
    c.redirect_uris
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect()
}

/// Post-logout redirect URIs: the rules of login redirect URIs, none required.
fn valid_post_logout(uris: Vec<String>) -> Result<Vec<String>> {
    redirect_list(uris, "post_logout_redirect_uris")
}

fn valid_redirects(uris: Vec<String>, grants: &[String]) -> Result<Vec<String>> {
    let out = redirect_list(uris, "redirect_uris")?;
    if out.is_empty() && grants.iter().any(|g| g == "authorization_code") {
        return Err(Invalid::new(
            "invalid_redirect_uri",
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        )
        .into());
    }
    Ok(out)
}

/// A list of exact-match redirect URIs for `field`: each valid, at most
/// `MAX_REDIRECT_URIS`, duplicates dropped.
fn redirect_list(uris: Vec<String>, field: &'static str) -> Result<Vec<String>> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(Invalid::new(
            "invalid_redirect_uri",
            field,
            format!("at most {MAX_REDIRECT_URIS} URIs"),
        )
        .into());
    }
    let mut out: Vec<String> = Vec::new();
    for u in &uris {
        let parsed = RedirectUri::parse(u)?.as_str().to_string();
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

fn check_combination(confidential: bool, grants: &[String]) -> Result<()> {
    if !confidential && grants.iter().any(|g| g == "client_credentials") {
        return Err(Invalid::new(
            "invalid_grant_type",
            "grant_types",
            "client_credentials needs a confidential client (RFC 6749 §4.4)",
        )
        .into());
    }
    Ok(())
}

fn valid_alg(alg: Option<String>) -> Result<Option<String>> {
    match alg.as_deref() {
        None | Some("") => Ok(None),
        Some(a) if crate::token::jwt::ID_TOKEN_ALGS.contains(&a) => Ok(Some(a.to_string())),
        Some(a) => Err(Invalid::new(
            "invalid_id_token_alg",
            "id_token_signed_response_alg",
            format!(
                "`{a}` is not one of {}",
                crate::token::jwt::ID_TOKEN_ALGS.join(", ")
            ),
        )
        .into()),
    }
}

/// A Back-Channel Logout URI: the rules of redirect URIs (absolute, no fragment, https
/// unless loopback; OIDC Back-Channel Logout 1.0 §2.2). Empty means none.
fn valid_backchannel(uri: Option<String>) -> Result<Option<String>> {
    match uri.filter(|u| !u.is_empty()) {
        None => Ok(None),
        Some(u) => Ok(redirect_list(vec![u], "backchannel_logout_uri")?
            .into_iter()
            .next()),
    }
}

fn valid_format(format: Option<&str>) -> Result<AccessTokenFormat> {
    match format {
        None | Some("") => Ok(AccessTokenFormat::Paseto),
        Some(f) => AccessTokenFormat::parse(f).ok_or_else(|| {
            Invalid::new(
                "invalid_client_metadata",
                "access_token_format",
                format!(
                    "`{f}` is not one of {}",
                    AccessTokenFormat::NAMES.join(", ")
                ),
            )
            .into()
        }),
    }
}

fn valid_scopes(scopes: Vec<String>) -> Result<Vec<String>> {
    let scope = if scopes.is_empty() {
        Scope::parse(DEFAULT_SCOPES)?
    } else {
        Scope::from_tokens(scopes)?
    };
    Ok(scope.tokens().map(str::to_string).collect())
}
