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
//! | `mcp_sign_ins_total` (counter) | `method` (`password`, `upstream`), `outcome` (`succeeded`, `failed`, `throttled`; an upstream sign-in `failed` when the provider answered an error, the user cancelled there included, or its answer was refused) |
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

use std::collections::HashMap;
#[cfg(feature = "metrics")]
use std::sync::OnceLock;
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
    #[cfg(feature = "metrics")]
    const COUNT: usize = 5;

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

/// The outcome of a sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignIn {
    Succeeded,
    Failed,
    Throttled,
}

/// Where the user signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignInMethod {
    /// With a password, on our login page.
    Password,
    /// At the upstream identity provider, back through `/oauth/callback`.
    #[cfg(feature = "jwt")]
    Upstream,
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
        if route == MCP_ROUTE {
            mcp_route().record(status, elapsed);
            return;
        }
        let status = match common_status(status) {
            Some(i) => COMMON_STATUSES[i].into(),
            None => ::metrics::SharedString::from(status.as_u16().to_string()),
        };
        ::metrics::counter!("mcp_http_requests_total", "route" => route, "status" => status).increment(1);
        ::metrics::histogram!("mcp_http_request_duration_seconds", "route" => route).record(elapsed);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (route, status, elapsed);
}

/// The router's route name for the MCP endpoint.
pub(crate) const MCP_ROUTE: &str = "mcp";

/// The statuses the kit usually answers, as labels.
#[cfg(feature = "metrics")]
const COMMON_STATUSES: [&str; 13] =
    ["200", "201", "202", "204", "302", "400", "401", "403", "404", "405", "429", "500", "503"];

/// `status`'s index in [`COMMON_STATUSES`].
#[cfg(feature = "metrics")]
fn common_status(status: http::StatusCode) -> Option<usize> {
    Some(match status.as_u16() {
        200 => 0,
        201 => 1,
        202 => 2,
        204 => 3,
        302 => 4,
        400 => 5,
        401 => 6,
        403 => 7,
        404 => 8,
        405 => 9,
        429 => 10,
        500 => 11,
        503 => 12,
        _ => return None,
    })
}

/// The MCP route's series, each looked up once: the MCP endpoint answers nearly every request,
/// and a lookup by name and labels builds and hashes a key each time. A counter is registered
/// (and so exported) only once a request has had its status.
#[cfg(feature = "metrics")]
struct McpRoute {
    duration: ::metrics::Histogram,
    by_status: [OnceLock<::metrics::Counter>; COMMON_STATUSES.len()],
}

#[cfg(feature = "metrics")]
fn mcp_route() -> &'static McpRoute {
    static MCP: OnceLock<McpRoute> = OnceLock::new();
    MCP.get_or_init(|| McpRoute {
        duration: ::metrics::histogram!("mcp_http_request_duration_seconds", "route" => MCP_ROUTE),
        by_status: Default::default(),
    })
}

#[cfg(feature = "metrics")]
impl McpRoute {
    fn record(&self, status: http::StatusCode, elapsed: Duration) {
        match common_status(status) {
            Some(i) => self.by_status[i]
                .get_or_init(|| {
                    ::metrics::counter!("mcp_http_requests_total", "route" => MCP_ROUTE, "status" => COMMON_STATUSES[i])
                })
                .increment(1),
            None => {
                let status = status.as_u16().to_string();
                ::metrics::counter!("mcp_http_requests_total", "route" => MCP_ROUTE, "status" => status).increment(1);
            }
        }
        self.duration.record(elapsed);
    }
}

/// The `mcp_tool_calls_total` counters of a registry's tools, each looked up once (a lookup by
/// name and labels would copy the tool's name and build a key on every call). The names are
/// fixed when the registry is served, so the map needs no lock.
#[derive(Debug, Default)]
pub(crate) struct ToolCalls {
    /// By tool name; each outcome's counter is registered on its first call.
    tools: HashMap<String, OutcomeCounters>,
    /// For names that are not registered.
    unknown: OutcomeCounters,
}

#[derive(Debug, Default)]
struct OutcomeCounters {
    #[cfg(feature = "metrics")]
    counters: [OnceLock<::metrics::Counter>; ToolOutcome::COUNT],
}

impl ToolCalls {
    /// The counters of the tools named `names`.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            tools: names.into_iter().map(|n| (n.to_owned(), OutcomeCounters::default())).collect(),
            ..Self::default()
        }
    }

    /// One `tools/call` of the tool `name` (registered or not).
    #[inline]
    pub(crate) fn record(&self, name: &str, outcome: ToolOutcome) {
        if !enabled() {
            return;
        }
        let (label, counters) = match self.tools.get_key_value(name) {
            Some((name, counters)) => (name.as_str(), counters),
            None => ("unknown", &self.unknown),
        };
        #[cfg(feature = "metrics")]
        counters.counters[outcome as usize]
            .get_or_init(|| {
                ::metrics::counter!("mcp_tool_calls_total", "tool" => label.to_owned(), "outcome" => outcome.label())
            })
            .increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = (label, counters, outcome.label());
    }
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

/// A sign-in's outcome.
pub(crate) fn sign_in(method: SignInMethod, outcome: SignIn) {
    if !enabled() {
        return;
    }
    let method = match method {
        SignInMethod::Password => "password",
        #[cfg(feature = "jwt")]
        SignInMethod::Upstream => "upstream",
    };
    let outcome = match outcome {
        SignIn::Succeeded => "succeeded",
        SignIn::Failed => "failed",
        SignIn::Throttled => "throttled",
    };
    #[cfg(feature = "metrics")]
    ::metrics::counter!("mcp_sign_ins_total", "method" => method, "outcome" => outcome).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (method, outcome);
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
