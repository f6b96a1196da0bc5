//! `/healthz` and `/readyz`.

use poem::http::StatusCode;
use poem_openapi::{OpenApi, payload::Json};

use super::{ApiTags, types::Health};
use crate::{
    http::error::{ApiError, Result},
    service::Services,
};

pub struct OpsApi {
    pub services: Services,
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
    /// 200 when the database answers a read, 503 otherwise.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> Result<Json<Health>> {
        match self.services.store.run(|s| s.ping()).await {
            Ok(()) => Ok(Json(Health {
                status: "ready".into(),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check failed");
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is not answering",
                ))
            }
        }
    }
}
