//! Upstream tokens for tools: a user's access and refresh tokens at an upstream identity
//! provider, kept server-side so that a tool can call that provider's API on the user's
//! behalf, never sent to the MCP client (no token passthrough, MCP authorization §"Token
//! Passthrough").
//!
//! They are sealed with XChaCha20-Poly1305 under [`Config::upstream_token_key`], with our grant
//! id as associated data, and kept in the [`Store`] by that grant: they end with it. A tool asks
//! for them with [`AccessToken::upstream_token`](crate::AccessToken::upstream_token); an expired
//! access token is refreshed at the provider's token endpoint (RFC 6749 §6) first, by one caller
//! at a time: the others wait for its result instead of spending the refresh token too.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::StoreError;
use crate::escaped::Escaped;
use crate::secret::Redacted;
use crate::store::{Grant, Store, UpstreamTokenRecord};
use crate::tools::ToolError;

/// An access token this close to its expiry is refreshed before a tool gets it, so that it
/// does not expire on the way to the provider.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// How long a refresh may hold its claim: the upstream request's timeout, twice. A claim left
/// by an instance that died is taken over after it.
const CLAIM_TTL: Duration = Duration::from_secs(10);
/// How often, and how many times, a caller looks again while another refreshes.
const WAIT_STEP: Duration = Duration::from_millis(100);
const WAIT_ROUNDS: u32 = 120;
/// Bytes of the random nonce that opens each sealed record.
const NONCE_LEN: usize = 24;

/// The key that seals upstream tokens at rest: 32 random bytes, from `UPSTREAM_TOKEN_KEY` in
/// base64 (`openssl rand -base64 32`). Every instance sharing a store needs the same key; a new
/// key makes the kept tokens unreadable (their users reconnect). Its `Debug` shows nothing.
///
/// ```
/// use mcp_oauth_kit::auth::UpstreamTokenKey;
///
/// let key = UpstreamTokenKey::from_base64("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")?;
/// assert_eq!(format!("{key:?}"), "UpstreamTokenKey([redacted])");
/// assert!(UpstreamTokenKey::from_base64("too short").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Clone)]
pub struct UpstreamTokenKey([u8; 32]);

impl UpstreamTokenKey {
    /// The key in `encoded`: 32 bytes in base64 (standard or URL-safe, padded or not).
    ///
    /// # Errors
    /// Why it is no key (never the value itself).
    pub fn from_base64(encoded: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let encoded = encoded.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(encoded).ok())
            .ok_or("is not base64 (make one with `openssl rand -base64 32`)")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("is {} bytes, not 32 (make one with `openssl rand -base64 32`)", b.len()))?;
        Ok(Self(key))
    }

    /// A key of the given bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for UpstreamTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UpstreamTokenKey").field(&Redacted).finish()
    }
}

/// The kit's registration at an upstream provider, as a confidential client: what refreshing
/// a user's upstream tokens authenticates with (`client_secret_basic`, RFC 6749 §2.3.1). Kept
/// tokens name their client by token endpoint and client id; the secret stays in the
/// configuration, never in the store. Its `Debug` redacts the secret.
///
/// ```
/// use mcp_oauth_kit::auth::UpstreamClient;
///
/// let client = UpstreamClient::new("https://login.example.com/oauth/token", "mcp-server", "s3cret");
/// assert!(!format!("{client:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct UpstreamClient {
    token_endpoint: String,
    client_id: String,
    // Read by the refresh, which needs an HTTP client (the `jwt` or `introspection` feature).
    #[cfg_attr(not(any(feature = "jwt", feature = "introspection")), allow(dead_code))]
    client_secret: String,
}

impl UpstreamClient {
    /// The client `client_id` with `client_secret`, at the provider whose token endpoint is
    /// `token_endpoint` (`https`, or `http` to a loopback host).
    pub fn new(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self { token_endpoint: token_endpoint.into(), client_id: client_id.into(), client_secret: client_secret.into() }
    }

    fn serves(&self, tokens: &UpstreamTokens) -> bool {
        self.token_endpoint == tokens.token_endpoint && self.client_id == tokens.client_id
    }
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &Redacted)
            .finish()
    }
}

/// A user's tokens at an upstream provider, as its token endpoint issued them, to keep for one
/// of our grants with [`OAuthServer::keep_upstream_tokens`](crate::auth::OAuthServer::keep_upstream_tokens).
/// Its `Debug` redacts both tokens.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use mcp_oauth_kit::auth::UpstreamTokens;
///
/// // From the provider's token response:
/// let tokens = UpstreamTokens::new("ya29.a0Af…", "https://oauth2.googleapis.com/token", "mcp-server")
///     .with_refresh_token("1//0g…")
///     .with_expires_at(SystemTime::now() + Duration::from_secs(3599))
///     .with_scope("openid email https://www.googleapis.com/auth/drive.readonly");
/// assert!(!format!("{tokens:?}").contains("ya29"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamTokens {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<SystemTime>,
    scope: Option<String>,
    token_endpoint: String,
    client_id: String,
}

/// [`UpstreamTokens`] as sealed: a private twin, so that the public type cannot be serialized
/// (into a log or a response) by accident.
#[derive(Serialize, Deserialize)]
struct Sealed {
    access_token: String,
    refresh_token: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[serde(with = "millis")]
    expires_at: Option<SystemTime>,
    scope: Option<String>,
    token_endpoint: String,
    client_id: String,
}

impl From<&UpstreamTokens> for Sealed {
    fn from(t: &UpstreamTokens) -> Self {
        let t = t.clone();
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_at: t.expires_at,
            scope: t.scope,
            token_endpoint: t.token_endpoint,
            client_id: t.client_id,
        }
    }
}

impl From<Sealed> for UpstreamTokens {
    fn from(s: Sealed) -> Self {
        Self {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_at: s.expires_at,
            scope: s.scope,
            token_endpoint: s.token_endpoint,
            client_id: s.client_id,
        }
    }
}

impl UpstreamTokens {
    /// An access token that the client `client_id` got from the provider whose token endpoint
    /// is `token_endpoint` (an [`UpstreamClient`] of [`Config::upstream_clients`]), with no
    /// refresh token, expiry or scope.
    pub fn new(
        access_token: impl Into<String>,
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        Self {
            access_token: access_token.into(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            token_endpoint: token_endpoint.into(),
            client_id: client_id.into(),
        }
    }

    /// The refresh token that came with it: without one, the user reconnects once the access
    /// token expires.
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// When the access token expires (the response's `expires_in` after the request): it is
    /// refreshed shortly before. Without it, it is taken to last.
    pub fn with_expires_at(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// The scope the provider granted.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &Redacted)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| Redacted))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// A current access token at the upstream provider, for a tool to call its API with. Send it
/// to the provider only: never put it in a tool's result (the MCP client must not see it) or
/// in a log. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct UpstreamAccessToken {
    token: String,
    expires_at: Option<SystemTime>,
    scope: Option<String>,
}

impl UpstreamAccessToken {
    /// The token, for an `Authorization: Bearer` header to the provider.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When it expires, if the provider said.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The scope the provider granted, if it said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl std::fmt::Debug for UpstreamAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAccessToken")
            .field("token", &Redacted)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why a grant's upstream tokens could not be kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeepUpstreamError {
    /// No [`Config::upstream_token_key`], or the tokens' client is not among
    /// [`Config::upstream_clients`]: a configuration mistake.
    #[error("upstream tokens cannot be kept: {0}")]
    NotConfigured(String),
    /// The store failed; nothing was kept.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a verified caller's upstream tokens are: the vault and the caller's grant. The guard's
/// cache keeps it with the [`AccessToken`](crate::AccessToken).
#[derive(Clone)]
pub(crate) struct UpstreamLink {
    vault: Arc<UpstreamVault>,
    grant_id: String,
}

impl UpstreamLink {
    pub(crate) async fn access_token(&self) -> Result<UpstreamAccessToken, ToolError> {
        self.vault.access_token(&self.grant_id).await
    }
}

impl PartialEq for UpstreamLink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.vault, &other.vault) && self.grant_id == other.grant_id
    }
}

impl Eq for UpstreamLink {}

impl std::fmt::Debug for UpstreamLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLink").finish_non_exhaustive()
    }
}

/// The sealed upstream tokens of every grant, in the store.
pub(crate) struct UpstreamVault {
    store: Arc<dyn Store>,
    cipher: XChaCha20Poly1305,
    clients: Vec<UpstreamClient>,
    clock: Arc<dyn Clock>,
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    http: Option<reqwest::Client>,
}

impl UpstreamVault {
    /// The vault of `config` over `store`, if it configures a key.
    pub(crate) fn new(config: &Config, store: Arc<dyn Store>) -> Option<Arc<Self>> {
        let key = config.upstream_token_key.as_ref()?;
        Some(Arc::new(Self {
            store,
            cipher: XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key.0)),
            clients: config.upstream_clients.clone(),
            clock: config.clock.clone(),
            #[cfg(any(feature = "jwt", feature = "introspection"))]
            http: crate::verifiers::upstream_http::client().ok(),
        }))
    }

    /// The link a verified caller of `grant_id` carries.
    pub(crate) fn link(self: &Arc<Self>, grant_id: &str) -> UpstreamLink {
        UpstreamLink { vault: self.clone(), grant_id: grant_id.to_owned() }
    }

    /// Seal and keep `tokens` for `grant`, replacing what it had.
    pub(crate) async fn keep(&self, grant: &Grant, tokens: &UpstreamTokens) -> Result<(), KeepUpstreamError> {
        if !self.clients.iter().any(|c| c.serves(tokens)) {
            return Err(KeepUpstreamError::NotConfigured(format!(
                "no Config::upstream_clients entry for client {:?} at {:?}",
                tokens.client_id, tokens.token_endpoint
            )));
        }
        let sealed = self.seal(&grant.grant_id, tokens).map_err(KeepUpstreamError::NotConfigured)?;
        self.store.put_upstream_tokens(UpstreamTokenRecord::new(grant, sealed)).await?;
        Ok(())
    }

    fn seal(&self, grant_id: &str, tokens: &UpstreamTokens) -> Result<Vec<u8>, String> {
        let plain = serde_json::to_vec(&Sealed::from(tokens)).map_err(|e| e.to_string())?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random nonce: {e}"))?;
        let aad = associated_data(grant_id);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
            .map_err(|_| "sealing failed".to_owned())?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, grant_id: &str, sealed: &[u8]) -> Option<UpstreamTokens> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        let aad = associated_data(grant_id);
        let plain = self.cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad }).ok()?;
        serde_json::from_slice::<Sealed>(&plain).ok().map(UpstreamTokens::from)
    }

    /// The grant's current upstream access token, refreshed first when it is about to expire.
    async fn access_token(&self, grant_id: &str) -> Result<UpstreamAccessToken, ToolError> {
        for _ in 0..WAIT_ROUNDS {
            let now = self.clock.now();
            let record = self.store.upstream_tokens(grant_id, now).await.map_err(ToolError::internal)?;
            let Some(record) = record else { return Err(not_connected()) };
            let Some(tokens) = self.open(grant_id, &record.sealed) else {
                return Err(ToolError::internal(
                    "kept upstream tokens do not open with Config::upstream_token_key (was the key changed?)",
                ));
            };
            let fresh = tokens.expires_at.is_none_or(|at| at > now + REFRESH_MARGIN);
            if fresh {
                return Ok(handed_out(tokens));
            }
            if tokens.refresh_token.is_none() {
                return Err(reconnect());
            }
            if record.refreshing_until.is_some_and(|until| until > now) {
                // Another caller is refreshing: wait for its result.
                tokio::time::sleep(WAIT_STEP).await;
                continue;
            }
            let mut claim = record.clone();
            (claim.version, claim.refreshing_until) = (record.version + 1, Some(now + CLAIM_TTL));
            if !self.store.replace_upstream_tokens(record.version, claim.clone()).await.map_err(ToolError::internal)? {
                continue; // Another caller claimed it first, or the grant went.
            }
            return self.refresh(grant_id, claim, tokens).await;
        }
        Err(ToolError::message("the connection to the upstream provider is being renewed: try again in a moment"))
    }

    /// Refresh `tokens` under `claim` (which this caller holds), and store the outcome.
    async fn refresh(
        &self,
        grant_id: &str,
        claim: UpstreamTokenRecord,
        tokens: UpstreamTokens,
    ) -> Result<UpstreamAccessToken, ToolError> {
        let mut after = claim.clone();
        (after.version, after.refreshing_until) = (claim.version + 1, None);
        match self.exchange(&tokens).await {
            Ok(renewed) => {
                after.sealed = self.seal(grant_id, &renewed).map_err(ToolError::internal)?;
                let stored = self.store.replace_upstream_tokens(claim.version, after).await;
                if !stored.map_err(ToolError::internal)? {
                    // The grant was revoked while the provider answered.
                    return Err(not_connected());
                }
                Ok(handed_out(renewed))
            }
            Err(Refused::Grant) => {
                tracing::info!(grant = %Escaped(grant_id), "the upstream provider refused the refresh token (invalid_grant)");
                self.store.delete_upstream_tokens(grant_id).await.map_err(ToolError::internal)?;
                Err(reconnect())
            }
            Err(Refused::Other(why)) => {
                tracing::warn!(grant = %Escaped(grant_id), error = %Escaped(&why), "refreshing upstream tokens failed");
                // Give the claim back, with the tokens as they were, for the next call to retry.
                let _ = self.store.replace_upstream_tokens(claim.version, after).await;
                Err(ToolError::message("the upstream provider could not renew access right now: try again in a moment"))
            }
        }
    }

    /// The refresh-token grant at the provider (RFC 6749 §6), authenticated as its client.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    async fn exchange(&self, tokens: &UpstreamTokens) -> Result<UpstreamTokens, Refused> {
        use crate::verifiers::upstream_http::{checked_url, send_answer};

        let client = self.clients.iter().find(|c| c.serves(tokens)).ok_or_else(|| {
            Refused::Other(format!("no Config::upstream_clients entry for {:?}", tokens.token_endpoint))
        })?;
        let http = self.http.as_ref().ok_or_else(|| Refused::Other("no HTTP client".into()))?;
        let url = checked_url(&client.token_endpoint).map_err(Refused::Other)?;
        let refresh_token = tokens.refresh_token.as_deref().unwrap_or_default();
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        // RFC 6749 §2.3.1: the id and secret are form-encoded before they go into Basic.
        let (id, secret) = (form_encode(&client.client_id), form_encode(&client.client_secret));
        let request = http.post(url.clone()).basic_auth(id, Some(secret)).form(&form);
        let sent_at = self.clock.now();
        let (status, body) = send_answer(request, &url).await.map_err(|e| Refused::Other(e.to_string()))?;
        if !(200..300).contains(&status) {
            let error = serde_json::from_slice::<ErrorBody>(&body).map(|b| b.error).unwrap_or_default();
            return Err(match error.as_str() {
                "invalid_grant" => Refused::Grant,
                _ => Refused::Other(format!("{url} answered HTTP {status} {}", Escaped(&error))),
            });
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| Refused::Other(format!("{url}: not a token response: {e}")))?;
        if !answer.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Refused::Other(format!("{url}: token_type {}, not Bearer", Escaped(&answer.token_type))));
        }
        Ok(UpstreamTokens {
            access_token: answer.access_token,
            // A provider that does not rotate refresh tokens keeps the old one valid.
            refresh_token: answer.refresh_token.or_else(|| tokens.refresh_token.clone()),
            expires_at: answer.expires_in.map(|s| crate::clock::later(sent_at, Duration::from_secs(s))),
            scope: answer.scope.or_else(|| tokens.scope.clone()),
            token_endpoint: tokens.token_endpoint.clone(),
            client_id: tokens.client_id.clone(),
        })
    }

    #[cfg(not(any(feature = "jwt", feature = "introspection")))]
    async fn exchange(&self, _tokens: &UpstreamTokens) -> Result<UpstreamTokens, Refused> {
        Err(Refused::Other("refreshing upstream tokens needs the `jwt` or `introspection` feature".into()))
    }
}

/// Why a refresh failed.
#[cfg_attr(not(any(feature = "jwt", feature = "introspection")), allow(dead_code))]
enum Refused {
    /// `invalid_grant`: the refresh token is dead; the user must connect again.
    Grant,
    /// Anything else, for the log (never a token).
    Other(String),
}

/// What the token endpoint answers (RFC 6749 §5.1).
#[cfg(any(feature = "jwt", feature = "introspection"))]
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

/// An error answer's code (RFC 6749 §5.2).
#[cfg(any(feature = "jwt", feature = "introspection"))]
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The associated data of a grant's sealed tokens: a row copied to another grant does not open.
fn associated_data(grant_id: &str) -> Vec<u8> {
    format!("mcp-oauth-kit upstream tokens for grant {grant_id}").into_bytes()
}

#[cfg(any(feature = "jwt", feature = "introspection"))]
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn handed_out(tokens: UpstreamTokens) -> UpstreamAccessToken {
    UpstreamAccessToken { token: tokens.access_token, expires_at: tokens.expires_at, scope: tokens.scope }
}

fn not_connected() -> ToolError {
    ToolError::message(
        "no account at the upstream provider is connected to this session: reconnect this server to connect one",
    )
}

fn reconnect() -> ToolError {
    ToolError::message(
        "access to the upstream provider has expired or was revoked: reconnect this server (sign in again) to renew it",
    )
}

/// `Option<SystemTime>` as milliseconds since the Unix epoch.
mod millis {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        t.map(|t| t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn vault() -> Arc<UpstreamVault> {
        let mut config = Config::new("http://127.0.0.1:8000").expect("config");
        config.upstream_token_key = Some(UpstreamTokenKey::from_bytes([7; 32]));
        config.upstream_clients = vec![UpstreamClient::new("http://127.0.0.1:1/token", "kit", "secret")];
        UpstreamVault::new(&config, Arc::new(MemoryStore::new())).expect("a vault")
    }

    fn tokens() -> UpstreamTokens {
        UpstreamTokens::new("at-plain-secret", "http://127.0.0.1:1/token", "kit")
            .with_refresh_token("rt-plain-secret")
            .with_expires_at(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
            .with_scope("openid")
    }

    #[test]
    fn sealed_tokens_open_only_for_their_grant_and_hold_no_plaintext() {
        let vault = vault();
        let sealed = vault.seal("grant-a", &tokens()).expect("seal");
        assert_eq!(vault.open("grant-a", &sealed), Some(tokens()));
        assert_eq!(vault.open("grant-b", &sealed), None, "a row copied to another grant does not open");
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("plain-secret") && !text.contains("openid"), "sealed, not encoded");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(vault.open("grant-a", &flipped), None, "tampering is detected");
        assert_eq!(vault.open("grant-a", &sealed[..10]), None, "a truncated row is refused, not a panic");
        assert_ne!(vault.seal("grant-a", &tokens()).expect("seal"), sealed, "a fresh nonce each time");
    }

    #[test]
    fn another_key_does_not_open_them() {
        let sealed = vault().seal("g", &tokens()).expect("seal");
        let mut config = Config::new("http://127.0.0.1:8000").expect("config");
        config.upstream_token_key = Some(UpstreamTokenKey::from_bytes([8; 32]));
        let other = UpstreamVault::new(&config, Arc::new(MemoryStore::new())).expect("a vault");
        assert_eq!(other.open("g", &sealed), None);
    }

    #[test]
    fn debug_shows_no_token_or_secret() {
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            tokens(),
            handed_out(tokens()),
            UpstreamClient::new("https://x/token", "kit", "client-secret-value"),
            UpstreamTokenKey::from_bytes([9; 32])
        );
        for secret in ["plain-secret", "client-secret-value", "9, 9"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert!(UpstreamTokenKey::from_base64(&b64).is_ok());
        assert!(UpstreamTokenKey::from_base64(b64.trim_end_matches('=')).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(UpstreamTokenKey::from_base64(&short).expect_err("short").contains("16 bytes, not 32"));
        assert!(UpstreamTokenKey::from_base64("!!!").expect_err("not base64").contains("not base64"));
    }

    #[tokio::test]
    async fn a_grant_without_upstream_tokens_asks_to_reconnect() {
        let err = vault().access_token("nobody").await.expect_err("nothing kept");
        assert!(err.to_string().contains("reconnect"), "{err}");
    }
}
