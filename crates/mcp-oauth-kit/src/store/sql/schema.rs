//! The SQL store's schema, one migration per version, and [`SqlStore::migrate`], which brings a
//! database up to the latest version.

use super::rows::{Columns as _, db_time};
use super::{Pool, SqlStore, setup_error};
use crate::error::StoreError;

/// Key of the PostgreSQL advisory lock that serialises migrations of instances starting at once.
const MIGRATION_LOCK_KEY: i64 = 0x6d63_705f_6f61_7574; // "mcp_oaut"

/// The schema, one entry per version, each a list of statements. The `{bytes}` placeholder
/// is the dialect's binary type. A version runs once, in the transaction that records it in
/// the `schema_version` table (so a statement such as `ALTER TABLE … ADD COLUMN` need not be
/// idempotent). Never edit a released version; add one.
const MIGRATIONS: &[&[&str]] = &[
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8, SCHEMA_V9, SCHEMA_V10,
    SCHEMA_V11,
];

/// A version-1 table of a grant's codes or tokens: the hash, the grant copied into each row,
/// then the table's own columns (`$own`). The three tables share the first seven.
macro_rules! grant_table_v1 {
    ($table:literal, $own:literal) => {
        concat!(
            "CREATE TABLE IF NOT EXISTS ",
            $table,
            " (
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        username TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resource TEXT NOT NULL,
        ",
            $own,
            "
    )"
        )
    };
}

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
    grant_table_v1!(
        "codes",
        "redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        used BOOLEAN NOT NULL,
        expires_at BIGINT NOT NULL"
    ),
    "CREATE INDEX IF NOT EXISTS codes_grant_id ON codes (grant_id)",
    "CREATE INDEX IF NOT EXISTS codes_expires_at ON codes (expires_at)",
    grant_table_v1!("access_tokens", "expires_at BIGINT NOT NULL"),
    "CREATE INDEX IF NOT EXISTS access_tokens_grant_id ON access_tokens (grant_id)",
    "CREATE INDEX IF NOT EXISTS access_tokens_expires_at ON access_tokens (expires_at)",
    grant_table_v1!(
        "refresh_tokens",
        "expires_at BIGINT NOT NULL,
        rotated_at BIGINT,
        successor_hash TEXT,
        sealed_successor {bytes}"
    ),
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
/// ([`Store::forget_sealed_successors`](crate::store::Store::forget_sealed_successors)); this
/// index holds only the rows that still have one.
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

/// Version 6: each grant's absolute end ([`Grant::expires_at`](crate::store::Grant::expires_at)).
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

/// Version 7: the indexes that revoking everything of one user
/// ([`Store::revoke_subject`](crate::store::Store::revoke_subject)) reads.
const SCHEMA_V7: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS codes_subject ON codes (subject)",
    "CREATE INDEX IF NOT EXISTS access_tokens_subject ON access_tokens (subject)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_subject ON refresh_tokens (subject)",
    "CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject)",
];

/// Version 8: the user's extra claims ([`Grant::claims`](crate::store::Grant::claims)), a JSON object, with each grant.
const SCHEMA_V8: &[&str] = &[
    // Grants of earlier versions had none.
    "ALTER TABLE codes ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE access_tokens ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE refresh_tokens ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
];

/// Version 9: grants' sealed tokens at an upstream identity provider
/// ([`UpstreamTokenRecord`](crate::store::UpstreamTokenRecord)).
const SCHEMA_V9: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS upstream_tokens (
        grant_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        sealed {bytes} NOT NULL,
        version BIGINT NOT NULL,
        refreshing_until BIGINT,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS upstream_tokens_subject ON upstream_tokens (subject)",
    "CREATE INDEX IF NOT EXISTS upstream_tokens_expires_at ON upstream_tokens (expires_at)",
];

/// Version 10: MCP sessions ([`McpSessionRecord`](crate::store::McpSessionRecord)), so that any
/// instance can continue them; found by grant and by user when those are revoked.
const SCHEMA_V10: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS mcp_sessions (
        id_hash TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        grant_id TEXT,
        initialize TEXT NOT NULL,
        last_used_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS mcp_sessions_subject ON mcp_sessions (subject)",
    "CREATE INDEX IF NOT EXISTS mcp_sessions_grant_id ON mcp_sessions (grant_id)",
    "CREATE INDEX IF NOT EXISTS mcp_sessions_last_used_at ON mcp_sessions (last_used_at)",
];

/// Version 11: the claims of an upstream provider's user with their sign-in session
/// ([`SessionRecord::claims`](crate::store::SessionRecord::claims)).
const SCHEMA_V11: &[&str] = &["ALTER TABLE sessions ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'"];

impl SqlStore {
    /// Bring the schema up to date, in one transaction that concurrent instances serialise on,
    /// and prove that this process may write to the database.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let (bytes, setup): (_, &[&str]) = match self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => ("BLOB", &[]),
            // `CREATE … IF NOT EXISTS` of something that exists is a NOTICE, which sqlx logs
            // at INFO on every start; the transaction's own setting keeps it quiet.
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => {
                ("BYTEA", &["SET LOCAL client_min_messages TO warning", "SELECT pg_advisory_xact_lock($1)"])
            }
        };
        let latest = MIGRATIONS.len() as i64;
        let error = |e| self.migration_error(e);
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(error)?;
            for statement in setup {
                let query = sqlx::query(statement);
                let query = if statement.contains("$1") { query.bind(MIGRATION_LOCK_KEY) } else { query };
                query.execute(&mut *tx).await.map_err(error)?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await
            .map_err(error)?;
            // A database this process may read but not write (a restored copy owned by root,
            // a read-only mount, a read-only role) would serve reads and fail every sign-in
            // with a 500: a write that changes no row refuses it here, at start.
            sqlx::query("UPDATE schema_version SET applied_at = applied_at WHERE version < 0")
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
                .fetch_one(&mut *tx)
                .await
                .map_err(error)?;
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
                    sqlx::query(&statement).execute(&mut *tx).await.map_err(error)?;
                }
                sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    // When the migration ran, for the operator: no expiry depends on it.
                    .bind(db_time(crate::clock::Clock::now(&crate::clock::SystemClock)))
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
            }
            tx.commit().await.map_err(error)
        })
    }

    /// The error of a migration statement: for a database this process may not write, what
    /// the operator has to do about it.
    fn migration_error(&self, e: sqlx::Error) -> StoreError {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) if super::connect::is_sqlite_read_only(&e) => {
                super::connect::sqlite_read_only(pool.connect_options().get_filename(), &e)
            }
            // read_only_sql_transaction, insufficient_privilege.
            #[cfg(feature = "postgres")]
            Pool::Postgres(_)
                if e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "25006" || c == "42501") =>
            {
                setup_error(format!(
                    "the PostgreSQL role in DATABASE_URL may not write the store's tables: connect as \
                     their owner, to a primary that accepts writes ({e})"
                ))
            }
            _ => setup_error(format!("cannot migrate the store's schema: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::store::{Store, TokenHash};

    /// `ms` milliseconds after the Unix epoch.
    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// A database this process may read but not write is refused at start, with what to do,
    /// instead of serving reads and failing every sign-in. `?mode=ro` stands in for the file
    /// modes that do not stop root (tests may run as root); the example's `restore.rs` test
    /// covers a root-owned file opened by a service user.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_database_it_cannot_write_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!(
            "mcp-oauth-kit-read-only-{}-{}",
            std::process::id(),
            db_time(SystemTime::now())
        ));
        let file = dir.join("restored.db");
        let store = SqlStore::connect(&format!("sqlite://{}", file.display())).await.expect("create");
        store.close().await;

        let err = SqlStore::connect(&format!("sqlite://{}?mode=ro", file.display())).await.expect_err("refused");
        let message = err.to_string();
        assert!(message.contains(&format!("the SQLite database {} is read-only", file.display())), "{message}");
        assert!(message.contains("chown") && message.contains("DEPLOY.md"), "says what to do: {message}");
        SqlStore::connect(&format!("sqlite://{}", file.display())).await.expect("writable again").close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A database that a build of schema version 1 left behind gets every later version on the
    /// next start, and keeps its data.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_version_1_database_is_upgraded_in_place() {
        use crate::clock::far_future;
        use crate::store::ClientRecord;

        let dir = std::env::temp_dir().join(format!(
            "mcp-oauth-kit-upgrade-{}-{}",
            std::process::id(),
            db_time(SystemTime::now())
        ));
        let url = format!("sqlite://{}", dir.join("v1.db").display());
        let store = SqlStore::connect_sqlite(&url, 5).await.expect("open");
        // Irrefutable in a build with SQLite alone.
        #[allow(irrefutable_let_patterns)]
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
        use std::str::FromStr;

        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
        use sqlx::{Connection as _, PgConnection};

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
            let pool = PgPoolOptions::new().max_connections(2).connect_lazy_with(options);
            let (store, pool) = (SqlStore { pool: Pool::Postgres(pool.clone()) }, &pool);

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
}
