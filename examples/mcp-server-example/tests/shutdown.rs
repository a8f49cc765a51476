//! Graceful shutdown of the real `mcp-server-example` binary: SIGTERM while an MCP session
//! holds its server-sent event stream open (`GET /mcp`) and a token request is half sent. The
//! request in flight is answered, the event stream ends cleanly, new connections are refused,
//! and the process exits with status 0 within [`EXIT_BOUND`], far inside its 10 s drain limit
//! (a drain that has to time out fails here).

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use support::{Launch, PROTOCOL_VERSION};

/// How long the server may take from SIGTERM to exit.
const EXIT_BOUND: Duration = Duration::from_secs(5);
/// How long the half-sent request waits after SIGTERM before sending the rest of its body.
const SEND_REST_AFTER: Duration = Duration::from_millis(300);
/// Every read of the raw connection gives up after this long.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Read one HTTP/1.1 response with a `Content-Length` from `conn`: its status line and body.
fn read_response(conn: &mut TcpStream) -> (String, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut byte).expect("read the response head");
        assert_eq!(n, 1, "the connection closed inside a response head: {}", String::from_utf8_lossy(&raw));
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).expect("an ASCII response head");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Content-Length in {head:?}"));
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).expect("read the response body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, String::from_utf8(body).expect("a UTF-8 body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_request_in_flight_and_ends_event_streams() {
    let mut server = Launch::local().env("DATABASE_URL", "memory").start().await;
    let client_id = server.register_public().await;
    let tokens = server.sign_in(&client_id, "alice", "password123").await;
    let session = server.initialize(&tokens.access).await;

    // The session's event stream, held open by a reader until the server ends it.
    let sse = server
        .http
        .get(server.url("/mcp"))
        .header(ACCEPT, "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("GET /mcp");
    assert_eq!(sse.status(), StatusCode::OK, "the session's event stream");
    let content_type = sse.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/event-stream"), "an event stream, not {content_type:?}");
    let sse_reader = tokio::spawn(async move {
        let mut sse = sse;
        let mut received = Vec::new();
        loop {
            match sse.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => return (Ok(()), Instant::now(), received),
                Err(e) => return (Err(e.to_string()), Instant::now(), received),
            }
        }
    });

    // A refresh on a connection the server has accepted and served once already: its head and
    // half its body are sent before SIGTERM, the rest after.
    let (addr, host) = (format!("127.0.0.1:{}", server.port), server.host.clone());
    let form = format!("grant_type=refresh_token&refresh_token={}&client_id={client_id}", tokens.refresh);
    let (half, rest) = form.split_at(form.len() / 2);
    let mut conn = TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(READ_TIMEOUT)).expect("a read timeout");
    write!(conn, "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: {host}\r\n\r\n").expect("send");
    let (status, _) = read_response(&mut conn);
    assert!(status.starts_with("HTTP/1.1 200"), "the first request on the connection: {status}");
    write!(
        conn,
        "POST /token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{half}",
        form.len()
    )
    .expect("send the head and half the body");
    // Time for the server to read the head and hand the request to its handler.
    tokio::time::sleep(Duration::from_millis(500)).await;

    server.send_sigterm();
    let signalled = Instant::now();
    let port = server.port;
    let exited = tokio::spawn(server.exit_within(EXIT_BOUND));

    tokio::time::sleep(SEND_REST_AFTER).await;
    // The listener is closed: nothing new is accepted during the drain.
    assert!(TcpStream::connect(&addr).is_err(), "a new connection on port {port} after SIGTERM");
    conn.write_all(rest.as_bytes()).expect("send the rest of the body after SIGTERM");
    let (status, body) = tokio::task::spawn_blocking(move || read_response(&mut conn)).await.expect("the reader");
    assert!(status.starts_with("HTTP/1.1 200"), "the request in flight at SIGTERM: {status} {body}");
    let refreshed: Value = serde_json::from_str(&body).expect("a JSON token response");
    let new_refresh = refreshed["refresh_token"].as_str().expect("a refresh_token");
    assert!(new_refresh.starts_with("mcp_rt_") && new_refresh != tokens.refresh, "a rotated refresh token");

    // The event stream ends cleanly (the end of a chunked body, not a reset), during the drain.
    let (end, ended_at, received) =
        tokio::time::timeout(EXIT_BOUND, sse_reader).await.expect("the event stream ends").expect("the reader");
    assert_eq!(end, Ok(()), "the event stream ends cleanly; it carried {:?}", String::from_utf8_lossy(&received));
    assert!(ended_at.duration_since(signalled) < EXIT_BOUND, "the event stream ended within {EXIT_BOUND:?}");

    let status = exited.await.expect("the exit watcher");
    assert!(status.success(), "SIGTERM is a clean shutdown, exit 0; got {status}");
}
