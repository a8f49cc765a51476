//! The guard's cache of verified access tokens, for every [`AuthProvider`](crate::auth::AuthProvider):
//! the MCP hot path answers a token seen recently without a boxed future, a store query or a
//! call to an identity provider.
//!
//! An answer is kept for at most [`Config::token_cache_ttl`](crate::Config::token_cache_ttl)
//! and never past the token's own expiry. A revocation by the built-in authorization server on
//! this instance clears the cache at once; elsewhere (another instance, an external identity
//! provider) a revoked token is accepted for at most the TTL.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::provider::AccessToken;
use crate::secret::TokenHash;

/// Beyond this many cached tokens the cache starts over (it is only a shortcut).
const MAX_CACHED_TOKENS: usize = 100_000;

/// Recently verified access tokens, keyed by the SHA-256 digest of the token (the token itself
/// is never kept).
#[derive(Debug)]
pub(crate) struct VerifiedCache {
    ttl: Duration,
    /// Each token with when it was verified ([`Config::clock`](crate::Config::clock) time).
    map: Mutex<HashMap<TokenHash, (AccessToken, SystemTime), BuildHasherDefault<DigestHasher>>>,
    /// Counts the clears. A verification reads it before asking the provider and caches its
    /// answer only if no clear came in between: an answer read before a revocation must not
    /// outlive it in the cache.
    generation: AtomicU64,
}

/// The cache's keys are SHA-256 digests already: their first bytes are as good a hash as any,
/// and hashing them again (SipHash) would cost more than the lookup. An attacker cannot aim
/// collisions at it without finding SHA-256 preimages.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length, then its bytes: mix in the first eight of each write.
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }
}

impl VerifiedCache {
    /// A cache that trusts an answer for `ttl`; zero turns it off.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, map: Mutex::default(), generation: AtomicU64::new(0) }
    }

    /// Whether answers are cached at all: with a zero TTL the guard need not even hash the token.
    pub(crate) fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The answer for the token with digest `hash`, if it was verified less than the TTL ago
    /// and has not expired by `now`.
    pub(crate) fn get(&self, hash: &TokenHash, now: SystemTime) -> Option<AccessToken> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // A clock set back before the verification is not trusted: ask the provider again.
        let fresh = |at: &SystemTime| now.duration_since(*at).is_ok_and(|age| age < self.ttl);
        map.get(hash).filter(|(t, at)| fresh(at) && t.expires_at > now).map(|(t, _)| t.clone())
    }

    /// The generation to hand to [`VerifiedCache::put`], read before the provider is asked.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Cache `token`, verified at `now`, unless the cache is off or was cleared since
    /// `generation` was read.
    pub(crate) fn put(&self, hash: TokenHash, token: AccessToken, generation: u64, now: SystemTime) {
        if !self.enabled() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Under the lock, which `clear` takes too: no clear can slip between check and insert.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= MAX_CACHED_TOKENS {
            map.clear();
        }
        map.insert(hash, (token, now));
    }

    /// Forget everything: after a revocation on this instance, no cached answer may outlive
    /// it, including one that a verification in flight is about to put.
    pub(crate) fn clear(&self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn token(expires_at: SystemTime) -> AccessToken {
        AccessToken::builder("u1", expires_at).username("alice").client_id("c1").build()
    }

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    /// A verification that read the provider before a revocation cleared the cache finishes
    /// after it: its answer is returned to its caller, but not cached.
    #[test]
    fn a_verification_in_flight_does_not_refill_a_cleared_cache() {
        let cache = VerifiedCache::new(Duration::from_secs(60));
        let hash = TokenHash::of("mcp_at_in-flight");
        let token = token(crate::clock::far_future());

        let before_lookup = cache.generation(); // verification: about to ask the store
        cache.clear(); // revocation on this instance
        cache.put(hash, token.clone(), before_lookup, at(0)); // verification: store answered
        assert_eq!(cache.get(&hash, at(0)), None, "the revoked token came back into the cache");

        // A verification that starts after the clear caches as before.
        let after = cache.generation();
        cache.put(hash, token.clone(), after, at(0));
        assert_eq!(cache.get(&hash, at(0)), Some(token));
    }

    #[test]
    fn an_answer_is_never_kept_past_the_tokens_expiry() {
        let cache = VerifiedCache::new(Duration::from_secs(60));
        let hash = TokenHash::of("mcp_at_short-lived");
        cache.put(hash, token(at(1_000)), cache.generation(), at(0));
        assert_eq!(cache.get(&hash, at(999)), Some(token(at(1_000))));
        assert_eq!(cache.get(&hash, at(1_000)), None, "served at the instant it expired");
        assert_eq!(cache.get(&hash, at(5_000)), None, "served after it expired");
    }

    #[test]
    fn an_answer_is_never_kept_past_the_ttl() {
        let cache = VerifiedCache::new(Duration::from_millis(250));
        let hash = TokenHash::of("mcp_at_ttl");
        let t = token(crate::clock::far_future());
        cache.put(hash, t.clone(), cache.generation(), at(1_000));
        assert_eq!(cache.get(&hash, at(1_249)), Some(t));
        assert_eq!(cache.get(&hash, at(1_250)), None, "served at the end of the TTL");
        assert_eq!(cache.get(&hash, at(999)), None, "trusted a clock set back before the verification");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = VerifiedCache::new(Duration::ZERO);
        assert!(!cache.enabled());
        let hash = TokenHash::of("mcp_at_off");
        cache.put(hash, token(crate::clock::far_future()), cache.generation(), at(0));
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.get(&hash, at(0)), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedCache::new(Duration::from_secs(60));
        let t = token(crate::clock::far_future());
        for i in 0..MAX_CACHED_TOKENS {
            cache.put(TokenHash::of(&format!("mcp_at_{i}")), t.clone(), cache.generation(), at(0));
        }
        assert_eq!(cache.len(), MAX_CACHED_TOKENS);
        let last = TokenHash::of("mcp_at_one-more");
        cache.put(last, t.clone(), cache.generation(), at(0));
        assert_eq!(cache.len(), 1, "a full cache starts over");
        assert_eq!(cache.get(&last, at(0)), Some(t));
    }
}
