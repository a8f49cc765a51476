//! The signing keys of a [`JwtVerifier`](crate::auth::JwtVerifier): a JSON Web Key Set
//! (RFC 7517) given once, or fetched from the issuer's `jwks_uri` and fetched again when a
//! token names a key id it does not know (the issuer rotated its keys).
//!
//! Refetches are rate-limited: at most one per `min_refetch_interval`, and concurrent misses
//! wait for the same fetch. Unknown key ids are otherwise free for an attacker to send, and
//! each must not cost the issuer a request. Only asymmetric signing keys are kept: a key set
//! with a symmetric (`oct`) key would let anyone who can read the set sign tokens.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use url::Url;

use crate::escaped::Escaped;
use crate::verifiers::upstream_http::{FetchError, send};

/// One verification key.
pub(crate) struct Key {
    pub(crate) key: DecodingKey,
    /// The algorithm the set pins the key to (`alg`), if it does.
    pub(crate) alg: Option<Algorithm>,
}

/// The keys of one fetch (or the static set), by key id; keys without one are kept apart.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    unnamed: Vec<Arc<Key>>,
}

impl KeySet {
    /// The usable signing keys of a JWKS document. Keys this verifier cannot use (symmetric,
    /// for encryption, of an unknown type) are skipped, not an error: a set may mix them.
    pub(crate) fn parse(document: &[u8]) -> Result<Self, String> {
        let doc: Value = serde_json::from_slice(document).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let keys = doc.get("keys").and_then(Value::as_array).ok_or("the JWKS has no \"keys\" array")?;
        let mut set = Self::default();
        for value in keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value.clone()) else { continue };
            if !for_verification(&jwk)
                || !matches!(
                    jwk.algorithm,
                    AlgorithmParameters::RSA(_)
                        | AlgorithmParameters::EllipticCurve(_)
                        | AlgorithmParameters::OctetKeyPair(_)
                )
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(a) => match signing_algorithm(a) {
                    Some(alg) => Some(alg),
                    None => continue,
                },
            };
            let key = Arc::new(Key { key, alg });
            match jwk.common.key_id {
                Some(kid) => {
                    set.by_kid.insert(kid, key);
                }
                None => set.unnamed.push(key),
            }
        }
        Ok(set)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.unnamed.is_empty()
    }

    /// The key for a token's `kid`; a token without one may use the set's only unnamed key.
    fn find(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.unnamed.len() == 1 && self.by_kid.is_empty() => self.unnamed.first().cloned(),
            None if self.by_kid.len() == 1 && self.unnamed.is_empty() => self.by_kid.values().next().cloned(),
            None => None,
        }
    }
}

/// Whether a JWK may verify signatures (RFC 7517 §4.2, §4.3): its `use`, when present, is
/// `sig`, and its `key_ops`, when present, include `verify`. The issuer's own labels are
/// respected: a key it marked for anything else is not used to accept tokens.
fn for_verification(jwk: &Jwk) -> bool {
    let usable = matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature));
    let ops = jwk.common.key_operations.as_ref();
    usable && ops.is_none_or(|ops| ops.contains(&KeyOperations::Verify))
}

/// A JWK's `alg` as a signing algorithm; `None` for an algorithm this verifier never uses
/// (HMAC, encryption).
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Why no key could be found for a token.
#[derive(Debug)]
pub(crate) enum KeyMiss {
    /// The set (fresh, or refetched too recently to ask again) has no such key: the token is
    /// invalid.
    Unknown,
    /// The key set could not be fetched: the answer is unknown.
    Unavailable(String),
}

/// Where the keys come from.
pub(crate) enum KeySource {
    /// A set given once; an unknown key id is simply invalid.
    Static(KeySet),
    /// The issuer's `jwks_uri`, cached and refetched on an unknown key id.
    Remote(RemoteKeys),
}

impl KeySource {
    /// The key for a token's `kid`.
    pub(crate) async fn key(&self, kid: Option<&str>) -> Result<Arc<Key>, KeyMiss> {
        match self {
            Self::Static(set) => set.find(kid).ok_or(KeyMiss::Unknown),
            Self::Remote(remote) => remote.key(kid).await,
        }
    }
}

/// A JWKS URL's keys, with the state of the last fetch.
pub(crate) struct RemoteKeys {
    url: Url,
    http: reqwest::Client,
    min_refetch_interval: Duration,
    /// The current set: read by every verification, replaced by a fetch.
    keys: RwLock<Arc<KeySet>>,
    /// The last fetch: when it started and whether it failed. Held across the fetch, so that
    /// concurrent misses wait for one fetch instead of starting their own.
    last_fetch: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl RemoteKeys {
    pub(crate) fn new(url: Url, http: reqwest::Client, min_refetch_interval: Duration) -> Self {
        Self { url, http, min_refetch_interval, keys: RwLock::default(), last_fetch: tokio::sync::Mutex::new(None) }
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) async fn key(&self, kid: Option<&str>) -> Result<Arc<Key>, KeyMiss> {
        if let Some(key) = self.current().find(kid) {
            return Ok(key);
        }
        let mut last = self.last_fetch.lock().await;
        // Another verification may have fetched the key while this one waited.
        if let Some(key) = self.current().find(kid) {
            return Ok(key);
        }
        if let Some((at, outcome)) = last.as_ref()
            && at.elapsed() < self.min_refetch_interval
        {
            return match outcome {
                Ok(()) => Err(KeyMiss::Unknown),
                Err(e) => Err(KeyMiss::Unavailable(e.clone())),
            };
        }
        let started = Instant::now();
        let fetched = self.fetch().await;
        let outcome = match fetched {
            Ok(set) => {
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(url = %Escaped(self.url.as_str()), error = %Escaped(&e), "JWKS fetch failed");
                Err(e)
            }
        };
        *last = Some((started, outcome.clone()));
        drop(last);
        match outcome {
            Ok(()) => self.current().find(kid).ok_or(KeyMiss::Unknown),
            Err(e) => Err(KeyMiss::Unavailable(e)),
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let request = self.http.get(self.url.clone()).header("accept", "application/json");
        let body = send(request, &self.url).await.map_err(|e: FetchError| e.to_string())?;
        let set = KeySet::parse(&body)?;
        if set.is_empty() {
            return Err("the JWKS has no usable signing key".into());
        }
        tracing::info!(url = %Escaped(self.url.as_str()), "JWKS fetched");
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_signing_keys_are_kept() {
        let doc = br#"{"keys":[
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
            {"kty":"EC","kid":"enc","use":"enc","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","kid":"sig","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"ES256"},
            {"kty":"EC","kid":"hs-labelled","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","alg":"HS256"},
            {"kty":"unknown","kid":"odd"},
            {"kty":"EC","kid":"wrap-only","key_ops":["wrapKey"],"crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","kid":"other-use","use":"tls","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","kid":"verify-op","key_ops":["verify"],"crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        let set = KeySet::parse(doc).expect("a valid set");
        assert!(set.find(Some("sig")).is_some_and(|k| k.alg == Some(Algorithm::ES256)));
        assert!(set.find(Some("verify-op")).is_some(), "key_ops with verify");
        for skipped in ["hmac", "enc", "hs-labelled", "odd", "wrap-only", "other-use"] {
            assert!(set.find(Some(skipped)).is_none(), "{skipped}");
        }
        assert!(set.find(None).is_none(), "two keys: a token without kid names neither");
        let single = KeySet::parse(br#"{"keys":[{"kty":"EC","kid":"sig","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#).expect("a valid set");
        assert!(single.find(None).is_some(), "the only key serves a token without kid");
        assert!(KeySet::parse(b"{}").is_err());
        let provider = br#"{"keys":[{"kty":"EC","use":"sig","kid":"key-1","alg":"ES256","crv":"P-256","x":"8hWdjbFSo-xUqO3lagC_MG_Drv-aoW1JQeqXWgvFA5w","y":"q6mQKUAxaS2UHRzjmR1OVFRF7NcIHSOdVzZW6DDZwtA"}]}"#;
        let set = KeySet::parse(provider).expect("a valid set");
        assert!(set.find(Some("key-1")).is_some(), "parsed");
        assert!(KeySet::parse(b"not json").is_err());
    }

    /// A JWKS endpoint on a loopback port that counts its requests.
    async fn counting_jwks(doc: &'static str) -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = Url::parse(&format!("http://{}/jwks", listener.local_addr().expect("addr"))).expect("url");
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    doc.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(doc.as_bytes()).await;
            }
        });
        (url, hits)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_fetch_and_refetches_are_rate_limited() {
        const DOC: &str = r#"{"keys":[{"kty":"EC","kid":"k1","alg":"ES256","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let (url, hits) = counting_jwks(DOC).await;
        let http = crate::verifiers::upstream_http::client().expect("a client");
        let keys = RemoteKeys::new(url, http, Duration::from_secs(60));
        let misses = futures::future::join_all((0..10).map(|_| keys.key(Some("unknown")))).await;
        assert!(misses.iter().all(|m| matches!(m, Err(KeyMiss::Unknown))));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "ten concurrent misses, one fetch");
        assert!(keys.key(Some("k1")).await.is_ok(), "the fetched set serves its keys");
        assert!(matches!(keys.key(Some("other")).await, Err(KeyMiss::Unknown)));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "no refetch inside the interval");
    }

    #[tokio::test]
    async fn an_unreachable_jwks_is_unavailable_not_unknown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = Url::parse(&format!("http://{}/jwks", listener.local_addr().expect("addr"))).expect("url");
        drop(listener);
        let keys =
            RemoteKeys::new(url, crate::verifiers::upstream_http::client().expect("a client"), Duration::from_secs(60));
        assert!(matches!(keys.key(Some("k1")).await, Err(KeyMiss::Unavailable(_))));
        assert!(matches!(keys.key(Some("k1")).await, Err(KeyMiss::Unavailable(_))), "still unknown, not asked again");
    }
}
