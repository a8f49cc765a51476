//! `/healthz` (the process answers) and `/readyz` (the store answers), for load balancers and
//! orchestrators. Both are served on the public port and on the metrics listener.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::http_util::{HttpResponse, set_retry_after, text};
use crate::store::Store;

/// How long `/readyz` waits for the store before it answers 503.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a store check's outcome answers `/readyz`: a flood of probes costs the store at
/// most one query per interval.
const REUSE_FOR: Duration = Duration::from_secs(1);

/// `GET /healthz`: 200 while the process serves requests.
pub(crate) fn healthz() -> HttpResponse {
    text(StatusCode::OK, "ok\n")
}

/// The store check behind `/readyz`, shared by every request.
pub(crate) struct Readiness {
    store: Arc<dyn Store>,
    /// The last check's time and outcome. An async mutex on purpose: a probe that arrives
    /// while a check runs waits for its outcome instead of starting another.
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self { store, last: tokio::sync::Mutex::new(None) }
    }

    /// `GET /readyz`: 200 when the store answered a read within 2 s, 503 otherwise, with
    /// `Retry-After` set to when the store is checked again.
    pub(crate) async fn readyz(&self) -> HttpResponse {
        if self.store_answers().await {
            text(StatusCode::OK, "ready\n")
        } else {
            let mut res = text(StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n");
            set_retry_after(&mut res, REUSE_FOR);
            res
        }
    }

    async fn store_answers(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < REUSE_FOR
        {
            return ok;
        }
        // A read of a client id no registration produces: one indexed lookup on any backend.
        let ok = match tokio::time::timeout(STORE_TIMEOUT, self.store.client("readyz-probe")).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness check: the store failed");
                false
            }
            Err(_) => {
                tracing::warn!("readiness check: the store did not answer within 2 s");
                false
            }
        };
        *last = Some((Instant::now(), ok));
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn ready_with_a_store_that_answers() {
        let r = Readiness::new(Arc::new(MemoryStore::new()));
        assert_eq!(r.readyz().await.status(), StatusCode::OK);
        assert_eq!(healthz().status(), StatusCode::OK);
    }
}
