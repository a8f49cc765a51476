//! The command line: `mcp-server-example` serves; `backup PATH` and `revoke-all` are the
//! operator's maintenance commands, run beside a running server on the same `DATABASE_URL`.

use std::ffi::OsString;
use std::path::PathBuf;

use mcp_oauth_kit::store::SqlStore;

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    /// No arguments: serve until SIGTERM.
    Serve,
    /// Write a consistent copy of the SQLite database into a new file, mode 0600.
    Backup(PathBuf),
    /// End every grant, sign-in session and remembered consent; users sign in again.
    RevokeAll,
    /// Print the usage.
    Help,
}

const USAGE: &str = "usage: mcp-server-example [backup PATH | revoke-all | help]
  (no command)  serve MCP and OAuth on HOST:PORT until SIGTERM
  backup PATH   copy the SQLite database in DATABASE_URL into the new file PATH (mode 0600),
                while the server runs; PostgreSQL is backed up with pg_dump
  revoke-all    end every grant, sign-in session and remembered consent in DATABASE_URL:
                every user signs in again with a password; clients stay registered
Configuration comes from the environment: see .env.example.";

impl Command {
    /// The command that `args` (without the program name) name.
    pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let command = match args.next() {
            None => return Ok(Self::Serve),
            Some(c) => c,
        };
        let rest: Vec<OsString> = args.collect();
        match (command.to_str(), rest.as_slice()) {
            (Some("backup"), [path]) => Ok(Self::Backup(PathBuf::from(path))),
            (Some("revoke-all"), []) => Ok(Self::RevokeAll),
            (Some("help" | "--help" | "-h"), []) => Ok(Self::Help),
            _ => Err(format!("unexpected arguments {command:?} {rest:?}\n{USAGE}")),
        }
    }

    /// The usage text.
    pub(crate) fn usage() -> &'static str {
        USAGE
    }
}

/// `backup PATH`: the kit's `SqlStore::backup_to` on the database in `database_url`.
pub(crate) async fn backup(database_url: &str, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    if !database_url.trim().starts_with("sqlite:") && !database_url.trim().starts_with("postgres") {
        return Err("DATABASE_URL keeps nothing on disk: there is nothing to back up".into());
    }
    let store = SqlStore::connect(database_url).await.map_err(|e| format!("DATABASE_URL: {e}"))?;
    let copied = store.backup_to(path).await;
    store.close().await;
    copied?;
    println!("Backed up to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Command::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn each_command_and_nothing_else() {
        assert!(matches!(parse(&[]), Ok(Command::Serve)));
        assert!(
            matches!(parse(&["backup", "/b/x.db"]), Ok(Command::Backup(p)) if p == std::path::Path::new("/b/x.db"))
        );
        assert!(matches!(parse(&["revoke-all"]), Ok(Command::RevokeAll)));
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        for bad in [&["backup"][..], &["backup", "a", "b"], &["revoke-all", "now"], &["serve"], &["--port=1"]] {
            let err = parse(bad).expect_err("refused");
            assert!(err.contains("usage: mcp-server-example"), "{bad:?}: {err}");
        }
    }
}
