//! The rmcp ceiling: the example's `roll_dice` tool on a bare rmcp server, with no
//! authentication, served on raw hyper exactly the way `mcp-oauth-kit`'s `serve.rs` serves
//! (its accept loop, `mcp_bench::serve_forever`, and `StreamableHttpService::handle` from a
//! `service_fn`) and with the kit's rmcp settings (`server.rs`). Whatever the kit adds on top
//! of rmcp (routing, Host/Origin checks, the bearer guard, token verification, session binding,
//! the tool registry, request logging) is the difference between this server and the example.
//!
//! Environment: `PORT` (default 8000), `MCP_STATELESS` (`true`: no sessions, JSON responses).
//! The caller is always `bench`: `"bench rolled a N on a 6-sided die."`.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let stateless = mcp_bench::stateless();
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
    mcp_bench::serve_forever(hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let service = service.clone();
        async move {
            let path = req.uri().path();
            if path == "/mcp" || path == "/mcp/" {
                Ok::<_, std::convert::Infallible>(service.handle(req).await)
            } else {
                let mut res =
                    http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"not found\n")).boxed());
                *res.status_mut() = http::StatusCode::NOT_FOUND;
                Ok(res)
            }
        }
    }))
    .await
}
