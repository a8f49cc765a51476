//! The request log at the default level (`info`): OAuth and metadata requests get a line each,
//! MCP requests do not (they are `debug`: formatting and writing a line is a large share of a
//! tool call's own cost, so a line per call would lower the calls/s a server sustains),
//! no line carries a token or a password, and text a client chose (a metadata-document
//! `client_id`, a path) reaches a line escaped, never as a raw line break or terminal escape.
//! A binary of its own, because the log subscriber it installs is process-wide: its tests
//! share one subscriber, and each checks only what holds whatever else was logged.

// The escaping test drives a metadata-document client: without the `cimd` feature it is left
// out, and what only it uses is unused.
#![cfg_attr(not(feature = "cimd"), allow(unused_imports, dead_code))]

mod common;

use common::log_capture::captured;
use common::{Pkce, REDIRECT_URI, TestServer, param};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn info_logs_oauth_requests_but_not_each_mcp_call() {
    let captured = captured();

    let server = TestServer::start().await;
    let res = server.get(&server.url("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens = server.sign_in("alice", "password123", &[]).await;
    let unauthenticated = server.mcp(None, &common::initialize_request(), None).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let session = server.initialize(&tokens.access).await;
    let reply = server.call_tool(&tokens.access, &session, "whoami").await;
    assert_eq!(reply["result"]["structuredContent"], json!({ "username": "alice" }), "{reply}");

    let lines = captured.lines();
    let requests: Vec<&String> = lines.iter().filter(|l| l.contains("request") && l.contains("path=")).collect();
    for path in ["/.well-known/oauth-protected-resource/mcp", "/register", "/authorize", "/login", "/token"] {
        assert!(
            requests.iter().any(|l| l.contains(&format!("path={path} "))),
            "an info line for {path} in {requests:#?}"
        );
    }
    assert!(!requests.iter().any(|l| l.contains("path=/mcp ")), "no info line per MCP request: {requests:#?}");
    for secret in [tokens.access.as_str(), tokens.refresh.as_str(), "password123"] {
        assert!(!lines.iter().any(|l| l.contains(secret)), "a log line carries a secret: {lines:#?}");
    }
}

#[tokio::test]
async fn serve_logs_one_line_with_the_public_url_and_the_mcp_endpoint() {
    let captured = captured();
    let server = TestServer::start().await;
    // The line is written as `serve` starts; the first answer shows it has.
    let res = server.get(&server.url("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(res.status(), StatusCode::OK);

    let port = server.base.rsplit(':').next().expect("a port");
    let wanted = format!("public_url={} mcp={}/mcp", server.base, server.base);
    let lines = captured.lines();
    // Other tests of this binary start servers too: only this server's line counts.
    let serving: Vec<&String> = lines.iter().filter(|l| l.contains(" serving ") && l.contains(&wanted)).collect();
    assert_eq!(serving.len(), 1, "one serving line for {wanted}: {lines:#?}");
    assert!(serving[0].contains(" INFO "), "at INFO: {}", serving[0]);
    assert!(serving[0].contains(&format!("listen=127.0.0.1:{port} ")), "the bound address: {}", serving[0]);
}

#[tokio::test]
async fn request_lines_name_the_client_address_the_trusted_proxy_reports() {
    let captured = captured();
    let server = TestServer::start_with(|mut c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
        c
    })
    .await;
    let url = server.url("/.well-known/oauth-authorization-server");
    let res = server.client.get(&url).header("x-forwarded-for", "192.0.2.1, 198.51.100.23").send().await;
    assert_eq!(res.expect("GET").status(), StatusCode::OK);
    let res = server.client.get(&url).header("x-forwarded-for", "2001:db8:5:6::7").send().await;
    assert_eq!(res.expect("GET").status(), StatusCode::OK);
    let lines = captured.lines();
    let metadata: Vec<&String> =
        lines.iter().filter(|l| l.contains("path=/.well-known/oauth-authorization-server ")).collect();
    assert!(metadata.iter().any(|l| l.contains("client=198.51.100.23")), "{metadata:#?}");
    assert!(metadata.iter().any(|l| l.contains("client=2001:db8:5:6::/64")), "{metadata:#?}");
    assert!(!metadata.iter().any(|l| l.contains("192.0.2.1")), "a spoofed entry: {metadata:#?}");
}

/// A line break and a terminal escape, then text that would pass for a log line of its own.
const INJECTED: &str = "\n\u{1b}[31mFORGED";

#[cfg(feature = "cimd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_chosen_text_reaches_log_lines_escaped() {
    let captured = captured();
    let server = TestServer::start_with(|mut c| {
        c.danger_allow_private_cimd_hosts = true;
        c
    })
    .await;
    let Pkce { verifier, challenge } = Pkce::new();

    // A metadata-document client_id whose fetch fails (nothing listens on port 1).
    let unreachable = format!("http://127.0.0.1:1/c{INJECTED}-FETCH.json");
    let res = server.get(&server.authorize_url(&unreachable, &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // One that signs in and gets tokens: its document repeats the client_id exactly.
    let client_id = common::serve_document(&format!("/c{INJECTED}-TOKENS.json"), |id| {
        json!({ "client_id": id, "client_name": format!("Doc{INJECTED}-NAME"), "redirect_uris": [REDIRECT_URI] })
            .to_string()
    })
    .await;
    let auth = server.authorize_url(&client_id, &challenge, "st", &[]);
    let callback = server.login(&auth, "alice", "password123").await.expect("a code");
    let code = param(&callback, "code").expect("a code");
    assert_eq!(server.exchange(&client_id, &code, &verifier).await.status(), StatusCode::OK);

    // A registered client's name, and a username typed at the login page.
    server.register(json!({ "redirect_uris": [REDIRECT_URI], "client_name": format!("App{INJECTED}-DCR") })).await;
    let auth = server.authorize_url(&server.register_public().await, &challenge, "st", &[]);
    assert!(server.login(&auth, &format!("mallory{INJECTED}-USER"), "nope").await.is_err());

    // A path with Unicode line separators (not percent-encoded: written on the socket as is).
    let mut socket = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.expect("connect");
    let raw =
        format!("GET /x\u{2028}\u{85}FORGED-PATH HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", &server.base[7..]);
    socket.write_all(raw.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 404"), "{}", String::from_utf8_lossy(&answer));

    let lines = captured.lines();
    let escaped = |marker: &str| lines.iter().any(|l| l.contains(&format!("\\n\\u{{1b}}[31mFORGED-{marker}")));
    assert!(escaped("FETCH"), "the failed fetch is logged with its client_id escaped: {lines:#?}");
    assert!(escaped("TOKENS"), "the token line names the client_id escaped: {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("/x\\u{2028}\\u{85}FORGED-PATH")),
        "the path is logged escaped: {lines:#?}"
    );
    for line in &lines {
        assert!(!line.starts_with("FORGED") && !line.contains('\u{1b}'), "a forged or raw line: {line:?}");
        assert!(!line.contains(['\u{85}', '\u{2028}', '\u{2029}']), "a raw line separator: {line:?}");
    }
}

/// A request refused for its `Host` (a proxy that rewrote it, DNS rebinding) leaves a line that
/// names the Host it sent, so that the operator sees what to pass through or allow.
#[tokio::test]
async fn a_refused_host_is_named_in_the_log() {
    let captured = captured();
    let server = TestServer::start().await;
    let res = server
        .client
        .get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .header(reqwest::header::HOST, "proxy-rewrote-this.internal:8443")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let lines = captured.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("refused an unknown Host") && l.contains("host=proxy-rewrote-this.internal:8443")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn every_line_of_a_request_carries_the_request_id_of_its_response() {
    let captured = captured();
    let server = TestServer::start().await;
    // A sign-in with a wrong password: the endpoint logs a line of its own, and the router one.
    let auth = server.authorize_url(&server.register_public().await, &Pkce::new().challenge, "st", &[]);
    let page = server.open_login(&auth).await;
    let res = server.post_login(&page.form("alice", "wrong-7c1d", "allow"), page.cookie.as_deref()).await;
    common::assert_wrong_credentials(&res, "a wrong password");
    let id = res.headers()["x-request-id"].to_str().expect("ASCII").to_owned();

    let lines = captured.lines();
    let of_request: Vec<&String> = lines.iter().filter(|l| l.contains(&format!("request_id={id}"))).collect();
    assert!(of_request.iter().any(|l| l.contains("sign-in failed")), "the endpoint's line: {of_request:#?}");
    assert!(of_request.iter().any(|l| l.contains("path=/login ")), "the request line: {of_request:#?}");
    assert!(!lines.iter().any(|l| l.contains("wrong-7c1d")), "no password in the log");
}

/// A line logged deep inside an MCP request (the session check in the guard, which logs no
/// request line of its own at `info`) carries the id of the response too.
#[tokio::test]
async fn a_warning_from_inside_an_mcp_request_carries_its_request_id() {
    let captured = captured();
    let server = TestServer::start().await;
    let alice = server.sign_in("alice", "password123", &[]).await;
    let bob = server.sign_in("bob", "hunter2", &[]).await;
    let session = server.initialize(&alice.access).await;

    let res = server.mcp(Some(&bob.access), &common::tool_call(3, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "bob's token on alice's session");
    let id = res.headers()["x-request-id"].to_str().expect("ASCII").to_owned();

    let lines = captured.lines();
    let of_request: Vec<&String> = lines.iter().filter(|l| l.contains(&format!("request_id={id}"))).collect();
    assert!(
        of_request.iter().any(|l| l.contains(" WARN ") && l.contains("token used on another user's MCP session")),
        "the guard's warning with the id {id}: {lines:#?}"
    );
}
