//! What operators see: Prometheus metrics on the listener `METRICS_ADDR` names (never on the
//! public port), `/healthz` and `/readyz`, and the request id in each response. A binary of its
//! own because the metrics recorder is process-wide: its tests share one, so each asserts that
//! its own actions moved the counters, whatever else was recorded.

#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use common::failing_store::{Failing, FailingStore};
use common::{Pkce, TestServer, rpc_reply};
use reqwest::StatusCode;
use reqwest::header::HOST;
use serde_json::json;

/// A free port on loopback for the metrics listener: the server binds it itself.
fn free_loopback_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address")
}

/// A server with its metrics listener on a free loopback port, once that listener is up.
async fn start_with_metrics() -> (TestServer, SocketAddr) {
    let metrics = free_loopback_addr();
    let server = TestServer::start_with(|mut c| {
        c.metrics_addr = Some(metrics);
        c
    })
    .await;
    // `serve` binds the metrics listener before it accepts: an answer means it is bound.
    assert_eq!(server.get(&server.url("/healthz")).await.status(), StatusCode::OK);
    (server, metrics)
}

/// One sample of the exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parse the Prometheus text format strictly enough to catch a malformed exposition: every
/// line is a `# HELP`/`# TYPE` comment or `name{label="value",…} number`.
fn parse(exposition: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in exposition.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("TYPE ") || comment.starts_with("HELP "), "comment line: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"))),
            None => (series, ""),
        };
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        let labels = labels
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("label: {line}"));
                let v =
                    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or_else(|| panic!("quotes: {line}"));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        samples.push(Sample { name: name.to_owned(), labels, value });
    }
    samples
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

async fn scrape(client: &reqwest::Client, metrics: SocketAddr) -> (String, Vec<Sample>) {
    let res = client.get(format!("http://{metrics}/metrics")).send().await.expect("GET /metrics");
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().expect("ASCII").to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let body = res.text().await.expect("body");
    let samples = parse(&body);
    (body, samples)
}

#[tokio::test]
async fn a_sign_in_and_a_tool_call_move_the_counters_without_a_client_id_in_any_label() {
    let (server, metrics) = start_with_metrics().await;
    let (_, before) = scrape(&server.client, metrics).await;

    let tokens = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&tokens.access).await;
    let reply = server.call_tool(&tokens.access, &session, "whoami").await;
    assert_eq!(reply["result"]["structuredContent"], json!({ "username": "alice" }), "{reply}");
    let made_up = "no-such-tool-7f3a";
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": made_up, "arguments": {}}});
    let unknown = rpc_reply(server.mcp(Some(&tokens.access), &body, Some(&session)).await).await;
    assert!(unknown["error"].is_object(), "{unknown}");
    let client_id = server.register_public().await;
    let pkce = Pkce::new();
    let wrong = server.login(&server.authorize_url(&client_id, &pkce.challenge, "st", &[]), "alice", "wrong").await;
    common::assert_wrong_credentials(&wrong.expect_err("a wrong password signs nobody in"), "a wrong password");
    let odd_path = "/odd/path-9c1e";
    assert_eq!(server.get(&server.url(odd_path)).await.status(), StatusCode::NOT_FOUND);

    let (exposition, after) = scrape(&server.client, metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    assert!(moved("mcp_sign_ins_total", &[("method", "password"), ("outcome", "succeeded")]) >= 1.0, "{exposition}");
    assert!(moved("mcp_tokens_total", &[("event", "issued")]) >= 1.0, "{exposition}");
    assert!(moved("mcp_tool_calls_total", &[("tool", "whoami"), ("outcome", "ok")]) >= 1.0, "{exposition}");
    assert!(moved("mcp_tool_calls_total", &[("tool", "unknown"), ("outcome", "unknown_tool")]) >= 1.0, "{exposition}");
    assert!(moved("mcp_http_requests_total", &[("route", "token"), ("status", "200")]) >= 1.0, "{exposition}");
    assert!(moved("mcp_http_requests_total", &[("route", "mcp"), ("status", "200")]) >= 2.0, "{exposition}");
    assert!(moved("mcp_http_requests_total", &[("route", "other"), ("status", "404")]) >= 1.0, "{exposition}");
    assert!(moved("mcp_http_request_duration_seconds_count", &[("route", "login")]) >= 1.0, "{exposition}");
    assert!(value(&after, "mcp_http_request_duration_seconds_bucket", &[("route", "mcp"), ("le", "+Inf")]) >= 2.0);
    assert!(moved("mcp_store_operation_duration_seconds_count", &[("operation", "redeem_code")]) >= 1.0);
    assert!(after.iter().any(|s| s.name == "mcp_sessions"), "{exposition}");
    assert!(value(&after, "mcp_sessions", &[]) >= 1.0, "alice's session is live: {exposition}");

    // Nothing a client chose or holds is a label: no client id, user, token, path or tool name
    // it made up.
    assert!(moved("mcp_sign_ins_total", &[("outcome", "failed")]) >= 1.0, "{exposition}");
    for leaked in [tokens.client_id.as_str(), &client_id, tokens.access.as_str(), "alice", made_up, odd_path] {
        assert!(!exposition.contains(leaked), "{leaked:?} in the exposition");
    }
    let allowed = ["route", "status", "tool", "method", "outcome", "event", "limit", "operation", "le", "quantile"];
    for s in &after {
        for k in s.labels.keys() {
            assert!(allowed.contains(&k.as_str()), "unexpected label {k} on {}", s.name);
        }
    }
}

#[tokio::test]
async fn metrics_are_not_on_the_public_port_and_health_is_on_both() {
    let (server, metrics) = start_with_metrics().await;
    assert_eq!(server.get(&server.url("/metrics")).await.status(), StatusCode::NOT_FOUND);
    for base in [server.base.clone(), format!("http://{metrics}")] {
        for path in ["/healthz", "/readyz"] {
            let res = server.client.get(format!("{base}{path}")).send().await.expect("GET");
            assert_eq!(res.status(), StatusCode::OK, "{base}{path}");
        }
    }
    let post = server.client.post(format!("http://{metrics}/metrics")).send().await.expect("POST");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let other = server.client.get(format!("http://{metrics}/mcp")).send().await.expect("GET");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn readyz_says_whether_the_store_answers_and_probes_need_no_public_host() {
    let store = Arc::new(FailingStore::default());
    let server = TestServer::start_with_store(store.clone(), |c| c).await;
    // A probe knows the instance by its address, not by the public name.
    let probe = |path: &str| server.client.get(server.url(path)).header(HOST, "10.1.2.3:8000").send();
    assert_eq!(probe("/healthz").await.expect("GET").status(), StatusCode::OK);
    assert_eq!(probe("/readyz").await.expect("GET").status(), StatusCode::OK);
    // Other paths keep the Host check.
    assert_eq!(probe("/register").await.expect("GET").status(), StatusCode::FORBIDDEN);

    store.set_failing(Failing::Everything);
    // The last answer is reused for a second at most.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = probe("/readyz").await.expect("GET");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]), "when to ask again");
    assert_eq!(res.text().await.expect("body"), "store unavailable\n");
    assert_eq!(probe("/healthz").await.expect("GET").status(), StatusCode::OK, "the process is still up");

    store.set_failing(Failing::Nothing);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(probe("/readyz").await.expect("GET").status(), StatusCode::OK);
}

#[tokio::test]
async fn each_response_carries_a_request_id_and_only_a_trusted_proxy_may_choose_it() {
    let untrusted = TestServer::start().await;
    let ids = |res: &reqwest::Response| res.headers()["x-request-id"].to_str().expect("ASCII").to_owned();
    let a = untrusted.get(&untrusted.url("/healthz")).await;
    let b = untrusted.get(&untrusted.url("/no-such-path")).await;
    let (a, b) = (ids(&a), ids(&b));
    assert_ne!(a, b);
    assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    let chosen = "edge-1f2e3d";
    let res = untrusted.client.get(untrusted.url("/")).header("x-request-id", chosen).send().await.expect("GET");
    assert_ne!(ids(&res), chosen, "a client without a trusted proxy does not choose its id");

    let proxied = TestServer::start_with(|mut c| {
        c.trust_forwarded_for = true;
        c
    })
    .await;
    let send = |id: &str| proxied.client.get(proxied.url("/")).header("x-request-id", id.to_owned()).send();
    assert_eq!(ids(&send(chosen).await.expect("GET")), chosen);
    for bad in ["has space", "quote\"d", &"x".repeat(65)] {
        let got = ids(&send(bad).await.expect("GET"));
        assert!(got.len() == 32 && got.bytes().all(|c| c.is_ascii_hexdigit()), "{bad:?} became {got:?}");
    }
    // The MCP endpoint's answers carry one too, a 401 included.
    let res = proxied.mcp(None, &common::initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ids(&res).len(), 32);
}
