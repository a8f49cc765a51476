//! The request id: one per request, in the response's `x-request-id` and, through a task-local
//! that [`logging::WithRequestId`](crate::logging::WithRequestId) reads, in every log line
//! written while the request is served. It comes from the request's `x-request-id` only behind
//! a trusted proxy ([`Config::trusted_proxies`](crate::Config::trusted_proxies) or
//! [`Config::trust_forwarded_for`](crate::Config::trust_forwarded_for)), and only when it is
//! short and plain; otherwise the kit makes one.
//!
//! A task-local, not a `tracing` span: a span costs the subscriber an allocation, a formatted
//! field and bookkeeping on every poll of every request, whether or not anything is logged;
//! the task-local costs a pointer swap per poll and is read only when a line is written.

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};

tokio::task_local! {
    /// The id of the request the current task serves.
    static CURRENT: HeaderValue;
}

/// Run `serve` with `id` as the current request id; returns its output and the id.
pub(crate) async fn scope<F: Future>(id: HeaderValue, serve: F) -> (F::Output, HeaderValue) {
    let mut scoped = pin!(CURRENT.scope(id, serve));
    let output = scoped.as_mut().await;
    // Taken back rather than cloned going in: the first clone of a generated id allocates (its
    // bytes become shared). Nothing else takes it, so it is there.
    let id = scoped.take_value().unwrap_or(HeaderValue::from_static("unknown"));
    (output, id)
}

/// `f` of the current request's id; `None` outside a request.
#[cfg(feature = "logging")]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    // A clone shares the id's bytes. Every id is ASCII (checked when taken, hex when made),
    // so `to_str` does not fail.
    let id = CURRENT.try_with(HeaderValue::clone).ok();
    f(id.as_ref().and_then(|id| id.to_str().ok()))
}

/// The header a proxy sets and the response carries.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a proxy; a longer one is replaced.
const MAX_LEN: usize = 64;

/// The request id for a request with these headers.
pub(crate) fn request_id(headers: &HeaderMap, trusted_proxy: bool) -> HeaderValue {
    if trusted_proxy
        && let Some(id) = headers.get(X_REQUEST_ID)
        && acceptable(id.as_bytes())
    {
        return id.clone();
    }
    generate()
}

/// 1 to 64 characters of letters, digits, `-`, `_`, `.` and `:`: what proxies generate (UUIDs,
/// hex), nothing that could forge a log field or smuggle a control character.
fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// 32 hex digits: a random per-process half and a counter, unique across instances and
/// restarts without a random draw per request. Written by hand, not with `format!`: it runs
/// for every request.
fn generate() -> HeaderValue {
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // Without the OS RNG the ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 32];
    for (i, digit) in id.iter_mut().enumerate() {
        let word = if i < 16 { process } else { n };
        let nibble = (word >> (60 - 4 * (i % 16))) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(id: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static(id));
        h
    }

    #[test]
    fn a_trusted_proxys_plain_id_is_kept() {
        assert_eq!(request_id(&with("3f2c-9a:b_1.x"), true), "3f2c-9a:b_1.x");
    }

    #[test]
    fn an_untrusted_malformed_or_oversized_id_is_replaced() {
        let long: &'static str = Box::leak("a".repeat(MAX_LEN + 1).into_boxed_str());
        for (headers, trusted) in
            [(with("abc"), false), (with("a b"), true), (with("id\"=x"), true), (with(long), true), (with(""), true)]
        {
            let id = request_id(&headers, trusted);
            assert_eq!(id.len(), 32, "{headers:?} trusted={trusted}");
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        }
    }

    #[test]
    fn generated_ids_are_the_process_half_then_the_counter_in_hex() {
        let a = request_id(&HeaderMap::new(), false);
        let b = request_id(&HeaderMap::new(), false);
        assert_eq!(a.len(), 32);
        assert_eq!(a.as_bytes()[..16], b.as_bytes()[..16], "one process half");
        let counter = |id: &HeaderValue| u64::from_str_radix(&id.to_str().expect("ASCII")[16..], 16).expect("hex");
        // Other tests draw ids concurrently: later, not necessarily next.
        assert!(counter(&b) > counter(&a), "{a:?} then {b:?}");
    }

    #[cfg(feature = "logging")]
    #[tokio::test]
    async fn the_current_id_is_the_scopes_and_none_outside() {
        assert_eq!(with_current(|id| id.map(str::to_owned)), None);
        let id = HeaderValue::from_static("abc-1");
        let (inside, id) = scope(id, async {
            tokio::task::yield_now().await;
            with_current(|id| id.map(str::to_owned))
        })
        .await;
        assert_eq!(inside.as_deref(), Some("abc-1"));
        assert_eq!(id, "abc-1", "the id comes back out");
    }
}
