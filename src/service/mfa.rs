//! Second factors: TOTP (RFC 6238) with recovery codes, and passkeys (WebAuthn, through
//! `webauthn-rs`) both as a second factor and for passwordless, usernameless sign-in; the
//! second step of a sign-in; the unlock link mailed while an account's sign-ins are slowed.
//!
//! Every sign-in surface goes through [`Mfa::after_password`]: it either lets the sign-in
//! through (no factor, or the policy is off) or answers with a challenge that
//! [`Mfa::complete`] finishes. The `amr` values are RFC 8176's.

use std::sync::Arc;

use serde::Serialize;
use subtle::ConstantTimeEq;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::{
    Result, ServiceError,
    audit::{Audit, Event, EventKind, Origin},
    passwords::PasswordHasher,
    views::UserView,
};
use crate::{
    config::MfaPolicy,
    domain::Role,
    mail::Mailer,
    store::{
        Store,
        mfa::{ChallengeRecord, ChallengeStep, FactorsRecord, PasskeyRecord, TotpRecord},
    },
    token::{opaque, sealed::Sealer},
};

/// Seconds the second step of a sign-in may take.
pub const SECOND_FACTOR_TTL: i64 = 300;
/// Wrong answers one second-step challenge allows before the sign-in starts over.
pub const SECOND_FACTOR_ATTEMPTS: u32 = 5;
/// Seconds an enrolment (TOTP secret shown, passkey ceremony) may take.
const ENROLMENT_TTL: i64 = 600;
/// Seconds a passwordless ceremony may take.
const PASSWORDLESS_TTL: i64 = 300;
/// Seconds the mailed unlock link works.
pub const UNLOCK_TTL: i64 = 3600;
/// Recovery codes issued at a time.
pub const RECOVERY_CODES: usize = 10;
/// Passkeys one user may register.
const MAX_PASSKEYS: usize = 20;
/// The longest passkey name.
const MAX_PASSKEY_NAME: usize = 64;

/// RFC 8176 §2 method values.
pub mod amr {
    pub const PASSWORD: &str = "pwd";
    pub const ONE_TIME_PASSWORD: &str = "otp";
    /// A key in hardware (a passkey that cannot be copied off its device).
    pub const HARDWARE_KEY: &str = "hwk";
    /// A key in software (a synced passkey: backup eligible).
    pub const SOFTWARE_KEY: &str = "swk";
    /// User presence.
    pub const USER_PRESENCE: &str = "user";
    pub const MULTI_FACTOR: &str = "mfa";
    /// Federated: signed in through another identity provider.
    pub const FEDERATED: &str = "fed";
}

/// `acr` values this server issues and accepts in `acr_values`.
pub mod acr {
    /// One factor (a password).
    pub const SINGLE_FACTOR: &str = "urn:portcullis:acr:sf";
    /// Two factors, or a passkey with user verification.
    pub const MULTI_FACTOR: &str = "urn:portcullis:acr:mfa";
    /// The OpenID PAPE multi-factor policy URI, accepted as a synonym in `acr_values`.
    pub const PAPE_MULTI_FACTOR: &str =
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

    /// The `acr` of a sign-in with these `amr` values.
    pub fn of(amr: &[String]) -> &'static str {
        if super::is_multi_factor(amr) {
            MULTI_FACTOR
        } else {
            SINGLE_FACTOR
        }
    }

    /// Whether `acr_values` (space-separated) asks for a second factor.
    pub fn demands_multi_factor(acr_values: &str) -> bool {
        acr_values
            .split_ascii_whitespace()
            .any(|v| v == MULTI_FACTOR || v == PAPE_MULTI_FACTOR || v == "mfa")
    }

    /// Every value of `acr_values_supported`.
    pub const SUPPORTED: [&str; 3] = [SINGLE_FACTOR, MULTI_FACTOR, PAPE_MULTI_FACTOR];
}

/// Whether a sign-in with these `amr` values used more than one factor.
pub fn is_multi_factor(amr: &[String]) -> bool {
    amr.iter().any(|m| m == amr::MULTI_FACTOR)
}

/// The `amr` of a sign-in recorded before they were kept: a password.
pub fn amr_or_password(amr: &[String]) -> Vec<String> {
    if amr.is_empty() {
        vec![amr::PASSWORD.to_string()]
    } else {
        amr.to_vec()
    }
}

/// What a user has enrolled, for their own eyes.
#[derive(Debug, Clone, Serialize)]
pub struct FactorsView {
    pub totp: bool,
    pub recovery_codes_left: usize,
    pub passkeys: Vec<PasskeyView>,
}

/// A registered passkey, without its key material.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&PasskeyRecord> for PasskeyView {
    fn from(p: &PasskeyRecord) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A TOTP secret shown for enrolment, until confirmed with a first code.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// Names the enrolment in the confirming call.
    pub enrolment_token: String,
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/…` (the Key Uri Format authenticator apps read).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
    pub expires_in: i64,
}

/// A WebAuthn ceremony started: the options for `navigator.credentials.create()`/`get()`
/// and the token that names it in the finishing call.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub token: String,
    /// `{"publicKey": …}` as the browser API takes it (base64url for binary fields).
    pub options: serde_json::Value,
    pub expires_in: i64,
}

/// A sign-in whose password was right, waiting for its second factor.
#[derive(Debug, Clone)]
pub struct SecondFactorChallenge {
    pub token: String,
    /// What the user may answer with: `totp`, `recovery_code`, `webauthn`.
    pub methods: Vec<&'static str>,
    /// With passkeys: the assertion options.
    pub webauthn: Option<serde_json::Value>,
    pub expires_in: i64,
}

/// What [`Mfa::after_password`] decided.
#[derive(Debug, Clone)]
pub enum AfterPassword {
    /// Signed in with these `amr` values.
    SignedIn(Vec<String>),
    /// A second factor is needed.
    SecondFactor(SecondFactorChallenge),
    /// The policy requires a factor this user does not have: they enrol one now (TOTP),
    /// and confirming it with its first code, given to [`Mfa::complete`], completes the sign-in.
    MustEnrol(TotpEnrolment),
}

/// A second step answered: the user, how they signed in (RFC 8176 `amr`), and the recovery
/// codes of a factor enrolled during the sign-in (shown once; usually empty).
#[derive(Debug, Clone)]
pub struct Completed {
    pub user_id: String,
    pub amr: Vec<String>,
    pub recovery_codes: Vec<String>,
    /// The upstream provider the first factor came from, if any.
    pub idp: Option<String>,
}

/// An answer to a second-factor challenge.
#[derive(Debug, Clone)]
pub enum SecondFactorAnswer {
    /// A TOTP code or a recovery code (whichever it turns out to be).
    Code(String),
    /// A `PublicKeyCredential` (assertion) as JSON.
    Passkey(serde_json::Value),
}

/// [`SecondFactorAnswer`] with its assertion parsed.
enum Answer {
    Code(String),
    Passkey(PublicKeyCredential),
}

/// Proof of the account for removing a factor: the password, or a current second factor.
#[derive(Debug, Clone, Default)]
pub struct Proof {
    pub password: Option<String>,
    /// A TOTP or recovery code.
    pub code: Option<String>,
}

/// What [`Mfa`] is built from.
pub struct MfaParts {
    pub store: Store,
    pub sealer: Arc<Sealer>,
    pub passwords: Arc<PasswordHasher>,
    /// The per-account sign-in limit, which proofs of the account count against.
    pub limits: Arc<super::limiter::LoginLimits>,
    pub audit: Audit,
    pub mailer: Mailer,
    pub policy: MfaPolicy,
    /// The public URL: its host is the WebAuthn relying party id, its origin the one
    /// passkeys are bound to.
    pub public_url: String,
    /// Shown in authenticator apps and passkey prompts.
    pub product_name: String,
}

/// Second factors and passkeys. Cheap to clone.
#[derive(Clone)]
pub struct Mfa {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sealer: Arc<Sealer>,
    passwords: Arc<PasswordHasher>,
    limits: Arc<super::limiter::LoginLimits>,
    audit: Audit,
    mailer: Mailer,
    policy: MfaPolicy,
    webauthn: Option<Webauthn>,
    product_name: String,
    public_url: String,
}

/// The relying party for `public_url`, or `None` (with the reason logged) when passkeys
/// cannot work there: WebAuthn needs a domain name, and browsers refuse IP addresses.
fn relying_party(public_url: &str, product_name: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let Some(url::Host::Domain(domain)) = url.host() else {
        tracing::info!(
            public_url,
            "passkeys are off: WebAuthn needs a domain name in the public URL, not an IP address"
        );
        return None;
    };
    let domain = domain.to_string();
    // A development URL on `localhost` (or `*.localhost`, which browsers resolve to the
    // loopback) is reached on whatever port the developer runs; a real domain is exact.
    let local = domain == "localhost" || domain.ends_with(".localhost");
    let builder =
        WebauthnBuilder::new(&domain, &url).map(|b| b.rp_name(product_name).allow_any_port(local));
    match builder.and_then(|b| b.build()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, public_url, "passkeys are off: the public URL is not a WebAuthn origin");
            None
        }
    }
}

fn passkey_error(e: WebauthnError) -> ServiceError {
    ServiceError::PasskeyRefused(e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| ServiceError::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// The browser's credential, parsed: a shape error is the caller's.
fn credential<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        ServiceError::PasskeyRefused(format!("the credential is not a WebAuthn response: {e}"))
    })
}

/// The code answers `factors` allow: `totp`, `recovery_code`.
fn code_methods(factors: &FactorsRecord) -> Vec<&'static str> {
    let mut methods = Vec::new();
    if factors.totp.is_some() {
        methods.push("totp");
    }
    if !factors.recovery_codes.is_empty() {
        methods.push("recovery_code");
    }
    methods
}

fn too_many_passkeys() -> ServiceError {
    ServiceError::Forbidden(
        "too_many_passkeys",
        format!("at most {MAX_PASSKEYS} passkeys per account"),
    )
}

/// Why a registered passkey is not kept (decided in the writing transaction).
enum Refusal {
    Duplicate,
    TooMany,
    Unreadable,
}

/// A passkey name as given, trimmed: 1 to [`MAX_PASSKEY_NAME`] characters.
fn passkey_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_PASSKEY_NAME {
        return Err(crate::domain::Invalid::new(
            "invalid_passkey_name",
            "name",
            format!("a passkey name has 1 to {MAX_PASSKEY_NAME} characters"),
        )
        .into());
    }
    Ok(name.to_string())
}

/// Formats a recovery code for reading: two groups of five.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    use rand::Rng;
    let mut rng = rand::rng();
    let chars: String = (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A fresh set of [`RECOVERY_CODES`] codes (to show once) and their digests (to store).
fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let digests = codes.iter().map(|c| recovery_digest(c)).collect();
    (codes, digests)
}

/// What is compared of a recovery code: lower case, no separators or spaces.
fn recovery_digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crate::store::codes::hex(&opaque::digest(&normal))
}

/// Takes the recovery code `code` out of `factors` if it is one of them.
fn spend_recovery_code(factors: &mut FactorsRecord, code: &str) -> bool {
    let digest = recovery_digest(code);
    let found = factors
        .recovery_codes
        .iter()
        .position(|c| bool::from(c.as_bytes().ct_eq(digest.as_bytes())));
    match found {
        Some(i) => {
            factors.recovery_codes.remove(i);
            true
        }
        None => false,
    }
}

fn totp_for(secret: Vec<u8>, issuer: &str, account: &str) -> Result<totp_rs::Totp> {
    // The Key Uri Format forbids ':' in both labels.
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| ServiceError::Internal(format!("TOTP parameters: {e}")))
}

/// The time step a TOTP code is valid for (±1 step, RFC 6238 §5.2), if any after `last_step`.
fn totp_step(totp: &totp_rs::Totp, code: &str, now: i64, last_step: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now.max(0) as u64;
    let current = now / 30;
    (current.saturating_sub(1)..=current + 1)
        .filter(|step| *step > last_step)
        .find(|step| {
            let expected = totp.generate(step * 30).to_string();
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
}

impl Mfa {
    pub fn new(parts: MfaParts) -> Self {
        let webauthn = if parts.policy == MfaPolicy::Off {
            None
        } else {
            relying_party(&parts.public_url, &parts.product_name)
        };
        Self {
            inner: Arc::new(Inner {
                store: parts.store,
                sealer: parts.sealer,
                passwords: parts.passwords,
                limits: parts.limits,
                audit: parts.audit,
                mailer: parts.mailer,
                policy: parts.policy,
                webauthn,
                product_name: parts.product_name,
                public_url: parts.public_url,
            }),
        }
    }

    pub fn policy(&self) -> MfaPolicy {
        self.inner.policy
    }

    /// The second factors this server offers: `totp`, `recovery_code`, and `webauthn` when
    /// passkeys work here; none when the policy is off.
    pub fn methods(&self) -> Vec<&'static str> {
        match self.inner.policy {
            MfaPolicy::Off => Vec::new(),
            _ if self.passkeys_available() => vec!["totp", "recovery_code", "webauthn"],
            _ => vec!["totp", "recovery_code"],
        }
    }

    /// Whether passkeys work on this server (a domain-name public URL, MFA not off).
    pub fn passkeys_available(&self) -> bool {
        self.inner.webauthn.is_some()
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now(&self) -> i64 {
        self.store().clock().now()
    }

    fn enabled(&self) -> Result<()> {
        if self.inner.policy == MfaPolicy::Off {
            return Err(ServiceError::Forbidden(
                "mfa_disabled",
                "second factors are switched off on this server".into(),
            ));
        }
        Ok(())
    }

    fn webauthn(&self) -> Result<&Webauthn> {
        self.enabled()?;
        self.inner.webauthn.as_ref().ok_or(ServiceError::Forbidden(
            "passkeys_unavailable",
            "passkeys need the server's public URL to be a domain name (https, or http://localhost)"
                .into(),
        ))
    }

    /// Whether the policy demands a second factor of `user`.
    pub fn required_for(&self, user: &UserView) -> bool {
        match self.inner.policy {
            MfaPolicy::Off | MfaPolicy::Optional => false,
            MfaPolicy::RequiredForAdmins => user.has_role(Role::Admin),
            MfaPolicy::Required => true,
        }
    }

    /// One point read, inline like a token check's (see `Store::point_read`): it is on every
    /// sign-in's path.
    async fn factors(&self, user_id: &str) -> Result<FactorsRecord> {
        Ok(self.store().point_read(|s| s.factors(user_id))?)
    }

    /// A live challenge, left in place (a point read, inline).
    pub(super) fn peek(&self, token: &str) -> Result<Option<ChallengeRecord>> {
        let hash = opaque::digest(token);
        Ok(self.store().point_read(|s| s.peek_challenge(hash))?)
    }

    /// Whether `user_id` has a second factor (the compatible APIs, which have no second
    /// step, refuse such users).
    pub async fn has_factor(&self, user_id: &str) -> Result<bool> {
        if self.inner.policy == MfaPolicy::Off {
            return Ok(false);
        }
        Ok(self.factors(user_id).await?.has_factor())
    }

    /// What `user_id` has enrolled.
    pub async fn status(&self, user_id: &str) -> Result<FactorsView> {
        let f = self.factors(user_id).await?;
        Ok(FactorsView {
            totp: f.totp.is_some(),
            recovery_codes_left: f.recovery_codes.len(),
            passkeys: f.passkeys.iter().map(PasskeyView::from).collect(),
        })
    }

    pub(super) async fn put_challenge(&self, record: ChallengeRecord) -> Result<String> {
        let token = opaque::random_token(32);
        let hash = opaque::digest(&token);
        self.store()
            .run(move |s| s.put_challenge(hash, &record))
            .await?;
        Ok(token)
    }

    pub(super) async fn take_challenge(&self, token: &str) -> Result<Option<ChallengeRecord>> {
        let hash = opaque::digest(token);
        Ok(self.store().run(move |s| s.take_challenge(hash)).await?)
    }

    // ---- TOTP -------------------------------------------------------------------------

    /// Starts TOTP enrolment: a new secret, shown once, kept until a first code confirms it.
    pub async fn begin_totp(&self, user: &UserView) -> Result<TotpEnrolment> {
        self.start_totp(user, None, None).await
    }

    /// A TOTP enrolment; `sign_in` is the `amr` of a sign-in it completes (through the
    /// upstream `idp`, if any).
    async fn start_totp(
        &self,
        user: &UserView,
        sign_in: Option<Vec<String>>,
        idp: Option<String>,
    ) -> Result<TotpEnrolment> {
        self.enabled()?;
        if self.factors(&user.id).await?.totp.is_some() {
            return Err(ServiceError::Conflict(
                "totp_already_enrolled",
                "an authenticator app is already enrolled; remove it first".into(),
            ));
        }
        let mut secret = vec![0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        let (secret_b32, uri, svg) = self.present_totp(secret, &user.username)?;
        let sealed = self
            .inner
            .sealer
            .seal(&secret_b32, &format!("totp:{}", user.id))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let token = self
            .put_challenge(ChallengeRecord {
                expires_at: self.now() + ENROLMENT_TTL,
                user_id: Some(user.id.clone()),
                attempts: 0,
                step: ChallengeStep::TotpEnrolment {
                    secret: sealed,
                    sign_in,
                    idp,
                },
            })
            .await?;
        Ok(TotpEnrolment {
            enrolment_token: token,
            secret: secret_b32,
            otpauth_uri: uri,
            qr_svg: svg,
            expires_in: ENROLMENT_TTL,
        })
    }

    /// A TOTP secret as the user sees it: base32, the `otpauth://` URI and its QR code (SVG).
    fn present_totp(&self, secret: Vec<u8>, username: &str) -> Result<(String, String, String)> {
        let totp = totp_for(secret, &self.inner.product_name, username)?;
        let uri = totp
            .to_url()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let qr = qrcode::QrCode::new(uri.as_bytes())
            .map_err(|e| ServiceError::Internal(format!("QR code: {e}")))?;
        let svg = qr
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build();
        Ok((totp.secret().to_base32(), uri, svg))
    }

    /// The open TOTP enrolment of a sign-in, shown again after a wrong first code; `None`
    /// once it has expired.
    pub async fn sign_in_enrolment(&self, token: &str) -> Result<Option<TotpEnrolment>> {
        self.shown_enrolment(token, |_, sign_in| sign_in).await
    }

    /// The open TOTP enrolment `user_id` started while signed in, shown again after a wrong
    /// first code.
    pub async fn enrolment(&self, token: &str, user_id: &str) -> Result<Option<TotpEnrolment>> {
        self.shown_enrolment(token, |owner, sign_in| owner == user_id && !sign_in)
            .await
    }

    /// The enrolment `token` names, if `wanted(owner, part of a sign-in)`.
    async fn shown_enrolment(
        &self,
        token: &str,
        wanted: impl Fn(&str, bool) -> bool,
    ) -> Result<Option<TotpEnrolment>> {
        let Some(ChallengeRecord {
            user_id: Some(user_id),
            step: ChallengeStep::TotpEnrolment {
                secret, sign_in, ..
            },
            expires_at,
            ..
        }) = self.peek(token)?
        else {
            return Ok(None);
        };
        if !wanted(&user_id, sign_in.is_some()) {
            return Ok(None);
        }
        let username = self
            .store()
            .point_read(|s| s.get_user(&user_id))?
            .map(|u| u.username)
            .unwrap_or_default();
        let totp = self.open_totp(&user_id, &secret)?;
        let (secret_b32, uri, svg) = self.present_totp(totp.secret().to_vec(), &username)?;
        Ok(Some(TotpEnrolment {
            enrolment_token: token.to_string(),
            secret: secret_b32,
            otpauth_uri: uri,
            qr_svg: svg,
            expires_in: (expires_at - self.now()).max(0),
        }))
    }

    fn open_totp(&self, user_id: &str, sealed: &str) -> Result<totp_rs::Totp> {
        let b32 = self
            .inner
            .sealer
            .open(sealed, &format!("totp:{user_id}"))
            .map_err(|e| ServiceError::Internal(format!("TOTP secret: {e}")))?;
        let secret = totp_rs::Secret::try_from_base32(&b32)
            .map_err(|e| ServiceError::Internal(format!("TOTP secret: {e}")))?;
        totp_for(secret.as_ref().to_vec(), &self.inner.product_name, "user")
    }

    /// Confirms TOTP enrolment with a first valid code. Returns new recovery codes when the
    /// user had none (shown once).
    pub async fn confirm_totp(
        &self,
        user: &UserView,
        enrolment_token: &str,
        code: &str,
        origin: &Origin,
    ) -> Result<Option<Vec<String>>> {
        self.enabled()?;
        let sealed = match self.peek(enrolment_token)? {
            Some(ChallengeRecord {
                user_id: Some(owner),
                step:
                    ChallengeStep::TotpEnrolment {
                        secret,
                        sign_in: None,
                        ..
                    },
                ..
            }) if owner == user.id => secret,
            _ => return Err(ServiceError::MfaChallengeInvalid),
        };
        self.enrol_totp(&user.id, enrolment_token, sealed, code, origin)
            .await
    }

    /// Confirms the TOTP enrolment of a sign-in under a policy that requires a factor
    /// ([`AfterPassword::MustEnrol`]) with the app's first code: the sign-in's `amr` grown by
    /// the factor, and the new recovery codes. A wrong code leaves the enrolment open for
    /// another try until it expires.
    async fn finish_sign_in_enrolment(
        &self,
        enrolment_token: &str,
        user_id: &str,
        sealed: String,
        mut amr: Vec<String>,
        code: &str,
        origin: &Origin,
    ) -> Result<Completed> {
        let recovery_codes = match self
            .enrol_totp(user_id, enrolment_token, sealed, code, origin)
            .await
        {
            Ok(codes) => codes.unwrap_or_default(),
            // A wrong first code is a wrong answer like any other second step's.
            Err(ServiceError::InvalidCode) => return Err(ServiceError::SecondFactorInvalid),
            Err(e) => return Err(e),
        };
        amr.extend([
            amr::ONE_TIME_PASSWORD.to_string(),
            amr::MULTI_FACTOR.to_string(),
        ]);
        Ok(Completed {
            user_id: user_id.to_string(),
            amr,
            recovery_codes,
            idp: None,
        })
    }

    /// Stores the TOTP secret `sealed` of the enrolment `enrolment_token` once `code` proves
    /// the user's app has it; new recovery codes when the user had none.
    async fn enrol_totp(
        &self,
        user_id: &str,
        enrolment_token: &str,
        sealed: String,
        code: &str,
        origin: &Origin,
    ) -> Result<Option<Vec<String>>> {
        let totp = self.open_totp(user_id, &sealed)?;
        let Some(step) = totp_step(&totp, code, self.now(), 0) else {
            return Err(ServiceError::InvalidCode);
        };
        if self.take_challenge(enrolment_token).await?.is_none() {
            return Err(ServiceError::MfaChallengeInvalid);
        }
        let (codes, digests) = new_recovery_codes();
        let now = self.now();
        let id = user_id.to_string();
        let outcome = self
            .store()
            .run(move |s| {
                s.update_factors(&id, move |f| {
                    if f.totp.is_some() {
                        return Err(());
                    }
                    f.totp = Some(TotpRecord {
                        secret: sealed,
                        created_at: now,
                        last_step: step,
                    });
                    let fresh = f.recovery_codes.is_empty();
                    if fresh {
                        f.recovery_codes = digests;
                    }
                    Ok(fresh)
                })
            })
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        let fresh = outcome.map_err(|()| {
            ServiceError::Conflict(
                "totp_already_enrolled",
                "an authenticator app is already enrolled".into(),
            )
        })?;
        self.record(EventKind::TotpEnrolled, origin, user_id).await;
        if fresh {
            self.record(EventKind::RecoveryCodesGenerated, origin, user_id)
                .await;
        }
        Ok(fresh.then_some(codes))
    }

    async fn record(&self, kind: EventKind, origin: &Origin, user_id: &str) {
        self.inner
            .audit
            .record(Event::by_user(kind, origin, user_id))
            .await;
    }

    /// Checks a proof of the account (the password, or a TOTP or recovery code, which is
    /// spent). Failures count against the account's sign-in limit like a wrong password, so
    /// a stolen access token cannot be used to guess the password here.
    pub async fn prove(&self, user_id: &str, proof: &Proof) -> Result<()> {
        let key = format!("id:{user_id}");
        self.inner
            .limits
            .account
            .check(&key)
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        let proven = self.proven(user_id, proof).await?;
        if !proven {
            self.inner.limits.account.record_failure(&key);
            return Err(ServiceError::WrongPassword);
        }
        Ok(())
    }

    /// Whether `proof` proves the account (see [`Mfa::prove`]).
    async fn proven(&self, user_id: &str, proof: &Proof) -> Result<bool> {
        if let Some(password) = proof.password.as_deref().filter(|p| !p.is_empty()) {
            let hash = self
                .store()
                .point_read(|s| s.get_user(user_id))?
                .map(|u| u.password_hash);
            return self.inner.passwords.verify(hash.as_deref(), password).await;
        }
        if let Some(code) = proof.code.as_deref().filter(|c| !c.is_empty()) {
            return Ok(self.spend_code(user_id, code).await?.is_some());
        }
        Ok(false)
    }

    /// Spends a TOTP code (its step) or a recovery code of `user_id`: the method it was, or
    /// `None` when it is neither.
    async fn spend_code(&self, user_id: &str, code: &str) -> Result<Option<&'static str>> {
        let factors = self.factors(user_id).await?;
        let totp = match &factors.totp {
            Some(t) => Some(self.open_totp(user_id, &t.secret)?),
            None => None,
        };
        let (now, id, code) = (self.now(), user_id.to_string(), code.to_string());
        let used = self
            .store()
            .run(move |s| {
                s.update_factors(&id, move |f| {
                    if let (Some(totp), Some(record)) = (&totp, f.totp.as_mut())
                        && let Some(step) = totp_step(totp, &code, now, record.last_step)
                    {
                        record.last_step = step;
                        return Ok("totp");
                    }
                    if spend_recovery_code(f, &code) {
                        return Ok("recovery_code");
                    }
                    Err(())
                })
            })
            .await?;
        Ok(used.and_then(|r| r.ok()))
    }

    /// Removes the TOTP authenticator, with a proof of the account.
    pub async fn disable_totp(
        &self,
        user: &UserView,
        proof: &Proof,
        origin: &Origin,
    ) -> Result<()> {
        self.prove(&user.id, proof).await?;
        let id = user.id.clone();
        let removed = self
            .store()
            .run(move |s| {
                s.update_factors(&id, |f| {
                    let had = f.totp.take().is_some();
                    if !f.has_factor() {
                        // Recovery codes are a way back to a factor; with none left they go.
                        f.recovery_codes.clear();
                    }
                    if had { Ok(()) } else { Err(()) }
                })
            })
            .await?;
        match removed {
            Some(Ok(())) => {
                self.record(EventKind::TotpRemoved, origin, &user.id).await;
                Ok(())
            }
            _ => Err(ServiceError::NotFound("authenticator app")),
        }
    }

    /// New recovery codes (the old ones stop working), with a proof of the account. Only
    /// for users with a second factor.
    pub async fn regenerate_recovery_codes(
        &self,
        user: &UserView,
        proof: &Proof,
        origin: &Origin,
    ) -> Result<Vec<String>> {
        self.enabled()?;
        self.prove(&user.id, proof).await?;
        let (codes, digests) = new_recovery_codes();
        let id = user.id.clone();
        let done = self
            .store()
            .run(move |s| {
                s.update_factors(&id, move |f| {
                    if !f.has_factor() {
                        return Err(());
                    }
                    f.recovery_codes = digests;
                    Ok(())
                })
            })
            .await?;
        match done {
            Some(Ok(())) => {
                self.record(EventKind::RecoveryCodesGenerated, origin, &user.id)
                    .await;
                Ok(codes)
            }
            _ => Err(ServiceError::Forbidden(
                "no_second_factor",
                "recovery codes come with a second factor; enrol one first".into(),
            )),
        }
    }

    // ---- Passkeys -----------------------------------------------------------------------

    fn user_handle(user_id: &str) -> Result<Uuid> {
        Uuid::parse_str(user_id).map_err(|_| {
            ServiceError::Forbidden(
                "passkeys_unavailable",
                "this account's id cannot be a WebAuthn user handle".into(),
            )
        })
    }

    /// Starts registering a passkey named `name`. The credential is asked to be discoverable
    /// (resident) so it also works for usernameless sign-in.
    pub async fn begin_passkey_registration(
        &self,
        user: &UserView,
        name: &str,
    ) -> Result<Ceremony> {
        let webauthn = self.webauthn()?;
        let name = passkey_name(name)?;
        let factors = self.factors(&user.id).await?;
        if factors.passkeys.len() >= MAX_PASSKEYS {
            return Err(too_many_passkeys());
        }
        let mut existing = Vec::new();
        for p in &factors.passkeys {
            existing.push(from_json::<Passkey>(&p.credential)?.cred_id().clone());
        }
        let (ccr, state): (CreationChallengeResponse, PasskeyRegistration) = webauthn
            .start_passkey_registration(
                Self::user_handle(&user.id)?,
                &user.username,
                &user.shown_name(),
                Some(existing),
            )
            .map_err(passkey_error)?;
        // webauthn-rs asks for a non-resident key; a discoverable one is what makes
        // usernameless sign-in and conditional UI work. `preferred` lets authenticators that
        // cannot store one still register (as a second factor).
        let mut options = to_json(&ccr)?;
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(|v| v.as_object_mut())
        {
            sel.insert("residentKey".into(), "preferred".into());
        }
        let token = self
            .put_challenge(ChallengeRecord {
                expires_at: self.now() + ENROLMENT_TTL,
                user_id: Some(user.id.clone()),
                attempts: 0,
                step: ChallengeStep::PasskeyRegistration {
                    name,
                    state: to_json(&state)?,
                },
            })
            .await?;
        Ok(Ceremony {
            token,
            options,
            expires_in: ENROLMENT_TTL,
        })
    }

    /// Finishes registering a passkey with the browser's attestation response. Returns the
    /// passkey and, when it is the user's first factor, their recovery codes.
    pub async fn finish_passkey_registration(
        &self,
        user: &UserView,
        token: &str,
        response: serde_json::Value,
        origin: &Origin,
    ) -> Result<(PasskeyView, Option<Vec<String>>)> {
        let webauthn = self.webauthn()?;
        let response: RegisterPublicKeyCredential = credential(response)?;
        let (name, state) = match self.take_challenge(token).await? {
            Some(ChallengeRecord {
                user_id: Some(owner),
                step: ChallengeStep::PasskeyRegistration { name, state },
                ..
            }) if owner == user.id => (name, state),
            _ => return Err(ServiceError::MfaChallengeInvalid),
        };
        let state: PasskeyRegistration = from_json(&state)?;
        let passkey = webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(passkey_error)?;
        let record = PasskeyRecord {
            id: opaque::random_token(9),
            name,
            credential: to_json(&passkey)?,
            created_at: self.now(),
            last_used_at: None,
        };
        let view = PasskeyView::from(&record);
        let (codes, digests) = new_recovery_codes();
        let id = user.id.clone();
        let cred_id = passkey.cred_id().clone();
        let outcome = self
            .store()
            .run(move |s| {
                s.update_factors(&id, move |f| {
                    for p in &f.passkeys {
                        let known: Passkey = serde_json::from_value(p.credential.clone())
                            .map_err(|_| Refusal::Unreadable)?;
                        if *known.cred_id() == cred_id {
                            return Err(Refusal::Duplicate);
                        }
                    }
                    if f.passkeys.len() >= MAX_PASSKEYS {
                        return Err(Refusal::TooMany);
                    }
                    let fresh = f.recovery_codes.is_empty();
                    if fresh {
                        f.recovery_codes = digests;
                    }
                    f.passkeys.push(record);
                    Ok(fresh)
                })
            })
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        let fresh = outcome.map_err(|why| match why {
            Refusal::Duplicate => ServiceError::Conflict(
                "passkey_already_registered",
                "this passkey is already registered".into(),
            ),
            Refusal::TooMany => too_many_passkeys(),
            Refusal::Unreadable => ServiceError::Internal("a stored passkey is unreadable".into()),
        })?;
        self.inner
            .audit
            .record(Event::by_user(EventKind::PasskeyAdded, origin, &user.id).detail(&view.name))
            .await;
        if fresh {
            self.record(EventKind::RecoveryCodesGenerated, origin, &user.id)
                .await;
        }
        Ok((view, fresh.then_some(codes)))
    }

    /// Renames one of the user's passkeys.
    pub async fn rename_passkey(
        &self,
        user: &UserView,
        passkey_id: &str,
        name: &str,
        origin: &Origin,
    ) -> Result<PasskeyView> {
        let name = passkey_name(name)?;
        let (id, pid) = (user.id.clone(), passkey_id.to_string());
        let renamed = self
            .store()
            .run(move |s| {
                s.update_factors(&id, move |f| {
                    let p = f.passkeys.iter_mut().find(|p| p.id == pid).ok_or(())?;
                    p.name = name;
                    Ok::<_, ()>(PasskeyView::from(&*p))
                })
            })
            .await?;
        match renamed {
            Some(Ok(view)) => {
                self.inner
                    .audit
                    .record(
                        Event::by_user(EventKind::PasskeyRenamed, origin, &user.id)
                            .detail(&view.name),
                    )
                    .await;
                Ok(view)
            }
            _ => Err(ServiceError::NotFound("passkey")),
        }
    }

    /// Removes one of the user's passkeys, with a proof of the account.
    pub async fn remove_passkey(
        &self,
        user: &UserView,
        passkey_id: &str,
        proof: &Proof,
        origin: &Origin,
    ) -> Result<()> {
        self.prove(&user.id, proof).await?;
        let (id, pid) = (user.id.clone(), passkey_id.to_string());
        let removed = self
            .store()
            .run(move |s| {
                s.update_factors(&id, move |f| {
                    let i = f.passkeys.iter().position(|p| p.id == pid).ok_or(())?;
                    let gone = f.passkeys.remove(i);
                    if !f.has_factor() {
                        f.recovery_codes.clear();
                    }
                    Ok::<_, ()>(gone.name)
                })
            })
            .await?;
        match removed {
            Some(Ok(name)) => {
                self.inner
                    .audit
                    .record(
                        Event::by_user(EventKind::PasskeyRemoved, origin, &user.id).detail(&name),
                    )
                    .await;
                Ok(())
            }
            _ => Err(ServiceError::NotFound("passkey")),
        }
    }

    /// An admin removes every second factor of `user_id` (a user who lost them all).
    pub async fn reset(&self, user_id: &str, admin_id: &str, origin: &Origin) -> Result<()> {
        let id = user_id.to_string();
        let done = self
            .store()
            .run(move |s| {
                s.update_factors(&id, |f| {
                    *f = FactorsRecord::default();
                    Ok::<_, ()>(())
                })
            })
            .await?;
        if done.is_none() {
            return Err(ServiceError::NotFound("user"));
        }
        self.inner
            .audit
            .record(Event::by_admin(
                EventKind::SecondFactorsReset,
                origin,
                admin_id,
                user_id,
            ))
            .await;
        Ok(())
    }

    // ---- Sign-in ------------------------------------------------------------------------

    /// Decides what follows a correct password: signed in, a second-factor challenge, or
    /// enrolment first. `demand_mfa` is a relying party's demand (`acr_values`,
    /// `require_mfa`) on top of the server policy.
    pub async fn after_password(
        &self,
        user: &UserView,
        demand_mfa: bool,
        origin: &Origin,
    ) -> Result<AfterPassword> {
        let password = vec![amr::PASSWORD.to_string()];
        self.after_first_factor(user, password, None, demand_mfa, origin)
            .await
    }

    /// [`Mfa::after_password`] for any first factor (`first`: its `amr`; `idp`: the upstream
    /// provider it came from). A first factor that is already multi-factor (a trusted
    /// upstream that vouched for its own second factor) needs no second step here.
    pub async fn after_first_factor(
        &self,
        user: &UserView,
        first: Vec<String>,
        idp: Option<String>,
        demand_mfa: bool,
        origin: &Origin,
    ) -> Result<AfterPassword> {
        if self.inner.policy == MfaPolicy::Off || is_multi_factor(&first) {
            return Ok(AfterPassword::SignedIn(first));
        }
        let factors = self.factors(&user.id).await?;
        if factors.has_factor() {
            let challenge = self
                .second_factor_challenge(user, &factors, first, idp)
                .await?;
            self.record(EventKind::SecondFactorRequired, origin, &user.id)
                .await;
            return Ok(AfterPassword::SecondFactor(challenge));
        }
        if demand_mfa || self.required_for(user) {
            let enrolment = self.start_totp(user, Some(first), idp).await?;
            return Ok(AfterPassword::MustEnrol(enrolment));
        }
        Ok(AfterPassword::SignedIn(first))
    }

    /// A second-factor challenge for `user` (also used to step up an existing session).
    pub async fn second_factor_challenge(
        &self,
        user: &UserView,
        factors: &FactorsRecord,
        amr_so_far: Vec<String>,
        idp: Option<String>,
    ) -> Result<SecondFactorChallenge> {
        let mut methods = code_methods(factors);
        let (mut webauthn_options, mut passkey_state) = (None, None);
        if let (Some(webauthn), false) = (&self.inner.webauthn, factors.passkeys.is_empty()) {
            let mut keys = Vec::new();
            for p in &factors.passkeys {
                keys.push(from_json::<Passkey>(&p.credential)?);
            }
            let (rcr, state): (RequestChallengeResponse, PasskeyAuthentication) = webauthn
                .start_passkey_authentication(&keys)
                .map_err(passkey_error)?;
            webauthn_options = Some(to_json(&rcr)?);
            passkey_state = Some(to_json(&state)?);
            methods.push("webauthn");
        }
        let token = self
            .put_challenge(ChallengeRecord {
                expires_at: self.now() + SECOND_FACTOR_TTL,
                user_id: Some(user.id.clone()),
                attempts: 0,
                step: ChallengeStep::SecondFactor {
                    amr: amr_so_far,
                    passkey_state,
                    idp,
                },
            })
            .await?;
        Ok(SecondFactorChallenge {
            token,
            methods,
            webauthn: webauthn_options,
            expires_in: SECOND_FACTOR_TTL,
        })
    }

    /// A second-factor challenge for a signed-in `user` whose session lacks one (step-up);
    /// `None` when they have no factor to give.
    pub async fn step_up_challenge(
        &self,
        user: &UserView,
        amr_so_far: Vec<String>,
    ) -> Result<Option<SecondFactorChallenge>> {
        let factors = self.factors(&user.id).await?;
        if !factors.has_factor() {
            return Ok(None);
        }
        Ok(Some(
            self.second_factor_challenge(user, &factors, amr_so_far, None)
                .await?,
        ))
    }

    /// Whether `token` is a live unlock link (for the page the link opens).
    pub async fn unlock_link_live(&self, token: &str) -> Result<bool> {
        Ok(self.unlock_owner(token)?.is_some())
    }

    /// The account a live unlock link is for.
    fn unlock_owner(&self, token: &str) -> Result<Option<String>> {
        Ok(self.peek(token)?.and_then(|c| match c.step {
            ChallengeStep::Unlock => c.user_id,
            _ => None,
        }))
    }

    /// A second-factor challenge still live after a wrong answer, as it can be offered again
    /// (codes only: a passkey ceremony's options are not kept), with the user it is for.
    /// `None` once it has expired or had its last answer.
    pub async fn retry(&self, token: &str) -> Result<Option<(String, SecondFactorChallenge)>> {
        let Some(ChallengeRecord {
            user_id: Some(user_id),
            step: ChallengeStep::SecondFactor { .. },
            expires_at,
            ..
        }) = self.peek(token)?
        else {
            return Ok(None);
        };
        let factors = self.factors(&user_id).await?;
        let challenge = SecondFactorChallenge {
            token: token.to_string(),
            methods: code_methods(&factors),
            webauthn: None,
            expires_in: (expires_at - self.now()).max(0),
        };
        Ok(Some((user_id, challenge)))
    }

    /// Answers the second step of a sign-in: a second-factor challenge, or the enrolment a
    /// required-MFA sign-in started ([`AfterPassword::MustEnrol`], answered with the app's
    /// first code). A wrong answer leaves the challenge usable, up to
    /// [`SECOND_FACTOR_ATTEMPTS`] answers.
    pub async fn complete(
        &self,
        token: &str,
        answer: SecondFactorAnswer,
        origin: &Origin,
    ) -> Result<Completed> {
        self.enabled()?;
        if let Some(ChallengeRecord {
            user_id: Some(owner),
            step:
                ChallengeStep::TotpEnrolment {
                    secret,
                    sign_in: Some(amr),
                    idp,
                },
            ..
        }) = self.peek(token)?
        {
            let SecondFactorAnswer::Code(code) = answer else {
                return Err(ServiceError::SecondFactorInvalid);
            };
            let done = self
                .finish_sign_in_enrolment(token, &owner, secret, amr, &code, origin)
                .await?;
            return Ok(Completed { idp, ..done });
        }
        // A response that is not a WebAuthn assertion at all is refused before the challenge
        // is taken, so it costs the sign-in nothing (like a shape error anywhere).
        let answer = match answer {
            SecondFactorAnswer::Passkey(response) => {
                Answer::Passkey(credential::<PublicKeyCredential>(response)?)
            }
            SecondFactorAnswer::Code(code) => Answer::Code(code),
        };
        let Some(mut challenge) = self.take_challenge(token).await? else {
            return Err(ServiceError::MfaChallengeInvalid);
        };
        let (
            Some(user_id),
            ChallengeStep::SecondFactor {
                amr,
                passkey_state,
                idp,
            },
        ) = (challenge.user_id.clone(), challenge.step.clone())
        else {
            return Err(ServiceError::MfaChallengeInvalid);
        };
        let outcome = match (answer, passkey_state, &self.inner.webauthn) {
            (Answer::Code(code), _, _) => self
                .spend_code(&user_id, &code)
                .await?
                .map(|m| (m, amr::ONE_TIME_PASSWORD)),
            (Answer::Passkey(response), Some(state), Some(webauthn)) => {
                let state: PasskeyAuthentication = from_json(&state)?;
                match webauthn.finish_passkey_authentication(&response, &state) {
                    Ok(result) => {
                        let kind = self.note_passkey_use(&user_id, &result).await?;
                        Some(("webauthn", kind))
                    }
                    Err(e) => {
                        self.passkey_failed(&user_id, &e, origin).await;
                        None
                    }
                }
            }
            // An assertion where this sign-in offered no passkey: a wrong answer like any other.
            (Answer::Passkey(_), _, _) => None,
        };
        let Some((method, amr_value)) = outcome else {
            self.inner
                .audit
                .record(Event::by_user(
                    EventKind::SecondFactorFailed,
                    origin,
                    &user_id,
                ))
                .await;
            challenge.attempts += 1;
            if challenge.attempts < SECOND_FACTOR_ATTEMPTS {
                let hash = opaque::digest(token);
                self.store()
                    .run(move |s| s.put_challenge(hash, &challenge))
                    .await?;
            }
            return Err(ServiceError::SecondFactorInvalid);
        };
        if method == "recovery_code" {
            self.record(EventKind::RecoveryCodeUsed, origin, &user_id)
                .await;
        }
        let mut amr = amr;
        for m in [amr_value, amr::MULTI_FACTOR] {
            if !amr.iter().any(|a| a == m) {
                amr.push(m.to_string());
            }
        }
        Ok(Completed {
            user_id,
            amr,
            recovery_codes: Vec::new(),
            idp,
        })
    }

    async fn passkey_failed(&self, user_id: &str, e: &WebauthnError, origin: &Origin) {
        if matches!(e, WebauthnError::CredentialPossibleCompromise) {
            tracing::warn!(
                user_id,
                "passkey assertion with a counter that went backwards: refused as a possible clone"
            );
            self.inner
                .audit
                .record(Event::by_user(
                    EventKind::PasskeyPossiblyCloned,
                    origin,
                    user_id,
                ))
                .await;
        }
    }

    /// Moves the used passkey's counter and backup state; returns its `amr` value.
    async fn note_passkey_use(
        &self,
        user_id: &str,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<&'static str> {
        let kind = if result.backup_eligible() {
            amr::SOFTWARE_KEY
        } else {
            amr::HARDWARE_KEY
        };
        let (id, result, now) = (user_id.to_string(), result.clone(), self.now());
        self.store()
            .run(move |s| {
                s.update_factors(&id, move |f| {
                    for p in f.passkeys.iter_mut() {
                        let Ok(mut key) = serde_json::from_value::<Passkey>(p.credential.clone())
                        else {
                            continue;
                        };
                        if key.update_credential(&result).is_some() {
                            if let Ok(v) = serde_json::to_value(&key) {
                                p.credential = v;
                            }
                            p.last_used_at = Some(now);
                        }
                    }
                    Ok::<_, ()>(())
                })
            })
            .await?;
        Ok(kind)
    }

    /// Starts a passwordless, usernameless passkey sign-in (discoverable credentials; also
    /// what conditional UI uses).
    pub async fn begin_passwordless(&self) -> Result<Ceremony> {
        let webauthn = self.webauthn()?;
        let (rcr, state): (RequestChallengeResponse, DiscoverableAuthentication) = webauthn
            .start_discoverable_authentication()
            .map_err(passkey_error)?;
        let token = self
            .put_challenge(ChallengeRecord {
                expires_at: self.now() + PASSWORDLESS_TTL,
                user_id: None,
                attempts: 0,
                step: ChallengeStep::Passwordless {
                    state: to_json(&state)?,
                },
            })
            .await?;
        Ok(Ceremony {
            token,
            options: to_json(&rcr)?,
            expires_in: PASSWORDLESS_TTL,
        })
    }

    /// Finishes a passwordless sign-in: the user the passkey belongs to and the `amr`. Never
    /// subject to the password throttles (an attacker hammering the password field cannot
    /// keep a passkey's owner out).
    pub async fn finish_passwordless(
        &self,
        token: &str,
        response: serde_json::Value,
        origin: &Origin,
    ) -> Result<(String, Vec<String>)> {
        let webauthn = self.webauthn()?;
        let response: PublicKeyCredential = credential(response)?;
        let state = match self.take_challenge(token).await? {
            Some(ChallengeRecord {
                step: ChallengeStep::Passwordless { state },
                ..
            }) => state,
            _ => return Err(ServiceError::MfaChallengeInvalid),
        };
        let state: DiscoverableAuthentication = from_json(&state)?;
        let (handle, cred_id) = webauthn
            .identify_discoverable_authentication(&response)
            .map_err(passkey_error)?;
        let user_id = handle.to_string();
        let factors = self.factors(&user_id).await?;
        let mut found = None;
        for p in &factors.passkeys {
            let key: Passkey = from_json(&p.credential)?;
            if key.cred_id().as_slice() == cred_id {
                found = Some(key);
            }
        }
        let Some(key) = found else {
            return Err(ServiceError::PasskeyRefused(
                "this passkey is not registered here".into(),
            ));
        };
        let result = match webauthn.finish_discoverable_authentication_v2(&response, state, &key) {
            Ok(r) => r,
            Err(e) => {
                self.passkey_failed(&user_id, &e, origin).await;
                return Err(passkey_error(e));
            }
        };
        let kind = self.note_passkey_use(&user_id, &result).await?;
        // User verification is required by the ceremony: the passkey alone is two factors.
        Ok((
            user_id,
            vec![
                kind.to_string(),
                amr::USER_PRESENCE.to_string(),
                amr::MULTI_FACTOR.to_string(),
            ],
        ))
    }

    // ---- Unlock link ----------------------------------------------------------------------

    /// Mails the owner of a throttled account a single-use link that lets them past the
    /// per-account delay ("someone tried to sign in as you").
    pub async fn send_unlock_link(&self, user: &UserView, origin: &Origin) -> Result<()> {
        let token = self
            .put_challenge(ChallengeRecord {
                expires_at: self.now() + UNLOCK_TTL,
                user_id: Some(user.id.clone()),
                attempts: 0,
                step: ChallengeStep::Unlock,
            })
            .await?;
        let link = format!(
            "{}/ui/unlock?token={token}",
            self.inner.public_url.trim_end_matches('/')
        );
        // The owner's language is not known; the one of the request is most often theirs.
        let letters = self.inner.mailer.letters(origin.lang);
        self.inner.mailer.send_in_background(letters.unlock(
            &user.email,
            &user.username,
            &link,
            UNLOCK_TTL / 60,
        ));
        self.inner
            .audit
            .record(Event::by_user(EventKind::LoginThrottled, origin, &user.id))
            .await;
        Ok(())
    }

    /// Whether `token` is a live unlock link of `user_id` (not spent).
    pub async fn unlock_valid(&self, token: &str, user_id: &str) -> Result<bool> {
        Ok(self.unlock_owner(token)?.as_deref() == Some(user_id))
    }

    /// Spends an unlock link after the sign-in it allowed.
    pub async fn spend_unlock(&self, token: &str, origin: &Origin) -> Result<()> {
        if let Some(c) = self.take_challenge(token).await?
            && let Some(user_id) = c.user_id
        {
            self.record(EventKind::AccountUnlocked, origin, &user_id)
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_compared_without_case_or_separators_and_spent_once() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        let mut f = FactorsRecord {
            recovery_codes: vec![recovery_digest(&code)],
            ..Default::default()
        };
        let typed = code.to_uppercase().replace('-', " ");
        assert!(spend_recovery_code(&mut f, &typed));
        assert!(!spend_recovery_code(&mut f, &code), "single use");
    }

    #[test]
    fn a_totp_code_is_accepted_within_one_step_and_never_for_a_spent_step() {
        let totp = totp_for(vec![7; 20], "portcullis", "alice").unwrap();
        let now = 1_700_000_000i64;
        let step = now as u64 / 30;
        let code = |s: u64| totp.generate(s * 30).to_string();
        assert_eq!(totp_step(&totp, &code(step), now, 0), Some(step));
        assert_eq!(totp_step(&totp, &code(step - 1), now, 0), Some(step - 1));
        assert_eq!(totp_step(&totp, &code(step + 1), now, 0), Some(step + 1));
        assert_eq!(totp_step(&totp, &code(step - 2), now, 0), None);
        assert_eq!(totp_step(&totp, &code(step), now, step), None, "replay");
        assert_eq!(totp_step(&totp, "12345", now, 0), None);
        assert_eq!(totp_step(&totp, "abcdef", now, 0), None);
    }

    #[test]
    fn acr_follows_amr_and_acr_values_demands() {
        let pwd = vec!["pwd".to_string()];
        let mfa = vec!["pwd".to_string(), "otp".into(), "mfa".into()];
        assert_eq!(acr::of(&pwd), acr::SINGLE_FACTOR);
        assert_eq!(acr::of(&mfa), acr::MULTI_FACTOR);
        assert!(acr::demands_multi_factor("foo urn:portcullis:acr:mfa"));
        assert!(acr::demands_multi_factor(acr::PAPE_MULTI_FACTOR));
        assert!(!acr::demands_multi_factor(acr::SINGLE_FACTOR));
    }
}
