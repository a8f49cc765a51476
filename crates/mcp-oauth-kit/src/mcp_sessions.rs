//! MCP sessions kept in the [`Store`]: rmcp's `SessionStore` (the client's `initialize`
//! parameters, replayed by rmcp to restore a session on an instance that does not hold it),
//! with the user and grant that opened each session stored beside them.
//!
//! rmcp asks this store on `initialize` and on a restore only; the guard's in-process
//! [`SessionBindings`](crate::session_bindings::SessionBindings) serve every other request, so
//! the MCP hot path does not touch the database.
//!
//! rmcp's trait passes only the session id. The guard says who is calling by running rmcp
//! inside [`SessionCall::scope`]: the opener's token on a request that may open a session, the
//! record it already read on a restore (so rmcp's own read costs no second round trip).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use rmcp::transport::streamable_http_server::session::store::{SessionState, SessionStore, SessionStoreError};

use crate::config::Config;
use crate::provider::AccessToken;
use crate::secret::TokenHash;
use crate::session_lookups::{Permit, SessionLookups};
use crate::store::{McpSessionRecord, Store, StoreError};

tokio::task_local! {
    static CALL: Arc<SessionCall>;
}

/// What the guard knows about the request rmcp is serving, for [`StoredSessions`].
pub(crate) enum SessionCall {
    /// A request without a session id: a session it opens belongs to this caller.
    Opening {
        caller: AccessToken,
        /// Set once the session it opened is in the store; the guard refuses the session
        /// otherwise, rather than hand out one that no other instance could continue.
        stored: AtomicBool,
    },
    /// A request on a session the guard found in the store and checked.
    Restoring(McpSessionRecord),
}

impl SessionCall {
    /// A call by `caller` that may open a session.
    pub(crate) fn opening(caller: AccessToken) -> Arc<Self> {
        Arc::new(Self::Opening { caller, stored: AtomicBool::new(false) })
    }

    /// Run `fut` (rmcp serving the request) with this call in view of [`StoredSessions`].
    pub(crate) async fn scope<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        CALL.scope(self, fut).await
    }

    /// Whether a session this call opened was stored.
    pub(crate) fn opened_session_stored(&self) -> bool {
        matches!(self, Self::Opening { stored, .. } if stored.load(Ordering::Acquire))
    }
}

/// rmcp's `SessionStore` over the kit's [`Store`].
pub(crate) struct StoredSessions {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    /// How often callers may make the guard's [`StoredSessions::find`] read the store.
    lookups: SessionLookups,
}

/// What [`StoredSessions::find`] says about a session id.
pub(crate) enum Found {
    /// The store's record.
    Stored(McpSessionRecord),
    /// No such session (ended, swept, revoked, or never issued).
    Unknown,
    /// The caller asked about too many sessions this process does not hold; not read.
    OverBudget,
}

impl StoredSessions {
    pub(crate) fn new(store: Arc<dyn Store>, config: Arc<Config>) -> Self {
        Self { store, config, lookups: SessionLookups::default() }
    }

    /// The stored session `id`, for the guard's check before `caller` restores it: read
    /// within the bounds of [`crate::session_lookups`].
    pub(crate) async fn find(&self, id: &str, caller: &AccessToken) -> Result<Found, StoreError> {
        let hash = TokenHash::of(id);
        let now = self.config.clock.now();
        match self.lookups.permit(&hash, caller, now) {
            Permit::Read => {}
            Permit::KnownUnknown => return Ok(Found::Unknown),
            Permit::OverBudget => return Ok(Found::OverBudget),
        }
        match self.store.mcp_session(&hash).await? {
            Some(record) => Ok(Found::Stored(record)),
            None => {
                self.lookups.not_stored(hash, now);
                Ok(Found::Unknown)
            }
        }
    }
}

/// A session's state from its record, or why the record is unusable.
fn state_of(record: &McpSessionRecord) -> Result<SessionState, SessionStoreError> {
    let params = serde_json::from_str(&record.initialize)?;
    Ok(SessionState::new(params))
}

#[async_trait]
impl SessionStore for StoredSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let hash = TokenHash::of(session_id);
        let checked = CALL
            .try_with(|call| match &**call {
                SessionCall::Restoring(record) if record.id_hash.ct_eq(&hash) => Some(state_of(record)),
                _ => None,
            })
            .ok()
            .flatten();
        if let Some(state) = checked {
            return state.map(Some);
        }
        // rmcp dropped a session the guard still knows (it closes idle ones by itself).
        match self.store.mcp_session(&hash).await? {
            Some(record) => state_of(&record).map(Some),
            None => Ok(None),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let call = CALL.try_with(Arc::clone).map_err(|_| "a session opened outside the guard")?;
        let SessionCall::Opening { caller, stored } = &*call else {
            return Err("a session opened on a restore".into());
        };
        let record = McpSessionRecord::new(
            TokenHash::of(session_id),
            caller.subject.clone(),
            caller.grant_id.clone(),
            serde_json::to_string(&state.initialize_params)?,
            self.config.clock.now(),
        );
        self.store.put_mcp_session(record).await?;
        stored.store(true, Ordering::Release);
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.store.delete_mcp_session(&TokenHash::of(session_id)).await?)
    }
}
