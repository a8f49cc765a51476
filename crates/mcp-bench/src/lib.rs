//! What the benchmark's two baseline servers (`rmcp-ceiling` and `mcp-floor`) share with each
//! other and with `mcp-oauth-kit`'s `serve`: the accept loop (hyper-util's auto builder,
//! `TCP_NODELAY` on every socket, one task per connection) and the environment they read. The
//! baselines then differ from the example only in what they answer. The `mcp-bench` binary,
//! which starts them, does not use this library.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

/// `MCP_STATELESS` as the kit reads it: `true` (or `1`, `yes`) serves MCP without sessions.
pub fn stateless() -> bool {
    std::env::var("MCP_STATELESS").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// Serve `service` on `127.0.0.1:$PORT` (8000 when `PORT` is unset) until the process is
/// killed, the way the kit's `serve` accepts connections.
///
/// # Errors
///
/// Only binding the port can fail; a failed `accept` is retried after 100 ms.
///
/// # Example
///
/// ```no_run
/// use http_body_util::Full;
///
/// # async fn run() -> std::io::Result<()> {
/// let hello = hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(bytes::Bytes::from_static(b"hello\n"))))
/// });
/// mcp_bench::serve_forever(hello).await
/// # }
/// ```
pub async fn serve_forever<S, B>(service: S) -> std::io::Result<()>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(a) => a,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service.clone()).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
