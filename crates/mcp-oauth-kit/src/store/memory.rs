//! [`MemoryStore`]: the [`Store`] in process memory, for tests and ephemeral demos. Everything
//! is lost on restart, and nothing is shared with other processes (sessions, consent and
//! throttles included).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, McpSessionRecord,
    PendingAuthorization, RateLimitWindow, RefreshRotation, RefreshTokenRecord, RevokedToken, SessionRecord, Store,
    UpstreamTokenRecord,
};
use crate::error::StoreError;
use crate::secret::TokenHash;

/// A [`Store`] in memory. One `std::sync::Mutex` guards all maps: every operation is a few
/// hash-map steps with no `.await` inside, so a blocking lock is cheaper than an async one and
/// makes each operation trivially atomic. Its `Debug` shows no records.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The records are the authorization server's state (CSRF tokens of pending sign-ins
        // among them): not for a log line.
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<String, ClientRecord>,
    /// Clients a code was ever issued to: [`Store::sweep_unused_clients`] keeps them.
    used_clients: HashSet<String>,
    pending: HashMap<TokenHash, PendingAuthorization>,
    codes: HashMap<TokenHash, (CodeRecord, bool)>,
    access: HashMap<TokenHash, AccessTokenRecord>,
    refresh: HashMap<TokenHash, RefreshEntry>,
    sessions: HashMap<TokenHash, SessionRecord>,
    mcp_sessions: HashMap<TokenHash, McpSessionRecord>,
    /// Keyed by (subject, client id).
    consents: HashMap<(String, String), ConsentRecord>,
    rate_limits: HashMap<String, RateLimitWindow>,
    /// Keyed by grant id.
    upstream: HashMap<String, UpstreamTokenRecord>,
}

/// The most rate-limit keys held at once. Beyond it, finished windows go first and then, if
/// the map is still full, all of them: an attacker rotating addresses or usernames cannot grow
/// memory without bound (at the price of resetting the counters, in this one process).
const MAX_RATE_LIMIT_KEYS: usize = 100_000;

#[derive(Debug)]
struct RefreshEntry {
    record: RefreshTokenRecord,
    rotated: Option<Rotated>,
}

#[derive(Debug)]
struct Rotated {
    at: SystemTime,
    successor: TokenHash,
    /// `None` once [`Store::forget_sealed_successors`] dropped it.
    sealed: Option<Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the whole server, so recover the guard instead of
        // poisoning every later request.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Store a new token pair, or change nothing if either hash is taken.
    fn insert_tokens(&mut self, tokens: IssuedTokens) -> Result<(), StoreError> {
        if self.access.contains_key(&tokens.access.hash) || self.refresh.contains_key(&tokens.refresh.hash) {
            return Err(duplicate("token"));
        }
        self.access.insert(tokens.access.hash, tokens.access);
        self.refresh.insert(tokens.refresh.hash, RefreshEntry { record: tokens.refresh, rotated: None });
        Ok(())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.lock().clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.lock().clients.get(client_id).cloned())
    }

    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        self.lock().pending.insert(pending.id_hash, pending);
        Ok(())
    }

    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError> {
        Ok(self.lock().pending.get(id_hash).filter(|p| p.expires_at > now).cloned())
    }

    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError> {
        let mut g = self.lock();
        Ok(match g.pending.get_mut(id_hash) {
            Some(p) => {
                p.failed_logins += 1;
                p.failed_logins
            }
            None => u32::MAX,
        })
    }

    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut g = self.lock();
        if let Some(code) = &code {
            // Refuse before changing anything, as a database's unique key would.
            if g.codes.contains_key(&code.hash) {
                return Err(duplicate("code"));
            }
        }
        let taken = g.pending.remove(id_hash).filter(|p| p.expires_at > now);
        if let (Some(_), Some(code)) = (&taken, code) {
            if !g.used_clients.contains(&code.grant.client_id) {
                g.used_clients.insert(code.grant.client_id.clone());
            }
            g.codes.insert(code.hash, (code, false));
        }
        Ok(taken)
    }

    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError> {
        Ok(self.lock().codes.get(hash).map(|(code, _)| code).filter(|c| c.expires_at > now).cloned())
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError> {
        let mut g = self.lock();
        let record = match g.codes.get(hash) {
            Some((code, _)) if code.expires_at <= now => return Ok(CodeRedemption::Unknown),
            Some((code, true)) => return Ok(CodeRedemption::Replayed(code.clone())),
            Some((code, false)) => code.clone(),
            None => return Ok(CodeRedemption::Unknown),
        };
        if let Some(tokens) = tokens {
            g.insert_tokens(tokens)?;
        }
        if let Some((_, used)) = g.codes.get_mut(hash) {
            *used = true;
        }
        Ok(CodeRedemption::Redeemed(record))
    }

    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError> {
        Ok(self.lock().access.get(hash).filter(|t| t.expires_at > now).cloned())
    }

    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError> {
        Ok(self.lock().refresh.get(hash).filter(|e| e.record.expires_at > now).map(|e| e.record.grant.clone()))
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError> {
        let mut g = self.lock();
        let outcome = match g.refresh.get(old) {
            None => return Ok(RefreshRotation::Unknown),
            Some(e) if e.record.expires_at <= now => return Ok(RefreshRotation::Unknown),
            Some(e) => match &e.rotated {
                Some(r) => {
                    let successor_current =
                        g.refresh.get(&r.successor).is_some_and(|s| s.rotated.is_none() && s.record.expires_at > now);
                    RefreshRotation::AlreadyRotated {
                        grant: e.record.grant.clone(),
                        rotated_at: r.at,
                        sealed_successor: r.sealed.clone().filter(|_| successor_current),
                    }
                }
                None => RefreshRotation::Rotated(e.record.clone()),
            },
        };
        if matches!(outcome, RefreshRotation::Rotated(_)) {
            let successor = new.refresh.hash;
            g.insert_tokens(new)?;
            if let Some(e) = g.refresh.get_mut(old) {
                e.rotated = Some(Rotated { at: now, successor, sealed: Some(sealed_successor) });
            }
        }
        Ok(outcome)
    }

    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.codes.retain(|_, (c, _)| c.grant.grant_id != grant_id);
        g.access.retain(|_, t| t.grant.grant_id != grant_id);
        g.refresh.retain(|_, t| t.record.grant.grant_id != grant_id);
        g.upstream.remove(grant_id);
        g.mcp_sessions.retain(|_, s| s.grant_id.as_deref() != Some(grant_id));
        Ok(())
    }

    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError> {
        let grant_id = {
            let mut g = self.lock();
            if g.access.remove(hash).is_some() {
                return Ok(RevokedToken::Access);
            }
            match g.refresh.get(hash) {
                Some(e) => e.record.grant.grant_id.clone(),
                None => return Ok(RevokedToken::Unknown),
            }
        };
        self.revoke_grant(&grant_id).await?;
        Ok(RevokedToken::Refresh)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.codes.retain(|_, (c, _)| c.grant.subject != subject);
        g.access.retain(|_, t| t.grant.subject != subject);
        g.refresh.retain(|_, t| t.record.grant.subject != subject);
        g.upstream.retain(|_, u| u.subject != subject);
        g.sessions.retain(|_, s| s.subject != subject);
        g.mcp_sessions.retain(|_, s| s.subject != subject);
        g.consents.retain(|(s, _), _| s != subject);
        Ok(())
    }

    async fn revoke_all(&self) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.codes.clear();
        g.access.clear();
        g.refresh.clear();
        g.sessions.clear();
        g.consents.clear();
        g.upstream.clear();
        g.mcp_sessions.clear();
        Ok(())
    }

    async fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> Result<(), StoreError> {
        self.lock().upstream.insert(record.grant_id.clone(), record);
        Ok(())
    }

    async fn upstream_tokens(
        &self,
        grant_id: &str,
        now: SystemTime,
    ) -> Result<Option<UpstreamTokenRecord>, StoreError> {
        Ok(self.lock().upstream.get(grant_id).filter(|u| u.expires_at > now).cloned())
    }

    async fn replace_upstream_tokens(&self, version: u64, new: UpstreamTokenRecord) -> Result<bool, StoreError> {
        let mut g = self.lock();
        match g.upstream.get_mut(&new.grant_id) {
            Some(current) if current.version == version => {
                *current = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StoreError> {
        self.lock().upstream.remove(grant_id);
        Ok(())
    }

    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.lock().sessions.insert(session.hash, session);
        Ok(())
    }

    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock().sessions.get(hash).filter(|s| s.expires_at > now).cloned())
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.lock().sessions.remove(hash);
        Ok(())
    }

    async fn put_mcp_session(&self, session: McpSessionRecord) -> Result<(), StoreError> {
        self.lock().mcp_sessions.insert(session.id_hash, session);
        Ok(())
    }

    async fn mcp_session(&self, id_hash: &TokenHash) -> Result<Option<McpSessionRecord>, StoreError> {
        Ok(self.lock().mcp_sessions.get(id_hash).cloned())
    }

    async fn delete_mcp_session(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        self.lock().mcp_sessions.remove(id_hash);
        Ok(())
    }

    async fn sync_mcp_sessions(
        &self,
        used: &[TokenHash],
        held: &[TokenHash],
        now: SystemTime,
    ) -> Result<Vec<TokenHash>, StoreError> {
        let mut g = self.lock();
        for hash in used {
            if let Some(s) = g.mcp_sessions.get_mut(hash) {
                s.last_used_at = s.last_used_at.max(now);
            }
        }
        Ok(held.iter().filter(|h| !g.mcp_sessions.contains_key(h)).copied().collect())
    }

    async fn sweep_idle_mcp_sessions(&self, idle_since: SystemTime) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let before = g.mcp_sessions.len();
        g.mcp_sessions.retain(|_, s| s.last_used_at > idle_since);
        Ok(before - g.mcp_sessions.len())
    }

    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        let key = (consent.subject.clone(), consent.client_id.clone());
        self.lock().consents.insert(key, consent);
        Ok(())
    }

    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let key = (subject.to_owned(), client_id.to_owned());
        Ok(self.lock().consents.get(&key).filter(|c| c.expires_at > now).cloned())
    }

    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        self.lock().consents.remove(&(subject.to_owned(), client_id.to_owned()));
        Ok(())
    }

    async fn hit_rate_limit(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<RateLimitWindow, StoreError> {
        let mut g = self.lock();
        if g.rate_limits.len() >= MAX_RATE_LIMIT_KEYS && !g.rate_limits.contains_key(key) {
            g.rate_limits.retain(|_, w| w.ends_at > now);
            if g.rate_limits.len() >= MAX_RATE_LIMIT_KEYS {
                g.rate_limits.clear();
            }
        }
        let fresh = RateLimitWindow { count: 0, ends_at: crate::clock::later(now, window) };
        let entry = g.rate_limits.entry(key.to_owned()).or_insert(fresh);
        if entry.ends_at <= now {
            *entry = fresh;
        }
        entry.count = entry.count.saturating_add(1);
        Ok(*entry)
    }

    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError> {
        let current = self.lock().rate_limits.get(key).filter(|w| w.ends_at > now).copied();
        Ok(current.unwrap_or(RateLimitWindow { count: 0, ends_at: now }))
    }

    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError> {
        self.lock().rate_limits.remove(key);
        Ok(())
    }

    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        if let Some(w) = self.lock().rate_limits.get_mut(key).filter(|w| w.ends_at == window_ends_at) {
            w.count = w.count.saturating_sub(1);
        }
        Ok(())
    }

    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let before = g.len();
        g.pending.retain(|_, p| p.expires_at > now);
        g.codes.retain(|_, (c, _)| c.expires_at > now);
        g.access.retain(|_, t| t.expires_at > now);
        g.refresh.retain(|_, t| t.record.expires_at > now);
        g.sessions.retain(|_, s| s.expires_at > now);
        g.consents.retain(|_, c| c.expires_at > now);
        g.rate_limits.retain(|_, w| w.ends_at > now);
        let Inner { codes, refresh, upstream, .. } = &mut *g;
        let live: HashSet<&str> = codes
            .values()
            .map(|(c, _)| c.grant.grant_id.as_str())
            .chain(refresh.values().map(|e| e.record.grant.grant_id.as_str()))
            .collect();
        upstream.retain(|grant_id, u| u.expires_at > now && live.contains(grant_id.as_str()));
        Ok(before - g.len())
    }

    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let mut dropped = 0;
        for rotated in g.refresh.values_mut().filter_map(|e| e.rotated.as_mut()) {
            if rotated.at <= rotated_before && rotated.sealed.take().is_some() {
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let Inner { clients, used_clients, pending, .. } = &mut *g;
        let in_progress: HashSet<&str> = pending.values().map(|p| p.client_id.as_str()).collect();
        let before = clients.len();
        clients.retain(|id, c| {
            c.issued_at >= registered_before || used_clients.contains(id) || in_progress.contains(id.as_str())
        });
        Ok(before - clients.len())
    }

    /// Nothing to release: the state lives and dies with the process.
    async fn close(&self) {}
}

impl Inner {
    /// Entries of every kind but clients (which do not expire).
    fn len(&self) -> usize {
        self.pending.len()
            + self.codes.len()
            + self.access.len()
            + self.refresh.len()
            + self.sessions.len()
            + self.consents.len()
            + self.rate_limits.len()
            + self.upstream.len()
    }
}

/// The error a database gives for a second row with the same key: secrets are random 256-bit
/// values, so in practice only a broken caller or a test gets it.
fn duplicate(what: &str) -> StoreError {
    StoreError::Backend(format!("a {what} with this hash is already stored").into())
}
