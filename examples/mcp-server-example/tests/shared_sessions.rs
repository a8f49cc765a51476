//! Stateful MCP sessions across instances, with no sticky sessions: the real binary over one
//! PostgreSQL database behind a round-robin TCP proxy that sends each new connection to the
//! next instance, driven by rmcp's own client in session mode. The client signs in through the
//! proxy (rmcp's OAuth client and the real login form), then opens a new connection for every
//! request, so consecutive requests of one session land on different instances. Also: a restart
//! of the only instance in the middle of a session, and `kill -9` of one of two instances under
//! load, which its clients survive on the other without signing in again.
//!
//! The official MCP Python SDK (`../shared/conformance`, or `CONFORMANCE_SCRIPT`, in session
//! mode) runs through the same proxy when it is there; `REQUIRE_CONFORMANCE=1` (CI sets it) makes its absence a
//! failure.
//!
//! Runs only with `TEST_DATABASE_URL=postgres://…`; otherwise each test says it was skipped.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connect_with_client::rmcp::ServiceExt;
use connect_with_client::rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use connect_with_client::rmcp::transport::StreamableHttpClientTransport;
use connect_with_client::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use connect_with_client::{FormLogin, McpClient, authorize};
use serde_json::json;
use support::{Launch, Server, text_of};
use tokio::net::{TcpListener, TcpStream};

/// How long the Python SDK's check may take, its first run's `pip install` included.
const CONFORMANCE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a tool call through the proxy may take before the test counts it as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP proxy on an ephemeral port that sends each accepted connection to the next backend in
/// turn (skipping one that refuses the connection), as a load balancer without sticky sessions
/// does. It stops when dropped.
struct RoundRobin {
    port: u16,
    backends: Arc<Mutex<Vec<u16>>>,
    /// Connections handed to each backend port, in order of acceptance.
    served: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RoundRobin {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let backends: Arc<Mutex<Vec<u16>>> = Arc::default();
        let served: Arc<Mutex<Vec<u16>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let (list, log) = (backends.clone(), served.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let _ = inbound.set_nodelay(true);
                let ports = list.lock().expect("backends").clone();
                let start = next.fetch_add(1, Ordering::Relaxed);
                let log = log.clone();
                tokio::spawn(async move {
                    // Each backend at most once, from the next one on.
                    for i in 0..ports.len() {
                        let port = ports[(start + i) % ports.len()];
                        let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else { continue };
                        let _ = outbound.set_nodelay(true);
                        log.lock().expect("served").push(port);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                });
            }
        });
        Self { port, backends, served, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn route_to(&self, servers: &[&Server]) {
        *self.backends.lock().expect("backends") = servers.iter().map(|s| s.port).collect();
    }

    /// How many connections went to `server` so far.
    fn served(&self, server: &Server) -> usize {
        self.served.lock().expect("served").iter().filter(|&&p| p == server.port).count()
    }
}

/// A server of the deployment behind `proxy` (its public URL) on `database_url`.
fn launch(proxy: &RoundRobin, database_url: &str) -> Launch {
    Launch { public_url: proxy.url(), env: Vec::new() }.env("DATABASE_URL", database_url)
}

/// Sign `username` in through the proxy with rmcp's OAuth client, then open an MCP session with
/// rmcp's client in session mode on an HTTP client that opens a new connection per request.
async fn session_through(proxy: &RoundRobin, username: &str, password: &str) -> McpClient {
    let mcp_url = format!("{}/mcp", proxy.url());
    let oauth = authorize(&mcp_url, FormLogin::new(username, password)).await.expect("sign in through the proxy");
    let token = oauth.access_token().await.expect("an access token");
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(0).timeout(CALL_TIMEOUT).build().expect("an HTTP client");
    let config = StreamableHttpClientTransportConfig::with_uri(mcp_url.as_str()).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let info = ClientConfig::new(ClientCapabilities::default(), Implementation::new("shared-sessions-test", "0.0.0"));
    info.serve(transport).await.expect("initialize through the proxy")
}

/// `roll_dice` on the session; the text of the result, or why the call failed.
async fn roll(client: &McpClient) -> Result<String, String> {
    let args = json!({ "sides": 6 }).as_object().cloned().expect("an object");
    let call = client.call_tool(CallToolRequestParams::new("roll_dice").with_arguments(args));
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(result)) => Ok(text_of(&serde_json::to_value(result).expect("JSON"))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
    }
}

/// `calls` rolls on the session, each of which must succeed as `username`'s.
async fn rolls_as(client: &McpClient, username: &str, calls: usize) {
    for i in 0..calls {
        let text = roll(client).await.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert!(text.starts_with(&format!("{username} rolled a ")), "call {i}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_sessions_hop_between_two_instances_behind_a_round_robin_proxy() {
    let test = "rmcp_sessions_hop_between_two_instances_behind_a_round_robin_proxy";
    let Some(database_url) = support::postgres::postgres_url(test) else { return };
    let proxy = RoundRobin::start().await;
    let a = launch(&proxy, &database_url);
    let (a, b) = tokio::join!(a.start(), a.start());
    proxy.route_to(&[&a, &b]);

    let alice = session_through(&proxy, "alice", "password123").await;
    let bob = session_through(&proxy, "bob", "hunter2").await;
    let tools = alice.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "roll_dice"), "{tools:?}");
    for _ in 0..10 {
        rolls_as(&alice, "alice", 2).await;
        rolls_as(&bob, "bob", 2).await;
    }
    let (on_a, on_b) = (proxy.served(&a), proxy.served(&b));
    assert!(on_a >= 20 && on_b >= 20, "both instances served the sessions: {on_a} and {on_b} connections");
    alice.cancel().await.expect("close alice's session");
    bob.cancel().await.expect("close bob's session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_continues_after_the_only_instance_restarts() {
    let test = "a_session_continues_after_the_only_instance_restarts";
    let Some(database_url) = support::postgres::postgres_url(test) else { return };
    let proxy = RoundRobin::start().await;
    let launch = launch(&proxy, &database_url);
    let first = launch.start().await;
    proxy.route_to(&[&first]);
    let alice = session_through(&proxy, "alice", "password123").await;
    rolls_as(&alice, "alice", 3).await;

    let status = first.sigterm().await;
    assert!(status.success(), "graceful stop: {status}");
    let second = launch.start().await;
    proxy.route_to(&[&second]);
    // The same session, on a process that has never seen it: no 404, no new sign-in.
    rolls_as(&alice, "alice", 5).await;
    assert!(proxy.served(&second) >= 5);
    alice.cancel().await.expect("close the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_under_load_moves_its_sessions_to_the_other() {
    const CLIENTS: usize = 8;
    const CALLS: usize = 40;
    let test = "kill_9_of_one_instance_under_load_moves_its_sessions_to_the_other";
    let Some(database_url) = support::postgres::postgres_url(test) else { return };
    let proxy = RoundRobin::start().await;
    let launch = launch(&proxy, &database_url);
    let (a, b) = tokio::join!(launch.start(), launch.start());
    proxy.route_to(&[&a, &b]);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (user, password) = if i % 2 == 0 { ("alice", "password123") } else { ("bob", "hunter2") };
        clients.push((user, Arc::new(session_through(&proxy, user, password).await)));
    }

    // Every client calls in a loop; A dies a few calls in.
    let failures = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = clients
        .iter()
        .map(|(user, client)| {
            let (user, client, failures) = (*user, client.clone(), failures.clone());
            tokio::spawn(async move {
                for _ in 0..CALLS {
                    match roll(&client).await {
                        Ok(text) => assert!(text.starts_with(&format!("{user} rolled a ")), "{text}"),
                        Err(e) => {
                            eprintln!("a call failed during the switch: {e}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill9().await;
    for task in tasks {
        task.await.expect("a client task");
    }
    let failed = failures.load(Ordering::Relaxed);
    eprintln!("{failed} of {} calls failed while one of two instances was killed", CLIENTS * CALLS);
    // Only calls in flight on the killed instance may fail: at most one per client.
    assert!(failed <= CLIENTS, "{failed} calls failed");
    // Every session goes on, on the survivor, with the tokens it had.
    for (user, client) in &clients {
        rolls_as(client, user, 2).await;
    }
    drop(b);
}

/// `CONFORMANCE_SCRIPT`, else `../shared/conformance/run.sh` beside the workspace, or `None`
/// after a notice; fails instead under `REQUIRE_CONFORMANCE=1`.
fn conformance_script() -> Option<PathBuf> {
    let beside = || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/run.sh");
    let script = std::env::var_os("CONFORMANCE_SCRIPT").filter(|v| !v.is_empty()).map_or_else(beside, PathBuf::from);
    if script.exists() {
        return Some(script);
    }
    assert!(
        std::env::var("REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
        "REQUIRE_CONFORMANCE=1 but {} is absent",
        script.display()
    );
    eprintln!("skipped: no {}", script.display());
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_in_session_mode_passes_through_the_round_robin_proxy() {
    let test = "the_python_sdk_in_session_mode_passes_through_the_round_robin_proxy";
    let Some(database_url) = support::postgres::postgres_url(test) else { return };
    let Some(script) = conformance_script() else { return };
    let proxy = RoundRobin::start().await;
    let a = launch(&proxy, &database_url);
    let (a, b) = tokio::join!(a.start(), a.start());
    proxy.route_to(&[&a, &b]);
    // `legacy`: the initialize handshake and `Mcp-Session-Id` on every session, none of the
    // stateless 2026-07-28 protocol.
    let dir = support::TempDir::new("conformance");
    let out = dir.path().join("stdout");
    let mut child = std::process::Command::new("bash")
        .arg(&script)
        .arg(proxy.url())
        .env("E2E_MCP_MODE", "legacy")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("a file for its output"))
        .spawn()
        .expect("run the Python SDK check");
    let deadline = std::time::Instant::now() + CONFORMANCE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the check") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the Python SDK check did not finish within {CONFORMANCE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stdout = std::fs::read_to_string(&out).expect("the check's output");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(status.success() && failed.is_empty(), "{status}: {failed:#?}\n{stdout}");
    eprintln!("{}", stdout.lines().last().unwrap_or_default());
    let (on_a, on_b) = (proxy.served(&a), proxy.served(&b));
    assert!(on_a > 0 && on_b > 0, "both instances served the SDK: {on_a} and {on_b} connections");
}
