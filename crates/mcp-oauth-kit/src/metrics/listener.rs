//! The metrics listener ([`Config::metrics_addr`](crate::Config::metrics_addr)): `GET /metrics`
//! (the Prometheus exposition), `/healthz` and `/readyz`, on an address of its own so that the
//! public port never shows them. Its three paths are the only ones outside the router.

use std::sync::Arc;
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::endpoints::health;
use crate::http_util::{HttpResponse, full, no_store, text};
use crate::state::AppState;

/// Serve the metrics listener until `cancel` fires.
pub(crate) async fn serve(listener: TcpListener, metrics: Metrics, state: Arc<AppState>, cancel: CancellationToken) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = cancel.cancelled() => return,
        };
        let (metrics, state) = (metrics.clone(), state.clone());
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let (metrics, state) = (metrics.clone(), state.clone());
            async move { Ok::<_, std::convert::Infallible>(answer(&req, &metrics, &state).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = conn => if let Err(e) = result {
                    tracing::debug!(error = %e, "metrics connection ended with an error");
                },
                () = cancel.cancelled() => {}
            }
        });
    }
}

async fn answer<B>(req: &Request<B>, metrics: &Metrics, state: &AppState) -> HttpResponse {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let mut res = http::Response::new(full(metrics.render()));
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            no_store(res.headers_mut());
            res
        }
        "/healthz" => health::healthz(),
        "/readyz" => state.readiness.readyz().await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}
