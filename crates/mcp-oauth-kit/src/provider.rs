//! [`AuthProvider`]: what the MCP endpoint, as an OAuth resource server, needs from whoever
//! issues its tokens; and the [`AccessToken`] identity that tools receive.
//!
//! The kit's own authorization server is configured on the builder, not implemented here (see
//! [`McpServerBuilder::user_store`](crate::McpServerBuilder::user_store)). A provider of your
//! own verifies tokens issued elsewhere (JWTs of an external identity provider, an RFC 7662
//! introspection endpoint) and names the authorization servers that issue them.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::claims::{ClaimError, ClaimNames, Claims};
use crate::error::StoreError;
use crate::tools::ToolError;
use crate::upstream_tokens::{UpstreamAccessToken, UpstreamLink};

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
pub struct AccessToken(Arc<TokenClaims>, Option<UpstreamLink>);

/// What a verified access token says. Read through [`AccessToken`].
///
/// # Security
/// `Debug` prints the extra claims' names only: their values (email, groups, …) are personal
/// data, and a log line that debug-prints a caller must not carry them.
#[derive(Clone, PartialEq, Eq)]
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
    /// The grant the token belongs to, when the built-in authorization server issued it: the
    /// MCP sessions it opens end when that grant is revoked.
    pub(crate) grant_id: Option<String>,
}

impl std::fmt::Debug for TokenClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field has to be placed here (and redacted if personal).
        let Self { subject, username, client_id, scopes, audience, expires_at, claims, grant_id } = self;
        let claim_names = ClaimNames(claims);
        f.debug_struct("TokenClaims")
            .field("subject", subject)
            .field("username", username)
            .field("client_id", client_id)
            .field("scopes", scopes)
            .field("audience", audience)
            .field("expires_at", expires_at)
            .field("claims", &claim_names)
            .field("grant_id", grant_id)
            .finish()
    }
}

impl std::ops::Deref for AccessToken {
    type Target = TokenClaims;

    fn deref(&self) -> &TokenClaims {
        &self.0
    }
}

impl AccessToken {
    /// The caller's current access token at the upstream identity provider they signed in
    /// with, for a tool to call that provider's API on their behalf. An expired one is first
    /// refreshed at the provider (one refresh for concurrent calls). The token stays on the
    /// server: send it to the provider only, never in a tool's result.
    ///
    /// ```
    /// use mcp_oauth_kit::{AccessToken, ToolError};
    ///
    /// async fn my_calendar(caller: AccessToken) -> Result<String, ToolError> {
    ///     let upstream = caller.upstream_token().await?;
    ///     let events = reqwest_like_get("https://www.googleapis.com/calendar/v3/calendars/primary/events", upstream.secret());
    ///     Ok(format!("{} events", events.len()))
    /// }
    /// # fn reqwest_like_get(_url: &str, _bearer: &str) -> Vec<()> { Vec::new() }
    /// ```
    ///
    /// # Errors
    /// A [`ToolError`] for the model: no upstream tokens are kept for this sign-in, or the
    /// provider refused to renew them (`invalid_grant`: the text asks the user to reconnect),
    /// or the provider could not be reached (try again). Without
    /// [`Config::upstream_token_key`](crate::Config::upstream_token_key), or for tokens that
    /// another [`AuthProvider`] verified, an internal error.
    pub async fn upstream_token(&self) -> Result<UpstreamAccessToken, ToolError> {
        match &self.1 {
            Some(link) => link.access_token().await,
            None => Err(ToolError::internal(
                "no upstream tokens: the server has no Config::upstream_token_key, or its tokens are not its own",
            )),
        }
    }

    /// This token with the way to its caller's upstream tokens.
    pub(crate) fn with_upstream(mut self, link: UpstreamLink) -> Self {
        self.1 = Some(link);
        self
    }

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
            grant_id: None,
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

    /// Whether the token carries `scope`: for a check inside a tool, finer than
    /// [`ToolDef::scope`](crate::ToolDef::scope) (which refuses the call before the tool runs).
    ///
    /// ```
    /// use mcp_oauth_kit::{AccessToken, ToolError};
    ///
    /// async fn delete_note(caller: AccessToken) -> Result<String, ToolError> {
    ///     if !caller.has_scope("notes:admin") {
    ///         return Err(ToolError::message("deleting notes needs the notes:admin scope"));
    ///     }
    ///     Ok("deleted".into())
    /// }
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }

    /// The caller of the current MCP request, inside an rmcp handler served by the kit.
    ///
    /// The bearer guard puts the verified token into the HTTP request's extensions; rmcp hands
    /// the request's `http::request::Parts` to the handler. `None` only outside the kit.
    ///
    /// ```
    /// use mcp_oauth_kit::AccessToken;
    /// use mcp_oauth_kit::rmcp::service::RequestContext;
    /// use mcp_oauth_kit::rmcp::{ErrorData, RoleServer};
    ///
    /// // In a `#[tool]` method of your own rmcp handler:
    /// fn whoami(ctx: RequestContext<RoleServer>) -> Result<String, ErrorData> {
    ///     let caller = AccessToken::from_context(&ctx)
    ///         .ok_or_else(|| ErrorData::internal_error("served outside mcp-oauth-kit", None))?;
    ///     Ok(caller.username.clone())
    /// }
    /// ```
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
    ///
    /// ```
    /// # use mcp_oauth_kit::AccessToken;
    /// # let expires = std::time::SystemTime::now();
    /// let caller = AccessToken::builder("u-1", expires).username("carol").build();
    /// assert_eq!((caller.subject.as_str(), caller.username.as_str()), ("u-1", "carol"));
    /// ```
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.0.username = username.into();
        self
    }

    /// The OAuth client the token was issued to.
    ///
    /// ```
    /// # use mcp_oauth_kit::AccessToken;
    /// # let expires = std::time::SystemTime::now();
    /// let caller = AccessToken::builder("u-1", expires).client_id("claude-desktop").build();
    /// assert_eq!(caller.client_id, "claude-desktop");
    /// ```
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.0.client_id = client_id.into();
        self
    }

    /// The scopes the token carries.
    ///
    /// ```
    /// # use mcp_oauth_kit::AccessToken;
    /// # let expires = std::time::SystemTime::now();
    /// // From a JWT's space-separated `scope` claim:
    /// let caller = AccessToken::builder("u-1", expires).scopes("mcp notes:write".split(' ')).build();
    /// assert!(caller.has_scope("notes:write"));
    /// ```
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.0.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The resource the token was issued for (RFC 8707): check it matches this server before
    /// building.
    ///
    /// ```
    /// # use mcp_oauth_kit::AccessToken;
    /// # let expires = std::time::SystemTime::now();
    /// let (aud, ours) = ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp");
    /// assert_eq!(aud, ours, "a token for another resource is refused, not built");
    /// let caller = AccessToken::builder("u-1", expires).audience(aud).build();
    /// assert_eq!(caller.audience, ours);
    /// ```
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.0.audience = audience.into();
        self
    }

    /// Add the claim `name` (replacing one of that name).
    ///
    /// ```
    /// # use mcp_oauth_kit::AccessToken;
    /// # let expires = std::time::SystemTime::now();
    /// let caller = AccessToken::builder("u-1", expires).claim("org", "acme").claim("org", "globex").build();
    /// assert_eq!(caller.claim::<String>("org").unwrap(), "globex");
    /// ```
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.0.claims.insert(name.into(), value.into());
        self
    }

    /// Add every claim of `claims` (replacing those of the same names).
    ///
    /// ```
    /// # use mcp_oauth_kit::AccessToken;
    /// # let expires = std::time::SystemTime::now();
    /// // Keep every claim of a verified JWT that the kit does not model itself:
    /// let jwt = serde_json::json!({ "sub": "u-1", "email": "carol@example.com", "roles": ["admin"] });
    /// let mut extra = jwt.as_object().cloned().unwrap_or_default();
    /// extra.remove("sub");
    /// let caller = AccessToken::builder("u-1", expires).claims(extra).build();
    /// assert_eq!(caller.claim::<Vec<String>>("roles").unwrap(), ["admin"]);
    /// ```
    pub fn claims(mut self, claims: Claims) -> Self {
        self.0.claims.extend(claims);
        self
    }

    /// The token.
    ///
    /// ```
    /// # use mcp_oauth_kit::AccessToken;
    /// # let expires = std::time::SystemTime::now();
    /// let caller = AccessToken::builder("u-1", expires).build();
    /// assert_eq!(caller.username, "u-1"); // the subject, when no username is given
    /// ```
    pub fn build(self) -> AccessToken {
        AccessToken(Arc::new(self.0), None)
    }

    /// The grant the token belongs to (the built-in authorization server's tokens only).
    pub(crate) fn grant_id(mut self, grant_id: impl Into<String>) -> Self {
        self.0.grant_id = Some(grant_id.into());
        self
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

/// What the MCP endpoint needs from whoever issues its access tokens: verify a bearer token,
/// and name the authorization servers that issue them.
///
/// Give one to [`McpServerBuilder::auth_provider`](crate::McpServerBuilder::auth_provider) to
/// run as a resource server only: the kit then serves `/mcp` and the protected-resource
/// metadata, and no OAuth endpoints or login page. Without one, the kit is its own
/// authorization server ([`McpServerBuilder::user_store`](crate::McpServerBuilder::user_store)).
///
/// The kit caches verified tokens in front of the provider: a token answered `Ok` is not asked
/// about again for [`Config::token_cache_ttl`](crate::Config::token_cache_ttl) (default
/// 1 second; zero asks on every request), and never past its
/// [`expires_at`](TokenClaims::expires_at). So a token revoked upstream keeps working for at
/// most that long. Refusals are not cached.
///
/// # Security
/// `verify_token` must check the token's signature (or look it up), its revocation, and that
/// its audience is this server's MCP endpoint ([`Config::resource`](crate::Config::resource),
/// RFC 8707): the kit trusts its answer for every MCP request. The kit itself refuses an answer
/// whose [`expires_at`](TokenClaims::expires_at) has passed.
///
/// # Example
/// A fixed table of tokens, plugged into a server:
///
/// ```no_run
/// use std::collections::HashMap;
///
/// use mcp_oauth_kit::{async_trait, AccessToken, Config, McpServer, Tools};
/// use mcp_oauth_kit::auth::{AuthProvider, TokenRejection};
///
/// /// Tokens handed out by hand, each naming its user, scopes and expiry.
/// struct StaticTokens {
///     tokens: HashMap<String, AccessToken>,
///     issuer: String,
/// }
///
/// #[async_trait]
/// impl AuthProvider for StaticTokens {
///     async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
///         // A real table compares in constant time or, better, is keyed by a digest.
///         self.tokens.get(token).cloned().ok_or(TokenRejection::Invalid)
///     }
///
///     fn authorization_servers(&self) -> Vec<String> {
///         vec![self.issuer.clone()]
///     }
/// }
///
/// # async fn run() -> Result<(), mcp_oauth_kit::Error> {
/// let config = Config::new("https://mcp.example.com")?;
/// let expires_at = std::time::SystemTime::now() + std::time::Duration::from_secs(30 * 24 * 3600);
/// let caller = AccessToken::builder("u-1", expires_at)
///     .username("carol")
///     .scopes(["mcp"])
///     .audience(config.resource())
///     .build();
/// let provider = StaticTokens {
///     tokens: HashMap::from([("a-long-random-token".to_owned(), caller)]),
///     issuer: "https://login.example.com".to_owned(),
/// };
/// McpServer::builder(config).auth_provider(provider).tools(Tools::new()).build()?.run().await
/// # }
/// ```
#[async_trait]
pub trait AuthProvider: Send + Sync + 'static {
    /// Verify a bearer token presented at the MCP endpoint, into the caller it names.
    ///
    /// # Errors
    /// [`TokenRejection::Invalid`] or [`TokenRejection::WrongAudience`] when the token must not
    /// be accepted (the client gets 401 `invalid_token`); [`TokenRejection::Backend`] when the
    /// answer is unknown because a store or service failed (the client gets 503 and keeps its
    /// token).
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection>;

    /// The issuer identifiers (RFC 8414 `issuer` URLs) of the authorization servers whose
    /// tokens [`AuthProvider::verify_token`] accepts. The protected-resource metadata lists
    /// them as `authorization_servers` (RFC 9728 §2), which is how an MCP client finds where
    /// to sign in; [`McpServerBuilder::build`](crate::McpServerBuilder::build) refuses a
    /// provider that names none.
    fn authorization_servers(&self) -> Vec<String>;
}

#[async_trait]
impl<T: AuthProvider + ?Sized> AuthProvider for Arc<T> {
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        (**self).verify_token(token).await
    }

    fn authorization_servers(&self) -> Vec<String> {
        (**self).authorization_servers()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::AccessToken;

    #[test]
    fn debug_names_the_claims_but_not_their_values() {
        let token = AccessToken::builder("user-42", UNIX_EPOCH + Duration::from_secs(1_900_000_000))
            .username("carol")
            .client_id("client-7")
            .scopes(["mcp"])
            .claim("email", "carol@example.com")
            .claim("groups", vec!["payroll-admins"])
            .build();
        let shown = format!("{token:?}");
        for personal in ["carol@example.com", "payroll-admins"] {
            assert!(!shown.contains(personal), "{shown}");
        }
        for kept in ["user-42", "carol", "client-7", "\"mcp\"", "\"email\": [redacted]", "\"groups\": [redacted]"] {
            assert!(shown.contains(kept), "{kept}: {shown}");
        }
    }
}
