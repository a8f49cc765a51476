//! The rmcp ceiling: the example's `roll_dice` tool on a bare rmcp server, with no
//! authentication, served on raw hyper exactly the way `mcp-oauth-kit`'s `serve.rs` serves
//! (hyper-util auto builder, `TCP_NODELAY`, `StreamableHttpService::handle` from a
//! `service_fn`) and with the kit's rmcp settings (`server.rs`). Whatever the kit adds on top
//! of rmcp (routing, Host/Origin checks, the bearer guard, token verification, session binding,
//! the tool registry, request logging) is the difference between this server and the example.
//!
//! Environment: `PORT` (default 8000), `MCP_STATELESS` (`true`: no sessions, JSON responses).
//! The caller is always `bench`: `"bench rolled a N on a 6-sided die."`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use tokio_util::sync::CancellationToken;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct RollArgs {
    /// How many sides the die has (2 to 1000).
    #[serde(default = "six")]
    #[schemars(range(min = 2, max = 1000))]
    sides: u32,
}

fn six() -> u32 {
    6
}

/// Cheap to clone, like the kit's `ToolsHandler`: rmcp's factory clones it per session and per
/// stateless request.
#[derive(Clone)]
struct Dice {
    tool_router: Arc<ToolRouter<Self>>,
    info: Arc<ServerConfig>,
}

#[tool_router]
impl Dice {
    #[tool(description = "Roll a die with the given number of sides and say who rolled what.")]
    async fn roll_dice(&self, Parameters(RollArgs { sides }): Parameters<RollArgs>) -> CallToolResult {
        if !(2..=1000).contains(&sides) {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "a die needs 2 to 1000 sides, not {sides}"
            ))]);
        }
        let value = rand::random_range(1..=sides);
        CallToolResult::success(vec![ContentBlock::text(format!("bench rolled a {value} on a {sides}-sided die."))])
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Dice {
    fn get_info(&self) -> ServerConfig {
        (*self.info).clone()
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8000);
    let stateless = env_flag("MCP_STATELESS");
    let info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        .with_server_info(Implementation::new("rmcp ceiling", env!("CARGO_PKG_VERSION")));
    let handler = Dice { tool_router: Arc::new(Dice::tool_router()), info: Arc::new(info) };
    // The kit's settings (crates/mcp-oauth-kit/src/server.rs).
    let cancel = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!stateless)
        .with_json_response(stateless)
        .with_max_request_body_bytes(4 * 1024 * 1024)
        .with_cancellation_token(cancel.child_token())
        .disable_allowed_hosts()
        .disable_allowed_origins();
    config.sse_keep_alive = Some(Duration::from_secs(15));
    let service =
        StreamableHttpService::new(move || Ok(handler.clone()), Arc::new(LocalSessionManager::default()), config);
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
        let service = service.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let service = service.clone();
            async move {
                let path = req.uri().path();
                if path == "/mcp" || path == "/mcp/" {
                    Ok::<_, std::convert::Infallible>(service.handle(req).await)
                } else {
                    let mut res = http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"not found\n")).boxed(),
                    );
                    *res.status_mut() = http::StatusCode::NOT_FOUND;
                    Ok(res)
                }
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
