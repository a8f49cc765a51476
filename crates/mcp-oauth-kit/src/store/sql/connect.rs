//! Opening a [`SqlStore`]: the URL, the pool of either backend and its timeouts.

use std::str::FromStr;
use std::time::Duration;

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
#[cfg(feature = "postgres")]
use sqlx::{Connection as _, PgConnection};

#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
use super::super::open::feature_off;
use super::{Pool, SqlStore, setup_error};
use crate::error::StoreError;

/// How long [`SqlStore::connect`] waits for the database before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a SQLite operation waits for a free pooled connection.
#[cfg(feature = "sqlite")]
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a PostgreSQL operation waits for a pooled connection. While the database is down
/// (or restarting), sqlx keeps retrying a refused connection for this long, so it is how long
/// each request that needs the store hangs before its 503: short enough for an answer well
/// within a client's patience, long enough for a restart in progress or a burst that has every
/// connection busy.
#[cfg(feature = "postgres")]
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a SQLite writer waits for another one to finish.
#[cfg(feature = "sqlite")]
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Between attempts to open a SQLite file that another opener holds (see `connect_sqlite`).
#[cfg(feature = "sqlite")]
const OPEN_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// SQLITE_BUSY or SQLITE_LOCKED (primary result codes 5 and 6, extended codes included).
#[cfg(feature = "sqlite")]
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    let code = e.as_database_error().and_then(|d| d.code()).and_then(|c| c.parse::<i32>().ok());
    code.is_some_and(|c| matches!(c & 0xff, 5 | 6))
}
/// SQLITE_READONLY (primary result code 8, extended codes included): this process may read the
/// database but not write it.
#[cfg(feature = "sqlite")]
pub(super) fn is_sqlite_read_only(e: &sqlx::Error) -> bool {
    let code = e.as_database_error().and_then(|d| d.code()).and_then(|c| c.parse::<i32>().ok());
    code.is_some_and(|c| c & 0xff == 8)
}

/// The refusal of a SQLite database this process cannot write, whether opening it (switching
/// it to WAL writes) or migrating it found out: what is wrong and what the operator does.
#[cfg(feature = "sqlite")]
pub(super) fn sqlite_read_only(file: &std::path::Path, e: &sqlx::Error) -> StoreError {
    #[cfg(unix)]
    let owner = std::fs::metadata(file).map_or(String::new(), |meta| {
        use std::os::unix::fs::MetadataExt as _;
        format!(" (file owned by uid {}, mode {:04o})", meta.uid(), meta.mode() & 0o7777)
    });
    #[cfg(not(unix))]
    let owner = String::new();
    setup_error(format!(
        "the SQLite database {} is read-only for this process{owner}: the user the server runs as \
         must own the file and its directory and be able to write both (after a restore: chown \
         that user, chmod 0600 the file; docs/DEPLOY.md) ({e})",
        file.display()
    ))
}

/// SQLite has one writer at a time; a few connections serve the readers beside it.
const SQLITE_MAX_CONNECTIONS: u32 = 5;
/// PostgreSQL serves concurrent writers; sqlx's default pool size.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// The most `pool_size` may ask for: beyond it a typo, not a deployment.
const MAX_POOL_SIZE: u32 = 1000;

/// `url` without its `pool_size=N` query parameter, and N. The drivers refuse or ignore
/// parameters they do not know, so the kit takes its own out before handing the URL on.
fn split_pool_size(url: &str) -> Result<(String, Option<u32>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut pool_size = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("pool_size=") {
            Some(value) => {
                let size = value.parse::<u32>().ok().filter(|n| (1..=MAX_POOL_SIZE).contains(n)).ok_or_else(|| {
                    setup_error(format!("pool_size in the store URL must be a number from 1 to {MAX_POOL_SIZE}"))
                })?;
                pool_size = Some(size);
            }
            None => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, pool_size))
}

impl SqlStore {
    /// Open the database at `url` and bring its schema up to date.
    ///
    /// - `sqlite://PATH` or `sqlite:PATH` (`sqlite://data/oauth.db`, `sqlite:///var/lib/x.db`):
    ///   the file and its parent directory are created if missing; WAL journal, a busy timeout
    ///   and foreign keys are turned on. `sqlite::memory:` is an in-memory database for tests.
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://…`). This build has
    ///   no TLS: `sslmode=require` fails, the default `prefer` connects in clear.
    ///
    /// Either URL may end in `pool_size=N` among its query parameters (1 to 1000; default 5
    /// for SQLite, 10 for PostgreSQL): the most connections the store opens. The kit reads it
    /// and passes the rest of the URL to the driver.
    ///
    /// Migrations are idempotent and safe when several instances start at once (a
    /// transaction, and on PostgreSQL an advisory lock).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the URL is malformed, the database cannot be reached within
    /// five seconds, or the schema cannot be created; the message says which, and names the
    /// database without its password.
    ///
    /// ```
    /// use mcp_oauth_kit::store::{SqlStore, Store};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), mcp_oauth_kit::store::StoreError> {
    /// let store = SqlStore::connect("sqlite::memory:").await?;
    /// assert!(store.client("no-such-client").await?.is_none());
    /// assert!(SqlStore::connect("mysql://db/oauth").await.is_err());
    /// assert!(SqlStore::connect("sqlite::memory:?pool_size=2").await.is_ok());
    /// assert!(SqlStore::connect("sqlite::memory:?pool_size=0").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, pool_size) = split_pool_size(url)?;
        let url = url.as_str();
        let store = if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, pool_size.unwrap_or(SQLITE_MAX_CONNECTIONS)).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url, pool_size.unwrap_or(POSTGRES_MAX_CONNECTIONS)).await?
        } else {
            return Err(setup_error(
                "a SQL store URL starts with sqlite://, sqlite:, postgres:// or postgresql://".to_owned(),
            ));
        };
        Self::migrated(store.pool).await
    }

    /// A store in the SQLite database of a pool the application already has, so that both
    /// share its connections. The schema is brought up to date as [`SqlStore::connect`] does;
    /// the store's tables sit beside the application's own.
    ///
    /// The pool is used as it was configured. Give it what `connect` gives its own: WAL journal
    /// and a busy timeout, or concurrent sign-ins fail with `database is locked` instead of
    /// waiting; and for `sqlite::memory:`, connections that are never closed for idleness or
    /// age, since the database lives only as long as one of them. Closing the pool (or
    /// [`SqlStore::close`]) closes it for both. The pool is sqlx 0.8's.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the schema cannot be brought up to date (the message says
    /// why).
    ///
    /// ```no_run
    /// use mcp_oauth_kit::store::SqlStore;
    /// use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let options = SqliteConnectOptions::new()
    ///     .filename("app.db")
    ///     .create_if_missing(true)
    ///     .journal_mode(SqliteJournalMode::Wal)
    ///     .busy_timeout(std::time::Duration::from_secs(10));
    /// let pool = SqlitePool::connect_with(options).await?;
    /// let store = SqlStore::from_sqlite_pool(pool.clone()).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Result<Self, StoreError> {
        Self::migrated(Pool::Sqlite(pool)).await
    }

    /// A store in the PostgreSQL database of a pool the application already has, so that both
    /// share its connections. The schema is brought up to date as [`SqlStore::connect`] does
    /// (in the pool's `search_path`); the store's tables sit beside the application's own.
    ///
    /// The pool is used as it was configured; closing it (or [`SqlStore::close`]) closes it for
    /// both. The pool is sqlx 0.8's.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database cannot be reached or the schema cannot be
    /// brought up to date (the message says why).
    ///
    /// ```no_run
    /// use mcp_oauth_kit::store::SqlStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = sqlx::PgPool::connect("postgres://app@db.internal/app").await?;
    /// let store = SqlStore::from_postgres_pool(pool.clone()).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn from_postgres_pool(pool: sqlx::PgPool) -> Result<Self, StoreError> {
        Self::migrated(Pool::Postgres(pool)).await
    }

    /// The store over `pool`, once its schema is up to date.
    async fn migrated(pool: Pool) -> Result<Self, StoreError> {
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    #[cfg(not(feature = "sqlite"))]
    async fn connect_sqlite(_url: &str, _pool_size: u32) -> Result<Self, StoreError> {
        Err(feature_off("sqlite", "SQLite"))
    }

    #[cfg(feature = "sqlite")]
    pub(super) async fn connect_sqlite(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| setup_error(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let file = options.get_filename().to_path_buf();
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory && let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| setup_error(format!("cannot create the directory {}: {e}", dir.display())))?;
        }
        let what = format!("the SQLite database {}", file.display());
        // Opening runs `PRAGMA journal_mode = WAL`, which needs the file to itself for a moment.
        // When several processes (or stores) open a new file at once, SQLite answers the losers
        // "database is locked" at once instead of waiting on the busy timeout (waiting could
        // deadlock), so opening is retried for as long as the connect timeout allows.
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let pool = loop {
            let pool = SqlitePoolOptions::new()
                .max_connections(pool_size)
                // Connections are never closed for idleness or age: an in-memory database lives
                // only as long as one of its connections does. No `min_connections` either:
                // sqlx would open it from a background task that races `connect_with`'s own
                // first connection, so a server often started with two connections (each with
                // its own thread and SQLite caches) where the first one stays open anyway.
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                .connect_with(options.clone());
            let outcome = tokio::time::timeout_at(deadline, pool)
                .await
                .map_err(|_| setup_error(format!("cannot open {what}: no answer within {CONNECT_TIMEOUT:?}")))?;
            match outcome {
                Ok(pool) => break pool,
                Err(e) if is_sqlite_busy(&e) && tokio::time::Instant::now() + OPEN_RETRY_PAUSE < deadline => {
                    tokio::time::sleep(OPEN_RETRY_PAUSE).await;
                }
                Err(e) if is_sqlite_read_only(&e) => return Err(sqlite_read_only(&file, &e)),
                Err(e) => return Err(setup_error(format!("cannot open {what}: {e}"))),
            }
        };
        Ok(Self { pool: Pool::Sqlite(pool) })
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(_url: &str, _pool_size: u32) -> Result<Self, StoreError> {
        Err(feature_off("postgres", "PostgreSQL"))
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| setup_error(format!("invalid PostgreSQL URL: {e}")))?;
        let what = describe_postgres(&options);
        // Connect once by hand first: the pool retries a refused connection until its timeout
        // and then reports only that it timed out, which hides the cause.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| setup_error(format!("cannot connect to {what}: no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| setup_error(format!("cannot connect to {what}: {e}")))?;
        // Closing politely is a courtesy to the server; the connection was good either way.
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self { pool: Pool::Postgres(pool) })
    }
}

/// The server and database of `options`, without the password.
#[cfg(feature = "postgres")]
fn describe_postgres(options: &PgConnectOptions) -> String {
    format!(
        "PostgreSQL at {}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::split_pool_size;

    #[test]
    fn pool_size_is_taken_out_of_the_url() {
        let split = |url: &str| split_pool_size(url).expect("valid");
        assert_eq!(split("sqlite://data/a.db"), ("sqlite://data/a.db".to_owned(), None));
        assert_eq!(split("sqlite://data/a.db?pool_size=3"), ("sqlite://data/a.db".to_owned(), Some(3)));
        assert_eq!(
            split("postgres://u@h/db?sslmode=disable&pool_size=40&application_name=x"),
            ("postgres://u@h/db?sslmode=disable&application_name=x".to_owned(), Some(40))
        );
        for bad in
            ["sqlite::memory:?pool_size=0", "sqlite:a?pool_size=1001", "sqlite:a?pool_size=x", "sqlite:a?pool_size="]
        {
            let e = split_pool_size(bad).expect_err(bad).to_string();
            assert!(e.contains("pool_size"), "{bad}: {e}");
        }
    }
}
