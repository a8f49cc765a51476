//! [`open_store`]: pick and open a [`Store`] backend from a URL, the way a deployment names
//! it in its configuration (`STORE_URL=sqlite://data/oauth.db`, say).

use std::sync::Arc;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use super::SqlStore;
use crate::error::StoreError;
use crate::store::{MemoryStore, Store};

/// The URL forms [`open_store`] accepts, for its error message.
const ACCEPTED: &str = "`memory`, `sqlite://PATH`, `sqlite:PATH`, `postgres://…` or `postgresql://…`";

/// Open the store that `url` names:
///
/// - `memory`: a [`MemoryStore`] (everything is lost on restart);
/// - `sqlite://PATH` or `sqlite:PATH`: a `SqlStore` in that SQLite file, created if missing
///   (feature `sqlite`);
/// - `postgres://…` or `postgresql://…`: a `SqlStore` in that PostgreSQL database (feature
///   `postgres`).
///
/// The SQL stores are migrated before this returns (see `SqlStore::connect`).
///
/// # Errors
/// [`StoreError::Backend`] when the URL has none of these forms (the message lists them), when
/// it names a database whose feature this build left out (the message names the feature), or
/// when the database cannot be opened or reached within five seconds (the message says why).
///
/// ```no_run
/// # async fn run() -> Result<(), mcp_oauth_kit::store::StoreError> {
/// let store = mcp_oauth_kit::store::open_store("sqlite://data/oauth.db").await?;
/// # Ok(()) }
/// ```
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let url = url.trim();
    if url == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return open_sql(url).await;
    }
    // Name the scheme only: the rest of a URL may hold a password.
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    let shown = if scheme.len() <= 20 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        format!("{scheme:?}")
    } else {
        "this URL".to_owned()
    };
    Err(StoreError::Backend(format!("unsupported store URL scheme {shown}: expected {ACCEPTED}").into()))
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn open_sql(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::connect(url).await?))
}

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
async fn open_sql(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Err(if url.starts_with("sqlite:") {
        feature_off("sqlite", "SQLite")
    } else {
        feature_off("postgres", "PostgreSQL")
    })
}

/// The error for a database URL whose backend this build was compiled without.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
pub(super) fn feature_off(feature: &str, database: &str) -> StoreError {
    StoreError::Backend(
        format!(
            "this build of mcp-oauth-kit has no {database} support: enable its `{feature}` feature \
             (mcp-oauth-kit = {{ features = [\"{feature}\"] }})"
        )
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_needs_no_feature() {
        let store = open_store(" memory ").await.expect("a memory store");
        assert_eq!(store.client("mcp_client_unknown").await.expect("lookup"), None);
    }

    #[cfg(not(feature = "sqlite"))]
    #[tokio::test]
    async fn a_sqlite_url_without_the_feature_names_it() {
        let err = open_store("sqlite://data/oauth.db").await.err().expect("refused");
        assert_eq!(
            err.to_string(),
            "storage backend error: this build of mcp-oauth-kit has no SQLite support: enable its \
             `sqlite` feature (mcp-oauth-kit = { features = [\"sqlite\"] })"
        );
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn a_postgres_url_without_the_feature_names_it() {
        for url in ["postgres://u:secret@db/x", "postgresql://u:secret@db/x"] {
            let err = open_store(url).await.err().expect("refused");
            assert_eq!(
                err.to_string(),
                "storage backend error: this build of mcp-oauth-kit has no PostgreSQL support: enable its \
                 `postgres` feature (mcp-oauth-kit = { features = [\"postgres\"] })",
                "{url}"
            );
        }
    }
}
