//! [`open_store`]: pick and open a [`Store`] backend from a URL, the way a deployment names
//! it in its configuration (`STORE_URL=sqlite://data/oauth.db`, say).

use std::sync::Arc;

use super::{SqlStore, setup_error};
use crate::error::StoreError;
use crate::store::{MemoryStore, Store};

/// The URL forms [`open_store`] accepts, for its error message.
const ACCEPTED: &str = "`memory`, `sqlite://PATH`, `sqlite:PATH`, `postgres://…` or `postgresql://…`";

/// Open the store that `url` names:
///
/// - `memory`: a [`MemoryStore`] (everything is lost on restart);
/// - `sqlite://PATH` or `sqlite:PATH`: a [`SqlStore`] in that SQLite file, created if missing;
/// - `postgres://…` or `postgresql://…`: a [`SqlStore`] in that PostgreSQL database.
///
/// The SQL stores are migrated before this returns. See [`SqlStore::connect`].
///
/// # Errors
/// [`StoreError::Backend`] when the URL has none of these forms (the message lists them), or
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
    let sql = ["sqlite:", "postgres://", "postgresql://"].iter().any(|prefix| url.starts_with(prefix));
    if sql {
        return Ok(Arc::new(SqlStore::connect(url).await?));
    }
    // Name the scheme only: the rest of a URL may hold a password.
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    let shown = if scheme.len() <= 20 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        format!("{scheme:?}")
    } else {
        "this URL".to_owned()
    };
    Err(setup_error(format!("unsupported store URL scheme {shown}: expected {ACCEPTED}")))
}
