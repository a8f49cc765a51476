//! Running the router on raw hyper: accept loop with `TCP_NODELAY`, HTTP/1 and HTTP/2 on the
//! same port, graceful shutdown, and the background sweeper of expired state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::earlier;
use crate::config::DEFAULT_SWEEP_INTERVAL;
use crate::error::StoreError;
use crate::router::Router;
use crate::state::AppState;
use crate::store::Store;

/// How long a graceful shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}

pub(crate) async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Without it, each SSE response waits for the peer's delayed ACK (Nagle's
                // algorithm holds the last small segment back until then).
                let _ = stream.set_nodelay(true);
                // The peer address goes along with each request, for the OAuth endpoints' limits.
                let router = router.clone();
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    async move { Ok::<_, std::convert::Infallible>(router.handle_from(req, Some(peer)).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    // End rmcp's SSE streams so their connections can close.
    cancel.cancel();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timed out; closing remaining connections"),
    }
    Ok(())
}

/// Log one sweep's outcome: the count at debug, a failure at warn (the next sweep retries).
pub(crate) fn log_sweep(what: &str, outcome: Result<usize, StoreError>) {
    match outcome {
        Ok(0) => {}
        Ok(n) => tracing::debug!(removed = n, "swept {what}"),
        Err(e) => tracing::warn!(error = %e, "sweeping {what} failed"),
    }
}

/// Every [`Config::sweep_interval`](crate::Config::sweep_interval) (a minute by default, the
/// first time one interval after start) until `cancel` fires, drop expired codes, tokens,
/// pending sign-ins, sign-in sessions, consent, finished rate-limit windows, the sealed
/// successors of refresh rotations whose [`Config::refresh_grace`](crate::Config::refresh_grace)
/// is over, MCP sessions idle for
/// [`Config::mcp_session_idle_ttl`](crate::Config::mcp_session_idle_ttl), and client
/// registrations that no user signed in to within
/// [`Config::unused_client_ttl`](crate::Config::unused_client_ttl); and end in this process
/// the MCP sessions that ended on another instance ([`crate::mcp_session_sweep`]).
pub(crate) fn spawn_sweeper(
    store: Arc<dyn Store>,
    state: Arc<AppState>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    // `interval` panics on zero, which `from_env` refuses but a field set in code could hold.
    let every = match state.config.sweep_interval {
        d if d.is_zero() => DEFAULT_SWEEP_INTERVAL,
        d => d,
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => return,
            }
            let now = state.config.clock.now();
            log_sweep("expired OAuth state", store.sweep_expired(now).await);
            let grace_over = earlier(now, state.config.refresh_grace);
            log_sweep("sealed refresh successors", store.forget_sealed_successors(grace_over).await);
            let unused_ttl = state.config.unused_client_ttl;
            if !unused_ttl.is_zero() {
                let registered_before = earlier(now, unused_ttl);
                log_sweep("unused client registrations", store.sweep_unused_clients(registered_before).await);
            }
            crate::mcp_session_sweep::sweep_mcp_sessions(&*store, &state).await;
        }
    })
}
