//! HTTP/2 on the server's one port, over cleartext with prior knowledge (h2c), as a proxy in
//! front of it may speak: the OAuth endpoints and the guarded MCP endpoint answer as over
//! HTTP/1.1. An HTTP/2 request carries no `Host` header; the `:authority` pseudo-header is
//! what the DNS-rebinding check reads then: the server's own authority is accepted, a foreign
//! one gets 403.

mod common;

use std::net::SocketAddr;

use common::{TestServer, initialize_request, rpc_reply, text_of, tool_call};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{StatusCode, Version};
use serde_json::{Value, json};

/// A client that speaks only HTTP/2 and sends no `Host` header (hyper sets one for HTTP/1
/// only); `resolve` sends requests for `foreign` to the server's address.
fn h2c_client(addr: SocketAddr, foreign: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(foreign, addr)
        .build()
        .expect("an HTTP/2 client")
}

fn addr_of(server: &TestServer) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().expect("the server's socket address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_serves_oauth_and_mcp_and_checks_the_authority() {
    let server = TestServer::start().await;
    let addr = addr_of(&server);
    let h2 = h2c_client(addr, "rebind.attacker.example");

    // The server's own authority, with no Host header: accepted.
    let res = h2.get(server.url("/.well-known/oauth-authorization-server")).send().await.expect("GET over h2c");
    assert_eq!(res.version(), Version::HTTP_2, "prior knowledge speaks HTTP/2");
    assert_eq!(res.status(), StatusCode::OK);
    let metadata: Value = res.json().await.expect("JSON metadata");
    assert_eq!(metadata["issuer"], server.base);

    // A foreign authority (a DNS-rebinding page's name), with no Host header: 403.
    let foreign = format!("http://rebind.attacker.example:{}", addr.port());
    for path in ["/.well-known/oauth-authorization-server", "/mcp", "/token"] {
        let res = h2.get(format!("{foreign}{path}")).send().await.expect("GET over h2c");
        assert_eq!(res.version(), Version::HTTP_2);
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} with a foreign :authority");
        assert_eq!(res.text().await.expect("a body"), "unknown Host\n", "{path}");
    }
    let res = h2.post(format!("{foreign}/register")).json(&json!({ "redirect_uris": ["http://127.0.0.1/cb"] }));
    assert_eq!(res.send().await.expect("POST over h2c").status(), StatusCode::FORBIDDEN, "register, foreign");

    // Tokens from the ordinary flow, then MCP over HTTP/2: initialize, a tool call, a refusal.
    let t = server.sign_in("alice", "password123", &[]).await;
    let mcp = |body: &Value, session: Option<&str>| {
        let mut req = h2
            .post(server.url("/mcp"))
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .bearer_auth(&t.access)
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s).header("mcp-protocol-version", "2025-06-18");
        }
        req.send()
    };
    let res = mcp(&initialize_request(), None).await.expect("initialize over h2c");
    assert_eq!((res.version(), res.status()), (Version::HTTP_2, StatusCode::OK), "initialize");
    let session = res.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).expect("a session").to_owned();
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(mcp(&note, Some(&session)).await.expect("initialized").status(), StatusCode::ACCEPTED);
    let res = mcp(&tool_call(2, "whoami"), Some(&session)).await.expect("tools/call over h2c");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text_of(&rpc_reply(res).await["result"]), "alice");
    let res = mcp(&tool_call(3, "admin_only"), Some(&session)).await.expect("a scoped call over h2c");
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "scopes hold over HTTP/2");

    // A bearer token is still required.
    let res = h2.post(server.url("/mcp")).body(initialize_request().to_string()).send().await.expect("no token");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
