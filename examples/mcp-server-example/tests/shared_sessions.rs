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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::rmcp_client::{roll, rolls_as, session_at};
use support::round_robin::RoundRobin;

/// How long the Python SDK's check may take, its first run's `pip install` included.
const CONFORMANCE_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_sessions_hop_between_two_instances_behind_a_round_robin_proxy() {
    let test = "rmcp_sessions_hop_between_two_instances_behind_a_round_robin_proxy";
    let Some(database_url) = support::postgres::postgres_url(test) else { return };
    let proxy = RoundRobin::start().await;
    let a = proxy.launch(&database_url);
    let (a, b) = tokio::join!(a.start(), a.start());
    proxy.route_to(&[&a, &b]);

    let alice = session_at(&proxy.url(), "alice", "password123").await;
    let bob = session_at(&proxy.url(), "bob", "hunter2").await;
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
    let launch = proxy.launch(&database_url);
    let first = launch.start().await;
    proxy.route_to(&[&first]);
    let alice = session_at(&proxy.url(), "alice", "password123").await;
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
    let launch = proxy.launch(&database_url);
    let (a, b) = tokio::join!(launch.start(), launch.start());
    proxy.route_to(&[&a, &b]);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (user, password) = if i % 2 == 0 { ("alice", "password123") } else { ("bob", "hunter2") };
        clients.push((user, Arc::new(session_at(&proxy.url(), user, password).await)));
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
    let a = proxy.launch(&database_url);
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
