//! The store as the server uses it: each operation timed by the method's name when metrics are
//! on, and each operation a request waits for bounded by [`Config::store_timeout`]
//! (crate::Config::store_timeout), so that a query stuck on a lock or on a database that stopped
//! answering without closing the connection fails the request instead of holding it forever.
//! The sweeper's operations and `revoke_all` are timed but not bounded: they may rightly take
//! long on a large database, and nobody waits for them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::metrics;
use crate::secret::TokenHash;
use crate::store::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, McpSessionRecord,
    PendingAuthorization, RateLimitWindow, RefreshRotation, RevokedToken, SessionRecord, Store, UpstreamTokenRecord,
};

/// Times every operation of the store it wraps (one relaxed load a call without metrics), and
/// bounds those of requests by `timeout` (zero: no bound).
pub(crate) struct TimedStore {
    inner: Arc<dyn Store>,
    timeout: Duration,
}

impl TimedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    /// `call`, timed, and failed with a [`StoreError`] once it has taken `self.timeout`.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if self.timeout.is_zero() {
            return timed(operation, call).await;
        }
        match tokio::time::timeout(self.timeout, timed(operation, call)).await {
            Ok(result) => result,
            Err(_) => {
                let e = format!("the store did not finish {operation} within {:?}", self.timeout);
                Err(StoreError::Backend(e.into()))
            }
        }
    }
}

async fn timed<T>(operation: &'static str, call: impl Future<Output = T>) -> T {
    if !metrics::enabled() {
        return call.await;
    }
    let started = Instant::now();
    let result = call.await;
    metrics::store_operation(operation, started.elapsed());
    result
}

#[async_trait]
impl Store for TimedStore {
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.bounded("insert_client", self.inner.insert_client(client)).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.bounded("client", self.inner.client(client_id)).await
    }
    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        self.bounded("insert_pending", self.inner.insert_pending(pending)).await
    }
    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError> {
        self.bounded("pending", self.inner.pending(id_hash, now)).await
    }
    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError> {
        self.bounded("record_failed_login", self.inner.record_failed_login(id_hash)).await
    }
    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.bounded("take_pending", self.inner.take_pending(id_hash, now, code)).await
    }
    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError> {
        self.bounded("code", self.inner.code(hash, now)).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError> {
        self.bounded("redeem_code", self.inner.redeem_code(hash, now, tokens)).await
    }
    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError> {
        self.bounded("access_token", self.inner.access_token(hash, now)).await
    }
    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError> {
        self.bounded("refresh_grant", self.inner.refresh_grant(hash, now)).await
    }
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError> {
        self.bounded("rotate_refresh", self.inner.rotate_refresh(old, now, new, sealed_successor)).await
    }
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.bounded("revoke_grant", self.inner.revoke_grant(grant_id)).await
    }
    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError> {
        self.bounded("revoke_token", self.inner.revoke_token(hash)).await
    }
    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError> {
        self.bounded("revoke_subject", self.inner.revoke_subject(subject)).await
    }
    async fn revoke_all(&self) -> Result<(), StoreError> {
        timed("revoke_all", self.inner.revoke_all()).await
    }
    async fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> Result<(), StoreError> {
        self.bounded("put_upstream_tokens", self.inner.put_upstream_tokens(record)).await
    }
    async fn upstream_tokens(
        &self,
        grant_id: &str,
        now: SystemTime,
    ) -> Result<Option<UpstreamTokenRecord>, StoreError> {
        self.bounded("upstream_tokens", self.inner.upstream_tokens(grant_id, now)).await
    }
    async fn replace_upstream_tokens(&self, version: u64, new: UpstreamTokenRecord) -> Result<bool, StoreError> {
        self.bounded("replace_upstream_tokens", self.inner.replace_upstream_tokens(version, new)).await
    }
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StoreError> {
        self.bounded("delete_upstream_tokens", self.inner.delete_upstream_tokens(grant_id)).await
    }
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.bounded("insert_session", self.inner.insert_session(session)).await
    }
    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        self.bounded("session", self.inner.session(hash, now)).await
    }
    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.bounded("delete_session", self.inner.delete_session(hash)).await
    }
    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        self.bounded("put_consent", self.inner.put_consent(consent)).await
    }
    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.bounded("consent", self.inner.consent(subject, client_id, now)).await
    }
    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        self.bounded("revoke_consent", self.inner.revoke_consent(subject, client_id)).await
    }
    async fn hit_rate_limit(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<RateLimitWindow, StoreError> {
        self.bounded("hit_rate_limit", self.inner.hit_rate_limit(key, window, now)).await
    }
    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError> {
        self.bounded("rate_limit_count", self.inner.rate_limit_count(key, now)).await
    }
    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError> {
        self.bounded("reset_rate_limit", self.inner.reset_rate_limit(key)).await
    }
    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        self.bounded("undo_rate_limit_hit", self.inner.undo_rate_limit_hit(key, window_ends_at)).await
    }
    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        timed("sweep_expired", self.inner.sweep_expired(now)).await
    }
    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        timed("sweep_unused_clients", self.inner.sweep_unused_clients(registered_before)).await
    }
    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        timed("forget_sealed_successors", self.inner.forget_sealed_successors(rotated_before)).await
    }
    async fn put_mcp_session(&self, session: McpSessionRecord) -> Result<(), StoreError> {
        self.bounded("put_mcp_session", self.inner.put_mcp_session(session)).await
    }
    async fn mcp_session(&self, id_hash: &TokenHash) -> Result<Option<McpSessionRecord>, StoreError> {
        self.bounded("mcp_session", self.inner.mcp_session(id_hash)).await
    }
    async fn delete_mcp_session(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        self.bounded("delete_mcp_session", self.inner.delete_mcp_session(id_hash)).await
    }
    async fn sync_mcp_sessions(
        &self,
        used: &[TokenHash],
        held: &[TokenHash],
        now: SystemTime,
    ) -> Result<Vec<TokenHash>, StoreError> {
        timed("sync_mcp_sessions", self.inner.sync_mcp_sessions(used, held, now)).await
    }
    async fn sweep_idle_mcp_sessions(&self, idle_since: SystemTime) -> Result<usize, StoreError> {
        timed("sweep_idle_mcp_sessions", self.inner.sweep_idle_mcp_sessions(idle_since)).await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}
