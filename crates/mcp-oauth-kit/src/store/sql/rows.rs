//! How records are stored in SQL rows: each record's column list and its decoding from a row
//! of either backend ([`FromRow`]), and times, lists and hashes as column values.
//!
//! Storage format: codes, tokens and sessions by the hex of their [`TokenHash`], lists as JSON
//! text, times as `BIGINT` milliseconds. The grant is copied into each code and token row,
//! because a refresh may narrow the scopes of the tokens it issues while the grant id stays.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(feature = "postgres")]
use sqlx::postgres::PgRow;
use sqlx::query::Query;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, Encode, Row as _, Type};

use super::super::{
    AccessTokenRecord, ClientRecord, CodeRecord, ConsentRecord, Grant, McpSessionRecord, PendingAuthorization,
    RateLimitWindow, RefreshTokenRecord, SessionRecord, UpstreamTokenRecord,
};
use super::{Described, backend};
use crate::clock::far_future;
use crate::error::StoreError;
use crate::secret::TokenHash;

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(Box::new(Described(format!("unreadable row in the store: {what}"))))
}

/// Times are `BIGINT` milliseconds since the Unix epoch in SQL. "No end" ([`far_future`] and
/// beyond) is `i64::MAX`, as the schema's defaults spell it; a time before the epoch is 0.
pub(super) fn db_time(t: SystemTime) -> i64 {
    if t >= far_future() {
        return i64::MAX;
    }
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The inverse of [`db_time`], to the millisecond; `None` for a negative column.
pub(super) fn time_from_db(millis: i64) -> Option<SystemTime> {
    let millis = u64::try_from(millis).ok()?;
    Some(UNIX_EPOCH.checked_add(Duration::from_millis(millis)).map_or_else(far_future, |t| t.min(far_future())))
}

pub(super) fn list_to_db(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Backend(Box::new(e)))
}

pub(super) fn list_from_db(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|_| corrupt("a list column is not a JSON array of strings"))
}

pub(super) fn hash_from_hex(hex: &str) -> Result<TokenHash, StoreError> {
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
pub(super) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;

    fn time(&self, column: &str) -> Result<SystemTime, StoreError> {
        time_from_db(self.int(column)?).ok_or_else(|| corrupt("a time column is negative"))
    }

    fn hash(&self, column: &str) -> Result<TokenHash, StoreError> {
        hash_from_hex(&self.text(column)?)
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

/// The column list of each record, as a macro so that statements can `concat!` it: one
/// spelling serves the `SELECT`, `RETURNING` and `INSERT` lists and its [`FromRow`] impl.
macro_rules! client_columns {
    () => {
        "client_id, secret_hash, auth_method, client_name, redirect_uris, grant_types, scope, issued_at"
    };
}
macro_rules! pending_columns {
    () => {
        "id_hash, client_id, redirect_uri, redirect_uri_given, state, code_challenge, scopes, resource, csrf_token, \
         failed_logins, expires_at"
    };
}
/// The grant is copied into each code and token row.
macro_rules! grant_columns {
    () => {
        "grant_id, subject, username, client_id, scopes, resource, grant_expires_at, claims"
    };
}
macro_rules! code_columns {
    () => {
        concat!("hash, ", grant_columns!(), ", redirect_uri, redirect_uri_given, code_challenge, used, expires_at")
    };
}
/// Access and refresh tokens: the two tables share these columns.
macro_rules! token_columns {
    () => {
        concat!("hash, ", grant_columns!(), ", expires_at")
    };
}
macro_rules! session_columns {
    () => {
        "hash, subject, username, created_at, expires_at, claims"
    };
}
macro_rules! mcp_session_columns {
    () => {
        "id_hash, subject, grant_id, initialize, last_used_at"
    };
}
macro_rules! consent_columns {
    () => {
        "subject, client_id, scopes, granted_at, expires_at"
    };
}
macro_rules! window_columns {
    () => {
        "hits, ends_at"
    };
}
macro_rules! upstream_columns {
    () => {
        "grant_id, subject, sealed, version, refreshing_until, expires_at"
    };
}
pub(super) use {
    client_columns, code_columns, consent_columns, grant_columns, mcp_session_columns, pending_columns,
    session_columns, token_columns, upstream_columns, window_columns,
};

/// A record decoded from a row of either backend that holds (at least) its column list.
pub(super) trait FromRow: Sized + Send {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError>;
}

/// The record in the row a statement returned, if it returned one.
pub(super) fn decode<R: FromRow>(row: Result<Option<impl Columns>, sqlx::Error>) -> Result<Option<R>, StoreError> {
    row.map_err(backend)?.as_ref().map(R::from_row).transpose()
}

/// Reads [`grant_columns!`].
impl FromRow for Grant {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
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
}

/// Reads [`client_columns!`].
impl FromRow for ClientRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
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
}

/// Reads [`pending_columns!`].
impl FromRow for PendingAuthorization {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(PendingAuthorization {
            id_hash: row.hash("id_hash")?,
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
}

/// Reads [`code_columns!`].
impl FromRow for CodeRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(CodeRecord {
            hash: row.hash("hash")?,
            grant: Grant::from_row(row)?,
            redirect_uri: row.text("redirect_uri")?,
            redirect_uri_given: row.flag("redirect_uri_given")?,
            code_challenge: row.text("code_challenge")?,
            expires_at: row.time("expires_at")?,
        })
    }
}

/// Reads [`token_columns!`].
impl FromRow for AccessTokenRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(AccessTokenRecord::new(row.hash("hash")?, Grant::from_row(row)?, row.time("expires_at")?))
    }
}

/// Reads [`token_columns!`].
impl FromRow for RefreshTokenRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(RefreshTokenRecord::new(row.hash("hash")?, Grant::from_row(row)?, row.time("expires_at")?))
    }
}

/// Reads [`session_columns!`].
impl FromRow for SessionRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(SessionRecord {
            hash: row.hash("hash")?,
            subject: row.text("subject")?,
            username: row.text("username")?,
            created_at: row.time("created_at")?,
            expires_at: row.time("expires_at")?,
            claims: serde_json::from_str(&row.text("claims")?).map_err(|_| corrupt("claims is not a JSON object"))?,
        })
    }
}

/// Reads [`mcp_session_columns!`].
impl FromRow for McpSessionRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(McpSessionRecord {
            id_hash: row.hash("id_hash")?,
            subject: row.text("subject")?,
            grant_id: row.opt_text("grant_id")?,
            initialize: row.text("initialize")?,
            last_used_at: row.time("last_used_at")?,
        })
    }
}

/// Reads [`consent_columns!`].
impl FromRow for ConsentRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(ConsentRecord {
            subject: row.text("subject")?,
            client_id: row.text("client_id")?,
            scopes: list_from_db(&row.text("scopes")?)?,
            granted_at: row.time("granted_at")?,
            expires_at: row.time("expires_at")?,
        })
    }
}

/// Reads [`window_columns!`].
impl FromRow for RateLimitWindow {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        let hits = row.int("hits")?;
        Ok(RateLimitWindow { count: u32::try_from(hits.max(0)).unwrap_or(u32::MAX), ends_at: row.time("ends_at")? })
    }
}

/// Reads [`upstream_columns!`].
impl FromRow for UpstreamTokenRecord {
    fn from_row(row: &impl Columns) -> Result<Self, StoreError> {
        Ok(UpstreamTokenRecord {
            grant_id: row.text("grant_id")?,
            subject: row.text("subject")?,
            sealed: row.opt_bytes("sealed")?.ok_or_else(|| corrupt("sealed upstream tokens are missing"))?,
            version: u64::try_from(row.int("version")?).map_err(|_| corrupt("an upstream version is negative"))?,
            refreshing_until: row
                .opt_int("refreshing_until")?
                .map(|t| time_from_db(t).ok_or_else(|| corrupt("refreshing_until is negative")))
                .transpose()?,
            expires_at: row.time("expires_at")?,
        })
    }
}

/// A statement of either backend, ready for more binds.
pub(super) type Statement<'q, DB> = Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// Bind the eight grant columns, in the order of [`grant_columns!`].
pub(super) fn bind_grant<'q, DB>(query: Statement<'q, DB>, grant: &Grant) -> Result<Statement<'q, DB>, StoreError>
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
