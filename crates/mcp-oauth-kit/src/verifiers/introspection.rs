//! [`IntrospectionVerifier`]: an [`AuthProvider`] that asks an external authorization server
//! about each token, by RFC 7662 token introspection.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use url::Url;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::StoreError;
use crate::escaped::Escaped;
use crate::provider::{AccessToken, AuthProvider, TokenRejection};
use crate::secret::Password;
use crate::verifiers::token_claims::ClaimRules;
use crate::verifiers::upstream_http::{self, checked_url};

/// Beyond this a bearer token is not sent anywhere.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why an [`IntrospectionVerifier`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionVerifierError {
    /// The issuer or endpoint URL is malformed or not `https` (plain `http` is allowed only to
    /// a loopback host).
    #[error("{0}")]
    InvalidUrl(String),
    /// The HTTP client could not be built.
    #[error("cannot set up token introspection: {0}")]
    Setup(String),
}

/// Verifies access tokens by asking the authorization server that issued them (RFC 7662 token
/// introspection), for a server in resource-server mode
/// ([`McpServerBuilder::auth_provider`](crate::McpServerBuilder::auth_provider)): for opaque
/// tokens, or when a revocation upstream must take effect within seconds.
///
/// It posts the token to the introspection endpoint, authenticated as a confidential client
/// by `client_secret_basic`, and accepts it when the answer is `"active": true`, names this
/// server's resource in `aud` (RFC 8707), has an `exp` in the future, (when present) the
/// issuer as `iss` and `Bearer` as `token_type`, and no `cnf` (a sender-constrained token
/// needs a proof a bearer request does not carry); an answer without `sub` (a client-credentials token) has its
/// `client_id` as the subject. The caller is built as [`JwtVerifier`](crate::auth::JwtVerifier)
/// builds it: scopes from `scope`, `scp` and `permissions`; the username from `username`,
/// else `preferred_username`, else the subject; every other field as a claim.
///
/// An endpoint that cannot be reached or answers with an error (including a refusal of this
/// verifier's own credentials) makes the request a 503, never a 401: the client's token may
/// be fine, and it must not throw it away.
///
/// It keeps no cache of its own: the kit caches every provider's positive answers for
/// [`Config::token_cache_ttl`] (never past `exp`), so a token is introspected at most once per
/// that time per instance, and a revocation upstream takes effect within it. Raise that TTL to
/// ask less often.
///
/// ```no_run
/// use mcp_oauth_kit::auth::IntrospectionVerifier;
/// use mcp_oauth_kit::{Config, McpServer, Password, Tools};
///
/// # async fn run(tools: Tools) -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::new("https://mcp.example.com")?;
/// let secret = Password::new(std::env::var("INTROSPECTION_CLIENT_SECRET")?);
/// let verifier = IntrospectionVerifier::builder(
///     &config,
///     "https://login.example.com/realms/acme",
///     "https://login.example.com/realms/acme/protocol/openid-connect/token/introspect",
/// )
/// .client_credentials("mcp-resource-server", secret)
/// .build()?;
/// McpServer::builder(config).auth_provider(verifier).tools(tools).build()?.run().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct IntrospectionVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    endpoint: Url,
    /// The `Authorization: Basic …` value, built once.
    authorization: Password,
    audience: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("issuer", &self.inner.issuer)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

/// Builds an [`IntrospectionVerifier`]; start with [`IntrospectionVerifier::builder`].
#[must_use]
pub struct IntrospectionVerifierBuilder {
    issuer: String,
    endpoint: String,
    client_id: String,
    client_secret: Password,
    audience: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("issuer", &self.issuer)
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifier {
    /// Start building a verifier that asks `endpoint`, the introspection endpoint of the
    /// authorization server `issuer` (advertised in the protected-resource metadata), for the
    /// server configured by `config` (its resource is the audience, its clock the time).
    pub fn builder(
        config: &Config,
        issuer: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder {
            issuer: issuer.into(),
            endpoint: endpoint.into(),
            client_id: String::new(),
            client_secret: Password::new(""),
            audience: config.resource(),
            clock: config.clock.clone(),
        }
    }
}

impl IntrospectionVerifierBuilder {
    /// This resource server's client id and secret at the authorization server, sent as
    /// `client_secret_basic`.
    pub fn client_credentials(mut self, client_id: impl Into<String>, client_secret: Password) -> Self {
        self.client_id = client_id.into();
        self.client_secret = client_secret;
        self
    }

    /// The audience answers must name (default: [`Config::resource`], `{PUBLIC_URL}/mcp`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The verifier.
    ///
    /// # Errors
    /// [`IntrospectionVerifierError::InvalidUrl`] for a bad issuer or endpoint URL;
    /// [`IntrospectionVerifierError::Setup`] when the HTTP client cannot be built.
    pub fn build(self) -> Result<IntrospectionVerifier, IntrospectionVerifierError> {
        Url::parse(&self.issuer).map_err(|e| IntrospectionVerifierError::InvalidUrl(format!("the issuer: {e}")))?;
        let endpoint = checked_url(&self.endpoint).map_err(IntrospectionVerifierError::InvalidUrl)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(&self.client_id), encode(self.client_secret.expose()));
        let authorization = Password::new(format!("Basic {}", STANDARD.encode(pair)));
        let http = upstream_http::client().map_err(|e| IntrospectionVerifierError::Setup(e.to_string()))?;
        Ok(IntrospectionVerifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                endpoint,
                authorization,
                audience: self.audience,
                http,
                clock: self.clock,
            }),
        })
    }
}

/// A failure that leaves the token's validity unknown: a 503 for the client.
fn unavailable(why: String) -> TokenRejection {
    TokenRejection::Backend(StoreError::Backend(why.into()))
}

impl Inner {
    async fn verify(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::Invalid);
        }
        let request = self
            .http
            .post(self.endpoint.clone())
            .header("authorization", self.authorization.expose())
            .header("accept", "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        let body = upstream_http::send(request, &self.endpoint).await.map_err(|e| {
            tracing::warn!(error = %Escaped(&e.to_string()), "token introspection failed");
            unavailable(format!("token introspection failed: {e}"))
        })?;
        let answer: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("the introspection answer is not a JSON object: {e}")))?;
        self.caller(answer)
    }

    /// The caller an introspection answer describes, if it is an active bearer access token
    /// for this resource.
    fn caller(&self, mut answer: Map<String, Value>) -> Result<AccessToken, TokenRejection> {
        if answer.get("active") != Some(&Value::Bool(true)) {
            return Err(TokenRejection::Invalid);
        }
        // RFC 7662 §2.2: `token_type` is an RFC 6749 §7.1 type. Anything but a bearer token
        // (a DPoP-bound token, or a refresh token on servers that name it here) is not
        // something a bearer request may present.
        match answer.get("token_type") {
            None => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
            Some(_) => return Err(TokenRejection::Invalid),
        }
        // `sub` is optional in RFC 7662; a token without a user (client credentials) acts for
        // its client.
        if !answer.contains_key("sub")
            && let Some(client) = answer.get("client_id").cloned()
        {
            answer.insert("sub".into(), client);
        }
        let rules = ClaimRules {
            issuer: answer.contains_key("iss").then_some(self.issuer.as_str()),
            audience: &self.audience,
            username_claims: &["username", "preferred_username"],
            clock_skew: Duration::from_secs(60),
            now: self.clock.now(),
        };
        rules.caller(answer)
    }
}

#[async_trait]
impl AuthProvider for IntrospectionVerifier {
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        self.inner.verify(token).await
    }

    fn authorization_servers(&self) -> Vec<String> {
        vec![self.inner.issuer.clone()]
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn verifier() -> IntrospectionVerifier {
        let config = Config::new("https://mcp.example.com").expect("a config");
        IntrospectionVerifier::builder(&config, "https://idp.example.com", "https://idp.example.com/introspect")
            .client_credentials("rs", Password::new("s3cret"))
            .build()
            .expect("a verifier")
    }

    fn answer(extra: Value) -> Map<String, Value> {
        let exp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() + 300;
        let mut base = json!({ "active": true, "sub": "u-1", "aud": "https://mcp.example.com/mcp", "exp": exp });
        base.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        base.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_active_bearer_answers_describe_a_caller() {
        let v = verifier();
        assert!(v.inner.caller(answer(json!({}))).is_ok(), "no token_type");
        assert!(v.inner.caller(answer(json!({ "token_type": "Bearer" }))).is_ok());
        assert!(v.inner.caller(answer(json!({ "token_type": "bearer" }))).is_ok(), "case-insensitive");
        for refused in [
            json!({ "token_type": "DPoP" }),
            json!({ "token_type": "refresh_token" }),
            json!({ "token_type": 1 }),
            json!({ "active": "true" }),
            json!({ "active": false }),
            json!({ "exp": 1 }),
        ] {
            assert!(matches!(v.inner.caller(answer(refused.clone())), Err(TokenRejection::Invalid)), "{refused}");
        }
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let config = Config::new("https://mcp.example.com").expect("a config");
        let builder =
            IntrospectionVerifier::builder(&config, "https://idp.example.com", "https://idp.example.com/introspect")
                .client_credentials("rs", Password::new("s3cret"));
        let shown = format!("{builder:?} {:?}", verifier());
        assert!(!shown.contains("s3cret") && !shown.contains(&STANDARD.encode("rs:s3cret")), "{shown}");
    }
}
