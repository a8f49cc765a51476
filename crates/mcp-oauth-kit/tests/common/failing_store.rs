//! A [`Store`] that delegates to a [`MemoryStore`] and can be switched to fail every call, as a
//! database that went away would, to never answer, as one stuck would, or to fail only the
//! rate-limit counters' calls (to see the limiter's
//! own answer): for the tests of what each endpoint answers then, and that everything works
//! again once it is back. It counts the MCP session reads, for the tests of what a client can
//! make the server read.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use mcp_oauth_kit::async_trait;
use mcp_oauth_kit::store::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, McpSessionRecord,
    MemoryStore, PendingAuthorization, RateLimitWindow, RefreshRotation, RevokedToken, SessionRecord, Store,
    StoreError, TokenHash, UpstreamTokenRecord,
};

/// Which calls fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failing {
    /// None: the store works.
    Nothing,
    /// Every call.
    Everything,
    /// The rate-limit counters' calls only.
    RateLimits,
    /// Every call, by never answering: a query stuck on a lock, or a database that stopped
    /// answering without closing the connection.
    Hanging,
}

/// A memory store with an off switch.
#[derive(Debug, Default)]
pub(crate) struct FailingStore {
    inner: MemoryStore,
    everything: AtomicBool,
    rate_limits: AtomicBool,
    hanging: AtomicBool,
    mcp_session_reads: AtomicUsize,
}

impl FailingStore {
    /// From now on, fail the calls `failing` names and serve the others.
    pub(crate) fn set_failing(&self, failing: Failing) {
        self.everything.store(failing == Failing::Everything, Ordering::SeqCst);
        self.rate_limits.store(failing == Failing::RateLimits, Ordering::SeqCst);
        self.hanging.store(failing == Failing::Hanging, Ordering::SeqCst);
    }

    /// How many times [`Store::mcp_session`] was called.
    pub(crate) fn mcp_session_reads(&self) -> usize {
        self.mcp_session_reads.load(Ordering::SeqCst)
    }

    async fn up(&self) -> Result<(), StoreError> {
        if self.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.everything.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("injected failure: the store is down".into()));
        }
        Ok(())
    }

    async fn counters_up(&self) -> Result<(), StoreError> {
        if self.rate_limits.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("injected failure: the rate-limit counters are down".into()));
        }
        self.up().await
    }
}

#[async_trait]
impl Store for FailingStore {
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.insert_client(client).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.up().await?;
        self.inner.client(client_id).await
    }
    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.insert_pending(pending).await
    }
    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError> {
        self.up().await?;
        self.inner.pending(id_hash, now).await
    }
    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError> {
        self.up().await?;
        self.inner.record_failed_login(id_hash).await
    }
    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.up().await?;
        self.inner.take_pending(id_hash, now, code).await
    }
    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError> {
        self.up().await?;
        self.inner.code(hash, now).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError> {
        self.up().await?;
        self.inner.redeem_code(hash, now, tokens).await
    }
    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError> {
        self.up().await?;
        self.inner.access_token(hash, now).await
    }
    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError> {
        self.up().await?;
        self.inner.refresh_grant(hash, now).await
    }
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError> {
        self.up().await?;
        self.inner.rotate_refresh(old, now, new, sealed_successor).await
    }
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.revoke_grant(grant_id).await
    }
    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.revoke_subject(subject).await
    }
    async fn revoke_all(&self) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.revoke_all().await
    }
    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError> {
        self.up().await?;
        self.inner.revoke_token(hash).await
    }
    async fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.put_upstream_tokens(record).await
    }
    async fn upstream_tokens(
        &self,
        grant_id: &str,
        now: SystemTime,
    ) -> Result<Option<UpstreamTokenRecord>, StoreError> {
        self.up().await?;
        self.inner.upstream_tokens(grant_id, now).await
    }
    async fn replace_upstream_tokens(&self, version: u64, new: UpstreamTokenRecord) -> Result<bool, StoreError> {
        self.up().await?;
        self.inner.replace_upstream_tokens(version, new).await
    }
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.delete_upstream_tokens(grant_id).await
    }
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.insert_session(session).await
    }
    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        self.up().await?;
        self.inner.session(hash, now).await
    }
    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.delete_session(hash).await
    }
    async fn put_mcp_session(&self, session: McpSessionRecord) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.put_mcp_session(session).await
    }
    async fn mcp_session(&self, id_hash: &TokenHash) -> Result<Option<McpSessionRecord>, StoreError> {
        self.mcp_session_reads.fetch_add(1, Ordering::SeqCst);
        self.up().await?;
        self.inner.mcp_session(id_hash).await
    }
    async fn delete_mcp_session(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.delete_mcp_session(id_hash).await
    }
    async fn sync_mcp_sessions(
        &self,
        used: &[TokenHash],
        held: &[TokenHash],
        now: SystemTime,
    ) -> Result<Vec<TokenHash>, StoreError> {
        self.up().await?;
        self.inner.sync_mcp_sessions(used, held, now).await
    }
    async fn sweep_idle_mcp_sessions(&self, idle_since: SystemTime) -> Result<usize, StoreError> {
        self.up().await?;
        self.inner.sweep_idle_mcp_sessions(idle_since).await
    }
    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.put_consent(consent).await
    }
    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        self.up().await?;
        self.inner.consent(subject, client_id, now).await
    }
    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        self.up().await?;
        self.inner.revoke_consent(subject, client_id).await
    }
    async fn hit_rate_limit(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<RateLimitWindow, StoreError> {
        self.counters_up().await?;
        self.inner.hit_rate_limit(key, window, now).await
    }
    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError> {
        self.counters_up().await?;
        self.inner.rate_limit_count(key, now).await
    }
    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError> {
        self.counters_up().await?;
        self.inner.reset_rate_limit(key).await
    }
    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        self.counters_up().await?;
        self.inner.undo_rate_limit_hit(key, window_ends_at).await
    }
    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        self.up().await?;
        self.inner.sweep_expired(now).await
    }
    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        self.up().await?;
        self.inner.sweep_unused_clients(registered_before).await
    }
    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        self.up().await?;
        self.inner.forget_sealed_successors(rotated_before).await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}
