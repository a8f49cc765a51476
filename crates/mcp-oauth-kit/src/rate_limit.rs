//! Rate limiting: failed sign-ins per (username, client address), per client address and per
//! username, and requests at the OAuth endpoints per client address (and at `/token` per
//! client). Over a limit, the caller gets 429 with `Retry-After`; when the window ends, everyone
//! may try again. When the store cannot count, the request is refused (503), never let through
//! uncounted.
//!
//! Lockout must not be a weapon: the tight sign-in limit is per (username, address), so
//! wrong passwords from one address cannot lock the user out at another. The per-username
//! limit, against guessing spread over many addresses, is high and then progressive: past it,
//! each attempt for that username waits a delay that doubles (1 s, 2 s, 4 s, … at most
//! [`MAX_USER_DELAY`]), so a user under attack waits, but is never walled off for the window.
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

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::secret::TokenHash;
use crate::store::Store;

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

    /// Whether the event just counted, the `count`th of a window ending at `ends_at`, is
    /// within the limit.
    fn verdict(&self, count: u32, ends_at: SystemTime, now: SystemTime) -> Verdict {
        if count > self.limit {
            Verdict::Limited(ends_at.duration_since(now).unwrap_or_default())
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
        Ok(match self.counted(store, id, now).await? {
            Some((count, hit)) => (self.verdict(count, hit.window_ends_at, now), Some(hit)),
            None => (Verdict::Allowed, None),
        })
    }

    /// [`RateLimit::counted_hit`] returning the window's count instead of a verdict (`None`
    /// when the limit is off).
    async fn counted(&self, store: &dyn Store, id: &str, now: SystemTime) -> Result<Option<(u32, Hit)>, StoreError> {
        if self.limit == 0 {
            return Ok(None);
        }
        let key = self.key(id);
        let window = store.hit_rate_limit(&key, self.window, now).await?;
        Ok(Some((window.count, Hit { key, window_ends_at: window.ends_at })))
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

/// The longest a username's progressive delay grows: long enough to slow guessing spread over
/// many addresses to a crawl, short enough that the real user is never walled off.
pub(crate) const MAX_USER_DELAY: Duration = Duration::from_secs(60);

/// The delay before the next attempt for a username with `over` failures past its limit.
fn user_delay(over: u32) -> Duration {
    let doublings = over.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_USER_DELAY)
}

/// Whether a sign-in attempt, counted before its password is checked, may go on.
#[derive(Debug)]
pub(crate) enum SignInAttempt {
    /// Within every limit: check the password.
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
    login_failures_by_user_and_ip: RateLimit,
    login_failures_by_ip: RateLimit,
    login_failures_by_user: RateLimit,
    oauth_requests_by_ip: RateLimit,
    token_requests_by_ip: RateLimit,
    token_requests_by_client: RateLimit,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("login_failures_by_user_and_ip", &self.login_failures_by_user_and_ip)
            .field("login_failures_by_ip", &self.login_failures_by_ip)
            .field("login_failures_by_user", &self.login_failures_by_user)
            .field("oauth_requests_by_ip", &self.oauth_requests_by_ip)
            .field("token_requests_by_ip", &self.token_requests_by_ip)
            .field("token_requests_by_client", &self.token_requests_by_client)
            .finish_non_exhaustive()
    }
}

/// Usernames differing only in case share one budget.
fn user_id(username: &str) -> String {
    username.to_lowercase()
}

/// A (username, address) pair's identifier: a line break cannot be typed into a username
/// field that reaches here as one pair with another's.
fn user_and_ip(username: &str, ip: &str) -> String {
    format!("{}\n{ip}", user_id(username))
}

impl Limits {
    pub(crate) fn new(config: &crate::config::Config, store: Arc<dyn Store>) -> Self {
        let window = config.login_failure_window;
        let minute = Duration::from_secs(60);
        Self {
            store,
            clock: config.clock.clone(),
            login_failures_by_user_and_ip: RateLimit::new(
                "login:user-ip",
                config.login_failures_per_user_and_ip,
                window,
            ),
            login_failures_by_ip: RateLimit::new("login:ip", config.login_failures_per_ip, window),
            login_failures_by_user: RateLimit::new("login:user", config.login_failures_per_user, window),
            oauth_requests_by_ip: RateLimit::new("oauth:ip", config.oauth_requests_per_minute, minute),
            token_requests_by_ip: RateLimit::new("token:ip", config.token_requests_per_ip_per_minute, minute),
            token_requests_by_client: RateLimit::new(
                "token:client",
                config.token_requests_per_client_per_minute,
                minute,
            ),
        }
    }

    /// Before a password is checked (and an argon2 run spent on it): count the attempt against
    /// (`username`, `ip`), `ip` and `username`, each with one atomic store call, so that of any
    /// number of concurrent guesses only as many go on as the limits have room for. Until
    /// [`Limits::sign_in_succeeded`] takes it back, an attempt counts as a failure.
    ///
    /// Limited once a key is over its limit; past the username's limit, an attempt goes on only
    /// when the username's delay has passed, and starts the next, longer one. A refused attempt
    /// checks no password, so it uses up no key's budget: what was counted for it is taken back.
    pub(crate) async fn sign_in_attempt(&self, username: &str, ip: &str) -> Result<SignInAttempt, StoreError> {
        let now = self.clock.now();
        let store = &*self.store;
        let (verdict, pair_hit) =
            self.login_failures_by_user_and_ip.counted_hit(store, &user_and_ip(username, ip), now).await?;
        if let Verdict::Limited(retry) = verdict {
            return Ok(SignInAttempt::Limited(retry));
        }
        let (verdict, ip_hit) = self.login_failures_by_ip.counted_hit(store, ip, now).await?;
        if let Verdict::Limited(retry) = verdict {
            RateLimit::undo(store, pair_hit.as_ref()).await?;
            return Ok(SignInAttempt::Limited(retry));
        }
        if let Some(retry) = self.user_delay_pending(username, now).await? {
            for hit in [&pair_hit, &ip_hit] {
                RateLimit::undo(store, hit.as_ref()).await?;
            }
            return Ok(SignInAttempt::Limited(retry));
        }
        Ok(SignInAttempt::Allowed(CountedSignIn { ip_hit }))
    }

    /// Count the attempt against `username`; past its limit, `Some(wait)` when the username's
    /// current delay has not passed (nothing stays counted then), `None` when this attempt may
    /// go on (and starts the next delay).
    async fn user_delay_pending(&self, username: &str, now: SystemTime) -> Result<Option<Duration>, StoreError> {
        let store = &*self.store;
        let limit = &self.login_failures_by_user;
        let Some((count, user_hit)) = limit.counted(store, &user_id(username), now).await? else {
            return Ok(None);
        };
        let over = count.saturating_sub(limit.limit);
        if over == 0 {
            return Ok(None);
        }
        // A window as long as the delay: the attempt that opens it goes on, the others wait
        // for its end. Its key is the username's, under its own policy.
        let delay = RateLimit::new("login:user-delay", 1, user_delay(over));
        let (verdict, delay_hit) = delay.counted_hit(store, &user_id(username), now).await?;
        match verdict {
            Verdict::Allowed => Ok(None),
            Verdict::Limited(retry) => {
                RateLimit::undo(store, delay_hit.as_ref()).await?;
                RateLimit::undo(store, Some(&user_hit)).await?;
                Ok(Some(retry.max(Duration::from_secs(1))))
            }
        }
    }

    /// The password of an allowed attempt was right: clear its username's failures (from
    /// every address), and take the attempt back from its address (whose failures stay: one
    /// right password must not buy an address another round of guesses at other accounts).
    pub(crate) async fn sign_in_succeeded(
        &self,
        username: &str,
        ip: &str,
        attempt: &CountedSignIn,
    ) -> Result<(), StoreError> {
        let store = &*self.store;
        self.login_failures_by_user_and_ip.reset(store, &user_and_ip(username, ip)).await?;
        self.login_failures_by_user.reset(store, &user_id(username)).await?;
        RateLimit::undo(store, attempt.ip_hit.as_ref()).await
    }

    /// Count one request from `ip` at an OAuth endpoint other than `/token`.
    pub(crate) async fn oauth_request(&self, ip: &str) -> Result<Verdict, StoreError> {
        self.oauth_requests_by_ip.hit(&*self.store, ip, self.clock.now()).await
    }

    /// Count one request from `ip` at `/token`, which has its own, larger budget per address:
    /// a platform refreshes its users' tokens from a few shared addresses.
    pub(crate) async fn token_request(&self, ip: &str) -> Result<Verdict, StoreError> {
        self.token_requests_by_ip.hit(&*self.store, ip, self.clock.now()).await
    }

    /// Count one request at `/token` for the client it names (whether or not that client
    /// exists: a made-up id only spends the address's budget on a key of its own).
    pub(crate) async fn token_request_for_client(&self, client_id: &str) -> Result<Verdict, StoreError> {
        self.token_requests_by_client.hit(&*self.store, client_id, self.clock.now()).await
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

    /// Limits with `per_pair` failures per (username, address), `per_ip` per address and
    /// `per_user` per username before delays, on a clock the test moves.
    fn limits_on(per_pair: u32, per_ip: u32, per_user: u32) -> (Limits, Arc<crate::clock::ManualClock>) {
        let clock = Arc::new(crate::clock::ManualClock::new(at(1_000_000)));
        let mut config = crate::config::Config::new("http://127.0.0.1:1").expect("valid");
        config.login_failures_per_user_and_ip = per_pair;
        config.login_failures_per_ip = per_ip;
        config.login_failures_per_user = per_user;
        config.clock = clock.clone();
        (Limits::new(&config, Arc::new(MemoryStore::new())), clock)
    }

    fn limits(per_pair: u32, per_ip: u32) -> Limits {
        limits_on(per_pair, per_ip, 1000).0
    }

    fn allowed(attempt: Result<SignInAttempt, StoreError>) -> bool {
        matches!(attempt, Ok(SignInAttempt::Allowed(_)))
    }

    fn limited(attempt: Result<SignInAttempt, StoreError>) -> Option<Duration> {
        match attempt {
            Ok(SignInAttempt::Limited(retry)) => Some(retry),
            _ => None,
        }
    }

    #[tokio::test]
    async fn sign_in_attempts_count_before_the_password_is_checked() {
        let l = limits(2, 10);
        for _ in 0..2 {
            assert!(allowed(l.sign_in_attempt("Alice", "ip").await));
        }
        // Two attempts still in flight (no outcome yet) use up alice's budget at this address.
        assert!(limited(l.sign_in_attempt("alice", "ip").await).is_some());
        assert!(allowed(l.sign_in_attempt("bob", "ip").await));
    }

    #[tokio::test]
    async fn a_right_password_gives_its_attempt_back() {
        let l = limits(2, 2);
        let Ok(SignInAttempt::Allowed(first)) = l.sign_in_attempt("alice", "ip").await else { panic!("allowed") };
        l.sign_in_succeeded("alice", "ip", &first).await.expect("succeeded");
        assert!(allowed(l.sign_in_attempt("bob", "ip").await));
        // The address has one failure (bob's) and one place left; alice's was given back.
        assert!(allowed(l.sign_in_attempt("carol", "ip").await));
        assert!(limited(l.sign_in_attempt("dave", "ip").await).is_some());
    }

    #[tokio::test]
    async fn a_refused_attempt_does_not_use_up_the_other_budget() {
        let l = limits(1, 3);
        assert!(allowed(l.sign_in_attempt("alice", "ip").await));
        for _ in 0..5 {
            assert!(limited(l.sign_in_attempt("alice", "ip").await).is_some());
        }
        // alice's refused attempts did not count against the address: two places are left.
        for user in ["bob", "carol"] {
            assert!(allowed(l.sign_in_attempt(user, "ip").await), "{user}");
        }
        assert!(limited(l.sign_in_attempt("dave", "ip").await).is_some());
        // The address's refused attempt did not count against dave.
        assert!(allowed(l.sign_in_attempt("dave", "other-ip").await));
    }

    #[tokio::test]
    async fn failures_at_one_address_do_not_lock_the_user_out_at_another() {
        let (l, _) = limits_on(5, 20, 10);
        for _ in 0..5 {
            assert!(allowed(l.sign_in_attempt("alice", "attacker").await));
        }
        // The attacker is throttled, for alice and whatever it tries.
        for _ in 0..20 {
            assert!(limited(l.sign_in_attempt("alice", "attacker").await).is_some());
        }
        // alice, at her own address, goes on to her password.
        let Ok(SignInAttempt::Allowed(hers)) = l.sign_in_attempt("alice", "home").await else { panic!("allowed") };
        l.sign_in_succeeded("alice", "home", &hers).await.expect("succeeded");
        // Her sign-in cleared her name's failures, not the attacker's address.
        assert!(limited(l.sign_in_attempt("alice", "attacker").await).is_some());
    }

    #[tokio::test]
    async fn past_the_username_limit_each_attempt_waits_a_growing_delay() {
        let (l, clock) = limits_on(100, 100, 3);
        // The free failures, from addresses of their own.
        for i in 0..3 {
            assert!(allowed(l.sign_in_attempt("alice", &format!("ip-{i}")).await));
        }
        let mut waits = Vec::new();
        for round in 0..10 {
            // One attempt goes on, and starts the delay the next one waits.
            assert!(allowed(l.sign_in_attempt("alice", &format!("r-{round}")).await), "round {round}");
            let wait = limited(l.sign_in_attempt("ALICE", "elsewhere").await).expect("a delay");
            // Refused attempts do not lengthen it.
            assert_eq!(limited(l.sign_in_attempt("alice", "elsewhere").await), Some(wait));
            waits.push(wait.as_secs());
            clock.advance(wait);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60], "doubling, then at most a minute");
        // Other usernames do not wait.
        assert!(allowed(l.sign_in_attempt("bob", "elsewhere").await));
        // A right password ends the delays.
        let Ok(SignInAttempt::Allowed(right)) = l.sign_in_attempt("alice", "home").await else { panic!("allowed") };
        l.sign_in_succeeded("alice", "home", &right).await.expect("succeeded");
        clock.advance(Duration::from_secs(60));
        for i in 0..3 {
            assert!(allowed(l.sign_in_attempt("alice", &format!("again-{i}")).await), "{i}");
        }
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
}
