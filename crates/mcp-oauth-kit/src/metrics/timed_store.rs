//! Store operation latency: a [`Store`] that times each call of the one it wraps, by the
//! method's name, when metrics are on.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::secret::TokenHash;
use crate::store::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, McpSessionRecord,
    PendingAuthorization, RateLimitWindow, RefreshRotation, RevokedToken, SessionRecord, Store, UpstreamTokenRecord,
};

/// Times every operation of the store it wraps. Without metrics on, one relaxed load a call.
pub(crate) struct TimedStore(pub(crate) Arc<dyn Store>);

async fn timed<T>(operation: &'static str, call: impl Future<Output = T>) -> T {
    if !super::enabled() {
        return call.await;
    }
    let started = Instant::now();
    let result = call.await;
    super::store_operation(operation, started.elapsed());
    result
}

#[async_trait]
impl Store for TimedStore {
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        timed("insert_client", self.0.insert_client(client)).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        timed("client", self.0.client(client_id)).await
    }
    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        timed("insert_pending", self.0.insert_pending(pending)).await
    }
    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError> {
        timed("pending", self.0.pending(id_hash, now)).await
    }
    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError> {
        timed("record_failed_login", self.0.record_failed_login(id_hash)).await
    }
    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        timed("take_pending", self.0.take_pending(id_hash, now, code)).await
    }
    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError> {
        timed("code", self.0.code(hash, now)).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError> {
        timed("redeem_code", self.0.redeem_code(hash, now, tokens)).await
    }
    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError> {
        timed("access_token", self.0.access_token(hash, now)).await
    }
    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError> {
        timed("refresh_grant", self.0.refresh_grant(hash, now)).await
    }
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError> {
        timed("rotate_refresh", self.0.rotate_refresh(old, now, new, sealed_successor)).await
    }
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        timed("revoke_grant", self.0.revoke_grant(grant_id)).await
    }
    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError> {
        timed("revoke_token", self.0.revoke_token(hash)).await
    }
    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError> {
        timed("revoke_subject", self.0.revoke_subject(subject)).await
    }
    async fn revoke_all(&self) -> Result<(), StoreError> {
        timed("revoke_all", self.0.revoke_all()).await
    }
    async fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> Result<(), StoreError> {
        timed("put_upstream_tokens", self.0.put_upstream_tokens(record)).await
    }
    async fn upstream_tokens(
        &self,
        grant_id: &str,
        now: SystemTime,
    ) -> Result<Option<UpstreamTokenRecord>, StoreError> {
        timed("upstream_tokens", self.0.upstream_tokens(grant_id, now)).await
    }
    async fn replace_upstream_tokens(&self, version: u64, new: UpstreamTokenRecord) -> Result<bool, StoreError> {
        timed("replace_upstream_tokens", self.0.replace_upstream_tokens(version, new)).await
    }
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StoreError> {
        timed("delete_upstream_tokens", self.0.delete_upstream_tokens(grant_id)).await
    }
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        timed("insert_session", self.0.insert_session(session)).await
    }
    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        timed("session", self.0.session(hash, now)).await
    }
    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        timed("delete_session", self.0.delete_session(hash)).await
    }
    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        timed("put_consent", self.0.put_consent(consent)).await
    }
    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        timed("consent", self.0.consent(subject, client_id, now)).await
    }
    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        timed("revoke_consent", self.0.revoke_consent(subject, client_id)).await
    }
    async fn hit_rate_limit(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<RateLimitWindow, StoreError> {
        timed("hit_rate_limit", self.0.hit_rate_limit(key, window, now)).await
    }
    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError> {
        timed("rate_limit_count", self.0.rate_limit_count(key, now)).await
    }
    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError> {
        timed("reset_rate_limit", self.0.reset_rate_limit(key)).await
    }
    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        timed("undo_rate_limit_hit", self.0.undo_rate_limit_hit(key, window_ends_at)).await
    }
    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        timed("sweep_expired", self.0.sweep_expired(now)).await
    }
    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        timed("sweep_unused_clients", self.0.sweep_unused_clients(registered_before)).await
    }
    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        timed("forget_sealed_successors", self.0.forget_sealed_successors(rotated_before)).await
    }
    async fn put_mcp_session(&self, session: McpSessionRecord) -> Result<(), StoreError> {
        timed("put_mcp_session", self.0.put_mcp_session(session)).await
    }
    async fn mcp_session(&self, id_hash: &TokenHash) -> Result<Option<McpSessionRecord>, StoreError> {
        timed("mcp_session", self.0.mcp_session(id_hash)).await
    }
    async fn delete_mcp_session(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        timed("delete_mcp_session", self.0.delete_mcp_session(id_hash)).await
    }
    async fn sync_mcp_sessions(
        &self,
        used: &[TokenHash],
        held: &[TokenHash],
        now: SystemTime,
    ) -> Result<Vec<TokenHash>, StoreError> {
        timed("sync_mcp_sessions", self.0.sync_mcp_sessions(used, held, now)).await
    }
    async fn sweep_idle_mcp_sessions(&self, idle_since: SystemTime) -> Result<usize, StoreError> {
        timed("sweep_idle_mcp_sessions", self.0.sweep_idle_mcp_sessions(idle_since)).await
    }
    async fn close(&self) {
        self.0.close().await;
    }
}
