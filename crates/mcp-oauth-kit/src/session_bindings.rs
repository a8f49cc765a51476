//! Which user opened which MCP session: rmcp accepts any valid token on any known
//! `Mcp-Session-Id`, so the guard records each session's subject here and refuses the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which user opened which MCP session. rmcp itself accepts any valid token on any known
/// session id; this map closes that gap.
#[derive(Debug, Default)]
pub(crate) struct SessionBindings {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

/// Whose a session is, as far as the bindings know.
pub(crate) enum Binding {
    /// Opened by the same subject.
    Same,
    /// Opened by another subject.
    Foreign,
    /// Not on record: expired, or never opened through this guard.
    Unknown,
}

impl SessionBindings {
    /// Whether `session` is `subject`'s; a match refreshes its last use.
    pub(crate) fn check(&self, session: &str, subject: &str) -> Binding {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(session) {
            Some((owner, seen)) if owner == subject => {
                *seen = Instant::now();
                Binding::Same
            }
            Some(_) => Binding::Foreign,
            None => Binding::Unknown,
        }
    }

    /// Record that `subject` opened `session`.
    pub(crate) fn bind(&self, session: String, subject: String) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(session, (subject, Instant::now()));
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

    /// Forget sessions idle for longer than rmcp keeps them (it closes them after 5 minutes).
    pub(crate) fn sweep(&self, max_idle: Duration) -> usize {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, (_, seen)| seen.elapsed() < max_idle);
        before - map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bound_to_their_user() {
        let s = SessionBindings::default();
        s.bind("s1".into(), "alice".into());
        assert!(matches!(s.check("s1", "alice"), Binding::Same));
        assert!(matches!(s.check("s1", "bob"), Binding::Foreign));
        assert!(matches!(s.check("s2", "bob"), Binding::Unknown));
        s.unbind("s1");
        assert!(matches!(s.check("s1", "bob"), Binding::Unknown));
        s.bind("s3".into(), "x".into());
        assert_eq!(s.sweep(Duration::ZERO), 1);
    }
}
