//! Security events: each is stored (the audit trail behind `GET /api/v1/admin/events` and
//! `GET /api/v1/me/events`) and logged as one structured line under the `audit` target.

use std::net::IpAddr;

use crate::store::{
    Store,
    events::{self, EventRecord},
};

/// Which events to list (the store's query, named here so callers need not reach into the
/// store).
pub type EventQuery = events::EventQuery;

/// What happened. The stored and logged name is [`EventKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    LoginSucceeded,
    LoginFailed,
    /// A sign-in's first factor passed and a second was asked for.
    SecondFactorRequired,
    SecondFactorFailed,
    /// Sign-ins for an account began to be slowed down (the owner was mailed a link).
    LoginThrottled,
    AccountUnlocked,
    TotpEnrolled,
    TotpRemoved,
    RecoveryCodesGenerated,
    RecoveryCodeUsed,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    /// A passkey assertion whose counter went backwards: a possible clone, refused.
    PasskeyPossiblyCloned,
    SecondFactorsReset,
    PasswordChanged,
    PasswordReset,
    RefreshTokenReuse,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    RolesChanged,
    ClientCreated,
    ClientChanged,
    ClientDeleted,
    KeyRotated,
    EmailChanged,
    /// A user ended one of their sessions from the account page or API.
    SessionRevoked,
    /// A user withdrew an application's access.
    ConsentRevoked,
    /// A sign-in through an upstream identity provider (`method`: the upstream's id).
    UpstreamSignIn,
    /// An upstream identity was linked to an account (`method`: the upstream's id).
    IdentityLinked,
    /// An upstream identity was unlinked from an account (`method`: the upstream's id).
    IdentityUnlinked,
    /// An upstream provider was added, changed or removed (`method`: its id).
    UpstreamChanged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::SecondFactorRequired => "second_factor_required",
            EventKind::SecondFactorFailed => "second_factor_failed",
            EventKind::LoginThrottled => "login_throttled",
            EventKind::AccountUnlocked => "account_unlocked",
            EventKind::TotpEnrolled => "totp_enrolled",
            EventKind::TotpRemoved => "totp_removed",
            EventKind::RecoveryCodesGenerated => "recovery_codes_generated",
            EventKind::RecoveryCodeUsed => "recovery_code_used",
            EventKind::PasskeyAdded => "passkey_added",
            EventKind::PasskeyRenamed => "passkey_renamed",
            EventKind::PasskeyRemoved => "passkey_removed",
            EventKind::PasskeyPossiblyCloned => "passkey_possibly_cloned",
            EventKind::SecondFactorsReset => "second_factors_reset",
            EventKind::PasswordChanged => "password_changed",
            EventKind::PasswordReset => "password_reset",
            EventKind::RefreshTokenReuse => "refresh_token_reuse",
            EventKind::UserDisabled => "user_disabled",
            EventKind::UserEnabled => "user_enabled",
            EventKind::UserDeleted => "user_deleted",
            EventKind::RolesChanged => "roles_changed",
            EventKind::ClientCreated => "client_created",
            EventKind::ClientChanged => "client_changed",
            EventKind::ClientDeleted => "client_deleted",
            EventKind::KeyRotated => "key_rotated",
            EventKind::SessionRevoked => "session_revoked",
            EventKind::EmailChanged => "email_changed",
            EventKind::ConsentRevoked => "consent_revoked",
            EventKind::UpstreamSignIn => "upstream_sign_in",
            EventKind::IdentityLinked => "identity_linked",
            EventKind::IdentityUnlinked => "identity_unlinked",
            EventKind::UpstreamChanged => "upstream_changed",
        }
    }
}

/// Where a request came from: what an event records about the caller.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The surface (`api`, `page`, `oauth2`, `compat-sso`, `compat-account`,
    /// `compat-auth-server`, `admin`, `cli`).
    pub surface: &'static str,
    /// The caller's language (its pick on our pages, else `Accept-Language`), for the mail
    /// an action sends; `None` means the server's default.
    pub lang: Option<crate::i18n::Lang>,
}

impl Origin {
    pub fn new(surface: &'static str, ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        Self {
            ip,
            // Bounded: the header is the caller's to choose.
            user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
            surface,
            lang: None,
        }
    }

    /// An action with no HTTP caller (the CLI, background work).
    pub fn internal(surface: &'static str) -> Self {
        Self {
            surface,
            ..Self::default()
        }
    }
}

/// One event about to be recorded.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub kind: EventKind,
    pub origin: &'a Origin,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub method: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event about `subject`, done by themselves.
    pub fn by_user(kind: EventKind, origin: &'a Origin, user_id: &'a str) -> Self {
        Self {
            kind,
            origin,
            actor: Some(user_id),
            subject: Some(user_id),
            method: None,
            detail: None,
        }
    }

    /// An event about `subject`, done by the admin `admin_id`.
    pub fn by_admin(
        kind: EventKind,
        origin: &'a Origin,
        admin_id: &'a str,
        subject: &'a str,
    ) -> Self {
        Self {
            kind,
            origin,
            actor: Some(admin_id),
            subject: Some(subject),
            method: None,
            detail: None,
        }
    }

    pub fn method(mut self, method: &'a str) -> Self {
        self.method = Some(method);
        self
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Records security events. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    store: Store,
    /// Seconds events are kept.
    retention: i64,
    /// The next event's sequence number: events share a key's second, and the id after it
    /// keeps them in the order they happened. Starts at the wall clock's nanoseconds, so
    /// it keeps rising across restarts.
    sequence: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Audit {
    pub fn new(store: Store, retention: i64) -> Self {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            store,
            retention,
            sequence: std::sync::Arc::new(start.into()),
        }
    }

    /// Logs `event` and stores it (through the batching writer, so a burst of events shares
    /// commits). A failure to store is logged, never the caller's failure: the action it
    /// describes has already happened.
    pub async fn record(&self, event: Event<'_>) {
        let record = EventRecord {
            at: self.store.clock().now(),
            kind: event.kind.as_str().to_string(),
            actor: event.actor.map(str::to_string),
            subject: event.subject.map(str::to_string),
            ip: event.origin.ip.map(|ip| ip.to_string()),
            user_agent: event.origin.user_agent.clone(),
            surface: Some(event.origin.surface.to_string()).filter(|s| !s.is_empty()),
            method: event.method.map(str::to_string),
            detail: event.detail.map(str::to_string),
        };
        tracing::info!(
            target: "audit",
            event = %record.kind,
            actor = record.actor.as_deref().unwrap_or("-"),
            subject = record.subject.as_deref().unwrap_or("-"),
            ip = record.ip.as_deref().unwrap_or("-"),
            surface = record.surface.as_deref().unwrap_or("-"),
            method = record.method.as_deref().unwrap_or("-"),
            detail = record.detail.as_deref().unwrap_or("-"),
            "security event"
        );
        // Fixed-width hex sorts as the number does; the random tail keeps ids of several
        // nodes apart.
        let sequence = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{sequence:016x}{}", crate::token::opaque::random_token(6));
        let stored = self
            .store
            .write_batched(move |txn| events::append_in(txn, &id, &record))
            .await;
        if let Err(e) = stored {
            tracing::error!(error = %e, "a security event could not be stored (it is in the log)");
        }
    }

    /// Events matching `query`, newest first, and the cursor of the next page.
    pub async fn list(&self, query: EventQuery) -> super::Result<EventPage> {
        let (events, next) = self.store.run(move |s| s.list_events(&query)).await?;
        Ok(EventPage {
            events,
            next: next.map(|(at, id)| format!("{at}.{id}")),
        })
    }

    /// Seconds events are kept (the sweeper removes older ones).
    pub fn retention(&self) -> i64 {
        self.retention
    }
}

/// One page of events.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<(String, EventRecord)>,
    /// Give as `before` for the next page; `None` on the last.
    pub next: Option<String>,
}

/// Parses a page cursor (`<time>.<id>`, as [`EventPage::next`] gives it).
pub fn parse_cursor(cursor: &str) -> Option<(u64, String)> {
    let (at, id) = cursor.split_once('.')?;
    Some((at.parse().ok()?, id.to_string()))
}
