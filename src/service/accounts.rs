//! Registration, login and self-service account changes.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::sessions::KeepSession;
use super::{
    IssuedSession, Principal, Result, ServiceError, Sessions,
    audit::{Event, EventKind, Origin},
    captcha::Captchas,
    codes::{CodePurpose, EmailCodes},
    limiter::AfterFailure,
    limiter::LoginLimits,
    metrics::{LoginOutcome, Metrics},
    mfa::{AfterPassword, SecondFactorAnswer, SecondFactorChallenge, TotpEnrolment},
    passwords::PasswordHasher,
    sessions::SessionGrant,
    views::UserView,
};
use crate::{
    config::{CaptchaPolicy, EmailVerification, RegistrationPolicy},
    domain::{DisplayName, Email, LoginName, Password, Role, Username},
    store::{
        Store,
        codes::CodeSpend,
        records::UserRecord,
        sessions::NewSession,
        users::{CreateUserError, CreateWith, NewUser, UserLookup},
    },
    token::{opaque, sealed::Sealer},
};

/// Where a first-party login stands after the password.
#[derive(Debug, Clone)]
pub enum LoginStep {
    SignedIn(Box<IssuedSession>),
    /// The user has a second factor: answer the challenge with [`Accounts::complete_login`].
    SecondFactor(SecondFactorChallenge),
    /// The policy requires a factor the user lacks: they enrol TOTP now, and the code that
    /// confirms it answers [`Accounts::complete_login`] with the enrolment token.
    MustEnrol(TotpEnrolment),
}

/// A user whose sign-in is complete, and how they signed in (RFC 8176 `amr`).
#[derive(Debug, Clone)]
pub struct SignedInUser {
    pub user: UserView,
    pub amr: Vec<String>,
    /// The upstream provider the sign-in came through (the id_token's `idp`), if any.
    pub idp: Option<String>,
    /// Recovery codes made by a second factor enrolled during this sign-in (shown once);
    /// usually empty.
    pub recovery_codes: Vec<String>,
}

/// A registration request, unvalidated.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
    /// The code mailed for `register`, when email verification is required.
    pub email_code: Option<String>,
    pub captcha: CaptchaAnswer,
    /// The shared key, when registration is by invitation.
    pub registration_key: Option<String>,
    /// Require the mailed code whatever the server policy (an API whose contract includes
    /// email verification).
    pub always_verify_email: bool,
    /// Require the captcha whatever the server policy (an API whose contract includes one).
    pub always_check_captcha: bool,
    /// Issue a personal API key with the account, in the same transaction (an API whose
    /// accounts always have one).
    pub issue_api_key: bool,
    /// Where the request came from (kept with the first session).
    pub origin: Origin,
}

/// A captcha challenge id and the user's answer, when the form carried them.
#[derive(Debug, Clone, Default)]
pub struct CaptchaAnswer {
    pub id: Option<String>,
    pub answer: Option<String>,
}

/// Who may register and what they must prove.
#[derive(Debug, Clone)]
pub struct Policy {
    pub registration: RegistrationPolicy,
    pub registration_key: Option<String>,
    pub captcha: CaptchaPolicy,
    pub email_verification: EmailVerification,
    /// Shared key that lets anyone who knows it set a user's password by name and email (the
    /// account document's `forget_password`); `None` switches that off.
    pub forget_password_key: Option<String>,
}

/// Validated registration fields.
struct ValidRegistration {
    username: Username,
    email: Email,
    password: Password,
    display_name: Option<DisplayName>,
    issue_api_key: bool,
}

impl Registration {
    fn validate(self) -> Result<ValidRegistration> {
        let username = Username::parse_new(&self.username)?;
        let email = Email::parse(&self.email)?;
        let password = Password::parse(&self.password)?;
        let display_name = match self.display_name.as_deref() {
            Some(d) if !d.trim().is_empty() => Some(DisplayName::parse(d)?),
            _ => None,
        };
        Ok(ValidRegistration {
            username,
            email,
            password,
            display_name,
            issue_api_key: self.issue_api_key,
        })
    }
}

/// What [`Accounts`] is built from.
pub struct AccountsParts {
    pub store: Store,
    pub passwords: Arc<PasswordHasher>,
    pub limits: Arc<LoginLimits>,
    pub sessions: Sessions,
    pub codes: EmailCodes,
    pub captchas: Captchas,
    /// Seals API keys, which the account document shows again.
    pub sealer: Arc<Sealer>,
    /// Login outcomes are counted here.
    pub metrics: Arc<Metrics>,
    pub policy: Policy,
    /// Second factors, the unlock link and the audit trail.
    pub mfa: super::mfa::Mfa,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    passwords: Arc<PasswordHasher>,
    limits: Arc<LoginLimits>,
    sessions: Sessions,
    codes: EmailCodes,
    captchas: Captchas,
    sealer: Arc<Sealer>,
    metrics: Arc<Metrics>,
    policy: Arc<Policy>,
    mfa: super::mfa::Mfa,
}

impl Accounts {
    pub fn new(parts: AccountsParts) -> Self {
        Self {
            policy: Arc::new(parts.policy),
            store: parts.store,
            passwords: parts.passwords,
            limits: parts.limits,
            sessions: parts.sessions,
            codes: parts.codes,
            captchas: parts.captchas,
            sealer: parts.sealer,
            metrics: parts.metrics,
            mfa: parts.mfa,
        }
    }

    /// The registration and captcha policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Precomputes what the first login would otherwise pay for.
    pub async fn warm_up(&self) {
        self.passwords.warm_up().await;
    }

    /// Self-service registration. In order: the registration policy, the captcha (consumed
    /// either way), field rules and password strength, the emailed code (when required; a
    /// wrong one is refused before anything about existing accounts is said), then the user,
    /// the spent code and the first session are written in one transaction. A refused
    /// registration (a taken name, a lost race) leaves the code usable.
    pub async fn register(&self, registration: Registration) -> Result<IssuedSession> {
        // Chosen (not written) up front: it is written with the user, or not at all.
        let id = uuid::Uuid::new_v4().to_string();
        let (prepared, record) =
            self.sessions
                .prepare(&id, SessionGrant::first_party(), Some(&registration.origin));
        let user = self
            .register_inner(registration, Some((id, record)))
            .await?;
        self.sessions.issue_prepared(user.into(), prepared)
    }

    /// [`Accounts::register`] without starting a session (for APIs that sign in separately).
    pub async fn register_user(&self, registration: Registration) -> Result<UserView> {
        Ok(self.register_inner(registration, None).await?.into())
    }

    /// Registration's checks and write; `session` (the new user's id and first session) is
    /// written in the same transaction.
    async fn register_inner(
        &self,
        registration: Registration,
        session: Option<(String, NewSession)>,
    ) -> Result<UserRecord> {
        match self.policy.registration {
            RegistrationPolicy::Open => {}
            RegistrationPolicy::Closed => return Err(ServiceError::RegistrationClosed),
            RegistrationPolicy::Invite => {
                let expected = self.policy.registration_key.as_deref().unwrap_or_default();
                let given = registration.registration_key.as_deref().unwrap_or_default();
                if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
                    return Err(ServiceError::InvalidRegistrationKey);
                }
            }
        }
        if registration.always_check_captcha || self.policy.captcha.on_register() {
            let c = &registration.captcha;
            self.captchas
                .verify(c.id.as_deref(), c.answer.as_deref())
                .await?;
        }
        let verify = registration.always_verify_email
            || self.policy.email_verification == EmailVerification::Required;
        let code = registration
            .email_code
            .clone()
            .filter(|c| !c.trim().is_empty());
        // Field errors first, so a client learns everything it can fix in one round.
        let valid = registration.validate()?;
        let mut inputs = vec![valid.username.as_str(), valid.email.as_str()];
        if let Some(d) = &valid.display_name {
            inputs.push(d.as_str());
        }
        valid.password.check_strength(&inputs)?;
        let code = match (verify, code) {
            (false, _) => None,
            (true, None) => return Err(ServiceError::EmailCodeRequired),
            (true, Some(code)) => Some(
                self.codes
                    .check(&valid.email, CodePurpose::Register, &code)
                    .await?,
            ),
        };
        let verified = code.is_some();
        self.insert_user(valid, Vec::new(), verified, code, session)
            .await
    }

    /// Creates a user. `check_strength` is off only for operator-supplied passwords (CLI,
    /// seed files), where the operator has chosen deliberately.
    /// Checks a registration's fields and password strength, writing nothing.
    pub fn check_registration(&self, registration: &Registration) -> Result<()> {
        let valid = registration.clone().validate()?;
        let mut inputs = vec![valid.username.as_str(), valid.email.as_str()];
        if let Some(d) = &valid.display_name {
            inputs.push(d.as_str());
        }
        valid.password.check_strength(&inputs)?;
        Ok(())
    }

    pub async fn create_user(
        &self,
        registration: Registration,
        roles: Vec<Role>,
        email_verified: bool,
        check_strength: bool,
    ) -> Result<UserRecord> {
        let valid = registration.validate()?;
        if check_strength {
            let mut inputs = vec![valid.username.as_str(), valid.email.as_str()];
            if let Some(d) = &valid.display_name {
                inputs.push(d.as_str());
            }
            valid.password.check_strength(&inputs)?;
        }
        self.insert_user(valid, roles, email_verified, None, None)
            .await
    }

    /// Hashes the password and writes the user, with the checked code spent and the first
    /// session (`(user id, session)`, chosen beforehand) in the same transaction.
    async fn insert_user(
        &self,
        valid: ValidRegistration,
        roles: Vec<Role>,
        email_verified: bool,
        code: Option<CodeSpend>,
        session: Option<(String, NewSession)>,
    ) -> Result<UserRecord> {
        let password_hash = self.passwords.hash(&valid.password).await?;
        let (id, session) = match session {
            Some((id, s)) => (id, Some(s)),
            None => (uuid::Uuid::new_v4().to_string(), None),
        };
        let api_key = match valid.issue_api_key {
            true => {
                let (_, hash, sealed) = self.new_api_key(&id)?;
                Some((hash, sealed))
            }
            false => None,
        };
        let new = NewUser {
            id,
            api_key,
            username_key: valid.username.key(),
            username_skeleton: valid.username.skeleton(),
            username: valid.username.as_str().to_string(),
            email_key: valid.email.key(),
            email: valid.email.as_str().to_string(),
            display_name: valid.display_name.map(DisplayName::into_inner),
            password_hash,
            email_verified,
            roles,
            disabled: false,
            created_at: None,
        };
        let with = CreateWith {
            code,
            session,
            identity: None,
        };
        match self.store.create_user(new, with).await? {
            Ok(user) => {
                tracing::info!(user_id = %user.id, username = %user.username, "user registered");
                Ok(user)
            }
            Err(CreateUserError::UsernameTaken) => Err(ServiceError::UsernameTaken),
            Err(CreateUserError::EmailTaken) => Err(ServiceError::EmailTaken),
            Err(CreateUserError::CodeGone) => Err(ServiceError::InvalidCode),
            Err(CreateUserError::IdentityTaken) => Err(ServiceError::Conflict(
                "identity",
                "this identity is linked to another account".into(),
            )),
        }
    }

    /// Creates an account just in time for a person signing in through an upstream
    /// provider, linked to their identity there, in one transaction. It has no password
    /// (the owner may set one with an emailed reset code). Names and addresses follow the
    /// same rules as a registration.
    pub async fn create_federated_user(
        &self,
        username: &str,
        email: &str,
        display_name: Option<&str>,
        email_verified: bool,
        identity: crate::store::upstreams::IdentityRecord,
    ) -> Result<UserRecord> {
        let username = Username::parse_new(username)?;
        let email = Email::parse(email)?;
        // The provider's name for the person, if it is one we can show (the person cannot
        // edit it on the way in, so a refused one is left out rather than refused).
        let display_name = display_name
            .and_then(|d| DisplayName::parse(d).ok())
            .map(DisplayName::into_inner);
        let new = NewUser {
            id: uuid::Uuid::new_v4().to_string(),
            api_key: None,
            username_key: username.key(),
            username_skeleton: username.skeleton(),
            username: username.as_str().to_string(),
            email_key: email.key(),
            email: email.as_str().to_string(),
            display_name,
            password_hash: crate::service::passwords::NO_PASSWORD.to_string(),
            email_verified,
            roles: Vec::new(),
            disabled: false,
            created_at: None,
        };
        let with = CreateWith {
            code: None,
            session: None,
            identity: Some(identity),
        };
        match self.store.create_user(new, with).await? {
            Ok(user) => {
                tracing::info!(user_id = %user.id, username = %user.username, "account created through an upstream provider");
                Ok(user)
            }
            Err(CreateUserError::UsernameTaken) => Err(ServiceError::UsernameTaken),
            Err(CreateUserError::EmailTaken) => Err(ServiceError::EmailTaken),
            Err(CreateUserError::CodeGone | CreateUserError::IdentityTaken) => {
                Err(ServiceError::Conflict(
                    "identity",
                    "this identity is linked to another account".into(),
                ))
            }
        }
    }

    /// Whether a username is free. Invalid names are an error naming the broken rule.
    pub async fn username_available(&self, name: &str) -> Result<bool> {
        let name = Username::parse_new(name)?;
        let (key, skeleton) = (name.key(), name.skeleton());
        Ok(!self
            .store
            .run(move |s| s.username_taken(&key, &skeleton))
            .await?)
    }

    /// Checks a login name (username or email) and password, throttled per account and per
    /// client address. Every failure — unknown account, wrong password, disabled account —
    /// looks the same. The first factor only: sign-in surfaces go on to [`Accounts::login`]'s
    /// second step, or refuse users with one ([`Accounts::authenticate_password_only`]).
    pub async fn authenticate_password(
        &self,
        login: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<UserView> {
        Ok(self
            .verify_password(login, password, origin, None)
            .await?
            .into())
    }

    /// [`Accounts::authenticate_password`] with the token of the mailed unlock link, when the
    /// browser has one (see [`Accounts::verify_password`]).
    pub async fn authenticate_password_unlocking(
        &self,
        login: &str,
        password: &str,
        origin: &Origin,
        unlock: Option<&str>,
    ) -> Result<UserView> {
        Ok(self
            .verify_password(login, password, origin, unlock)
            .await?
            .into())
    }

    /// [`Accounts::authenticate_password`] for surfaces with no second step (the compatible
    /// APIs, the OAuth password grant): a user who has a second factor, or whom the policy
    /// requires to have one, gets the same answer as a wrong password, and the log says why.
    pub async fn authenticate_password_only(
        &self,
        login: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<UserView> {
        let user = self.authenticate_password(login, password, origin).await?;
        if self.mfa.has_factor(&user.id).await? || self.mfa.required_for(&user) {
            tracing::warn!(
                user_id = %user.id,
                surface = origin.surface,
                "password-only sign-in refused: the user has (or must have) a second factor, which this surface cannot ask for"
            );
            self.audit_login(
                EventKind::LoginFailed,
                &user.id,
                origin,
                "pwd",
                Some("second factor required; surface has no second step"),
            )
            .await;
            return Err(ServiceError::InvalidCredentials);
        }
        self.audit_login(EventKind::LoginSucceeded, &user.id, origin, "pwd", None)
            .await;
        Ok(user)
    }

    async fn audit_login(
        &self,
        kind: EventKind,
        user_id: &str,
        origin: &Origin,
        method: &str,
        detail: Option<&str>,
    ) {
        let mut event = Event::by_user(kind, origin, user_id).method(method);
        event.detail = detail;
        self.mfa.audit().record(event).await;
    }

    /// Records a completed sign-in (every factor done) with its `amr`.
    pub async fn signed_in(&self, user_id: &str, amr: &[String], origin: &Origin) {
        self.audit_login(
            EventKind::LoginSucceeded,
            user_id,
            origin,
            &amr.join(" "),
            None,
        )
        .await;
    }

    /// [`Accounts::authenticate_password`], answering with the stored record (for a password
    /// change that follows). A live `unlock` token (the link mailed to the owner) for this
    /// account lets the attempt past the per-account delay, and is spent by a success.
    async fn verify_password(
        &self,
        login: &str,
        password: &str,
        origin: &Origin,
        unlock: Option<&str>,
    ) -> Result<UserRecord> {
        // The per-address limit first: it is what stops one client spraying many accounts.
        let ip_key = origin.ip.map(|ip| format!("ip:{ip}"));
        if let Some(key) = &ip_key {
            self.limits
                .address
                .check(key)
                .map_err(|retry_after| self.throttled(retry_after))?;
        }
        let name = LoginName::parse(login);
        let lookup = match &name {
            LoginName::Username(u) => Some(UserLookup::UsernameKey(u.key())),
            LoginName::Email(e) => Some(UserLookup::EmailKey(e.key())),
            LoginName::Unmatchable(_) => None,
        };
        let user = match lookup {
            Some(lookup) => self.store.run(move |s| s.find_user(&lookup)).await?,
            None => None,
        };
        let limiter_key = match &user {
            Some(u) => format!("id:{}", u.id),
            None => name.limiter_key(),
        };
        let unlocked = match (unlock, &user) {
            (Some(token), Some(u)) => self.mfa.unlock_valid(token, &u.id).await?,
            _ => false,
        };
        if !unlocked {
            self.limits
                .account
                .check(&limiter_key)
                .map_err(|retry_after| self.throttled(retry_after))?;
        }
        let ok = self
            .passwords
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await?;
        let user = match user {
            Some(user) if ok && !user.disabled => user,
            user => {
                let after = self.limits.account.record_failure(&limiter_key);
                if let Some(key) = &ip_key {
                    self.limits.address.record_failure(key);
                }
                self.metrics.record_login(LoginOutcome::Failure);
                if let Some(user) = user.filter(|u| !u.disabled) {
                    self.audit_login(EventKind::LoginFailed, &user.id, origin, "pwd", None)
                        .await;
                    // The moment delays start, the owner hears of it, with a way past them.
                    if after == AfterFailure::Throttled
                        && let Err(e) = self.mfa.send_unlock_link(&(&user).into(), origin).await
                    {
                        tracing::warn!(error = %e, user_id = %user.id, "could not send the unlock link");
                    }
                }
                return Err(ServiceError::InvalidCredentials);
            }
        };
        // A success clears the account's count, never the address's: one valid account must
        // not reset a spraying client.
        self.limits.account.clear(&limiter_key);
        if let (Some(token), true) = (unlock, unlocked) {
            self.mfa.spend_unlock(token, origin).await?;
        }
        self.metrics.record_login(LoginOutcome::Success);
        self.rehash_if_needed(user, password).await
    }

    fn throttled(&self, retry_after: u64) -> ServiceError {
        self.metrics.record_login(LoginOutcome::Throttled);
        ServiceError::RateLimited { retry_after }
    }

    /// First-party login: the captcha when the policy asks for one, then the password, then
    /// a new session — or the second step when the user has a second factor.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        captcha: &CaptchaAnswer,
        origin: &Origin,
        unlock: Option<&str>,
    ) -> Result<LoginStep> {
        self.check_login_captcha(captcha).await?;
        let user: UserView = self
            .verify_password(login, password, origin, unlock)
            .await?
            .into();
        match self.mfa.after_password(&user, false, origin).await? {
            AfterPassword::SignedIn(amr) => {
                self.signed_in(&user.id, &amr, origin).await;
                Ok(LoginStep::SignedIn(Box::new(
                    self.sessions.start(user, origin).await?,
                )))
            }
            AfterPassword::SecondFactor(challenge) => Ok(LoginStep::SecondFactor(challenge)),
            AfterPassword::MustEnrol(enrolment) => Ok(LoginStep::MustEnrol(enrolment)),
        }
    }

    /// First-party login for surfaces with no second step (the compatible APIs).
    pub async fn login_password_only(
        &self,
        login: &str,
        password: &str,
        captcha: &CaptchaAnswer,
        origin: &Origin,
    ) -> Result<IssuedSession> {
        self.check_login_captcha(captcha).await?;
        let user = self
            .authenticate_password_only(login, password, origin)
            .await?;
        self.sessions.start(user, origin).await
    }

    /// The enabled user `user_id`, for a sign-in that just proved a factor.
    pub async fn active_user(&self, user_id: &str) -> Result<UserView> {
        self.store
            .point_read(|s| s.get_user(user_id))?
            .filter(|u| !u.disabled)
            .map(|u| UserView::from(&u))
            .ok_or(ServiceError::MfaChallengeInvalid)
    }

    /// A sign-in whose factors are all proven: the user (still enabled), recorded with how
    /// they signed in.
    async fn proven(
        &self,
        user_id: &str,
        amr: Vec<String>,
        origin: &Origin,
    ) -> Result<SignedInUser> {
        let user = self.active_user(user_id).await?;
        self.signed_in(&user.id, &amr, origin).await;
        Ok(SignedInUser {
            user,
            amr,
            idp: None,
            recovery_codes: Vec::new(),
        })
    }

    /// Answers the second step of a sign-in (any surface): a second factor, or the first
    /// code of the factor a required-MFA sign-in is enrolling.
    pub async fn second_factor_signed_in(
        &self,
        token: &str,
        answer: SecondFactorAnswer,
        origin: &Origin,
    ) -> Result<SignedInUser> {
        let done = self.mfa.complete(token, answer, origin).await?;
        let signed_in = self.proven(&done.user_id, done.amr, origin).await?;
        Ok(SignedInUser {
            recovery_codes: done.recovery_codes,
            idp: done.idp,
            ..signed_in
        })
    }

    /// A passwordless passkey sign-in (any surface). No password throttle applies.
    pub async fn passkey_signed_in(
        &self,
        token: &str,
        response: serde_json::Value,
        origin: &Origin,
    ) -> Result<SignedInUser> {
        let (user_id, amr) = self
            .mfa
            .finish_passwordless(token, response, origin)
            .await?;
        self.proven(&user_id, amr, origin).await
    }

    /// The second step of a first-party login: a session once the factor is right.
    pub async fn complete_login(
        &self,
        token: &str,
        answer: SecondFactorAnswer,
        origin: &Origin,
    ) -> Result<(IssuedSession, Vec<String>)> {
        let signed_in = self.second_factor_signed_in(token, answer, origin).await?;
        let session = self.sessions.start(signed_in.user, origin).await?;
        Ok((session, signed_in.recovery_codes))
    }

    /// A passwordless passkey login: a first-party session for the passkey's owner.
    pub async fn passkey_login(
        &self,
        token: &str,
        response: serde_json::Value,
        origin: &Origin,
    ) -> Result<IssuedSession> {
        let signed_in = self.passkey_signed_in(token, response, origin).await?;
        self.sessions.start(signed_in.user, origin).await
    }

    /// Verifies the captcha when the policy requires one at login.
    pub async fn check_login_captcha(&self, captcha: &CaptchaAnswer) -> Result<()> {
        if self.policy.captcha.on_login() {
            self.captchas
                .verify(captcha.id.as_deref(), captcha.answer.as_deref())
                .await?;
        }
        Ok(())
    }

    /// Mails a code (see [`EmailCodes::request`]); returns it for dev mode to show.
    pub async fn request_code(
        &self,
        email: &str,
        purpose: CodePurpose,
        lang: Option<crate::i18n::Lang>,
    ) -> Result<Option<String>> {
        self.codes.request(email, purpose, lang).await
    }

    /// Sets a new password with an emailed reset code. Every session of the user ends and a
    /// notice is mailed; the caller is not signed in. Every code problem — wrong, expired,
    /// used, issued for another purpose or another address, or no such account — is the same
    /// `InvalidCode`.
    pub async fn reset_password(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
        origin: &Origin,
    ) -> Result<()> {
        let email = Email::parse(email)?;
        let new = Password::parse(new_password)?;
        // The code first: until it is proven, known and unknown addresses answer alike (no
        // strength verdict that uses the account's username). Checking does not spend it, so
        // a refused password leaves it usable.
        let code = self
            .codes
            .check(&email, CodePurpose::ResetPassword, code)
            .await?;
        let lookup = UserLookup::EmailKey(email.key());
        let Some(user) = self.store.run(move |s| s.find_user(&lookup)).await? else {
            return Err(ServiceError::InvalidCode);
        };
        new.check_strength(&[email.as_str(), &user.username])?;
        let hash = self.passwords.hash(&new).await?;
        let id = user.id.clone();
        let user = self
            .store
            .run(move |s| s.reset_password_with_code(&id, &code, hash))
            .await?
            .ok_or(ServiceError::InvalidCode)?;
        self.limits.account.clear(&format!("id:{}", user.id));
        self.codes.mailer().send_in_background(
            self.codes
                .mailer()
                .letters(origin.lang)
                .password_changed(&user.email, &user.username),
        );
        tracing::info!(user_id = %user.id, "password reset with an emailed code");
        self.mfa
            .audit()
            .record(Event::by_user(EventKind::PasswordReset, origin, &user.id).method("email_code"))
            .await;
        Ok(())
    }

    /// Re-hashes a just-verified password when the configured cost has changed or the stored
    /// hash is of another format (an imported account).
    async fn rehash_if_needed(&self, user: UserRecord, password: &str) -> Result<UserRecord> {
        if !self.passwords.needs_rehash(&user.password_hash) {
            return Ok(user);
        }
        let hash = self.passwords.rehash(password).await?;
        let id = user.id.clone();
        tracing::info!(user_id = %user.id, "password re-hashed with the configured scrypt cost");
        let updated = self
            .store
            .run(move |s| s.update_user(&id, |u| u.password_hash = hash))
            .await?;
        Ok(updated.unwrap_or(user))
    }

    /// Sets or clears (`None`) the display name.
    pub async fn update_display_name(
        &self,
        principal: &Principal,
        display_name: Option<&str>,
    ) -> Result<UserView> {
        let name = match display_name {
            Some(d) => Some(DisplayName::parse(d)?.into_inner()),
            None => None,
        };
        let id = principal.user.id.clone();
        self.store
            .run(move |s| s.update_user(&id, |u| u.display_name = name))
            .await?
            .map(UserView::from)
            .ok_or(ServiceError::InvalidToken)
    }

    /// Changes the password after checking the current one, then ends every other session.
    /// A wrong current password changes nothing and counts as a failed login.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
        origin: &Origin,
    ) -> Result<()> {
        let id = principal.user.id.clone();
        let limiter_key = format!("id:{id}");
        self.limits
            .account
            .check(&limiter_key)
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        // The stored hash, read now: the principal carries no secrets.
        let user = self
            .store
            .point_read(move |s| s.get_user(&id))?
            .ok_or(ServiceError::InvalidToken)?;
        if !self
            .passwords
            .verify(Some(&user.password_hash), current)
            .await?
        {
            self.limits.account.record_failure(&limiter_key);
            return Err(ServiceError::WrongPassword);
        }
        self.set_password(&user, new, principal.own_session(), origin)
            .await
    }

    /// Changes the password of the account `login` names after checking its current password
    /// like a login (same throttling, same single answer for every failure). Every session
    /// ends: the caller holds none.
    pub async fn change_password_by_login(
        &self,
        login: &str,
        current: &str,
        new: &str,
        origin: &Origin,
    ) -> Result<()> {
        let user = self.verify_password(login, current, origin, None).await?;
        self.set_password(&user, new, KeepSession::None, origin)
            .await
    }

    /// Sets the password of the user with this username and email, authorised by the shared
    /// `forget_password_key` alone (the account document's recovery for servers without
    /// mail). Off unless the key is configured. Every session of the user ends and a notice is
    /// mailed.
    pub async fn reset_password_by_key(
        &self,
        key: &str,
        username: &str,
        email: &str,
        new: &str,
        origin: &Origin,
    ) -> Result<()> {
        let Some(expected) = self
            .policy
            .forget_password_key
            .as_deref()
            .filter(|k| !k.is_empty())
        else {
            return Err(ServiceError::ResetByKeyDisabled);
        };
        if !bool::from(expected.as_bytes().ct_eq(key.as_bytes())) {
            return Err(ServiceError::InvalidResetKey);
        }
        let user = match (Username::parse(username), Email::parse(email)) {
            (Ok(u), Ok(e)) => {
                let lookup = UserLookup::UsernameKey(u.key());
                self.store
                    .run(move |s| s.find_user(&lookup))
                    .await?
                    .filter(|found| found.email.to_lowercase() == e.key())
            }
            _ => None,
        };
        let user = user.ok_or(ServiceError::NotFound("user with that username and email"))?;
        self.set_password_audited(
            &user,
            new,
            KeepSession::None,
            origin,
            EventKind::PasswordReset,
            "forget_password_key",
        )
        .await?;
        self.limits.account.clear(&format!("id:{}", user.id));
        tracing::warn!(user_id = %user.id, "password set with the forget-password key");
        Ok(())
    }

    /// A password change by its owner, who proved the current one (audited).
    async fn set_password(
        &self,
        user: &UserRecord,
        new: &str,
        keep: KeepSession,
        origin: &Origin,
    ) -> Result<()> {
        self.set_password_audited(user, new, keep, origin, EventKind::PasswordChanged, "pwd")
            .await
    }

    /// Checks and stores a new password, ends every session but `keep`, mails a notice and
    /// records `kind` (proven by `method`).
    async fn set_password_audited(
        &self,
        user: &UserRecord,
        new: &str,
        keep: KeepSession,
        origin: &Origin,
        kind: EventKind,
        method: &str,
    ) -> Result<()> {
        let new = Password::parse(new)?;
        let mut inputs = vec![user.username.as_str(), user.email.as_str()];
        if let Some(d) = &user.display_name {
            inputs.push(d);
        }
        new.check_strength(&inputs)?;
        let hash = self.passwords.hash(&new).await?;
        let id = user.id.clone();
        self.store
            .run(move |s| s.update_user(&id, |u| u.password_hash = hash))
            .await?
            .ok_or(ServiceError::InvalidToken)?;
        let revoked = self.sessions.revoke_others(&user.id, keep).await?;
        tracing::info!(user_id = %user.id, other_sessions_revoked = revoked, "password changed");
        self.mfa
            .audit()
            .record(Event::by_user(kind, origin, &user.id).method(method))
            .await;
        // Tell the owner, so a change they did not make does not go unnoticed.
        self.codes.mailer().send_in_background(
            self.codes
                .mailer()
                .letters(origin.lang)
                .password_changed(&user.email, &user.username),
        );
        Ok(())
    }

    /// Starts moving the caller's account to `new_email`: a code is mailed there (the
    /// answer is the same when the address is taken; its owner is told instead). Returns the
    /// code for dev mode to show.
    pub async fn request_email_change(
        &self,
        principal: &Principal,
        new_email: &str,
        lang: Option<crate::i18n::Lang>,
    ) -> Result<Option<String>> {
        let email = Email::parse(new_email)?;
        if Email::parse(&principal.user.email).is_ok_and(|current| current.key() == email.key()) {
            return Err(crate::domain::Invalid::new(
                "same_email",
                "new_email",
                "that is already your address",
            )
            .into());
        }
        self.codes
            .request(email.as_str(), CodePurpose::ChangeEmail, lang)
            .await
    }

    /// Moves the caller's account to `new_email`, proven by the mailed `code` and the
    /// account's password (or a second-factor code). The old address is told.
    pub async fn change_email(
        &self,
        principal: &Principal,
        new_email: &str,
        code: &str,
        proof: &super::mfa::Proof,
        origin: &Origin,
    ) -> Result<UserView> {
        let email = Email::parse(new_email)?;
        self.mfa.prove(&principal.user.id, proof).await?;
        let spend = self
            .codes
            .check(&email, CodePurpose::ChangeEmail, code)
            .await?;
        let old = principal.user.email.clone();
        let old_key = Email::parse(&old)
            .map(|e| e.key())
            .unwrap_or_else(|_| old.to_lowercase());
        let (id, new, key) = (
            principal.user.id.clone(),
            email.as_str().to_string(),
            email.key(),
        );
        let user = self
            .store
            .run(move |s| s.change_email_with_code(&id, &spend, &new, &key, &old_key))
            .await?
            .map_err(|()| ServiceError::EmailTaken)?
            .ok_or(ServiceError::InvalidCode)?;
        self.codes.mailer().send_in_background(
            self.codes.mailer().letters(origin.lang).email_changed(
                &old,
                &user.username,
                &user.email,
            ),
        );
        let event = Event::by_user(EventKind::EmailChanged, origin, &user.id);
        self.mfa.audit().record(event).await;
        tracing::info!(user_id = %user.id, "email address changed");
        Ok(user.into())
    }

    /// Deletes the account `id` with its sessions, API key, avatar, factors, consents and
    /// OAuth clients; returns what it was.
    pub(super) async fn delete_account(&self, id: &str) -> Result<UserRecord> {
        let uid = id.to_string();
        let user = self
            .store
            .run(move |s| s.get_user(&uid))
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        // The index keys are derived from the stored values the way registration derived them.
        let username_key = Username::parse(&user.username)
            .map(|u| u.key())
            .unwrap_or_else(|_| user.username.to_lowercase());
        let email_key = Email::parse(&user.email)
            .map(|e| e.key())
            .unwrap_or_else(|_| user.email.to_lowercase());
        let uid = id.to_string();
        self.store
            .run(move |s| s.delete_user(&uid, &username_key, &email_key))
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        Ok(user)
    }

    /// The owner deletes their own account, proven by the password or a current second
    /// factor code (a stolen access token alone cannot). Everything of theirs goes.
    pub async fn delete_own_account(
        &self,
        principal: &Principal,
        proof: &super::mfa::Proof,
        origin: &Origin,
    ) -> Result<()> {
        self.mfa.prove(&principal.user.id, proof).await?;
        let user = self.delete_account(&principal.user.id).await?;
        tracing::warn!(user_id = %user.id, username = %user.username, "account deleted by its owner");
        self.mfa
            .audit()
            .record(Event::by_user(EventKind::UserDeleted, origin, &user.id).method("self"))
            .await;
        Ok(())
    }

    /// Issues a new personal API key, replacing (and so disabling) the previous one.
    pub async fn rotate_api_key(&self, principal: &Principal) -> Result<String> {
        let id = principal.user.id.clone();
        let (key, hash, sealed) = self.new_api_key(&id)?;
        self.store
            .run(move |s| s.replace_api_key(&id, hash, Some(sealed)))
            .await?
            .ok_or(ServiceError::InvalidToken)?;
        Ok(key)
    }

    /// A new API key for user `id`: the key, its SHA-256 (the lookup) and its sealed form.
    fn new_api_key(&self, id: &str) -> Result<(String, [u8; 32], String)> {
        let key = opaque::new_api_key();
        let sealed = self
            .sealer
            .seal(&key, &api_key_context(id))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let hash = opaque::digest(&key);
        Ok((key, hash, sealed))
    }

    /// The user's current API key, unsealed (the account document shows it again); `None` if
    /// none was issued.
    pub async fn revealed_api_key(&self, user_id: &str) -> Result<Option<String>> {
        let id = user_id.to_string();
        let Some(user) = self.store.point_read(move |s| s.get_user(&id))? else {
            return Ok(None);
        };
        user.api_key_sealed
            .as_deref()
            .map(|s| self.sealer.open(s, &api_key_context(&user.id)))
            .transpose()
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Grants the developer role (idempotent).
    pub async fn become_developer(&self, principal: &Principal) -> Result<UserView> {
        self.grant_role(&principal.user.id, Role::Developer).await
    }

    /// Adds a role to a user (idempotent).
    pub async fn grant_role(&self, user_id: &str, role: Role) -> Result<UserView> {
        let id = user_id.to_string();
        self.store
            .run(move |s| {
                s.update_user(&id, |u| {
                    u.add_role(role);
                })
            })
            .await?
            .map(UserView::from)
            .ok_or(ServiceError::NotFound("user"))
    }

    /// Enables or disables an account; disabling also ends all its sessions.
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<UserView> {
        let changes = super::admin::UserChanges {
            disabled: Some(disabled),
            ..Default::default()
        };
        self.set_access(user_id, changes).await
    }

    /// Replaces the roles and/or sets the disabled flag in one write; disabling also ends
    /// every session of the user.
    pub async fn set_access(
        &self,
        user_id: &str,
        changes: super::admin::UserChanges,
    ) -> Result<UserView> {
        let id = user_id.to_string();
        let disabled = changes.disabled;
        let user = self
            .store
            .run(move |s| {
                s.update_user(&id, |u| {
                    if let Some(roles) = changes.roles.clone() {
                        u.roles = roles;
                    }
                    match changes.admin {
                        Some(true) => u.roles.push(Role::Admin),
                        Some(false) => u.roles.retain(|r| *r != Role::Admin),
                        None => {}
                    }
                    u.roles.sort();
                    u.roles.dedup();
                    if let Some(d) = disabled {
                        u.disabled = d;
                    }
                })
            })
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        if disabled == Some(true) {
            self.sessions
                .revoke_others(&user.id, KeepSession::None)
                .await?;
        }
        Ok(user.into())
    }

    /// Finds a user by username or email (CLI).
    pub async fn find(&self, login: &str) -> Result<Option<UserView>> {
        let lookup = match LoginName::parse(login) {
            LoginName::Username(u) => UserLookup::UsernameKey(u.key()),
            LoginName::Email(e) => UserLookup::EmailKey(e.key()),
            LoginName::Unmatchable(_) => return Ok(None),
        };
        Ok(self
            .store
            .run(move |s| s.find_user(&lookup))
            .await?
            .map(UserView::from))
    }
}

/// What a sealed API key is bound to.
fn api_key_context(user_id: &str) -> String {
    format!("api_key:{user_id}")
}
