//! Rate limiting: failed sign-ins per username and per client address, and requests per client
//! address at the OAuth endpoints. Over the limit, the caller gets 429 with `Retry-After`; when
//! the window ends, everyone (the real user too) may try again. When the store cannot count,
//! the request is refused (503), never let through uncounted.
//!
//! This file is the policy (which limits, which keys, when to count, how long to wait); the
//! counters live in the [`Store`], so instances that share a store share their limits (see
//! [`Store::hit_rate_limit`]). A key's window is fixed: it starts with the key's first event and
//! lasts the policy's length, so that a burst cannot straddle two windows aligned to the clock.
//! A sign-in attempt is counted before its password is checked, and given back when the password
//! was right: a failure counted only afterwards would let concurrent guesses all pass the check.
//!
//! Keys are `<policy>:<SHA-256 hex of the identifier>`, for example `login:user:…` for a
//! lowercased username: bounded in length whatever was typed, and the store never holds a typed
//! username in clear (people type their password into that field too).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::secret::TokenHash;
use crate::store::{RateLimitWindow, Store};

/// What a limit says about one more event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit.
    Allowed,
    /// Over it: try again after this long.
    Limited(Duration),
}

/// One policy: at most `limit` events per key per `window`; a limit of 0 turns it off.
#[derive(Debug)]
pub(crate) struct RateLimit {
    policy: &'static str,
    limit: u32,
    window: Duration,
}

impl RateLimit {
    pub(crate) fn new(policy: &'static str, limit: u32, window: Duration) -> Self {
        Self { policy, limit, window }
    }

    fn key(&self, id: &str) -> String {
        format!("{}:{}", self.policy, TokenHash::of(id).to_hex())
    }

    /// Whether the event just counted into `window` is within the limit.
    fn verdict(&self, window: RateLimitWindow, now: SystemTime) -> Verdict {
        if window.count > self.limit {
            Verdict::Limited(window.ends_at.duration_since(now).unwrap_or_default())
        } else {
            Verdict::Allowed
        }
    }

    /// Count one event for `id`; whether it was within the limit.
    pub(crate) async fn hit(&self, store: &dyn Store, id: &str, now: SystemTime) -> Result<Verdict, StoreError> {
        Ok(self.counted_hit(store, id, now).await?.0)
    }

    /// [`RateLimit::hit`], with what [`RateLimit::undo`] needs to take the event back (`None`
    /// when the limit is off and nothing was counted).
    async fn counted_hit(
        &self,
        store: &dyn Store,
        id: &str,
        now: SystemTime,
    ) -> Result<(Verdict, Option<Hit>), StoreError> {
        if self.limit == 0 {
            return Ok((Verdict::Allowed, None));
        }
        let key = self.key(id);
        let window = store.hit_rate_limit(&key, self.window, now).await?;
        Ok((self.verdict(window, now), Some(Hit { key, window_ends_at: window.ends_at })))
    }

    /// Take back an event counted by [`RateLimit::counted_hit`].
    async fn undo(store: &dyn Store, hit: Option<&Hit>) -> Result<(), StoreError> {
        match hit {
            Some(hit) => store.undo_rate_limit_hit(&hit.key, hit.window_ends_at).await,
            None => Ok(()),
        }
    }

    /// Forget `id`'s window.
    pub(crate) async fn reset(&self, store: &dyn Store, id: &str) -> Result<(), StoreError> {
        if self.limit == 0 {
            return Ok(());
        }
        store.reset_rate_limit(&self.key(id)).await
    }
}

/// One event counted on a key, to be taken back if it turns out not to count.
#[derive(Debug)]
struct Hit {
    key: String,
    /// Names the window the event went into: a later window is never touched.
    window_ends_at: SystemTime,
}

/// Whether a sign-in attempt, counted before its password is checked, may go on.
#[derive(Debug)]
pub(crate) enum SignInAttempt {
    /// Within both limits: check the password.
    Allowed(CountedSignIn),
    /// Over a limit: try again after this long.
    Limited(Duration),
}

/// An allowed sign-in attempt, as counted (see [`Limits::sign_in_succeeded`]).
#[derive(Debug)]
pub(crate) struct CountedSignIn {
    ip_hit: Option<Hit>,
}

/// The limits of one server, over its store.
pub(crate) struct Limits {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    login_failures_by_user: RateLimit,
    login_failures_by_ip: RateLimit,
    oauth_requests_by_ip: RateLimit,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("login_failures_by_user", &self.login_failures_by_user)
            .field("login_failures_by_ip", &self.login_failures_by_ip)
            .field("oauth_requests_by_ip", &self.oauth_requests_by_ip)
            .finish_non_exhaustive()
    }
}

/// Usernames differing only in case share one budget.
fn user_id(username: &str) -> String {
    username.to_lowercase()
}

impl Limits {
    pub(crate) fn new(config: &crate::config::Config, store: Arc<dyn Store>) -> Self {
        let window = config.login_failure_window;
        Self {
            store,
            clock: config.clock.clone(),
            login_failures_by_user: RateLimit::new("login:user", config.login_failures_per_user, window),
            login_failures_by_ip: RateLimit::new("login:ip", config.login_failures_per_ip, window),
            oauth_requests_by_ip: RateLimit::new("oauth:ip", config.oauth_requests_per_minute, Duration::from_secs(60)),
        }
    }

    /// Before a password is checked (and an argon2 run spent on it): count the attempt against
    /// `username` and `ip`, each with one atomic store call, so that of any number of
    /// concurrent guesses only as many go on as the limits have room for. Until
    /// [`Limits::sign_in_succeeded`] takes it back, an attempt counts as a failure.
    ///
    /// Limited once either key is over its limit. A refused attempt checks no password, so it
    /// does not use up the other key's budget: a locked-out username is refused before its
    /// address is counted, and a throttled address's attempt is taken back from the username.
    pub(crate) async fn sign_in_attempt(&self, username: &str, ip: &str) -> Result<SignInAttempt, StoreError> {
        let now = self.clock.now();
        let (by_user, user_hit) =
            self.login_failures_by_user.counted_hit(&*self.store, &user_id(username), now).await?;
        if let Verdict::Limited(retry) = by_user {
            return Ok(SignInAttempt::Limited(retry));
        }
        let (by_ip, ip_hit) = self.login_failures_by_ip.counted_hit(&*self.store, ip, now).await?;
        if let Verdict::Limited(retry) = by_ip {
            RateLimit::undo(&*self.store, user_hit.as_ref()).await?;
            return Ok(SignInAttempt::Limited(retry));
        }
        Ok(SignInAttempt::Allowed(CountedSignIn { ip_hit }))
    }

    /// The password of an allowed attempt was right: clear its username's failures, and take
    /// the attempt back from its address (whose failures stay: one right password must not buy
    /// an address another round of guesses at other accounts).
    pub(crate) async fn sign_in_succeeded(&self, username: &str, attempt: &CountedSignIn) -> Result<(), StoreError> {
        self.login_failures_by_user.reset(&*self.store, &user_id(username)).await?;
        RateLimit::undo(&*self.store, attempt.ip_hit.as_ref()).await
    }

    /// Count one request from `ip` at an OAuth endpoint.
    pub(crate) async fn oauth_request(&self, ip: &str) -> Result<Verdict, StoreError> {
        self.oauth_requests_by_ip.hit(&*self.store, ip, self.clock.now()).await
    }
}

/// The bucket a request's address counts in, for the per-address limits. The address is the TCP
/// peer's, or with `trust_forwarded_for` the right-most `X-Forwarded-For` entry as the proxy
/// wrote it (the one our own proxy appended; entries left of it are whatever the client
/// claimed), with any port stripped (`192.0.2.7:5678`, `[2001:db8::1]:443`). When that entry
/// is not an address, the TCP peer's is used: never an entry the client wrote.
///
/// An IPv4 address is its own bucket; an IPv6 address counts in its /64 (a single host usually
/// holds a whole /64, so per-address buckets would let it rotate through 2⁶⁴ of them); an
/// IPv4-mapped IPv6 address counts as its IPv4 address.
pub(crate) fn client_ip(headers: &http::HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> String {
    let forwarded = if trust_forwarded_for { forwarded_for(headers) } else { None };
    forwarded.or(peer).map_or_else(|| "unknown".to_owned(), address_bucket)
}

/// The right-most `X-Forwarded-For` entry, if it is an address (with or without a port).
fn forwarded_for(headers: &http::HeaderMap) -> Option<IpAddr> {
    let line = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    let entry = line.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
}

/// An address's rate-limit bucket (see [`client_ip`]).
fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::time::UNIX_EPOCH;

    /// `ms` milliseconds after the Unix epoch.
    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn blocks_after_the_limit_and_recovers_after_the_window() {
        let store = MemoryStore::new();
        let l = RateLimit::new("t", 2, Duration::from_millis(50));
        let t = at(1_000);
        assert_eq!(l.hit(&store, "k", t).await.ok(), Some(Verdict::Allowed));
        assert_eq!(l.hit(&store, "k", t + Duration::from_millis(10)).await.ok(), Some(Verdict::Allowed));
        assert_eq!(
            l.hit(&store, "k", t + Duration::from_millis(20)).await.ok(),
            Some(Verdict::Limited(Duration::from_millis(30)))
        );
        assert_eq!(l.hit(&store, "other", t + Duration::from_millis(20)).await.ok(), Some(Verdict::Allowed));
        assert_eq!(
            l.hit(&store, "k", t + Duration::from_millis(50)).await.ok(),
            Some(Verdict::Allowed),
            "the window ended"
        );
        assert_eq!(l.hit(&store, "k", t + Duration::from_millis(60)).await.ok(), Some(Verdict::Allowed));
        assert!(matches!(l.hit(&store, "k", t + Duration::from_millis(60)).await, Ok(Verdict::Limited(_))));
        l.reset(&store, "k").await.expect("reset");
        assert_eq!(l.hit(&store, "k", t + Duration::from_millis(60)).await.ok(), Some(Verdict::Allowed));
    }

    #[tokio::test]
    async fn an_undone_hit_frees_its_place_in_its_own_window_only() {
        let store = MemoryStore::new();
        let l = RateLimit::new("t", 1, Duration::from_millis(50));
        let (verdict, hit) = l.counted_hit(&store, "k", at(1_000)).await.expect("hit");
        assert_eq!(verdict, Verdict::Allowed);
        RateLimit::undo(&store, hit.as_ref()).await.expect("undo");
        let (verdict, hit) = l.counted_hit(&store, "k", at(1_010)).await.expect("hit");
        assert_eq!(verdict, Verdict::Allowed, "the undone hit no longer counts");
        assert!(matches!(l.hit(&store, "k", at(1_020)).await, Ok(Verdict::Limited(_))));
        assert_eq!(l.hit(&store, "k", at(1_050)).await.ok(), Some(Verdict::Allowed), "a new window");
        RateLimit::undo(&store, hit.as_ref()).await.expect("undo of the old window");
        assert!(matches!(l.hit(&store, "k", at(1_060)).await, Ok(Verdict::Limited(_))), "the new window keeps its hit");
    }

    fn limits(per_user: u32, per_ip: u32) -> Limits {
        let mut config = crate::config::Config::new("http://127.0.0.1:1").expect("valid");
        config.login_failures_per_user = per_user;
        config.login_failures_per_ip = per_ip;
        Limits::new(&config, Arc::new(MemoryStore::new()))
    }

    #[tokio::test]
    async fn sign_in_attempts_count_before_the_password_is_checked() {
        let l = limits(2, 10);
        for _ in 0..2 {
            assert!(matches!(l.sign_in_attempt("Alice", "ip").await, Ok(SignInAttempt::Allowed(_))));
        }
        // Two attempts still in flight (no outcome yet) use up alice's budget.
        assert!(matches!(l.sign_in_attempt("alice", "ip").await, Ok(SignInAttempt::Limited(_))));
        assert!(matches!(l.sign_in_attempt("bob", "ip").await, Ok(SignInAttempt::Allowed(_))));
    }

    #[tokio::test]
    async fn a_right_password_gives_its_attempt_back() {
        let l = limits(2, 2);
        let Ok(SignInAttempt::Allowed(first)) = l.sign_in_attempt("alice", "ip").await else { panic!("allowed") };
        l.sign_in_succeeded("alice", &first).await.expect("succeeded");
        let Ok(SignInAttempt::Allowed(_)) = l.sign_in_attempt("bob", "ip").await else { panic!("allowed") };
        // The address has one failure (bob's) and one place left; alice's was given back.
        assert!(matches!(l.sign_in_attempt("carol", "ip").await, Ok(SignInAttempt::Allowed(_))));
        assert!(matches!(l.sign_in_attempt("dave", "ip").await, Ok(SignInAttempt::Limited(_))));
    }

    #[tokio::test]
    async fn a_refused_attempt_does_not_use_up_the_other_budget() {
        let l = limits(1, 3);
        assert!(matches!(l.sign_in_attempt("alice", "ip").await, Ok(SignInAttempt::Allowed(_))));
        for _ in 0..5 {
            assert!(matches!(l.sign_in_attempt("alice", "ip").await, Ok(SignInAttempt::Limited(_))));
        }
        // alice's refused attempts did not count against the address: two places are left.
        for user in ["bob", "carol"] {
            assert!(matches!(l.sign_in_attempt(user, "ip").await, Ok(SignInAttempt::Allowed(_))), "{user}");
        }
        assert!(matches!(l.sign_in_attempt("dave", "ip").await, Ok(SignInAttempt::Limited(_))));
        // The address's refused attempt did not count against dave.
        assert!(matches!(l.sign_in_attempt("dave", "other-ip").await, Ok(SignInAttempt::Allowed(_))));
    }

    #[tokio::test]
    async fn zero_means_off() {
        let store = MemoryStore::new();
        let l = RateLimit::new("t", 0, Duration::from_secs(60));
        for _ in 0..1000 {
            assert_eq!(l.hit(&store, "k", at(1)).await.ok(), Some(Verdict::Allowed));
        }
        let window = store.rate_limit_count(&l.key("k"), at(1)).await.expect("count");
        assert_eq!(window.count, 0, "nothing was counted");
        assert!(l.counted_hit(&store, "k", at(1)).await.expect("hit").1.is_none(), "nothing to undo");
    }

    #[test]
    fn keys_are_bounded_and_do_not_hold_the_identifier() {
        let l = RateLimit::new("login:user", 5, Duration::from_secs(60));
        let typed = "correct horse battery staple ".repeat(1000);
        let key = l.key(&typed);
        assert_eq!(key.len(), "login:user:".len() + 64);
        assert!(key.starts_with("login:user:") && !key.contains("horse"));
    }

    #[test]
    fn forwarded_for_is_trusted_only_when_configured() {
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", http::HeaderValue::from_static("1.1.1.1, 2.2.2.2"));
        let peer = Some("127.0.0.1".parse().expect("ip"));
        assert_eq!(client_ip(&h, peer, false), "127.0.0.1");
        assert_eq!(client_ip(&h, peer, true), "2.2.2.2");
    }

    #[test]
    fn forwarded_for_is_the_right_most_entry_with_its_port_stripped() {
        let peer = Some("127.0.0.1".parse().expect("ip"));
        // (X-Forwarded-For lines, the address used)
        let rows: [(&[&str], &str); 11] = [
            (&["1.1.1.1, 2.2.2.2"], "2.2.2.2"),
            (&["1.1.1.1,2.2.2.2 "], "2.2.2.2"),
            (&["1.1.1.1, 2.2.2.2:5678"], "2.2.2.2"),
            (&["1.1.1.1, [2001:db8::1]:443"], "2001:db8::/64"),
            (&["1.1.1.1, [2001:db8::1]"], "2001:db8::/64"),
            (&["1.1.1.1, 2001:db8::1"], "2001:db8::/64"),
            (&["1.1.1.1", "3.3.3.3"], "3.3.3.3"),
            // The entry the proxy wrote is not an address: the client's claims left of it
            // must not stand in for it.
            (&["1.1.1.1, not-an-address"], "127.0.0.1"),
            (&["1.1.1.1, 2.2.2.2:port"], "127.0.0.1"),
            (&["1.1.1.1, [2001:db8::1]x"], "127.0.0.1"),
            (&["1.1.1.1, "], "127.0.0.1"),
        ];
        for (lines, want) in rows {
            let mut h = http::HeaderMap::new();
            for line in lines {
                h.append("x-forwarded-for", http::HeaderValue::from_static(line));
            }
            assert_eq!(client_ip(&h, peer, true), want, "{lines:?}");
        }
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let none = http::HeaderMap::new();
        let bucket = |ip: &str| client_ip(&none, Some(ip.parse().expect("ip")), false);
        assert_eq!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:3::1"));
        assert_eq!(bucket("::ffff:192.0.2.7"), "192.0.2.7", "an IPv4-mapped address is its IPv4 address");
        assert_ne!(bucket("192.0.2.7"), bucket("192.0.2.8"));
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", http::HeaderValue::from_static("[2001:db8:1:2::7]:443"));
        assert_eq!(client_ip(&h, None, true), "2001:db8:1:2::/64");
    }
}
