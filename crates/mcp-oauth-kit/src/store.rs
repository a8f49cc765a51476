//! Storage of the authorization server's state: registered clients, pending authorizations,
//! codes and tokens, sign-in sessions, remembered consent and rate-limit counters, and of every
//! server's MCP sessions. The [`Store`] trait is what a backend implements; [`MemoryStore`] is
//! the in-memory one and [`SqlStore`] the SQLite and PostgreSQL one. Everything an instance decides on lives here, so
//! instances that share a store share their state: tokens, sessions, consent and throttles.
//!
//! Invariants every backend keeps:
//! - codes, tokens and session secrets are kept only as [`TokenHash`]es, never in clear;
//! - [`Store::redeem_code`], [`Store::rotate_refresh`] and [`Store::take_pending`] are atomic:
//!   of concurrent callers with the same code, refresh token or handle, exactly one wins;
//! - each grant step is one transaction: [`Store::take_pending`] stores the code it is given
//!   together with removing the pending authorization, [`Store::redeem_code`] and
//!   [`Store::rotate_refresh`] store the new tokens together with spending the old code or
//!   token. A crash or error never leaves a spent code or handle without what it was spent for,
//!   nor tokens of a grant that was revoked meanwhile;
//! - revoking a grant or a user ([`Store::revoke_grant`], [`Store::revoke_token`] of a refresh
//!   token, [`Store::revoke_subject`]) deletes its MCP sessions in the same transaction;
//! - [`Store::hit_rate_limit`] is atomic: of concurrent callers on one key, each sees a
//!   different count;
//! - a redeemed code stays (marked used) until it expires, so a replay is recognised and
//!   revokes what the code issued (OAuth 2.1 §4.1.3).
//!
//! Times are [`SystemTime`]s, passed in by the kit from its [`Clock`](crate::clock::Clock)
//! (`now` parameters): a store never reads the clock itself. A backend may keep them to the
//! millisecond, as [`SqlStore`] does.
//!
//! Reach for this module to keep the server's state across restarts or share it between
//! instances: [`open_store`] opens a [`SqlStore`] from a URL, and
//! [`McpServerBuilder::store`](crate::McpServerBuilder::store) takes it. Without one the
//! server keeps everything in a [`MemoryStore`].
//!
//! ```no_run
//! use mcp_oauth_kit::store::open_store;
//! use mcp_oauth_kit::{Config, McpServer, StaticUserStore};
//!
//! # async fn run(users: StaticUserStore) -> Result<(), mcp_oauth_kit::Error> {
//! let store = open_store("sqlite://oauth.db").await?;
//! McpServer::builder(Config::new("https://mcp.example.com")?).store(store).user_store(users).build()?.run().await
//! # }
//! ```
//!
//! To put the state in a backend of your own, implement [`Store`]; [`MemoryStore`]'s source is
//! the shortest model of every method and its invariants, and the records below are what it
//! keeps.

mod memory;
mod open;
mod records;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
pub(crate) mod timed;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use open::open_store;
pub use records::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, McpSessionRecord,
    PendingAuthorization, RateLimitWindow, RefreshRotation, RefreshTokenRecord, RevokedToken, SessionRecord,
    UpstreamTokenRecord,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlStore;

pub use crate::error::StoreError;
pub use crate::secret::TokenHash;

/// Persistence for the built-in authorization server, and the rate-limit counters of every
/// server.
///
/// Implement it over your database to share state between instances and keep it across
/// restarts. All methods take `&self`; implementations synchronise internally, and keep the
/// invariants listed in the module documentation (`tests/store_contract.rs` and
/// `tests/store_race.rs` in the repository check them for the built-in stores).
///
/// Implementing it is long (every method keeps an invariant); [`MemoryStore`]'s source
/// (`src/store/memory.rs`) is the model to start from. Using one needs no implementation:
/// the builder takes any `Store`, and an `Arc<dyn Store>` is one too, so code can choose
/// the backend at run time.
///
/// ```
/// use std::sync::Arc;
/// use std::time::SystemTime;
///
/// use mcp_oauth_kit::store::{MemoryStore, Store};
/// use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// // The store counts rate-limit hits per key and window.
/// let (window, now) = (std::time::Duration::from_secs(60), SystemTime::now());
/// store.hit_rate_limit("login:carol", window, now).await?;
/// assert_eq!(store.hit_rate_limit("login:carol", window, now).await?.count, 2);
/// assert!(store.client("unknown-client").await?.is_none());
///
/// let server = McpServer::builder(Config::new("http://127.0.0.1:8000")?)
///     .store(store.clone())
///     .user_store(StaticUserStore::new())
///     .tools(Tools::new())
///     .build()?;
/// # drop(server);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Save a client; a client with the same id is replaced (a refreshed metadata document).
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError>;
    /// Look a client up.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;

    /// Save a pending authorization.
    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError>;
    /// Look a pending authorization up (expired ones are `None`).
    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Count a wrong password against a pending authorization; returns the new count.
    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError>;
    /// Remove a pending authorization and return it: exactly one caller gets it (an expired
    /// one is removed and not returned). When it is returned and `code` is given, the code is
    /// stored in the same transaction: if storing it fails, the pending authorization stays.
    /// Storing a code also marks its client as used, which exempts the client from
    /// [`Store::sweep_unused_clients`].
    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// Look a code up, used or not (expired ones are `None`).
    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError>;
    /// Mark a code used, atomically, and store `tokens` in the same transaction when this call
    /// is the one that redeems it. If storing the tokens fails, the code stays unused and the
    /// error is returned. See [`CodeRedemption`].
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError>;

    /// Look an access token up (expired and revoked ones are `None`).
    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError>;
    /// The grant of a refresh token that has not expired or been revoked, whether or not it
    /// was rotated already.
    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError>;
    /// Retire the refresh token `old` and store `new` in one atomic step. `sealed_successor`
    /// is kept with the old token for the grace window. See [`RefreshRotation`].
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError>;

    /// Revoke a grant: every code and token issued from it, its upstream tokens and the MCP
    /// sessions it opened.
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError>;
    /// Revoke one token (RFC 7009): an access token alone, a refresh token with its grant.
    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError>;
    /// Revoke everything of the user `subject`: every grant (its codes and tokens), sign-in
    /// session, MCP session and remembered consent, in one transaction. Revoking an unknown subject is no
    /// error. A rotation racing it must not leave a live token pair behind.
    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError>;
    /// Revoke everything of every user: every grant (its codes, tokens and upstream tokens), sign-in session,
    /// MCP session and remembered consent, in one transaction, as after a suspected leak. Clients stay
    /// registered, pending sign-ins and rate-limit counters stay. As with
    /// [`Store::revoke_subject`], a rotation racing it must not leave a live token pair behind.
    async fn revoke_all(&self) -> Result<(), StoreError>;

    /// Keep a grant's sealed upstream tokens, replacing any it had. The grant's tokens go with
    /// it: [`Store::revoke_grant`], [`Store::revoke_token`] of its refresh token and
    /// [`Store::revoke_subject`] delete them in the same transaction, and
    /// [`Store::sweep_expired`] deletes them once the grant has ended or has neither a code nor
    /// a refresh token left.
    async fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> Result<(), StoreError>;
    /// A grant's sealed upstream tokens (`None` when it has none, or it ended before `now`).
    async fn upstream_tokens(&self, grant_id: &str, now: SystemTime)
    -> Result<Option<UpstreamTokenRecord>, StoreError>;
    /// Replace a grant's upstream tokens with `new` if the stored ones are still at `version`,
    /// atomically; returns whether it replaced them. Of concurrent callers shown the same
    /// version, exactly one succeeds, so that two refreshes do not both spend a refresh token.
    /// Nothing is stored when the grant has no upstream tokens (it was revoked meanwhile).
    async fn replace_upstream_tokens(&self, version: u64, new: UpstreamTokenRecord) -> Result<bool, StoreError>;
    /// Forget a grant's upstream tokens. Forgetting unknown ones is no error.
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StoreError>;

    /// Save a new sign-in session.
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError>;
    /// Look a session up by the hash of its secret (expired ones are `None`).
    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError>;
    /// End a session (sign-out). Ending an unknown session is no error.
    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError>;

    /// Save an MCP session, replacing one with the same id hash.
    async fn put_mcp_session(&self, session: McpSessionRecord) -> Result<(), StoreError>;
    /// Look an MCP session up.
    async fn mcp_session(&self, id_hash: &TokenHash) -> Result<Option<McpSessionRecord>, StoreError>;
    /// End an MCP session (the client's `DELETE`). Ending an unknown one is no error.
    async fn delete_mcp_session(&self, id_hash: &TokenHash) -> Result<(), StoreError>;
    /// Record that the `used` MCP sessions were used at `now` (a time never goes back; unknown
    /// sessions are skipped), and return those of `held` that are not stored. An instance
    /// passes every session it holds in memory as `held` and ends the ones returned: they were
    /// ended on another instance, revoked with their grant or user, or swept as idle. One call
    /// per sweep does both, so that an instance learns of them without a read per request.
    async fn sync_mcp_sessions(
        &self,
        used: &[TokenHash],
        held: &[TokenHash],
        now: SystemTime,
    ) -> Result<Vec<TokenHash>, StoreError>;
    /// Delete the MCP sessions last used at or before `idle_since`; returns how many went.
    async fn sweep_idle_mcp_sessions(&self, idle_since: SystemTime) -> Result<usize, StoreError>;

    /// Remember a user's consent to a client, replacing what was remembered for that pair.
    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError>;
    /// The consent `subject` gave `client_id`, unless it expired.
    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError>;
    /// Forget the consent `subject` gave `client_id`. Forgetting an unknown one is no error.
    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError>;

    /// Count one event for `key`, atomically, and return the key's window with this event in
    /// it. A key's window starts at its first event and lasts `window`; an event at or after
    /// its end starts a new window with a count of 1. Of concurrent callers on one key, each
    /// sees a different count. Keys are at most 200 bytes (the kit passes a policy prefix and
    /// a SHA-256 hex digest).
    async fn hit_rate_limit(&self, key: &str, window: Duration, now: SystemTime)
    -> Result<RateLimitWindow, StoreError>;
    /// The key's current window, without counting (a count of 0 when it has none).
    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError>;
    /// Forget the key's window (a successful sign-in clears its username's failures).
    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError>;
    /// Take back one event that [`Store::hit_rate_limit`] counted in the key's window ending at
    /// `window_ends_at` (a sign-in attempt, counted before its password was checked, that
    /// turned out right). Nothing happens when that window is over or holds no events. A
    /// store that cannot take an event back may return `Ok(())`: the event stays counted,
    /// which only makes the limit stricter.
    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError>;

    /// Delete what expired before `now` (pending sign-ins, codes, tokens, sessions, consent,
    /// finished rate-limit windows); returns how many entries went.
    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError>;

    /// Delete the clients registered before `registered_before` that were never used (no code
    /// was ever stored for them by [`Store::take_pending`]) and have no pending authorization;
    /// returns how many went. Anyone may register a client, so registrations that nothing
    /// used would otherwise be kept for good.
    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError>;

    /// Drop the sealed successor pairs of refresh tokens rotated at or before
    /// `rotated_before`, which the sweeper sets to one grace window ago; returns how many were
    /// dropped. A retry after the grace window cannot use them, and a sealed pair opens with
    /// the old refresh token: kept until the old record expires (30 days by default), it
    /// would hand a live pair to whoever later held both that old token and a copy of the
    /// database. A retry then finds no sealed successor, as after its successor was rotated.
    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError>;

    /// Release what the store holds, once the server has stopped and its connections have
    /// drained: later calls may fail. [`SqlStore`] folds SQLite's write-ahead log back into
    /// the database file and closes its pool, so that the file alone is a complete copy. A
    /// failure is logged, not returned: the process is on its way out. No default: a wrapper
    /// around another store must forward it, and a store with nothing to release says so
    /// ([`MemoryStore`]'s does nothing).
    async fn close(&self);
}

#[async_trait]
impl<T: Store + ?Sized> Store for Arc<T> {
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        (**self).insert_client(client).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        (**self).client(client_id).await
    }
    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        (**self).insert_pending(pending).await
    }
    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError> {
        (**self).pending(id_hash, now).await
    }
    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError> {
        (**self).record_failed_login(id_hash).await
    }
    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        (**self).take_pending(id_hash, now, code).await
    }
    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError> {
        (**self).code(hash, now).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError> {
        (**self).redeem_code(hash, now, tokens).await
    }
    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError> {
        (**self).access_token(hash, now).await
    }
    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError> {
        (**self).refresh_grant(hash, now).await
    }
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError> {
        (**self).rotate_refresh(old, now, new, sealed_successor).await
    }
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        (**self).revoke_grant(grant_id).await
    }
    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError> {
        (**self).revoke_token(hash).await
    }
    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError> {
        (**self).revoke_subject(subject).await
    }
    async fn revoke_all(&self) -> Result<(), StoreError> {
        (**self).revoke_all().await
    }
    async fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> Result<(), StoreError> {
        (**self).put_upstream_tokens(record).await
    }
    async fn upstream_tokens(
        &self,
        grant_id: &str,
        now: SystemTime,
    ) -> Result<Option<UpstreamTokenRecord>, StoreError> {
        (**self).upstream_tokens(grant_id, now).await
    }
    async fn replace_upstream_tokens(&self, version: u64, new: UpstreamTokenRecord) -> Result<bool, StoreError> {
        (**self).replace_upstream_tokens(version, new).await
    }
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StoreError> {
        (**self).delete_upstream_tokens(grant_id).await
    }
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        (**self).insert_session(session).await
    }
    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        (**self).session(hash, now).await
    }
    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        (**self).delete_session(hash).await
    }
    async fn put_mcp_session(&self, session: McpSessionRecord) -> Result<(), StoreError> {
        (**self).put_mcp_session(session).await
    }
    async fn mcp_session(&self, id_hash: &TokenHash) -> Result<Option<McpSessionRecord>, StoreError> {
        (**self).mcp_session(id_hash).await
    }
    async fn delete_mcp_session(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        (**self).delete_mcp_session(id_hash).await
    }
    async fn sync_mcp_sessions(
        &self,
        used: &[TokenHash],
        held: &[TokenHash],
        now: SystemTime,
    ) -> Result<Vec<TokenHash>, StoreError> {
        (**self).sync_mcp_sessions(used, held, now).await
    }
    async fn sweep_idle_mcp_sessions(&self, idle_since: SystemTime) -> Result<usize, StoreError> {
        (**self).sweep_idle_mcp_sessions(idle_since).await
    }
    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        (**self).put_consent(consent).await
    }
    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        (**self).consent(subject, client_id, now).await
    }
    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        (**self).revoke_consent(subject, client_id).await
    }
    async fn hit_rate_limit(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<RateLimitWindow, StoreError> {
        (**self).hit_rate_limit(key, window, now).await
    }
    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError> {
        (**self).rate_limit_count(key, now).await
    }
    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError> {
        (**self).reset_rate_limit(key).await
    }
    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        (**self).undo_rate_limit_hit(key, window_ends_at).await
    }
    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        (**self).sweep_expired(now).await
    }
    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        (**self).sweep_unused_clients(registered_before).await
    }
    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        (**self).forget_sealed_successors(rotated_before).await
    }
    async fn close(&self) {
        (**self).close().await
    }
}
