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
