//! Registration, login and self-service account changes.

use std::sync::Arc;

use super::{
    IssuedSession, Principal, Result, ServiceError, Sessions, limiter::LoginLimiter,
    passwords::PasswordHasher,
};
use crate::{
    domain::{DisplayName, Email, LoginName, Password, Role, Username},
    store::{
        Store,
        records::UserRecord,
        users::{CreateUserError, NewUser, UserLookup},
    },
    token::opaque,
};

/// A registration request, unvalidated.
#[derive(Debug, Clone)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

/// Validated registration fields.
struct ValidRegistration {
    username: Username,
    email: Email,
    password: Password,
    display_name: Option<DisplayName>,
}

impl Registration {
    fn validate(self) -> Result<ValidRegistration> {
        let username = Username::parse(&self.username)?;
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
        })
    }
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    passwords: Arc<PasswordHasher>,
    limiter: Arc<LoginLimiter>,
    sessions: Sessions,
}

impl Accounts {
    pub fn new(
        store: Store,
        passwords: Arc<PasswordHasher>,
        limiter: Arc<LoginLimiter>,
        sessions: Sessions,
    ) -> Self {
        Self {
            store,
            passwords,
            limiter,
            sessions,
        }
    }

    /// Precomputes what the first login would otherwise pay for.
    pub async fn warm_up(&self) {
        self.passwords.warm_up().await;
    }

    /// Self-service registration: validates, rejects weak passwords, creates the user and
    /// starts a session.
    pub async fn register(&self, registration: Registration) -> Result<IssuedSession> {
        let user = self
            .create_user(registration, Vec::new(), false, true)
            .await?;
        self.sessions.start(user).await
    }

    /// Creates a user. `check_strength` is off only for operator-supplied passwords (CLI,
    /// seed files), where the operator has chosen deliberately.
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
        let password_hash = self.passwords.hash(&valid.password).await?;
        let new = NewUser {
            username_key: valid.username.key(),
            username: valid.username.as_str().to_string(),
            email_key: valid.email.key(),
            email: valid.email.as_str().to_string(),
            display_name: valid.display_name.map(DisplayName::into_inner),
            password_hash,
            email_verified,
            roles,
        };
        match self.store.run(move |s| s.create_user(new)).await? {
            Ok(user) => {
                tracing::info!(user_id = %user.id, username = %user.username, "user registered");
                Ok(user)
            }
            Err(CreateUserError::UsernameTaken) => Err(ServiceError::UsernameTaken),
            Err(CreateUserError::EmailTaken) => Err(ServiceError::EmailTaken),
        }
    }

    /// Whether a username is free. Invalid names are an error naming the broken rule.
    pub async fn username_available(&self, name: &str) -> Result<bool> {
        let key = Username::parse(name)?.key();
        Ok(!self.store.run(move |s| s.username_taken(&key)).await?)
    }

    /// Checks a login name (username or email) and password, throttled per account.
    /// Every failure — unknown account, wrong password, disabled account — looks the same.
    pub async fn authenticate_password(&self, login: &str, password: &str) -> Result<UserRecord> {
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
        self.limiter
            .check(&limiter_key)
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        let ok = self
            .passwords
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await?;
        let user = match user {
            Some(user) if ok && !user.disabled => user,
            _ => {
                self.limiter.record_failure(&limiter_key);
                return Err(ServiceError::InvalidCredentials);
            }
        };
        self.limiter.clear(&limiter_key);
        self.rehash_if_needed(user, password).await
    }

    /// First-party login: checks the password and starts a session.
    pub async fn login(&self, login: &str, password: &str) -> Result<IssuedSession> {
        let user = self.authenticate_password(login, password).await?;
        self.sessions.start(user).await
    }

    /// Re-hashes a just-verified password when the configured cost has changed.
    async fn rehash_if_needed(&self, user: UserRecord, password: &str) -> Result<UserRecord> {
        if !self.passwords.needs_rehash(&user.password_hash) {
            return Ok(user);
        }
        let Ok(pw) = Password::parse(password) else {
            return Ok(user);
        };
        let hash = self.passwords.hash(&pw).await?;
        let id = user.id.clone();
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
    ) -> Result<UserRecord> {
        let name = match display_name {
            Some(d) => Some(DisplayName::parse(d)?.into_inner()),
            None => None,
        };
        let id = principal.user.id.clone();
        self.store
            .run(move |s| s.update_user(&id, |u| u.display_name = name))
            .await?
            .ok_or(ServiceError::InvalidToken)
    }

    /// Changes the password after checking the current one, then ends every other session.
    /// A wrong current password changes nothing and counts as a failed login.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<()> {
        let user = &principal.user;
        let limiter_key = format!("id:{}", user.id);
        self.limiter
            .check(&limiter_key)
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        if !self
            .passwords
            .verify(Some(&user.password_hash), current)
            .await?
        {
            self.limiter.record_failure(&limiter_key);
            return Err(ServiceError::WrongPassword);
        }
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
        let revoked = self
            .sessions
            .revoke_others(&user.id, principal.session_id.clone())
            .await?;
        tracing::info!(user_id = %user.id, other_sessions_revoked = revoked, "password changed");
        Ok(())
    }

    /// Issues a new personal API key, replacing (and so disabling) the previous one.
    pub async fn rotate_api_key(&self, principal: &Principal) -> Result<String> {
        let key = opaque::new_api_key();
        let hash = opaque::digest(&key);
        let id = principal.user.id.clone();
        self.store
            .run(move |s| s.replace_api_key(&id, hash))
            .await?
            .ok_or(ServiceError::InvalidToken)?;
        Ok(key)
    }

    /// Grants the developer role (idempotent).
    pub async fn become_developer(&self, principal: &Principal) -> Result<UserRecord> {
        self.grant_role(&principal.user.id, Role::Developer).await
    }

    /// Adds a role to a user (idempotent).
    pub async fn grant_role(&self, user_id: &str, role: Role) -> Result<UserRecord> {
        let id = user_id.to_string();
        self.store
            .run(move |s| {
                s.update_user(&id, |u| {
                    if !u.roles.contains(&role) {
                        u.roles.push(role);
                        u.roles.sort();
                    }
                })
            })
            .await?
            .ok_or(ServiceError::NotFound("user"))
    }

    /// Enables or disables an account; disabling also ends all its sessions.
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<UserRecord> {
        let id = user_id.to_string();
        let user = self
            .store
            .run(move |s| s.update_user(&id, |u| u.disabled = disabled))
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        if disabled {
            self.sessions.revoke_others(&user.id, None).await?;
        }
        Ok(user)
    }

    /// Finds a user by username or email (CLI).
    pub async fn find(&self, login: &str) -> Result<Option<UserRecord>> {
        let lookup = match LoginName::parse(login) {
            LoginName::Username(u) => UserLookup::UsernameKey(u.key()),
            LoginName::Email(e) => UserLookup::EmailKey(e.key()),
            LoginName::Unmatchable(_) => return Ok(None),
        };
        Ok(self.store.run(move |s| s.find_user(&lookup)).await?)
    }
}
