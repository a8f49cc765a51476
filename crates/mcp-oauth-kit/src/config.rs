//! Configuration: the public URL every advertised URL is built from, lifetimes, limits.
//!
//! Invariant: nothing the server advertises or redirects to is derived from a request's `Host`
//! or `X-Forwarded-*` headers; it all comes from [`Config::public_url`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::secret::Redacted;
use crate::store::Store;
use crate::upstream_tokens::{UpstreamClient, UpstreamTokenKey};

mod env;
mod parse;

use parse::parse_public_url;

/// How the kit serves. Build it with [`Config::new`] or [`Config::from_env`], then adjust
/// fields or use the `with_*` methods. Its `Debug` redacts [`Config::database_url`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The URL clients reach this server at, without a trailing slash (for example
    /// `https://mcp.example.com`). It is the OAuth issuer; the MCP endpoint is
    /// `{public_url}{mcp_path}`. Behind a TLS proxy or tunnel this is the proxy's `https` URL.
    pub public_url: Url,
    /// Where [`McpServer::run`](crate::McpServer::run) listens. Default `127.0.0.1:8000`.
    pub listen_addr: SocketAddr,
    /// The MCP endpoint's path. Default `/mcp` (and `/mcp/` is served too).
    pub mcp_path: String,
    /// Every scope a client may ask for. Default `["mcp"]`.
    pub scopes_supported: Vec<String>,
    /// What an authorization request without `scope` (or with an empty one) gets. Default `["mcp"]`.
    pub default_scopes: Vec<String>,
    /// What each scope lets a client do, in words, as the consent page lists it (a scope
    /// without one is shown by its name). Default: `mcp` is "Use this server's tools on your
    /// behalf". Set with [`Config::with_scope_description`].
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    /// Lifetime of access tokens. Default one hour.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens. Default 30 days; each rotation starts a new lifetime, within
    /// [`Config::grant_lifetime`].
    pub refresh_token_ttl: Duration,
    /// How long a user's sign-in to a client lasts, however often its refresh token rotates:
    /// after it, refresh fails with `invalid_grant` and the user signs in again. Default 90 days.
    pub grant_lifetime: Duration,
    /// Lifetime of authorization codes. Default 60 seconds.
    pub code_ttl: Duration,
    /// How long a user has to sign in after `/authorize`. Default 10 minutes.
    pub login_ttl: Duration,
    /// How long after a rotation a retried refresh with the old token still gets the same new
    /// pair instead of revoking the family. Default 10 seconds; zero turns it off.
    pub refresh_grace: Duration,
    /// How long a browser stays signed in at the authorization server after a password
    /// sign-in (the `mcp_session` cookie). While it lasts, an authorization request asks that
    /// user only to approve, or nothing at all for a client whose consent they remembered.
    /// Default 12 hours; zero turns sessions, and with them remembered consent, off.
    pub session_ttl: Duration,
    /// How long a consent the user asked to remember ("Remember this decision") lasts.
    /// Default 90 days; zero turns remembered consent off (the checkbox is not offered).
    pub consent_ttl: Duration,
    /// How often [`McpServer::serve`](crate::McpServer::serve) sweeps: drops expired codes,
    /// tokens, pending sign-ins, sign-in sessions and consent, finished rate-limit windows and
    /// idle MCP session bindings. Default 60 seconds. Expired records are refused when read
    /// whatever this is; the interval only bounds how long they keep memory or database rows
    /// (with several instances on one database, each sweeps). Zero is not an interval:
    /// [`Config::from_env`] rejects it, and the sweeper takes a zero set in code as the default.
    pub sweep_interval: Duration,
    /// How long a request waits for one store operation before it fails (503 with
    /// `Retry-After`, or an MCP error): a query stuck behind a lock, or a database that
    /// stopped answering without closing the connection, would otherwise hold the request, and
    /// the client, for good. Default 15 seconds, above the pools' own limits for getting a
    /// connection (3 s on PostgreSQL, 10 s on SQLite), which report an unreachable database
    /// first. The sweeper's operations and `revoke_all` are not bounded. Zero turns the bound
    /// off.
    pub store_timeout: Duration,
    /// How long a registered client that no user has signed in to yet is kept. Anyone may
    /// register (RFC 7591), so registrations nothing ever used would otherwise pile up for
    /// good; the sweeper deletes them once they are this old and no sign-in for them is in
    /// progress. A client stays for good from the first code issued to it. Default 24 hours;
    /// zero keeps every registration.
    pub unused_client_ttl: Duration,
    /// Wrong passwords allowed per pending authorization before it is dropped. Default 5.
    pub max_login_attempts: u32,
    /// Failed sign-ins per (username, client address) within [`Config::login_failure_window`]
    /// before that pair gets 429: the tight limit, which an attacker's address cannot turn
    /// against the user signing in at another. Default 5; 0 turns it off.
    pub login_failures_per_user_and_ip: u32,
    /// Failed sign-ins per username, from any address, within the window before each further
    /// attempt for it waits a delay that doubles from 1 second up to a minute: against guessing
    /// spread over many addresses, without walling the user off. Default 20; 0 turns it off.
    pub login_failures_per_user: u32,
    /// Failed sign-ins per client address within the window before it gets 429. Default 20;
    /// 0 turns it off.
    pub login_failures_per_ip: u32,
    /// The window of the sign-in throttles. Default 15 minutes.
    pub login_failure_window: Duration,
    /// Requests per client address per minute at the OAuth endpoints other than `/token`
    /// (`/register`, `/authorize`, `/login`, `/logout`, `/revoke`, `/introspect`). Default 600;
    /// 0 turns it off.
    pub oauth_requests_per_minute: u32,
    /// Requests per client address per minute at `/token`, counted apart from the other
    /// endpoints: a platform refreshes all its users' tokens from a few shared addresses.
    /// Default 3000; 0 turns it off.
    pub token_requests_per_ip_per_minute: u32,
    /// Requests per client (the `client_id` of the form or of HTTP Basic) per minute at
    /// `/token`, from all addresses together. Default 1200; 0 turns it off.
    pub token_requests_per_client_per_minute: u32,
    /// Take the client address from the right-most `X-Forwarded-For` entry (a port after it is
    /// ignored; an entry that is not an address falls back to the TCP peer). Only for a server
    /// behind a proxy that sets it; otherwise clients could pick their own address. Whatever
    /// the source, the per-address limits count an IPv6 address by its /64.
    pub trust_forwarded_for: bool,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` entries are believed: when
    /// the TCP peer is one of them, the entries are read from the right, skipping those in
    /// this list, and the first other address is the client's (behind a CDN and nginx, list
    /// both). With [`Config::trust_forwarded_for`] the peer is trusted whatever it is, and this
    /// list names the further hops. Default empty.
    pub trusted_proxies: Vec<crate::client_address::AddressRange>,
    /// How long a verified access token is trusted without asking again: the built-in
    /// authorization server's store, or the [`AuthProvider`](crate::auth::AuthProvider) of a resource
    /// server. A token revoked on another instance, or by an external identity provider, keeps
    /// working for at most this long (a revocation by this instance's authorization server
    /// stops it at once); never past the token's expiry. Default 1 second; zero asks on every
    /// request.
    pub token_cache_ttl: Duration,
    /// Accept `https` client ids that name a Client ID Metadata Document. Needs the `cimd`
    /// feature: default `true` with it, `false` without, and
    /// [`McpServerBuilder::build`](crate::McpServerBuilder::build) refuses `true` without it.
    pub client_id_metadata_documents: bool,
    /// Let metadata documents live on private or loopback addresses (and loopback `http`).
    /// This opens server-side request forgery into your network: for tests and closed
    /// deployments only. Default `false`.
    pub danger_allow_private_cimd_hosts: bool,
    /// Root certificates (DER) trusted for metadata document fetches besides the platform's.
    /// Whoever holds the key of such a root can pose as any client's document host: for tests
    /// with a private CA only. Default empty.
    pub danger_cimd_root_certificates: Vec<Vec<u8>>,
    /// Largest accepted body at the OAuth endpoints. Default 64 KiB.
    pub max_oauth_body_bytes: usize,
    /// Largest accepted body at the MCP endpoint. Default 4 MiB.
    pub max_mcp_body_bytes: usize,
    /// Host names (with or without port) accepted besides the public URL's own. For DNS
    /// rebinding protection every other `Host` gets 403.
    pub extra_allowed_hosts: Vec<String>,
    /// Browser origins accepted besides the public URL's own (for example a web client's).
    pub extra_allowed_origins: Vec<String>,
    /// Serve MCP statelessly (no `Mcp-Session-Id`; JSON responses). Not needed for several
    /// instances: sessions are kept in the store and continue on any instance. Default
    /// `false`: sessions for `initialize` clients; clients of protocol 2026-07-28 are always
    /// served statelessly.
    pub stateless: bool,
    /// How long an MCP session may go unused before the sweeper deletes it from the store;
    /// its client then gets 404 and starts a new session. Sessions are kept in the store so
    /// that every instance sharing it, and this one after a restart, continues them. Use is
    /// written to the store once per [`Config::sweep_interval`], so keep this well above it.
    /// Default 24 hours.
    pub mcp_session_idle_ttl: Duration,
    /// Name shown on the login page and in `serverInfo`.
    pub server_name: String,
    /// Where OAuth state is kept: `memory`, `sqlite://path` or `postgres://…` (see
    /// [`open_store`](crate::store::open_store); [`Config::open_store`] opens it). From
    /// `MCP_OAUTH_DATABASE_URL`, or when that is unset `DATABASE_URL`: an application whose
    /// own data is in `DATABASE_URL` gives the kit its database with the first. `None` leaves
    /// the choice to the application. `Debug` shows it as `[redacted]`: it may hold a password.
    pub database_url: Option<String>,
    /// The variable [`Config::from_env`] read [`Config::database_url`] from, and its value:
    /// messages name that variable while the field still holds that value.
    database_url_from_env: Option<(&'static str, String)>,
    /// Where every expiry the kit decides on reads the time: tokens, codes, sign-ins, sessions,
    /// consent, rate-limit windows, the verified-token cache and the sweeper. Default
    /// [`SystemClock`]; tests set a [`ManualClock`](crate::clock::ManualClock) (also through
    /// [`McpServerBuilder::clock`](crate::McpServerBuilder::clock)) to move time instead of sleeping.
    pub clock: Arc<dyn Clock>,
    /// The key that seals users' upstream tokens at rest (see
    /// [`AccessToken::upstream_token`](crate::AccessToken::upstream_token)), from
    /// `UPSTREAM_TOKEN_KEY` (32 bytes in base64). `None` keeps no upstream tokens; building a
    /// server with [`Config::upstream_clients`] but no key fails. `Debug` redacts it.
    pub upstream_token_key: Option<UpstreamTokenKey>,
    /// The kit's client registrations at upstream providers, which refresh users' upstream
    /// tokens: an upstream token is kept only for one of these clients.
    pub upstream_clients: Vec<UpstreamClient>,
    /// Where [`McpServer::run`](crate::McpServer::run) and
    /// [`McpServer::serve`](crate::McpServer::serve) serve Prometheus metrics (`GET /metrics`)
    /// and `/healthz` and `/readyz`, from `METRICS_ADDR` (for example `127.0.0.1:9464`). A
    /// listener of its own, never the public port: keep it private. Default `None`: no metrics
    /// are recorded. Needs the `metrics` feature; see [`crate::metrics`].
    pub metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field has to be placed here (and redacted if secret).
        let Self {
            public_url,
            listen_addr,
            mcp_path,
            scopes_supported,
            default_scopes,
            scope_descriptions,
            access_token_ttl,
            refresh_token_ttl,
            grant_lifetime,
            code_ttl,
            login_ttl,
            refresh_grace,
            session_ttl,
            consent_ttl,
            sweep_interval,
            store_timeout,
            unused_client_ttl,
            max_login_attempts,
            login_failures_per_user_and_ip,
            login_failures_per_user,
            login_failures_per_ip,
            login_failure_window,
            oauth_requests_per_minute,
            token_requests_per_ip_per_minute,
            token_requests_per_client_per_minute,
            trust_forwarded_for,
            trusted_proxies,
            token_cache_ttl,
            client_id_metadata_documents,
            danger_allow_private_cimd_hosts,
            danger_cimd_root_certificates,
            max_oauth_body_bytes,
            max_mcp_body_bytes,
            extra_allowed_hosts,
            extra_allowed_origins,
            stateless,
            mcp_session_idle_ttl,
            server_name,
            database_url,
            database_url_from_env: _,
            clock,
            upstream_token_key,
            upstream_clients,
            metrics_addr,
        } = self;
        f.debug_struct("Config")
            .field("public_url", public_url)
            .field("listen_addr", listen_addr)
            .field("mcp_path", mcp_path)
            .field("scopes_supported", scopes_supported)
            .field("default_scopes", default_scopes)
            .field("scope_descriptions", scope_descriptions)
            .field("access_token_ttl", access_token_ttl)
            .field("refresh_token_ttl", refresh_token_ttl)
            .field("grant_lifetime", grant_lifetime)
            .field("code_ttl", code_ttl)
            .field("login_ttl", login_ttl)
            .field("refresh_grace", refresh_grace)
            .field("session_ttl", session_ttl)
            .field("consent_ttl", consent_ttl)
            .field("sweep_interval", sweep_interval)
            .field("store_timeout", store_timeout)
            .field("unused_client_ttl", unused_client_ttl)
            .field("max_login_attempts", max_login_attempts)
            .field("login_failures_per_user_and_ip", login_failures_per_user_and_ip)
            .field("login_failures_per_user", login_failures_per_user)
            .field("login_failures_per_ip", login_failures_per_ip)
            .field("login_failure_window", login_failure_window)
            .field("oauth_requests_per_minute", oauth_requests_per_minute)
            .field("token_requests_per_ip_per_minute", token_requests_per_ip_per_minute)
            .field("token_requests_per_client_per_minute", token_requests_per_client_per_minute)
            .field("trust_forwarded_for", trust_forwarded_for)
            .field("trusted_proxies", trusted_proxies)
            .field("token_cache_ttl", token_cache_ttl)
            .field("client_id_metadata_documents", client_id_metadata_documents)
            .field("danger_allow_private_cimd_hosts", danger_allow_private_cimd_hosts)
            // How many: a certificate's bytes say nothing a reader of this output needs.
            .field("danger_cimd_root_certificates", &danger_cimd_root_certificates.len())
            .field("max_oauth_body_bytes", max_oauth_body_bytes)
            .field("max_mcp_body_bytes", max_mcp_body_bytes)
            .field("extra_allowed_hosts", extra_allowed_hosts)
            .field("extra_allowed_origins", extra_allowed_origins)
            .field("stateless", stateless)
            .field("mcp_session_idle_ttl", mcp_session_idle_ttl)
            .field("server_name", server_name)
            .field("database_url", &database_url.as_ref().map(|_| Redacted))
            .field("clock", clock)
            .field("upstream_token_key", upstream_token_key)
            .field("upstream_clients", upstream_clients)
            .field("metrics_addr", metrics_addr)
            .finish()
    }
}

impl Config {
    /// A configuration with the defaults and the given public URL.
    ///
    /// ```
    /// use mcp_oauth_kit::Config;
    ///
    /// let config = Config::new("https://mcp.example.com")?;
    /// assert_eq!(config.resource(), "https://mcp.example.com/mcp");
    /// assert!(Config::new("mcp.example.com").is_err()); // not an absolute http(s) URL
    /// # Ok::<(), mcp_oauth_kit::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] when the URL is not an absolute `http` or `https` URL without query
    /// or fragment.
    pub fn new(public_url: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            public_url: parse_public_url("public_url", public_url)?,
            listen_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000),
            mcp_path: "/mcp".into(),
            scopes_supported: vec!["mcp".into()],
            default_scopes: vec!["mcp".into()],
            scope_descriptions: [("mcp".to_owned(), "Use the tools of this server on your behalf".to_owned())].into(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            grant_lifetime: Duration::from_secs(90 * 24 * 3600),
            code_ttl: Duration::from_secs(60),
            login_ttl: Duration::from_secs(600),
            refresh_grace: Duration::from_secs(10),
            session_ttl: Duration::from_secs(12 * 3600),
            consent_ttl: Duration::from_secs(90 * 24 * 3600),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            store_timeout: Duration::from_secs(15),
            unused_client_ttl: Duration::from_secs(24 * 3600),
            max_login_attempts: 5,
            login_failures_per_user_and_ip: 5,
            login_failures_per_user: 20,
            login_failures_per_ip: 20,
            login_failure_window: Duration::from_secs(15 * 60),
            oauth_requests_per_minute: 600,
            token_requests_per_ip_per_minute: 3000,
            token_requests_per_client_per_minute: 1200,
            trust_forwarded_for: false,
            trusted_proxies: Vec::new(),
            token_cache_ttl: Duration::from_secs(1),
            client_id_metadata_documents: cfg!(feature = "cimd"),
            danger_allow_private_cimd_hosts: false,
            danger_cimd_root_certificates: Vec::new(),
            max_oauth_body_bytes: 64 * 1024,
            max_mcp_body_bytes: 4 * 1024 * 1024,
            extra_allowed_hosts: Vec::new(),
            extra_allowed_origins: Vec::new(),
            stateless: false,
            mcp_session_idle_ttl: Duration::from_secs(24 * 3600),
            server_name: "MCP server".into(),
            database_url: None,
            database_url_from_env: None,
            clock: Arc::new(SystemClock),
            upstream_token_key: None,
            upstream_clients: Vec::new(),
            metrics_addr: None,
        })
    }

    /// Set the name shown on the login page and in `serverInfo`.
    ///
    /// ```
    /// use mcp_oauth_kit::Config;
    ///
    /// let config = Config::new("https://notes.example.com")?.with_server_name("Acme Notes");
    /// assert_eq!(config.server_name, "Acme Notes");
    /// # Ok::<(), mcp_oauth_kit::ConfigError>(())
    /// ```
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Set the scopes clients may ask for and the default ones (granted when a client asks
    /// for none). A tool's [`ToolDef::scope`](crate::ToolDef::scope) must be among the
    /// supported ones.
    ///
    /// ```
    /// use mcp_oauth_kit::Config;
    ///
    /// // Everyone reads notes; writing them is a scope the client asks for.
    /// let config = Config::new("https://notes.example.com")?.with_scopes(&["notes", "notes:write"], &["notes"]);
    /// assert_eq!(config.default_scopes, ["notes"]);
    /// # Ok::<(), mcp_oauth_kit::ConfigError>(())
    /// ```
    pub fn with_scopes(mut self, supported: &[&str], default: &[&str]) -> Self {
        self.scopes_supported = supported.iter().map(|s| (*s).to_owned()).collect();
        self.default_scopes = default.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Describe what `scope` lets a client do, in words the consent page shows instead of the
    /// scope's name.
    ///
    /// ```
    /// use mcp_oauth_kit::Config;
    ///
    /// let config = Config::new("https://notes.example.com")?
    ///     .with_scopes(&["notes", "notes:write"], &["notes"])
    ///     .with_scope_description("notes", "Read your notes")
    ///     .with_scope_description("notes:write", "Create, change and delete your notes");
    /// assert_eq!(config.scope_description("notes:write"), "Create, change and delete your notes");
    /// assert_eq!(config.scope_description("other"), "other");
    /// # Ok::<(), mcp_oauth_kit::ConfigError>(())
    /// ```
    pub fn with_scope_description(mut self, scope: impl Into<String>, description: impl Into<String>) -> Self {
        self.scope_descriptions.insert(scope.into(), description.into());
        self
    }

    /// How the consent page shows `scope`: its description, or its name when it has none.
    pub fn scope_description<'a>(&'a self, scope: &'a str) -> &'a str {
        self.scope_descriptions.get(scope).map_or(scope, String::as_str)
    }

    /// The issuer identifier (RFC 8414 §2): the public URL without a trailing slash.
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// An absolute URL on this server, e.g. `url("/token")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// The MCP endpoint's URL: the `resource` of RFC 8707 and RFC 9728.
    pub fn resource(&self) -> String {
        self.url(&self.mcp_path)
    }

    /// Open the store that [`Config::database_url`] names, migrated (see
    /// [`open_store`](crate::store::open_store)).
    ///
    /// ```no_run
    /// use mcp_oauth_kit::{Config, McpServer, StaticUserStore};
    ///
    /// # async fn run(users: StaticUserStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut config = Config::from_env()?;
    /// config.database_url.get_or_insert_with(|| "sqlite://data/oauth.sqlite3".into());
    /// let store = config.open_store().await?;
    /// McpServer::builder(config).store(store).user_store(users).build()?.run().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable (`MCP_OAUTH_DATABASE_URL` or `DATABASE_URL`) when
    /// it is unset, is not a store URL, or names a database that cannot be opened.
    pub async fn open_store(&self) -> Result<Arc<dyn Store>, ConfigError> {
        let (setting, url) = self.database_setting()?;
        crate::store::open_store(url).await.map_err(|e| ConfigError::new(setting, e.to_string()))
    }

    /// The setting [`Config::database_url`] came from (its variable, or the field when code set
    /// it) and its value.
    pub(crate) fn database_setting(&self) -> Result<(&'static str, &str), ConfigError> {
        let setting = match (&self.database_url_from_env, &self.database_url) {
            (Some((variable, read)), Some(url)) if read == url => variable,
            (_, Some(_)) => "Config::database_url",
            (_, None) => DATABASE_URL,
        };
        match self.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Ok((setting, url)),
            _ => Err(ConfigError::new(setting, "not set: name the store (memory, sqlite://PATH or postgres://…)")),
        }
    }

    /// Whether cookies must be `Secure` (the public URL is `https`).
    pub(crate) fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Whether a user may ask for their consent to be remembered: it needs sessions (auto
    /// approval happens only for a signed-in browser) and a consent lifetime.
    pub(crate) fn remembers_consent(&self) -> bool {
        !self.session_ttl.is_zero() && !self.consent_ttl.is_zero()
    }
}

/// The variable of [`Config::database_url`], and the kit's own that wins over it.
pub(crate) const DATABASE_URL: &str = "DATABASE_URL";
pub(crate) const MCP_OAUTH_DATABASE_URL: &str = "MCP_OAUTH_DATABASE_URL";

/// [`Config::sweep_interval`] unless configured otherwise.
pub(crate) const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_database_url() {
        let mut config = Config::new("https://mcp.example.com").expect("config");
        config.database_url = Some("postgres://app:db-pass-4f2a@db.internal/oauth?password=q-pass-9c1e".into());
        let shown = format!("{config:?}");
        for secret in ["db-pass-4f2a", "q-pass-9c1e", "db.internal"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("database_url: Some([redacted])"), "{shown}");
        assert!(shown.contains("mcp.example.com") && shown.contains("login_failures_per_ip: 20"), "{shown}");
        config.database_url = None;
        assert!(format!("{config:?}").contains("database_url: None"));
    }
}
