//! Put the kit's OAuth in front of an rmcp `ServerHandler` you already have.
//!
//! Run it with `PORT=8001 cargo run -p mcp-oauth-kit --example existing_handler`, connect a
//! client to `http://127.0.0.1:8001/mcp` and sign in as carol / demo-only (demo only).
//! The handler is ordinary rmcp code; the only kit-specific line inside it is
//! `AccessToken::from_context`, which names the signed-in caller.

use mcp_oauth_kit::rmcp::handler::server::router::tool::ToolRouter;
use mcp_oauth_kit::rmcp::model::{ServerCapabilities, ServerConfig};
use mcp_oauth_kit::rmcp::service::RequestContext;
use mcp_oauth_kit::rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use mcp_oauth_kit::{AccessToken, Config, McpServer, Password, StaticUserStore};

/// An rmcp server written without the kit in mind.
#[derive(Clone)]
struct Notes {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Notes {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Say who is signed in")]
    fn whoami(&self, ctx: RequestContext<RoleServer>) -> String {
        match AccessToken::from_context(&ctx) {
            Some(caller) => format!("You are {} (scopes: {})", caller.username, caller.scopes.join(" ")),
            None => "Nobody is signed in".to_owned(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // DEMO ONLY: a real server implements `UserStore` over its user database.
    let users = StaticUserStore::new().with_user("user-carol", "carol", &Password::new("demo-only"))?;
    McpServer::builder(Config::from_env()?).user_store(users).rmcp_handler(Notes::new()).build()?.run().await?;
    Ok(())
}
