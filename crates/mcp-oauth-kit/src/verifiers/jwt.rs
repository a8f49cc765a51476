//! [`JwtVerifier`]: an [`AuthProvider`] for JWT access tokens (RFC 9068) issued by an external
//! authorization server, checked against its signing keys (RFC 7517 JWKS).
//!
//! A token is accepted when its signature verifies with a key of the issuer under one of the
//! pinned algorithms, its `iss` is the issuer, its `aud` names this server's MCP endpoint
//! (RFC 8707), its `exp` is in the future, its `nbf` and `iat` are not (within the clock
//! skew), it has a `sub`, and no `cnf` (it is not bound to a key, RFC 9449 / RFC 8705).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use url::Url;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::StoreError;
use crate::escaped::Escaped;
use crate::provider::{AccessToken, AuthProvider, TokenRejection};
use crate::verifiers::jwks::{KeyMiss, KeySet, KeySource, RemoteKeys};
use crate::verifiers::token_claims::ClaimRules;
use crate::verifiers::upstream_http::{self, checked_url};

/// Beyond this a bearer token is not even parsed.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The default tolerance for the issuer's clock: `nbf` and `iat` may be this far ahead.
const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The default shortest time between two fetches of the key set.
const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// A JWS algorithm a [`JwtVerifier`] may accept. There is no HMAC (`HS256`, …) and no `none`:
/// a verifier that holds only public keys must never accept a token "signed" with one of them
/// as a shared secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what most identity providers sign with.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// Why a [`JwtVerifier`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtVerifierError {
    /// A URL (issuer, JWKS, metadata) is malformed or not `https` (plain `http` is allowed
    /// only to a loopback host).
    #[error("{0}")]
    InvalidUrl(String),
    /// Neither [`JwtVerifierBuilder::jwks_url`] nor [`JwtVerifierBuilder::static_jwks`] was given.
    #[error("a JWT verifier needs its issuer's keys: call jwks_url, static_jwks or discover")]
    NoKeys,
    /// The static key set is malformed or has no usable signing key.
    #[error("the static JWKS is unusable: {0}")]
    InvalidJwks(String),
    /// No algorithm is allowed.
    #[error("a JWT verifier needs at least one allowed algorithm")]
    NoAlgorithms,
    /// The issuer's metadata could not be fetched or does not fit (wrong `issuer`, no `jwks_uri`).
    #[error("OpenID discovery failed: {0}")]
    Discovery(String),
    /// The HTTP client could not be built, or the JWT library has no usable crypto backend (a
    /// build that enables both of its backends).
    #[error("cannot set up JWT verification: {0}")]
    Setup(String),
}

/// Verifies JWT access tokens minted by an external authorization server (Keycloak, Auth0,
/// Okta, Entra ID, …), for a server in resource-server mode
/// ([`McpServerBuilder::auth_provider`](crate::McpServerBuilder::auth_provider)). The
/// protected-resource metadata then names the issuer, which is where MCP clients sign in.
///
/// What it checks, and its defaults:
/// - the signature, with the issuer's keys from [`jwks_url`](JwtVerifierBuilder::jwks_url)
///   (cached; fetched again when a token names an unknown `kid`, at most once per
///   [`min_refetch_interval`](JwtVerifierBuilder::min_refetch_interval), default 30 s) or
///   [`static_jwks`](JwtVerifierBuilder::static_jwks);
/// - the algorithm, among [`algorithms`](JwtVerifierBuilder::algorithms) (default `RS256` and
///   `ES256`); never `none` or HMAC; the header's `typ`, when present, is `JWT` or an
///   access-token type (`at+jwt`), so that the issuer's other JWTs (logout tokens, security
///   events) are not taken for access tokens;
/// - `iss` equal to the issuer; `aud` (a string or an array) naming
///   [`audience`](JwtVerifierBuilder::audience), by default this server's
///   [`Config::resource`] (`{PUBLIC_URL}/mcp`);
/// - `exp` required and in the future, exactly: the kit never serves a caller past its
///   expiry. `nbf` and `iat`, when present, may be ahead of this server's clock by at most
///   [`clock_skew`](JwtVerifierBuilder::clock_skew) (default 60 s). The time comes from
///   [`Config::clock`];
/// - no `cnf` claim: a token bound to a key (DPoP, mutual TLS) is refused, since a bearer
///   request carries no proof of that key.
///
/// The caller it builds: `sub` as the subject; the username from
/// [`username_claim`](JwtVerifierBuilder::username_claim) (default `preferred_username`, else
/// the subject); the client from `client_id` or `azp`; the scopes from `scope` (space
/// separated), `scp` (an array or a string) and `permissions` (an array), together; every
/// other claim (`name`, `email`, `groups`, …) as the caller's claims.
///
/// ```no_run
/// use mcp_oauth_kit::auth::JwtVerifier;
/// use mcp_oauth_kit::{Config, McpServer, Tools};
///
/// # async fn run(tools: Tools) -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::new("https://mcp.example.com")?;
/// let verifier = JwtVerifier::builder(&config, "https://login.example.com/realms/acme")
///     .discover() // reads jwks_uri from the issuer's /.well-known/openid-configuration
///     .await?
///     .build()?;
/// McpServer::builder(config).auth_provider(verifier).tools(tools).build()?.run().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    keys: KeySource,
    /// The allowed algorithms: a token's header must name one.
    algorithms: Vec<Algorithm>,
    clock_skew: Duration,
    username_claim: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwtVerifier`]; start with [`JwtVerifier::builder`].
#[must_use]
pub struct JwtVerifierBuilder {
    issuer: String,
    audience: String,
    jwks_url: Option<String>,
    static_jwks: Option<String>,
    algorithms: Vec<JwtAlgorithm>,
    clock_skew: Duration,
    min_refetch_interval: Duration,
    username_claim: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JwtVerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_url", &self.jwks_url)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Start building a verifier of tokens whose `iss` is `issuer`, for the server configured
    /// by `config` (its resource is the audience, its clock the time).
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_oauth_kit::auth::{JwtAlgorithm, JwtVerifier};
    /// use mcp_oauth_kit::Config;
    ///
    /// let config = Config::new("https://mcp.example.com")?;
    /// let verifier = JwtVerifier::builder(&config, "https://acme.eu.auth0.com/")
    ///     .jwks_url("https://acme.eu.auth0.com/.well-known/jwks.json")
    ///     .algorithms([JwtAlgorithm::RS256])
    ///     .clock_skew(Duration::from_secs(30))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(config: &Config, issuer: impl Into<String>) -> JwtVerifierBuilder {
        JwtVerifierBuilder {
            issuer: issuer.into(),
            audience: config.resource(),
            jwks_url: None,
            static_jwks: None,
            algorithms: vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256],
            clock_skew: DEFAULT_CLOCK_SKEW,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            username_claim: "preferred_username".into(),
            clock: config.clock.clone(),
        }
    }
}

impl JwtVerifierBuilder {
    /// Fetch the issuer's keys from this URL (`https`; plain `http` only to a loopback host).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Use this JSON Web Key Set (the JSON text of `{"keys": [...]}`) and never fetch keys:
    /// for an issuer whose keys you pin by hand.
    ///
    /// ```
    /// # use mcp_oauth_kit::{Config, auth::JwtVerifier};
    /// # let config = Config::new("https://mcp.example.com")?;
    /// let jwks = r#"{"keys":[{"kty":"EC","kid":"k1","alg":"ES256","crv":"P-256",
    ///     "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    ///     "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    /// let verifier = JwtVerifier::builder(&config, "https://issuer.example.com").static_jwks(jwks).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn static_jwks(mut self, jwks_json: impl Into<String>) -> Self {
        self.static_jwks = Some(jwks_json.into());
        self
    }

    /// Read the JWKS URL from the issuer's OpenID Connect discovery document
    /// (`{issuer}/.well-known/openid-configuration`), whose `issuer` must be the issuer.
    ///
    /// # Errors
    /// [`JwtVerifierError::Discovery`] when the document cannot be fetched or does not fit;
    /// [`JwtVerifierError::InvalidUrl`] for an issuer that is not `https` (or loopback `http`).
    pub async fn discover(self) -> Result<Self, JwtVerifierError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let url = checked_url(&url).map_err(JwtVerifierError::InvalidUrl)?;
        let http = upstream_http::client().map_err(|e| JwtVerifierError::Setup(e.to_string()))?;
        let request = http.get(url.clone()).header("accept", "application/json");
        let body = upstream_http::send(request, &url).await.map_err(|e| JwtVerifierError::Discovery(e.to_string()))?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| JwtVerifierError::Discovery(format!("the metadata is not JSON: {e}")))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(JwtVerifierError::Discovery(format!("the metadata's issuer is not {}", self.issuer)));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| JwtVerifierError::Discovery("the metadata has no jwks_uri".into()))?;
        Ok(self.jwks_url(jwks_uri))
    }

    /// The audience tokens must name (default: [`Config::resource`], `{PUBLIC_URL}/mcp`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The algorithms a token may be signed with (default `RS256` and `ES256`).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = JwtAlgorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How far ahead of this server's clock a token's `nbf` and `iat` may be (default 60 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The shortest time between two fetches of the key set (default 30 s). A token with an
    /// unknown `kid` inside it is refused without asking the issuer.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// The claim that holds the username (default `preferred_username`); the subject when a
    /// token lacks it.
    pub fn username_claim(mut self, claim: impl Into<String>) -> Self {
        self.username_claim = claim.into();
        self
    }

    /// The verifier.
    ///
    /// # Errors
    /// [`JwtVerifierError::NoKeys`] without a key source, [`JwtVerifierError::InvalidUrl`]
    /// for a bad issuer or JWKS URL, [`JwtVerifierError::InvalidJwks`] for an unusable static
    /// set, [`JwtVerifierError::NoAlgorithms`] for an empty algorithm list.
    pub fn build(self) -> Result<JwtVerifier, JwtVerifierError> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(JwtVerifierError::Setup("jsonwebtoken has no single crypto backend".into()));
        }
        Url::parse(&self.issuer).map_err(|e| JwtVerifierError::InvalidUrl(format!("the issuer: {e}")))?;
        if self.algorithms.is_empty() {
            return Err(JwtVerifierError::NoAlgorithms);
        }
        let keys = match (self.static_jwks, self.jwks_url) {
            (Some(json), _) => {
                let set = KeySet::parse(json.as_bytes()).map_err(JwtVerifierError::InvalidJwks)?;
                if set.is_empty() {
                    return Err(JwtVerifierError::InvalidJwks("no usable signing key".into()));
                }
                KeySource::Static(set)
            }
            (None, Some(url)) => {
                let url = checked_url(&url).map_err(JwtVerifierError::InvalidUrl)?;
                let http = upstream_http::client().map_err(|e| JwtVerifierError::Setup(e.to_string()))?;
                KeySource::Remote(RemoteKeys::new(url, http, self.min_refetch_interval))
            }
            (None, None) => return Err(JwtVerifierError::NoKeys),
        };
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audience: self.audience,
                keys,
                algorithms: self.algorithms.iter().map(|a| a.to_jsonwebtoken()).collect(),
                clock_skew: self.clock_skew,
                username_claim: self.username_claim,
                clock: self.clock,
            }),
        })
    }
}

impl Inner {
    async fn verify(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES || token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(TokenRejection::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Invalid)?;
        if !self.algorithms.contains(&header.alg) || !access_token_type(header.typ.as_deref()) {
            return Err(TokenRejection::Invalid);
        }
        let key = match self.keys.key(header.kid.as_deref()).await {
            Ok(key) => key,
            Err(KeyMiss::Unknown) => return Err(TokenRejection::Invalid),
            Err(KeyMiss::Unavailable(why)) => {
                return Err(TokenRejection::Backend(StoreError::Backend(
                    format!("the issuer's keys are unavailable: {why}").into(),
                )));
            }
        };
        if key.alg.is_some_and(|alg| alg != header.alg) || key.key.family() != header.alg.family() {
            return Err(TokenRejection::Invalid);
        }
        // The signature under the header's algorithm only (jsonwebtoken wants every algorithm
        // it is given to suit the key); the claims are checked below, on the kit's clock.
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| {
            tracing::debug!(error = %Escaped(&e.to_string()), "JWT refused");
            TokenRejection::Invalid
        })?;
        let rules = ClaimRules {
            issuer: Some(&self.issuer),
            audience: &self.audience,
            username_claims: &[&self.username_claim],
            clock_skew: self.clock_skew,
            now: self.clock.now(),
        };
        rules.caller(data.claims)
    }
}

/// Whether a JWT's header `typ` allows it to be an access token (RFC 8725 §3.11, RFC 9068
/// §2.1): absent, the generic `JWT`, or an access-token type (`at+jwt`, and vendor forms such
/// as `application/okta-internal-at+jwt`). An issuer signs other JWTs with the same keys
/// (logout tokens, security events, ...), and their explicit type keeps them out.
fn access_token_type(typ: Option<&str>) -> bool {
    typ.is_none_or(|typ| {
        let typ = typ.to_ascii_lowercase();
        typ == "jwt"
            || typ == "application/jwt"
            || typ == "at+jwt"
            || typ.ends_with("-at+jwt")
            || typ.ends_with("/at+jwt")
    })
}

#[async_trait]
impl AuthProvider for JwtVerifier {
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        self.inner.verify(token).await
    }

    fn authorization_servers(&self) -> Vec<String> {
        vec![self.inner.issuer.clone()]
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.example.com";

    /// A fresh P-256 key: its signing key, and its public JWK with `kid` "k" and `alg`.
    fn p256(alg: &str) -> (EncodingKey, String) {
        let pair = rcgen::KeyPair::generate().expect("a key");
        let point = pair.public_key_raw();
        let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..65]));
        let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": "k", "alg": alg, "x": x, "y": y });
        (EncodingKey::from_ec_der(&pair.serialize_der()), json!({ "keys": [jwk] }).to_string())
    }

    fn verifier(jwks: String) -> JwtVerifier {
        let config = Config::new("https://mcp.example.com").expect("a config");
        JwtVerifier::builder(&config, ISSUER)
            .static_jwks(jwks)
            .algorithms([JwtAlgorithm::ES256, JwtAlgorithm::ES384, JwtAlgorithm::RS256])
            .build()
            .expect("a verifier")
    }

    fn claims() -> Value {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
        json!({ "iss": ISSUER, "aud": "https://mcp.example.com/mcp", "sub": "u-1", "exp": now + 300 })
    }

    /// `header` (JSON) and the claims, signed ES256 by `key` whatever the header says.
    fn signed(header: &Value, key: &EncodingKey) -> String {
        let message =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims().to_string()));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, Algorithm::ES256).expect("sign");
        format!("{message}.{signature}")
    }

    #[tokio::test]
    async fn the_key_decides_the_algorithm_not_the_header() {
        let (key, jwks) = p256("ES256");
        let v = verifier(jwks);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k".into());
        let good = jsonwebtoken::encode(&header, &claims(), &key).expect("sign");
        assert!(v.verify_token(&good).await.is_ok(), "control: the key's own algorithm");

        // The same key, published as an ES384 key: an ES256 signature by it is not accepted,
        // though the signature itself verifies.
        let (key, jwks) = p256("ES384");
        let pinned_elsewhere = jsonwebtoken::encode(&header, &claims(), &key).expect("sign");
        assert!(matches!(verifier(jwks.clone()).verify_token(&pinned_elsewhere).await, Err(TokenRejection::Invalid)));

        // An RSA algorithm named for an EC key.
        let rsa_on_ec = signed(&json!({ "alg": "RS256", "kid": "k" }), &key);
        let unpinned = jwks.replace(r#""alg":"ES384","#, "");
        assert!(!unpinned.contains("alg"), "the key has no alg of its own");
        assert!(matches!(verifier(unpinned).verify_token(&rsa_on_ec).await, Err(TokenRejection::Invalid)));
    }

    /// RFC 7515 §4.1.11: an extension marked critical must be understood. jsonwebtoken's
    /// header parsing refuses every one but `b64`; this pins that across its upgrades.
    #[tokio::test]
    async fn critical_header_extensions_are_refused() {
        let (key, jwks) = p256("ES256");
        let v = verifier(jwks);
        let plain = signed(&json!({ "alg": "ES256", "kid": "k" }), &key);
        assert!(v.verify_token(&plain).await.is_ok(), "control: the same signing without crit");
        let critical = signed(&json!({ "alg": "ES256", "kid": "k", "crit": ["urn:example:policy"] }), &key);
        assert!(matches!(v.verify_token(&critical).await, Err(TokenRejection::Invalid)));
    }
}
