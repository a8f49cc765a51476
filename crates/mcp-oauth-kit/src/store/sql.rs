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
//! Storage format: see `sql/rows.rs`; the schema and its versions: `sql/schema.rs`.
//!
//! [`Store`]: super::Store
//! [`Store::redeem_code`]: super::Store::redeem_code
//! [`Store::rotate_refresh`]: super::Store::rotate_refresh
//! [`Store::take_pending`]: super::Store::take_pending
//! [`Store::hit_rate_limit`]: super::Store::hit_rate_limit

#[cfg(feature = "postgres")]
use sqlx::postgres::PgPool;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqlitePool;

use crate::error::StoreError;

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
///
/// [`Store`]: super::Store
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

// After `with_pool!`, which they use.
mod connect;
mod maintenance;
mod queries;
mod rows;
mod schema;

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

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_names_the_backend_only() {
        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

        let store = SqlStore { pool: Pool::Postgres(PgPoolOptions::new().connect_lazy_with(PgConnectOptions::new())) };
        assert_eq!(format!("{store:?}"), "SqlStore { backend: \"postgres\", .. }");
    }
}
