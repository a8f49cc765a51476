//! The router: the only place that knows the paths. It checks `Host` and `Origin` for every
//! request, answers CORS preflights, bounds bodies, dispatches to the endpoint modules, and
//! logs each request's outcome (method, path, status, time; never a query string or header,
//! which may carry secrets): OAuth and other requests at `info`, MCP requests at `debug`,
//! and any 5xx at `warn`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HOST, ORIGIN};
use http::{HeaderValue, Method, Request, StatusCode};

use crate::client_address::{client_ip, peer_is_trusted};
#[cfg(feature = "jwt")]
use crate::endpoints::callback;
use crate::endpoints::{authorize, health, introspect, login, metadata, pages, registration, token};
use crate::escaped::Escaped;
use crate::guard::guard;
use crate::http_util::{
    BoxError, HttpResponse, RequestBody, box_body, oauth_error, public_json, read_body, text, too_many_requests,
};
use crate::rate_limit::Verdict;
use crate::request_id::{self, X_REQUEST_ID, request_id};
use crate::state::AppState;

/// The kit's whole HTTP surface as a service: OAuth endpoints, login page, metadata and the
/// guarded MCP endpoint. [`McpServer::serve`](crate::McpServer::serve) runs it on hyper; to
/// mount it in a server of your own, call [`Router::handle`] or use it as a hyper `Service`.
#[derive(Clone)]
pub struct Router {
    state: Arc<AppState>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("issuer", &self.state.config.issuer()).finish_non_exhaustive()
    }
}

impl Router {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state: Arc::new(state) }
    }

    pub(crate) fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serve one request. The OAuth endpoints' per-address limits take the client's address
    /// from a `std::net::SocketAddr` in the request's extensions: insert the TCP peer's (or the
    /// proxy's, with `TRUST_FORWARDED_FOR`).
    ///
    /// The response carries the request's id in `x-request-id`; the lines logged while it is
    /// served carry it too through [`logging::WithRequestId`](crate::logging::WithRequestId).
    pub async fn handle<B>(&self, req: Request<B>) -> HttpResponse
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let peer = req.extensions().get::<SocketAddr>().copied();
        self.handle_from(req, peer).await
    }

    /// [`Router::handle`] for a request from `peer`. The kit's own accept loop passes the TCP
    /// peer here instead of in the extensions: the MCP hot path never reads it, and an
    /// extension costs allocations on every request.
    pub(crate) async fn handle_from<B>(&self, req: Request<B>, peer: Option<SocketAddr>) -> HttpResponse
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let request_id = request_id(req.headers(), peer_is_trusted(&self.state.config, peer.map(|a| a.ip())));
        // Every line logged while the request is served carries its id (see `logging`). The
        // scope gets the request's future pinned where it is made: the future is kilobytes
        // large, and handing it over by value would copy it.
        let serve = std::pin::pin!(self.handle_in_scope(req.map(box_body), peer, started));
        let (mut response, request_id) = request_id::scope(request_id, serve).await;
        response.headers_mut().insert(X_REQUEST_ID, request_id);
        response
    }

    async fn handle_in_scope(
        &self,
        req: Request<RequestBody>,
        peer: Option<SocketAddr>,
        started: Instant,
    ) -> HttpResponse {
        // For the log line: a standard method is a tag. The MCP path is logged as configured,
        // so the hot path keeps no copy of the `Uri`; other paths share its bytes.
        let method = req.method().clone();
        let other_uri = (!self.state.is_mcp_path(req.uri().path())).then(|| req.uri().clone());
        let path = other_uri.as_ref().map_or(self.state.config.mcp_path.as_str(), |u| u.path());
        // The client's address (the trusted one, see `client_address`), for the per-address
        // limits and the log line; the MCP hot path does not pay for working it out.
        let client = other_uri.as_ref().map(|_| client_ip(&self.state.config, req.headers(), peer.map(|a| a.ip())));
        let route = if crate::metrics::enabled() { self.route(req.uri().path()) } else { "" };
        let response = self.dispatch(req, client.as_deref().unwrap_or_default()).await;
        let elapsed = started.elapsed();
        crate::metrics::http_request(route, response.status(), elapsed);
        let status = response.status().as_u16();
        let elapsed_us = elapsed.as_micros() as u64;
        let client = client.as_deref().unwrap_or("-");
        if status >= 500 {
            tracing::warn!(%method, path = %Escaped(path), status, elapsed_us, client = %client, "request failed");
        } else if other_uri.is_none() {
            // An MCP request: a platform may send thousands a second, and a line for each at the
            // default `info` would format and write once per tool call on the server's own
            // cores. `RUST_LOG=mcp_oauth_kit::router=debug` shows them.
            tracing::debug!(%method, path = %Escaped(path), status, elapsed_us, "request");
        } else {
            tracing::info!(%method, path = %Escaped(path), status, elapsed_us, client = %client, "request");
        }
        response
    }

    /// The metrics' name for a path: one of a fixed set, so that no label grows with what
    /// clients send.
    fn route(&self, path: &str) -> &'static str {
        if self.state.is_mcp_path(path) {
            return crate::metrics::MCP_ROUTE;
        }
        Endpoint::of(path).map_or("other", Endpoint::route)
    }

    /// Answer `req` from the client address `ip` (empty on the MCP path, which needs none).
    async fn dispatch(&self, req: Request<RequestBody>, ip: &str) -> HttpResponse {
        let state = &*self.state;
        let config = &*state.config;
        // Before the Host check: probes reach the server by its address, not its public name,
        // and neither answer depends on who asks.
        let path = req.uri().path();
        let mcp = state.is_mcp_path(path);
        let endpoint = if mcp { None } else { Endpoint::of(path) };
        match (req.method(), endpoint) {
            (&Method::GET, Some(Endpoint::Healthz)) => return health::healthz(),
            (&Method::GET, Some(Endpoint::Readyz)) => return state.readiness.readyz().await,
            _ => {}
        }
        // Compared as bytes: every allowed name is ASCII, so no `to_str` pass is needed.
        let host = match req.headers().get(HOST) {
            Some(h) => Some(h.as_bytes()),
            None => req.uri().authority().map(|a| a.as_str().as_bytes()),
        };
        // DNS rebinding: a page on an attacker's name that resolves to us sends its own Host.
        // 403, not 421: Node's fetch retries a 421 and reports a network error.
        if !host.is_some_and(|h| state.host_allowed(h)) {
            // Named, so that an operator behind a proxy sees what it sent; escaped and cut
            // short, since a client chose it.
            let refused = String::from_utf8_lossy(host.unwrap_or_default());
            let refused: String = refused.chars().take(100).collect();
            tracing::info!(host = %Escaped(&refused), "refused an unknown Host: see ALLOWED_HOSTS");
            return text(StatusCode::FORBIDDEN, "unknown Host\n");
        }
        // A `HeaderValue` clone shares the request's bytes (the request moves on below).
        let origin_header = req.headers().get(ORIGIN).cloned();
        let origin = origin_header.as_ref().and_then(|o| o.to_str().ok());
        // The sign-in and sign-out forms check their origin themselves, and answer with a page.
        let origin_checked =
            !matches!(endpoint, Some(Endpoint::Login | Endpoint::Logout)) && !path.starts_with("/.well-known/");
        if origin_checked
            && let Some(o) = origin
            && !state.origin_allowed(o)
        {
            return text(StatusCode::FORBIDDEN, "Origin not allowed\n");
        }
        if req.method() == Method::OPTIONS {
            return self.preflight(origin);
        }
        let oauth = state.authority.authorization_server();
        let is_as = oauth.is_some();
        if is_as && let Some(endpoint) = endpoint.filter(|e| e.rate_limited()) {
            // One store statement per OAuth request; never on the MCP path. `/token` has a
            // budget of its own (see `Limits::token_request`).
            let counted = if endpoint == Endpoint::Token {
                state.limits.token_request(ip).await
            } else {
                state.limits.oauth_request(ip).await
            };
            match counted {
                Ok(Verdict::Allowed) => {}
                Ok(Verdict::Limited(retry)) => {
                    tracing::warn!(%ip, "OAuth endpoint rate limit reached");
                    crate::metrics::rate_limited(crate::metrics::Limit::OAuthEndpoints);
                    return too_many_requests(retry);
                }
                // Fails closed: the limit is what stands between a flood and the argon2 runs
                // and registrations behind these endpoints, and a store that fails under load
                // (perhaps the flood's doing) must not switch it off. The endpoints need the
                // same store anyway.
                Err(e) => {
                    let e = crate::error::OAuthError::from(e);
                    return if endpoint.answers_with_a_page() {
                        pages::error_page(StatusCode::SERVICE_UNAVAILABLE, &config.server_name, &e)
                    } else {
                        oauth_error(&e)
                    };
                }
            }
        }
        let mut response = if mcp {
            guard(state, req).await
        } else {
            // Boxed: the endpoints' futures are many and large, and without the box the MCP
            // path's future, which every request's future holds and moves, would be as large as
            // the largest of them.
            Box::pin(self.endpoint(req, endpoint, ip)).await
        };
        if let Some(o) = origin.filter(|o| state.origin_allowed(o))
            && let Ok(v) = HeaderValue::from_str(o)
        {
            let h = response.headers_mut();
            h.insert("access-control-allow-origin", v);
            h.insert("access-control-expose-headers", HeaderValue::from_static("mcp-session-id, www-authenticate"));
            h.append(http::header::VARY, HeaderValue::from_static("Origin"));
        }
        response
    }

    /// Answer a request to one of the kit's endpoints besides MCP (`endpoint`, `None` for an
    /// unknown path), from the client address `ip`.
    async fn endpoint(&self, req: Request<RequestBody>, endpoint: Option<Endpoint>, ip: &str) -> HttpResponse {
        let state = &*self.state;
        let config = &*state.config;
        let oauth = state.authority.authorization_server();
        let path = req.uri().path();
        match (req.method().clone(), endpoint, oauth) {
            (Method::GET, Some(Endpoint::ProtectedResourceMetadata), _) => {
                let rest = &path[PROTECTED_RESOURCE_METADATA.len()..];
                if rest.is_empty() || rest.trim_end_matches('/') == config.mcp_path {
                    public_json(&metadata::protected_resource(config, &state.authority.authorization_servers()))
                } else {
                    text(StatusCode::NOT_FOUND, "not found\n")
                }
            }
            (Method::GET, Some(Endpoint::AuthorizationServerMetadata), Some(_)) => {
                public_json(&metadata::authorization_server(config))
            }
            (Method::POST, Some(Endpoint::Register), Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => registration::register(oauth, &headers, &body).await,
                Err(res) => res,
            },
            (Method::GET, Some(Endpoint::Authorize), Some(oauth)) => {
                let query = req.uri().query().unwrap_or("").to_owned();
                authorize::authorize(oauth, oauth.users(), config, req.headers(), &query).await
            }
            (Method::GET, Some(Endpoint::Login), Some(oauth)) => {
                let query = req.uri().query().unwrap_or("").to_owned();
                login::show(oauth, oauth.users(), config, req.headers(), &query).await
            }
            (Method::POST, Some(Endpoint::Login), Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => {
                    login::submit(oauth, oauth.users(), &state.limits, ip, config, &headers, &body).await
                }
                Err(res) => res,
            },
            #[cfg(feature = "jwt")]
            (Method::GET, Some(Endpoint::Callback), Some(oauth)) => {
                let query = req.uri().query().unwrap_or("").to_owned();
                callback::callback(oauth, config, req.headers(), &query).await
            }
            (Method::POST, Some(Endpoint::Logout), Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => login::logout(oauth, config, &headers, &body).await,
                Err(res) => res,
            },
            (Method::POST, Some(Endpoint::Token), Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => token::token(oauth, &state.limits, &headers, &body).await,
                Err(res) => res,
            },
            (Method::POST, Some(Endpoint::Revoke), Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => token::revoke(oauth, &headers, &body).await,
                Err(res) => res,
            },
            (Method::POST, Some(Endpoint::Introspect), Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => introspect::introspect(oauth, &headers, &body).await,
                Err(res) => res,
            },
            (Method::GET, Some(Endpoint::Root), _) => {
                text(StatusCode::OK, "MCP server. Connect an MCP client to /mcp.\n")
            }
            (_, Some(e), Some(_)) if e.of_authorization_server() => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn preflight(&self, origin: Option<&str>) -> HttpResponse {
        let mut res = text(StatusCode::NO_CONTENT, "");
        if let Some(v) = origin.filter(|o| self.state.origin_allowed(o)).and_then(|o| HeaderValue::from_str(o).ok()) {
            let h = res.headers_mut();
            h.insert("access-control-allow-origin", v);
            h.insert("access-control-allow-methods", HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
            h.insert(
                "access-control-allow-headers",
                HeaderValue::from_static(
                    "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id",
                ),
            );
            h.insert("access-control-max-age", HeaderValue::from_static("600"));
        }
        res
    }

    /// Read an OAuth endpoint's body within the configured limit.
    async fn body(&self, req: Request<RequestBody>) -> Result<(http::HeaderMap, bytes::Bytes), HttpResponse> {
        let (parts, body) = req.into_parts();
        match read_body(body, self.state.config.max_oauth_body_bytes).await {
            Ok(bytes) => Ok((parts.headers, bytes)),
            Err(e) => Err(e.response()),
        }
    }
}

/// The prefix of the protected-resource metadata's paths (RFC 9728 §3.1: the resource's path
/// follows it).
const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";

/// The kit's endpoints besides the MCP path (whose path is configured): the one table of their
/// paths, which the dispatch, the OAuth endpoints' rate limit and the metrics' route names all
/// read, so that a new endpoint is not left out of one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Root,
    Register,
    Authorize,
    Login,
    Logout,
    Token,
    Revoke,
    Introspect,
    Callback,
    Healthz,
    Readyz,
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
}

impl Endpoint {
    /// The endpoint at `path`, if any.
    fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/" => Self::Root,
            "/register" => Self::Register,
            "/authorize" => Self::Authorize,
            "/login" => Self::Login,
            "/logout" => Self::Logout,
            "/token" => Self::Token,
            "/revoke" => Self::Revoke,
            "/introspect" => Self::Introspect,
            "/oauth/callback" => Self::Callback,
            "/healthz" => Self::Healthz,
            "/readyz" => Self::Readyz,
            "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => {
                Self::AuthorizationServerMetadata
            }
            p if p.starts_with(PROTECTED_RESOURCE_METADATA) => Self::ProtectedResourceMetadata,
            _ => return None,
        })
    }

    /// The metrics' `route` label.
    fn route(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Register => "register",
            Self::Authorize => "authorize",
            Self::Login => "login",
            Self::Logout => "logout",
            Self::Token => "token",
            Self::Revoke => "revoke",
            Self::Introspect => "introspect",
            Self::Callback => "callback",
            Self::Healthz => "healthz",
            Self::Readyz => "readyz",
            Self::AuthorizationServerMetadata => "authorization_server_metadata",
            Self::ProtectedResourceMetadata => "protected_resource_metadata",
        }
    }

    /// Served by the built-in authorization server only (404 without one, 405 for another
    /// method).
    fn of_authorization_server(self) -> bool {
        self.rate_limited() || self == Self::AuthorizationServerMetadata
    }

    /// Counted by the OAuth endpoints' per-address limit: the endpoints that do work a flood
    /// could abuse (argon2 runs, registrations, store writes).
    fn rate_limited(self) -> bool {
        matches!(
            self,
            Self::Register
                | Self::Authorize
                | Self::Login
                | Self::Logout
                | Self::Token
                | Self::Revoke
                | Self::Introspect
                | Self::Callback
        )
    }

    /// Visited by a browser, so an error is a page rather than an OAuth JSON body.
    fn answers_with_a_page(self) -> bool {
        matches!(self, Self::Authorize | Self::Login | Self::Logout | Self::Callback)
    }
}

impl<B> hyper::service::Service<Request<B>> for Router
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let router = self.clone();
        Box::pin(async move { Ok(router.handle(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn each_endpoint_has_its_own_route_name_and_paths_outside_the_table_have_none() {
        let paths = [
            "/",
            "/register",
            "/authorize",
            "/login",
            "/logout",
            "/token",
            "/revoke",
            "/introspect",
            "/oauth/callback",
            "/healthz",
            "/readyz",
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-protected-resource/mcp",
        ];
        let routes: Vec<&str> = paths.iter().filter_map(|p| Endpoint::of(p)).map(Endpoint::route).collect();
        assert_eq!(routes.len(), paths.len(), "every path is in the table: {routes:?}");
        let mut unique = routes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), routes.len(), "one route name each: {routes:?}");
        assert_eq!(Endpoint::of("/.well-known/openid-configuration"), Some(Endpoint::AuthorizationServerMetadata));
        for other in ["/tokens", "/register/", "/LOGIN", "/.well-known/other", ""] {
            assert_eq!(Endpoint::of(other), None, "{other}");
        }
    }
}
