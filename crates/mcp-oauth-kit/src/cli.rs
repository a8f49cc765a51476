//! The operator's command line that every server built on the kit gets: `backup PATH`,
//! `revoke-all` and `help` beside serving, run on the database the server uses while it runs.
//!
//! ```text
//! my-server              serve until SIGTERM
//! my-server backup PATH  copy the SQLite database into the new file PATH (mode 0600)
//! my-server revoke-all   end every grant, sign-in session and remembered consent
//! my-server help         print the usage
//! ```
//!
//! ```no_run
//! use mcp_oauth_kit::cli::Command;
//! use mcp_oauth_kit::{Config, McpServer, StaticUserStore};
//!
//! # async fn run(users: StaticUserStore) -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_env()?;
//! if let Some(command) = Command::from_args()? {
//!     return Ok(command.run(&config).await?);
//! }
//! let store = config.open_store().await?;
//! McpServer::builder(config).store(store).user_store(users).build()?.run().await?;
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{ConfigError, Error};

/// An operator command of the process's command line. No arguments means serve, which is
/// not a command here: [`Command::from_args`] returns `None` for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `backup PATH`: write a consistent copy of the SQLite database into the new file `PATH`
    /// (mode 0600, never over an existing file), while the server runs.
    Backup(PathBuf),
    /// `revoke-all`: end every grant, sign-in session and remembered consent; every user
    /// signs in again, clients stay registered.
    RevokeAll,
    /// `help` (or `--help`, `-h`): print the usage.
    Help {
        /// The program's name, for the usage.
        program: String,
    },
}

impl Command {
    /// The command of this process's arguments, `None` when there are none (serve). The
    /// program's name in the usage is the binary's.
    ///
    /// # Errors
    /// [`Error::Usage`] for anything else, with the usage.
    pub fn from_args() -> Result<Option<Self>, Error> {
        let mut args = std::env::args_os();
        let program = args.next().map(PathBuf::from);
        let program = program.as_deref().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
        Self::parse(program.as_deref().unwrap_or("server"), args)
    }

    /// The command that `args` (without the program's name) ask for; `None` for no arguments.
    ///
    /// ```
    /// use mcp_oauth_kit::cli::Command;
    ///
    /// assert_eq!(Command::parse("notes", ["revoke-all"].map(Into::into))?, Some(Command::RevokeAll));
    /// assert_eq!(Command::parse("notes", [])?, None);
    /// assert!(Command::parse("notes", ["serve", "--now"].map(Into::into)).is_err());
    /// # Ok::<(), mcp_oauth_kit::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Usage`] for any other arguments, naming them, with the usage.
    pub fn parse(program: &str, args: impl IntoIterator<Item = OsString>) -> Result<Option<Self>, Error> {
        let mut args = args.into_iter();
        let Some(command) = args.next() else { return Ok(None) };
        let rest: Vec<OsString> = args.collect();
        match (command.to_str(), rest.as_slice()) {
            (Some("backup"), [path]) => Ok(Some(Self::Backup(PathBuf::from(path)))),
            (Some("revoke-all"), []) => Ok(Some(Self::RevokeAll)),
            (Some("help" | "--help" | "-h"), []) => Ok(Some(Self::Help { program: program.to_owned() })),
            _ => Err(Error::Usage(format!("unexpected arguments {command:?} {rest:?}\n{}", Self::usage(program)))),
        }
    }

    /// The usage text for `program`.
    pub fn usage(program: &str) -> String {
        format!(
            "usage: {program} [backup PATH | revoke-all | help]
  (no command)  serve MCP and OAuth on HOST:PORT until SIGTERM
  backup PATH   copy the SQLite database in DATABASE_URL into the new file PATH (mode 0600),
                while the server runs; PostgreSQL is backed up with pg_dump
  revoke-all    end every grant, sign-in session and remembered consent in DATABASE_URL:
                every user signs in again; clients stay registered
Configuration comes from the environment: see .env.example."
        )
    }

    /// Run the command on the database of [`Config::database_url`], and say on stdout what was
    /// done.
    ///
    /// # Errors
    /// [`Error::Config`] when no database is configured or it cannot be opened (naming its
    /// variable), or for `backup` when it keeps nothing on disk; [`Error::Store`] when the
    /// command fails there (for `backup` on PostgreSQL: the message says to use `pg_dump`).
    pub async fn run(&self, config: &Config) -> Result<(), Error> {
        match self {
            Self::Help { program } => println!("{}", Self::usage(program)),
            Self::Backup(path) => backup(config, path).await?,
            Self::RevokeAll => {
                let store = config.open_store().await?;
                let revoked = store.revoke_all().await;
                store.close().await;
                revoked?;
                tracing::warn!("every grant, sign-in session and remembered consent revoked");
                println!("Revoked every grant, sign-in session and remembered consent; clients stay registered");
            }
        }
        Ok(())
    }
}

/// `backup PATH`: [`SqlStore::backup_to`](crate::store::SqlStore::backup_to) on the configured
/// database.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn backup(config: &Config, path: &Path) -> Result<(), Error> {
    let (setting, url) = config.database_setting()?;
    if !url.starts_with("sqlite:") && !url.starts_with("postgres") {
        return Err(ConfigError::new(setting, "keeps nothing on disk: there is nothing to back up").into());
    }
    let store = crate::store::SqlStore::connect(url).await.map_err(|e| ConfigError::new(setting, e.to_string()))?;
    let copied = store.backup_to(path).await;
    store.close().await;
    copied?;
    println!("Backed up to {}", path.display());
    Ok(())
}

/// Without a SQL store there is no database file to copy.
#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
async fn backup(config: &Config, _path: &Path) -> Result<(), Error> {
    let (setting, _) = config.database_setting()?;
    Err(ConfigError::new(setting, "backup needs the `sqlite` feature, which this build leaves out").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Command>, Error> {
        Command::parse("acme-server", args.iter().map(OsString::from))
    }

    #[test]
    fn each_command_and_nothing_else() {
        assert_eq!(parse(&[]).expect("serve"), None);
        assert_eq!(parse(&["backup", "/b/x.db"]).expect("backup"), Some(Command::Backup("/b/x.db".into())));
        assert_eq!(parse(&["revoke-all"]).expect("revoke-all"), Some(Command::RevokeAll));
        assert_eq!(parse(&["--help"]).expect("help"), Some(Command::Help { program: "acme-server".into() }));
        for bad in [&["backup"][..], &["backup", "a", "b"], &["revoke-all", "now"], &["serve"], &["--port=1"]] {
            let err = parse(bad).expect_err("refused").to_string();
            assert!(err.contains("usage: acme-server [backup PATH"), "{bad:?}: {err}");
        }
    }

    #[tokio::test]
    async fn commands_refuse_a_server_without_a_database() {
        let config = Config::new("http://127.0.0.1:8000").expect("valid");
        let err = Command::RevokeAll.run(&config).await.expect_err("no database");
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        let backup = Command::Backup("/nonexistent/b.db".into());
        let err = backup.run(&config).await.expect_err("no database");
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        // Without SQLite a backup of any store says that first.
        #[cfg(feature = "sqlite")]
        {
            let mut config = config;
            config.database_url = Some("memory".into());
            let err = backup.run(&config).await.expect_err("memory");
            assert!(err.to_string().contains("nothing to back up"), "{err}");
        }
    }
}
