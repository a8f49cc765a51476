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

use anyhow::{Context as _, anyhow, bail, ensure};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::task::JoinSet;

use crate::client::{Conn, Reply};
use crate::measure::{Failures, Run};
use crate::procfs;

pub(crate) const PROTOCOL_VERSION: &str = "2025-06-18";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// How the mode is named in logs and reports.
pub(crate) fn mode_name(stateless: bool) -> &'static str {
    if stateless { "stateless" } else { "stateful" }
}

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
fn find_reply<'a>(reply: &'a Reply, id: u64) -> anyhow::Result<RpcReply<'a>> {
    let ct = reply.header("content-type").unwrap_or("");
    if ct.starts_with("application/json") {
        let m: RpcReply<'a> = serde_json::from_slice(&reply.body).context("bad JSON reply")?;
        ensure!(m.id == Some(id), "reply id {:?}, expected {id}", m.id);
        return Ok(m);
    }
    ensure!(ct.starts_with("text/event-stream"), "unexpected content-type {ct:?}");
    let text = std::str::from_utf8(&reply.body).context("SSE body is not UTF-8")?;
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
    bail!("no reply with id {id} in the event stream: {:?}", reply.excerpt())
}

/// Check a `tools/call roll_dice` answer.
pub(crate) fn check_roll(reply: &Reply, id: u64, user: &str) -> anyhow::Result<()> {
    ensure!(reply.status == StatusCode::OK, "HTTP {}: {}", reply.status, reply.excerpt());
    let m = find_reply(reply, id)?;
    ensure!(m.error.is_none(), "JSON-RPC error: {}", reply.excerpt());
    let result = m.result.ok_or_else(|| anyhow!("reply without result"))?;
    ensure!(result.is_error != Some(true), "tool error: {}", reply.excerpt());
    let text = match result.content.first() {
        Some(ContentItem { kind, text: Some(t) }) if kind == "text" => t,
        _ => bail!("the result has no text content"),
    };
    let ok = text
        .strip_suffix(" on a 6-sided die.")
        .and_then(|rest| rest.split_once(" rolled a "))
        .is_some_and(|(who, n)| who == user && n.parse::<u32>().is_ok_and(|n| (1..=6).contains(&n)));
    ensure!(ok, "unexpected tool text {text:?} (expected {user} rolled a 1..6)");
    Ok(())
}

/// Headers every MCP request of a connection carries.
#[derive(Clone)]
struct McpHeaders {
    auth: HeaderValue,
    session: Option<HeaderValue>,
    protocol: Option<HeaderValue>,
}

async fn mcp_post(conn: &mut Conn, h: &McpHeaders, body: String) -> anyhow::Result<Reply> {
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
    Ok(conn.send(b.body(Full::new(Bytes::from(body)))?).await?)
}

fn call_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"roll_dice","arguments":{{"sides":6}}}}}}"#
    )
}

/// Connect and (per the mode) open the MCP session.
async fn open(addr: SocketAddr, token: &str, stateful: bool) -> anyhow::Result<(Conn, McpHeaders)> {
    let mut conn = Conn::connect(addr).await?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).context("the token is not a header value")?;
    let mut h = McpHeaders { auth, session: None, protocol: None };
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"mcp-bench","version":"0"}}}}}}"#
    );
    let reply = mcp_post(&mut conn, &h, init).await?;
    ensure!(reply.status == StatusCode::OK, "initialize: HTTP {}: {}", reply.status, reply.excerpt());
    let m = find_reply(&reply, 0).context("initialize")?;
    ensure!(
        m.result.as_ref().and_then(|r| r.protocol_version.as_ref()).is_some(),
        "initialize: no protocolVersion in {}",
        reply.excerpt()
    );
    let session = reply.header("mcp-session-id").map(str::to_owned);
    h.protocol = Some(HeaderValue::from_static(PROTOCOL_VERSION));
    match (stateful, session) {
        (true, Some(s)) => {
            h.session = Some(HeaderValue::from_str(&s).context("Mcp-Session-Id")?);
            let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned();
            let reply = mcp_post(&mut conn, &h, note).await?;
            ensure!(reply.status == StatusCode::ACCEPTED, "notifications/initialized: HTTP {}", reply.status);
        }
        (true, None) => bail!("stateful server: initialize returned no Mcp-Session-Id"),
        (false, Some(s)) => bail!("stateless server returned Mcp-Session-Id {s}"),
        (false, None) => {}
    }
    Ok((conn, h))
}

struct ConnOut {
    conn: Conn,
    headers: McpHeaders,
    latencies_ns: Vec<u64>,
    failures: Failures,
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
    let mut failures = Failures::default();
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
                failures.record(e);
                // A closed connection would fail every later call at once: stop this client.
                if conn.is_closed() {
                    break;
                }
            }
        }
    }
    ConnOut { conn, headers, latencies_ns, failures }
}

/// Run one cell: open the connections, warm up, measure, close the sessions.
pub(crate) async fn run(load: &Load) -> Run {
    let mut failures = Failures::default();
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
            Ok(Err(e)) => failures.record(e),
            Err(e) => failures.record(format_args!("task failed: {e}")),
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
            Ok(mut out) => {
                latencies.extend_from_slice(&out.latencies_ns);
                failures.absorb(std::mem::take(&mut out.failures));
                finished.push(out);
            }
            Err(e) => failures.record(format_args!("task failed: {e}")),
        }
    }
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
                Ok(r) => failures.record(format_args!("DELETE session: HTTP {}", r.status)),
                Err(e) => failures.record(format_args!("DELETE session: {e}")),
            }
        }
    }
    Run::new(latencies, load.duration.as_secs_f64(), (&before, &after), window, failures)
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
        check_roll(&reply(200, "application/json", RESULT), 7, "alice").expect("a JSON answer");
        let sse = format!("id: 0\nretry: 3000\ndata: \n\nevent: message\ndata: {RESULT}\n\n");
        check_roll(&reply(200, "text/event-stream", &sse), 7, "alice").expect("an SSE answer");
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
