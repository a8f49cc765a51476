//! Fixed-window rate limiting, in memory: failed sign-ins per username and per client address,
//! and requests per client address at the OAuth endpoints. Over the limit, the caller gets
//! 429 with `Retry-After`; when the window ends, everyone (the real user too) may try again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts events per key in fixed windows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

/// The most keys one limiter tracks: beyond it, the oldest windows are dropped first, so an
/// attacker rotating keys cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    /// At most `limit` events per key per `window`; a limit of 0 turns the limiter off.
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, counts: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry_after)` when `key` has used up its window, without counting.
    pub(crate) fn check(&self, key: &str) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        match counts.get(key) {
            Some((start, n)) if *n >= self.limit && start.elapsed() < self.window => {
                Err(self.window.saturating_sub(start.elapsed()))
            }
            _ => Ok(()),
        }
    }

    /// Count one event for `key`; `Err(retry_after)` if that went over the limit.
    pub(crate) fn hit(&self, key: &str) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= MAX_KEYS && !counts.contains_key(key) {
            let window = self.window;
            counts.retain(|_, (start, _)| start.elapsed() < window);
            if counts.len() >= MAX_KEYS {
                counts.clear();
            }
        }
        let entry = counts.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit { Err(self.window.saturating_sub(entry.0.elapsed())) } else { Ok(()) }
    }

    /// Forget `key` (a successful sign-in clears its username's failures).
    pub(crate) fn reset(&self, key: &str) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Drop finished windows.
    pub(crate) fn sweep(&self) {
        let window = self.window;
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, (start, _)| start.elapsed() < window);
    }
}

/// The limiters of one server.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) login_failures_by_user: RateLimiter,
    pub(crate) login_failures_by_ip: RateLimiter,
    pub(crate) oauth_requests_by_ip: RateLimiter,
}

impl Limits {
    pub(crate) fn new(config: &crate::config::Config) -> Self {
        let window = config.login_failure_window;
        Self {
            login_failures_by_user: RateLimiter::new(config.login_failures_per_user, window),
            login_failures_by_ip: RateLimiter::new(config.login_failures_per_ip, window),
            oauth_requests_by_ip: RateLimiter::new(config.oauth_requests_per_minute, Duration::from_secs(60)),
        }
    }

    pub(crate) fn sweep(&self) {
        self.login_failures_by_user.sweep();
        self.login_failures_by_ip.sweep();
        self.oauth_requests_by_ip.sweep();
    }
}

/// The address a request came from: the TCP peer, or with `trust_forwarded_for` the
/// right-most `X-Forwarded-For` entry (the one our own proxy appended; entries left of it are
/// whatever the client claimed).
pub(crate) fn client_ip(headers: &http::HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return ip.to_string();
    }
    peer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_recovers_after_the_window() {
        let l = RateLimiter::new(2, Duration::from_millis(50));
        assert!(l.hit("k").is_ok());
        assert!(l.hit("k").is_ok());
        assert!(l.check("k").is_err());
        assert!(l.hit("k").is_err());
        assert!(l.check("other").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.check("k").is_ok());
        assert!(l.hit("k").is_ok());
        l.reset("k");
        assert!(l.check("k").is_ok());
    }

    #[test]
    fn zero_means_off() {
        let l = RateLimiter::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(l.hit("k").is_ok());
        }
    }

    #[test]
    fn forwarded_for_is_trusted_only_when_configured() {
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", http::HeaderValue::from_static("1.1.1.1, 2.2.2.2"));
        let peer = Some("127.0.0.1".parse().expect("ip"));
        assert_eq!(client_ip(&h, peer, false), "127.0.0.1");
        assert_eq!(client_ip(&h, peer, true), "2.2.2.2");
    }
}
