//! The guarded MCP endpoint: tools that know their caller, per-tool scopes (403
//! `insufficient_scope`), every kind of bad token (401 `invalid_token`), sessions bound to
//! their user, token expiry, MCP App templates, `/mcp/`, the body limit, and an rmcp handler of
//! the user's own behind the same guard.

mod common;

use std::time::Duration;

use common::{APP_HTML, APP_MIME, APP_URI, TestServer, header, initialize_request, rpc_reply, text_of, tool_call};
use mcp_oauth_kit::rmcp::handler::server::router::tool::ToolRouter;
use mcp_oauth_kit::rmcp::model::{ServerCapabilities, ServerConfig};
use mcp_oauth_kit::rmcp::service::RequestContext;
use mcp_oauth_kit::rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use mcp_oauth_kit::{AccessToken, AppTemplate, ToolDef, ToolError, ToolOutput};
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_know_their_caller() {
    let server = TestServer::start().await;
    for (user, password) in [("alice", "password123"), ("bob", "hunter2")] {
        let t = server.sign_in(user, password, &[]).await;
        let session = server.initialize(&t.access).await;

        let list = server.rpc(&t.access, &session, 2, "tools/list", json!({})).await;
        let mut names: Vec<&str> =
            list["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["admin_only", "profile_card", "whoami"], "{user}");

        let reply = server.call_tool(&t.access, &session, "whoami").await;
        assert_eq!(text_of(&reply["result"]), user, "{reply}");
        assert_eq!(reply["result"]["structuredContent"], json!({ "username": user }));
        assert_ne!(reply["result"]["isError"], json!(true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_reports_the_server_and_the_apps_extension() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let res = server.mcp(Some(&t.access), &initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let reply = rpc_reply(res).await;
    let result = &reply["result"];
    assert_eq!(result["serverInfo"]["name"], "Test MCP server", "{reply}");
    assert!(result["capabilities"]["tools"].is_object(), "{reply}");
    assert!(result["capabilities"]["resources"].is_object(), "{reply}");
    let ui = &result["capabilities"]["extensions"]["io.modelcontextprotocol/ui"];
    assert_eq!(ui["mimeTypes"], json!([APP_MIME]), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_tool_needs_its_scope() {
    let server = TestServer::start().await;
    let plain = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&plain.access).await;

    let res = server.mcp(Some(&plain.access), &tool_call(3, "admin_only"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let challenge = header(&res, "www-authenticate");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    let scope = challenge.split("scope=\"").nth(1).and_then(|s| s.split('"').next()).expect("a scope parameter");
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert!(scopes.contains(&"admin"), "the missing scope is named: {challenge}");
    assert!(scopes.contains(&"mcp"), "with the ones the token has, for a step-up request: {challenge}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");

    // In a batch, too.
    let batch = json!([tool_call(4, "whoami"), tool_call(5, "admin_only")]);
    let res = server.mcp(Some(&plain.access), &batch, Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a batch that calls a scoped tool");

    // Other tools still work with the same token.
    let reply = server.call_tool(&plain.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice");

    let admin = server.sign_in("alice", "password123", &[("scope", "mcp admin")]).await;
    assert_eq!(admin.body["scope"], "admin mcp");
    let session = server.initialize(&admin.access).await;
    let reply = server.call_tool(&admin.access, &session, "admin_only").await;
    assert_eq!(text_of(&reply["result"]), "admin area, welcome alice", "{reply}");
}

/// What a message with duplicate keys must get.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Refused over HTTP with this status.
    Status(StatusCode),
    /// Answered 200 with a JSON-RPC error of this code.
    RpcError(i64),
}

/// The scope check reads the body before rmcp does, with another JSON parser's view of it. A
/// key given twice must not let the two disagree on which tool runs: no such body runs the
/// scoped tool for a token without its scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_cannot_smuggle_a_scoped_call() {
    let server = TestServer::start().await;
    let plain = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&plain.access).await;
    // The guard reads the last of duplicate keys, as a JSON map does: where that makes the
    // message a call of `admin_only`, the guard refuses it (403 insufficient_scope). Where it does
    // not, rmcp's strict parser refuses the duplicates itself: 415 for a message it cannot
    // read, or JSON-RPC -32601 where it reads the call but not its parameters.
    const FORBIDDEN: Outcome = Outcome::Status(StatusCode::FORBIDDEN);
    const UNREADABLE: Outcome = Outcome::Status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let cases = [
        (
            r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"admin_only","name":"whoami"}}"#,
            Outcome::RpcError(-32601),
        ),
        (
            r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"whoami","name":"admin_only"}}"#,
            FORBIDDEN,
        ),
        (
            r#"{"jsonrpc":"2.0","id":13,"method":"tools/call","method":"tools/list","params":{"name":"admin_only"}}"#,
            UNREADABLE,
        ),
        (
            r#"{"jsonrpc":"2.0","id":14,"method":"tools/list","method":"tools/call","params":{"name":"admin_only"}}"#,
            FORBIDDEN,
        ),
        (
            r#"{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"whoami"},"params":{"name":"admin_only"}}"#,
            FORBIDDEN,
        ),
        (
            r#"{"jsonrpc":"2.0","id":16,"method":"tools/call","params":{"name":"admin_only"},"params":{"name":"whoami"}}"#,
            UNREADABLE,
        ),
        (
            r#"[{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"whoami","name":"admin_only"}}]"#,
            FORBIDDEN,
        ),
    ];
    for (body, expected) in cases {
        let res =
            server.mcp_post("/mcp", Some(&plain.access), Some(&session)).body(body).send().await.expect("POST /mcp");
        let status = res.status();
        let challenge = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = res.text().await.expect("a body");
        assert!(!text.contains("admin area"), "{body} ran the scoped tool: {status} {text}");
        match expected {
            Outcome::Status(expected) => {
                assert_eq!(status, expected, "{body}: {text}");
                if expected == StatusCode::FORBIDDEN {
                    let challenge = challenge.unwrap_or_default();
                    assert!(challenge.contains("error=\"insufficient_scope\""), "{body}: {challenge}");
                }
            }
            Outcome::RpcError(code) => {
                assert_eq!(status, StatusCode::OK, "{body}: {text}");
                let reply = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                    .find(|m| m.get("id").is_some())
                    .unwrap_or_else(|| panic!("{body}: no JSON-RPC reply in {text:?}"));
                assert_eq!(reply["error"]["code"], json!(code), "{body}: {reply}");
                assert!(reply.get("result").is_none(), "{body}: {reply}");
            }
        }
    }
    // The session is still usable, and the scoped tool still refused the plain way.
    assert_eq!(text_of(&server.call_tool(&plain.access, &session, "whoami").await["result"]), "alice");
    let res = server.mcp(Some(&plain.access), &tool_call(18, "admin_only"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_401_invalid_token() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let other_server = TestServer::start().await;
    let foreign = other_server.sign_in("alice", "password123", &[]).await;
    let long = format!("mcp_at_{}", "a".repeat(200));
    let cases = [
        ("garbage token", "Bearer mcp_at_garbage".to_owned()),
        ("not a kit token", "Bearer eyJhbGciOiJub25lIn0.e30.".to_owned()),
        ("overlong token", format!("Bearer {long}")),
        ("the refresh token", format!("Bearer {}", t.refresh)),
        ("another server's token", format!("Bearer {}", foreign.access)),
        ("token with a suffix", format!("Bearer {}x", t.access)),
        ("Basic scheme", "Basic YWxpY2U6cGFzc3dvcmQxMjM=".to_owned()),
        ("no token", "Bearer".to_owned()),
        ("two tokens", format!("Bearer {} {}", t.access, t.access)),
        ("quote in token", "Bearer ab\"c".to_owned()),
        ("no scheme", t.access.clone()),
    ];
    for (name, authorization) in cases {
        let res = server
            .client
            .post(server.url("/mcp"))
            .header(AUTHORIZATION, &authorization)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize_request())
            .send()
            .await
            .expect("POST /mcp");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = header(&res, "www-authenticate");
        assert!(challenge.contains("error=\"invalid_token\""), "{name}: {challenge}");
        assert!(challenge.contains("/.well-known/oauth-protected-resource/mcp\""), "{name}: {challenge}");
    }
    // The real token, lowercase scheme: fine.
    let res = server
        .client
        .post(server.url("/mcp"))
        .header(AUTHORIZATION, format!("bearer {}", t.access))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_request())
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_query_string_is_not_accepted() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let path = format!("/mcp?access_token={}", t.access);
    let res = server.mcp_at(&path, None, &initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&res, "www-authenticate").starts_with("Bearer "));
    let res = server
        .client
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .form(&[("access_token", t.access.as_str())])
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "nor in a form body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_belongs_to_the_user_who_opened_it() {
    let server = TestServer::start().await;
    let alice = server.sign_in("alice", "password123", &[]).await;
    let bob = server.sign_in("bob", "hunter2", &[]).await;
    let session = server.initialize(&alice.access).await;

    let res = server.mcp(Some(&bob.access), &tool_call(3, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "bob's token on alice's session");
    let res = server
        .client
        .delete(server.url("/mcp"))
        .bearer_auth(&bob.access)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("DELETE /mcp");
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "bob cannot close alice's session");

    // Alice's session is unharmed, and a refreshed token of hers still drives it.
    let reply = server.call_tool(&alice.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice");
    let res = server.refresh(&alice.client_id, &alice.refresh).await;
    let fresh = common::tokens_of(&alice.client_id, res).await;
    let reply = server.call_tool(&fresh.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice");

    // Alice's token from another client is still alice: same subject, same session.
    let alice_elsewhere = server.sign_in("alice", "password123", &[]).await;
    let reply = server.call_tool(&alice_elsewhere.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_gets_401() {
    let (server, clock) = TestServer::start_on_clock(|c| c).await;
    let t = server.sign_in("alice", "password123", &[]).await;
    assert_eq!(t.body["expires_in"], 3600);
    let session = server.initialize(&t.access).await;
    // The last millisecond of its hour, verified (and cached) then: still valid.
    clock.advance(Duration::from_secs(3600) - Duration::from_millis(1));
    let reply = server.call_tool(&t.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice");
    // At its expiry the cached answer is not trusted either.
    clock.advance(Duration::from_millis(1));
    let res = server.mcp(Some(&t.access), &tool_call(3, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&res, "www-authenticate").contains("error=\"invalid_token\""));
    // The refresh token outlives it.
    let fresh = common::tokens_of(&t.client_id, server.refresh(&t.client_id, &t.refresh).await).await;
    let reply = server.call_tool(&fresh.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice");
}

/// The template of an MCP App whose tool needs the `admin` scope.
const ADMIN_APP_URI: &str = "ui://test/admin-card";

async fn admin_card(caller: AccessToken, _args: serde_json::Map<String, Value>) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(format!("admin card of {}", caller.username)))
}

/// An MCP App's template is part of its tool: `resources/read` of a scoped tool's template
/// takes the tool's scope (403 `insufficient_scope`, as calling the tool does), alone or in a
/// batch; with the scope it is read. An unscoped App's template needs no scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_apps_template_needs_the_tools_scope() {
    let tools = common::tools().tool(
        ToolDef::new("admin_card", "The admin's card")
            .scope("admin")
            .app(AppTemplate::new(ADMIN_APP_URI, "Admin card", "<p>admin</p>"))
            .handler(admin_card),
    );
    let server = TestServer::start_with_tools(tools).await;
    let read = |id: u64, uri: &str| json!({ "jsonrpc": "2.0", "id": id, "method": "resources/read", "params": { "uri": uri } });

    let plain = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&plain.access).await;
    for body in [read(2, ADMIN_APP_URI), json!([read(3, ADMIN_APP_URI)])] {
        let res = server.mcp(Some(&plain.access), &body, Some(&session)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{body}");
        let challenge = header(&res, "www-authenticate");
        assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
        let scope = challenge.split("scope=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default();
        assert!(scope.split(' ').any(|s| s == "admin"), "the missing scope is named: {challenge}");
    }
    // The unscoped App's template stays readable with the same token.
    let reply = server.rpc(&plain.access, &session, 4, "resources/read", json!({ "uri": APP_URI })).await;
    assert_eq!(reply["result"]["contents"][0]["text"], APP_HTML, "{reply}");

    let admin = server.sign_in("alice", "password123", &[("scope", "mcp admin")]).await;
    let session = server.initialize(&admin.access).await;
    let reply = server.rpc(&admin.access, &session, 5, "resources/read", json!({ "uri": ADMIN_APP_URI })).await;
    let contents = &reply["result"]["contents"][0];
    assert_eq!((contents["uri"].as_str(), contents["text"].as_str()), (Some(ADMIN_APP_URI), Some("<p>admin</p>")));
    assert_eq!(contents["mimeType"], APP_MIME, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_template_is_listed_read_and_embedded() {
    let server = TestServer::start().await;
    let t = server.sign_in("bob", "hunter2", &[]).await;
    let session = server.initialize(&t.access).await;

    let list = server.rpc(&t.access, &session, 2, "resources/list", json!({})).await;
    let resources = list["result"]["resources"].as_array().expect("resources");
    let app = resources.iter().find(|r| r["uri"] == APP_URI).expect("the template is listed");
    assert_eq!(app["mimeType"], APP_MIME);
    assert_eq!(app["name"], "App");

    let read = server.rpc(&t.access, &session, 3, "resources/read", json!({ "uri": APP_URI })).await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["uri"], APP_URI, "{read}");
    assert_eq!(contents["mimeType"], APP_MIME);
    assert_eq!(contents["text"], APP_HTML);

    let missing = server.rpc(&t.access, &session, 4, "resources/read", json!({ "uri": "ui://test/none" })).await;
    // MCP's "resource not found".
    assert_eq!(missing["error"]["code"], json!(-32002), "{missing}");
    assert!(missing.get("result").is_none(), "{missing}");

    let tools = server.rpc(&t.access, &session, 5, "tools/list", json!({})).await;
    let tool = tools["result"]["tools"].as_array().expect("tools").iter().find(|t| t["name"] == "profile_card");
    assert_eq!(tool.expect("listed")["_meta"]["ui"]["resourceUri"], APP_URI);

    let reply = server.call_tool(&t.access, &session, "profile_card").await;
    let result = &reply["result"];
    assert_eq!(result["structuredContent"], json!({ "username": "bob" }));
    let content = result["content"].as_array().expect("content");
    assert!(content.iter().any(|c| c["type"] == "text" && c["text"] == "profile of bob"), "{reply}");
    let embedded: Vec<&Value> = content.iter().filter(|c| c["type"] == "resource").collect();
    assert_eq!(embedded.len(), 1, "{reply}");
    assert_eq!(embedded[0]["resource"]["uri"], APP_URI);
    assert_eq!(embedded[0]["resource"]["mimeType"], APP_MIME);
    assert_eq!(embedded[0]["resource"]["text"], APP_HTML);

    // Ordinary tools carry no template.
    let reply = server.call_tool(&t.access, &session, "whoami").await;
    let content = reply["result"]["content"].as_array().expect("content");
    assert!(content.iter().all(|c| c["type"] != "resource"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_with_a_trailing_slash_works_the_same() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize_at("/mcp/", &t.access).await;
    let res = server.mcp_at("/mcp/", Some(&t.access), &tool_call(2, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text_of(&rpc_reply(res).await["result"]), "alice");
    // One endpoint: the session opened at /mcp/ is the one at /mcp.
    let reply = server.call_tool(&t.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice");
    let res = server.mcp_at("/mcp/", Some(&t.access), &tool_call(3, "admin_only"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "scopes are enforced at /mcp/ too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tools_and_sessions() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let reply = server.call_tool(&t.access, &session, "no_such_tool").await;
    // JSON-RPC's invalid params, the code MCP gives an unknown tool.
    assert_eq!(reply["error"]["code"], json!(-32602), "{reply}");
    assert!(reply.get("result").is_none(), "{reply}");
    let res = server.mcp(Some(&t.access), &tool_call(3, "whoami"), Some("no-such-session")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "an unknown session");
}

/// The first bytes of the answer to a raw HTTP/1.1 request `head` at `addr`, whose chunked
/// `body` (if any) is sent in the background: the server may answer and close before it is sent.
async fn raw_answer(addr: &str, head: String, body: Option<Vec<u8>>) -> String {
    let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = socket.into_split();
    writer.write_all(head.as_bytes()).await.expect("write the head");
    let sender = tokio::spawn(async move {
        for chunk in body.iter().flat_map(|b| b.chunks(64 * 1024)) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if writer.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read the answer");
    sender.abort();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let big = 5 * 1024 * 1024; // over the 4 MiB default
    // Raw HTTP/1.1, so that the answer is read whatever the server does with the unread body.
    let head = |framing: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\nmcp-session-id: {session}\r\n\
             mcp-protocol-version: {}\r\naccept: application/json, text/event-stream\r\n\
             content-type: application/json\r\n{framing}\r\n",
            &server.base[7..],
            t.access,
            common::PROTOCOL_VERSION
        )
    };
    // A declared length over the limit is refused before the body is read: none is sent here.
    let answer = raw_answer(&server.base[7..], head(&format!("content-length: {big}\r\n")), None).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A chunked body is refused once it passes the limit.
    let answer = raw_answer(&server.base[7..], head("transfer-encoding: chunked\r\n"), Some(vec![b' '; big])).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let reply = server.call_tool(&t.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice", "the server still serves, the session still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_can_close_a_session() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let res = server
        .client
        .delete(server.url("/mcp"))
        .bearer_auth(&t.access)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("DELETE /mcp");
    assert_eq!(res.status(), StatusCode::ACCEPTED, "the Streamable HTTP answer to a DELETE");
    let res = server.mcp(Some(&t.access), &tool_call(3, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "a closed session is gone");
    let res =
        server.client.delete(server.url("/mcp")).header("mcp-session-id", &session).send().await.expect("DELETE /mcp");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "closing needs a token too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_mode_serves_json_without_sessions() {
    let server = TestServer::start_with(|mut c| {
        c.stateless = true;
        c
    })
    .await;
    let alice = server.sign_in("alice", "password123", &[]).await;
    let res = server.mcp(Some(&alice.access), &initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, "mcp-session-id").is_empty(), "no session in stateless mode");
    assert!(rpc_reply(res).await["result"]["serverInfo"].is_object());
    for (user, password) in [("alice", "password123"), ("bob", "hunter2")] {
        let t = server.sign_in(user, password, &[]).await;
        let res = server.mcp(Some(&t.access), &tool_call(2, "whoami"), None).await;
        assert_eq!(res.status(), StatusCode::OK, "{user}");
        assert!(header(&res, "content-type").starts_with("application/json"), "{user}");
        assert_eq!(text_of(&rpc_reply(res).await["result"]), user);
    }
    let res = server.mcp(Some(&alice.access), &tool_call(3, "admin_only"), None).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "scopes are enforced without sessions too");
}

/// An rmcp server written without the kit in mind, as `McpServerBuilder::rmcp_handler` takes it.
#[derive(Clone)]
struct PlainRmcp {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl PlainRmcp {
    #[tool(description = "Say who is signed in")]
    fn whoami(&self, ctx: RequestContext<RoleServer>) -> String {
        AccessToken::from_context(&ctx).map_or_else(|| "nobody".to_owned(), |caller| caller.username.clone())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PlainRmcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmcp_handler_is_guarded_and_knows_its_caller() {
    let server = TestServer::start_with_rmcp_handler(PlainRmcp { tool_router: PlainRmcp::tool_router() }).await;
    let res = server.mcp(None, &initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let alice = server.sign_in("alice", "password123", &[]).await;
    let bob = server.sign_in("bob", "hunter2", &[]).await;
    let session = server.initialize(&alice.access).await;
    let reply = server.call_tool(&alice.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice", "{reply}");
    let res = server.mcp(Some(&bob.access), &tool_call(3, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "bob's token on alice's session");
}
