//! The request id: one per request, in the span every log line of the request carries and in
//! the response's `x-request-id`. It comes from the request's `x-request-id` only behind a
//! trusted proxy ([`Config::trusted_proxies`](crate::Config::trusted_proxies) or
//! [`Config::trust_forwarded_for`](crate::Config::trust_forwarded_for)), and
//! only when it is short and plain; otherwise the kit makes one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};

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
/// restarts without a random draw per request.
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
    let id = format!("{process:016x}{n:016x}");
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
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
    fn generated_ids_differ() {
        let a = request_id(&HeaderMap::new(), false);
        assert_ne!(a, request_id(&HeaderMap::new(), false));
        assert_eq!(a.len(), 32);
    }
}
