//! # notes-server
//!
//! A small notes app on mcp-oauth-kit, written as an outside user of the kit would: its own
//! users in SQLite (`users.rs`), per-user notes behind an extra scope and an MCP App
//! (`notes.rs`). `README.md` says how to run it and sign in.
//!
//! ```text
//! notes-server [serve]                       serve (the default)
//! notes-server add-user <username> <email>   add a user; the password is read from stdin
//! notes-server disable-user <username>       stop a user signing in or refreshing a token
//! ```
//!
//! Storage: `DATABASE_URL` (default `sqlite://data/notes.sqlite3`) holds the users and notes;
//! the kit's OAuth state (clients, codes, hashed tokens) is in its own file, `OAUTH_STORE_URL`
//! (default `sqlite://data/notes-oauth.sqlite3`). Apart, because the kit owns its schema (its
//! tables have plain names such as `sessions`, and its migrations run at every start) and
//! opens its own connection pool; and because deleting the OAuth file signs everybody out
//! without touching anyone's notes.

mod notes;
mod users;

use std::io::{BufRead as _, IsTerminal as _};

use mcp_oauth_kit::store::open_store;
use mcp_oauth_kit::{Config, McpServer, Password};
use sqlx::SqlitePool;

const DEFAULT_DATABASE_URL: &str = "sqlite://data/notes.sqlite3";
const DEFAULT_OAUTH_STORE_URL: &str = "sqlite://data/notes-oauth.sqlite3";
const USAGE: &str = "usage: notes-server [serve | add-user <username> <email> | disable-user <username>]";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// An environment variable, or `default` when it is unset or blank.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let pool =
        users::open(&env_or("DATABASE_URL", DEFAULT_DATABASE_URL)).await.map_err(|e| format!("DATABASE_URL: {e}"))?;
    match args.as_slice() {
        [] | ["serve"] => serve(pool).await,
        ["add-user", username, email] => {
            let password = read_password()?;
            users::add_user(&pool, username, email, &password).await?;
            println!("Added {username}.");
            Ok(())
        }
        ["disable-user", username] => {
            if !users::disable(&pool, username).await? {
                return Err(format!("there is no user {username:?}").into());
            }
            println!("Disabled {username}.");
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

/// The first line of stdin: a password piped in, or typed (visibly: no terminal tricks here).
fn read_password() -> Result<Password, Box<dyn std::error::Error>> {
    if std::io::stdin().is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        return Err("the password needs at least 8 characters".into());
    }
    Ok(Password::new(password))
}

async fn serve(pool: SqlitePool) -> Result<(), Box<dyn std::error::Error>> {
    let filter = env_or("RUST_LOG", "info,rmcp=warn");
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| format!("RUST_LOG: {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Clients get `mcp` unless they ask for `notes:write` too.
    let config = Config::from_env()?.with_server_name("Notes").with_scopes(&["mcp", notes::WRITE_SCOPE], &["mcp"]);
    let oauth_store = open_store(&env_or("OAUTH_STORE_URL", DEFAULT_OAUTH_STORE_URL))
        .await
        .map_err(|e| format!("OAUTH_STORE_URL: {e}"))?;
    let server = McpServer::builder(config)
        .store(oauth_store)
        .user_store(users::SqliteUsers { pool: pool.clone() })
        .tools(notes::tools(pool))
        .build()?;
    println!("Connect an MCP client to {}", server.config().resource());
    println!("Add a user to sign in as with: notes-server add-user <username> <email> (password on stdin)");
    server.run().await?;
    Ok(())
}
