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
//! notes-server backup PATH | revoke-all      the kit's operator commands, on its OAuth state
//! ```
//!
//! Storage: `DATABASE_URL` (default `sqlite://data/notes.sqlite3`) holds the users and notes;
//! the kit's OAuth state (clients, codes, hashed tokens) is in its own file, the kit's
//! `MCP_OAUTH_DATABASE_URL` (default `sqlite://data/notes-oauth.sqlite3`). Apart, because the
//! kit owns its schema (its tables have plain names such as `sessions`, and its migrations run
//! at every start) and opens its own connection pool; and because deleting the OAuth file
//! signs everybody out without touching anyone's notes.

mod notes;
mod users;

use std::io::{BufRead as _, IsTerminal as _};

use mcp_oauth_kit::cli::Command;
use mcp_oauth_kit::{Config, McpServer, Password};
use sqlx::SqlitePool;

const DEFAULT_DATABASE_URL: &str = "sqlite://data/notes.sqlite3";
const DEFAULT_OAUTH_STORE_URL: &str = "sqlite://data/notes-oauth.sqlite3";
const USAGE: &str = "usage: notes-server [serve | add-user <username> <email> | disable-user <username> | backup PATH | revoke-all | help]";
const HELP: &str = "  add-user      add a user; the password is read from stdin
  disable-user  stop a user signing in or refreshing a token
The kit's commands, on the OAuth state in MCP_OAUTH_DATABASE_URL:";

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
    mcp_oauth_kit::logging::init()?;
    // Clients get `mcp` unless they ask for `notes:write` too.
    let mut config = Config::from_env()?.with_server_name("Notes").with_scopes(&["mcp", notes::WRITE_SCOPE], &["mcp"]);
    // DATABASE_URL is the notes': the kit's state is in its own variable or file.
    config.database_url = Some(env_or("MCP_OAUTH_DATABASE_URL", DEFAULT_OAUTH_STORE_URL));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The kit's operator commands (`backup PATH`, `revoke-all`) beside the notes' own; anything
    // that is neither gets this program's usage below.
    if !matches!(args.as_slice(), [] | ["serve"] | ["help" | "--help" | "-h"] | ["add-user", ..] | ["disable-user", ..])
        && let Ok(Some(command)) = Command::parse("notes-server", args.iter().map(Into::into))
    {
        return Ok(command.run(&config).await?);
    }
    let pool =
        users::open(&env_or("DATABASE_URL", DEFAULT_DATABASE_URL)).await.map_err(|e| format!("DATABASE_URL: {e}"))?;
    match args.as_slice() {
        [] | ["serve"] => serve(config, pool).await,
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}\n{HELP}\n{}", Command::usage("notes-server"));
            Ok(())
        }
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

async fn serve(config: Config, pool: SqlitePool) -> Result<(), Box<dyn std::error::Error>> {
    let store = config.open_store().await?;
    let server = McpServer::builder(config)
        .store(store)
        .user_store(users::SqliteUsers { pool: pool.clone() })
        .tools(notes::tools(pool))
        .build()?;
    println!("Connect an MCP client to {}", server.config().resource());
    println!("Add a user to sign in as with: notes-server add-user <username> <email> (password on stdin)");
    server.run().await?;
    Ok(())
}
