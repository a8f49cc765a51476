//! Restarts over SQLite: the real `mcp-server-example` binary on a database file in a fresh
//! temp dir, stopped with SIGTERM or killed with `kill -9` in the middle of sign-ins and
//! refreshes, then started again on the same file and port. Registrations, codes, pending
//! sign-ins and tokens survive; MCP sessions (in memory) do not, and say so with 404.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::{Endpoint, Launch, TempDir, Tokens, oauth_error, tokens_of};
use tokio::sync::mpsc;

/// `sqlite:///tmp/…/db.sqlite3`: the form `open_store` takes for an absolute path.
fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("db.sqlite3").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_tokens_survive_a_graceful_restart() {
    let dir = TempDir::new("mcp-restart-graceful");
    // The default MCP mode: sessions for `initialize` clients.
    let launch = Launch::on_free_port().env("DATABASE_URL", sqlite_url(&dir));
    let server = launch.start().await;
    assert!(dir.path().join("db.sqlite3").is_file(), "the database file is created at start");

    let client_id = server.register_public().await;
    let first = server.sign_in(&client_id, "alice", "password123").await;
    let session = server.initialize(&first.access).await;
    server.assert_rolls_as(&first.access, Some(&session), "alice").await;
    // One rotation before the restart: its grace-window retry is kept in the database too.
    let tokens = tokens_of(server.refresh(&client_id, &first.refresh).await, "refresh before the restart").await;

    let status = server.sigterm().await;
    assert!(status.success(), "SIGTERM is a clean shutdown, exit 0; got {status}");

    let server = launch.start().await;
    // Sessions live in the process: the old one is unknown now, and the client is told so with
    // 404 (MCP clients then initialize again), not with a 5xx or a 401.
    let res = server.call_roll_dice(&tokens.access, Some(&session)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "a session from before the restart");
    // The access token issued before the restart still works, on a new session.
    let session = server.initialize(&tokens.access).await;
    server.assert_rolls_as(&tokens.access, Some(&session), "alice").await;
    // A retry of the rotated refresh token (a response lost in the restart) gets the same pair.
    let retried = tokens_of(server.refresh(&client_id, &first.refresh).await, "grace retry after the restart").await;
    assert_eq!(retried, tokens, "the grace-window retry answers with the pair issued before the restart");
    // The current refresh token refreshes.
    let refreshed = tokens_of(server.refresh(&client_id, &tokens.refresh).await, "refresh after the restart").await;
    assert_ne!(refreshed, tokens, "a refresh rotates");
    server.assert_rolls_as(&refreshed.access, Some(&session), "alice").await;
    // The client registered before the restart starts a new authorization, without registering
    // again.
    let bob = server.sign_in(&client_id, "bob", "hunter2").await;
    server.assert_rolls_as(&bob.access, Some(&server.initialize(&bob.access).await), "bob").await;

    let status = server.sigterm().await;
    assert!(status.success(), "the second shutdown is clean too; got {status}");
}

/// What became of a refresh sent just before the server was killed.
#[derive(Debug)]
enum InFlight {
    /// The server answered 200 with this pair before it died.
    Answered(Tokens),
    /// The connection broke: the rotation may or may not have been committed.
    Lost(String),
}

/// Refresh `refresh_token` without panicking on a broken connection; report on `done`.
async fn refresh_in_flight(at: Endpoint, client_id: String, refresh_token: String, done: mpsc::Sender<()>) -> InFlight {
    let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", &client_id)];
    let outcome = match at.http.post(at.url("/token")).form(&form).send().await {
        Ok(res) => match res.status() {
            StatusCode::OK => match res.json::<serde_json::Value>().await {
                Ok(body) => InFlight::Answered(Tokens {
                    access: body["access_token"].as_str().expect("an access_token").to_owned(),
                    refresh: body["refresh_token"].as_str().expect("a refresh_token").to_owned(),
                }),
                Err(e) => InFlight::Lost(format!("body cut off: {e}")),
            },
            status => panic!("a refresh before the kill was refused with {status}"),
        },
        Err(e) => InFlight::Lost(e.to_string()),
    };
    let _ = done.send(()).await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_flows_leaves_nothing_half_written() {
    const IN_FLIGHT: usize = 6;
    let dir = TempDir::new("mcp-restart-kill9");
    let launch = Launch::on_free_port().env("DATABASE_URL", sqlite_url(&dir)).env("MCP_STATELESS", "true");
    let server = launch.start().await;
    let client_id = server.register_public().await;

    // Tokens in use before the crash.
    let before = server.sign_in(&client_id, "alice", "password123").await;
    server.assert_rolls_as(&before.access, None, "alice").await;
    // A code issued and not redeemed yet.
    let (code, code_verifier) = server.sign_in_code(&client_id, "alice", "password123").await;
    // A sign-in page open in a browser, not submitted yet.
    let (pending_verifier, pending_challenge) = support::pkce();
    let pending = server.open_login(&client_id, &pending_challenge).await;
    // Grants whose refresh tokens are rotating when the process dies.
    let mut grants = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        grants.push(server.sign_in(&client_id, "alice", "password123").await);
    }

    // Fire the refreshes at once and kill -9 the server as soon as the first one is answered,
    // while the others are queued on SQLite's writer lock or in the middle of their transaction.
    let (done_tx, mut done_rx) = mpsc::channel(IN_FLIGHT);
    let tasks: Vec<_> = grants
        .iter()
        .map(|g| {
            let at = server.at.clone();
            tokio::spawn(refresh_in_flight(at, client_id.clone(), g.refresh.clone(), done_tx.clone()))
        })
        .collect();
    let _ = tokio::time::timeout(Duration::from_secs(10), done_rx.recv()).await;
    server.kill9().await;
    let mut outcomes = Vec::with_capacity(IN_FLIGHT);
    for task in tasks {
        outcomes.push(task.await.expect("the refresh task ends"));
    }
    let answered = outcomes.iter().filter(|o| matches!(o, InFlight::Answered(_))).count();
    eprintln!("kill -9 with {answered} of {IN_FLIGHT} refreshes answered");

    let server = launch.start().await;

    // Every rotation is all or nothing. Answered before the kill: committed, so a retry of the
    // old token within the grace window returns the very same pair. Lost: either committed
    // (the retry gets the sealed pair) or not (the old token is still current); both give 200.
    // A rotation half written (old token retired, successor missing) would fail here.
    for (i, (grant, outcome)) in grants.iter().zip(&outcomes).enumerate() {
        let after =
            tokens_of(server.refresh(&client_id, &grant.refresh).await, &format!("refresh #{i} after kill -9")).await;
        match outcome {
            InFlight::Answered(pair) => assert_eq!(&after, pair, "refresh #{i} was answered before the kill"),
            InFlight::Lost(why) => eprintln!("refresh #{i} was cut off by the kill ({why})"),
        }
        server.assert_rolls_as(&after.access, None, "alice").await;
        let next = tokens_of(server.refresh(&client_id, &after.refresh).await, &format!("refresh #{i} again")).await;
        server.assert_rolls_as(&next.access, None, "alice").await;
    }

    // The tokens from before the crash work, and their refresh token rotates.
    server.assert_rolls_as(&before.access, None, "alice").await;
    let rotated = tokens_of(server.refresh(&client_id, &before.refresh).await, "refresh of pre-crash tokens").await;
    server.assert_rolls_as(&rotated.access, None, "alice").await;

    // The unredeemed code is redeemed exactly once.
    let from_code = tokens_of(server.exchange(&client_id, &code, &code_verifier).await, "code after kill -9").await;
    server.assert_rolls_as(&from_code.access, None, "alice").await;
    let (status, error) = oauth_error(server.exchange(&client_id, &code, &code_verifier).await).await;
    assert_eq!((status, error.as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"), "a second redemption");

    // The sign-in page opened before the crash: it still works, or it fails cleanly.
    let res = server.get(&pending.path).await;
    let status = res.status();
    assert!(!status.is_server_error(), "the pending sign-in page after kill -9 answered {status}");
    if status == StatusCode::OK {
        // The browser still holds the cookie and form from before the crash.
        let res = server.submit_login(&pending, "alice", "password123").await;
        let code = server.code_of(&res);
        let tokens = tokens_of(server.exchange(&client_id, &code, &pending_verifier).await, "pending sign-in").await;
        server.assert_rolls_as(&tokens.access, None, "alice").await;
    } else {
        eprintln!("the pending sign-in did not survive kill -9: {status}");
    }
}
