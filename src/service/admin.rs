//! User administration (`/api/v1/admin/users`): list and search, disable or enable, set roles,
//! delete. Only admins may call it (the first one is made by the CLI or a seed file), and an
//! admin cannot disable, demote or delete their own account here, so the last admin cannot
//! lock everyone out by accident.

use super::{
    Accounts, Principal, Result, ServiceError,
    audit::{Event, EventKind, EventPage, EventQuery, Origin},
    views::UserView,
};
use crate::{
    domain::Role,
    store::{
        Store,
        mfa::{ChallengeRecord, ChallengeStep},
        records::UserRecord,
    },
};

/// Seconds the first-run setup link works.
pub const FIRST_RUN_TTL: i64 = 3600;

/// Users per page of the listing.
pub const PER_PAGE: usize = 50;

/// One page of the user listing.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Users matching the search, on all pages.
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub disabled: Option<bool>,
    /// The complete new set of roles.
    pub roles: Option<Vec<Role>>,
    /// Grant (`true`) or remove (`false`) the admin role alone, keeping the others, in the
    /// same write (no read-then-replace race with another admin's change).
    pub admin: Option<bool>,
}

#[derive(Clone)]
pub struct Admin {
    store: Store,
    accounts: Accounts,
    mfa: super::mfa::Mfa,
}

fn require_admin(p: &Principal) -> Result<()> {
    if p.user.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "admin_role_required",
            "user administration needs the admin role".into(),
        ))
    }
}

fn not_self(p: &Principal, id: &str) -> Result<()> {
    if p.user.id == id {
        Err(ServiceError::Forbidden(
            "own_account",
            "an admin cannot disable, demote or delete their own account; ask another admin".into(),
        ))
    } else {
        Ok(())
    }
}

impl Admin {
    pub fn new(store: Store, accounts: Accounts, mfa: super::mfa::Mfa) -> Self {
        Self {
            store,
            accounts,
            mfa,
        }
    }

    async fn audit(&self, kind: EventKind, p: &Principal, subject: &str, origin: &Origin) {
        self.mfa
            .audit()
            .record(Event::by_admin(kind, origin, &p.user.id, subject))
            .await;
    }

    /// Removes every second factor of a user who lost theirs (audited).
    pub async fn reset_factors(&self, p: &Principal, id: &str, origin: &Origin) -> Result<()> {
        require_admin(p)?;
        self.mfa.reset(id, &p.user.id, origin).await
    }

    /// Security events, newest first.
    pub async fn events(&self, p: &Principal, query: EventQuery) -> Result<EventPage> {
        require_admin(p)?;
        self.mfa.audit().list(query).await
    }

    /// How many events of `kind` the audit trail holds from the last hour, counting up to
    /// `cap` (the dashboard says "cap or more" beyond it).
    pub async fn events_last_hour(&self, p: &Principal, kind: &str, cap: usize) -> Result<usize> {
        require_admin(p)?;
        let since = self.store.clock().now() - 3600;
        let page = self
            .mfa
            .audit()
            .list(EventQuery {
                subject: None,
                kind: Some(kind.to_string()),
                before: None,
                limit: cap,
            })
            .await?;
        Ok(page.events.iter().filter(|(_, e)| e.at >= since).count())
    }

    /// While no account is an administrator: a single-use setup token, valid for an hour,
    /// that creates the first one (`serve` prints its URL). `None` once an admin exists.
    pub async fn first_run_token(&self) -> Result<Option<String>> {
        if self.store.run(|s| s.has_admin()).await? {
            return Ok(None);
        }
        let record = ChallengeRecord {
            expires_at: self.store.clock().now() + FIRST_RUN_TTL,
            user_id: None,
            attempts: 0,
            step: ChallengeStep::FirstAdmin,
        };
        Ok(Some(self.mfa.put_challenge(record).await?))
    }

    /// Whether `token` is a live first-run setup token and there is still no admin.
    pub async fn first_run_valid(&self, token: &str) -> Result<bool> {
        let live = matches!(
            self.mfa.peek(token)?,
            Some(ChallengeRecord {
                step: ChallengeStep::FirstAdmin,
                ..
            })
        );
        Ok(live && !self.store.run(|s| s.has_admin()).await?)
    }

    /// Creates the first administrator with the setup token (spent here). The fields are
    /// checked like a registration's first, so a refused form leaves the token usable.
    pub async fn create_first_admin(
        &self,
        token: &str,
        registration: super::accounts::Registration,
        origin: &Origin,
    ) -> Result<UserView> {
        if !self.first_run_valid(token).await? {
            return Err(ServiceError::InvalidToken);
        }
        self.accounts.check_registration(&registration)?;
        let taken = match self.mfa.take_challenge(token).await? {
            Some(
                record @ ChallengeRecord {
                    step: ChallengeStep::FirstAdmin,
                    ..
                },
            ) => record,
            _ => return Err(ServiceError::InvalidToken),
        };
        let user = match self
            .accounts
            .create_user(registration, vec![Role::Admin], true, true)
            .await
        {
            Ok(user) => user,
            Err(e) => {
                // Refused (a name taken meanwhile): the link keeps working for another try.
                let hash = crate::token::opaque::digest(token);
                self.store
                    .run(move |s| s.put_challenge(hash, &taken))
                    .await?;
                return Err(e);
            }
        };
        tracing::warn!(user_id = %user.id, username = %user.username, "first administrator created with the setup link");
        let event = Event::by_user(EventKind::RolesChanged, origin, &user.id);
        self.mfa
            .audit()
            .record(event.detail("first administrator"))
            .await;
        Ok(user.into())
    }

    /// Users whose username, email or display name contains `q` (ignoring case), in
    /// registration order, [`PER_PAGE`] at a time; `page` counts from 1.
    pub async fn list(&self, p: &Principal, q: Option<&str>, page: usize) -> Result<UserPage> {
        require_admin(p)?;
        let page = page.max(1);
        let needle = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
        let all = self.store.run(|s| s.list_users()).await?;
        let matching: Vec<UserRecord> = all
            .into_iter()
            .filter(|u| {
                needle.as_deref().is_none_or(|n| {
                    u.username.to_lowercase().contains(n)
                        || u.email.to_lowercase().contains(n)
                        || u.display_name
                            .as_deref()
                            .is_some_and(|d| d.to_lowercase().contains(n))
                })
            })
            .collect();
        let total = matching.len();
        let users = matching
            .into_iter()
            .skip((page - 1).saturating_mul(PER_PAGE))
            .take(PER_PAGE)
            .map(UserView::from)
            .collect();
        Ok(UserPage {
            users,
            total,
            page,
            per_page: PER_PAGE,
        })
    }

    /// A consistent copy of the whole database for an admin to download while the server
    /// runs (see `Store::snapshot`): an open file, already unlinked, and when it was taken.
    pub async fn snapshot(&self, p: &Principal) -> Result<(std::fs::File, i64)> {
        require_admin(p)?;
        let taken_at = self.store.clock().now();
        let file = self
            .store
            .run(|s| {
                s.snapshot().map_err(|e| match e {
                    crate::store::BackupError::Store(e) => e,
                    // No room for the copy, or it cannot be read back: nothing was changed.
                    other => crate::store::StoreError::Unavailable(other.to_string()),
                })
            })
            .await?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        tracing::info!(admin = %p.user.id, bytes, "database snapshot taken for download");
        Ok((file, taken_at))
    }

    /// Disables or enables a user (disabling ends every session) and sets their roles.
    pub async fn update(
        &self,
        p: &Principal,
        id: &str,
        changes: UserChanges,
        origin: &Origin,
    ) -> Result<UserView> {
        require_admin(p)?;
        if changes.disabled == Some(true)
            || changes.admin == Some(false)
            || changes
                .roles
                .as_ref()
                .is_some_and(|r| !r.contains(&Role::Admin))
        {
            not_self(p, id)?;
        }
        let roles_changed = changes.roles.is_some() || changes.admin.is_some();
        let disabled = changes.disabled;
        let user = self.accounts.set_access(id, changes).await?;
        tracing::info!(admin = %p.user.id, user_id = %id, "user changed by an admin");
        match disabled {
            Some(true) => self.audit(EventKind::UserDisabled, p, id, origin).await,
            Some(false) => self.audit(EventKind::UserEnabled, p, id, origin).await,
            None => {}
        }
        if roles_changed {
            self.audit(EventKind::RolesChanged, p, id, origin).await;
        }
        Ok(user)
    }

    /// Deletes a user with their sessions, API key, avatar, consents and OAuth clients.
    pub async fn delete(&self, p: &Principal, id: &str, origin: &Origin) -> Result<()> {
        require_admin(p)?;
        not_self(p, id)?;
        let user = self.accounts.delete_account(id).await?;
        tracing::warn!(admin = %p.user.id, user_id = %user.id, username = %user.username, "user deleted by an admin");
        self.audit(EventKind::UserDeleted, p, &user.id, origin)
            .await;
        Ok(())
    }
}
