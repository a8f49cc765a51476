//! How often a caller may make this process read the store for an MCP session it does not
//! hold. Every such request costs a database read; ids are the client's to choose, so without
//! a bound a signed-in client could make one read per request with made-up ids.
//!
//! Two bounds, both in memory and bounded in size:
//! - ids the store did not know are remembered for a minute and answered 404 without a read.
//!   That cannot refuse a real session: an instance stores a session before its `initialize`
//!   answer hands out the id, so an id the store does not know is one no client was given;
//! - each grant (each subject, for tokens of another issuer) may cause a few reads per second;
//!   past that the guard answers 429 with `Retry-After` instead of reading. A client restores
//!   each of its sessions once per instance, far below the budget.
//!
//! Requests without a valid token never get here: the guard verifies the token first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::provider::AccessToken;
use crate::secret::TokenHash;

/// Store reads one grant may cause per [`BUDGET_WINDOW`].
const READS_PER_WINDOW: u32 = 10;
/// The window of [`READS_PER_WINDOW`]; also the `Retry-After` of a caller over budget.
pub(crate) const BUDGET_WINDOW: Duration = Duration::from_secs(1);
/// How long an id the store did not know is answered without a read.
const UNKNOWN_FOR: Duration = Duration::from_secs(60);
/// At most this many remembered ids, and as many grants' windows; past that, the expired ones
/// go, and if none has, all of them (a fresh start costs only reads).
const CAPACITY: usize = 10_000;

/// What the guard may do about a session id this process does not hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Read the store.
    Read,
    /// The store did not know this id a moment ago: answer 404 without a read.
    KnownUnknown,
    /// The caller used up its reads for now: answer 429.
    OverBudget,
}

/// The two bounds of this module, for one process.
#[derive(Debug, Default)]
pub(crate) struct SessionLookups {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Ids (hashed: the client chooses their length) the store did not know, until when.
    unknown: HashMap<TokenHash, SystemTime>,
    /// Per grant (hashed), when its window ends and how many reads it holds.
    budgets: HashMap<TokenHash, (SystemTime, u32)>,
}

impl SessionLookups {
    /// Whether `caller` may make the store read session `id` at `now`; a `Read` counts.
    pub(crate) fn permit(&self, id: &TokenHash, caller: &AccessToken, now: SystemTime) -> Permit {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.unknown.get(id).is_some_and(|until| *until > now) {
            return Permit::KnownUnknown;
        }
        let key = match &caller.grant_id {
            Some(grant) => TokenHash::of(&format!("grant:{grant}")),
            None => TokenHash::of(&format!("subject:{}", caller.subject)),
        };
        if !inner.budgets.contains_key(&key) {
            make_room(&mut inner.budgets, now, |(ends_at, _)| *ends_at);
        }
        let window = inner.budgets.entry(key).or_insert((now + BUDGET_WINDOW, 0));
        if window.0 <= now {
            *window = (now + BUDGET_WINDOW, 0);
        }
        if window.1 >= READS_PER_WINDOW {
            return Permit::OverBudget;
        }
        window.1 += 1;
        Permit::Read
    }

    /// The store did not know `id` at `now`.
    pub(crate) fn not_stored(&self, id: TokenHash, now: SystemTime) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        make_room(&mut inner.unknown, now, |until| *until);
        inner.unknown.insert(id, now + UNKNOWN_FOR);
    }
}

/// Room for one more entry in `map`: at capacity, drop the entries that ended by `now`, and
/// all of them if none had.
fn make_room<V>(map: &mut HashMap<TokenHash, V>, now: SystemTime, ends_at: impl Fn(&V) -> SystemTime) {
    if map.len() < CAPACITY {
        return;
    }
    map.retain(|_, v| ends_at(v) > now);
    if map.len() >= CAPACITY {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(subject: &str, grant: Option<&str>) -> AccessToken {
        let builder = AccessToken::builder(subject, SystemTime::now());
        match grant {
            Some(g) => builder.grant_id(g).build(),
            None => builder.build(),
        }
    }

    #[test]
    fn each_grant_reads_a_few_times_per_window() {
        let lookups = SessionLookups::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let (alice, other_grant) = (token("alice", Some("g1")), token("alice", Some("g2")));
        for i in 0..READS_PER_WINDOW {
            assert_eq!(lookups.permit(&TokenHash::of(&format!("made-up-{i}")), &alice, now), Permit::Read, "{i}");
        }
        let id = TokenHash::of("one more");
        assert_eq!(lookups.permit(&id, &alice, now), Permit::OverBudget);
        assert_eq!(lookups.permit(&id, &other_grant, now), Permit::Read, "another grant has its own budget");
        assert_eq!(lookups.permit(&id, &alice, now + BUDGET_WINDOW), Permit::Read, "a new window");
        // Tokens without a grant count by subject.
        let (carol, dave) = (token("carol", None), token("dave", None));
        for _ in 0..READS_PER_WINDOW {
            assert_eq!(lookups.permit(&id, &carol, now), Permit::Read);
        }
        assert_eq!(lookups.permit(&id, &carol, now), Permit::OverBudget);
        assert_eq!(lookups.permit(&id, &dave, now), Permit::Read);
    }

    #[test]
    fn ids_the_store_did_not_know_cost_no_read_for_a_while() {
        let lookups = SessionLookups::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let alice = token("alice", Some("g1"));
        let id = TokenHash::of("gone");
        assert_eq!(lookups.permit(&id, &alice, now), Permit::Read);
        lookups.not_stored(id, now);
        assert_eq!(lookups.permit(&id, &alice, now), Permit::KnownUnknown);
        assert_eq!(lookups.permit(&id, &token("bob", Some("g9")), now), Permit::KnownUnknown, "for everyone");
        assert_eq!(lookups.permit(&id, &alice, now + UNKNOWN_FOR), Permit::Read, "then read again");
    }

    #[test]
    fn memory_stays_bounded() {
        let lookups = SessionLookups::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        for i in 0..CAPACITY + 5 {
            lookups.not_stored(TokenHash::of(&i.to_string()), now);
            lookups.permit(&TokenHash::of("x"), &token("s", Some(&i.to_string())), now);
        }
        let inner = lookups.inner.lock().expect("not poisoned");
        assert!(inner.unknown.len() <= CAPACITY, "{}", inner.unknown.len());
        assert!(inner.budgets.len() <= CAPACITY, "{}", inner.budgets.len());
    }
}
