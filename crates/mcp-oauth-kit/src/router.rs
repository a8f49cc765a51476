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

#[cfg(feature = "jwt")]
use crate::endpoints::callback;
use crate::endpoints::{authorize, introspect, login, metadata, pages, registration, token};
use crate::escaped::Escaped;
use crate::guard::guard;
use crate::http_util::{
    BoxError, HttpResponse, RequestBody, box_body, oauth_error, public_json, read_body, set_retry_after, text,
};
use crate::rate_limit::{Verdict, client_ip};
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
        // For the log line: a standard method is a tag. The MCP path is logged as configured,
        // so the hot path keeps no copy of the `Uri`; other paths share its bytes.
        let method = req.method().clone();
        let other_uri = (!self.state.is_mcp_path(req.uri().path())).then(|| req.uri().clone());
        let path = other_uri.as_ref().map_or(self.state.config.mcp_path.as_str(), |u| u.path());
        let req = req.map(box_body);
        let response = self.dispatch(req, peer).await;
        let status = response.status().as_u16();
        let elapsed_us = started.elapsed().as_micros() as u64;
        if status >= 500 {
            tracing::warn!(%method, path = %Escaped(path), status, elapsed_us, "request failed");
        } else if other_uri.is_none() {
            // An MCP request: a platform may send thousands a second, and a line for each at the
            // default `info` would format and write once per tool call on the server's own
            // cores. `RUST_LOG=mcp_oauth_kit::router=debug` shows them.
            tracing::debug!(%method, path = %Escaped(path), status, elapsed_us, "request");
        } else {
            tracing::info!(%method, path = %Escaped(path), status, elapsed_us, "request");
        }
        response
    }

    async fn dispatch(&self, req: Request<RequestBody>, peer: Option<SocketAddr>) -> HttpResponse {
        let state = &*self.state;
        let config = &*state.config;
        // Compared as bytes: every allowed name is ASCII, so no `to_str` pass is needed.
        let host = match req.headers().get(HOST) {
            Some(h) => Some(h.as_bytes()),
            None => req.uri().authority().map(|a| a.as_str().as_bytes()),
        };
        // DNS rebinding: a page on an attacker's name that resolves to us sends its own Host.
        // 403, not 421: Node's fetch retries a 421 and reports a network error.
        if !host.is_some_and(|h| state.host_allowed(h)) {
            return text(StatusCode::FORBIDDEN, "unknown Host\n");
        }
        // A `HeaderValue` clone shares the request's bytes (the request moves on below).
        let origin_header = req.headers().get(ORIGIN).cloned();
        let origin = origin_header.as_ref().and_then(|o| o.to_str().ok());
        let path = req.uri().path();
        let mcp = state.is_mcp_path(path);
        // The sign-in and sign-out forms check their origin themselves, and answer with a page.
        let origin_checked = !matches!(path, "/login" | "/logout") && !path.starts_with("/.well-known/");
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
        let oauth_path =
            matches!(path, "/register" | "/authorize" | "/login" | "/logout" | "/token" | "/revoke" | "/introspect")
                || path == "/oauth/callback";
        // The client address matters only to the OAuth endpoints' limits; the MCP hot path
        // does not pay for working it out.
        let ip = if is_as && oauth_path {
            client_ip(req.headers(), peer.map(|a| a.ip()), config.trust_forwarded_for)
        } else {
            String::new()
        };
        if is_as && oauth_path {
            // One store statement per OAuth request; never on the MCP path.
            match state.limits.oauth_request(&ip).await {
                Ok(Verdict::Allowed) => {}
                Ok(Verdict::Limited(retry)) => {
                    tracing::warn!(%ip, "OAuth endpoint rate limit reached");
                    return too_many_requests(retry);
                }
                // Fails closed: the limit is what stands between a flood and the argon2 runs
                // and registrations behind these endpoints, and a store that fails under load
                // (perhaps the flood's doing) must not switch it off. The endpoints need the
                // same store anyway.
                Err(e) => {
                    let e = crate::error::OAuthError::from(e);
                    return if matches!(path, "/authorize" | "/login" | "/logout" | "/oauth/callback") {
                        pages::error_page(StatusCode::SERVICE_UNAVAILABLE, &config.server_name, &e)
                    } else {
                        oauth_error(&e)
                    };
                }
            }
        }
        let mut response = match (req.method().clone(), path, oauth) {
            (_, _, _) if mcp => guard(state, req).await,
            (Method::GET, p, _) if p.starts_with("/.well-known/oauth-protected-resource") => {
                let rest = &p["/.well-known/oauth-protected-resource".len()..];
                if rest.is_empty() || rest.trim_end_matches('/') == config.mcp_path {
                    public_json(&metadata::protected_resource(config, &state.authority.authorization_servers()))
                } else {
                    text(StatusCode::NOT_FOUND, "not found\n")
                }
            }
            (Method::GET, "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration", Some(_)) => {
                public_json(&metadata::authorization_server(config))
            }
            (Method::POST, "/register", Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => registration::register(oauth, &headers, &body).await,
                Err(res) => res,
            },
            (Method::GET, "/authorize", Some(oauth)) => {
                let query = req.uri().query().unwrap_or("").to_owned();
                authorize::authorize(oauth, oauth.users(), config, req.headers(), &query).await
            }
            (Method::GET, "/login", Some(oauth)) => {
                let query = req.uri().query().unwrap_or("").to_owned();
                login::show(oauth, oauth.users(), config, req.headers(), &query).await
            }
            (Method::POST, "/login", Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => {
                    login::submit(oauth, oauth.users(), &state.limits, &ip, config, &headers, &body).await
                }
                Err(res) => res,
            },
            #[cfg(feature = "jwt")]
            (Method::GET, "/oauth/callback", Some(oauth)) => {
                let query = req.uri().query().unwrap_or("").to_owned();
                callback::callback(oauth, config, req.headers(), &query).await
            }
            (Method::POST, "/logout", Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => login::logout(oauth, config, &headers, &body).await,
                Err(res) => res,
            },
            (Method::POST, "/token", Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => token::token(oauth, &headers, &body).await,
                Err(res) => res,
            },
            (Method::POST, "/revoke", Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => token::revoke(oauth, &headers, &body).await,
                Err(res) => res,
            },
            (Method::POST, "/introspect", Some(oauth)) => match self.body(req).await {
                Ok((headers, body)) => introspect::introspect(oauth, &headers, &body).await,
                Err(res) => res,
            },
            (Method::GET, "/", _) => text(StatusCode::OK, "MCP server. Connect an MCP client to /mcp.\n"),
            (
                _,
                "/register"
                | "/authorize"
                | "/login"
                | "/logout"
                | "/token"
                | "/revoke"
                | "/introspect"
                | "/oauth/callback"
                | "/.well-known/oauth-authorization-server"
                | "/.well-known/openid-configuration",
                Some(_),
            ) => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
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

/// 429 with `Retry-After` in whole seconds (at least 1).
pub(crate) fn too_many_requests(retry_after: std::time::Duration) -> HttpResponse {
    let secs = retry_after.as_secs().max(1);
    let e = crate::error::OAuthError::new(
        crate::error::OAuthErrorCode::SlowDown,
        format!("too many requests; retry after {secs} s"),
    );
    let mut res = oauth_error(&e);
    set_retry_after(&mut res, retry_after);
    res
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
