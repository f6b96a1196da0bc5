//! `/healthz`, `/readyz` and `/metrics`.

use poem_openapi::{
    ApiResponse, OpenApi,
    payload::{Json, PlainText},
};

use super::{ApiTags, types::Health};
use crate::{http::error::Result, service::Services};

pub struct OpsApi {
    pub services: Services,
}

#[derive(ApiResponse)]
enum MetricsText {
    /// Prometheus text exposition format 0.0.4.
    #[oai(
        status = 200,
        content_type = "text/plain; version=0.0.4; charset=utf-8"
    )]
    Ok(PlainText<String>),
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Liveness
    ///
    /// 200 while the process is up.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// Readiness
    ///
    /// 200 when the database answers a read and can write; 503 (`storage_unavailable`) while
    /// a storage fault (such as a full disk) stops writes, until the store has reopened the
    /// file and a probe write succeeded, which this check also attempts.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> Result<Json<Health>> {
        self.services.ops.ready().await?;
        Ok(Json(Health {
            status: "ready".into(),
        }))
    }

    /// Metrics
    ///
    /// Prometheus counters: responses by status class, request durations, password checks by
    /// outcome (success, failure, throttled) across every login surface, rows per table, mail
    /// health and start time. Unauthenticated, like the probes: expose it only where your
    /// scraper reaches it.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> Result<MetricsText> {
        Ok(MetricsText::Ok(PlainText(
            self.services.ops.metrics_text().await?,
        )))
    }
}
