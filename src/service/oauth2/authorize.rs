//! The authorization endpoint's logic (RFC 6749 §4.1.1–§4.1.2, PKCE per RFC 7636).
//!
//! Until the client and redirect URI are trusted, errors are shown on our own page and never
//! redirect (RFC 6749 §4.1.2.1: an open redirector otherwise). After that, errors go back to
//! the client as `error=` with the original `state`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::OAuth2;
use crate::{
    domain::Scope,
    i18n::Msg,
    service::{
        ServiceError,
        views::{ClientView, UserView},
    },
    store::{
        authz::{AuthCodeRecord, AuthRequestRecord, BrowserSessionRecord},
        records::ClientRecord,
    },
    token::opaque,
};

/// Seconds a pending authorization request waits for login and consent.
const REQUEST_TTL: i64 = 600;
/// Seconds an authorization code lives (RFC 6749 §4.1.2 recommends at most 10 minutes; we
/// allow one).
pub const CODE_TTL: i64 = 60;
/// Standard OpenID Connect scopes (OIDC Core §5.4) whose claims this server keeps no data for:
/// a request for them is granted without them instead of refused.
const UNKEPT_CLAIM_SCOPES: [&str; 2] = ["address", "phone"];

/// Seconds a browser session lasts.
pub const BROWSER_SESSION_TTL: i64 = 12 * 3600;

/// The query of `GET /oauth2/authorize`, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// OIDC Core §3.1.2.1: `none`, `login`, `consent`, `select_account`, space-separated.
    pub prompt: Option<String>,
    /// OIDC Core §3.1.2.1: seconds since the last active sign-in that are still acceptable.
    pub max_age: Option<String>,
    /// A name to prefill on the login form.
    pub login_hint: Option<String>,
    /// An id_token we issued, naming who the client expects to be signed in.
    pub id_token_hint: Option<String>,
    /// Request objects (OIDC Core §6) are not supported: either one is refused.
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Only `query` (the default for `code`) is supported.
    pub response_mode: Option<String>,
    /// OIDC Core §3.1.2.1: requested Authentication Context Class References; a second
    /// factor is demanded when one of them is a multi-factor value (`mfa::acr`).
    pub acr_values: Option<String>,
    /// OIDC Core §3.1.2.1: the end-user's preferred languages for the pages.
    pub ui_locales: Option<String>,
}

impl AuthorizeParams {
    /// The parameters from a query or form (each at most once; others are ignored, as
    /// OIDC Core §3.1.2.1 requires of unknown ones).
    pub fn from_map(q: &std::collections::HashMap<String, String>) -> Self {
        let get = |k: &str| q.get(k).cloned();
        Self {
            response_type: get("response_type"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            nonce: get("nonce"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            prompt: get("prompt"),
            max_age: get("max_age"),
            login_hint: get("login_hint"),
            id_token_hint: get("id_token_hint"),
            request: get("request"),
            request_uri: get("request_uri"),
            acr_values: get("acr_values"),
            response_mode: get("response_mode"),
            ui_locales: get("ui_locales"),
        }
    }
}

/// Why an authorization request failed, and how to tell the user.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show this on our page, do not redirect.
    Page(crate::i18n::Msg),
    /// Tell the client: redirect to this URL (which carries `error` and `state`).
    Redirect(String),
}

/// A validated pending request.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub request: AuthRequestRecord,
    pub client: ClientView,
}

/// A signed-in browser, as the pages hold it between calls: its session cookie and user,
/// and the session itself, which stays inside (the pages hand it back, never read it). No
/// `Debug`: the cookie is a bearer secret and must not reach a log line.
#[derive(Clone)]
pub struct SignedIn {
    pub cookie: String,
    pub user: UserView,
    session: BrowserSessionRecord,
}

impl SignedIn {
    /// How the session's user signed in (RFC 8176 values).
    pub fn amr(&self) -> Vec<String> {
        crate::service::mfa::amr_or_password(&self.session.amr)
    }
}

/// Appends query parameters to a redirect URI that may already have a query.
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut url = uri.to_string();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        sep = '&';
        url.push_str(&url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>());
        url.push('=');
        url.push_str(&url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>());
    }
    url
}

/// The redirect URI with an RFC 6749 §4.1.2.1 error, the original `state`, and `iss`
/// (RFC 9207 §2: on error responses too).
fn error_redirect(
    uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    with_query(uri, &params)
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`.
fn valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use sha2::Digest;
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    valid_pkce_value(verifier) && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// A request refused after its client and redirect URI are trusted: the RFC 6749 §4.1.2.1
/// (or OIDC Core §3.1.2.6, RFC 9126 §2.3) error code and a description. Sent back to the
/// client by redirect, or as the pushed-request endpoint's JSON error.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub error: &'static str,
    pub description: String,
}

fn reject(error: &'static str, description: impl Into<String>) -> Rejection {
    Rejection {
        error,
        description: description.into(),
    }
}

/// The prefix of the `request_uri`s the pushed authorization request endpoint hands out
/// (RFC 9126 §2.2).
pub const PAR_URN: &str = "urn:ietf:params:oauth:request_uri:";
/// Seconds a pushed request waits for its authorization request (RFC 9126 §2.2: short).
pub const PAR_TTL: i64 = 60;

/// RFC 6749 §3.1.2.3: exact string match against a registered URI; may be omitted only when
/// exactly one is registered. The error is for our own page (nothing is trusted yet).
fn trusted_redirect(client: &ClientRecord, asked: Option<&str>) -> Result<String, Untrusted> {
    match asked {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok(uri.to_string()),
        Some(_) => Err(Untrusted::Unregistered),
        None if client.redirect_uris.len() == 1 => Ok(client.redirect_uris[0].clone()),
        None => Err(Untrusted::Missing),
    }
}

/// Why a request's redirect URI cannot be used.
#[derive(Debug, Clone, Copy)]
enum Untrusted {
    Unregistered,
    Missing,
}

impl Untrusted {
    /// What the user's page says.
    fn page(self) -> AuthorizeError {
        AuthorizeError::Page(Msg::new(match self {
            Untrusted::Unregistered => "error-redirect-uri-unregistered",
            Untrusted::Missing => "error-no-redirect-uri",
        }))
    }

    /// What a client calling the API reads (an `error_description`).
    fn description(self) -> String {
        match self {
            Untrusted::Unregistered => "redirect_uri is not registered for this client".into(),
            Untrusted::Missing => "redirect_uri is required".into(),
        }
    }
}

impl OAuth2 {
    /// Validates an authorization request — or takes the pushed one its `request_uri`
    /// names (RFC 9126 §4) — and stores it as pending.
    pub async fn begin_authorization(&self, p: AuthorizeParams) -> Result<Pending, AuthorizeError> {
        let client_id = p
            .client_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthorizeError::Page(Msg::new("error-no-client-id")))?;
        let id = client_id.to_string();
        let client = self
            .store()
            .run(move |s| s.get_client(&id))
            .await
            .map_err(|_| AuthorizeError::Page(Msg::new("error-try-again-lookup")))?
            .ok_or_else(|| AuthorizeError::Page(Msg::new("error-unknown-client")))?;
        if let Some(id) = p
            .request_uri
            .as_deref()
            .and_then(|u| u.strip_prefix(PAR_URN))
        {
            let id = id.to_string();
            let pushed = self
                .store()
                .run(move |s| s.take_pushed_request(&id))
                .await
                .map_err(|_| AuthorizeError::Page(Msg::new("error-try-again-read")))?
                .ok_or_else(|| AuthorizeError::Page(Msg::new("error-request-expired")))?;
            // §4: the client_id must be the one that pushed it.
            if pushed.client_id != client.client_id {
                return Err(AuthorizeError::Page(Msg::new("error-request-other-client")));
            }
            let now = self.store().clock().now();
            let request = AuthRequestRecord {
                created_at: now,
                expires_at: now + REQUEST_TTL,
                ..pushed
            };
            return self.store_pending(request, client).await;
        }
        let redirect_uri =
            trusted_redirect(&client, p.redirect_uri.as_deref()).map_err(Untrusted::page)?;
        let refused = |r: Rejection| {
            AuthorizeError::Redirect(error_redirect(
                &redirect_uri,
                r.error,
                &r.description,
                p.state.as_deref(),
                self.issuer(),
            ))
        };
        if client.require_pushed_authorization_requests {
            return Err(refused(reject(
                "invalid_request",
                "this client must push its authorization requests first (RFC 9126)",
            )));
        }
        let request = self
            .check_request(&client, &p, redirect_uri.clone())
            .map_err(refused)?;
        self.store_pending(request, client).await
    }

    /// `POST /oauth2/par` (RFC 9126 §2): validates an authorization request from an
    /// authenticated client and keeps it for [`PAR_TTL`] seconds. Returns the `request_uri`
    /// to send the browser with, and its lifetime.
    pub async fn push_authorization(
        &self,
        presented: &super::PresentedClient,
        mut p: AuthorizeParams,
    ) -> Result<(String, i64), super::OAuthError> {
        use super::OAuthError;
        let client = self.authenticate_client(presented).await?;
        // §2.1: a pushed request cannot itself point at a request_uri.
        if p.request_uri.is_some() {
            return Err(OAuthError::InvalidRequest(
                "request_uri cannot be pushed (RFC 9126 §2.1)".into(),
            ));
        }
        p.client_id = Some(client.client_id.clone());
        let redirect_uri = trusted_redirect(&client, p.redirect_uri.as_deref())
            .map_err(|u| OAuthError::InvalidRequest(u.description()))?;
        let mut request = self
            .check_request(&client, &p, redirect_uri)
            .map_err(OAuthError::Rejected)?;
        request.expires_at = request.created_at + PAR_TTL;
        let id = opaque::random_token(24);
        let (rid, rec) = (id.clone(), request);
        self.store()
            .run(move |s| s.put_pushed_request(&rid, &rec))
            .await?;
        Ok((format!("{PAR_URN}{id}"), PAR_TTL))
    }

    /// Stores a validated request as pending.
    async fn store_pending(
        &self,
        request: AuthRequestRecord,
        client: ClientRecord,
    ) -> Result<Pending, AuthorizeError> {
        let id = opaque::random_token(16);
        let (rid, rec) = (id.clone(), request.clone());
        self.store()
            .run(move |s| s.put_auth_request(&rid, &rec))
            .await
            .map_err(|_| AuthorizeError::Page(Msg::new("error-try-again-save")))?;
        Ok(Pending {
            id,
            request,
            client: client.into(),
        })
    }

    /// Checks everything of an authorization request but its client and redirect URI, and
    /// builds the record to keep.
    fn check_request(
        &self,
        client: &ClientRecord,
        p: &AuthorizeParams,
        redirect_uri: String,
    ) -> Result<AuthRequestRecord, Rejection> {
        // OIDC Core §6.1–6.2: request objects are not supported, and discovery says so.
        if p.request.is_some() {
            return Err(reject(
                "request_not_supported",
                "request objects are not supported; send the parameters in the query",
            ));
        }
        if p.request_uri.is_some() {
            return Err(reject(
                "request_uri_not_supported",
                "request_uri is supported only for pushed requests (RFC 9126); send the parameters in the query",
            ));
        }
        if p.response_mode.as_deref().is_some_and(|m| m != "query") {
            return Err(reject(
                "invalid_request",
                "only response_mode=query is supported",
            ));
        }
        let prompts: Vec<&str> = p
            .prompt
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if prompts.contains(&"none") && prompts.len() > 1 {
            return Err(reject(
                "invalid_request",
                "prompt=none cannot be combined with other prompt values",
            ));
        }
        let max_age =
            match p.max_age.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(m) => Some(m.parse::<u32>().map_err(|_| {
                    reject("invalid_request", "max_age must be a number of seconds")
                })?),
            };
        if p.response_type.as_deref() != Some("code") {
            return Err(reject(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        if !client.grant_types.iter().any(|g| g == "authorization_code") {
            return Err(reject(
                "unauthorized_client",
                "this client may not use the authorization code grant",
            ));
        }
        let allowed = Scope::from_tokens(&client.scopes)
            .map_err(|_| reject("server_error", "the client's scopes are invalid"))?;
        let scope = match p.scope.as_deref().filter(|s| !s.trim().is_empty()) {
            None => allowed.clone(),
            Some(s) => {
                let asked = Scope::parse(s).map_err(|e| reject("invalid_scope", e.message))?;
                // OIDC Core §5.4 standard scopes for data we do not keep are ignored, as
                // RFC 6749 §3.3 allows; the token response names the scope granted.
                Scope::from_tokens(
                    asked
                        .tokens()
                        .filter(|t| !UNKEPT_CLAIM_SCOPES.contains(t))
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                )
                .map_err(|e| reject("invalid_scope", e.message))?
            }
        };
        if !scope.is_subset(&allowed) {
            return Err(reject(
                "invalid_scope",
                format!("this client may request only `{allowed}`"),
            ));
        }
        let challenge = p.code_challenge.as_deref().filter(|s| !s.is_empty());
        match (challenge, p.code_challenge_method.as_deref()) {
            (None, _) if !client.confidential => {
                return Err(reject(
                    "invalid_request",
                    "public clients must use PKCE (code_challenge with S256)",
                ));
            }
            (None, _) => {}
            (Some(_), Some("plain")) => {
                return Err(reject(
                    "invalid_request",
                    "code_challenge_method plain is not allowed; use S256",
                ));
            }
            (Some(_), Some(m)) if m != "S256" => {
                return Err(reject(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ));
            }
            (Some(_), None) => {
                return Err(reject(
                    "invalid_request",
                    "code_challenge_method must be S256 (the default, plain, is not allowed)",
                ));
            }
            (Some(c), Some(_)) if !valid_pkce_value(c) => {
                return Err(reject(
                    "invalid_request",
                    "code_challenge must be 43–128 unreserved characters",
                ));
            }
            (Some(_), Some(_)) => {}
        }
        let now = self.store().clock().now();
        Ok(AuthRequestRecord {
            client_id: client.client_id.clone(),
            redirect_uri,
            scope: scope.to_string(),
            state: p.state.clone(),
            nonce: p.nonce.clone().filter(|n| !n.is_empty()),
            code_challenge: challenge.map(str::to_string),
            expires_at: now + REQUEST_TTL,
            created_at: now,
            prompt_login: prompts.contains(&"login"),
            prompt_none: prompts.contains(&"none"),
            max_age: max_age.map(i64::from),
            login_hint: p.login_hint.clone().filter(|h| !h.is_empty()),
            id_token_hint: p.id_token_hint.clone().filter(|h| !h.is_empty()),
            device: None,
            // Bounded: it is only read for its first few language tags.
            ui_locales: p
                .ui_locales
                .as_deref()
                .map(|l| l.chars().take(256).collect::<String>())
                .filter(|l| !l.trim().is_empty()),
            mfa_demanded: client.require_mfa
                || p.acr_values
                    .as_deref()
                    .is_some_and(crate::service::mfa::acr::demands_multi_factor),
        })
    }

    /// A pending request and its client, if it is still waiting.
    pub async fn pending(&self, id: &str) -> Result<Option<Pending>, ServiceError> {
        let rid = id.to_string();
        let Some(request) = self.store().run(move |s| s.get_auth_request(&rid)).await? else {
            return Ok(None);
        };
        let cid = request.client_id.clone();
        let Some(client) = self.store().run(move |s| s.get_client(&cid)).await? else {
            return Ok(None);
        };
        Ok(Some(Pending {
            id: id.to_string(),
            request,
            client: client.into(),
        }))
    }

    /// Whether the user already granted (at least) this scope to this client.
    pub async fn has_consent(
        &self,
        user_id: &str,
        pending: &Pending,
    ) -> Result<bool, ServiceError> {
        let (u, c) = (user_id.to_string(), pending.client.client_id.clone());
        let granted: Option<String> = self.store().run(move |s| s.consent(&u, &c)).await?;
        let Some(granted) = granted else {
            return Ok(false);
        };
        let granted = Scope::parse(&granted)?;
        Ok(Scope::parse(&pending.request.scope)?.is_subset(&granted))
    }

    /// The user approved: remember the consent, issue a code in the browser session
    /// `cookie` names, and return where to send the browser. `None` if the request was
    /// already completed (double submit).
    pub async fn approve(
        &self,
        pending: &Pending,
        signed_in: &SignedIn,
    ) -> Result<Option<String>, ServiceError> {
        let SignedIn {
            cookie,
            user,
            session,
        } = signed_in;
        let (u, c) = (user.id.clone(), pending.client.client_id.clone());
        let old: Option<String> = self
            .store()
            .run({
                let (u, c) = (u.clone(), c.clone());
                move |s| s.consent(&u, &c)
            })
            .await?;
        let mut scope = Scope::parse(&pending.request.scope)?;
        if let Some(old) = old {
            scope = Scope::from_tokens(
                scope
                    .tokens()
                    .chain(Scope::parse(&old)?.tokens())
                    .map(str::to_string)
                    .collect::<Vec<_>>(),
            )?;
        }
        let merged = scope.to_string();
        self.store()
            .run(move |s| s.set_consent(&u, &c, &merged))
            .await?;
        if let Some(device) = &pending.request.device {
            let decision = crate::store::device::DeviceState::Approved {
                user_id: user.id.clone(),
                auth_time: session.auth_time,
                sid: session.public_sid(),
                amr: crate::service::mfa::amr_or_password(&session.amr),
            };
            return self.finish_device_request(pending, device, decision).await;
        }
        let code = opaque::random_token(32);
        let now = self.store().clock().now();
        let record = AuthCodeRecord {
            client_id: pending.client.client_id.clone(),
            redirect_uri: pending.request.redirect_uri.clone(),
            user_id: user.id.clone(),
            scope: pending.request.scope.clone(),
            nonce: pending.request.nonce.clone(),
            code_challenge: pending.request.code_challenge.clone(),
            auth_time: session.auth_time,
            expires_at: now + CODE_TTL,
            redeemed_family: None,
            sid: session.public_sid(),
            amr: crate::service::mfa::amr_or_password(&session.amr),
            idp: session.idp.clone(),
        };
        let (id, hash, session_hash) = (
            pending.id.clone(),
            opaque::digest(&code),
            opaque::digest(cookie),
        );
        if !self
            .store()
            .run(move |s| s.complete_auth_request(&id, Some((hash, record)), Some(session_hash)))
            .await?
        {
            return Ok(None);
        }
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = pending.request.state.as_deref() {
            params.push(("state", s));
        }
        params.push(("iss", self.issuer()));
        Ok(Some(with_query(&pending.request.redirect_uri, &params)))
    }

    /// Whether a browser session counts as a sign-in for this request: with `prompt=login`
    /// it must have begun after the request (OIDC Core §3.1.2.1), with `max_age` within that
    /// many seconds.
    pub fn session_satisfies(&self, pending: &Pending, signed_in: &SignedIn) -> bool {
        let session = &signed_in.session;
        let r = &pending.request;
        let now = self.store().clock().now();
        let fresh_login = !r.prompt_login || session.auth_time >= r.created_at;
        let recent = r.max_age.is_none_or(|m| now - session.auth_time <= m);
        fresh_login && recent && !self.needs_step_up(pending, signed_in)
    }

    /// Whether the request (or the policy, for this user) demands a second factor that the
    /// browser session has not proven.
    pub fn needs_step_up(&self, pending: &Pending, signed_in: &SignedIn) -> bool {
        let demanded = pending.request.mfa_demanded || self.mfa().required_for(&signed_in.user);
        demanded && !crate::service::mfa::is_multi_factor(&signed_in.session.amr)
    }

    /// `prompt=none` (OIDC Core §3.1.2.6): answer at once, never showing a page. A code when
    /// the browser's session satisfies the request, names the `id_token_hint`'s user (when
    /// given) and has consent; otherwise `login_required` or `consent_required`.
    pub async fn answer_without_prompting(
        &self,
        pending: &Pending,
        signed_in: Option<&SignedIn>,
    ) -> Result<String, ServiceError> {
        let refuse = |error, why| self.refuse_request(pending, error, why);
        let Some(signed_in) = signed_in.filter(|s| self.session_satisfies(pending, s)) else {
            return refuse("login_required", "the user is not signed in").await;
        };
        if let Some(hint) = pending.request.id_token_hint.as_deref() {
            let hinted = self.id_tokens().verify_hint(hint, self.issuer()).await;
            let sub = hinted.as_ref().and_then(|c| c["sub"].as_str());
            if sub != Some(signed_in.user.id.as_str()) {
                return refuse(
                    "login_required",
                    "another user is signed in than the hint names",
                )
                .await;
            }
        }
        if !self.has_consent(&signed_in.user.id, pending).await? {
            return refuse(
                "consent_required",
                "the user has not consented to this client",
            )
            .await;
        }
        match self.approve(pending, signed_in).await? {
            Some(url) => Ok(url),
            None => refuse("invalid_request", "the request was already completed").await,
        }
    }

    /// The user said no: RFC 6749 §4.1.2.1 `access_denied`.
    pub async fn deny(&self, pending: &Pending) -> Result<String, ServiceError> {
        if let Some(device) = &pending.request.device {
            let decision = crate::store::device::DeviceState::Denied;
            return Ok(self
                .finish_device_request(pending, device, decision)
                .await?
                .unwrap_or_else(|| super::device::DEVICE_PAGE_EXPIRED.to_string()));
        }
        self.refuse_request(pending, "access_denied", "the user denied the request")
            .await
    }

    /// Ends a pending request without a code; returns the client's error redirect.
    async fn refuse_request(
        &self,
        pending: &Pending,
        error: &str,
        description: &str,
    ) -> Result<String, ServiceError> {
        let id = pending.id.clone();
        self.store()
            .run(move |s| s.complete_auth_request(&id, None, None))
            .await?;
        Ok(error_redirect(
            &pending.request.redirect_uri,
            error,
            description,
            pending.request.state.as_deref(),
            self.issuer(),
        ))
    }

    /// Starts a browser session; returns the cookie value.
    pub async fn start_browser_session(
        &self,
        user: &UserView,
        amr: Vec<String>,
        idp: Option<String>,
    ) -> Result<(String, BrowserSessionRecord), ServiceError> {
        let cookie = opaque::random_token(32);
        let now = self.store().clock().now();
        let record = BrowserSessionRecord {
            user_id: user.id.clone(),
            auth_time: now,
            expires_at: now + BROWSER_SESSION_TTL,
            sid: opaque::random_token(16),
            clients: Vec::new(),
            amr,
            idp,
        };
        let (hash, rec) = (opaque::digest(&cookie), record.clone());
        self.store()
            .run(move |s| s.put_browser_session(hash, &rec))
            .await?;
        Ok((cookie, record))
    }

    /// Records a second factor proven in `signed_in`'s session (its new `amr`); `false` if
    /// the session has ended.
    pub async fn step_up(
        &self,
        signed_in: &SignedIn,
        amr: Vec<String>,
    ) -> Result<bool, ServiceError> {
        let hash = opaque::digest(&signed_in.cookie);
        Ok(self
            .store()
            .run(move |s| s.step_up_browser_session(hash, amr))
            .await?)
    }

    /// The signed-in user of a browser session cookie, if live and enabled.
    pub async fn browser_session(&self, cookie: &str) -> Result<Option<SignedIn>, ServiceError> {
        let hash = opaque::digest(cookie);
        // Two point reads, like a token check's: inline, not two hops to the blocking pool.
        let found = self.store().point_read(move |s| {
            let Some(session) = s.get_browser_session(hash)? else {
                return Ok(None);
            };
            Ok(s.get_user(&session.user_id)?.map(|user| (session, user)))
        })?;
        Ok(found
            .filter(|(_, u)| !u.disabled)
            .map(|(session, u)| SignedIn {
                cookie: cookie.to_string(),
                user: u.into(),
                session,
            }))
    }

    /// Ends a browser session (the store queues a Back-Channel Logout for each client that
    /// was issued a code in it) and wakes the delivery. Returns the ended session, if live.
    pub async fn end_browser_session(
        &self,
        cookie: &str,
    ) -> Result<Option<BrowserSessionRecord>, ServiceError> {
        let hash = opaque::digest(cookie);
        let ended = self
            .store()
            .run(move |s| s.delete_browser_session(hash))
            .await?;
        if ended.is_some() {
            self.backchannel.wake();
        }
        Ok(ended)
    }

    /// A CSRF token bound to `binding` (the browser's cookie) and the pending request.
    pub fn csrf_token(&self, binding: &str, request_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(crate::token::opaque::keyed_digest(
            &self.csrf_key,
            &[binding, request_id],
        ))
    }

    pub fn csrf_valid(&self, binding: &str, request_id: &str, token: &str) -> bool {
        let expected = self.csrf_token(binding, request_id);
        !token.is_empty() && bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn query_is_appended_and_escaped() {
        assert_eq!(
            with_query("https://a.test/cb", &[("code", "x y"), ("state", "&s")]),
            "https://a.test/cb?code=x+y&state=%26s"
        );
        assert_eq!(
            with_query("https://a.test/cb?t=1", &[("code", "c")]),
            "https://a.test/cb?t=1&code=c"
        );
    }
}
