//! The kit as a plain HTTP service, for a server of your own: the [`Router`] and the body and
//! response types of its [`Router::handle`].
//!
//! [`McpServer::run`](crate::McpServer::run) and [`McpServer::serve`](crate::McpServer::serve)
//! run the kit on hyper by themselves. Reach for this module to mount it in a hyper (or axum)
//! server you already run: take [`McpServer::router`](crate::McpServer::router) and give it
//! each request, with the client's `SocketAddr` in the request's extensions for the per-address
//! limits:
//!
//! ```
//! use std::net::SocketAddr;
//!
//! use mcp_oauth_kit::http::{HttpResponse, Router};
//!
//! async fn answer(router: &Router, mut req: http::Request<String>, peer: SocketAddr) -> HttpResponse {
//!     req.extensions_mut().insert(peer);
//!     router.handle(req).await
//! }
//! ```

/// Trusted proxies, for [`Config::trusted_proxies`](crate::Config::trusted_proxies).
pub use crate::client_address::{AddressRange, AddressRangeError};
pub use crate::http_util::{BoxError, HttpResponse, RequestBody, ResponseBody};
pub use crate::router::Router;
