//! Connect to a remote, OAuth-protected MCP server the way an AI platform does
//! when a user clicks "Connect".
//!
//! The heavy lifting is done by rmcp's OAuth client (`rmcp::transport::auth`):
//!
//! 1. an unauthenticated `POST` to the MCP endpoint yields a `401` whose
//!    `WWW-Authenticate: Bearer resource_metadata="…"` challenge seeds discovery;
//! 2. rmcp fetches the RFC 9728 protected-resource metadata, then the RFC 8414
//!    authorization-server metadata of the server it names;
//! 3. it registers a public client (RFC 7591, `token_endpoint_auth_method: "none"`)
//!    for the redirect URI the [`LoginDriver`] provides;
//! 4. it builds the authorization URL (PKCE S256, `state`, RFC 8707 `resource`);
//! 5. the [`LoginDriver`] plays the browser and returns `code` + `state`
//!    (+ RFC 9207 `iss`);
//! 6. rmcp exchanges the code (with `code_verifier` and `resource`) and keeps the
//!    tokens in its in-memory credential store;
//! 7. the MCP session runs over Streamable HTTP through rmcp's [`AuthClient`],
//!    which puts the bearer token on every request and refreshes it when it is
//!    about to expire or when the server rejects it.
//!
//! Two login drivers exist: the `connect-with-client` binary opens the system
//! browser on the URL (and prints it) and waits on a loopback listener for the
//! browser's redirect, while [`FormLogin`] (for integration tests) fills in the
//! server's login form itself, so no test opens a browser.
//!
//! ```no_run
//! use connect_with_client::{FormLogin, connect};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let (client, session) =
//!     connect("http://127.0.0.1:8000/mcp", FormLogin::new("alice", "secret")).await?;
//! let tools = client.list_all_tools().await?;
//! let before = session.credentials().await?;
//! let after = session.refresh().await?; // forces a refresh_token grant
//! assert_ne!(before.access_token, after.access_token);
//! let tools_again = client.list_all_tools().await?; // uses the new token
//! # let _ = (tools, tools_again);
//! client.cancel().await?;
//! # Ok(())
//! # }
//! ```

use std::{future::Future, sync::Arc};

use anyhow::{Context as _, bail};
use reqwest::{
    StatusCode, Url,
    header::{ACCEPT, WWW_AUTHENTICATE},
};
use rmcp::{
    RoleClient, ServiceExt as _,
    model::{ClientCapabilities, ClientConfig, Implementation},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport,
        auth::{AuthClient, AuthorizationManager, AuthorizationRequest, OAuthState},
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::Mutex;

mod form_login;

pub use form_login::FormLogin;
/// The rmcp crate this client is built on, re-exported so callers use the same version.
pub use rmcp;

/// Client name sent in dynamic client registration and in the MCP `initialize` request.
pub const CLIENT_NAME: &str = "connect-with-client";

/// A connected MCP client session (drop it or call `cancel()` to disconnect).
pub type McpClient = RunningService<RoleClient, ClientConfig>;

/// What the authorization server put on the redirect URI after the user signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The authorization code (`code`).
    pub code: String,
    /// The `state` value, echoed back unchanged; rmcp uses it to find the PKCE verifier.
    pub state: String,
    /// The RFC 9207 `iss` parameter, if the server sent one.
    pub iss: Option<String>,
}

impl AuthorizationResponse {
    /// Extracts `code`, `state` and `iss` from a redirect URI's query string.
    ///
    /// An OAuth error response (`error=access_denied&error_description=…`)
    /// becomes an `Err`.
    pub fn from_redirect_url(url: &Url) -> anyhow::Result<Self> {
        let param = |name: &str| url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned());
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or_default();
            bail!("authorization server returned `{error}`: {description}");
        }
        Ok(Self {
            code: param("code").context("redirect is missing `code`")?,
            state: param("state").context("redirect is missing `state`")?,
            iss: param("iss"),
        })
    }
}

/// The "browser" part of the authorization-code flow.
///
/// [`authorize`] calls [`redirect_uri`](Self::redirect_uri) once, before dynamic
/// client registration, then [`authorize`](Self::authorize) with the URL the
/// user would open.
pub trait LoginDriver: Send {
    /// The redirect URI to register, e.g. `http://127.0.0.1:PORT/callback` for a
    /// loopback listener that is already bound.
    fn redirect_uri(&mut self) -> impl Future<Output = anyhow::Result<String>> + Send;

    /// Lets the user sign in at `authorization_url` and returns the parameters
    /// the authorization server redirected to `redirect_uri` with.
    fn authorize(
        &mut self,
        authorization_url: &str,
        redirect_uri: &str,
    ) -> impl Future<Output = anyhow::Result<AuthorizationResponse>> + Send;
}

/// A snapshot of the OAuth credentials rmcp currently holds.
#[derive(Clone)]
pub struct Credentials {
    /// The client ID obtained through dynamic client registration.
    pub client_id: String,
    /// The bearer access token.
    pub access_token: String,
    /// The refresh token, if the server issued one.
    pub refresh_token: Option<String>,
    /// The token type, as returned by the token endpoint (normally `bearer`).
    pub token_type: String,
    /// `expires_in` from the last token response, in seconds.
    pub expires_in: Option<u64>,
    /// `scope` from the last token response, if the server sent it.
    pub scope: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[REDACTED]"))
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// An authorized OAuth session: rmcp's [`AuthorizationManager`] wrapped in the
/// [`AuthClient`] that the Streamable HTTP transport uses.
///
/// Cloning is cheap and every clone (and every [`McpClient`] created with
/// [`serve`](Self::serve)) shares the same tokens, so a refresh made here is
/// picked up by the next MCP request.
#[derive(Clone)]
pub struct OAuthSession {
    mcp_url: String,
    redirect_uri: String,
    auth_client: AuthClient<reqwest::Client>,
}

impl std::fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSession")
            .field("mcp_url", &self.mcp_url)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl OAuthSession {
    /// The MCP endpoint this session was authorized for.
    pub fn mcp_url(&self) -> &str {
        &self.mcp_url
    }

    /// The redirect URI that was registered and used for the login.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// rmcp's HTTP client wrapper that authorizes Streamable HTTP requests.
    pub fn auth_client(&self) -> AuthClient<reqwest::Client> {
        self.auth_client.clone()
    }

    /// The shared rmcp [`AuthorizationManager`], for anything not wrapped here.
    pub fn authorization_manager(&self) -> Arc<Mutex<AuthorizationManager>> {
        self.auth_client.auth_manager.clone()
    }

    /// The credentials rmcp currently holds.
    pub async fn credentials(&self) -> anyhow::Result<Credentials> {
        let manager = self.auth_client.auth_manager.lock().await;
        let (client_id, token) = manager.get_credentials().await?;
        let token = token.context("no token has been issued yet")?;
        let token = serde_json::to_value(&token)?;
        let text = |key: &str| token.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Credentials {
            client_id,
            access_token: text("access_token").context("token response lacks access_token")?,
            refresh_token: text("refresh_token"),
            token_type: text("token_type").unwrap_or_default(),
            expires_in: token.get("expires_in").and_then(|v| v.as_u64()),
            scope: text("scope"),
        })
    }

    /// Forces a `refresh_token` grant through rmcp
    /// ([`AuthorizationManager::refresh_token`]) and returns the new credentials.
    ///
    /// rmcp sends `grant_type=refresh_token`, `refresh_token`, `client_id` and
    /// `resource`, stores the response, and keeps the old refresh token only if
    /// the response did not rotate it.
    pub async fn refresh(&self) -> anyhow::Result<Credentials> {
        self.auth_client.auth_manager.lock().await.refresh_token().await.context("refreshing the access token")?;
        self.credentials().await
    }

    /// The access token the transport would send next; like the transport, this
    /// refreshes first when the token is (nearly) expired.
    pub async fn access_token(&self) -> anyhow::Result<String> {
        Ok(self.auth_client.get_access_token().await?)
    }

    /// The scopes rmcp believes were granted.
    pub async fn granted_scopes(&self) -> Vec<String> {
        self.auth_client.auth_manager.lock().await.get_current_scopes().await
    }

    /// Opens a new MCP session (Streamable HTTP) authorized by these credentials.
    pub async fn serve(&self) -> anyhow::Result<McpClient> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.mcp_url.as_str());
        let transport = StreamableHttpClientTransport::with_client(self.auth_client(), config);
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new(CLIENT_NAME, env!("CARGO_PKG_VERSION")),
        );
        info.serve(transport).await.with_context(|| format!("MCP initialize with {}", self.mcp_url))
    }
}

/// Runs the whole OAuth flow against the MCP server at `mcp_url` and returns
/// the authorized session (no MCP connection is opened yet).
pub async fn authorize(mcp_url: &str, login: impl LoginDriver) -> anyhow::Result<OAuthSession> {
    authorize_with_scopes(mcp_url, &[], login).await
}

/// [`authorize`], asking for these scopes instead of the ones the server's 401 challenge
/// names (none: the challenge's), as a client that needs a tool's extra scope does.
pub async fn authorize_with_scopes(
    mcp_url: &str,
    scopes: &[&str],
    mut login: impl LoginDriver,
) -> anyhow::Result<OAuthSession> {
    // The redirect URI must exist (e.g. a bound loopback port) before we
    // register a client for it.
    let redirect_uri = login.redirect_uri().await?;

    // Knock without a token, as a platform does, to learn where the
    // protected-resource metadata is (and which scopes the server wants).
    let challenge = unauthenticated_challenge(mcp_url).await?;

    // Discovery (RFC 9728 + RFC 8414), dynamic client registration (RFC 7591)
    // and the PKCE authorization URL, all inside rmcp.
    let mut oauth = OAuthState::new(mcp_url, None).await?;
    let mut request = AuthorizationRequest::new(redirect_uri.as_str())
        .with_client_name(CLIENT_NAME)
        // Scopes: the given ones, else the challenge's `scope`, else the resource's `scopes_supported`.
        .with_initial_scope_selection()
        .with_scopes(scopes.iter().copied());
    if let Some(challenge) = challenge {
        request = request.with_challenge(challenge);
    }
    oauth.start_authorization(request).await.context("OAuth discovery / client registration")?;
    let authorization_url = oauth.get_authorization_url().await?;
    tracing::debug!(%authorization_url, "authorization URL");

    // The browser part: sign in, come back with `code` and `state`.
    let response = login.authorize(&authorization_url, &redirect_uri).await.context("signing in")?;

    // Token request: code + PKCE verifier + resource; `state` and `iss` are checked.
    oauth
        .handle_callback_with_issuer(&response.code, &response.state, response.iss.as_deref())
        .await
        .context("exchanging the authorization code")?;
    let manager = oauth.into_authorization_manager().context("rmcp did not reach the authorized state")?;

    Ok(OAuthSession {
        mcp_url: mcp_url.to_owned(),
        redirect_uri,
        auth_client: AuthClient::new(reqwest::Client::new(), manager),
    })
}

/// Authorizes with [`authorize`] and opens an MCP session with [`OAuthSession::serve`].
pub async fn connect(mcp_url: &str, login: impl LoginDriver) -> anyhow::Result<(McpClient, OAuthSession)> {
    let session = authorize(mcp_url, login).await?;
    let client = session.serve().await?;
    Ok((client, session))
}

/// Sends an `initialize` request without a token and returns the
/// `WWW-Authenticate` challenge of the expected `401`.
async fn unauthenticated_challenge(mcp_url: &str) -> anyhow::Result<Option<String>> {
    let initialize = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": CLIENT_NAME, "version": env!("CARGO_PKG_VERSION") },
        },
    });
    let response = reqwest::Client::new()
        .post(mcp_url)
        .header(ACCEPT, "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .with_context(|| format!("POST {mcp_url}"))?;
    if response.status() != StatusCode::UNAUTHORIZED {
        tracing::warn!(
            status = %response.status(),
            "MCP endpoint did not answer an unauthenticated request with 401; \
             falling back to rmcp's own discovery"
        );
        return Ok(None);
    }
    let challenge = response.headers().get(WWW_AUTHENTICATE).and_then(|value| value.to_str().ok()).map(str::to_owned);
    tracing::debug!(?challenge, "401 challenge");
    Ok(challenge)
}
