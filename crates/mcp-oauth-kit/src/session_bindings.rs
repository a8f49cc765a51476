//! Which user opened which MCP session, in this process: rmcp accepts any valid token on any
//! known `Mcp-Session-Id`, so the guard records each session's subject here and refuses the
//! others. The store keeps the same binding for the other instances ([`crate::mcp_sessions`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::provider::AccessToken;

/// Which user opened which MCP session, as far as this process knows. rmcp itself accepts any
/// valid token on any known session id; this map closes that gap. The store holds the same
/// binding ([`McpSessionRecord`](crate::store::McpSessionRecord)); this map spares the hot path
/// a database read.
#[derive(Debug, Default)]
pub(crate) struct SessionBindings {
    map: Mutex<HashMap<String, Bound>>,
}

#[derive(Debug)]
struct Bound {
    subject: String,
    /// The grant of the token last seen on the session: another grant's token is checked
    /// against the store, which drops the sessions of revoked grants.
    grant_id: Option<String>,
    seen: Instant,
    /// Used since the sweeper last wrote this session's use to the store.
    touched: bool,
}

/// Whose a session is, as far as the bindings know.
pub(crate) enum Binding {
    /// Opened by the same subject, with a token of the same grant.
    Same,
    /// Opened by another subject.
    Foreign,
    /// Not on record here (opened on another instance, before a restart, or swept), or used
    /// with a token of another grant: the store decides.
    Unknown,
}

impl SessionBindings {
    /// Whether `session` is `caller`'s; a match refreshes its last use.
    pub(crate) fn check(&self, session: &str, caller: &AccessToken) -> Binding {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(session) {
            Some(b) if b.subject != caller.subject => Binding::Foreign,
            Some(b) if b.grant_id == caller.grant_id => {
                b.seen = Instant::now();
                b.touched = true;
                Binding::Same
            }
            Some(_) | None => Binding::Unknown,
        }
    }

    /// Record that `caller` opened `session`, or continues it after the store said so.
    pub(crate) fn bind(&self, session: String, caller: &AccessToken) {
        let bound = Bound {
            subject: caller.subject.clone(),
            grant_id: caller.grant_id.clone(),
            seen: Instant::now(),
            touched: false,
        };
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(session, bound);
    }

    /// Forget `session` (it was closed).
    pub(crate) fn unbind(&self, session: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(session);
    }

    /// How many sessions are bound: the live MCP sessions, for the metrics.
    #[cfg(feature = "metrics")]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Every session bound here: the sessions this process holds, for the sweeper to ask the
    /// store which of them ended elsewhere.
    pub(crate) fn held(&self) -> Vec<String> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// The sessions used since the last call, for the sweeper to write their use to the store.
    pub(crate) fn take_touched(&self) -> Vec<String> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter_mut().filter_map(|(id, b)| std::mem::take(&mut b.touched).then(|| id.clone())).collect()
    }

    /// Mark `sessions` used again: writing their use to the store failed, and the next sweep
    /// tries again.
    pub(crate) fn retouch(&self, sessions: &[String]) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        for id in sessions {
            if let Some(b) = map.get_mut(id) {
                b.touched = true;
            }
        }
    }

    /// Forget sessions idle for longer than `max_idle`; the store still has them, so their
    /// next request restores them.
    pub(crate) fn sweep(&self, max_idle: Duration) -> usize {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, b| b.seen.elapsed() < max_idle);
        before - map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(subject: &str, grant: &str) -> AccessToken {
        AccessToken::builder(subject, std::time::SystemTime::now()).grant_id(grant).build()
    }

    #[test]
    fn sessions_are_bound_to_their_user_and_grant() {
        let s = SessionBindings::default();
        let (alice, bob) = (token("alice", "g1"), token("bob", "g2"));
        s.bind("s1".into(), &alice);
        assert!(matches!(s.check("s1", &alice), Binding::Same));
        assert!(matches!(s.check("s1", &bob), Binding::Foreign));
        assert!(matches!(s.check("s1", &token("alice", "g3")), Binding::Unknown), "another grant asks the store");
        assert!(matches!(s.check("s2", &bob), Binding::Unknown));
        let mut held = s.held();
        held.sort();
        assert_eq!(held, ["s1"]);
        s.unbind("s1");
        assert!(matches!(s.check("s1", &bob), Binding::Unknown));
        assert!(s.held().is_empty());
        s.bind("s3".into(), &token("x", "g"));
        assert_eq!(s.sweep(Duration::ZERO), 1);
    }

    #[test]
    fn use_is_reported_once_per_sweep() {
        let s = SessionBindings::default();
        let alice = token("alice", "g1");
        s.bind("s1".into(), &alice);
        s.bind("s2".into(), &alice);
        assert!(s.take_touched().is_empty(), "opening is stored with its time already");
        assert!(matches!(s.check("s1", &alice), Binding::Same));
        assert_eq!(s.take_touched(), ["s1"]);
        assert!(s.take_touched().is_empty());
        s.retouch(&["s1".to_owned(), "gone".to_owned()]);
        assert_eq!(s.take_touched(), ["s1"], "a failed write is tried again");
    }
}
