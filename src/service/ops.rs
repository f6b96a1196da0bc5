//! What the operations endpoints report: readiness and the `/metrics` figures. The HTTP layer
//! asks here; it never reads the store itself.

use std::sync::Arc;

use super::{Result, ServiceError, metrics::Metrics};
use crate::{
    mail::Mailer,
    store::{Store, StoreError},
};

/// Readiness and metrics.
#[derive(Clone)]
pub struct Operations {
    store: Store,
    mailer: Mailer,
    metrics: Arc<Metrics>,
    started_at: i64,
}

impl Operations {
    pub fn new(store: Store, mailer: Mailer, metrics: Arc<Metrics>, started_at: i64) -> Self {
        Self {
            store,
            mailer,
            metrics,
            started_at,
        }
    }

    /// Whether the database answers a read and can write. While a storage fault (a full disk)
    /// stops writes, this also tries to reopen the file and prove a write. Any failure is the
    /// one `Unavailable` answer.
    pub async fn ready(&self) -> Result<()> {
        let check = |s: &Store| {
            if !s.try_recover() {
                return Err(StoreError::Unavailable("the database cannot write".into()));
            }
            s.ping()
        };
        self.store
            .run(check)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))
    }

    /// The figures of the admin console's dashboard: rows per table, password checks since
    /// start by outcome, seconds since start, and whether mail and the database work.
    pub async fn dashboard(&self) -> Result<Dashboard> {
        let table_rows = self.store.run(|s| s.table_counts()).await?;
        Ok(Dashboard {
            table_rows,
            logins: self.metrics.logins(),
            uptime: self.store.clock().now() - self.started_at,
            mail_failing: self.mailer.delivery_failing(),
            store_writable: self.store.writable(),
        })
    }

    /// The Prometheus text of every counter and gauge.
    pub async fn metrics_text(&self) -> Result<String> {
        let table_rows = self.store.run(|s| s.table_counts()).await?;
        let gauges = super::metrics::Gauges {
            table_rows,
            mail_failing: self.mailer.delivery_failing(),
            started_at: self.started_at,
            store_commits: self.store.commits(),
            store_durable_commits: self.store.durable_commits(),
            store_writable: self.store.writable(),
        };
        Ok(self.metrics.render(&gauges))
    }
}

/// What the admin console's dashboard shows (the `/metrics` figures, read in-process).
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub table_rows: Vec<(&'static str, u64)>,
    pub logins: Vec<(&'static str, u64)>,
    pub uptime: i64,
    pub mail_failing: bool,
    pub store_writable: bool,
}
