//! # mcp-server-example
//!
//! The demo MCP server: two demo users, an ordinary tool (`roll_dice`) and an MCP App
//! (`greeting_card`), behind mcp-oauth-kit's OAuth 2.1 authorization server and login page.
//!
//! Run it with `cargo run --release -p mcp-server-example`, then connect an MCP client to
//! `http://127.0.0.1:8000/mcp` and sign in as alice / password123 or bob / hunter2.
//! Configuration comes from the environment (see `.env.example`): `PUBLIC_URL`, `HOST`, `PORT`,
//! `RUST_LOG`, `LOG_FORMAT`, and `DATABASE_URL` (or `MCP_OAUTH_DATABASE_URL`; default: a SQLite
//! file `data/mcp-server-example.sqlite3`, created on first start, so registrations and tokens
//! survive a restart). With `OIDC_ISSUER`, `OIDC_CLIENT_ID` and `OIDC_CLIENT_SECRET` (and
//! optionally `OIDC_SCOPES`) the login page also offers sign-in at that OpenID provider (see
//! `docs/DEPLOY.md`). `backup PATH` and `revoke-all` are the operator's commands, which the kit
//! provides (`mcp-server-example help`).

mod dice;
mod greeting_card;
mod users;

use mcp_oauth_kit::cli::Command;
use mcp_oauth_kit::upstream::OidcProvider;
use mcp_oauth_kit::{Config, McpServer, Tools};

/// Where registrations and tokens live unless `MCP_OAUTH_DATABASE_URL` or `DATABASE_URL` says otherwise.
const DEFAULT_DATABASE_URL: &str = "sqlite://data/mcp-server-example.sqlite3";

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    mcp_oauth_kit::logging::init()?;
    let mut config = Config::from_env()?.with_server_name("Acme demo MCP server");
    config.database_url.get_or_insert_with(|| DEFAULT_DATABASE_URL.to_owned());
    if let Some(command) = Command::from_args()? {
        return Ok(command.run(&config).await?);
    }
    let tools = Tools::new()
        .instructions("Roll dice with roll_dice; show a personal greeting card with greeting_card.")
        .tool(dice::tool())
        .tool(greeting_card::tool());
    let store = config.open_store().await?;
    let mut builder = McpServer::builder(config).store(store).user_store(users::demo_users()?).tools(tools);
    if let Some(provider) = OidcProvider::from_env().await? {
        println!("The login page offers sign-in at {}", provider.issuer());
        builder = builder.upstream(provider);
    }
    let server = builder.build()?;
    // Printed whatever RUST_LOG says: the two things a first run needs.
    println!("Connect an MCP client to {}", server.config().resource());
    println!("Sign in as alice / password123 or bob / hunter2 (demo users, demo only)");
    server.run().await?;
    Ok(())
}
