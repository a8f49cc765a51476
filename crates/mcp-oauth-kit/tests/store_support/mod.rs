//! What the storage tests share: unique ids (the PostgreSQL tests share their database with
//! other runs), record builders, and storing codes and tokens the only way the [`Store`] trait
//! allows, which is the way the server does it.

#![allow(dead_code)] // each test file uses its own part

pub(crate) mod postgres;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcp_oauth_kit::store::{
    AccessTokenRecord, CodeRecord, CodeRedemption, Grant, IssuedTokens, PendingAuthorization, RefreshTokenRecord,
    Store, TokenHash, UpstreamTokenRecord,
};

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// `n` milliseconds.
pub(crate) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The current time in whole milliseconds, as a SQL store keeps times: what a test writes
/// then reads back equal.
pub(crate) fn now() -> SystemTime {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + ms(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// A string no other run, test or process uses.
pub(crate) fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{label}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A new directory under the system's temp dir, removed when dropped (also when a test fails).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Self {
        Self(std::env::temp_dir().join(unique(label)))
    }

    /// A SQLite URL for `file` in a not-yet-existing subdirectory, which the store creates.
    pub(crate) fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join("nested").join(file).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn hash(label: &str) -> TokenHash {
    TokenHash::of(&unique(label))
}

pub(crate) fn pair(grant: &Grant, expires_at: SystemTime) -> IssuedTokens {
    IssuedTokens::new(
        AccessTokenRecord::new(hash("access"), grant.clone(), expires_at),
        RefreshTokenRecord::new(hash("refresh"), grant.clone(), expires_at),
    )
}

/// Sealed upstream tokens of `grant`: bytes unique to the call, as a real ciphertext is.
pub(crate) fn upstream(grant: &Grant) -> UpstreamTokenRecord {
    UpstreamTokenRecord::new(grant, unique("sealed").into_bytes())
}

pub(crate) fn code(grant: &Grant, expires_at: SystemTime) -> CodeRecord {
    CodeRecord::new(hash("code"), grant.clone(), "http://127.0.0.1:9999/cb", "c".repeat(43), expires_at)
}

/// A pending sign-in that approving would turn into `code`.
pub(crate) fn pending_for(code: &CodeRecord, expires_at: SystemTime) -> PendingAuthorization {
    PendingAuthorization::new(
        hash("pending"),
        code.grant.client_id.as_str(),
        code.redirect_uri.as_str(),
        code.code_challenge.as_str(),
        code.grant.resource.as_str(),
        unique("csrf"),
        expires_at,
    )
}

/// Store `code` as an approval does: take a pending sign-in and store the code with it.
pub(crate) async fn insert_code(store: &dyn Store, code: &CodeRecord) {
    // Taken at the epoch, so that codes that are already expired can be stored too.
    let p = pending_for(code, UNIX_EPOCH + ms(1));
    store.insert_pending(p.clone()).await.expect("insert pending");
    let taken = store.take_pending(&p.id_hash, UNIX_EPOCH, Some(code.clone())).await.expect("take pending");
    assert_eq!(taken, Some(p));
}

/// Store `tokens` as a code exchange does: redeem a fresh code of their grant. The code
/// outlives every test, so that it takes no part in what a sweep counts.
pub(crate) async fn insert_tokens(store: &dyn Store, tokens: &IssuedTokens) {
    let c = code(&tokens.access.grant, now() + 24 * HOUR);
    insert_code(store, &c).await;
    let outcome = store.redeem_code(&c.hash, UNIX_EPOCH, Some(tokens.clone())).await.expect("redeem");
    assert_eq!(outcome, CodeRedemption::Redeemed(c));
}
