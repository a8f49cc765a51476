//! Prometheus metrics: what the server does, for operators.
//!
//! The kit records its series through the [`metrics`](https://docs.rs/metrics) facade once
//! metrics are on, and [`Metrics`] renders them in the Prometheus text format. Two ways to turn
//! them on:
//!
//! - **[`McpServer::run`](crate::McpServer::run) or [`McpServer::serve`](crate::McpServer::serve)**:
//!   set [`Config::metrics_addr`](crate::Config::metrics_addr) (`METRICS_ADDR`, for example
//!   `127.0.0.1:9464`). The server then answers `GET /metrics`, `/healthz` and `/readyz` on that
//!   second listener. `/metrics` is never served on the public port: keep the metrics address
//!   private (a loopback or cluster-internal address).
//! - **Your own server around [`McpServer::router`](crate::McpServer::router)**: call
//!   [`McpServer::metrics`](crate::McpServer::metrics) once, and answer your scrape route with
//!   [`Metrics::render`]:
//!
//! ```
//! use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
//!
//! # fn doc() -> Result<(), mcp_oauth_kit::Error> {
//! let server = McpServer::builder(Config::new("http://127.0.0.1:8000")?)
//!     .user_store(StaticUserStore::new())
//!     .tools(Tools::new())
//!     .build()?;
//! let metrics = server.metrics()?; // installs the recorder; cheap to clone
//! let router = server.router();
//! // In your `GET /metrics` handler (on a private listener):
//! let body: String = metrics.render();
//! assert!(body.is_empty() || body.contains("# TYPE"));
//! # drop(router); Ok(()) }
//! ```
//!
//! The series (every label takes a bounded set of values: routes are names, never paths; no
//! client id, user or token is a label; a tool is named only when it is registered):
//!
//! | Series | Labels |
//! |---|---|
//! | `mcp_http_requests_total` (counter) | `route`, `status` |
//! | `mcp_http_request_duration_seconds` (histogram) | `route` |
//! | `mcp_tool_calls_total` (counter) | `tool` (`unknown` for a name not registered), `outcome` (`ok`, `error`, `invalid_arguments`, `unknown_tool`, `denied`); tools of a [`Tools`](crate::Tools) registry, not of an `rmcp_handler` |
//! | `mcp_tokens_total` (counter) | `event` (`issued`, `refreshed`, `revoked`) |
//! | `mcp_sign_ins_total` (counter) | `outcome` (`succeeded`, `failed`, `throttled`) |
//! | `mcp_rate_limit_rejections_total` (counter) | `limit` (`oauth_endpoints`, `sign_in`) |
//! | `mcp_store_operation_duration_seconds` (histogram) | `operation` (a [`Store`](crate::store::Store) method's name) |
//! | `mcp_sessions` (gauge) | none: the MCP sessions this server holds bindings for |
//!
//! The recorder is the process's: it is installed once, and an application that records its
//! own series with the `metrics` macros finds them in the same exposition.

#[cfg(feature = "metrics")]
mod exporter;
#[cfg(feature = "metrics")]
pub(crate) mod listener;
pub(crate) mod timed_store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[cfg(feature = "metrics")]
pub use exporter::Metrics;

/// Whether the kit records its series: set once a recorder it renders is installed. Checked
/// before anything is built, so that a server without metrics pays one relaxed load.
static ENABLED: AtomicBool = AtomicBool::new(false);

#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

#[cfg(feature = "metrics")]
fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// What became of a `tools/call`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ToolOutcome {
    /// The tool returned a result.
    Ok,
    /// The tool returned an error result (`isError`).
    Error,
    /// The arguments did not parse into the tool's type.
    InvalidArguments,
    /// No tool by that name is registered.
    UnknownTool,
    /// The caller lacks a scope the tool needs.
    Denied,
}

impl ToolOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::InvalidArguments => "invalid_arguments",
            Self::UnknownTool => "unknown_tool",
            Self::Denied => "denied",
        }
    }
}

/// A token event of the built-in authorization server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenEvent {
    /// An authorization code was exchanged for tokens.
    Issued,
    /// A refresh token was rotated into a new pair.
    Refreshed,
    /// A token was revoked (RFC 7009).
    Revoked,
}

/// The outcome of a password sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignIn {
    Succeeded,
    Failed,
    Throttled,
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The per-address limit of the OAuth endpoints.
    OAuthEndpoints,
    /// The sign-in throttle (per username and per address).
    SignIn,
}

/// One HTTP request answered: `route` is the router's name for the path.
#[inline]
pub(crate) fn http_request(route: &'static str, status: http::StatusCode, elapsed: Duration) {
    if !enabled() {
        return;
    }
    #[cfg(feature = "metrics")]
    {
        let status = status_label(status);
        ::metrics::counter!("mcp_http_requests_total", "route" => route, "status" => status).increment(1);
        ::metrics::histogram!("mcp_http_request_duration_seconds", "route" => route).record(elapsed);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (route, status, elapsed);
}

/// The status as a label, without an allocation for the statuses the kit usually answers.
#[cfg(feature = "metrics")]
fn status_label(status: http::StatusCode) -> ::metrics::SharedString {
    let common = match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        302 => "302",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return other.to_string().into(),
    };
    common.into()
}

/// One `tools/call`; `tool` is the name of a registered tool, `None` for any other name.
#[inline]
pub(crate) fn tool_call(tool: Option<&str>, outcome: ToolOutcome) {
    if !enabled() {
        return;
    }
    #[cfg(feature = "metrics")]
    {
        let tool = tool.unwrap_or("unknown").to_owned();
        ::metrics::counter!("mcp_tool_calls_total", "tool" => tool, "outcome" => outcome.label()).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (tool, outcome.label());
}

/// Tokens issued, refreshed or revoked.
pub(crate) fn token(event: TokenEvent) {
    let event = match event {
        TokenEvent::Issued => "issued",
        TokenEvent::Refreshed => "refreshed",
        TokenEvent::Revoked => "revoked",
    };
    count("mcp_tokens_total", "event", event);
}

/// A password sign-in's outcome.
pub(crate) fn sign_in(outcome: SignIn) {
    let outcome = match outcome {
        SignIn::Succeeded => "succeeded",
        SignIn::Failed => "failed",
        SignIn::Throttled => "throttled",
    };
    count("mcp_sign_ins_total", "outcome", outcome);
}

/// A request refused by a rate limit.
pub(crate) fn rate_limited(limit: Limit) {
    let limit = match limit {
        Limit::OAuthEndpoints => "oauth_endpoints",
        Limit::SignIn => "sign_in",
    };
    count("mcp_rate_limit_rejections_total", "limit", limit);
}

/// One more of the counter `name` with the one label `key`.
fn count(name: &'static str, key: &'static str, value: &'static str) {
    if !enabled() {
        return;
    }
    #[cfg(feature = "metrics")]
    ::metrics::counter!(name, key => value).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (name, key, value);
}

/// How long one store operation took.
pub(crate) fn store_operation(operation: &'static str, elapsed: Duration) {
    #[cfg(feature = "metrics")]
    ::metrics::histogram!("mcp_store_operation_duration_seconds", "operation" => operation).record(elapsed);
    #[cfg(not(feature = "metrics"))]
    let _ = (operation, elapsed);
}

/// The number of live MCP sessions, set when the metrics are rendered.
#[cfg(feature = "metrics")]
fn mcp_sessions(live: usize) {
    ::metrics::gauge!("mcp_sessions").set(live as f64);
}
