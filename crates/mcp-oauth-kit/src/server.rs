//! [`McpServer`]: assembles the configuration, the authorization server, the user store and
//! the MCP handler into a [`Router`], and runs it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::authorization_server::OAuthServer;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::mcp_handler::ToolsHandler;
use crate::provider::AuthProvider;
use crate::router::Router;
use crate::state::{AppState, Authority, McpEndpoint};
use crate::store::{MemoryStore, Store};
use crate::tools::Tools;
use crate::user_store::UserStore;
use crate::verified_cache::VerifiedCache;

/// How long a stopping server waits for its store to close.
const STORE_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds the MCP endpoint over rmcp's session manager, which the server keeps too: the
/// sweeper ends there the sessions that ended on another instance.
type HandlerFactory = Box<dyn FnOnce(StreamableHttpServerConfig, Arc<LocalSessionManager>) -> McpEndpoint + Send>;

/// Builds an [`McpServer`]. Start with [`McpServer::builder`].
#[must_use]
pub struct McpServerBuilder {
    config: Config,
    users: Option<Arc<dyn UserStore>>,
    store: Option<Arc<dyn Store>>,
    provider: Option<Arc<dyn AuthProvider>>,
    handler: Option<HandlerFactory>,
    tool_scopes: HashMap<String, Vec<String>>,
    /// A mistake in the tool registry, reported by `build`.
    tools_problem: Option<crate::error::ConfigError>,
    #[cfg(feature = "jwt")]
    upstream: Option<crate::upstream::OidcProvider>,
}

impl std::fmt::Debug for McpServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

fn rmcp_service<S: ServerHandler + Clone + Send + 'static>(
    handler: S,
    config: StreamableHttpServerConfig,
    sessions: Arc<LocalSessionManager>,
) -> StreamableHttpService<S, LocalSessionManager> {
    let factory = move || Ok(handler.clone());
    StreamableHttpService::new(factory, sessions, config)
}

impl McpServerBuilder {
    /// Who may sign in on the login page. Giving it makes the server its own OAuth
    /// authorization server: registration, `/authorize`, the login and consent page, `/token`
    /// and `/revoke`, with its state in [`McpServerBuilder::store`]. Each refresh asks the store
    /// again whether the user may still sign in ([`UserStore::may_sign_in`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), mcp_oauth_kit::Error> {
    /// use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
    /// let users = StaticUserStore::new().with_user_hash("u-1", "carol", "$argon2id$v=19$m=19456,t=2,p=1$…")?;
    /// McpServer::builder(Config::from_env()?).user_store(users).tools(Tools::new()).build()?.run().await
    /// # }
    /// ```
    pub fn user_store(mut self, users: impl UserStore) -> Self {
        self.users = Some(Arc::new(users));
        self
    }

    /// Where the built-in authorization server keeps clients, codes, tokens, sign-in sessions
    /// and remembered consent, and where every server keeps its rate-limit counters. Default:
    /// [`MemoryStore`] (lost on restart, and private to this process). Give instances behind
    /// one load balancer the same database, so that they share all of it.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::store::open_store;
    /// use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
    ///
    /// # async fn run(users: StaticUserStore, tools: Tools) -> Result<(), mcp_oauth_kit::Error> {
    /// let config = Config::from_env()?;
    /// // `DATABASE_URL`: `memory`, `sqlite://path` or `postgres://…`.
    /// let store = open_store(config.database_url.as_deref().unwrap_or("sqlite://oauth.db")).await?;
    /// McpServer::builder(config).store(store).user_store(users).tools(tools).build()?.run().await
    /// # }
    /// ```
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Let users sign in at an upstream OpenID Connect provider: the login page offers
    /// "Continue with …", beside the password form when a [`user_store`](Self::user_store) is
    /// given too, alone otherwise. MCP clients still see only this server's authorization
    /// server and tokens. See [`upstream`](crate::upstream) for the protocol and how the
    /// provider's users become callers.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::upstream::OidcProvider;
    /// use mcp_oauth_kit::{Config, McpServer, Tools};
    ///
    /// # async fn run(tools: Tools) -> Result<(), Box<dyn std::error::Error>> {
    /// let google = OidcProvider::discover("https://accounts.google.com", "….apps.googleusercontent.com", "secret")
    ///     .await?
    ///     .display_name("Google");
    /// McpServer::builder(Config::from_env()?).upstream(google).tools(tools).build()?.run().await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "jwt")]
    pub fn upstream(mut self, provider: crate::upstream::OidcProvider) -> Self {
        self.upstream = Some(provider);
        self
    }

    /// Serve as a resource server only, for tokens that `provider` verifies (an external
    /// identity provider's): the kit then serves `/mcp` and the protected-resource metadata,
    /// which names [`AuthProvider::authorization_servers`], and no OAuth endpoint or login page.
    /// Verified tokens are cached for [`Config::token_cache_ttl`]: a token revoked upstream
    /// keeps working for at most that long. See [`AuthProvider`] for an example.
    ///
    /// Give either this or [`McpServerBuilder::user_store`], not both.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::auth::AuthProvider;
    /// use mcp_oauth_kit::{Config, McpServer, Tools};
    ///
    /// # async fn run(my_jwt_verifier: impl AuthProvider, tools: Tools) -> Result<(), mcp_oauth_kit::Error> {
    /// McpServer::builder(Config::from_env()?).auth_provider(my_jwt_verifier).tools(tools).build()?.run().await
    /// # }
    /// ```
    pub fn auth_provider(mut self, provider: impl AuthProvider) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }

    /// Read the time from `clock` instead of the system's ([`Config::clock`]): a test gives a
    /// [`ManualClock`](crate::clock::ManualClock) and moves it to expire tokens, codes,
    /// sign-ins and rate-limit windows at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_oauth_kit::clock::ManualClock;
    /// use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
    ///
    /// let clock = ManualClock::starting_now();
    /// let server = McpServer::builder(Config::new("http://127.0.0.1:8000").unwrap())
    ///     .clock(clock.clone())
    ///     .user_store(StaticUserStore::new())
    ///     .tools(Tools::new())
    ///     .build()
    ///     .unwrap();
    /// clock.advance(Duration::from_secs(3600)); // every token issued before is now expired
    /// # drop(server);
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config.clock = Arc::new(clock);
        self
    }

    /// Serve these tools (and MCP Apps), with their state. A mistake in the registry is
    /// reported by [`McpServerBuilder::build`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use mcp_oauth_kit::{AccessToken, Config, McpServer, State, StaticUserStore, ToolDef, ToolError, Tools};
    ///
    /// async fn visits(State(count): State<Arc<AtomicU64>>, caller: AccessToken) -> Result<String, ToolError> {
    ///     let n = count.fetch_add(1, Ordering::Relaxed) + 1;
    ///     Ok(format!("{} is visitor number {n}", caller.username))
    /// }
    ///
    /// # async fn doc() -> Result<(), mcp_oauth_kit::Error> {
    /// let tools = Tools::with_state(Arc::new(AtomicU64::new(0)))
    ///     .tool(ToolDef::new("visits", "Count the visitors").handler(visits));
    /// let server = McpServer::builder(Config::from_env()?).user_store(StaticUserStore::new()).tools(tools).build()?;
    /// # Ok(()) }
    /// ```
    pub fn tools<S: Clone + Send + Sync + 'static>(mut self, tools: Tools<S>) -> Self {
        let tools = match tools.into_stateless() {
            Ok(tools) => tools,
            Err(problem) => {
                self.tools_problem = Some(problem);
                return self;
            }
        };
        self.tools_problem = None;
        self.tool_scopes = tools.scoped_tools();
        let name = self.config.server_name.clone();
        let handler = ToolsHandler::new(Arc::new(tools), &name);
        self.handler = Some(Box::new(move |cfg, sessions| McpEndpoint::Tools(rmcp_service(handler, cfg, sessions))));
        self
    }

    /// Serve an existing rmcp `ServerHandler` behind the kit's authentication. Inside it,
    /// [`AccessToken::from_context`](crate::AccessToken::from_context) names the caller.
    /// The handler is cloned for each MCP session, so keep its state behind `Arc`s.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::rmcp::ServerHandler;
    /// use mcp_oauth_kit::rmcp::model::{ServerCapabilities, ServerConfig};
    /// use mcp_oauth_kit::{Config, McpServer, StaticUserStore};
    ///
    /// /// A handler written for rmcp alone; the kit puts sign-in in front of it.
    /// #[derive(Clone)]
    /// struct Existing;
    ///
    /// impl ServerHandler for Existing {
    ///     fn get_info(&self) -> ServerConfig {
    ///         ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    ///     }
    /// }
    ///
    /// # async fn run(users: StaticUserStore) -> Result<(), mcp_oauth_kit::Error> {
    /// McpServer::builder(Config::from_env()?).user_store(users).rmcp_handler(Existing).build()?.run().await
    /// # }
    /// ```
    pub fn rmcp_handler<S: ServerHandler + Clone + Send + 'static>(mut self, handler: S) -> Self {
        self.tool_scopes = HashMap::new();
        self.tools_problem = None;
        self.handler = Some(Box::new(move |cfg, sessions| {
            let service = rmcp_service(handler, cfg, sessions);
            McpEndpoint::Erased(Arc::new(move |req| {
                let service = service.clone();
                Box::pin(async move { service.handle(req).await })
            }))
        }));
        self
    }

    /// Assemble the server.
    ///
    /// # Errors
    /// [`Error::Config`] when neither a user store nor an auth provider was given, or both;
    /// when the auth provider names no authorization server; when a tool needs a scope that
    /// [`Config::scopes_supported`] does not list; when no tools or handler were given; when
    /// the tools have a mistake (setting `tools`, naming the tool: an invalid or repeated name,
    /// an arguments type without a JSON object schema, an App template URI that is not
    /// `ui://`); or when [`Config::client_id_metadata_documents`] is on in a build without the
    /// `cimd` feature.
    ///
    /// ```
    /// use mcp_oauth_kit::{AccessToken, Config, Error, McpServer, StaticUserStore, ToolDef, ToolError, Tools};
    ///
    /// async fn whoami(caller: AccessToken) -> Result<String, ToolError> {
    ///     Ok(caller.username.clone())
    /// }
    ///
    /// let config = Config::new("http://127.0.0.1:8000").unwrap();
    /// // "who am I" is not a tool name (spaces): reported here, not at the first call.
    /// let tools = Tools::new().tool(ToolDef::new("who am I", "Say who is signed in").handler(whoami));
    /// let err = McpServer::builder(config).user_store(StaticUserStore::new()).tools(tools).build().unwrap_err();
    /// assert!(matches!(err, Error::Config(_)));
    /// ```
    pub fn build(self) -> Result<McpServer, Error> {
        if let Some(problem) = self.tools_problem {
            return Err(problem.into());
        }
        if !self.config.upstream_clients.is_empty() && self.config.upstream_token_key.is_none() {
            let reason = "upstream tokens are kept (Config::upstream_clients is set) but there is no key to seal them \
                          with: set UPSTREAM_TOKEN_KEY to 32 random bytes in base64 (openssl rand -base64 32)";
            return Err(crate::error::ConfigError::new("UPSTREAM_TOKEN_KEY", reason).into());
        }
        #[cfg_attr(not(feature = "jwt"), allow(unused_mut))]
        let mut config = self.config;
        // With a key to seal them, the tokens of users who sign in upstream are kept for tools.
        #[cfg(feature = "jwt")]
        if let (Some(upstream), Some(_)) = (&self.upstream, &config.upstream_token_key) {
            config.upstream_clients.push(upstream.refresh_client());
        }
        let config = Arc::new(config);
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        // Times each store operation while metrics are on, and bounds those of requests.
        let store: Arc<dyn Store> = Arc::new(crate::store::timed::TimedStore::new(store, config.store_timeout));
        let verified = Arc::new(VerifiedCache::new(config.token_cache_ttl));
        #[cfg(feature = "jwt")]
        let (users, upstream) = match (self.users, self.upstream) {
            (None, Some(upstream)) if self.provider.is_none() => {
                (Some(Arc::new(crate::upstream::NoPasswords) as Arc<dyn UserStore>), Some((upstream, false)))
            }
            (users, upstream) => (users, upstream.map(|u| (u, true))),
        };
        #[cfg(not(feature = "jwt"))]
        let users = self.users;
        let authority = match (users, self.provider) {
            (Some(users), None) => {
                let oauth = OAuthServer::new(config.clone(), store.clone(), users, verified.clone());
                #[cfg(feature = "jwt")]
                let oauth = match upstream {
                    Some((upstream, passwords)) => oauth.with_upstream(upstream, passwords),
                    None => oauth,
                };
                Authority::BuiltIn(oauth)
            }
            #[cfg(feature = "jwt")]
            (None, Some(_)) if upstream.is_some() => {
                let reason =
                    "an upstream sign-in is for the built-in authorization server, which auth_provider(...) replaces";
                return Err(crate::error::ConfigError::new("upstream", reason).into());
            }
            (None, Some(provider)) if provider.authorization_servers().is_empty() => {
                let reason = "AuthProvider::authorization_servers is empty: clients would not know where to sign in";
                return Err(crate::error::ConfigError::new("auth_provider", reason).into());
            }
            (None, Some(provider)) => Authority::External(provider),
            (None, None) => {
                let reason = "give user_store(...) or upstream(...) for the built-in authorization server, or auth_provider(...)";
                return Err(crate::error::ConfigError::new("user_store", reason).into());
            }
            (Some(_), Some(_)) => {
                let reason = "a user store is for the built-in authorization server, which auth_provider(...) replaces";
                return Err(crate::error::ConfigError::new("user_store", reason).into());
            }
        };
        if config.metrics_addr.is_some() && !cfg!(feature = "metrics") {
            let reason = "needs mcp-oauth-kit's `metrics` feature, which this build left out";
            return Err(crate::error::ConfigError::new("metrics_addr", reason).into());
        }
        if config.client_id_metadata_documents && !cfg!(feature = "cimd") {
            let reason = "needs mcp-oauth-kit's `cimd` feature, which this build left out";
            return Err(crate::error::ConfigError::new("client_id_metadata_documents", reason).into());
        }
        if let Some((tool, scope)) = self
            .tool_scopes
            .iter()
            .flat_map(|(tool, scopes)| scopes.iter().map(move |s| (tool, s)))
            .find(|(_, s)| !config.scopes_supported.contains(s))
        {
            let reason =
                format!("tool {tool:?} requires scope {scope:?}, which Config::scopes_supported does not list");
            return Err(crate::error::ConfigError::new("scopes_supported", reason).into());
        }
        let Some(handler) = self.handler else {
            return Err(crate::error::ConfigError::new("tools", "give tools(...) or rmcp_handler(...)").into());
        };
        let cancel = CancellationToken::new();
        let mut rmcp_config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(!config.stateless)
            .with_json_response(config.stateless)
            .with_max_request_body_bytes(config.max_mcp_body_bytes)
            .with_cancellation_token(cancel.child_token())
            // The router already checked Host and Origin against the public URL.
            .disable_allowed_hosts()
            .disable_allowed_origins();
        rmcp_config.sse_keep_alive = Some(std::time::Duration::from_secs(15));
        if !config.stateless {
            // Sessions in the store continue on any instance and after a restart.
            let sessions = crate::mcp_sessions::StoredSessions::new(store.clone(), config.clone());
            rmcp_config.session_store = Some(Arc::new(sessions));
        }
        let rmcp_sessions = Arc::new(LocalSessionManager::default());
        let mcp = handler(rmcp_config, rmcp_sessions.clone());
        let oauth = authority.authorization_server().cloned();
        let state =
            AppState::new(config.clone(), authority, verified, store.clone(), (mcp, rmcp_sessions), self.tool_scopes);
        let server = McpServer { config, router: Router::new(state), store, cancel, oauth };
        // Record from the first request on, before `serve` opens the listener.
        #[cfg(feature = "metrics")]
        if server.config.metrics_addr.is_some() {
            server.metrics()?;
        }
        Ok(server)
    }
}

/// An MCP server that is its own OAuth 2.1 authorization server.
///
/// ```no_run
/// # async fn run() -> Result<(), mcp_oauth_kit::Error> {
/// use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
/// let server = McpServer::builder(Config::from_env()?)
///     .user_store(StaticUserStore::new())
///     .tools(Tools::new())
///     .build()?;
/// server.run().await
/// # }
/// ```
pub struct McpServer {
    config: Arc<Config>,
    router: Router,
    store: Arc<dyn Store>,
    cancel: CancellationToken,
    /// The built-in authorization server (a handle on the router's), for
    /// [`McpServer::revoke_user`]; `None` in resource-server mode.
    oauth: Option<OAuthServer>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl McpServer {
    /// Start building a server for `config`; give it a [`UserStore`](crate::UserStore) (or an
    /// [`AuthProvider`]) and tools, then [`McpServerBuilder::build`].
    ///
    /// ```no_run
    /// use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
    ///
    /// # async fn run(users: StaticUserStore, tools: Tools) -> Result<(), mcp_oauth_kit::Error> {
    /// McpServer::builder(Config::from_env()?).user_store(users).tools(tools).build()?.run().await
    /// # }
    /// ```
    pub fn builder(config: Config) -> McpServerBuilder {
        McpServerBuilder {
            config,
            users: None,
            store: None,
            provider: None,
            handler: None,
            tool_scopes: HashMap::new(),
            tools_problem: None,
            #[cfg(feature = "jwt")]
            upstream: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Revoke everything of the user `user_id` ([`User::id`](crate::User::id), the token
    /// subject): every grant with its codes and tokens, every sign-in session and every
    /// remembered consent, for "delete my account" and "sign out everywhere". Their access
    /// tokens stop at the MCP endpoint at once. [`McpServer::serve`] takes the server: keep
    /// [`McpServer::authorization_server`] to call [`OAuthServer::revoke_user`] while it runs.
    ///
    /// ```no_run
    /// # async fn run(server: mcp_oauth_kit::McpServer) -> Result<(), mcp_oauth_kit::Error> {
    /// server.revoke_user("u-1").await?;
    /// // While it serves, through a handle (here when user u-2 deletes their account):
    /// let accounts = server.authorization_server().expect("built with a user store");
    /// tokio::spawn(server.run());
    /// accounts.revoke_user("u-2").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails; then nothing may have been revoked, so retry.
    /// [`Error::Config`] for a server built with [`McpServerBuilder::auth_provider`]: its
    /// tokens are revoked where they are issued.
    pub async fn revoke_user(&self, user_id: &str) -> Result<(), Error> {
        let Some(oauth) = &self.oauth else {
            let reason = "revoke_user needs the built-in authorization server; this server verifies another's tokens";
            return Err(crate::error::ConfigError::new("auth_provider", reason).into());
        };
        Ok(oauth.revoke_user(user_id).await?)
    }

    /// Revoke everything of every user ([`OAuthServer::revoke_all`]): every grant, sign-in
    /// session and remembered consent, as after a suspected leak. Clients stay registered;
    /// users sign in again with their password.
    ///
    /// ```no_run
    /// # async fn run(server: mcp_oauth_kit::McpServer) -> Result<(), mcp_oauth_kit::Error> {
    /// server.revoke_all().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`McpServer::revoke_user`].
    pub async fn revoke_all(&self) -> Result<(), Error> {
        let Some(oauth) = &self.oauth else {
            let reason = "revoke_all needs the built-in authorization server; this server verifies another's tokens";
            return Err(crate::error::ConfigError::new("auth_provider", reason).into());
        };
        Ok(oauth.revoke_all().await?)
    }

    /// A handle on the built-in authorization server that stays valid while the server runs
    /// (it shares the store and the verified-token cache), for [`OAuthServer::revoke_user`];
    /// `None` for a server built with [`McpServerBuilder::auth_provider`].
    pub fn authorization_server(&self) -> Option<OAuthServer> {
        self.oauth.clone()
    }

    /// The HTTP service, to mount in a server of your own ([`crate::http`] shows how to
    /// hand it requests).
    ///
    /// ```no_run
    /// # async fn run(server: mcp_oauth_kit::McpServer, req: http::Request<String>) {
    /// let router = server.router(); // cheap to clone, one per connection
    /// let response = router.handle(req).await;
    /// # }
    /// ```
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Turn the kit's Prometheus metrics on and get the handle that renders them, for a server
    /// of your own around [`McpServer::router`]: serve [`Metrics::render`](crate::metrics::Metrics::render)
    /// at a scrape route on a private listener. The first call installs the process's `metrics`
    /// recorder; later calls return handles on the same one. With
    /// [`Config::metrics_addr`] set, [`McpServer::serve`] does all of this itself.
    /// The [`metrics`](crate::metrics) module has an example and the list of series.
    ///
    /// # Errors
    /// [`Error::Config`] when another `metrics` recorder is installed in this process.
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> Result<crate::metrics::Metrics, Error> {
        crate::metrics::Metrics::install(self.router.state().clone())
    }

    /// Listen on [`Config::listen_addr`] (port 0: one the system picks, logged in the
    /// `serving` line) and serve until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// [`Error::Io`] if the address cannot be bound.
    pub async fn run(self) -> Result<(), Error> {
        let listener = TcpListener::bind(self.config.listen_addr).await?;
        self.serve(listener, crate::serve::shutdown_signal()).await
    }

    /// Serve on a bound listener until `shutdown` completes, then stop accepting, end MCP
    /// streams, wait (at most 10 s) for requests in flight, and close the store
    /// ([`Store::close`](crate::store::Store::close): a SQLite file then holds every commit
    /// by itself). Logs one INFO line as it starts:
    /// `serving listen=ADDR public_url=… mcp=…/mcp`, the URL to give MCP clients.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::McpServer;
    /// use tokio::net::TcpListener;
    ///
    /// # async fn run(server: McpServer) -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = TcpListener::bind("127.0.0.1:8000").await?;
    /// // Stop on Ctrl-C only, or on any future of your own (a test's oneshot channel).
    /// let shutdown = async {
    ///     let _ = tokio::signal::ctrl_c().await;
    /// };
    /// server.serve(listener, shutdown).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// With [`Config::metrics_addr`] set it also serves `/metrics`, `/healthz` and `/readyz`
    /// there, and logs `serving metrics listen=ADDR`.
    ///
    /// # Errors
    /// [`Error::Io`] for unrecoverable listener failures, and when the metrics address cannot
    /// be bound.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        #[cfg(feature = "metrics")]
        if let Some(addr) = self.config.metrics_addr {
            let metrics_listener = TcpListener::bind(addr).await?;
            let listen = metrics_listener.local_addr().unwrap_or(addr);
            tracing::info!(%listen, "serving metrics");
            let (metrics, state) = (self.metrics()?, self.router.state().clone());
            tokio::spawn(crate::metrics::listener::serve(metrics_listener, metrics, state, self.cancel.clone()));
        }
        // The bound address: with port 0 the system picked the port, and this line says which.
        let listen = listener.local_addr().unwrap_or(self.config.listen_addr);
        tracing::info!(
            %listen,
            public_url = %self.config.issuer(),
            mcp = %self.config.resource(),
            "serving"
        );
        let sweeper = crate::serve::spawn_sweeper(self.store.clone(), self.router.state().clone(), self.cancel.clone());
        let result = crate::serve::serve(self.router.clone(), listener, shutdown, self.cancel.clone()).await;
        self.cancel.cancel();
        sweeper.abort();
        // After the drain, so that no request is cut off from the store; bounded, since a
        // connection that the drain gave up on may still hold one of the store's.
        let _ = sweeper.await;
        if tokio::time::timeout(STORE_CLOSE_TIMEOUT, self.store.close()).await.is_err() {
            tracing::warn!("closing the store timed out");
        }
        result.map_err(Error::Io)
    }
}

impl Tools {
    /// The scopes of each scoped tool by name, and of each scoped tool's App template by its
    /// `ui://` URI (MCP tool names are letters, digits, `_`, `-` and `.`: the keys never collide).
    pub(crate) fn scoped_tools(&self) -> HashMap<String, Vec<String>> {
        let templates = self.scoped_templates().map(|(uri, scopes)| (uri.to_owned(), scopes.to_vec()));
        self.list()
            .into_iter()
            .map(|t| t.name.to_string())
            .filter_map(|name| {
                let scopes = self.required_scopes(&name).to_vec();
                (!scopes.is_empty()).then_some((name, scopes))
            })
            .chain(templates)
            .collect()
    }
}
