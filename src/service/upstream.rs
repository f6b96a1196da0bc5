//! Signing in through another identity provider: generic OpenID Connect (discovery, JWKS,
//! id_token validation with `nonce`, PKCE S256) and plain OAuth 2.0 with a userinfo endpoint
//! and a claim mapping, with presets for GitHub, GitLab, Google and Microsoft.
//!
//! The flow: [`Upstreams::begin`] stores the attempt under the SHA-256 of a random `state`
//! (with the PKCE verifier, the `nonce` and a hash of a cookie that binds it to the browser)
//! and answers the upstream's authorization URL; [`Upstreams::callback`] takes the attempt
//! once, checks it belongs to this browser and upstream, checks `iss` (RFC 9207), redeems the
//! code with the verifier, validates the id_token (OIDC Core §3.1.3.7) or reads userinfo, and
//! finds the linked account. An identity with none waits as a challenge until its owner
//! proves an existing account (never linked by a matching address alone) or, where the
//! upstream's policy allows, a new account is created for it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    Result, ServiceError,
    accounts::Accounts,
    audit::{Audit, Event, EventKind, Origin},
    sessions::Principal,
    views::UserView,
};
use crate::{
    config::RegistrationPolicy,
    domain::Role,
    store::{
        Store,
        mfa::{ChallengeRecord, ChallengeStep},
        upstreams::{
            AccountPolicy, ClaimMapping, IdentityRecord, LinkRefused, UpstreamProtocol,
            UpstreamRecord,
        },
    },
    token::{opaque, sealed::Sealer},
};

/// How long a person has at the upstream before the attempt expires.
const ATTEMPT_TTL: i64 = 600;
/// How long a returned identity waits for its owner to link or name an account.
const IDENTITY_TTL: i64 = 900;
/// Every request to an upstream (discovery, keys, token, userinfo) ends within this.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents and key sets are fetched again after this.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Clock skew allowed on an id_token's `iat` and `exp`.
const LEEWAY: i64 = 60;
/// The context the client secrets are sealed under.
const SECRET_CONTEXT: &str = "upstream-client-secret";
/// A picture brought from an upstream takes at most this long to fetch.
const PICTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// What an admin (API, console, seed file or CLI) says about an upstream. Unset fields take
/// the preset's value, then the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamInput {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `github`, `gitlab`, `google` or `microsoft`: endpoints, scope and claims filled in.
    #[serde(default)]
    pub preset: Option<String>,
    /// `oidc` (default without a preset) or `oauth2`.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    /// Microsoft: the tenant (default `common`).
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    /// Required when adding; kept when changing without one.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Claim names, each optional: `subject`, `username`, `email`, `email_verified`, `name`,
    /// `picture`.
    #[serde(default)]
    pub claims: HashMap<String, String>,
    /// `link-only`, `create` or `create-if-registration-open` (default).
    #[serde(default)]
    pub accounts: Option<String>,
    #[serde(default)]
    pub trust_mfa: Option<bool>,
    #[serde(default)]
    pub trust_email: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl UpstreamInput {
    /// The compact form of `--upstream`: `id=github,preset=github,client-id=…,…` (keys as
    /// in a seed file, `-` or `_`; `claims.<field>=<claim>`; `true`/`false` for the flags).
    /// A value cannot hold a comma: use a seed file for such.
    pub fn parse_flag(spec: &str) -> std::result::Result<UpstreamInput, String> {
        let mut fields = serde_json::Map::new();
        let mut claims = serde_json::Map::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--upstream: `{pair}` is not key=value"))?;
            let key = key.trim().replace('-', "_");
            let value = value.trim();
            if let Some(claim) = key.strip_prefix("claims.") {
                claims.insert(claim.to_string(), Value::String(value.into()));
                continue;
            }
            let value = match (key.as_str(), value) {
                ("trust_mfa" | "trust_email" | "enabled", "true") => Value::Bool(true),
                ("trust_mfa" | "trust_email" | "enabled", "false") => Value::Bool(false),
                _ => Value::String(value.into()),
            };
            fields.insert(key, value);
        }
        if !claims.is_empty() {
            fields.insert("claims".into(), Value::Object(claims));
        }
        serde_json::from_value(Value::Object(fields)).map_err(|e| format!("--upstream: {e}"))
    }
}

/// An upstream as the admin API shows it (never its secret).
#[derive(Debug, Clone)]
pub struct UpstreamView {
    pub id: String,
    pub name: String,
    pub protocol: &'static str,
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    pub scope: String,
    pub accounts: &'static str,
    pub trust_mfa: bool,
    pub trust_email: bool,
    pub enabled: bool,
    /// Where the upstream must send people back (register it there).
    pub redirect_uri: String,
}

/// A button on the login page.
#[derive(Debug, Clone)]
pub struct UpstreamButton {
    pub id: String,
    pub name: String,
}

/// Where a started sign-in goes: the upstream's authorization URL, and the value of the
/// cookie that binds the attempt to this browser.
#[derive(Debug, Clone)]
pub struct Started {
    pub location: String,
    pub binding: String,
}

/// The parameters of the upstream's answer (RFC 6749 §4.1.2, RFC 9207).
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// What came back from the upstream.
#[derive(Debug, Clone)]
pub enum Returned {
    /// A linked account: sign it in (the second-factor policy still applies).
    SignedIn(FederatedSignIn),
    /// Linking from the account page is done.
    Linked { user_id: String, upstream: String },
    /// No account is linked: the person proves an existing one, or chooses a name for a new
    /// one (see [`Upstreams::pending`]).
    NeedsAccount { token: String, request: String },
}

/// A person who signed in through an upstream.
#[derive(Debug, Clone)]
pub struct FederatedSignIn {
    pub user: UserView,
    /// `fed`, plus `mfa` when a trusted upstream vouched for a second factor.
    pub amr: Vec<String>,
    /// The upstream's id (the id_token's `idp` claim).
    pub idp: String,
    /// The pending authorization request it continues (empty: the account pages).
    pub request: String,
}

/// An identity waiting for an account, as its page shows it.
#[derive(Debug, Clone)]
pub struct PendingIdentity {
    pub upstream: String,
    pub upstream_name: String,
    pub request: String,
    pub username: String,
    pub email: String,
    pub name: String,
    /// An account already has this address: the person may link to it (with its password).
    pub address_taken: bool,
    /// A new account may be created for them.
    pub may_create: bool,
}

/// Why an upstream sign-in failed, for the page that says so (details go to the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Unknown or disabled upstream.
    Unknown,
    /// The `state` is unknown, used, expired, or from another browser or upstream.
    BadState,
    /// The person cancelled or the upstream refused (its `error`).
    Refused(String),
    /// The upstream could not be reached in time, or answered nonsense.
    Unreachable,
    /// The upstream's answer failed validation (issuer, audience, signature, expiry, nonce).
    Invalid,
    /// No account may be created and none is linked.
    NoAccount,
    /// Linking: the identity is linked to another account, or this account already has one
    /// at this provider.
    LinkedElsewhere,
}

/// Discovered (or configured) endpoints.
#[derive(Debug, Clone)]
struct Endpoints {
    issuer: Option<String>,
    authorization: String,
    token: String,
    userinfo: Option<String>,
    jwks: Option<String>,
    /// RFC 9207 §3: the upstream always sends `iss` on its answers.
    iss_parameter: bool,
}

/// Upstream providers. Cheap to clone.
#[derive(Clone)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sealer: Arc<Sealer>,
    audit: Audit,
    accounts: Accounts,
    avatars: super::avatars::Avatars,
    /// The HTTP clients, built on first use: loading the system's trust store costs start-up
    /// time a server without upstreams should not pay.
    http: std::sync::OnceLock<Option<reqwest::Client>>,
    /// For pictures: public addresses only (and loopback, for a provider on this machine).
    pictures: std::sync::OnceLock<Option<reqwest::Client>>,
    local_pictures: std::sync::OnceLock<Option<reqwest::Client>>,
    public_url: String,
    registration: RegistrationPolicy,
    discovery: Mutex<HashMap<String, (Instant, Endpoints)>>,
    keys: Mutex<HashMap<String, (Instant, Value)>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// An upstream URL must be https, or http on this machine (tests, local development).
fn check_url(what: &str, text: &str) -> std::result::Result<(), ServiceError> {
    let bad = |why: &str| {
        ServiceError::Invalid(crate::domain::Invalid::new(
            "invalid_upstream",
            "upstream",
            format!("{what} {text:?}: {why}"),
        ))
    };
    let url = url::Url::parse(text).map_err(|e| bad(&format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::domain::is_loopback(&url) => Ok(()),
        _ => Err(bad("must be https (http only on this machine)")),
    }
}

/// An upstream added, changed or removed (`actor`: the admin, none for the operator's seed
/// file or CLI).
fn upstream_changed<'a>(origin: &'a Origin, actor: Option<&'a str>, id: &'a str) -> Event<'a> {
    Event {
        kind: EventKind::UpstreamChanged,
        origin,
        actor,
        subject: None,
        method: Some(id),
        detail: None,
    }
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(crate::domain::Invalid::new(
        "invalid_upstream",
        "upstream",
        message,
    ))
}

/// The preset's record fields, before the admin's own values.
fn preset(name: &str, tenant: Option<&str>) -> Result<(UpstreamProtocol, PresetFields)> {
    let oidc = |issuer: String, display: &str| PresetFields {
        name: display.into(),
        issuer: Some(issuer),
        scope: "openid profile email".into(),
        claims: ClaimMapping::oidc(),
        ..PresetFields::default()
    };
    Ok(match name {
        "github" => (
            UpstreamProtocol::Oauth2,
            PresetFields {
                name: "GitHub".into(),
                issuer: None,
                authorization: Some("https://github.com/login/oauth/authorize".into()),
                token: Some("https://github.com/login/oauth/access_token".into()),
                userinfo: Some("https://api.github.com/user".into()),
                scope: "read:user user:email".into(),
                claims: ClaimMapping {
                    subject: "id".into(),
                    username: "login".into(),
                    email: "email".into(),
                    // GitHub's public address is not a verified one.
                    email_verified: String::new(),
                    name: "name".into(),
                    picture: "avatar_url".into(),
                },
            },
        ),
        "gitlab" => (
            UpstreamProtocol::Oidc,
            PresetFields {
                claims: ClaimMapping {
                    username: "nickname".into(),
                    ..ClaimMapping::oidc()
                },
                ..oidc("https://gitlab.com".into(), "GitLab")
            },
        ),
        "google" => (
            UpstreamProtocol::Oidc,
            oidc("https://accounts.google.com".into(), "Google"),
        ),
        "microsoft" => (
            UpstreamProtocol::Oidc,
            PresetFields {
                claims: ClaimMapping {
                    // Microsoft does not say whether an address was verified.
                    email_verified: String::new(),
                    ..ClaimMapping::oidc()
                },
                ..oidc(
                    format!(
                        "https://login.microsoftonline.com/{}/v2.0",
                        tenant.unwrap_or("common")
                    ),
                    "Microsoft",
                )
            },
        ),
        other => {
            return Err(invalid(format!(
                "unknown preset {other:?}: use github, gitlab, google or microsoft"
            )));
        }
    })
}

#[derive(Default)]
struct PresetFields {
    name: String,
    issuer: Option<String>,
    authorization: Option<String>,
    token: Option<String>,
    userinfo: Option<String>,
    scope: String,
    claims: ClaimMapping,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping::oidc()
    }
}

/// A claim as text (numbers too: GitHub's `id`).
fn claim_text(claims: &Value, name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    match &claims[name] {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A username we could register, made from what the upstream calls the person: the allowed
/// characters of their name there (or of their address before the `@`).
fn suggested_username(username: Option<&str>, email: Option<&str>) -> String {
    let from = username
        .or_else(|| email.and_then(|e| e.split('@').next()))
        .unwrap_or_default();
    from.chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(64)
        .collect()
}

impl Upstreams {
    pub fn new(
        store: Store,
        sealer: Arc<Sealer>,
        audit: Audit,
        accounts: Accounts,
        avatars: super::avatars::Avatars,
        public_url: String,
        registration: RegistrationPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                sealer,
                audit,
                accounts,
                avatars,
                http: std::sync::OnceLock::new(),
                pictures: std::sync::OnceLock::new(),
                local_pictures: std::sync::OnceLock::new(),
                public_url: public_url.trim_end_matches('/').to_string(),
                registration,
                discovery: Mutex::new(HashMap::new()),
                keys: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn now(&self) -> i64 {
        self.inner.store.clock().now()
    }

    /// Where an upstream sends people back (to register there).
    pub fn redirect_uri(&self, id: &str) -> String {
        format!("{}/ui/upstream/{id}/callback", self.inner.public_url)
    }

    fn view(&self, r: &UpstreamRecord) -> UpstreamView {
        UpstreamView {
            id: r.id.clone(),
            name: r.name.clone(),
            protocol: match r.protocol {
                UpstreamProtocol::Oidc => "oidc",
                UpstreamProtocol::Oauth2 => "oauth2",
            },
            issuer: r.issuer.clone(),
            authorization_endpoint: r.authorization_endpoint.clone(),
            token_endpoint: r.token_endpoint.clone(),
            userinfo_endpoint: r.userinfo_endpoint.clone(),
            client_id: r.client_id.clone(),
            scope: r.scope.clone(),
            accounts: match r.accounts {
                AccountPolicy::LinkOnly => "link-only",
                AccountPolicy::Create => "create",
                AccountPolicy::CreateIfRegistrationOpen => "create-if-registration-open",
            },
            trust_mfa: r.trust_mfa,
            trust_email: r.trust_email,
            enabled: r.enabled,
            redirect_uri: self.redirect_uri(&r.id),
        }
    }

    // ---- Administration -------------------------------------------------------------------

    fn require_admin(principal: &Principal) -> Result<()> {
        if principal.user.has_role(Role::Admin) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "admin_required",
                "only administrators manage upstream providers".into(),
            ))
        }
    }

    /// Every upstream (admins).
    pub async fn list(&self, principal: &Principal) -> Result<Vec<UpstreamView>> {
        Self::require_admin(principal)?;
        let all = self.inner.store.run(|s| s.list_upstreams()).await?;
        Ok(all.iter().map(|r| self.view(r)).collect())
    }

    /// Adds or changes an upstream (admins).
    pub async fn put(
        &self,
        principal: &Principal,
        input: UpstreamInput,
        origin: &Origin,
    ) -> Result<UpstreamView> {
        Self::require_admin(principal)?;
        self.configure(input, origin, Some(&principal.user.id))
            .await
    }

    /// Adds or changes an upstream from a seed file or the CLI (no principal: the operator).
    pub async fn configure(
        &self,
        input: UpstreamInput,
        origin: &Origin,
        actor: Option<&str>,
    ) -> Result<UpstreamView> {
        let id = input.id.trim().to_string();
        if id.is_empty()
            || id.len() > 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "id: 1 to 32 lower-case letters, digits or '-' (it is part of the callback URL)",
            ));
        }
        let key = id.clone();
        let existing = self.inner.store.run(move |s| s.get_upstream(&key)).await?;
        let (protocol, base) = match input.preset.as_deref() {
            Some(p) => preset(p, input.tenant.as_deref())?,
            None => {
                let protocol = match input.protocol.as_deref() {
                    None | Some("oidc") => UpstreamProtocol::Oidc,
                    Some("oauth2") => UpstreamProtocol::Oauth2,
                    Some(other) => {
                        return Err(invalid(format!("protocol {other:?}: use oidc or oauth2")));
                    }
                };
                let claims = match protocol {
                    UpstreamProtocol::Oidc => ClaimMapping::oidc(),
                    UpstreamProtocol::Oauth2 => ClaimMapping {
                        subject: "id".into(),
                        ..ClaimMapping::oidc()
                    },
                };
                let scope = match protocol {
                    UpstreamProtocol::Oidc => "openid profile email",
                    UpstreamProtocol::Oauth2 => "",
                };
                (
                    protocol,
                    PresetFields {
                        name: id.clone(),
                        scope: scope.into(),
                        claims,
                        ..PresetFields::default()
                    },
                )
            }
        };
        let issuer = input
            .issuer
            .clone()
            .or(base.issuer)
            .map(|i| i.trim_end_matches('/').to_string());
        let authorization = input.authorization_endpoint.clone().or(base.authorization);
        let token = input.token_endpoint.clone().or(base.token);
        let userinfo = input.userinfo_endpoint.clone().or(base.userinfo);
        match protocol {
            UpstreamProtocol::Oidc if issuer.is_none() => {
                return Err(invalid("an OpenID Connect upstream needs its issuer"));
            }
            UpstreamProtocol::Oauth2
                if authorization.is_none() || token.is_none() || userinfo.is_none() =>
            {
                return Err(invalid(
                    "an OAuth 2.0 upstream needs its authorization, token and userinfo endpoints",
                ));
            }
            _ => {}
        }
        for (what, url) in [
            ("issuer", &issuer),
            ("authorization_endpoint", &authorization),
            ("token_endpoint", &token),
            ("userinfo_endpoint", &userinfo),
        ] {
            if let Some(url) = url {
                check_url(what, url)?;
            }
        }
        if input.client_id.trim().is_empty() {
            return Err(invalid("client_id is required"));
        }
        let client_secret_sealed = match (&input.client_secret, &existing) {
            (Some(secret), _) if !secret.is_empty() => self
                .inner
                .sealer
                .seal(secret, SECRET_CONTEXT)
                .map_err(|_| ServiceError::Internal("could not seal a secret".into()))?,
            (_, Some(old)) => old.client_secret_sealed.clone(),
            _ => return Err(invalid("client_secret is required")),
        };
        let mut claims = base.claims;
        for (field, value) in &input.claims {
            let slot = match field.as_str() {
                "subject" => &mut claims.subject,
                "username" => &mut claims.username,
                "email" => &mut claims.email,
                "email_verified" => &mut claims.email_verified,
                "name" => &mut claims.name,
                "picture" => &mut claims.picture,
                other => {
                    return Err(invalid(format!(
                        "claims.{other}: use subject, username, email, email_verified, name or picture"
                    )));
                }
            };
            *slot = value.clone();
        }
        if claims.subject.is_empty() {
            return Err(invalid("claims.subject may not be empty"));
        }
        let accounts = match input.accounts.as_deref() {
            None => existing
                .as_ref()
                .map_or(AccountPolicy::CreateIfRegistrationOpen, |e| e.accounts),
            Some("link-only") => AccountPolicy::LinkOnly,
            Some("create") => AccountPolicy::Create,
            Some("create-if-registration-open") => AccountPolicy::CreateIfRegistrationOpen,
            Some(other) => {
                return Err(invalid(format!(
                    "accounts {other:?}: use link-only, create or create-if-registration-open"
                )));
            }
        };
        let now = self.now();
        let record = UpstreamRecord {
            id: id.clone(),
            name: input
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(base.name)
                .chars()
                .take(64)
                .collect(),
            protocol,
            issuer,
            authorization_endpoint: authorization,
            token_endpoint: token,
            userinfo_endpoint: userinfo,
            client_id: input.client_id.trim().to_string(),
            client_secret_sealed,
            scope: input.scope.clone().unwrap_or(base.scope),
            claims,
            accounts,
            trust_mfa: input
                .trust_mfa
                .or(existing.as_ref().map(|e| e.trust_mfa))
                .unwrap_or(false),
            trust_email: input
                .trust_email
                .or(existing.as_ref().map(|e| e.trust_email))
                .unwrap_or(false),
            enabled: input
                .enabled
                .or(existing.as_ref().map(|e| e.enabled))
                .unwrap_or(true),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        let stored = record.clone();
        self.inner
            .store
            .run(move |s| s.put_upstream(&stored))
            .await?;
        self.forget_metadata(&id);
        self.inner
            .audit
            .record(upstream_changed(origin, actor, &id))
            .await;
        tracing::info!(upstream = %id, "upstream provider configured");
        Ok(self.view(&record))
    }

    /// Switches an upstream's button on when it is off and off when it is on, keeping
    /// everything else (admins).
    pub async fn toggle(
        &self,
        principal: &Principal,
        id: &str,
        origin: &Origin,
    ) -> Result<UpstreamView> {
        Self::require_admin(principal)?;
        let key = id.to_string();
        let mut record = self
            .inner
            .store
            .run(move |s| s.get_upstream(&key))
            .await?
            .ok_or(ServiceError::NotFound("upstream"))?;
        record.enabled = !record.enabled;
        let enabled = record.enabled;
        record.updated_at = self.now();
        let stored = record.clone();
        self.inner
            .store
            .run(move |s| s.put_upstream(&stored))
            .await?;
        let detail = if enabled { "enabled" } else { "disabled" };
        let event = upstream_changed(origin, Some(&principal.user.id), id).detail(detail);
        self.inner.audit.record(event).await;
        Ok(self.view(&record))
    }

    /// Removes an upstream and the identities linked through it (admins).
    pub async fn delete(&self, principal: &Principal, id: &str, origin: &Origin) -> Result<()> {
        Self::require_admin(principal)?;
        let key = id.to_string();
        if !self
            .inner
            .store
            .run(move |s| s.delete_upstream(&key))
            .await?
        {
            return Err(ServiceError::NotFound("upstream"));
        }
        self.forget_metadata(id);
        let event = upstream_changed(origin, Some(&principal.user.id), id).detail("deleted");
        self.inner.audit.record(event).await;
        Ok(())
    }

    fn forget_metadata(&self, id: &str) {
        if let Ok(mut d) = self.inner.discovery.lock() {
            d.remove(id);
        }
        if let Ok(mut k) = self.inner.keys.lock() {
            k.remove(id);
        }
    }

    /// The enabled upstreams, for the login page's buttons.
    pub async fn buttons(&self) -> Vec<UpstreamButton> {
        match self.inner.store.run(|s| s.list_upstreams()).await {
            Ok(all) => all
                .into_iter()
                .filter(|u| u.enabled)
                .map(|u| UpstreamButton {
                    id: u.id,
                    name: u.name,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not list upstream providers");
                Vec::new()
            }
        }
    }

    async fn enabled(&self, id: &str) -> std::result::Result<UpstreamRecord, UpstreamFailure> {
        let key = id.to_string();
        match self.inner.store.run(move |s| s.get_upstream(&key)).await {
            Ok(Some(u)) if u.enabled => Ok(u),
            Ok(_) => Err(UpstreamFailure::Unknown),
            Err(e) => {
                tracing::warn!(error = %e, "could not read an upstream provider");
                Err(UpstreamFailure::Unreachable)
            }
        }
    }

    // ---- Metadata -------------------------------------------------------------------------

    fn http(&self) -> std::result::Result<&reqwest::Client, UpstreamFailure> {
        self.inner
            .http
            .get_or_init(|| match crate::outbound::http_client(UPSTREAM_TIMEOUT) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "upstream sign-in is off: no HTTP client");
                    None
                }
            })
            .as_ref()
            .ok_or(UpstreamFailure::Unreachable)
    }

    /// A JSON document from the upstream (a refusal or a timeout is `Unreachable`).
    async fn get_json(
        &self,
        upstream: &str,
        url: &str,
        bearer: Option<&str>,
    ) -> std::result::Result<Value, UpstreamFailure> {
        let mut req = self.http()?.get(url).header("accept", "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(upstream, url, error = %e, "an upstream provider could not be reached");
            UpstreamFailure::Unreachable
        })?;
        if !resp.status().is_success() {
            tracing::warn!(upstream, url, status = %resp.status(), "an upstream provider refused a request");
            return Err(UpstreamFailure::Unreachable);
        }
        resp.json().await.map_err(|e| {
            tracing::warn!(upstream, url, error = %e, "an upstream provider answered something that is not JSON");
            UpstreamFailure::Unreachable
        })
    }

    /// The endpoints: configured ones, else (OIDC) discovery, cached for an hour.
    async fn endpoints(
        &self,
        u: &UpstreamRecord,
    ) -> std::result::Result<Endpoints, UpstreamFailure> {
        if u.protocol == UpstreamProtocol::Oauth2 {
            return Ok(Endpoints {
                issuer: None,
                authorization: u.authorization_endpoint.clone().unwrap_or_default(),
                token: u.token_endpoint.clone().unwrap_or_default(),
                userinfo: u.userinfo_endpoint.clone(),
                jwks: None,
                iss_parameter: false,
            });
        }
        if let Ok(cache) = self.inner.discovery.lock()
            && let Some((at, e)) = cache.get(&u.id)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(e.clone());
        }
        let issuer = u.issuer.clone().unwrap_or_default();
        // OIDC Discovery 1.0 §4.
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc = self.get_json(&u.id, &url, None).await?;
        let field = |name: &str| doc[name].as_str().map(str::to_string);
        // §4.3: the document's issuer is the one we asked (Microsoft's multi-tenant document
        // names a `{tenantid}` template, checked against each token's `tid`).
        let discovered = field("issuer").unwrap_or_default();
        if discovered.trim_end_matches('/') != issuer && !discovered.contains("{tenantid}") {
            tracing::warn!(upstream = %u.id, expected = %issuer, found = %discovered, "an upstream's discovery document names another issuer");
            return Err(UpstreamFailure::Invalid);
        }
        let pick = |configured: &Option<String>, name: &str| configured.clone().or(field(name));
        let endpoints = Endpoints {
            issuer: Some(discovered.trim_end_matches('/').to_string()),
            authorization: pick(&u.authorization_endpoint, "authorization_endpoint")
                .ok_or(UpstreamFailure::Unreachable)?,
            token: pick(&u.token_endpoint, "token_endpoint").ok_or(UpstreamFailure::Unreachable)?,
            userinfo: pick(&u.userinfo_endpoint, "userinfo_endpoint"),
            jwks: field("jwks_uri"),
            iss_parameter: doc["authorization_response_iss_parameter_supported"]
                == Value::Bool(true),
        };
        for url in [
            Some(&endpoints.authorization),
            Some(&endpoints.token),
            endpoints.userinfo.as_ref(),
            endpoints.jwks.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if check_url("endpoint", url).is_err() {
                tracing::warn!(upstream = %u.id, url, "an upstream's discovery document names an endpoint that is not https");
                return Err(UpstreamFailure::Invalid);
            }
        }
        if let Ok(mut cache) = self.inner.discovery.lock() {
            cache.insert(u.id.clone(), (Instant::now(), endpoints.clone()));
        }
        Ok(endpoints)
    }

    /// The upstream's key set; fetched again once when a token names a key it lacks.
    async fn jwks(
        &self,
        u: &UpstreamRecord,
        url: &str,
        fresh: bool,
    ) -> std::result::Result<Value, UpstreamFailure> {
        if !fresh
            && let Ok(cache) = self.inner.keys.lock()
            && let Some((at, keys)) = cache.get(&u.id)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(keys.clone());
        }
        let keys = self.get_json(&u.id, url, None).await?;
        if let Ok(mut cache) = self.inner.keys.lock() {
            cache.insert(u.id.clone(), (Instant::now(), keys.clone()));
        }
        Ok(keys)
    }

    // ---- The flow -------------------------------------------------------------------------

    /// Starts a sign-in (or, with `link_to`, a link from the account page) at upstream `id`
    /// for the pending authorization request `request` (empty: the account pages).
    pub async fn begin(
        &self,
        id: &str,
        request: &str,
        link_to: Option<&str>,
    ) -> std::result::Result<Started, UpstreamFailure> {
        let u = self.enabled(id).await?;
        let endpoints = self.endpoints(&u).await?;
        let state = opaque::random_token(24);
        let verifier = opaque::random_token(32);
        let nonce = opaque::random_token(16);
        let binding = opaque::random_token(24);
        let record = ChallengeRecord {
            expires_at: self.now() + ATTEMPT_TTL,
            user_id: link_to.map(str::to_string),
            attempts: 0,
            step: ChallengeStep::UpstreamAttempt {
                upstream: u.id.clone(),
                request: request.to_string(),
                verifier: verifier.clone(),
                nonce: nonce.clone(),
                binding: sha256_hex(&binding),
                link_to: link_to.map(str::to_string),
            },
        };
        let hash = opaque::digest(&state);
        self.inner
            .store
            .run(move |s| s.put_challenge(hash, &record))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not store an upstream sign-in");
                UpstreamFailure::Unreachable
            })?;
        // RFC 7636 §4.2: S256.
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let redirect_uri = self.redirect_uri(&u.id);
        let mut url =
            url::Url::parse(&endpoints.authorization).map_err(|_| UpstreamFailure::Invalid)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &u.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if !u.scope.is_empty() {
                q.append_pair("scope", &u.scope);
            }
            if u.protocol == UpstreamProtocol::Oidc {
                q.append_pair("nonce", &nonce);
            }
        }
        Ok(Started {
            location: url.to_string(),
            binding,
        })
    }

    /// The upstream's answer at `/ui/upstream/{id}/callback`, with the browser's binding
    /// cookie.
    pub async fn callback(
        &self,
        id: &str,
        params: &CallbackParams,
        binding: Option<&str>,
        origin: &Origin,
    ) -> std::result::Result<Returned, UpstreamFailure> {
        // The attempt is taken once, whatever follows: a replayed answer finds nothing.
        let state = params.state.clone().unwrap_or_default();
        let hash = opaque::digest(&state);
        let attempt = self
            .inner
            .store
            .run(move |s| s.take_challenge(hash))
            .await
            .map_err(|_| UpstreamFailure::Unreachable)?;
        let Some(ChallengeRecord {
            step:
                ChallengeStep::UpstreamAttempt {
                    upstream,
                    request,
                    verifier,
                    nonce,
                    binding: expected_binding,
                    link_to,
                },
            ..
        }) = attempt
        else {
            return Err(UpstreamFailure::BadState);
        };
        let same_browser = binding.is_some_and(|b| {
            bool::from(sha256_hex(b).as_bytes().ct_eq(expected_binding.as_bytes()))
        });
        if upstream != id || !same_browser {
            tracing::warn!(
                upstream = id,
                "an upstream answer came with a state of another browser or upstream"
            );
            return Err(UpstreamFailure::BadState);
        }
        let u = self.enabled(id).await?;
        if let Some(error) = &params.error {
            tracing::info!(
                upstream = id,
                error,
                "the upstream provider refused the sign-in"
            );
            return Err(UpstreamFailure::Refused(error.chars().take(64).collect()));
        }
        let endpoints = self.endpoints(&u).await?;
        // RFC 9207 §2.4: an `iss` on the answer must be the upstream's; one that promised to
        // send it must.
        match (&params.iss, &endpoints.issuer) {
            (Some(iss), Some(expected)) if iss.trim_end_matches('/') != expected => {
                tracing::warn!(
                    upstream = id,
                    iss,
                    "an upstream answer names another issuer (mix-up?)"
                );
                return Err(UpstreamFailure::Invalid);
            }
            (None, Some(_)) if endpoints.iss_parameter => {
                tracing::warn!(
                    upstream = id,
                    "an upstream answer lacks the iss it promised"
                );
                return Err(UpstreamFailure::Invalid);
            }
            _ => {}
        }
        let code = params
            .code
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(UpstreamFailure::Invalid)?;
        let tokens = self.redeem(&u, &endpoints, &code, &verifier).await?;
        let claims = match u.protocol {
            UpstreamProtocol::Oidc => {
                let id_token = tokens["id_token"].as_str().ok_or_else(|| {
                    tracing::warn!(upstream = id, "the upstream's token answer has no id_token");
                    UpstreamFailure::Invalid
                })?;
                let mut claims = self
                    .validate_id_token(&u, &endpoints, id_token, &nonce)
                    .await?;
                // Details the id_token left out come from userinfo (OIDC Core §5.3.2: the
                // same `sub`, or none of it).
                let lacking = [&u.claims.email, &u.claims.username]
                    .iter()
                    .any(|c| !c.is_empty() && claims[c.as_str()].is_null());
                if lacking
                    && let (Some(url), Some(access)) =
                        (&endpoints.userinfo, tokens["access_token"].as_str())
                    && let Ok(info) = self.get_json(id, url, Some(access)).await
                    && info["sub"] == claims["sub"]
                    && let (Some(extra), Some(base)) = (info.as_object(), claims.as_object_mut())
                {
                    for (k, v) in extra {
                        base.entry(k.clone()).or_insert(v.clone());
                    }
                }
                claims
            }
            UpstreamProtocol::Oauth2 => {
                let access = tokens["access_token"].as_str().ok_or_else(|| {
                    tracing::warn!(
                        upstream = id,
                        "the upstream's token answer has no access_token"
                    );
                    UpstreamFailure::Invalid
                })?;
                let url = endpoints.userinfo.clone().ok_or(UpstreamFailure::Invalid)?;
                self.get_json(id, &url, Some(access)).await?
            }
        };
        let Some(subject) = claim_text(&claims, &u.claims.subject) else {
            tracing::warn!(upstream = id, claim = %u.claims.subject, "the upstream's answer lacks the subject claim");
            return Err(UpstreamFailure::Invalid);
        };
        let email = claim_text(&claims, &u.claims.email);
        let email_verified = !u.claims.email_verified.is_empty()
            && claims[&u.claims.email_verified] == Value::Bool(true);
        let username = claim_text(&claims, &u.claims.username);
        let name = claim_text(&claims, &u.claims.name);
        let picture = claim_text(&claims, &u.claims.picture);
        let upstream_amr: Vec<String> = claims["amr"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let vouched_mfa = u.trust_mfa
            && (crate::service::mfa::is_multi_factor(&upstream_amr)
                || claims["acr"]
                    .as_str()
                    .is_some_and(crate::service::mfa::acr::demands_multi_factor));
        let identity = IdentityRecord {
            upstream_id: u.id.clone(),
            subject: subject.clone(),
            display: username.clone().or(email.clone()).or(name.clone()),
            linked_at: self.now(),
            last_used_at: Some(self.now()),
        };

        if let Some(user_id) = link_to {
            return self
                .link(&user_id, identity, origin)
                .await
                .map(|()| Returned::Linked {
                    user_id,
                    upstream: u.id.clone(),
                });
        }
        let (up, sub) = (u.id.clone(), subject.clone());
        let linked = self
            .inner
            .store
            .run(move |s| s.identity_signed_in(&up, &sub))
            .await
            .map_err(|_| UpstreamFailure::Unreachable)?;
        if let Some(user_id) = linked {
            let user = self
                .inner
                .accounts
                .active_user(&user_id)
                .await
                .map_err(|_| UpstreamFailure::NoAccount)?;
            return Ok(Returned::SignedIn(
                self.signed_in(&u, user, vouched_mfa, request, origin).await,
            ));
        }
        // No account yet: the person links one (proving it) or gets a new one.
        let token = opaque::random_token(24);
        let record = ChallengeRecord {
            expires_at: self.now() + IDENTITY_TTL,
            user_id: None,
            attempts: 0,
            step: ChallengeStep::UpstreamIdentity {
                upstream: u.id.clone(),
                request: request.clone(),
                subject,
                username,
                email,
                email_verified,
                name,
                picture,
                amr: if vouched_mfa {
                    vec![crate::service::mfa::amr::MULTI_FACTOR.to_string()]
                } else {
                    Vec::new()
                },
                binding: expected_binding,
            },
        };
        let hash = opaque::digest(&token);
        self.inner
            .store
            .run(move |s| s.put_challenge(hash, &record))
            .await
            .map_err(|_| UpstreamFailure::Unreachable)?;
        Ok(Returned::NeedsAccount { token, request })
    }

    /// RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5).
    async fn redeem(
        &self,
        u: &UpstreamRecord,
        endpoints: &Endpoints,
        code: &str,
        verifier: &str,
    ) -> std::result::Result<Value, UpstreamFailure> {
        let secret = self
            .inner
            .sealer
            .open(&u.client_secret_sealed, SECRET_CONTEXT)
            .map_err(|_| {
                tracing::error!(upstream = %u.id, "an upstream's client secret cannot be unsealed");
                UpstreamFailure::Unreachable
            })?;
        let redirect_uri = self.redirect_uri(&u.id);
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let mut req = self
            .http()?
            .post(&endpoints.token)
            .header("accept", "application/json");
        // OAuth 2.0 providers such as GitHub take the credentials in the form; OpenID
        // providers must accept HTTP Basic (RFC 6749 §2.3.1), with both parts form-encoded.
        match u.protocol {
            UpstreamProtocol::Oauth2 => {
                form.push(("client_id", &u.client_id));
                form.push(("client_secret", &secret));
            }
            UpstreamProtocol::Oidc => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                req = req.basic_auth(enc(&u.client_id), Some(enc(&secret)));
            }
        }
        let resp = req.form(&form).send().await.map_err(|e| {
            tracing::warn!(upstream = %u.id, error = %e, "an upstream's token endpoint could not be reached");
            UpstreamFailure::Unreachable
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() || body["error"].is_string() {
            tracing::warn!(upstream = %u.id, %status, error = %body["error"], "an upstream refused the code");
            return Err(UpstreamFailure::Invalid);
        }
        Ok(body)
    }

    /// OIDC Core §3.1.3.7: signature by a key of the upstream's set (never `none` or a
    /// shared-secret algorithm), issuer, audience (and `azp` with several), expiry, issue
    /// time and `nonce`.
    async fn validate_id_token(
        &self,
        u: &UpstreamRecord,
        endpoints: &Endpoints,
        token: &str,
        nonce: &str,
    ) -> std::result::Result<Value, UpstreamFailure> {
        let fail = |why: &str| {
            tracing::warn!(upstream = %u.id, why, "an upstream's id_token was refused");
            UpstreamFailure::Invalid
        };
        let (message, signature) = token.rsplit_once('.').ok_or_else(|| fail("not a JWS"))?;
        let (header, payload) = message.split_once('.').ok_or_else(|| fail("not a JWS"))?;
        let decode = |part: &str| -> Option<Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
        };
        let header = decode(header).ok_or_else(|| fail("unreadable header"))?;
        let claims = decode(payload).ok_or_else(|| fail("unreadable claims"))?;
        use jsonwebtoken::Algorithm as A;
        let algorithm = match header["alg"].as_str() {
            Some("RS256") => A::RS256,
            Some("RS384") => A::RS384,
            Some("RS512") => A::RS512,
            Some("PS256") => A::PS256,
            Some("PS384") => A::PS384,
            Some("PS512") => A::PS512,
            Some("ES256") => A::ES256,
            Some("ES384") => A::ES384,
            Some("EdDSA" | "Ed25519") => A::EdDSA,
            _ => return Err(fail("an algorithm we do not accept")),
        };
        let jwks_url = endpoints.jwks.clone().ok_or_else(|| fail("no jwks_uri"))?;
        let kid = header["kid"].as_str();
        let find = |set: &Value| -> Option<Value> {
            set["keys"]
                .as_array()?
                .iter()
                .find(|k| {
                    kid.is_none_or(|kid| k["kid"].as_str() == Some(kid))
                        && k["use"].as_str().is_none_or(|u| u == "sig")
                })
                .cloned()
        };
        let mut jwk = find(&self.jwks(u, &jwks_url, false).await?);
        if jwk.is_none() {
            // A rotated key: fetch the set again, once.
            jwk = find(&self.jwks(u, &jwks_url, true).await?);
        }
        let jwk = jwk.ok_or_else(|| fail("no key of the upstream's set matches"))?;
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(jwk).map_err(|_| fail("an unreadable key"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| fail("an unusable key"))?;
        let valid = jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, algorithm)
            .map_err(|_| fail("a signature that does not verify"))?;
        if !valid {
            return Err(fail("a signature that does not verify"));
        }
        let issuer = endpoints.issuer.clone().unwrap_or_default();
        let issuer = match claims["tid"].as_str() {
            Some(tid) => issuer.replace("{tenantid}", tid),
            None => issuer,
        };
        if claims["iss"].as_str().map(|i| i.trim_end_matches('/')) != Some(issuer.as_str()) {
            return Err(fail("another issuer"));
        }
        let audiences: Vec<&str> = match &claims["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&u.client_id.as_str()) {
            return Err(fail("another audience"));
        }
        if audiences.len() > 1 && claims["azp"].as_str() != Some(u.client_id.as_str()) {
            return Err(fail("several audiences and another azp"));
        }
        let now = self.now();
        match (claims["exp"].as_i64(), claims["iat"].as_i64()) {
            (Some(exp), Some(iat)) if exp + LEEWAY > now && iat - LEEWAY <= now => {}
            _ => return Err(fail("expired, not yet valid, or without exp and iat")),
        }
        let sent = claims["nonce"].as_str().unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(fail("another nonce"));
        }
        Ok(claims)
    }

    /// A sign-in through `u`: audited; `fed` (and `mfa` when the trusted upstream vouched).
    async fn signed_in(
        &self,
        u: &UpstreamRecord,
        user: UserView,
        vouched_mfa: bool,
        request: String,
        origin: &Origin,
    ) -> FederatedSignIn {
        let event = Event::by_user(EventKind::UpstreamSignIn, origin, &user.id).method(&u.id);
        self.inner.audit.record(event).await;
        let mut amr = vec![crate::service::mfa::amr::FEDERATED.to_string()];
        if vouched_mfa {
            amr.push(crate::service::mfa::amr::MULTI_FACTOR.to_string());
        }
        FederatedSignIn {
            user,
            amr,
            idp: u.id.clone(),
            request,
        }
    }

    async fn link(
        &self,
        user_id: &str,
        identity: IdentityRecord,
        origin: &Origin,
    ) -> std::result::Result<(), UpstreamFailure> {
        let (uid, rec) = (user_id.to_string(), identity.clone());
        match self
            .inner
            .store
            .run(move |s| s.link_identity(&uid, &rec))
            .await
            .map_err(|_| UpstreamFailure::Unreachable)?
        {
            Ok(()) => {
                let event = Event::by_user(EventKind::IdentityLinked, origin, user_id)
                    .method(&identity.upstream_id);
                self.inner.audit.record(event).await;
                Ok(())
            }
            Err(LinkRefused::IdentityTaken | LinkRefused::AlreadyLinked) => {
                Err(UpstreamFailure::LinkedElsewhere)
            }
            Err(LinkRefused::NoUser) => Err(UpstreamFailure::NoAccount),
        }
    }

    // ---- An identity without an account ---------------------------------------------------

    /// Reads a waiting identity (left in place), checking it belongs to this browser.
    async fn waiting(
        &self,
        token: &str,
        binding: Option<&str>,
    ) -> Result<(ChallengeStep, UpstreamRecord)> {
        let hash = opaque::digest(token);
        let record = self
            .inner
            .store
            .run(move |s| s.peek_challenge(hash))
            .await?;
        let step = match record {
            Some(ChallengeRecord { step, .. }) => step,
            None => return Err(ServiceError::MfaChallengeInvalid),
        };
        let ChallengeStep::UpstreamIdentity {
            upstream,
            binding: expected,
            ..
        } = &step
        else {
            return Err(ServiceError::MfaChallengeInvalid);
        };
        let same = binding
            .is_some_and(|b| bool::from(sha256_hex(b).as_bytes().ct_eq(expected.as_bytes())));
        if !same {
            return Err(ServiceError::MfaChallengeInvalid);
        }
        let key = upstream.clone();
        let u = self
            .inner
            .store
            .run(move |s| s.get_upstream(&key))
            .await?
            .filter(|u| u.enabled)
            .ok_or(ServiceError::MfaChallengeInvalid)?;
        Ok((step, u))
    }

    fn may_create(&self, u: &UpstreamRecord) -> bool {
        match u.accounts {
            AccountPolicy::LinkOnly => false,
            AccountPolicy::Create => true,
            AccountPolicy::CreateIfRegistrationOpen => {
                self.inner.registration == RegistrationPolicy::Open
            }
        }
    }

    /// What the page for a waiting identity shows.
    pub async fn pending(&self, token: &str, binding: Option<&str>) -> Result<PendingIdentity> {
        let (step, u) = self.waiting(token, binding).await?;
        let ChallengeStep::UpstreamIdentity {
            request,
            username,
            email,
            name,
            ..
        } = step
        else {
            return Err(ServiceError::MfaChallengeInvalid);
        };
        let address_taken = match email.as_deref().map(crate::domain::Email::parse) {
            Some(Ok(e)) => {
                let lookup = crate::store::users::UserLookup::EmailKey(e.key());
                self.inner
                    .store
                    .run(move |s| s.find_user(&lookup))
                    .await?
                    .is_some()
            }
            _ => false,
        };
        Ok(PendingIdentity {
            upstream_name: u.name.clone(),
            upstream: u.id.clone(),
            request,
            username: suggested_username(username.as_deref(), email.as_deref()),
            email: email.unwrap_or_default(),
            name: name.unwrap_or_default(),
            address_taken,
            may_create: self.may_create(&u),
        })
    }

    /// Links the waiting identity to an account whose owner proved it with `password`, and
    /// signs it in. The match of addresses never links by itself. An account with a second
    /// factor is not linked on its password alone (the upstream could then stand in for the
    /// factor): its owner signs in fully and links from the account page.
    pub async fn link_with_password(
        &self,
        token: &str,
        binding: Option<&str>,
        login: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<FederatedSignIn> {
        let (step, u) = self.waiting(token, binding).await?;
        let user = self
            .inner
            .accounts
            .authenticate_password(login, password, origin)
            .await?;
        let id = user.id.clone();
        if self
            .inner
            .store
            .run(move |s| s.factors(&id))
            .await?
            .has_factor()
        {
            return Err(ServiceError::Conflict(
                "second_factor",
                "this account has a second factor: sign in to it and link the provider from the account page"
                    .into(),
            ));
        }
        let ChallengeStep::UpstreamIdentity {
            subject,
            username,
            email,
            request,
            ..
        } = step
        else {
            return Err(ServiceError::MfaChallengeInvalid);
        };
        self.spend(token).await?;
        let identity = IdentityRecord {
            upstream_id: u.id.clone(),
            subject,
            display: username.or(email),
            linked_at: self.now(),
            last_used_at: Some(self.now()),
        };
        self.link(&user.id, identity, origin).await.map_err(|_| {
            ServiceError::Conflict(
                "identity",
                "this identity is linked to another account".into(),
            )
        })?;
        // The password proved the account: the sign-in is a password one, plus `fed`.
        let mut done = self.signed_in(&u, user, false, request, origin).await;
        done.amr
            .insert(0, crate::service::mfa::amr::PASSWORD.to_string());
        Ok(done)
    }

    /// Creates the account for the waiting identity, named `username` (the person's choice,
    /// or the suggestion), and signs it in.
    pub async fn create_account(
        &self,
        token: &str,
        binding: Option<&str>,
        username: &str,
        origin: &Origin,
    ) -> Result<FederatedSignIn> {
        let (step, u) = self.waiting(token, binding).await?;
        if !self.may_create(&u) {
            return Err(ServiceError::RegistrationClosed);
        }
        let ChallengeStep::UpstreamIdentity {
            subject,
            email,
            email_verified,
            name,
            amr,
            request,
            username: upstream_name,
            picture,
            ..
        } = step
        else {
            return Err(ServiceError::MfaChallengeInvalid);
        };
        let Some(email) = email else {
            return Err(ServiceError::Invalid(crate::domain::Invalid::new(
                "invalid_email",
                "email",
                "the upstream provider did not share an email address",
            )));
        };
        let identity = IdentityRecord {
            upstream_id: u.id.clone(),
            subject,
            display: upstream_name.or(Some(email.clone())),
            linked_at: self.now(),
            last_used_at: Some(self.now()),
        };
        let user = self
            .inner
            .accounts
            .create_federated_user(
                username,
                &email,
                name.as_deref(),
                u.trust_email && email_verified,
                identity,
            )
            .await?;
        self.spend(token).await?;
        let event = Event::by_user(EventKind::IdentityLinked, origin, &user.id).method(&u.id);
        self.inner.audit.record(event).await;
        let user = match picture {
            Some(url) => self
                .bring_picture(&u, &user.id, &url)
                .await
                .unwrap_or(user.into()),
            None => user.into(),
        };
        let vouched = crate::service::mfa::is_multi_factor(&amr);
        Ok(self.signed_in(&u, user, vouched, request, origin).await)
    }

    /// Brings the picture the upstream names to a new account, best effort: only from a
    /// public address (a provider on this machine may name this machine), within
    /// [`PICTURE_TIMEOUT`] and the avatar size limit, and only an image we can read. A
    /// failure is logged and the account simply has no picture.
    async fn bring_picture(
        &self,
        u: &UpstreamRecord,
        user_id: &str,
        url: &str,
    ) -> Option<UserView> {
        let local = [&u.issuer, &u.userinfo_endpoint]
            .into_iter()
            .flatten()
            .filter_map(|e| url::Url::parse(e).ok())
            .any(|e| crate::domain::is_loopback(&e));
        let parsed = url::Url::parse(url).ok()?;
        if !crate::outbound::url_allowed(&parsed, local) {
            tracing::info!(upstream = %u.id, "a picture at an address we do not fetch from was left out");
            return None;
        }
        let cell = if local {
            &self.inner.local_pictures
        } else {
            &self.inner.pictures
        };
        let client = cell
            .get_or_init(|| crate::outbound::public_http_client(PICTURE_TIMEOUT, local).ok())
            .as_ref()?;
        let limit = self.inner.avatars.max_bytes();
        let fetched = async {
            let mut resp = client.get(parsed).send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.ok()? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > limit {
                    return None;
                }
            }
            Some(bytes)
        }
        .await;
        let Some(bytes) = fetched else {
            tracing::info!(upstream = %u.id, "the upstream's picture could not be fetched; the account has none");
            return None;
        };
        match self.inner.avatars.set_for(user_id, bytes).await {
            Ok(user) => Some(user),
            Err(e) => {
                tracing::info!(upstream = %u.id, error = %e, "the upstream's picture was not accepted");
                None
            }
        }
    }

    async fn spend(&self, token: &str) -> Result<()> {
        let hash = opaque::digest(token);
        self.inner
            .store
            .run(move |s| s.take_challenge(hash))
            .await?;
        Ok(())
    }

    // ---- Linked identities ----------------------------------------------------------------

    /// A user's linked identities with their upstreams' names.
    pub async fn identities(&self, user_id: &str) -> Result<Vec<(IdentityRecord, String)>> {
        Ok(self
            .identities_of_users(vec![user_id.to_string()])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// The linked identities of each of `user_ids` (in their order) with their upstreams'
    /// names: two reads, however many users (the console's page of users).
    pub async fn identities_of_users(
        &self,
        user_ids: Vec<String>,
    ) -> Result<Vec<Vec<(IdentityRecord, String)>>> {
        let linked = self
            .inner
            .store
            .run(move |s| s.identities_of_users(&user_ids))
            .await?;
        let all = self.inner.store.run(|s| s.list_upstreams()).await?;
        let name = |id: &str| {
            all.iter()
                .find(|u| u.id == id)
                .map_or_else(|| id.to_string(), |u| u.name.clone())
        };
        Ok(linked
            .into_iter()
            .map(|identities| {
                identities
                    .into_iter()
                    .map(|i| {
                        let n = name(&i.upstream_id);
                        (i, n)
                    })
                    .collect()
            })
            .collect())
    }

    /// Unlinks the caller's identity at `upstream`, unless it is their last way to sign in
    /// (no password, no passkey, no other identity).
    pub async fn unlink(
        &self,
        principal: &Principal,
        upstream: &str,
        origin: &Origin,
    ) -> Result<()> {
        let user_id = principal.user.id.clone();
        let factors = {
            let id = user_id.clone();
            self.inner.store.run(move |s| s.factors(&id)).await?
        };
        let has_passkey = !factors.passkeys.is_empty();
        let (uid, up) = (user_id.clone(), upstream.to_string());
        let outcome = self
            .inner
            .store
            .run(move |s| {
                s.unlink_identity(&uid, &up, |user, others| {
                    user.password_hash != crate::service::passwords::NO_PASSWORD
                        || has_passkey
                        || others > 0
                })
            })
            .await?;
        match outcome {
            None => Err(ServiceError::NotFound("identity")),
            Some(false) => Err(ServiceError::Conflict(
                "last_sign_in",
                "this is your only way to sign in: set a password (with a reset code) or add a passkey first"
                    .into(),
            )),
            Some(true) => {
                let event = Event::by_user(EventKind::IdentityUnlinked, origin, &user_id).method(upstream);
                self.inner.audit.record(event).await;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_keep_only_what_a_username_may_hold() {
        assert_eq!(suggested_username(Some("Mona Lisa!"), None), "MonaLisa");
        assert_eq!(
            suggested_username(None, Some("li.wei@example.test")),
            "li.wei"
        );
        assert_eq!(suggested_username(None, None), "");
    }

    #[test]
    fn numeric_and_text_claims_read_alike() {
        let claims = serde_json::json!({"id": 42, "login": " octo ", "blank": "  "});
        assert_eq!(claim_text(&claims, "id").as_deref(), Some("42"));
        assert_eq!(claim_text(&claims, "login").as_deref(), Some("octo"));
        assert_eq!(claim_text(&claims, "blank"), None);
        assert_eq!(claim_text(&claims, ""), None);
    }

    #[test]
    fn upstream_urls_are_https_or_on_this_machine() {
        assert!(check_url("issuer", "https://accounts.example.test").is_ok());
        assert!(check_url("issuer", "http://127.0.0.1:8080").is_ok());
        assert!(check_url("issuer", "http://idp.example.test").is_err());
        assert!(check_url("issuer", "ftp://idp.example.test").is_err());
    }

    #[test]
    fn the_upstream_flag_reads_like_a_seed_block() {
        let input = UpstreamInput::parse_flag(
            "id=corp, issuer=https://sso.example.test, client-id=c1, client_secret=s=1, trust-mfa=true, claims.username=uid",
        )
        .unwrap();
        assert_eq!(input.id, "corp");
        assert_eq!(input.issuer.as_deref(), Some("https://sso.example.test"));
        assert_eq!(input.client_id, "c1");
        assert_eq!(input.client_secret.as_deref(), Some("s=1"));
        assert_eq!(input.trust_mfa, Some(true));
        assert_eq!(input.claims["username"], "uid");
        assert!(UpstreamInput::parse_flag("id=corp,nonsense").is_err());
        assert!(UpstreamInput::parse_flag("id=corp,client_id=c,colour=red").is_err());
        assert!(
            UpstreamInput::parse_flag("client_id=c").is_err(),
            "the id is required"
        );
    }

    #[test]
    fn presets_fill_in_what_their_provider_needs() {
        let (protocol, github) = preset("github", None).unwrap();
        assert_eq!(protocol, UpstreamProtocol::Oauth2);
        assert_eq!(github.claims.subject, "id");
        assert!(github.claims.email_verified.is_empty());
        let (_, ms) = preset("microsoft", Some("contoso.onmicrosoft.com")).unwrap();
        assert_eq!(
            ms.issuer.as_deref(),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0")
        );
        assert!(preset("myspace", None).is_err());
    }
}
