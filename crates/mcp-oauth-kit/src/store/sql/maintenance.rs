//! The operator's side of a [`SqlStore`]: closing it cleanly at shutdown and copying it while it
//! is in use.

use std::path::Path;

use super::{Pool, SqlStore, setup_error};
use crate::error::StoreError;

/// What to use instead of [`SqlStore::backup_to`] for PostgreSQL.
#[cfg(feature = "postgres")]
const USE_PG_DUMP: &str = "backup_to copies SQLite databases only: back PostgreSQL up with \
     `pg_dump --format=custom --file=FILE \"$DATABASE_URL\"` (docs/DEPLOY.md)";

impl SqlStore {
    /// Close the store. On SQLite, first fold the write-ahead log back into the database file
    /// and truncate it (`PRAGMA wal_checkpoint(TRUNCATE)`), so that the file alone holds every
    /// commit; then wait for connections in use to come back and close them all. Later
    /// operations fail. Dropping the last clone closes the pool too, but without waiting and
    /// without the checkpoint. The server calls it (through [`Store::close`]) once its
    /// connections have drained.
    ///
    /// A checkpoint that another process holds up (a second instance, a backup in progress)
    /// is logged at `WARN` and left to the last process that closes the database.
    ///
    /// [`Store::close`]: super::super::Store::close
    pub async fn close(&self) {
        // Irrefutable in a build with SQLite alone.
        #[cfg(feature = "sqlite")]
        #[allow(irrefutable_let_patterns)]
        if let Pool::Sqlite(pool) = &self.pool {
            checkpoint(pool).await;
        }
        with_pool!(self, |pool| pool.close().await)
    }

    /// Write a consistent copy of the database into the new file `path`, while the server
    /// runs: SQLite's `VACUUM INTO`, which reads one snapshot and blocks no writer. The copy
    /// is a single file (no `-wal` beside it), synced to disk before this returns.
    ///
    /// # Security
    /// The file is created with mode 0600 (owner only), since write access to the store is
    /// the power to mint tokens and a copy holds usernames and client names. An existing file
    /// is never overwritten, so a mistyped path cannot destroy the live database or an earlier
    /// backup.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when `path` exists or cannot be created, or the copy fails (a
    /// half-written file is removed); the message names the file and the cause. On PostgreSQL
    /// always: the message says how to use `pg_dump` instead.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::store::SqlStore;
    ///
    /// # async fn run() -> Result<(), mcp_oauth_kit::store::StoreError> {
    /// let store = SqlStore::connect("sqlite:///var/lib/mcp/oauth.sqlite3").await?;
    /// store.backup_to("/var/backups/mcp/oauth-2026-01-31.sqlite3").await?;
    /// # Ok(()) }
    /// ```
    pub async fn backup_to(&self, path: impl AsRef<Path>) -> Result<(), StoreError> {
        let path = path.as_ref();
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => backup_sqlite(pool, path).await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => {
                let _ = path;
                Err(setup_error(USE_PG_DUMP.to_owned()))
            }
        }
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`, logged when it cannot finish.
#[cfg(feature = "sqlite")]
async fn checkpoint(pool: &sqlx::SqlitePool) {
    // (busy, frames in the log, frames checkpointed); busy = 1 when a reader or writer in
    // another connection kept the checkpoint from finishing.
    let outcome: Result<(i64, i64, i64), sqlx::Error> =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(pool).await;
    match outcome {
        Ok((0, _, _)) => tracing::debug!("SQLite write-ahead log folded into the database file"),
        Ok((_, log, done)) => tracing::warn!(
            log,
            done,
            "the SQLite write-ahead log could not be folded into the database file: another process \
             is using it; the last process to close the database does it"
        ),
        Err(e) => tracing::warn!(error = %e, "checkpointing the SQLite write-ahead log failed"),
    }
}

#[cfg(feature = "sqlite")]
async fn backup_sqlite(pool: &sqlx::SqlitePool, path: &Path) -> Result<(), StoreError> {
    let shown = path.display();
    let Some(target) = path.to_str() else {
        return Err(setup_error(format!("the backup path {shown} is not valid UTF-8")));
    };
    // Created here, empty and owner-only, which `VACUUM INTO` accepts as its target: SQLite
    // would create the file with the umask's mode, and would refuse an existing one only
    // after the check below could have been raced.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            setup_error(format!("the backup file {shown} already exists: choose a new name; nothing was written"))
        }
        _ => setup_error(format!("cannot create the backup file {shown}: {e}")),
    })?;
    let copied = async {
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(pool)
            .await
            .map_err(|e| setup_error(format!("cannot copy the database into {shown}: {e}")))?;
        std::fs::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| setup_error(format!("cannot sync the backup file {shown}: {e}")))
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(path);
    }
    copied
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::store::{ClientRecord, Store};

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos();
        let dir = std::env::temp_dir().join(format!("mcp-oauth-kit-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        dir
    }

    #[tokio::test]
    async fn a_backup_is_a_complete_owner_only_file_that_is_never_overwritten() {
        let dir = temp_dir("backup");
        let store = SqlStore::connect(&format!("sqlite://{}", dir.join("live.db").display())).await.expect("open");
        // Whole milliseconds: the store keeps no finer time.
        let issued = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_000_000_000);
        let client = ClientRecord::new("kept", "none", vec!["http://127.0.0.1/cb".into()], vec![], issued);
        store.insert_client(client.clone()).await.expect("a client");

        let backup = dir.join("backup.db");
        store.backup_to(&backup).await.expect("backup");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&backup).expect("the backup").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "owner only");
        }
        assert!(!dir.join("backup.db-wal").exists(), "the copy is one file");
        let copy = SqlStore::connect(&format!("sqlite://{}", backup.display())).await.expect("open the copy");
        assert_eq!(copy.client("kept").await.expect("lookup"), Some(client));
        copy.close().await;

        let before = std::fs::read(&backup).expect("the backup");
        let err = store.backup_to(&backup).await.expect_err("an existing file");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&backup).expect("the backup"), before, "left as it was");
        let err = store.backup_to(dir.join("no-such-dir/backup.db")).await.expect_err("no directory");
        assert!(err.to_string().contains("cannot create the backup file"), "{err}");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// After `close`, the database file alone holds every commit: a copy of it without its
    /// `-wal` file has them all.
    #[tokio::test]
    async fn closing_folds_the_write_ahead_log_into_the_file() {
        let dir = temp_dir("close");
        let live = dir.join("live.db");
        let store = SqlStore::connect(&format!("sqlite://{}", live.display())).await.expect("open");
        for i in 0..50 {
            let client = ClientRecord::new(
                format!("c{i}"),
                "none",
                vec!["http://127.0.0.1/cb".into()],
                vec![],
                SystemTime::now(),
            );
            store.insert_client(client).await.expect("a client");
        }
        // A second handle keeps a connection open, as the process would until it exits.
        let other = store.clone();
        assert!(other.client("c0").await.expect("lookup").is_some());
        store.close().await;
        let wal = std::fs::metadata(dir.join("live.db-wal")).map(|m| m.len()).unwrap_or(0);
        assert_eq!(wal, 0, "the write-ahead log is empty or gone");

        let copy = dir.join("copy.db");
        std::fs::copy(&live, &copy).expect("copy the main file alone");
        let copy = SqlStore::connect(&format!("sqlite://{}", copy.display())).await.expect("open the copy");
        for i in 0..50 {
            assert!(copy.client(&format!("c{i}")).await.expect("lookup").is_some(), "client c{i}");
        }
        copy.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
