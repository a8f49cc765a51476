//! Sign-in at an upstream OpenID Connect provider (Keycloak, Auth0, Entra ID, Google, …): the
//! login page offers "Continue with …", the user authenticates there, and the kit issues its
//! own code and tokens to the MCP client as after a password sign-in.
//!
//! MCP clients see nothing of the upstream: they discover, register and redeem codes at the
//! kit's own authorization server, and get the kit's own tokens. Towards the upstream the kit
//! is a confidential client (OpenID Connect Core 1.0 §3.1, the authorization code flow):
//!
//! - one redirect URI, `{PUBLIC_URL}/oauth/callback`, to register at the provider;
//! - client authentication `client_secret_basic`, or `client_secret_post` when the provider's
//!   metadata offers only that;
//! - PKCE S256 (RFC 7636), a `state` bound to the browser and to the pending authorization,
//!   and a `nonce` (see `endpoints/callback.rs`);
//! - the id_token verified with the provider's keys (its `jwks_uri`, cached, fetched again
//!   when a token names a key it does not know: a key rotation), under an algorithm the
//!   provider advertises and the key allows, with `iss`, `aud` (and `azp`), `exp`, `iat` and
//!   `nonce` checked (`upstream/id_token.rs`).
//!
//! # Who the caller is
//! The subject of the kit's tokens is `{issuer}#{sub}`: the provider's issuer identifier and
//! its `sub`, which OpenID Connect guarantees to be stable and unique at that issuer. A
//! [`UserStore`]'s ids therefore cannot collide with upstream users unless
//! they start with the issuer and `#`, and the kit refuses a password sign-in whose user id
//! does. The username is the first of `preferred_username`, `name`, `email` and `sub`; `name`,
//! `email`, `email_verified` and `groups` become the caller's
//! [claims](crate::AccessToken::claim), from the id_token or else from the provider's userinfo
//! endpoint. At a refresh the kit keeps the claims of the sign-in (the user store is not asked
//! about upstream users); the grant ends after [`Config::grant_lifetime`](crate::Config).
//!
//! # Plain OAuth 2.0 providers
//! A provider without OpenID Connect (GitHub, GitLab's OAuth apps, …) has no discovery and no
//! id_token: [`OidcProvider::oauth2`] takes its endpoints and a [`UserinfoMapping`] that names
//! the members of its userinfo answer holding the subject, username, name and email, and
//! [`OidcProvider::github`] is that for GitHub. The flow is the same (PKCE S256, the state
//! bound to the browser, the same callback) without a nonce, and the subject is
//! `{identifier}#{subject}`, such as `https://github.com#583231`, under the same collision rule.
//!
//! # With a user store
//! Given both [`McpServerBuilder::user_store`](crate::McpServerBuilder::user_store) and
//! [`McpServerBuilder::upstream`](crate::McpServerBuilder::upstream), the login page shows the
//! "Continue with …" button below the password form, and either way of signing in issues the
//! code and starts the browser's sign-in session. Given only the upstream, the page has no
//! password fields, and its one button, "Continue with …", goes to the provider.

mod exchange;
mod id_token;
mod oauth2;

use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::Algorithm;
use serde_json::Value;
use url::Url;

use crate::error::UserStoreError;
use crate::escaped::Escaped;
use crate::secret::Password;
use crate::user_store::{User, UserStore};
use crate::verifiers::jwks::RemoteKeys;
use crate::verifiers::upstream_http::{self, checked_url};

pub(crate) use exchange::{Pending, UpstreamSignIn, UpstreamTokens};
pub use oauth2::{OAuth2Endpoints, UserinfoMapping};

/// The scopes asked for when none are given.
const DEFAULT_SCOPES: &str = "openid profile email";
/// The default shortest time between two fetches of the provider's key set.
const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Why an upstream provider could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// A URL (the issuer, or an endpoint in its metadata) is malformed or not `https` (plain
    /// `http` is allowed only to a loopback host).
    #[error("{0}")]
    InvalidUrl(String),
    /// The provider's OpenID discovery document could not be fetched or does not fit.
    #[error("OpenID discovery at the upstream provider failed: {0}")]
    Discovery(String),
    /// The HTTP client could not be built.
    #[error("cannot set up the upstream provider's HTTP client: {0}")]
    Setup(String),
    /// [`OidcProvider::from_env`]: a variable is missing or malformed, or the provider it
    /// names cannot be set up.
    #[error("invalid configuration: {variable}: {reason}")]
    Env {
        /// The environment variable at fault.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// How the kit authenticates itself at the provider's token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// HTTP Basic with the URL-encoded client id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// An upstream OpenID Connect provider where users sign in, given to
/// [`McpServerBuilder::upstream`](crate::McpServerBuilder::upstream). See the [module
/// documentation](self) for the protocol and how its users become callers.
///
/// Register `{PUBLIC_URL}/oauth/callback` as the redirect URI of a confidential client at the
/// provider, then:
///
/// ```no_run
/// use mcp_oauth_kit::upstream::OidcProvider;
/// use mcp_oauth_kit::{Config, McpServer, Tools};
///
/// # async fn run(tools: Tools) -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::from_env()?;
/// // Fails at start, naming what is wrong, when the provider's metadata cannot be read.
/// let keycloak = OidcProvider::discover("https://sso.example.com/realms/acme", "mcp-server", "client-secret")
///     .await?
///     .display_name("Acme SSO")
///     .scopes(["openid", "profile", "email"]);
/// McpServer::builder(config).upstream(keycloak).tools(tools).build()?.run().await?;
/// # Ok(()) }
/// ```
pub struct OidcProvider {
    issuer: String,
    client_id: String,
    client_secret: Password,
    client_auth: ClientAuth,
    authorization_endpoint: Url,
    token_endpoint: Url,
    userinfo_endpoint: Option<Url>,
    identity: Identity,
    /// Whether the provider sends `iss` on its authorization responses (RFC 9207).
    sends_iss: bool,
    http: reqwest::Client,
    display_name: String,
    scopes: String,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

/// How the provider tells the kit who signed in.
// One per server: boxing the larger variant would save nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
enum Identity {
    /// OpenID Connect: an id_token signed with a key of the provider's set.
    IdToken {
        jwks_uri: Url,
        /// The id_token algorithms the provider advertises, among those the kit verifies.
        algorithms: Vec<Algorithm>,
        keys: RemoteKeys,
    },
    /// Plain OAuth 2.0: the userinfo endpoint's answer, read through a mapping.
    Userinfo(UserinfoMapping),
}

/// A string member of a metadata document.
fn member<'a>(doc: &'a Value, name: &str) -> Option<&'a str> {
    doc.get(name).and_then(Value::as_str)
}

/// A string-array member of a metadata document; `None` when absent.
fn members(doc: &Value, name: &str) -> Option<Vec<String>> {
    doc.get(name).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
}

/// An id_token algorithm the kit verifies: asymmetric only (never `none` or HMAC, whose key
/// would be the client secret).
fn id_token_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

impl OidcProvider {
    /// Read the provider's OpenID discovery document (`{issuer}/.well-known/openid-configuration`)
    /// and set up the client `client_id` with its `client_secret`.
    ///
    /// # Errors
    /// [`UpstreamError`] when the issuer is not an `https` URL (or `http` to a loopback host),
    /// the document cannot be fetched, its `issuer` is not `issuer` exactly, an endpoint is
    /// missing or not `https`, the provider supports neither `client_secret_basic` nor
    /// `client_secret_post`, PKCE S256, or an asymmetric id_token algorithm.
    pub async fn discover(
        issuer: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, UpstreamError> {
        let given = issuer.trim();
        let discovery = checked_url(&format!("{}/.well-known/openid-configuration", given.trim_end_matches('/')))
            .map_err(|e| UpstreamError::InvalidUrl(format!("the issuer: {e}")))?;
        let http = upstream_http::client().map_err(|e| UpstreamError::Setup(e.to_string()))?;
        let request = http.get(discovery.clone()).header("accept", "application/json");
        let body =
            upstream_http::send(request, &discovery).await.map_err(|e| UpstreamError::Discovery(e.to_string()))?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Discovery(format!("the metadata is not JSON: {e}")))?;
        let bad = |what: String| UpstreamError::Discovery(what);
        // OpenID Connect Discovery §4.3: the issuer must be the one asked for. Some providers'
        // identifiers end with a slash (Auth0's), which users may or may not copy.
        let issuer = match member(&doc, "issuer") {
            Some(i) if i.trim_end_matches('/') == given.trim_end_matches('/') => i.to_owned(),
            _ => return Err(bad(format!("the metadata's issuer is not {given}"))),
        };
        let endpoint = |name: &str| -> Result<Url, UpstreamError> {
            let url = member(&doc, name).ok_or_else(|| bad(format!("the metadata has no {name}")))?;
            checked_url(url).map_err(|e| bad(format!("{name}: {e}")))
        };
        let authorization_endpoint = endpoint("authorization_endpoint")?;
        let token_endpoint = endpoint("token_endpoint")?;
        let jwks_uri = endpoint("jwks_uri")?;
        let userinfo_endpoint = match member(&doc, "userinfo_endpoint") {
            Some(_) => Some(endpoint("userinfo_endpoint")?),
            None => None,
        };
        // OpenID Connect Discovery §3: absent means client_secret_basic.
        let auth_methods = members(&doc, "token_endpoint_auth_methods_supported")
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        let client_auth = if auth_methods.iter().any(|m| m == "client_secret_basic") {
            ClientAuth::Basic
        } else if auth_methods.iter().any(|m| m == "client_secret_post") {
            ClientAuth::Post
        } else {
            return Err(bad("the provider supports neither client_secret_basic nor client_secret_post".into()));
        };
        // Many providers do not advertise PKCE; one that lists its methods must list S256.
        if members(&doc, "code_challenge_methods_supported").is_some_and(|m| !m.iter().any(|m| m == "S256")) {
            return Err(bad("the provider does not support PKCE S256".into()));
        }
        // OpenID Connect Discovery §3: the list is required and includes RS256; absent, RS256.
        let algorithms: Vec<Algorithm> = members(&doc, "id_token_signing_alg_values_supported")
            .unwrap_or_else(|| vec!["RS256".into()])
            .iter()
            .filter_map(|a| id_token_algorithm(a))
            .collect();
        if algorithms.is_empty() {
            return Err(bad(
                "the provider signs id_tokens with no algorithm the kit accepts (RS*, PS*, ES*, EdDSA)".into()
            ));
        }
        let sends_iss = doc.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true));
        let display_name = Url::parse(&issuer).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        tracing::info!(issuer = %Escaped(&issuer), "upstream OpenID provider discovered");
        Ok(Self {
            identity: Identity::IdToken {
                keys: RemoteKeys::new(jwks_uri.clone(), http.clone(), DEFAULT_MIN_REFETCH_INTERVAL),
                jwks_uri,
                algorithms,
            },
            issuer,
            client_id: client_id.into(),
            client_secret: Password::new(client_secret),
            client_auth,
            authorization_endpoint,
            token_endpoint,
            userinfo_endpoint,
            sends_iss,
            http,
            display_name,
            scopes: DEFAULT_SCOPES.into(),
        })
    }

    /// The provider that the environment describes, or `None` when `OIDC_ISSUER` is unset:
    /// `OIDC_ISSUER` (the issuer URL), `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET` and, optionally,
    /// `OIDC_SCOPES` (space-separated; default `openid profile email`). The button says
    /// "Continue with" the issuer's host.
    ///
    /// ```no_run
    /// # async fn run(builder: mcp_oauth_kit::McpServerBuilder) -> Result<(), Box<dyn std::error::Error>> {
    /// let builder = match mcp_oauth_kit::upstream::OidcProvider::from_env().await? {
    ///     Some(upstream) => builder.upstream(upstream),
    ///     None => builder,
    /// };
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`UpstreamError::Env`], naming the variable, when one is missing or discovery fails.
    pub async fn from_env() -> Result<Option<Self>, UpstreamError> {
        let var = |name: &'static str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(issuer) = var("OIDC_ISSUER") else { return Ok(None) };
        let need = |variable: &'static str| {
            var(variable).ok_or(UpstreamError::Env { variable, reason: "required when OIDC_ISSUER is set".into() })
        };
        let (client_id, secret) = (need("OIDC_CLIENT_ID")?, need("OIDC_CLIENT_SECRET")?);
        let provider = Self::discover(issuer.trim(), client_id, secret)
            .await
            .map_err(|e| UpstreamError::Env { variable: "OIDC_ISSUER", reason: e.to_string() })?;
        Ok(Some(match var("OIDC_SCOPES") {
            Some(scopes) => provider.scopes(scopes.split_whitespace()),
            None => provider,
        }))
    }

    /// The name on the login page's button, "Continue with `name`" (default: the issuer's host).
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }

    /// The scopes to ask the provider for (default `openid profile email`; for a plain OAuth
    /// 2.0 provider, none, or the preset's). For an OpenID provider `openid` is added when
    /// missing: without it there is no id_token.
    pub fn scopes<S: AsRef<str>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        let mut list: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        if matches!(self.identity, Identity::IdToken { .. }) && !list.iter().any(|s| s == "openid") {
            list.insert(0, "openid".into());
        }
        self.scopes = list.join(" ");
        self
    }

    /// The shortest time between two fetches of the provider's key set when id_tokens name a
    /// key id the kit does not know (default 30 s): a rotation is followed at once, and made-up
    /// key ids cost the provider at most one request per interval.
    /// A plain OAuth 2.0 provider has no keys: there it changes nothing.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        if let Identity::IdToken { jwks_uri, keys, .. } = &mut self.identity {
            *keys = RemoteKeys::new(jwks_uri.clone(), self.http.clone(), interval);
        }
        self
    }

    /// The issuer identifier (for a plain OAuth 2.0 provider, the identifier it was given).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider's `tokens` as the vault keeps them, with what refreshing them needs.
    pub(crate) fn tokens_to_keep(
        &self,
        tokens: UpstreamTokens,
        now: std::time::SystemTime,
    ) -> crate::upstream_tokens::UpstreamTokens {
        let mut kept = crate::upstream_tokens::UpstreamTokens::new(
            tokens.access_token.expose(),
            self.token_endpoint.as_str(),
            self.client_id.as_str(),
        );
        if let Some(refresh) = &tokens.refresh_token {
            kept = kept.with_refresh_token(refresh.expose());
        }
        if let Some(secs) = tokens.expires_in {
            kept = kept.with_expires_at(now + std::time::Duration::from_secs(secs));
        }
        if let Some(scope) = tokens.scope {
            kept = kept.with_scope(scope);
        }
        kept
    }

    /// The client that refreshes the tokens of users who signed in here.
    pub(crate) fn refresh_client(&self) -> crate::upstream_tokens::UpstreamClient {
        crate::upstream_tokens::UpstreamClient::new(
            self.token_endpoint.as_str(),
            self.client_id.as_str(),
            self.client_secret.expose(),
        )
    }

    /// The name on the login page's button.
    pub(crate) fn name(&self) -> &str {
        &self.display_name
    }

    /// Whether `subject` (of a grant or a user store's user) names a user of this provider.
    pub(crate) fn owns_subject(&self, subject: &str) -> bool {
        subject.strip_prefix(self.issuer.as_str()).is_some_and(|rest| rest.starts_with('#'))
    }

    /// The subject of the kit's tokens for the provider's user `sub`.
    fn subject(&self, sub: &str) -> String {
        format!("{}#{sub}", self.issuer)
    }

    /// Whether the provider's authorization responses carry `iss` (RFC 9207).
    pub(crate) fn sends_iss(&self) -> bool {
        self.sends_iss
    }

    /// The provider's authorization URL for one sign-in (OpenID Connect Core §3.1.2.1, or
    /// RFC 6749 §4.1.1 without `nonce` for a plain OAuth 2.0 provider, and without `scope`
    /// when there are none to ask for).
    pub(crate) fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> String {
        let mut url = self.authorization_endpoint.clone();
        let mut query = url.query_pairs_mut();
        query.extend_pairs([
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", request.redirect_uri),
            ("state", request.state),
            ("code_challenge", request.challenge),
            ("code_challenge_method", "S256"),
        ]);
        if !self.scopes.is_empty() {
            query.append_pair("scope", &self.scopes);
        }
        if matches!(self.identity, Identity::IdToken { .. }) {
            query.append_pair("nonce", request.nonce);
        }
        // OpenID Connect's; a plain OAuth 2.0 provider ignores a parameter it does not know.
        if request.prompt_login {
            query.append_pair("prompt", "login");
        }
        drop(query);
        url.into()
    }
}

/// What one sign-in sends the browser to the provider with.
pub(crate) struct AuthorizationRequest<'a> {
    /// Our callback, as registered at the provider.
    pub(crate) redirect_uri: &'a str,
    /// Bound to the browser and the pending authorization.
    pub(crate) state: &'a str,
    /// Sent to an OpenID provider only, which puts it in the id_token.
    pub(crate) nonce: &'a str,
    /// The PKCE S256 challenge.
    pub(crate) challenge: &'a str,
    /// Ask the provider to authenticate the user even if it has a session (`prompt=login`).
    pub(crate) prompt_login: bool,
}

/// The user store of a server whose users all sign in upstream: nobody has a password.
pub(crate) struct NoPasswords;

#[async_trait]
impl UserStore for NoPasswords {
    async fn authenticate(&self, _username: &str, _password: &Password) -> Result<Option<User>, UserStoreError> {
        Ok(None)
    }

    async fn find_by_id(&self, _id: &str) -> Result<Option<User>, UserStoreError> {
        Ok(None)
    }
}
