//! End to end: the real `notes-server` binary, its users added with its own CLI, driven by
//! rmcp's OAuth client (discovery, dynamic registration, PKCE, the real login form).

use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use connect_with_client::rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use connect_with_client::{FormLogin, McpClient, OAuthSession, authorize_with_scopes};
use mcp_test_support::{TempDir, text_of};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_notes-server");
const CAROL_PASSWORD: &str = "carol-password-1";
const DAVE_PASSWORD: &str = "dave-password-1";

/// How often a server that exits at start (its port taken in between) is tried again.
const START_ATTEMPTS: usize = 5;

/// A directory of its own for one test's databases, removed at the end.
struct DataDir(TempDir);

impl DataDir {
    fn new(name: &str) -> Self {
        Self(TempDir::new(&format!("notes-server-{name}")))
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}", self.0.path().join("notes.sqlite3").display())
    }

    /// Run the binary's CLI with this directory's database, `stdin` piped in.
    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", self.database_url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("the CLI ends")
    }

    fn add_user(&self, username: &str, email: &str, password: &str) {
        let out = self.cli(&["add-user", username, email], &format!("{password}\n"));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("Added {username}.\n"));
        assert_eq!(out.status.code(), Some(0));
    }
}

/// The server on a port of the range; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// On a port the system picks (the server's URL must carry it, so the test learns it by
    /// binding port 0 first). A port checked free can be taken before the server binds it: a
    /// server that exits at start is tried again on another, and one counts as up only while
    /// it still runs.
    async fn start(data: &DataDir) -> Self {
        for _ in 0..START_ATTEMPTS {
            let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
            let port = free.expect("a free port").port();
            if let Some(server) = Self::start_on(data, port).await {
                return server;
            }
        }
        panic!("the server exited at start {START_ATTEMPTS} times");
    }

    /// The server on `port`, once it answers; `None` if it exited first (the port was taken).
    async fn start_on(data: &DataDir, port: u16) -> Option<Self> {
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(BIN)
            .env("PORT", port.to_string())
            .env("PUBLIC_URL", &base)
            .env("RUST_LOG", "warn")
            .env("DATABASE_URL", data.database_url())
            .env("MCP_OAUTH_DATABASE_URL", format!("sqlite://{}", data.0.path().join("oauth.sqlite3").display()))
            .stdout(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut server = Self { child, base };
        let http = reqwest::Client::new();
        let url = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);
        for _ in 0..200 {
            if server.child.try_wait().expect("poll the server process").is_some() {
                return None;
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not come up on {}", server.base);
    }

    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    async fn connect(&self, user: &str, password: &str, scopes: &[&str]) -> (McpClient, OAuthSession) {
        let session =
            authorize_with_scopes(&self.mcp_url(), scopes, FormLogin::new(user, password)).await.expect("sign in");
        let client = session.serve().await.expect("MCP initialize");
        (client, session)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(client: &McpClient, tool: &str, args: Value) -> Value {
    let Value::Object(args) = args else { panic!("arguments are an object") };
    let result =
        client.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args)).await.expect("tool call");
    serde_json::to_value(result).expect("serialisable")
}

/// A result's text and its `isError`.
fn text_and_error(result: &Value) -> (String, bool) {
    (text_of(result), result["isError"] == json!(true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_writes_lists_and_deletes_only_their_own_notes() {
    let data = DataDir::new("notes");
    data.add_user("carol", "carol@example.com", CAROL_PASSWORD);
    data.add_user("dave", "dave@example.com", DAVE_PASSWORD);
    let server = Server::start(&data).await;

    let (carol, carol_session) = server.connect("carol", CAROL_PASSWORD, &["mcp", "notes:write"]).await;
    assert_eq!(carol_session.credentials().await.expect("tokens").scope.as_deref(), Some("mcp notes:write"));
    let tools = carol.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["add_note", "delete_note", "list_notes"]);
    let list_tool = tools.iter().find(|t| t.name == "list_notes").expect("listed");
    let meta = serde_json::to_value(&list_tool.meta).expect("meta");
    assert_eq!(meta["ui"]["resourceUri"], "ui://notes/list");

    assert_eq!(
        text_and_error(&call(&carol, "add_note", json!({ "text": "buy milk" })).await),
        ("Saved note 1.".into(), false)
    );
    assert_eq!(
        text_and_error(&call(&carol, "add_note", json!({ "text": " call mum\n" })).await),
        ("Saved note 2.".into(), false)
    );
    let blank = call(&carol, "add_note", json!({ "text": "  " })).await;
    assert_eq!(text_and_error(&blank), ("a note has 1 to 1000 characters".into(), true));

    let list = call(&carol, "list_notes", json!({})).await;
    let carols = json!({
        "owner": "carol@example.com",
        "notes": [{ "id": 1, "text": "buy milk" }, { "id": 2, "text": "call mum" }],
    });
    assert_eq!(list["structuredContent"], carols);
    let embedded = list["content"].as_array().expect("content").iter().find(|c| c["type"] == "resource");
    let embedded = embedded.expect("the App's HTML, embedded");
    assert_eq!(embedded["resource"]["uri"], "ui://notes/list");
    assert_eq!(embedded["resource"]["mimeType"], "text/html;profile=mcp-app");
    let template = carol.read_resource(ReadResourceRequestParams::new("ui://notes/list")).await.expect("read");
    let template = serde_json::to_value(template).expect("json");
    assert_eq!(template["contents"][0]["mimeType"], "text/html;profile=mcp-app");
    assert_eq!(template["contents"][0]["text"], embedded["resource"]["text"]);

    // Dave sees none of carol's notes, and cannot delete them.
    let (dave, _dave_session) = server.connect("dave", DAVE_PASSWORD, &["mcp", "notes:write"]).await;
    let empty = call(&dave, "list_notes", json!({})).await;
    assert_eq!(empty["structuredContent"], json!({ "owner": "dave@example.com", "notes": [] }));
    assert_eq!(
        text_and_error(&call(&dave, "delete_note", json!({ "id": 1 })).await),
        ("you have no note 1".into(), true)
    );
    assert_eq!(
        text_and_error(&call(&dave, "add_note", json!({ "text": "dave's" })).await),
        ("Saved note 3.".into(), false)
    );
    let daves = call(&dave, "list_notes", json!({})).await;
    assert_eq!(
        daves["structuredContent"],
        json!({ "owner": "dave@example.com", "notes": [{ "id": 3, "text": "dave's" }] })
    );
    assert_eq!(call(&carol, "list_notes", json!({})).await["structuredContent"], carols);

    assert_eq!(
        text_and_error(&call(&carol, "delete_note", json!({ "id": 2 })).await),
        ("Deleted note 2.".into(), false)
    );
    let after = call(&carol, "list_notes", json!({})).await;
    assert_eq!(
        after["structuredContent"],
        json!({ "owner": "carol@example.com", "notes": [{ "id": 1, "text": "buy milk" }] })
    );
    carol.cancel().await.expect("disconnect");
    dave.cancel().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notes_write_adding_a_note_is_403_insufficient_scope() {
    let data = DataDir::new("scope");
    data.add_user("carol", "carol@example.com", CAROL_PASSWORD);
    let server = Server::start(&data).await;

    // No scopes asked for: the client takes the 401 challenge's, the default `mcp`.
    let (carol, session) = server.connect("carol", CAROL_PASSWORD, &[]).await;
    let tokens = session.credentials().await.expect("tokens");
    assert_eq!(tokens.scope.as_deref(), Some("mcp"));
    let list = call(&carol, "list_notes", json!({})).await;
    assert_eq!(list["structuredContent"], json!({ "owner": "carol@example.com", "notes": [] }));

    // The guard answers before any session is looked at, as it would for the client's call.
    for (id, tool, args) in [(7, "add_note", json!({ "text": "x" })), (8, "delete_note", json!({ "id": 1 }))] {
        let call = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": args } });
        let res = reqwest::Client::new()
            .post(server.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(&tokens.access_token)
            .json(&call)
            .send()
            .await
            .expect("POST /mcp");
        assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN, "{tool}");
        let challenge = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).expect("a challenge");
        assert_eq!(
            challenge,
            format!(
                "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp notes:write\", \
                 error=\"insufficient_scope\", error_description=\"the token lacks a scope this tool requires\"",
                server.base
            )
        );
    }
    // Nothing was written.
    assert_eq!(call(&carol, "list_notes", json!({})).await["structuredContent"]["notes"], json!([]));
    carol.cancel().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_can_neither_refresh_nor_sign_in() {
    let data = DataDir::new("disabled");
    data.add_user("carol", "carol@example.com", CAROL_PASSWORD);
    let server = Server::start(&data).await;
    let (carol, session) = server.connect("carol", CAROL_PASSWORD, &[]).await;
    carol.cancel().await.expect("disconnect");
    session.refresh().await.expect("an enabled user refreshes");
    let tokens = session.credentials().await.expect("tokens");

    let out = data.cli(&["disable-user", "carol"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Disabled carol.\n");
    assert_eq!(out.status.code(), Some(0));

    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh_token.as_deref().expect("a refresh token")),
        ("client_id", &tokens.client_id),
    ];
    let res = reqwest::Client::new().post(format!("{}/token", server.base)).form(&form).send().await.expect("POST");
    assert_eq!(res.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("an OAuth error body");
    assert_eq!(body["error"], "invalid_grant");

    // A disabled user is refused like a wrong password or an unknown user: the form again.
    for (user, password) in [("carol", CAROL_PASSWORD), ("carol", "not-her-password"), ("mallory", CAROL_PASSWORD)] {
        let again = authorize_with_scopes(&server.mcp_url(), &[], FormLogin::new(user, password)).await;
        let err = format!("{:#}", again.expect_err("no sign-in"));
        assert!(err.starts_with("signing in: login rejected: "), "{user}: {err}");
        // The wrong password's redirect leads back to the form (redirect after POST).
        assert!(err.ends_with(" answered 200 OK with the login form again"), "{user}: {err}");
    }
}

#[test]
fn the_cli_refuses_bad_input_with_a_clear_error() {
    let data = DataDir::new("cli");
    let cases: [(&[&str], &str, &str); 4] = [
        (&["add-user", "erin", "erin@example.com"], "short\n", "error: the password needs at least 8 characters\n"),
        (&["disable-user", "nobody"], "", "error: there is no user \"nobody\"\n"),
        (
            &["add-user", "erin"],
            "",
            "error: usage: notes-server [serve | add-user <username> <email> | disable-user <username> | backup PATH | revoke-all | help]\n",
        ),
        (
            &["frobnicate"],
            "",
            "error: usage: notes-server [serve | add-user <username> <email> | disable-user <username> | backup PATH | revoke-all | help]\n",
        ),
    ];
    for (args, stdin, stderr) in cases {
        let out = data.cli(args, stdin);
        assert_eq!(String::from_utf8_lossy(&out.stderr), stderr, "{args:?}");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    data.add_user("erin", "erin@example.com", "erin-password-1");
    let again = data.cli(&["add-user", "erin", "other@example.com"], "another-password\n");
    assert_eq!(String::from_utf8_lossy(&again.stderr), "error: there is already a user \"erin\"\n");
    assert_eq!(again.status.code(), Some(1));
}
