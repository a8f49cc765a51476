//! The state every request shares: the configuration, who answers for tokens
//! ([`Authority`]), the MCP endpoint behind the guard ([`McpEndpoint`]), the MCP sessions'
//! owners (in process and in the store), the rate limits, and the hosts and origins this
//! server answers to. The router owns it; the guard and the sweeper read it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Request;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use crate::authorization_server::OAuthServer;
use crate::config::Config;
use crate::endpoints::health::Readiness;
use crate::http_util::{HttpResponse, RequestBody};
use crate::mcp_handler::ToolsHandler;
use crate::mcp_sessions::StoredSessions;
use crate::provider::{AccessToken, AuthProvider, TokenRejection};
use crate::rate_limit::Limits;
use crate::session_bindings::SessionBindings;
use crate::store::Store;
use crate::verified_cache::VerifiedCache;

/// A type-erased MCP endpoint, for handlers given with `McpServerBuilder::rmcp_handler`.
pub(crate) type ErasedEndpoint =
    Arc<dyn Fn(Request<RequestBody>) -> Pin<Box<dyn Future<Output = HttpResponse> + Send>> + Send + Sync>;

/// The MCP endpoint behind the guard: rmcp's Streamable HTTP service.
pub(crate) enum McpEndpoint {
    /// The kit's own tool handler, called directly: its future is part of the guard's, so
    /// the hot path allocates and copies no boxed future per request.
    Tools(StreamableHttpService<ToolsHandler, LocalSessionManager>),
    /// Any other rmcp handler, whose type the router cannot name.
    Erased(ErasedEndpoint),
}

impl McpEndpoint {
    /// Pass an authenticated request to rmcp.
    pub(crate) async fn call(&self, req: Request<RequestBody>) -> HttpResponse {
        match self {
            Self::Tools(service) => service.handle(req).await,
            Self::Erased(endpoint) => endpoint(req).await,
        }
    }
}

/// Who answers for the tokens presented at the MCP endpoint.
pub(crate) enum Authority {
    /// The kit's own authorization server: the OAuth endpoints and the login page are served,
    /// and its tokens are verified against its store.
    BuiltIn(OAuthServer),
    /// Resource-server mode: a provider of the application's verifies tokens issued elsewhere;
    /// only the MCP endpoint and the protected-resource metadata are served.
    External(Arc<dyn AuthProvider>),
}

impl Authority {
    /// The built-in authorization server, if this server is one.
    pub(crate) fn authorization_server(&self) -> Option<&OAuthServer> {
        match self {
            Self::BuiltIn(oauth) => Some(oauth),
            Self::External(_) => None,
        }
    }

    /// Ask the token's issuer (not the cache) about `token`. The built-in server is called
    /// directly; only an external provider costs a boxed future.
    pub(crate) async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        match self {
            Self::BuiltIn(oauth) => oauth.verify(token).await,
            Self::External(provider) => provider.verify_token(token).await,
        }
    }

    /// The issuers to list in the protected-resource metadata.
    pub(crate) fn authorization_servers(&self) -> Vec<String> {
        match self {
            Self::BuiltIn(oauth) => oauth.authorization_servers(),
            Self::External(provider) => provider.authorization_servers(),
        }
    }
}

/// Everything the endpoints share.
pub(crate) struct AppState {
    pub(crate) config: Arc<Config>,
    pub(crate) authority: Authority,
    /// Tokens verified recently, asked before [`Authority::verify_token`]; the built-in
    /// authorization server clears it at every revocation.
    pub(crate) verified: Arc<VerifiedCache>,
    pub(crate) mcp: McpEndpoint,
    /// rmcp's sessions in this process, behind [`AppState::mcp`]: the sweeper ends here those
    /// that ended on another instance.
    pub(crate) rmcp_sessions: Arc<LocalSessionManager>,
    pub(crate) sessions: SessionBindings,
    /// The MCP sessions in the store, asked when [`AppState::sessions`] does not know one.
    pub(crate) stored_sessions: StoredSessions,
    /// Scopes each tool requires, for the guard's 403 (empty when no tool needs one).
    pub(crate) tool_scopes: HashMap<String, Vec<String>>,
    pub(crate) limits: Limits,
    /// The store check behind `/readyz`.
    pub(crate) readiness: Readiness,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
}

impl AppState {
    pub(crate) fn new(
        config: Arc<Config>,
        authority: Authority,
        verified: Arc<VerifiedCache>,
        store: Arc<dyn Store>,
        (mcp, rmcp_sessions): (McpEndpoint, Arc<LocalSessionManager>),
        tool_scopes: HashMap<String, Vec<String>>,
    ) -> Self {
        let (allowed_hosts, allowed_origins) = allowed_hosts_and_origins(&config);
        let readiness = Readiness::new(store.clone());
        let stored_sessions = StoredSessions::new(store.clone(), config.clone());
        let limits = Limits::new(&config, store);
        Self {
            limits,
            readiness,
            config,
            authority,
            verified,
            mcp,
            rmcp_sessions,
            sessions: SessionBindings::default(),
            stored_sessions,
            tool_scopes,
            allowed_hosts,
            allowed_origins,
        }
    }

    pub(crate) fn tools_scopes(&self, tool: &str) -> &[String] {
        self.tool_scopes.get(tool).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn any_scoped_tools(&self) -> bool {
        !self.tool_scopes.is_empty()
    }

    // Both lists are lower case; comparing without lower-casing a copy keeps the MCP hot path
    // free of allocations.
    #[inline]
    pub(crate) fn host_allowed(&self, host: &[u8]) -> bool {
        self.allowed_hosts.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(host))
    }

    /// `/mcp` (the configured path), with or without a trailing slash.
    #[inline]
    pub(crate) fn is_mcp_path(&self, path: &str) -> bool {
        let mcp = self.config.mcp_path.as_str();
        path == mcp || path.strip_suffix('/') == Some(mcp)
    }

    #[inline]
    pub(crate) fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// `Host` values and origins this server answers to: the public URL's (with and without its
/// default port), its loopback aliases when the public host is loopback (a rebinding attack
/// cannot use those names), and the configured extras.
fn allowed_hosts_and_origins(config: &Config) -> (Vec<String>, Vec<String>) {
    let url = &config.public_url;
    let scheme = url.scheme();
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or(80);
    let default_port = url.port().is_none();
    let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
    let names: Vec<String> =
        if loopback { vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()] } else { vec![host] };
    let mut hosts = Vec::new();
    let mut origins = Vec::new();
    for name in names {
        hosts.push(format!("{name}:{port}"));
        origins.push(format!("{scheme}://{name}:{port}"));
        if default_port {
            hosts.push(name.clone());
            origins.push(format!("{scheme}://{name}"));
        }
    }
    hosts.extend(config.extra_allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
    origins.extend(config.extra_allowed_origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()));
    (hosts, origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_follow_the_public_url() {
        let c = Config::new("https://mcp.example.com").expect("valid");
        let (hosts, origins) = allowed_hosts_and_origins(&c);
        assert_eq!(hosts, ["mcp.example.com:443", "mcp.example.com"]);
        assert_eq!(origins, ["https://mcp.example.com:443", "https://mcp.example.com"]);
        let c = Config::new("http://127.0.0.1:8000").expect("valid");
        let (hosts, _) = allowed_hosts_and_origins(&c);
        assert!(hosts.contains(&"localhost:8000".to_owned()));
        assert!(hosts.contains(&"127.0.0.1:8000".to_owned()));
        assert!(!hosts.contains(&"127.0.0.1".to_owned()), "a port-less Host is not the public port");
    }
}
