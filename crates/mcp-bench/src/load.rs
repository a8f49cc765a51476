//! The MCP load generator: one task and one HTTP/1.1 keep-alive connection per simulated
//! client, each sending authenticated `tools/call roll_dice` requests back to back for a fixed
//! time after a warm-up, and checking every answer (HTTP 200, the JSON-RPC id, a non-error
//! result whose text is `"<user> rolled a N on a 6-sided die."` with 1 ≤ N ≤ 6), whether it
//! comes as JSON or as an SSE stream.
//!
//! Stateful mode: each connection sends `initialize` once (and must get an `Mcp-Session-Id`),
//! then `notifications/initialized`, then calls with `Mcp-Session-Id`; it ends the session
//! with `DELETE` after the run. Stateless mode: `initialize` once (no session may come back),
//! then calls with `MCP-Protocol-Version` only.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::task::JoinSet;

use crate::client::{Conn, Reply};
use crate::procfs;

pub(crate) const PROTOCOL_VERSION: &str = "2025-06-18";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) addr: SocketAddr,
    pub(crate) conns: usize,
    pub(crate) stateful: bool,
    /// (bearer token, the username the tool must name), assigned round-robin to connections.
    pub(crate) tokens: Vec<(String, String)>,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) server_pid: u32,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cell {
    /// Calls started after the warm-up and answered before the end.
    pub(crate) calls: u64,
    pub(crate) rate: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
    pub(crate) errors: u64,
    pub(crate) error_samples: Vec<String>,
    /// Server CPU over the measured window, in cores (1.0 = one core busy).
    pub(crate) server_cpu: f64,
    /// This process's CPU over the window, in cores: near 1.0 means the generator is the limit.
    pub(crate) gen_cpu: f64,
    /// CPU used on core 0 / core 1 by other processes during the window, in cores: noise.
    pub(crate) other_core0: f64,
    pub(crate) other_core1: f64,
    /// Server CPU microseconds per call.
    pub(crate) cpu_us_per_call: f64,
    /// Server `VmRSS` and `VmHWM` (KiB) after the run.
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
}

#[derive(Deserialize)]
struct RpcReply<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(borrow, default)]
    result: Option<CallResult<'a>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct CallResult<'a> {
    #[serde(borrow, default)]
    content: Vec<ContentItem<'a>>,
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
    #[serde(rename = "protocolVersion", borrow, default)]
    protocol_version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ContentItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// The JSON-RPC message with id `id` in a JSON body or an SSE stream.
fn find_reply<'a>(reply: &'a Reply, id: u64) -> Result<RpcReply<'a>, String> {
    let ct = reply.header("content-type").unwrap_or("");
    if ct.starts_with("application/json") {
        let m: RpcReply<'a> = serde_json::from_slice(&reply.body).map_err(|e| format!("bad JSON reply: {e}"))?;
        return if m.id == Some(id) { Ok(m) } else { Err(format!("reply id {:?}, expected {id}", m.id)) };
    }
    if !ct.starts_with("text/event-stream") {
        return Err(format!("unexpected content-type {ct:?}"));
    }
    let text = std::str::from_utf8(&reply.body).map_err(|_| "SSE body is not UTF-8".to_owned())?;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:") else { continue };
        let data = data.trim();
        if data.is_empty() {
            continue; // rmcp's priming event
        }
        if let Ok(m) = serde_json::from_str::<RpcReply<'a>>(data)
            && m.id == Some(id)
            && (m.result.is_some() || m.error.is_some())
        {
            return Ok(m);
        }
    }
    Err(format!("no reply with id {id} in the event stream: {:?}", text.chars().take(200).collect::<String>()))
}

/// Check a `tools/call roll_dice` answer.
pub(crate) fn check_roll(reply: &Reply, id: u64, user: &str) -> Result<(), String> {
    if reply.status != StatusCode::OK {
        return Err(format!("HTTP {}: {}", reply.status, reply.text().chars().take(200).collect::<String>()));
    }
    let m = find_reply(reply, id)?;
    if m.error.is_some() {
        return Err(format!("JSON-RPC error: {}", reply.text().chars().take(200).collect::<String>()));
    }
    let result = m.result.ok_or("reply without result")?;
    if result.is_error == Some(true) {
        return Err(format!("tool error: {}", reply.text().chars().take(200).collect::<String>()));
    }
    let text = match result.content.first() {
        Some(ContentItem { kind, text: Some(t) }) if kind == "text" => t,
        _ => return Err("the result has no text content".into()),
    };
    let ok = text
        .strip_suffix(" on a 6-sided die.")
        .and_then(|rest| rest.split_once(" rolled a "))
        .is_some_and(|(who, n)| who == user && n.parse::<u32>().is_ok_and(|n| (1..=6).contains(&n)));
    if ok { Ok(()) } else { Err(format!("unexpected tool text {text:?} (expected {user} rolled a 1..6)")) }
}

/// Headers every MCP request of a connection carries.
#[derive(Clone)]
struct McpHeaders {
    auth: HeaderValue,
    session: Option<HeaderValue>,
    protocol: Option<HeaderValue>,
}

async fn mcp_post(conn: &mut Conn, h: &McpHeaders, body: String) -> Result<Reply, String> {
    let mut b = conn
        .request(Method::POST, "/mcp")
        .header(AUTHORIZATION, h.auth.clone())
        .header(ACCEPT, ACCEPT_BOTH)
        .header(CONTENT_TYPE, "application/json");
    if let Some(s) = &h.session {
        b = b.header("mcp-session-id", s.clone());
    }
    if let Some(p) = &h.protocol {
        b = b.header("mcp-protocol-version", p.clone());
    }
    let req = b.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
    conn.send(req).await
}

fn call_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"roll_dice","arguments":{{"sides":6}}}}}}"#
    )
}

/// Connect and (per the mode) open the MCP session.
async fn open(addr: SocketAddr, token: &str, stateful: bool) -> Result<(Conn, McpHeaders), String> {
    let mut conn = Conn::connect(addr).await?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    let mut h = McpHeaders { auth, session: None, protocol: None };
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"mcp-bench","version":"0"}}}}}}"#
    );
    let reply = mcp_post(&mut conn, &h, init).await?;
    if reply.status != StatusCode::OK {
        return Err(format!("initialize: HTTP {}: {}", reply.status, reply.text()));
    }
    let m = find_reply(&reply, 0)?;
    if m.result.as_ref().and_then(|r| r.protocol_version.as_ref()).is_none() {
        return Err(format!("initialize: no protocolVersion in {}", reply.text()));
    }
    let session = reply.header("mcp-session-id").map(str::to_owned);
    h.protocol = Some(HeaderValue::from_static(PROTOCOL_VERSION));
    match (stateful, session) {
        (true, Some(s)) => {
            h.session = Some(HeaderValue::from_str(&s).map_err(|e| e.to_string())?);
            let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned();
            let reply = mcp_post(&mut conn, &h, note).await?;
            if reply.status != StatusCode::ACCEPTED {
                return Err(format!("notifications/initialized: HTTP {}", reply.status));
            }
        }
        (true, None) => return Err("stateful server: initialize returned no Mcp-Session-Id".into()),
        (false, Some(s)) => return Err(format!("stateless server returned Mcp-Session-Id {s}")),
        (false, None) => {}
    }
    Ok((conn, h))
}

struct ConnOut {
    conn: Conn,
    headers: McpHeaders,
    latencies_ns: Vec<u64>,
    errors: u64,
    samples: Vec<String>,
}

async fn drive(
    mut conn: Conn,
    headers: McpHeaders,
    user: String,
    first_id: u64,
    measure_from: Instant,
    end: Instant,
) -> ConnOut {
    let mut latencies_ns = Vec::with_capacity(16_384);
    let mut errors = 0u64;
    let mut samples = Vec::new();
    let mut id = first_id;
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        id += 1;
        let outcome = match mcp_post(&mut conn, &headers, call_body(id)).await {
            Ok(reply) => check_roll(&reply, id, &user),
            Err(e) => Err(e),
        };
        let done = Instant::now();
        match outcome {
            Ok(()) => {
                if started >= measure_from && done <= end {
                    latencies_ns.push((done - started).as_nanos() as u64);
                }
            }
            Err(e) => {
                errors += 1;
                if samples.len() < 3 {
                    samples.push(e);
                }
                // A closed connection would fail every later call at once: stop this client.
                if conn.is_closed() {
                    break;
                }
            }
        }
    }
    ConnOut { conn, headers, latencies_ns, errors, samples }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Run one cell: open the connections, warm up, measure, close the sessions.
pub(crate) async fn run(load: &Load) -> Cell {
    let mut cell = Cell::default();
    let mut opening = JoinSet::new();
    for i in 0..load.conns {
        let (token, user) = load.tokens[i % load.tokens.len()].clone();
        let (addr, stateful) = (load.addr, load.stateful);
        opening.spawn(async move { open(addr, &token, stateful).await.map(|(c, h)| (c, h, user)) });
    }
    let mut opened = Vec::new();
    while let Some(joined) = opening.join_next().await {
        match joined {
            Ok(Ok(o)) => opened.push(o),
            Ok(Err(e)) => {
                cell.errors += 1;
                cell.error_samples.push(e);
            }
            Err(e) => {
                cell.errors += 1;
                cell.error_samples.push(format!("task failed: {e}"));
            }
        }
    }
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let mut running = JoinSet::new();
    for (i, (conn, headers, user)) in opened.into_iter().enumerate() {
        running.spawn(drive(conn, headers, user, (i as u64) << 32, measure_from, end));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let before = procfs::sample(load.server_pid);
    let window_start = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let after = procfs::sample(load.server_pid);
    let window = window_start.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut finished = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(out) => {
                latencies.extend_from_slice(&out.latencies_ns);
                cell.errors += out.errors;
                for s in &out.samples {
                    if cell.error_samples.len() < 5 {
                        cell.error_samples.push(s.clone());
                    }
                }
                finished.push(out);
            }
            Err(e) => {
                cell.errors += 1;
                cell.error_samples.push(format!("task failed: {e}"));
            }
        }
    }
    (cell.rss_kib, cell.hwm_kib) = procfs::rss_hwm(load.server_pid);
    if load.stateful {
        for mut out in finished {
            let Ok(req) = out
                .conn
                .request(Method::DELETE, "/mcp")
                .header(AUTHORIZATION, out.headers.auth.clone())
                .header("mcp-session-id", out.headers.session.clone().unwrap_or(HeaderValue::from_static("")))
                .header("mcp-protocol-version", PROTOCOL_VERSION)
                .body(Full::new(Bytes::new()))
            else {
                continue;
            };
            match out.conn.send(req).await {
                Ok(r) if r.status.is_success() => {}
                Ok(r) => {
                    cell.errors += 1;
                    cell.error_samples.push(format!("DELETE session: HTTP {}", r.status));
                }
                Err(e) => {
                    cell.errors += 1;
                    cell.error_samples.push(format!("DELETE session: {e}"));
                }
            }
        }
    }
    latencies.sort_unstable();
    cell.calls = latencies.len() as u64;
    let secs = load.duration.as_secs_f64();
    cell.rate = cell.calls as f64 / secs;
    cell.p50_us = percentile(&latencies, 50.0);
    cell.p99_us = percentile(&latencies, 99.0);
    cell.max_us = latencies.last().map_or(f64::NAN, |&n| n as f64 / 1000.0);
    cell.server_cpu = (after.server - before.server) / window;
    cell.gen_cpu = (after.generator - before.generator) / window;
    cell.other_core0 = ((after.core0 - before.core0) / window - cell.server_cpu).max(0.0);
    cell.other_core1 = ((after.core1 - before.core1) / window - cell.gen_cpu).max(0.0);
    cell.cpu_us_per_call =
        if cell.calls > 0 { (after.server - before.server) * 1e6 / (cell.rate * window) } else { f64::NAN };
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, content_type: &str, body: &str) -> Reply {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("ascii"));
        Reply { status: StatusCode::from_u16(status).expect("status"), headers, body: Bytes::from(body.to_owned()) }
    }

    const RESULT: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"alice rolled a 4 on a 6-sided die."}],"isError":false}}"#;

    #[test]
    fn json_and_sse_answers_are_checked() {
        assert_eq!(check_roll(&reply(200, "application/json", RESULT), 7, "alice"), Ok(()));
        let sse = format!("id: 0\nretry: 3000\ndata: \n\nevent: message\ndata: {RESULT}\n\n");
        assert_eq!(check_roll(&reply(200, "text/event-stream", &sse), 7, "alice"), Ok(()));
    }

    #[test]
    fn wrong_answers_are_errors() {
        assert!(check_roll(&reply(200, "application/json", RESULT), 8, "alice").is_err(), "other id");
        assert!(check_roll(&reply(200, "application/json", RESULT), 7, "bob").is_err(), "other user");
        assert!(check_roll(&reply(401, "text/plain", "no"), 7, "alice").is_err(), "status");
        let tool_error = RESULT.replace(r#""isError":false"#, r#""isError":true"#);
        assert!(check_roll(&reply(200, "application/json", &tool_error), 7, "alice").is_err(), "isError");
        let seven = RESULT.replace("rolled a 4", "rolled a 7");
        assert!(check_roll(&reply(200, "application/json", &seven), 7, "alice").is_err(), "7 on a d6");
        let rpc_error = r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad"}}"#;
        assert!(check_roll(&reply(200, "application/json", rpc_error), 7, "alice").is_err(), "JSON-RPC error");
        assert!(check_roll(&reply(200, "text/event-stream", "data: \n\n"), 7, "alice").is_err(), "no reply");
    }
}
