//! The JWT server: the example's tools (`roll_dice`, `greeting_card`) behind `mcp-oauth-kit` in
//! resource-server mode, with an `auth::JwtVerifier` over a static key set in place of the
//! built-in authorization server. Everything else is the example's: the configuration from
//! the environment (`PUBLIC_URL`, `PORT`, `MCP_STATELESS`, `DATABASE_URL`, default `memory`,
//! `TOKEN_CACHE_TTL_SECS`, …), the log, the server name and instructions. Against the example
//! it measures what taking tokens from another issuer costs the MCP hot path.
//!
//! Its own environment: `BENCH_JWT_ISSUER`, the `iss` its tokens carry, and `BENCH_JWKS`, the
//! issuer's public keys as JWKS JSON. The benchmark holds the private key and mints the tokens
//! (`crates/mcp-bench/src/jwt.rs`); their `preferred_username` is the name the tools see.

use mcp_oauth_kit::auth::{JwtAlgorithm, JwtVerifier};
use mcp_oauth_kit::{Config, McpServer, Tools};

// The example's own tool modules, compiled into this binary: the tools measured here are the
// example's to the byte, and follow it when it changes.
#[path = "../../../../examples/mcp-server-example/src/dice.rs"]
mod dice;
#[path = "../../../../examples/mcp-server-example/src/greeting_card.rs"]
mod greeting_card;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A variable this binary cannot start without.
fn required(name: &str) -> Result<String, String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| format!("{name} is not set"))
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    mcp_oauth_kit::logging::init()?;
    let mut config = Config::from_env()?.with_server_name("Acme demo MCP server");
    config.database_url.get_or_insert_with(|| "memory".to_owned());
    let verifier = JwtVerifier::builder(&config, required("BENCH_JWT_ISSUER")?)
        .static_jwks(required("BENCH_JWKS")?)
        .algorithms([JwtAlgorithm::ES256])
        .build()?;
    let store = config.open_store().await?;
    let tools = Tools::new()
        .instructions("Roll dice with roll_dice; show a personal greeting card with greeting_card.")
        .tool(dice::tool())
        .tool(greeting_card::tool());
    McpServer::builder(config).store(store).auth_provider(verifier).tools(tools).build()?.run().await?;
    Ok(())
}
