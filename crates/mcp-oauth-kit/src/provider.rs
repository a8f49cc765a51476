//! [`AuthProvider`]: what the MCP endpoint needs from an authorization server, and the
//! [`AccessToken`] identity that tools receive.
//!
//! The built-in provider is [`OAuthServer`](crate::OAuthServer), the kit's own authorization
//! server. A provider that only verifies tokens issued elsewhere (JWTs of an external identity
//! provider, say) implements [`AuthProvider::verify_token`] and
//! [`AuthProvider::authorization_servers`] and leaves the OAuth operations at their defaults.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::claims::{ClaimError, Claims};
use crate::error::{OAuthError, OAuthErrorCode, StoreError};
use crate::secret::Redacted;
use crate::user_store::User;

/// A verified access token: who is calling, through which client, with which scopes, and what
/// else the user store or token verifier said about them ([`AccessToken::claim`]).
///
/// Tools receive it as their first argument; an rmcp `ServerHandler` of your own reads it with
/// [`AccessToken::from_context`]. Its fields are those of [`TokenClaims`], read through `Deref`
/// (`caller.username`, `caller.scopes`). Cloning it is a reference-count increment: the guard,
/// the verified-token cache, rmcp's copy of the request and the tool each hold one per call.
///
/// A provider that verifies tokens itself builds one with [`AccessToken::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<TokenClaims>);

/// What a verified access token says. Read through [`AccessToken`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// The user's stable id (the token's subject).
    pub subject: String,
    /// The user's name, for display.
    pub username: String,
    /// The OAuth client the user authorized.
    pub client_id: String,
    /// The scopes the token carries.
    pub scopes: Vec<String>,
    /// The resource the token was issued for (RFC 8707).
    pub audience: String,
    /// When it expires.
    pub expires_at: SystemTime,
    /// Extra claims about the caller (email, roles, …); read them typed with
    /// [`AccessToken::claim`].
    pub claims: Claims,
}

impl std::ops::Deref for AccessToken {
    type Target = TokenClaims;

    fn deref(&self) -> &TokenClaims {
        &self.0
    }
}

impl AccessToken {
    /// Start building the verified token of `subject`, valid until `expires_at`: for providers
    /// that verify tokens themselves. The username defaults to the subject; client, audience,
    /// scopes and claims to empty.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use mcp_oauth_kit::AccessToken;
    ///
    /// // From a verified JWT's claims:
    /// let (sub, exp) = ("user-42", 1_900_000_000_u64);
    /// let token = AccessToken::builder(sub, UNIX_EPOCH + Duration::from_secs(exp))
    ///     .username("carol")
    ///     .client_id("my-client")
    ///     .scopes(["mcp", "notes:write"])
    ///     .audience("https://mcp.example.com/mcp")
    ///     .claim("email", "carol@example.com")
    ///     .claim("permissions", vec!["notes:read", "notes:write"])
    ///     .build();
    /// assert!(token.has_scope("notes:write"));
    /// assert_eq!(token.claim::<String>("email").unwrap(), "carol@example.com");
    /// ```
    pub fn builder(subject: impl Into<String>, expires_at: SystemTime) -> AccessTokenBuilder {
        let subject = subject.into();
        AccessTokenBuilder(TokenClaims {
            username: subject.clone(),
            subject,
            client_id: String::new(),
            scopes: Vec::new(),
            audience: String::new(),
            expires_at,
            claims: Claims::new(),
        })
    }

    /// The claim `name` as a `T`: `caller.claim::<String>("email")`. Ask for an `Option<T>` when
    /// the claim may be absent: then a missing claim is `Ok(None)`.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// # use mcp_oauth_kit::AccessToken;
    /// # let caller = AccessToken::builder("u-1", SystemTime::now()).claim("roles", vec!["admin"]).build();
    /// let roles: Vec<String> = caller.claim("roles")?;
    /// let org: Option<String> = caller.claim("org")?;
    /// assert_eq!((roles, org), (vec!["admin".to_owned()], None));
    /// # Ok::<(), mcp_oauth_kit::claims::ClaimError>(())
    /// ```
    ///
    /// # Errors
    /// [`ClaimError::Missing`] when there is no such claim and `T` is not an `Option`;
    /// [`ClaimError::Invalid`] when its value does not deserialize into `T`.
    pub fn claim<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ClaimError> {
        crate::claims::read(&self.0.claims, name)
    }

    /// Every extra claim, as JSON.
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }

    /// The caller of the current MCP request, inside an rmcp handler served by the kit.
    ///
    /// The bearer guard puts the verified token into the HTTP request's extensions; rmcp hands
    /// the request's `http::request::Parts` to the handler. `None` only outside the kit.
    pub fn from_context(ctx: &RequestContext<RoleServer>) -> Option<&AccessToken> {
        ctx.extensions.get::<http::request::Parts>()?.extensions.get::<AccessToken>()
    }
}

/// Builds an [`AccessToken`]; start with [`AccessToken::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AccessTokenBuilder(TokenClaims);

impl AccessTokenBuilder {
    /// The user's name, for display (default: the subject).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.0.username = username.into();
        self
    }

    /// The OAuth client the token was issued to.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.0.client_id = client_id.into();
        self
    }

    /// The scopes the token carries.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.0.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The resource the token was issued for (RFC 8707): check it matches this server before
    /// building.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.0.audience = audience.into();
        self
    }

    /// Add the claim `name` (replacing one of that name).
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.0.claims.insert(name.into(), value.into());
        self
    }

    /// Add every claim of `claims` (replacing those of the same names).
    pub fn claims(mut self, claims: Claims) -> Self {
        self.0.claims.extend(claims);
        self
    }

    /// The token.
    pub fn build(self) -> AccessToken {
        AccessToken(Arc::new(self.0))
    }
}

/// Why a bearer token was refused. Every variant becomes a 401 with `error="invalid_token"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRejection {
    /// Unknown, malformed, revoked or expired.
    #[error("the access token is invalid, expired or revoked")]
    Invalid,
    /// Issued for another resource (RFC 8707 audience mismatch).
    #[error("the access token was issued for another resource")]
    WrongAudience,
    /// The token store failed; the request gets a 503, not a 401.
    #[error(transparent)]
    Backend(#[from] StoreError),
}

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 8707), as
/// received: validation is the provider's job.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[non_exhaustive]
pub struct AuthorizationRequest {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// The registered client.
    pub client_id: Option<String>,
    /// One of the client's registered redirect URIs.
    pub redirect_uri: Option<String>,
    /// Opaque client state, returned unchanged.
    pub state: Option<String>,
    /// PKCE challenge (required).
    pub code_challenge: Option<String>,
    /// PKCE method: must be `S256`.
    pub code_challenge_method: Option<String>,
    /// Space-separated scopes; empty or absent means the default scopes.
    pub scope: Option<String>,
    /// The protected resource the token is for (RFC 8707).
    pub resource: Option<String>,
}

/// A failed authorization request, and where its error goes (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The client or redirect URI could not be validated: show an error page, never redirect.
    Page(OAuthError),
    /// The client and redirect URI are valid, so the error may go back to the client; the
    /// endpoint does that only for a browser with a live sign-in session, and shows a page
    /// otherwise, so that an unauthenticated request cannot use this server as an open
    /// redirector (RFC 9700 §4.11.2).
    Redirect {
        /// The client's name as the pages show it.
        client_name: String,
        /// What went wrong.
        error: OAuthError,
        /// The client's redirect URI carrying the error (`error`, `state`, `iss`).
        location: String,
    },
}

/// What the login page shows and checks for a pending authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginContext {
    /// The client's registered name (or its id when it gave none).
    pub client_name: String,
    /// The host the user will be sent back to.
    pub redirect_host: String,
    /// The scopes being requested.
    pub scopes: Vec<String>,
    /// The pending request's own token, which the login page hands back to
    /// [`AuthProvider::complete_authorization`] and [`AuthProvider::deny_authorization`]. The
    /// form itself carries a token derived from a per-browser cookie instead, so that a page
    /// read in one browser is worthless in another.
    pub csrf_token: String,
    /// Whether the page may offer to remember the user's decision ("Remember this decision
    /// for …"): the provider remembers consent, and the client's identity is assured for this
    /// request, so that a later request can be approved without asking (see
    /// [`AuthProvider::remembered_consent`]).
    pub can_remember: bool,
}

impl LoginContext {
    /// A context for a provider of your own; `can_remember` is `false`.
    pub fn new(
        client_name: impl Into<String>,
        redirect_host: impl Into<String>,
        scopes: Vec<String>,
        csrf_token: impl Into<String>,
    ) -> Self {
        Self {
            client_name: client_name.into(),
            redirect_host: redirect_host.into(),
            scopes,
            csrf_token: csrf_token.into(),
            can_remember: false,
        }
    }
}

/// How a client authenticated at the token or revocation endpoint. Its `Debug` redacts the
/// secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ClientCredentials {
    /// `client_id` from the form or the Basic header.
    pub client_id: Option<String>,
    /// `client_secret` from the form or the Basic header.
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| Redacted))
            .finish()
    }
}

impl ClientCredentials {
    /// Credentials with the given id and optional secret.
    pub fn new(client_id: Option<String>, client_secret: Option<String>) -> Self {
        Self { client_id, client_secret }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token (rotated on every use).
    pub refresh_token: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A client registration request (RFC 7591 §2), as received.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[non_exhaustive]
pub struct ClientMetadata {
    /// Redirect URIs (required).
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    /// `none`, `client_secret_post` or `client_secret_basic`.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// Grant types; default `authorization_code`.
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    /// Response types; default `code`.
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    /// Human-readable name.
    #[serde(default)]
    pub client_name: Option<String>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Home page of the client.
    #[serde(default)]
    pub client_uri: Option<String>,
}

/// A registered client, as returned to the registrant (RFC 7591 §3.2.1). Its `Debug` redacts
/// the secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct RegisteredClient {
    /// The stored record.
    pub record: crate::store::ClientRecord,
    /// The client secret, shown once (confidential clients only).
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("record", &self.record)
            .field("client_secret", &self.client_secret.as_ref().map(|_| Redacted))
            .finish()
    }
}

fn unsupported() -> OAuthError {
    OAuthError::new(OAuthErrorCode::UnsupportedGrantType, "this server is not an authorization server")
}

/// What the kit needs from an authorization server.
///
/// # Security
/// `verify_token` must check expiry, revocation and audience; the kit calls it for every MCP
/// request and trusts its answer.
#[async_trait]
pub trait AuthProvider: Send + Sync + 'static {
    /// Verify a bearer token presented at the MCP endpoint.
    ///
    /// # Errors
    /// [`TokenRejection`] when the token must not be accepted.
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection>;

    /// The answer for a token verified recently, without waiting (from a cache); `None` when
    /// there is none at hand. The guard asks this first and awaits
    /// [`AuthProvider::verify_token`] only on `None`, which spares the hot path a boxed future.
    /// The same rule holds as for `verify_token`: only a token that is still valid may come
    /// back. The default has no cache.
    fn verify_token_cached(&self, _token: &str) -> Option<AccessToken> {
        None
    }

    /// The issuers to list in the protected-resource metadata. `own_issuer` is this server's
    /// public URL, which the built-in authorization server uses.
    fn authorization_servers(&self, own_issuer: &str) -> Vec<String> {
        vec![own_issuer.to_owned()]
    }

    /// Whether this provider is its own authorization server: if not, the kit serves only
    /// the MCP endpoint and the protected-resource metadata.
    fn is_authorization_server(&self) -> bool {
        false
    }

    /// RFC 7591: register a client.
    ///
    /// # Errors
    /// `invalid_redirect_uri` / `invalid_client_metadata` for bad metadata.
    async fn register_client(&self, metadata: ClientMetadata) -> Result<RegisteredClient, OAuthError> {
        let _ = metadata;
        Err(unsupported())
    }

    /// Validate an authorization request and remember it until the user signs in. Returns the
    /// handle the login page is opened with.
    ///
    /// # Errors
    /// See [`AuthorizeError`].
    async fn start_authorization(&self, request: AuthorizationRequest) -> Result<String, AuthorizeError> {
        let _ = request;
        Err(AuthorizeError::Page(unsupported()))
    }

    /// What the login page shows for a pending authorization.
    ///
    /// # Errors
    /// `invalid_request` when the handle is unknown or expired.
    async fn login_context(&self, handle: &str) -> Result<LoginContext, OAuthError> {
        let _ = handle;
        Err(unsupported())
    }

    /// Count a failed sign-in; returns whether the pending authorization is still usable.
    ///
    /// # Errors
    /// When the store fails.
    async fn record_failed_login(&self, handle: &str) -> Result<bool, OAuthError> {
        let _ = handle;
        Err(unsupported())
    }

    /// The user signed in and approved: issue a code; returns the URL to redirect to.
    ///
    /// # Errors
    /// `invalid_request` for an unknown handle or wrong CSRF token.
    async fn complete_authorization(&self, handle: &str, csrf_token: &str, user: &User) -> Result<String, OAuthError> {
        let _ = (handle, csrf_token, user);
        Err(unsupported())
    }

    /// Start a sign-in session for `user`, who has just signed in with their password on the
    /// login page: returns the secret the browser keeps in its session cookie, or `None` when
    /// this provider keeps no sessions (the default).
    ///
    /// # Errors
    /// When the store fails.
    ///
    /// # Security
    /// The secret is a credential: store only its digest, and make it unguessable.
    async fn start_session(&self, user: &User) -> Result<Option<String>, OAuthError> {
        let _ = user;
        Ok(None)
    }

    /// The user of the session that the cookie's `secret` names, while the session lasts;
    /// `None` for an unknown, ended or expired session (and by default).
    ///
    /// # Errors
    /// When the store fails.
    async fn session_user(&self, secret: &str) -> Result<Option<User>, OAuthError> {
        let _ = secret;
        Ok(None)
    }

    /// End the session that `secret` names (sign-out). Ending an unknown session is no error.
    ///
    /// # Errors
    /// When the store fails.
    async fn end_session(&self, secret: &str) -> Result<(), OAuthError> {
        let _ = secret;
        Ok(())
    }

    /// Whether the pending authorization `handle` may be approved for the signed-in user
    /// `subject` without showing the page: the user asked to remember their consent to its
    /// client, for at least the scopes it asks now, and the client's identity is assured for
    /// this request. `false` by default.
    ///
    /// # Errors
    /// When the store fails.
    ///
    /// # Security
    /// A public client whose code goes to a loopback or private-use redirect URI can be
    /// impersonated by any app on the device (RFC 8252 §8.6): never approve one silently.
    async fn remembered_consent(&self, handle: &str, subject: &str) -> Result<bool, OAuthError> {
        let _ = (handle, subject);
        Ok(false)
    }

    /// The user `subject` approved the pending authorization `handle` and asked to remember
    /// the decision: remember their consent to its client for its scopes. Call it before
    /// [`AuthProvider::complete_authorization`], which ends the pending authorization. Does
    /// nothing when the request's [`LoginContext::can_remember`] is `false` (and by default).
    ///
    /// # Errors
    /// When the store fails.
    async fn remember_consent(&self, handle: &str, subject: &str) -> Result<(), OAuthError> {
        let _ = (handle, subject);
        Ok(())
    }

    /// The user `subject` declined the pending authorization `handle` and asked to remember
    /// the decision: forget any consent to its client remembered before. Does nothing by
    /// default.
    ///
    /// # Errors
    /// When the store fails.
    async fn forget_consent(&self, handle: &str, subject: &str) -> Result<(), OAuthError> {
        let _ = (handle, subject);
        Ok(())
    }

    /// The user declined: returns the URL that tells the client `access_denied`.
    ///
    /// # Errors
    /// `invalid_request` for an unknown handle or wrong CSRF token.
    async fn deny_authorization(&self, handle: &str, csrf_token: &str) -> Result<String, OAuthError> {
        let _ = (handle, csrf_token);
        Err(unsupported())
    }

    /// The `authorization_code` grant (with PKCE).
    ///
    /// # Errors
    /// RFC 6749 §5.2 errors.
    async fn exchange_code(
        &self,
        client: ClientCredentials,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let _ = (client, code, redirect_uri, code_verifier, resource);
        Err(unsupported())
    }

    /// The `refresh_token` grant (with rotation).
    ///
    /// # Errors
    /// RFC 6749 §5.2 errors.
    async fn refresh(
        &self,
        client: ClientCredentials,
        refresh_token: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let _ = (client, refresh_token, scope, resource);
        Err(unsupported())
    }

    /// RFC 7009 revocation.
    ///
    /// # Errors
    /// `invalid_client` when the client fails to authenticate.
    async fn revoke(&self, client: ClientCredentials, token: &str) -> Result<(), OAuthError> {
        let _ = (client, token);
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_client_secrets() {
        let credentials = ClientCredentials::new(Some("client-1".into()), Some("mcp_cs_secret-7d3b".into()));
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("secret-7d3b") && shown.contains("client-1"), "{shown}");
        assert!(shown.contains("client_secret: Some([redacted])"), "{shown}");

        let record = crate::store::ClientRecord {
            client_id: "client-1".into(),
            secret_hash: Some(crate::secret::TokenHash::of("mcp_cs_secret-7d3b")),
            auth_method: "client_secret_basic".into(),
            client_name: Some("App".into()),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            grant_types: vec!["authorization_code".into()],
            scope: None,
            issued_at: std::time::UNIX_EPOCH,
        };
        let registered = RegisteredClient { record, client_secret: Some("mcp_cs_secret-7d3b".into()) };
        let shown = format!("{registered:?}");
        assert!(!shown.contains("secret-7d3b") && shown.contains("client-1"), "{shown}");
        assert!(shown.contains("client_secret: Some([redacted])"), "{shown}");
        let public = ClientCredentials::new(Some("client-2".into()), None);
        assert!(format!("{public:?}").contains("client_secret: None"));
    }
}
