//! [`Clock`]: where the kit reads the time of day. Every expiry the kit decides on (tokens,
//! codes, pending sign-ins, sign-in sessions, remembered consent, rate-limit windows, the
//! verified-token cache, the sweeper) compares against [`Clock::now`], so a test that sets a
//! [`ManualClock`] checks expiry to the millisecond instead of sleeping.
//!
//! Times are [`SystemTime`]s, not `Instant`s: they are stored, survive a restart and mean the
//! same on every instance sharing a store. Only local waits (I/O timeouts, the shutdown drain)
//! use `Instant` or Tokio's timers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time. The kit reads it through
/// [`Config::clock`](crate::Config::clock), which [`McpServerBuilder::clock`](crate::McpServerBuilder::clock)
/// sets; [`SystemClock`] is the default.
///
/// ```
/// use std::time::SystemTime;
/// use mcp_oauth_kit::clock::Clock;
///
/// /// A clock that lags ten seconds behind, say to mirror an upstream's skew.
/// #[derive(Debug)]
/// struct Lagging;
///
/// impl Clock for Lagging {
///     fn now(&self) -> SystemTime {
///         SystemTime::now() - std::time::Duration::from_secs(10)
///     }
/// }
/// assert!(Lagging.now() < SystemTime::now());
/// ```
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

/// The operating system's clock ([`SystemTime::now`]): the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to, for tests: expiry becomes exact and instant.
/// Clones share one time, so keep a clone to advance the clock a server reads.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use mcp_oauth_kit::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// let server_side = clock.clone(); // give this one to McpServerBuilder::clock
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(server_side.now(), UNIX_EPOCH + Duration::from_secs(1_700_003_600));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use mcp_oauth_kit::clock::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new(UNIX_EPOCH).now(), UNIX_EPOCH);
    /// ```
    pub fn new(start: SystemTime) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// A clock standing at the system's current time, whole milliseconds (what a SQL store
    /// keeps), so that times read back from a store equal the ones written.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use mcp_oauth_kit::clock::{Clock, ManualClock};
    ///
    /// let since_epoch = ManualClock::starting_now().now().duration_since(UNIX_EPOCH).unwrap();
    /// assert_eq!(since_epoch.subsec_nanos() % 1_000_000, 0);
    /// ```
    pub fn starting_now() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let whole_millis = Duration::from_millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX));
        Self::new(UNIX_EPOCH + whole_millis)
    }

    /// Move the clock forward by `by`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use mcp_oauth_kit::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH);
    /// clock.advance(Duration::from_secs(61)); // past a 60 s code lifetime
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(61));
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    /// Put the clock at `to` (backwards too).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use mcp_oauth_kit::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
    /// clock.set(UNIX_EPOCH); // a clock that steps back, as NTP may make the system's do
    /// assert_eq!(clock.now(), UNIX_EPOCH);
    /// ```
    pub fn set(&self, to: SystemTime) {
        *self.lock() = to;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        // A `SystemTime` cannot be left half-written: a poisoned lock still holds a valid time.
        self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}

/// The time stores use for "no end" (the year 9999): later than any real expiry, and
/// representable on every platform and in a SQL store's millisecond column.
pub(crate) fn far_future() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// `t` plus `d`, saturating at [`far_future`] (a configured lifetime of centuries is "never").
pub(crate) fn later(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d).map_or_else(far_future, |x| x.min(far_future()))
}

/// `t` minus `d`, saturating at the Unix epoch (no stored time is earlier).
pub(crate) fn earlier(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_sub(d).map_or(UNIX_EPOCH, |x| x.max(UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = ManualClock::new(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1));
        assert_eq!(shared.now(), start + Duration::from_millis(1));
        shared.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn saturating_arithmetic() {
        let t = UNIX_EPOCH + Duration::from_secs(10);
        assert_eq!(later(t, Duration::from_secs(5)), UNIX_EPOCH + Duration::from_secs(15));
        assert_eq!(later(t, Duration::MAX), far_future());
        assert_eq!(earlier(t, Duration::from_secs(20)), UNIX_EPOCH);
        assert_eq!(earlier(t, Duration::from_secs(4)), UNIX_EPOCH + Duration::from_secs(6));
    }
}
