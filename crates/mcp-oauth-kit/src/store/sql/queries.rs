//! [`SqlStore`]: the [`Store`] in SQLite or PostgreSQL, through `sqlx`. State survives a
//! restart and is shared by every instance that opens the same database.
//!
//! One type serves both databases: a pool of either kind behind an enum, and one text for each
//! statement, in the SQL that both dialects accept (`$n` parameters, `RETURNING`,
//! `CREATE … IF NOT EXISTS`). The schema's byte type and the statement that opens a write
//! transaction are all that differ.
//!
//! How the invariants of [`Store`] hold across processes:
//! - one redemption: [`Store::redeem_code`] is a conditional
//!   `UPDATE … WHERE used = FALSE … RETURNING`, which the database lets exactly one of
//!   concurrent callers match, followed in the same transaction by the insertion of the tokens;
//! - one rotation: [`Store::rotate_refresh`] is a conditional
//!   `UPDATE … WHERE rotated_at IS NULL … RETURNING` followed, in the same transaction, by the
//!   insertion of the successor pair;
//! - one taker: [`Store::take_pending`] is a `DELETE … RETURNING` followed, in the same
//!   transaction, by the insertion of the code;
//! - one count each: [`Store::hit_rate_limit`] is a single
//!   `INSERT … ON CONFLICT DO UPDATE … RETURNING`, which the database applies to the row one
//!   caller at a time.
//!
//! SQLite write transactions begin with `BEGIN IMMEDIATE`, so that concurrent writers queue on
//! `busy_timeout` instead of failing with `database is locked`.
//!
//! Storage format: codes, tokens and sessions by the hex of their [`TokenHash`], lists as JSON
//! text, times as `BIGINT` milliseconds. The grant is copied into each code and token row,
//! because a refresh may narrow the scopes of the tokens it issues while the grant id stays.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow};
#[cfg(feature = "postgres")]
use sqlx::{Connection as _, PgConnection};
use sqlx::{Database, Encode, Row as _, Type};

#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
use super::open::feature_off;
use super::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens,
    PendingAuthorization, RateLimitWindow, RefreshRotation, RefreshTokenRecord, RevokedToken, SessionRecord, Store,
};
use crate::clock::far_future;
use crate::error::StoreError;
use crate::secret::TokenHash;

/// How long [`SqlStore::connect`] waits for the database before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an operation waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
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
/// SQLite has one writer at a time; a few connections serve the readers beside it.
#[cfg(feature = "sqlite")]
const SQLITE_MAX_CONNECTIONS: u32 = 5;
/// PostgreSQL serves concurrent writers; sqlx's default pool size.
#[cfg(feature = "postgres")]
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// Key of the PostgreSQL advisory lock that serialises migrations of instances starting at once.
const MIGRATION_LOCK_KEY: i64 = 0x6d63_705f_6f61_7574; // "mcp_oaut"

/// The schema, one entry per version, each a list of statements. The `{bytes}` placeholder
/// is the dialect's binary type. A version runs once, in the transaction that records it in
/// the `schema_version` table (so a statement such as `ALTER TABLE … ADD COLUMN` need not be
/// idempotent). Never edit a released version; add one.
const MIGRATIONS: &[&[&str]] =
    &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8];

/// Version 1: clients, pending sign-ins, codes and tokens.
const SCHEMA_V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS clients (
        client_id TEXT PRIMARY KEY,
        secret_hash TEXT,
        auth_method TEXT NOT NULL,
        client_name TEXT,
        redirect_uris TEXT NOT NULL,
        grant_types TEXT NOT NULL,
        scope TEXT,
        issued_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS pending_authorizations (
        id_hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        state TEXT,
        code_challenge TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resource TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        failed_logins BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS pending_authorizations_expires_at ON pending_authorizations (expires_at)",
    "CREATE TABLE IF NOT EXISTS codes (
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        username TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resource TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        used BOOLEAN NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS codes_grant_id ON codes (grant_id)",
    "CREATE INDEX IF NOT EXISTS codes_expires_at ON codes (expires_at)",
    "CREATE TABLE IF NOT EXISTS access_tokens (
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        username TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resource TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS access_tokens_grant_id ON access_tokens (grant_id)",
    "CREATE INDEX IF NOT EXISTS access_tokens_expires_at ON access_tokens (expires_at)",
    "CREATE TABLE IF NOT EXISTS refresh_tokens (
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        username TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resource TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        rotated_at BIGINT,
        successor_hash TEXT,
        sealed_successor {bytes}
    )",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_grant_id ON refresh_tokens (grant_id)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_expires_at ON refresh_tokens (expires_at)",
];

/// Version 2: sign-in sessions, remembered consent and rate-limit windows, so that instances
/// sharing the database share them.
const SCHEMA_V2: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS sessions (
        hash TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        username TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at)",
    "CREATE TABLE IF NOT EXISTS consents (
        subject TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        granted_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (subject, client_id)
    )",
    "CREATE INDEX IF NOT EXISTS consents_expires_at ON consents (expires_at)",
    "CREATE TABLE IF NOT EXISTS rate_limits (
        limit_key TEXT PRIMARY KEY,
        hits BIGINT NOT NULL,
        ends_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS rate_limits_ends_at ON rate_limits (ends_at)",
];

/// Version 3: when a client was first used (a code issued to it), so that registrations
/// nothing used can be swept.
const SCHEMA_V3: &[&str] = &[
    "ALTER TABLE clients ADD COLUMN used_at BIGINT",
    // Clients registered before this version may well be in use: keep them all.
    "UPDATE clients SET used_at = issued_at",
    "CREATE INDEX IF NOT EXISTS clients_unused ON clients (issued_at) WHERE used_at IS NULL",
];

/// Version 4: the sweeper drops sealed refresh successors once their grace window is over
/// ([`Store::forget_sealed_successors`]); this index holds only the rows that still have one.
const SCHEMA_V4: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS refresh_tokens_sealed ON refresh_tokens (rotated_at) WHERE sealed_successor IS NOT NULL",
];

/// Version 5: whether the authorization request named its redirect URI (the token request must
/// then repeat it).
const SCHEMA_V5: &[&str] = &[
    // Rows of earlier versions: the stricter reading, a redirect URI to repeat.
    "ALTER TABLE pending_authorizations ADD COLUMN redirect_uri_given BOOLEAN NOT NULL DEFAULT TRUE",
    "ALTER TABLE codes ADD COLUMN redirect_uri_given BOOLEAN NOT NULL DEFAULT TRUE",
];

/// Version 6: each grant's absolute end ([`Grant::expires_at`]).
const SCHEMA_V6: &[&str] = &[
    // The default (no end) serves rows that an older build writes during a rolling upgrade.
    "ALTER TABLE codes ADD COLUMN grant_expires_at BIGINT NOT NULL DEFAULT 9223372036854775807",
    "ALTER TABLE access_tokens ADD COLUMN grant_expires_at BIGINT NOT NULL DEFAULT 9223372036854775807",
    "ALTER TABLE refresh_tokens ADD COLUMN grant_expires_at BIGINT NOT NULL DEFAULT 9223372036854775807",
    // An existing grant ends with its current refresh token: rotation no longer extends it.
    "UPDATE refresh_tokens SET grant_expires_at = expires_at",
    // A code in flight gets the default lifetime (90 days) from now, as a new sign-in would.
    "UPDATE codes SET grant_expires_at = expires_at + 7776000000",
];

/// Version 7: the indexes that revoking everything of one user ([`Store::revoke_subject`]) reads.
const SCHEMA_V7: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS codes_subject ON codes (subject)",
    "CREATE INDEX IF NOT EXISTS access_tokens_subject ON access_tokens (subject)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_subject ON refresh_tokens (subject)",
    "CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject)",
];

/// Version 8: the user's extra claims ([`Grant::claims`]), a JSON object, with each grant.
const SCHEMA_V8: &[&str] = &[
    // Grants of earlier versions had none.
    "ALTER TABLE codes ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE access_tokens ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE refresh_tokens ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
];

/// The grant's columns, and then the code's: macros, so that the lists below are `concat!`s of
/// one spelling rather than copies of it.
macro_rules! grant_columns {
    () => {
        "grant_id, subject, username, client_id, scopes, resource, grant_expires_at, claims"
    };
}
macro_rules! code_columns {
    () => {
        concat!(grant_columns!(), ", redirect_uri, redirect_uri_given, code_challenge, used, expires_at")
    };
}
const GRANT_COLUMNS: &str = grant_columns!();
/// The columns [`code_from`] reads: the grant's, then the code's own.
const CODE_COLUMNS: &str = code_columns!();
/// A code that has not expired, used or not: [`Store::code`], and a failed redemption's look.
const SELECT_CODE: &str = concat!("SELECT ", code_columns!(), " FROM codes WHERE hash = $1 AND expires_at > $2");

/// A [`Store`] in a SQLite file or a PostgreSQL database.
///
/// Open it with [`SqlStore::connect`] (or pick a backend from a URL with [`open_store`](super::open_store)). It
/// holds a connection pool; clones share it. Instances in several processes may open the same
/// database: the atomic operations of [`Store`] are single SQL statements or transactions, so
/// they stay atomic across processes.
///
/// Inserting a record whose key is already stored fails with [`StoreError::Backend`] (the
/// keys are digests of 256-bit random secrets, so that is a bug, not a collision);
/// [`MemoryStore`](super::MemoryStore) overwrites instead.
///
/// # Security
/// Codes, tokens, client secrets and sign-in session secrets are stored only as SHA-256
/// digests; rate-limit keys are digests of what they count. The CSRF token of a
/// pending sign-in is stored in clear (it lives for minutes and is no credential by itself).
/// `Debug` names the backend, never the URL (which may hold a password).
#[derive(Clone)]
pub struct SqlStore {
    pool: Pool,
}

#[derive(Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => "postgres",
        };
        f.debug_struct("SqlStore").field("backend", &backend).finish_non_exhaustive()
    }
}

/// Run `$body` with `$pool` bound to the concrete pool (and `$begin` to the statement that
/// opens a write transaction). The body is compiled once per backend, so that one SQL text and
/// one list of binds serve both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $begin:ident| $body:expr) => {
        match &$store.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($pool) => {
                // Take the write lock up front: a deferred transaction that reads before it
                // writes can fail with SQLITE_BUSY instead of waiting.
                let $begin = "BEGIN IMMEDIATE";
                $body
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres($pool) => {
                let $begin = "BEGIN";
                $body
            }
        }
    };
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
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            Self::connect_sqlite(url).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url).await?
        } else {
            return Err(setup_error(
                "a SQL store URL starts with sqlite://, sqlite:, postgres:// or postgresql://".to_owned(),
            ));
        };
        store.migrate().await?;
        Ok(store)
    }

    #[cfg(not(feature = "sqlite"))]
    async fn connect_sqlite(_url: &str) -> Result<Self, StoreError> {
        Err(feature_off("sqlite", "SQLite"))
    }

    #[cfg(feature = "sqlite")]
    async fn connect_sqlite(url: &str) -> Result<Self, StoreError> {
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
                .max_connections(SQLITE_MAX_CONNECTIONS)
                // Connections are never closed for idleness or age: an in-memory database lives
                // only as long as one of its connections does. No `min_connections` either:
                // sqlx would open it from a background task that races `connect_with`'s own
                // first connection, so a server often started with two connections (each with
                // its own thread and SQLite caches) where the first one stays open anyway.
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone());
            let outcome = tokio::time::timeout_at(deadline, pool)
                .await
                .map_err(|_| setup_error(format!("cannot open {what}: no answer within {CONNECT_TIMEOUT:?}")))?;
            match outcome {
                Ok(pool) => break pool,
                Err(e) if is_sqlite_busy(&e) && tokio::time::Instant::now() + OPEN_RETRY_PAUSE < deadline => {
                    tokio::time::sleep(OPEN_RETRY_PAUSE).await;
                }
                Err(e) => return Err(setup_error(format!("cannot open {what}: {e}"))),
            }
        };
        Ok(Self { pool: Pool::Sqlite(pool) })
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(_url: &str) -> Result<Self, StoreError> {
        Err(feature_off("postgres", "PostgreSQL"))
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
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
            .max_connections(POSTGRES_MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self { pool: Pool::Postgres(pool) })
    }

    /// Bring the schema up to date, in one transaction that concurrent instances serialise on.
    async fn migrate(&self) -> Result<(), StoreError> {
        let (bytes, lock) = match self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => ("BLOB", None),
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => ("BYTEA", Some("SELECT pg_advisory_xact_lock($1)")),
        };
        let latest = MIGRATIONS.len() as i64;
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(migration_error)?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(MIGRATION_LOCK_KEY).execute(&mut *tx).await.map_err(migration_error)?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await
            .map_err(migration_error)?;
            let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
                .fetch_one(&mut *tx)
                .await
                .map_err(migration_error)?;
            let current = row.int("version")?;
            if current > latest {
                return Err(setup_error(format!(
                    "the database schema is at version {current}, newer than this build's {latest}: \
                     upgrade mcp-oauth-kit"
                )));
            }
            for (version, statements) in (1..).zip(MIGRATIONS).skip(current.max(0) as usize) {
                for statement in statements.iter() {
                    let statement = statement.replace("{bytes}", bytes);
                    sqlx::query(&statement).execute(&mut *tx).await.map_err(migration_error)?;
                }
                sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    // When the migration ran, for the operator: no expiry depends on it.
                    .bind(db_time(crate::clock::Clock::now(&crate::clock::SystemClock)))
                    .execute(&mut *tx)
                    .await
                    .map_err(migration_error)?;
            }
            tx.commit().await.map_err(migration_error)
        })
    }

    /// Close the pool: wait for connections in use to come back, then close them all. Later
    /// operations fail. Dropping the last clone closes the pool too, without waiting.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
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

/// What went wrong, for [`StoreError::Backend`], in a sentence for the operator: why the store
/// could not be opened (naming the database and the cause, never a password), or which stored
/// value could not be read.
#[derive(Debug)]
struct Described(String);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Described {}

fn setup_error(message: String) -> StoreError {
    StoreError::Backend(Box::new(Described(message)))
}

fn migration_error(e: sqlx::Error) -> StoreError {
    setup_error(format!("cannot migrate the store's schema: {e}"))
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(Box::new(Described(format!("unreadable row in the store: {what}"))))
}

/// Times are `BIGINT` milliseconds since the Unix epoch in SQL. "No end" ([`far_future`] and
/// beyond) is `i64::MAX`, as the schema's defaults spell it; a time before the epoch is 0.
fn db_time(t: SystemTime) -> i64 {
    if t >= far_future() {
        return i64::MAX;
    }
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The inverse of [`db_time`], to the millisecond; `None` for a negative column.
fn time_from_db(millis: i64) -> Option<SystemTime> {
    let millis = u64::try_from(millis).ok()?;
    Some(UNIX_EPOCH.checked_add(Duration::from_millis(millis)).map_or_else(far_future, |t| t.min(far_future())))
}

fn list_to_db(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn list_from_db(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|_| corrupt("a list column is not a JSON array of strings"))
}

fn hash_from_hex(hex: &str) -> Result<TokenHash, StoreError> {
    let bad = || corrupt("a hash column is not 64 hex digits");
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(TokenHash(out))
}

/// Typed column access, the same for both backends' rows; decoding failures become
/// [`StoreError`]s instead of panics.
trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;

    fn time(&self, column: &str) -> Result<SystemTime, StoreError> {
        time_from_db(self.int(column)?).ok_or_else(|| corrupt("a time column is negative"))
    }
}

macro_rules! impl_columns {
    ($($row:ty),+) => {$(
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                self.try_get(column).map_err(backend)
            }
        }
    )+};
}

#[cfg(feature = "sqlite")]
impl_columns!(SqliteRow);
#[cfg(feature = "postgres")]
impl_columns!(PgRow);

fn grant_from(row: &impl Columns) -> Result<Grant, StoreError> {
    Ok(Grant {
        grant_id: row.text("grant_id")?,
        subject: row.text("subject")?,
        username: row.text("username")?,
        client_id: row.text("client_id")?,
        scopes: list_from_db(&row.text("scopes")?)?,
        resource: row.text("resource")?,
        expires_at: row.time("grant_expires_at")?,
        claims: serde_json::from_str(&row.text("claims")?).map_err(|_| corrupt("claims is not a JSON object"))?,
    })
}

fn client_from(row: &impl Columns) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        client_id: row.text("client_id")?,
        secret_hash: row.opt_text("secret_hash")?.as_deref().map(hash_from_hex).transpose()?,
        auth_method: row.text("auth_method")?,
        client_name: row.opt_text("client_name")?,
        redirect_uris: list_from_db(&row.text("redirect_uris")?)?,
        grant_types: list_from_db(&row.text("grant_types")?)?,
        scope: row.opt_text("scope")?,
        issued_at: row.time("issued_at")?,
    })
}

fn pending_from(row: &impl Columns, id_hash: TokenHash) -> Result<PendingAuthorization, StoreError> {
    Ok(PendingAuthorization {
        id_hash,
        client_id: row.text("client_id")?,
        redirect_uri: row.text("redirect_uri")?,
        redirect_uri_given: row.flag("redirect_uri_given")?,
        state: row.opt_text("state")?,
        code_challenge: row.text("code_challenge")?,
        scopes: list_from_db(&row.text("scopes")?)?,
        resource: row.text("resource")?,
        csrf_token: row.text("csrf_token")?,
        failed_logins: u32::try_from(row.int("failed_logins")?).unwrap_or(u32::MAX),
        expires_at: row.time("expires_at")?,
    })
}

fn code_from(row: &impl Columns, hash: TokenHash) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        hash,
        grant: grant_from(row)?,
        redirect_uri: row.text("redirect_uri")?,
        redirect_uri_given: row.flag("redirect_uri_given")?,
        code_challenge: row.text("code_challenge")?,
        expires_at: row.time("expires_at")?,
    })
}

fn access_from(row: &impl Columns, hash: TokenHash) -> Result<AccessTokenRecord, StoreError> {
    Ok(AccessTokenRecord { hash, grant: grant_from(row)?, expires_at: row.time("expires_at")? })
}

fn refresh_from(row: &impl Columns, hash: TokenHash) -> Result<RefreshTokenRecord, StoreError> {
    Ok(RefreshTokenRecord { hash, grant: grant_from(row)?, expires_at: row.time("expires_at")? })
}

fn session_from(row: &impl Columns, hash: TokenHash) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        hash,
        subject: row.text("subject")?,
        username: row.text("username")?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
    })
}

fn consent_from(row: &impl Columns) -> Result<ConsentRecord, StoreError> {
    Ok(ConsentRecord {
        subject: row.text("subject")?,
        client_id: row.text("client_id")?,
        scopes: list_from_db(&row.text("scopes")?)?,
        granted_at: row.time("granted_at")?,
        expires_at: row.time("expires_at")?,
    })
}

fn window_from(row: &impl Columns) -> Result<RateLimitWindow, StoreError> {
    let hits = row.int("hits")?;
    Ok(RateLimitWindow { count: u32::try_from(hits.max(0)).unwrap_or(u32::MAX), ends_at: row.time("ends_at")? })
}

/// A statement of either backend, ready for more binds.
type Statement<'q, DB> = Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// Bind the eight grant columns, in the order of [`GRANT_COLUMNS`].
fn bind_grant<'q, DB>(query: Statement<'q, DB>, grant: &Grant) -> Result<Statement<'q, DB>, StoreError>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    Ok(query
        .bind(grant.grant_id.clone())
        .bind(grant.subject.clone())
        .bind(grant.username.clone())
        .bind(grant.client_id.clone())
        .bind(list_to_db(&grant.scopes)?)
        .bind(grant.resource.clone())
        .bind(db_time(grant.expires_at))
        .bind(serde_json::to_string(&grant.claims).map_err(|e| StoreError::Backend(Box::new(e)))?))
}

fn insert_code<'q, DB>(code: &CodeRecord) -> Result<Statement<'q, DB>, StoreError>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    let query = sqlx::query(concat!(
        "INSERT INTO codes (hash, ",
        code_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, FALSE, $13)"
    ))
    .bind(code.hash.to_hex());
    Ok(bind_grant(query, &code.grant)?
        .bind(code.redirect_uri.clone())
        .bind(code.redirect_uri_given)
        .bind(code.code_challenge.clone())
        .bind(db_time(code.expires_at)))
}

/// The two statements that store a new token pair, access token first (the tables have the
/// same columns).
fn insert_pair<'q, DB>(tokens: &IssuedTokens) -> Result<[Statement<'q, DB>; 2], StoreError>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let insert = |sql: &'static str, hash: &TokenHash, grant: &Grant, expires_at: SystemTime| {
        Ok::<_, StoreError>(bind_grant(sqlx::query(sql).bind(hash.to_hex()), grant)?.bind(db_time(expires_at)))
    };
    let (access, refresh) = (&tokens.access, &tokens.refresh);
    Ok([
        insert(
            concat!(
                "INSERT INTO access_tokens (hash, ",
                grant_columns!(),
                ", expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &access.hash,
            &access.grant,
            access.expires_at,
        )?,
        insert(
            concat!(
                "INSERT INTO refresh_tokens (hash, ",
                grant_columns!(),
                ", expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &refresh.hash,
            &refresh.grant,
            refresh.expires_at,
        )?,
    ])
}

/// Revoke a grant, in this order. Refresh tokens first: on PostgreSQL, deleting a row that a
/// rotation in flight has updated waits for that rotation to commit, and each later statement
/// (a new snapshot under READ COMMITTED) then sees the successor pair it inserted, so the
/// second pass over `refresh_tokens` catches the successor. Without it, a rotation racing a
/// revocation leaves a live token pair behind.
const DELETE_GRANT: [&str; 4] = [
    "DELETE FROM refresh_tokens WHERE grant_id = $1",
    "DELETE FROM codes WHERE grant_id = $1",
    "DELETE FROM access_tokens WHERE grant_id = $1",
    "DELETE FROM refresh_tokens WHERE grant_id = $1",
];

/// Revoke everything of one user, in the order of [`DELETE_GRANT`] and for the same reason, then
/// their sign-in sessions and remembered consent.
const DELETE_SUBJECT: [&str; 6] = [
    "DELETE FROM refresh_tokens WHERE subject = $1",
    "DELETE FROM codes WHERE subject = $1",
    "DELETE FROM access_tokens WHERE subject = $1",
    "DELETE FROM refresh_tokens WHERE subject = $1",
    "DELETE FROM sessions WHERE subject = $1",
    "DELETE FROM consents WHERE subject = $1",
];

#[async_trait]
impl Store for SqlStore {
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        let redirect_uris = list_to_db(&client.redirect_uris)?;
        let grant_types = list_to_db(&client.grant_types)?;
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO clients
                 (client_id, secret_hash, auth_method, client_name, redirect_uris, grant_types, scope, issued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (client_id) DO UPDATE SET
                   secret_hash = excluded.secret_hash, auth_method = excluded.auth_method,
                   client_name = excluded.client_name, redirect_uris = excluded.redirect_uris,
                   grant_types = excluded.grant_types, scope = excluded.scope, issued_at = excluded.issued_at",
            )
            .bind(client.client_id.as_str())
            .bind(client.secret_hash.as_ref().map(TokenHash::to_hex))
            .bind(client.auth_method.as_str())
            .bind(client.client_name.as_deref())
            .bind(redirect_uris.as_str())
            .bind(grant_types.as_str())
            .bind(client.scope.as_deref())
            .bind(db_time(client.issued_at))
            .execute(pool)
            .await
            .map_err(backend)?;
        });
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT client_id, secret_hash, auth_method, client_name, redirect_uris, grant_types, scope, issued_at
                 FROM clients WHERE client_id = $1",
            )
            .bind(client_id)
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            .map(|row| client_from(&row))
            .transpose()
        })
    }

    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        let scopes = list_to_db(&pending.scopes)?;
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO pending_authorizations (id_hash, client_id, redirect_uri, redirect_uri_given, state,
                 code_challenge, scopes, resource, csrf_token, failed_logins, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(pending.id_hash.to_hex())
            .bind(pending.client_id.as_str())
            .bind(pending.redirect_uri.as_str())
            .bind(pending.redirect_uri_given)
            .bind(pending.state.as_deref())
            .bind(pending.code_challenge.as_str())
            .bind(scopes.as_str())
            .bind(pending.resource.as_str())
            .bind(pending.csrf_token.as_str())
            .bind(i64::from(pending.failed_logins))
            .bind(db_time(pending.expires_at))
            .execute(pool)
            .await
            .map_err(backend)?;
        });
        Ok(())
    }

    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT client_id, redirect_uri, redirect_uri_given, state, code_challenge, scopes, resource,
                 csrf_token, failed_logins, expires_at FROM pending_authorizations
                 WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash.to_hex())
            .bind(db_time(now))
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            .map(|row| pending_from(&row, *id_hash))
            .transpose()
        })
    }

    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError> {
        let count = with_pool!(self, |pool| {
            match sqlx::query(
                "UPDATE pending_authorizations SET failed_logins = failed_logins + 1 WHERE id_hash = $1
                 RETURNING failed_logins",
            )
            .bind(id_hash.to_hex())
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            {
                Some(row) => Some(row.int("failed_logins")?),
                None => None,
            }
        });
        // No such sign-in: as many failures as can be, so that the caller gives up on it.
        Ok(count.map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            // The one statement that decides between concurrent takers.
            let taken = sqlx::query(
                "DELETE FROM pending_authorizations WHERE id_hash = $1
                 RETURNING client_id, redirect_uri, redirect_uri_given, state, code_challenge, scopes, resource,
                 csrf_token, failed_logins, expires_at",
            )
            .bind(id_hash.to_hex())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .map(|row| pending_from(&row, *id_hash))
            .transpose()?
            // An expired one is removed all the same, and not handed out.
            .filter(|p| p.expires_at > now);
            if let (Some(_), Some(code)) = (&taken, &code) {
                insert_code(code)?.execute(&mut *tx).await.map_err(backend)?;
                sqlx::query("UPDATE clients SET used_at = $1 WHERE client_id = $2 AND used_at IS NULL")
                    .bind(db_time(now))
                    .bind(code.grant.client_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(taken)
        })
    }

    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(SELECT_CODE)
                .bind(hash.to_hex())
                .bind(db_time(now))
                .fetch_optional(pool)
                .await
                .map_err(backend)?
                .map(|row| code_from(&row, *hash))
                .transpose()
        })
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            // The one statement that decides between concurrent redeemers. On PostgreSQL it
            // holds the row until commit, so a replay that revokes the grant waits for the
            // tokens below and then deletes them too.
            let redeemed = sqlx::query(&format!(
                "UPDATE codes SET used = TRUE WHERE hash = $1 AND used = FALSE AND expires_at > $2
                 RETURNING {CODE_COLUMNS}"
            ))
            .bind(hash.to_hex())
            .bind(db_time(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            let outcome = match redeemed {
                Some(row) => {
                    if let Some(tokens) = &tokens {
                        for statement in insert_pair(tokens)? {
                            statement.execute(&mut *tx).await.map_err(backend)?;
                        }
                    }
                    CodeRedemption::Redeemed(code_from(&row, *hash)?)
                }
                None => {
                    let existing = sqlx::query(SELECT_CODE)
                        .bind(hash.to_hex())
                        .bind(db_time(now))
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend)?;
                    match existing {
                        Some(row) if row.flag("used")? => CodeRedemption::Replayed(code_from(&row, *hash)?),
                        _ => CodeRedemption::Unknown,
                    }
                }
            };
            tx.commit().await.map_err(backend)?;
            Ok(outcome)
        })
    }

    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(&format!(
                "SELECT {GRANT_COLUMNS}, expires_at FROM access_tokens WHERE hash = $1 AND expires_at > $2"
            ))
            .bind(hash.to_hex())
            .bind(db_time(now))
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            .map(|row| access_from(&row, *hash))
            .transpose()
        })
    }

    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM refresh_tokens WHERE hash = $1 AND expires_at > $2"))
                .bind(hash.to_hex())
                .bind(db_time(now))
                .fetch_optional(pool)
                .await
                .map_err(backend)?
                .map(|row| grant_from(&row))
                .transpose()
        })
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError> {
        let retire = format!(
            "UPDATE refresh_tokens SET rotated_at = $2, successor_hash = $3, sealed_successor = $4
             WHERE hash = $1 AND rotated_at IS NULL AND expires_at > $2
             RETURNING {GRANT_COLUMNS}, expires_at"
        );
        // The successor counts only while it is itself current: not rotated, expired or revoked.
        let state = "SELECT o.grant_id, o.subject, o.username, o.client_id, o.scopes, o.resource,
                 o.grant_expires_at, o.claims, o.rotated_at,
                 o.sealed_successor,
                 (s.hash IS NOT NULL AND s.rotated_at IS NULL AND s.expires_at > $2) AS successor_current
             FROM refresh_tokens o LEFT JOIN refresh_tokens s ON s.hash = o.successor_hash
             WHERE o.hash = $1 AND o.expires_at > $2";
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            // The one statement that decides between concurrent rotations.
            let retired = sqlx::query(&retire)
                .bind(old.to_hex())
                .bind(db_time(now))
                .bind(new.refresh.hash.to_hex())
                .bind(sealed_successor)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            let outcome = match retired {
                Some(row) => {
                    let record = refresh_from(&row, *old)?;
                    for statement in insert_pair(&new)? {
                        statement.execute(&mut *tx).await.map_err(backend)?;
                    }
                    RefreshRotation::Rotated(record)
                }
                None => {
                    let row = sqlx::query(state).bind(old.to_hex()).bind(db_time(now)).fetch_optional(&mut *tx).await;
                    match row.map_err(backend)? {
                        Some(row) => match row.opt_int("rotated_at")? {
                            Some(rotated_at) => RefreshRotation::AlreadyRotated {
                                grant: grant_from(&row)?,
                                rotated_at: time_from_db(rotated_at)
                                    .ok_or_else(|| corrupt("rotated_at is negative"))?,
                                sealed_successor: match row.flag("successor_current")? {
                                    true => row.opt_bytes("sealed_successor")?,
                                    false => None,
                                },
                            },
                            // Current yet not matched by the update: cannot happen inside the
                            // transaction; refuse rather than guess.
                            None => RefreshRotation::Unknown,
                        },
                        None => RefreshRotation::Unknown,
                    }
                }
            };
            tx.commit().await.map_err(backend)?;
            Ok(outcome)
        })
    }

    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.delete_all(&DELETE_GRANT, grant_id).await
    }

    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            let deleted = sqlx::query("DELETE FROM access_tokens WHERE hash = $1")
                .bind(hash.to_hex())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let outcome = if deleted.rows_affected() > 0 {
                RevokedToken::Access
            } else {
                let grant = sqlx::query("SELECT grant_id FROM refresh_tokens WHERE hash = $1")
                    .bind(hash.to_hex())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
                match grant {
                    Some(row) => {
                        let grant_id = row.text("grant_id")?;
                        for statement in DELETE_GRANT {
                            sqlx::query(statement).bind(grant_id.as_str()).execute(&mut *tx).await.map_err(backend)?;
                        }
                        RevokedToken::Refresh
                    }
                    None => RevokedToken::Unknown,
                }
            };
            tx.commit().await.map_err(backend)?;
            Ok(outcome)
        })
    }

    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError> {
        self.delete_all(&DELETE_SUBJECT, subject).await
    }

    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (hash, subject, username, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(session.hash.to_hex())
            .bind(session.subject.as_str())
            .bind(session.username.as_str())
            .bind(db_time(session.created_at))
            .bind(db_time(session.expires_at))
            .execute(pool)
            .await
            .map_err(backend)?;
        });
        Ok(())
    }

    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT subject, username, created_at, expires_at FROM sessions WHERE hash = $1 AND expires_at > $2",
            )
            .bind(hash.to_hex())
            .bind(db_time(now))
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            .map(|row| session_from(&row, *hash))
            .transpose()
        })
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE hash = $1")
                .bind(hash.to_hex())
                .execute(pool)
                .await
                .map_err(backend)?;
        });
        Ok(())
    }

    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        let scopes = list_to_db(&consent.scopes)?;
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO consents (subject, client_id, scopes, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (subject, client_id) DO UPDATE SET
                   scopes = excluded.scopes, granted_at = excluded.granted_at, expires_at = excluded.expires_at",
            )
            .bind(consent.subject.as_str())
            .bind(consent.client_id.as_str())
            .bind(scopes.as_str())
            .bind(db_time(consent.granted_at))
            .bind(db_time(consent.expires_at))
            .execute(pool)
            .await
            .map_err(backend)?;
        });
        Ok(())
    }

    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT subject, client_id, scopes, granted_at, expires_at FROM consents
                 WHERE subject = $1 AND client_id = $2 AND expires_at > $3",
            )
            .bind(subject)
            .bind(client_id)
            .bind(db_time(now))
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            .map(|row| consent_from(&row))
            .transpose()
        })
    }

    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM consents WHERE subject = $1 AND client_id = $2")
                .bind(subject)
                .bind(client_id)
                .execute(pool)
                .await
                .map_err(backend)?;
        });
        Ok(())
    }

    async fn hit_rate_limit(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<RateLimitWindow, StoreError> {
        let ends_at = crate::clock::later(now, window);
        // One statement, so that concurrent callers (in any process) each get their own count:
        // the database applies the update to the row one caller at a time. A window that has
        // ended starts over at 1.
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "INSERT INTO rate_limits (limit_key, hits, ends_at) VALUES ($1, 1, $3)
                 ON CONFLICT (limit_key) DO UPDATE SET
                   hits = CASE WHEN rate_limits.ends_at > $2 THEN rate_limits.hits + 1 ELSE 1 END,
                   ends_at = CASE WHEN rate_limits.ends_at > $2 THEN rate_limits.ends_at ELSE excluded.ends_at END
                 RETURNING hits, ends_at",
            )
            .bind(key)
            .bind(db_time(now))
            .bind(db_time(ends_at))
            .fetch_one(pool)
            .await
            .map_err(backend)?;
            window_from(&row)
        })
    }

    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError> {
        let current = with_pool!(self, |pool| {
            sqlx::query("SELECT hits, ends_at FROM rate_limits WHERE limit_key = $1 AND ends_at > $2")
                .bind(key)
                .bind(db_time(now))
                .fetch_optional(pool)
                .await
                .map_err(backend)?
                .map(|row| window_from(&row))
                .transpose()?
        });
        Ok(current.unwrap_or(RateLimitWindow { count: 0, ends_at: now }))
    }

    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM rate_limits WHERE limit_key = $1")
                .bind(key)
                .execute(pool)
                .await
                .map_err(backend)?;
        });
        Ok(())
    }

    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        // Matched on the window's end: a window that started over since is not touched.
        with_pool!(self, |pool| {
            sqlx::query("UPDATE rate_limits SET hits = hits - 1 WHERE limit_key = $1 AND ends_at = $2 AND hits > 0")
                .bind(key)
                .bind(db_time(window_ends_at))
                .execute(pool)
                .await
                .map_err(backend)?;
        });
        Ok(())
    }

    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        let mut swept = 0;
        let tables = [
            ("pending_authorizations", "expires_at"),
            ("codes", "expires_at"),
            ("access_tokens", "expires_at"),
            ("refresh_tokens", "expires_at"),
            ("sessions", "expires_at"),
            ("consents", "expires_at"),
            ("rate_limits", "ends_at"),
        ];
        for (table, column) in tables {
            swept += self.sweep(&format!("DELETE FROM {table} WHERE {column} <= $1"), now).await?;
        }
        Ok(swept)
    }

    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        self.sweep(
            "UPDATE refresh_tokens SET sealed_successor = NULL
             WHERE sealed_successor IS NOT NULL AND rotated_at <= $1",
            rotated_before,
        )
        .await
    }

    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        self.sweep(
            "DELETE FROM clients WHERE used_at IS NULL AND issued_at < $1
             AND NOT EXISTS (SELECT 1 FROM pending_authorizations p WHERE p.client_id = clients.client_id)",
            registered_before,
        )
        .await
    }
}

impl SqlStore {
    /// Run `statements`, whose only parameter `$1` is `key`, in order and in one transaction.
    async fn delete_all(&self, statements: &[&str], key: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            for statement in statements {
                sqlx::query(statement).bind(key).execute(&mut *tx).await.map_err(backend)?;
            }
            tx.commit().await.map_err(backend)
        })
    }

    /// Run one of the sweeper's statements, whose only parameter `$1` is a time, and return
    /// how many rows it deleted or changed.
    async fn sweep(&self, statement: &str, time: SystemTime) -> Result<usize, StoreError> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(statement).bind(db_time(time)).execute(pool).await.map_err(backend)?.rows_affected()
        });
        Ok(usize::try_from(rows).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` milliseconds after the Unix epoch.
    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = TokenHash::of("mcp_at_x");
        assert_eq!(hash_from_hex(&h.to_hex()).ok(), Some(h));
        assert!(hash_from_hex("zz").is_err());
        assert!(hash_from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn times_saturate_into_bigint() {
        assert_eq!(db_time(UNIX_EPOCH + Duration::from_millis(5)), 5);
        assert_eq!(db_time(far_future()), i64::MAX);
        assert_eq!(db_time(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(time_from_db(5), Some(UNIX_EPOCH + Duration::from_millis(5)));
        assert_eq!(time_from_db(i64::MAX), Some(far_future()));
        assert_eq!(time_from_db(-1), None);
    }

    /// A database that a build of schema version 1 left behind gets every later version on the
    /// next start, and keeps its data.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_version_1_database_is_upgraded_in_place() {
        let dir = std::env::temp_dir().join(format!(
            "mcp-oauth-kit-upgrade-{}-{}",
            std::process::id(),
            db_time(SystemTime::now())
        ));
        let url = format!("sqlite://{}", dir.join("v1.db").display());
        let store = SqlStore::connect_sqlite(&url).await.expect("open");
        let Pool::Sqlite(pool) = &store.pool else { panic!("a SQLite pool") };
        sqlx::query("CREATE TABLE schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(pool)
            .await
            .expect("schema_version");
        for statement in SCHEMA_V1 {
            sqlx::query(&statement.replace("{bytes}", "BLOB")).execute(pool).await.expect("version 1");
        }
        sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES (1, 0)")
            .execute(pool)
            .await
            .expect("record version 1");
        let client = ClientRecord::new("kept", "none", vec!["http://127.0.0.1/cb".into()], vec![], at(1));
        store.insert_client(client.clone()).await.expect("a client of version 1");
        assert!(store.hit_rate_limit("k", Duration::from_secs(60), at(1)).await.is_err(), "no rate_limits table yet");
        // A refresh token and a code in flight, as version 1 wrote them.
        let (refresh, code, refresh_ends, code_ends) =
            (TokenHash::of("mcp_rt_v1"), TokenHash::of("mcp_code_v1"), 5_000_i64, 60_i64);
        let grant = "'g', 's', 'carol', 'kept', '[\"mcp\"]', 'https://mcp.example.com/mcp'";
        for (table, hash, ends, extra_columns, extra_values) in [
            ("refresh_tokens", refresh, refresh_ends, "", ""),
            ("codes", code, code_ends, ", redirect_uri, code_challenge, used", ", 'http://127.0.0.1/cb', 'c', FALSE"),
        ] {
            sqlx::query(&format!(
                "INSERT INTO {table} (hash, grant_id, subject, username, client_id, scopes, resource, expires_at{extra_columns})
                 VALUES ($1, {grant}, $2{extra_values})"
            ))
            .bind(hash.to_hex())
            .bind(ends)
            .execute(pool)
            .await
            .expect("a row of version 1");
        }

        store.migrate().await.expect("upgrade");
        store.migrate().await.expect("a second start changes nothing");
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_version ORDER BY version")
            .fetch_all(pool)
            .await
            .expect("versions");
        assert_eq!(versions, (1..=MIGRATIONS.len() as i64).collect::<Vec<_>>());
        assert_eq!(store.client("kept").await.expect("client"), Some(client.clone()));
        // Version 3 cannot know whether an older client was used, so it keeps them all.
        assert_eq!(store.sweep_unused_clients(far_future()).await.expect("sweep"), 0);
        assert_eq!(store.client("kept").await.expect("client"), Some(client));
        assert_eq!(store.hit_rate_limit("k", Duration::from_secs(60), at(1)).await.expect("hit").count, 1);
        // Version 6: an existing grant ends with its current refresh token (rotation no longer
        // extends it); a code in flight gets the default lifetime, 90 days.
        let grant = store.refresh_grant(&refresh, UNIX_EPOCH).await.expect("grant").expect("kept");
        assert_eq!(grant.expires_at, at(refresh_ends as u64));
        assert!(grant.claims.is_empty(), "version 8: grants of earlier versions have no claims");
        let code = store.code(&code, UNIX_EPOCH).await.expect("code").expect("kept");
        assert_eq!(code.grant.expires_at, at(code_ends as u64 + 90 * 24 * 3_600_000));
        // Version 5: a code of an earlier version must have its redirect URI repeated.
        assert!(code.redirect_uri_given);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A PostgreSQL database that a build of any earlier schema version left behind is brought
    /// up to the latest version on the next start, and keeps its data. Each earlier version
    /// gets a fresh schema (namespace) of its own. The test walks [`MIGRATIONS`]: a new
    /// version is covered by adding it there, and nothing here changes.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_databases_of_every_earlier_version_are_upgraded() {
        let Some(url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) else {
            eprintln!("postgres upgrade test: skipped: set TEST_DATABASE_URL=postgres://… to run it");
            return;
        };
        // A set variable is a demand: it must lead to PostgreSQL, or the test fails.
        let base = PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is a PostgreSQL URL");
        let mut admin = PgConnection::connect_with(&base).await.expect("TEST_DATABASE_URL is reachable");
        let server: String = sqlx::query_scalar("SELECT version()").fetch_one(&mut admin).await.expect("version()");
        assert!(server.contains("PostgreSQL"), "TEST_DATABASE_URL is not PostgreSQL: {server}");

        let latest = MIGRATIONS.len();
        let now = SystemTime::now();
        for from in 1..latest {
            let schema = format!("mcp_upgrade_v{from}_{}_{}", std::process::id(), db_time(now));
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.expect("create schema");
            let options = base.clone().options([("search_path", schema.as_str())]);
            let store =
                SqlStore { pool: Pool::Postgres(PgPoolOptions::new().max_connections(2).connect_lazy_with(options)) };
            let Pool::Postgres(pool) = &store.pool else { unreachable!("built as PostgreSQL") };

            // The database as version `from` left it, with rows in the tables of version 1.
            sqlx::query("CREATE TABLE schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
                .execute(pool)
                .await
                .expect("schema_version");
            for (version, statements) in (1_i64..).zip(&MIGRATIONS[..from]) {
                for statement in statements.iter() {
                    sqlx::query(&statement.replace("{bytes}", "BYTEA")).execute(pool).await.expect("an old version");
                }
                sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES ($1, 0)")
                    .bind(version)
                    .execute(pool)
                    .await
                    .expect("record the version");
            }
            let client_id = format!("kept-from-v{from}");
            sqlx::query(
                "INSERT INTO clients (client_id, auth_method, redirect_uris, grant_types, issued_at)
                 VALUES ($1, 'none', '[\"http://127.0.0.1/cb\"]', '[]', 1)",
            )
            .bind(&client_id)
            .execute(pool)
            .await
            .expect("a client of the old version");
            let access = TokenHash::of(&format!("mcp_at_kept_{schema}"));
            sqlx::query(
                "INSERT INTO access_tokens (hash, grant_id, subject, username, client_id, scopes, resource, expires_at)
                 VALUES ($1, 'g', 'sub-kept', 'kept', $2, '[\"mcp\"]', 'https://mcp.example.com/mcp', $3)",
            )
            .bind(access.to_hex())
            .bind(&client_id)
            .bind(db_time(now + Duration::from_secs(3600)))
            .execute(pool)
            .await
            .expect("an access token of the old version");

            store.migrate().await.unwrap_or_else(|e| panic!("upgrade from version {from}: {e}"));
            store.migrate().await.expect("a second start changes nothing");
            let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_version ORDER BY version")
                .fetch_all(pool)
                .await
                .expect("versions");
            assert_eq!(versions, (1..=latest as i64).collect::<Vec<_>>(), "upgraded from version {from}");
            let client = store.client(&client_id).await.expect("client").unwrap_or_else(|| panic!("v{from} client"));
            assert_eq!(client.redirect_uris, ["http://127.0.0.1/cb"], "from version {from}");
            let token = store.access_token(&access, now).await.expect("access token");
            assert_eq!(token.map(|t| t.grant.subject), Some("sub-kept".to_owned()), "from version {from}");
            // Every table of the latest version is there: sweeping touches them all.
            store.sweep_expired(now).await.unwrap_or_else(|e| panic!("sweep after upgrading from {from}: {e}"));
            assert_eq!(store.hit_rate_limit("k", Duration::from_secs(60), at(1)).await.expect("hit").count, 1);
            store.close().await;
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.expect("drop schema");
        }
        let _ = admin.close().await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn debug_names_the_backend_only() {
        let store = SqlStore { pool: Pool::Postgres(PgPoolOptions::new().connect_lazy_with(PgConnectOptions::new())) };
        assert_eq!(format!("{store:?}"), "SqlStore { backend: \"postgres\", .. }");
    }
}
