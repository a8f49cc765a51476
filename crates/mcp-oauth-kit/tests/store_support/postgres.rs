//! `TEST_DATABASE_URL`, checked: the PostgreSQL tests count as run only against a server that
//! answers `SELECT version()` as PostgreSQL. A set variable is a demand, not a hint: set but
//! unreachable, or not PostgreSQL, fails the test instead of skipping it.
//!
//! Self-contained (std, tokio, sqlx) so that the example's tests include it too.

use std::io::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::Connection as _;

/// How long the check waits for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL URL to test against, or `None` (after saying so on stderr) when
/// `TEST_DATABASE_URL` is unset or empty.
///
/// # Panics
/// When `TEST_DATABASE_URL` is set but does not lead to a PostgreSQL server.
pub(crate) fn postgres_url(test: &str) -> Option<String> {
    static CHECKED: OnceLock<Result<String, String>> = OnceLock::new();
    let Some(url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) else {
        // Straight to stderr: the test harness captures `println!` of passing tests.
        let _ = writeln!(std::io::stderr(), "{test}: skipped: set TEST_DATABASE_URL=postgres://… to run it");
        return None;
    };
    match CHECKED.get_or_init(|| check(url)) {
        Ok(url) => Some(url.clone()),
        Err(why) => panic!("{test}: TEST_DATABASE_URL is set, but {why}"),
    }
}

/// Connect once and ask the server what it is. On a thread and runtime of its own: callers are
/// inside a Tokio runtime, which must not block on another one.
fn check(url: String) -> Result<String, String> {
    let checked = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("no runtime for the check: {e}"))?;
        runtime.block_on(async {
            let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect(&url))
                .await
                .map_err(|_| format!("no PostgreSQL answered within {CONNECT_TIMEOUT:?}"))?
                .map_err(|e| format!("it is not a reachable PostgreSQL server: {e}"))?;
            let version: String = sqlx::query_scalar("SELECT version()")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| format!("SELECT version() failed: {e}"))?;
            let _ = conn.close().await;
            if version.contains("PostgreSQL") {
                Ok(url)
            } else {
                Err(format!("SELECT version() answered {version:?}, which is not PostgreSQL"))
            }
        })
    });
    checked.join().unwrap_or_else(|_| Err("the check panicked".to_owned()))
}
