//! End to end: the real `mcp-server-example` binary, driven by rmcp's own OAuth client
//! (discovery, dynamic registration, PKCE, the real login form), as alice and as bob.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use connect_with_client::rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use connect_with_client::{FormLogin, McpClient, connect};
use mcp_test_support::text_of;
use serde_json::{Value, json};

/// The example binary on a free port; killed when dropped.
struct Server {
    child: Child,
    mcp_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server() -> Server {
    let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-server-example"))
        .env("PORT", port.to_string())
        .env("PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", "memory")
        .stdout(Stdio::null())
        .spawn()
        .expect("the example binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        let url = format!("{base}/.well-known/oauth-protected-resource/mcp");
        if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Server { child, mcp_url: format!("{base}/mcp") };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the example server did not come up on {base}");
}

async fn call(client: &McpClient, tool: &str, args: Value) -> Value {
    let Value::Object(args) = args else { panic!("arguments are an object") };
    let result =
        client.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args)).await.expect("tool call");
    serde_json::to_value(result).expect("serialisable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_oauth_client_signs_in_as_alice_and_bob_and_keeps_working_after_refresh() {
    let server = start_server().await;

    // A wrong password gets no code: the client's login fails.
    let wrong = connect(&server.mcp_url, FormLogin::new("alice", "not-her-password")).await;
    assert!(wrong.is_err(), "a wrong password must not connect");

    for (user, password) in [("alice", "password123"), ("bob", "hunter2")] {
        let (client, session) = connect(&server.mcp_url, FormLogin::new(user, password)).await.expect("connect");

        let tools = client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert!(names.contains(&"roll_dice") && names.contains(&"greeting_card"), "{names:?}");
        let card_tool = tools.iter().find(|t| t.name == "greeting_card").expect("listed");
        let meta = serde_json::to_value(&card_tool.meta).expect("meta");
        assert_eq!(meta["ui"]["resourceUri"], "ui://acme/greeting-card");

        let dice = call(&client, "roll_dice", json!({ "sides": 20 })).await;
        let text = text_of(&dice);
        assert!(text.starts_with(&format!("{user} rolled a ")), "{text}");
        let n: u32 = text.split_whitespace().nth(3).and_then(|s| s.parse().ok()).expect("a number");
        assert!((1..=20).contains(&n));

        let card = call(&client, "greeting_card", json!({ "message": "Welcome!" })).await;
        assert_eq!(card["structuredContent"], json!({ "username": user, "message": "Welcome!" }));
        let embedded = card["content"].as_array().expect("content").iter().find(|c| c["type"] == "resource");
        let embedded = embedded.expect("embedded HTML");
        assert_eq!(embedded["resource"]["uri"], "ui://acme/greeting-card");
        assert_eq!(embedded["resource"]["mimeType"], "text/html;profile=mcp-app");
        assert!(embedded["resource"]["text"].as_str().is_some_and(|h| h.contains("<html")));

        let template = client
            .read_resource(ReadResourceRequestParams::new("ui://acme/greeting-card"))
            .await
            .expect("resources/read");
        let template = serde_json::to_value(template).expect("json");
        assert_eq!(template["contents"][0]["mimeType"], "text/html;profile=mcp-app");

        // Refresh: new tokens, the same session keeps working as the same user.
        let before = session.credentials().await.expect("credentials");
        let after = session.refresh().await.expect("refresh");
        assert_ne!(before.access_token, after.access_token);
        assert_ne!(before.refresh_token, after.refresh_token, "refresh tokens rotate");
        let again = call(&client, "greeting_card", json!({})).await;
        assert_eq!(again["structuredContent"]["username"], user);

        // The pre-rotation refresh token, replayed after the grace window has been used by a
        // newer rotation, must not mint tokens: covered in the kit's token tests.
        client.cancel().await.expect("disconnect");
    }
}
