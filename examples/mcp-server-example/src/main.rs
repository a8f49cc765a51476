//! # mcp-server-example
//!
//! The demo MCP server: two demo users, an ordinary tool (`roll_dice`) and an MCP App
//! (`greeting_card`), behind mcp-oauth-kit's OAuth 2.1 authorization server and login page.
//!
//! Run it with `cargo run --release -p mcp-server-example`, then connect an MCP client to
//! `http://127.0.0.1:8000/mcp` and sign in as alice / password123 or bob / hunter2.
//! Configuration comes from the environment (see `.env.example`): `PUBLIC_URL`, `HOST`, `PORT`,
//! and `DATABASE_URL` (default: a SQLite file `data/mcp-server-example.sqlite3`, created on
//! first start, so registrations and tokens survive a restart). With `OIDC_ISSUER`,
//! `OIDC_CLIENT_ID` and `OIDC_CLIENT_SECRET` (and optionally `OIDC_SCOPES`) the login page also
//! offers sign-in at that OpenID provider (see `docs/DEPLOY.md`). `backup PATH` and
//! `revoke-all` are the operator's commands (`mcp-server-example help`).

mod commands;
mod dice;
mod greeting_card;
mod users;

use std::io::IsTerminal as _;

use commands::Command;
use mcp_oauth_kit::logging::WithRequestId;
use mcp_oauth_kit::store::{Store as _, open_store};
use mcp_oauth_kit::upstream::OidcProvider;
use mcp_oauth_kit::{Config, McpServer, Tools};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format;

/// Where registrations and tokens live unless `DATABASE_URL` says otherwise.
const DEFAULT_DATABASE_URL: &str = "sqlite://data/mcp-server-example.sqlite3";

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `RUST_LOG`, or the default filter when it is unset; a malformed one stops the start rather
/// than silently logging something else.
fn log_filter() -> Result<EnvFilter, String> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v)
            .map_err(|e| format!("invalid configuration: RUST_LOG: {v:?} is not a log filter ({e})")),
        _ => Ok(EnvFilter::new("info,rmcp=warn")),
    }
}

/// Colours only for a person at a terminal: a log redirected to a file or a pipe stays plain
/// text. `NO_COLOR` (<https://no-color.org>) turns them off at a terminal too.
fn log_in_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `LOG_FORMAT`: `text` (the default) or `json`, one object a line for a log collector.
fn log_as_json() -> Result<bool, String> {
    match std::env::var("LOG_FORMAT").unwrap_or_default().trim() {
        "" | "text" => Ok(false),
        "json" => Ok(true),
        other => Err(format!("invalid configuration: LOG_FORMAT: {other:?} is not text or json")),
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let command = Command::parse(std::env::args_os().skip(1))?;
    if let Command::Help = command {
        println!("{}", Command::usage());
        return Ok(());
    }
    // The log goes to stderr, so that stdout holds only what a person needs to start.
    // Each line of a request ends with (text) or begins with (JSON) its `request_id`.
    let log = tracing_subscriber::fmt().with_env_filter(log_filter()?).with_writer(std::io::stderr);
    match log_as_json()? {
        true => log.json().event_format(WithRequestId::new(format().json())).init(),
        false => {
            let colour = log_in_colour();
            log.with_ansi(colour).event_format(WithRequestId::new(format().with_ansi(colour))).init()
        }
    }
    let config = Config::from_env()?.with_server_name("Acme demo MCP server");
    let database_url = config.database_url.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    if let Command::Backup(path) = &command {
        return commands::backup(&database_url, path).await;
    }
    let tools = Tools::new()
        .instructions("Roll dice with roll_dice; show a personal greeting card with greeting_card.")
        .tool(dice::tool())
        .tool(greeting_card::tool());
    let store = open_store(&database_url).await.map_err(|e| format!("DATABASE_URL: {e}"))?;
    let mut builder = McpServer::builder(config).store(store.clone()).user_store(users::demo_users()?).tools(tools);
    if let Command::RevokeAll = command {
        let revoked = builder.build()?.revoke_all().await;
        store.close().await;
        revoked?;
        println!("Revoked every grant, sign-in session and remembered consent; clients stay registered");
        return Ok(());
    }
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
