//! The sweeper's round for MCP sessions: write to the store which sessions this process
//! served since the last round, learn in the same call which of the sessions it holds the
//! store no longer has, and end those here too; then delete the sessions idle everywhere.
//!
//! A session ended on another instance (its client's `DELETE`, its grant or user revoked, or
//! swept as idle) thus ends here within one [`Config::sweep_interval`](crate::Config::sweep_interval),
//! and the hot path never reads or writes the store for it.

use std::collections::HashMap;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::SessionManager;

use crate::clock::earlier;
use crate::secret::TokenHash;
use crate::serve::log_sweep;
use crate::state::AppState;
use crate::store::Store;

/// How long this process keeps a session's binding without use; the store still has the
/// session, and its next request restores it.
const BINDING_IDLE: Duration = Duration::from_secs(15 * 60);

/// One round; failures are logged, and the next round tries again.
pub(crate) async fn sweep_mcp_sessions(store: &dyn Store, state: &AppState) {
    let used = state.sessions.take_touched();
    let held = state.sessions.held();
    let by_hash: HashMap<TokenHash, &str> = held.iter().map(|id| (TokenHash::of(id), id.as_str())).collect();
    let used_hashes: Vec<TokenHash> = used.iter().map(|id| TokenHash::of(id)).collect();
    let held_hashes: Vec<TokenHash> = by_hash.keys().copied().collect();
    // The time they were taken: the sweeps before this one may have taken a while.
    let now = state.config.clock.now();
    match store.sync_mcp_sessions(&used_hashes, &held_hashes, now).await {
        Ok(gone) => {
            for id in gone.iter().filter_map(|h| by_hash.get(h)) {
                end_here(state, id).await;
            }
            let idle_since = earlier(now, state.config.mcp_session_idle_ttl);
            log_sweep("idle MCP sessions", store.sweep_idle_mcp_sessions(idle_since).await);
        }
        // Not sweeping then: the store would take the sessions used here for idle.
        Err(e) => {
            tracing::warn!(error = %e, "recording MCP session use failed");
            state.sessions.retouch(&used);
        }
    }
    state.sessions.sweep(BINDING_IDLE);
}

/// End `id` in this process: its binding, and rmcp's worker for it (which would otherwise
/// serve it until rmcp's own idle timeout).
async fn end_here(state: &AppState, id: &str) {
    state.sessions.unbind(id);
    if let Err(e) = state.rmcp_sessions.close_session(&id.into()).await {
        tracing::debug!(error = %e, "closing an MCP session ended elsewhere failed");
    }
}
