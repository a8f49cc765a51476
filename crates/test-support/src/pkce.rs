//! PKCE (RFC 7636): a code verifier and its S256 challenge, and unique values for names,
//! states and verifiers.

use std::hash::{BuildHasher as _, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// A PKCE verifier and its S256 challenge, different on every [`Pkce::new`].
///
/// ```
/// let pkce = mcp_test_support::Pkce::new();
/// assert_eq!(pkce.verifier.len(), 43);
/// assert_ne!(pkce.verifier, mcp_test_support::Pkce::new().verifier);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// The `code_verifier` the token request sends: 43 base64url characters.
    pub verifier: String,
    /// The `code_challenge` the authorization request sends: [`s256`] of the verifier.
    pub challenge: String,
}

impl Pkce {
    /// A new pair.
    pub fn new() -> Self {
        let verifier = unique("pkce");
        Self { challenge: s256(&verifier), verifier }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// `BASE64URL(SHA256(verifier))`, the S256 challenge of a verifier.
///
/// ```
/// // RFC 7636, appendix B.
/// let challenge = mcp_test_support::s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
/// assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
/// ```
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A 43-character base64url string that differs on every call, also across processes.
///
/// Unique, not secret: tests and probes need values nobody else holds (a verifier, a state,
/// a client name), not values nobody can guess. `label` only keeps uses apart.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let salt = RandomState::new().hash_one((n, nanos, std::process::id()));
    s256(&format!("{label}/{n}/{nanos}/{salt}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_s256_of_the_verifier_and_pairs_differ() {
        let a = Pkce::new();
        let b = Pkce::new();
        assert_eq!(a.challenge, s256(&a.verifier));
        assert_ne!(a.verifier, b.verifier);
        assert!(a.verifier.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a:?}");
    }
}
