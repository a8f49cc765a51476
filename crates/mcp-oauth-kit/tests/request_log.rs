//! The request log at the default level (`info`): OAuth and metadata requests get a line each,
//! MCP requests do not (they are `debug`: a line per tool call cost 30-45 % of the calls/s),
//! and no line carries a token or a password. One test in its own binary, because the log
//! subscriber it installs is process-wide.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::TestServer;
use reqwest::StatusCode;
use serde_json::json;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect()
    }
}

#[tokio::test]
async fn info_logs_oauth_requests_but_not_each_mcp_call() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

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
