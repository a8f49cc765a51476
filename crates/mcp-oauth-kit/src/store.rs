//! Storage of the authorization server's state: registered clients, pending authorizations,
//! codes and tokens, sign-in sessions, remembered consent and rate-limit counters. The
//! [`Store`] trait is what a backend implements; [`MemoryStore`] is the in-memory one and
//! [`SqlStore`] the SQLite and PostgreSQL one. Everything an instance decides on lives here, so
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
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use open::open_store;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlStore;

use crate::claims::Claims;
pub use crate::error::StoreError;
pub use crate::secret::TokenHash;

/// A client registered through RFC 7591 dynamic registration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientRecord {
    /// The client identifier we issued.
    pub client_id: String,
    /// SHA-256 of the client secret, for confidential clients.
    pub secret_hash: Option<TokenHash>,
    /// `token_endpoint_auth_method`: `none`, `client_secret_post` or `client_secret_basic`.
    pub auth_method: String,
    /// The human-readable name shown on the consent screen.
    pub client_name: Option<String>,
    /// The exact redirect URIs the client registered.
    pub redirect_uris: Vec<String>,
    /// `grant_types` the client may use.
    pub grant_types: Vec<String>,
    /// The scope the client registered for, if it named one.
    pub scope: Option<String>,
    /// When it registered.
    pub issued_at: SystemTime,
}

/// What a signed-in user granted a client: shared by the code and every token issued from it.
/// Revoking the grant revokes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// Random identifier of this grant (the "token family").
    pub grant_id: String,
    /// The user's stable id.
    pub subject: String,
    /// The user's name at sign-in time.
    pub username: String,
    /// The client the grant was made to.
    pub client_id: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The resource (RFC 8707) the tokens are for: their audience.
    pub resource: String,
    /// When the grant ends, however often its refresh token rotates: the user's sign-in plus
    /// [`Config::grant_lifetime`](crate::Config::grant_lifetime). No token of it outlives this.
    pub expires_at: SystemTime,
    /// The user's extra claims ([`User::claims`](crate::User::claims)) at sign-in, renewed at
    /// each refresh; every access token of the grant carries them.
    pub claims: Claims,
}

/// An authorization request waiting for the user to sign in. Its `Debug` redacts the CSRF
/// token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// SHA-256 of the request handle carried in the login page's URL.
    pub id_hash: TokenHash,
    /// The client that asked.
    pub client_id: String,
    /// The validated redirect URI to send the code to.
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (rather than relying on the client's only
    /// registered one): the token request must then repeat it (RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    /// The client's `state`, returned unchanged.
    pub state: Option<String>,
    /// The PKCE S256 code challenge.
    pub code_challenge: String,
    /// The scopes asked for (already validated).
    pub scopes: Vec<String>,
    /// The resource asked for (already validated).
    pub resource: String,
    /// CSRF token for the login form (short-lived; compared in constant time).
    pub csrf_token: String,
    /// Wrong passwords so far.
    pub failed_logins: u32,
    /// When the user's time to sign in runs out.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field has to be placed here (and redacted if secret).
        let Self {
            id_hash,
            client_id,
            redirect_uri,
            redirect_uri_given,
            state,
            code_challenge,
            scopes,
            resource,
            csrf_token: _,
            failed_logins,
            expires_at,
        } = self;
        f.debug_struct("PendingAuthorization")
            .field("id_hash", id_hash)
            .field("client_id", client_id)
            .field("redirect_uri", redirect_uri)
            .field("redirect_uri_given", redirect_uri_given)
            .field("state", state)
            .field("code_challenge", code_challenge)
            .field("scopes", scopes)
            .field("resource", resource)
            .field("csrf_token", &crate::secret::Redacted)
            .field("failed_logins", failed_logins)
            .field("expires_at", expires_at)
            .finish()
    }
}

/// An authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub hash: TokenHash,
    /// What the code grants.
    pub grant: Grant,
    /// The redirect URI the code was sent to; a token request that names one must name this.
    pub redirect_uri: String,
    /// Whether the authorization request named `redirect_uri`: the token request must then
    /// repeat it (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).
    pub redirect_uri_given: bool,
    /// The PKCE S256 challenge the verifier must match.
    pub code_challenge: String,
    /// When the code expires.
    pub expires_at: SystemTime,
}

/// An access token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessTokenRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it grants.
    pub grant: Grant,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// A refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it grants.
    pub grant: Grant,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// A new token pair, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedTokens {
    /// The access token.
    pub access: AccessTokenRecord,
    /// The refresh token.
    pub refresh: RefreshTokenRecord,
}

/// A browser's sign-in session at the authorization server: the user signed in with a
/// password on this browser, which holds the session secret in a cookie. While it lasts, the
/// login page asks that user only for consent (or, with remembered consent, nothing at all).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// SHA-256 of the session secret (the cookie's value).
    pub hash: TokenHash,
    /// The user's stable id.
    pub subject: String,
    /// The user's name at sign-in time.
    pub username: String,
    /// When the user signed in.
    pub created_at: SystemTime,
    /// When the session ends, whatever happens in between.
    pub expires_at: SystemTime,
}

/// A user's remembered consent to a client: authorization requests of that client for these
/// scopes (or fewer) may be approved without asking again, while the user has a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsentRecord {
    /// The user's stable id.
    pub subject: String,
    /// The client the user approved.
    pub client_id: String,
    /// The scopes approved, sorted.
    pub scopes: Vec<String>,
    /// When the user (last) approved.
    pub granted_at: SystemTime,
    /// When the consent is forgotten.
    pub expires_at: SystemTime,
}

/// One key's rate-limit window, as [`Store::hit_rate_limit`] and [`Store::rate_limit_count`]
/// report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitWindow {
    /// Events counted in the window so far (0 when the key has no current window).
    pub count: u32,
    /// When the window ends and counting starts over (`now` when there is no window).
    pub ends_at: SystemTime,
}

/// The outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeRedemption {
    /// First use: here is the code, now marked used, and the tokens given are stored.
    Redeemed(CodeRecord),
    /// The code was used before: a replay; the tokens given are not stored. The caller decides
    /// whether to revoke the grant.
    Replayed(CodeRecord),
    /// No such code (or it expired).
    Unknown,
}

/// The outcome of rotating a refresh token. Its `Debug` redacts the sealed successor (the
/// holder of the old refresh token could open it).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshRotation {
    /// The token was current; it is now retired and the new pair is stored.
    Rotated(RefreshTokenRecord),
    /// The token was already rotated `rotated_at`; `sealed_successor` is what the rotation
    /// stored for a retry in the grace window, if its successor is still current.
    AlreadyRotated {
        /// The grant of the token.
        grant: Grant,
        /// When it was rotated.
        rotated_at: SystemTime,
        /// The successor pair, sealed with a key derived from the old token.
        sealed_successor: Option<Vec<u8>>,
    },
    /// No such token (or it expired or was revoked).
    Unknown,
}

impl std::fmt::Debug for RefreshRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rotated(record) => f.debug_tuple("Rotated").field(record).finish(),
            Self::AlreadyRotated { grant, rotated_at, sealed_successor } => f
                .debug_struct("AlreadyRotated")
                .field("grant", grant)
                .field("rotated_at", rotated_at)
                .field("sealed_successor", &sealed_successor.as_ref().map(|_| crate::secret::Redacted))
                .finish(),
            Self::Unknown => f.write_str("Unknown"),
        }
    }
}

/// What a token hash refers to, for revocation (RFC 7009).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokedToken {
    /// An access token was revoked.
    Access,
    /// A refresh token was revoked, and with it its whole grant.
    Refresh,
    /// Nothing matched (RFC 7009 still answers 200).
    Unknown,
}

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

    /// Revoke a grant: every code and token issued from it.
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError>;
    /// Revoke one token (RFC 7009): an access token alone, a refresh token with its grant.
    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError>;
    /// Revoke everything of the user `subject`: every grant (its codes and tokens), sign-in
    /// session and remembered consent, in one transaction. Revoking an unknown subject is no
    /// error. A rotation racing it must not leave a live token pair behind.
    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError>;

    /// Save a new sign-in session.
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError>;
    /// Look a session up by the hash of its secret (expired ones are `None`).
    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError>;
    /// End a session (sign-out). Ending an unknown session is no error.
    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError>;

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
    /// turned out right). Nothing happens when that window is over or holds no events. The
    /// default does nothing: the event stays counted, which only makes the limit stricter.
    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        let _ = (key, window_ends_at);
        Ok(())
    }

    /// Delete what expired before `now` (pending sign-ins, codes, tokens, sessions, consent,
    /// finished rate-limit windows); returns how many entries went.
    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError>;

    /// Delete the clients registered before `registered_before` that were never used (no code
    /// was ever stored for them by [`Store::take_pending`]) and have no pending authorization;
    /// returns how many went. Anyone may register a client, so registrations that nothing
    /// used would otherwise be kept for good. The default deletes nothing, for stores that do
    /// not track use.
    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        let _ = registered_before;
        Ok(0)
    }

    /// Drop the sealed successor pairs of refresh tokens rotated at or before
    /// `rotated_before`, which the sweeper sets to one grace window ago; returns how many were
    /// dropped. A retry after the grace window cannot use them, and a sealed pair opens with
    /// the old refresh token: kept until the old record expires (30 days by default), it
    /// would hand a live pair to whoever later held both that old token and a copy of the
    /// database. A retry then finds no sealed successor, as after its successor was rotated.
    /// The default drops nothing, for stores written before this method existed.
    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        let _ = rotated_before;
        Ok(0)
    }
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
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        (**self).insert_session(session).await
    }
    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        (**self).session(hash, now).await
    }
    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        (**self).delete_session(hash).await
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
}

/// Constructors for the records, which are `#[non_exhaustive]` and so cannot be built with a
/// struct literal outside this crate: a [`Store`] implemented over another database needs them
/// to turn its rows into records. Fields not taken here have the value in the constructor's
/// doc; the fields are public, so set them after construction.
impl Grant {
    /// A grant of `scopes` on `resource`, made by the user `subject` (`username`) to
    /// `client_id`, with no absolute end (`expires_at` is the year 9999) and no `claims`.
    pub fn new(
        grant_id: impl Into<String>,
        subject: impl Into<String>,
        username: impl Into<String>,
        client_id: impl Into<String>,
        scopes: Vec<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            grant_id: grant_id.into(),
            subject: subject.into(),
            username: username.into(),
            client_id: client_id.into(),
            scopes,
            resource: resource.into(),
            expires_at: crate::clock::far_future(),
            claims: Claims::new(),
        }
    }
}

impl ClientRecord {
    /// A client without a secret, name or scope (`secret_hash`, `client_name` and `scope` are
    /// `None`).
    pub fn new(
        client_id: impl Into<String>,
        auth_method: impl Into<String>,
        redirect_uris: Vec<String>,
        grant_types: Vec<String>,
        issued_at: SystemTime,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            secret_hash: None,
            auth_method: auth_method.into(),
            client_name: None,
            redirect_uris,
            grant_types,
            scope: None,
            issued_at,
        }
    }
}

impl PendingAuthorization {
    /// A pending sign-in with no `state`, no `scopes` and no failed logins yet, whose request
    /// named its `redirect_uri` (`redirect_uri_given` is `true`).
    pub fn new(
        id_hash: TokenHash,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        code_challenge: impl Into<String>,
        resource: impl Into<String>,
        csrf_token: impl Into<String>,
        expires_at: SystemTime,
    ) -> Self {
        Self {
            id_hash,
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            redirect_uri_given: true,
            state: None,
            code_challenge: code_challenge.into(),
            scopes: Vec::new(),
            resource: resource.into(),
            csrf_token: csrf_token.into(),
            failed_logins: 0,
            expires_at,
        }
    }
}

impl CodeRecord {
    /// A code for `grant`, sent to `redirect_uri`, bound to the PKCE `code_challenge`, whose
    /// authorization request named its `redirect_uri` (`redirect_uri_given` is `true`).
    pub fn new(
        hash: TokenHash,
        grant: Grant,
        redirect_uri: impl Into<String>,
        code_challenge: impl Into<String>,
        expires_at: SystemTime,
    ) -> Self {
        Self {
            hash,
            grant,
            redirect_uri: redirect_uri.into(),
            redirect_uri_given: true,
            code_challenge: code_challenge.into(),
            expires_at,
        }
    }
}

impl AccessTokenRecord {
    /// An access token for `grant`.
    pub fn new(hash: TokenHash, grant: Grant, expires_at: SystemTime) -> Self {
        Self { hash, grant, expires_at }
    }
}

impl RefreshTokenRecord {
    /// A refresh token for `grant`.
    pub fn new(hash: TokenHash, grant: Grant, expires_at: SystemTime) -> Self {
        Self { hash, grant, expires_at }
    }
}

impl IssuedTokens {
    /// A token pair.
    pub fn new(access: AccessTokenRecord, refresh: RefreshTokenRecord) -> Self {
        Self { access, refresh }
    }
}

impl SessionRecord {
    /// A session of the user `subject` (`username`), begun at `created_at`.
    pub fn new(
        hash: TokenHash,
        subject: impl Into<String>,
        username: impl Into<String>,
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        Self { hash, subject: subject.into(), username: username.into(), created_at, expires_at }
    }
}

impl ConsentRecord {
    /// `subject`'s consent to `client_id` for `scopes`, given at `granted_at`.
    pub fn new(
        subject: impl Into<String>,
        client_id: impl Into<String>,
        scopes: Vec<String>,
        granted_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        Self { subject: subject.into(), client_id: client_id.into(), scopes, granted_at, expires_at }
    }
}

impl RateLimitWindow {
    /// A window that has counted `count` events and ends at `ends_at`.
    pub fn new(count: u32, ends_at: SystemTime) -> Self {
        Self { count, ends_at }
    }
}
