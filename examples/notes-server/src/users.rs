//! The user table and a `UserStore` over it. Passwords are argon2id PHC strings from the kit's
//! `hash_password`; a disabled user cannot sign in or refresh a token.

use std::time::Duration;

use mcp_oauth_kit::users::{UserStoreError, hash_password, verify_password_or_dummy};
use mcp_oauth_kit::{Password, User, UserStore, async_trait};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_by_user ON notes (user_id, id);
";

/// Open (and create) the application database at a `sqlite://` URL.
pub(crate) async fn open(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options: SqliteConnectOptions = url.parse()?;
    // SQLite creates the file, not its directory (`data/` on a first run).
    if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        // The CLI writes while the server runs: wait for the other's write instead of failing.
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    Ok(pool)
}

/// Add a user; the password is stored only as its argon2id hash.
pub(crate) async fn add_user(
    pool: &SqlitePool,
    username: &str,
    email: &str,
    password: &Password,
) -> Result<(), Box<dyn std::error::Error>> {
    let hash = hash_password(password)?;
    let inserted = sqlx::query("INSERT INTO users (username, password_hash, email) VALUES (?, ?, ?)")
        .bind(username)
        .bind(hash)
        .bind(email)
        .execute(pool)
        .await;
    match inserted {
        Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
            Err(format!("there is already a user {username:?}").into())
        }
        other => Ok(other.map(drop)?),
    }
}

/// Disable a user. Returns whether the user exists.
pub(crate) async fn disable(pool: &SqlitePool, username: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET disabled = 1 WHERE username = ?").bind(username).execute(pool).await?;
    Ok(done.rows_affected() == 1)
}

/// The users table as the kit's `UserStore`. The user id (the token's subject) is the row id.
#[derive(Debug, Clone)]
pub(crate) struct SqliteUsers {
    pub(crate) pool: SqlitePool,
}

#[async_trait]
impl UserStore for SqliteUsers {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        // A disabled user is not found, so they look exactly like an unknown one.
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT id, password_hash, email FROM users WHERE username = ? AND disabled = 0")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        // No row: a dummy hash of equal cost, so timing does not tell who has an account.
        let ok = verify_password_or_dummy(row.as_ref().map(|(_, hash, _)| hash.clone()), password).await?;
        Ok(row.filter(|_| ok).map(|(id, _, email)| User::new(id.to_string(), username).with_claim("email", email)))
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        let Ok(id) = id.parse::<i64>() else { return Ok(None) };
        let row: Option<(String, String)> = sqlx::query_as("SELECT username, email FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(username, email)| User::new(id.to_string(), username).with_claim("email", email)))
    }

    async fn may_sign_in(&self, id: &str) -> Result<bool, UserStoreError> {
        let Ok(id) = id.parse::<i64>() else { return Ok(false) };
        let disabled: Option<bool> =
            sqlx::query_scalar("SELECT disabled FROM users WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        Ok(disabled == Some(false))
    }
}
