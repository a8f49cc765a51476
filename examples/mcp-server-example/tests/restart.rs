//! Restarts over SQLite: the real `mcp-server-example` binary on a database file in a fresh
//! temp dir, stopped with SIGTERM or killed with `kill -9` in the middle of sign-ins and
//! refreshes, then started again on the same file and public URL (on a new port).
//! Registrations, codes, pending sign-ins and tokens survive; MCP sessions (in memory) do not,
//! and say so with 404.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{Endpoint, Launch, Pkce, TempDir, Tokens, oauth_error, tokens_of};

/// `sqlite:///tmp/…/db.sqlite3`: the form `open_store` takes for an absolute path.
fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("db.sqlite3").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_tokens_survive_a_graceful_restart() {
    let dir = TempDir::new("mcp-restart-graceful");
    // The default MCP mode: sessions for `initialize` clients.
    let launch = Launch::local().env("DATABASE_URL", sqlite_url(&dir));
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
    // Sessions are in the database: the one from before the restart goes on, with the access
    // token refreshed before the restart (the same grant), and no new initialize.
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

/// How many refresh chains rotate at once when the process dies.
const CHAINS: usize = 6;
/// Refreshes answered (over all chains) before the kill is sent: the stream is steady by then.
const ANSWERED_BEFORE_KILL: usize = 12;
/// Each chain stops after this many rounds even if no kill came (every loop is bounded).
const MAX_ROUNDS: usize = 500;

/// One refresh chain's history up to the kill: each refresh uses the refresh token of the
/// previous answer.
#[derive(Debug)]
struct Chain {
    /// The refresh token sent last, and the pair it was answered with (if it was).
    answered: Vec<(String, Tokens)>,
    /// The refresh token of a request sent before the kill whose connection broke: the
    /// rotation may or may not have been committed.
    cut: Option<(String, String)>,
}

/// Rotate `grant` again and again until the server dies. A request whose connection breaks is
/// `cut`; one that finds no server to connect to never reached it and does not count.
async fn refresh_chain(
    at: Endpoint,
    client_id: String,
    grant: Tokens,
    killed: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> Chain {
    let mut chain = Chain { answered: Vec::new(), cut: None };
    let mut current = grant.refresh;
    for _ in 0..MAX_ROUNDS {
        if killed.load(Ordering::SeqCst) {
            break;
        }
        let form = [("grant_type", "refresh_token"), ("refresh_token", current.as_str()), ("client_id", &client_id)];
        let outcome = match at.http.post(at.url("/token")).form(&form).send().await {
            Ok(res) if res.status() == StatusCode::OK => {
                res.json::<serde_json::Value>().await.map_err(|e| e.to_string())
            }
            Ok(res) => panic!("a refresh before the kill was refused with {}", res.status()),
            // No connection: sent after the process was gone, so it never reached the server.
            Err(e) if e.is_connect() => break,
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(body) => {
                let pair = Tokens {
                    access: body["access_token"].as_str().expect("an access_token").to_owned(),
                    refresh: body["refresh_token"].as_str().expect("a refresh_token").to_owned(),
                };
                answered.fetch_add(1, Ordering::SeqCst);
                chain.answered.push((current, pair.clone()));
                current = pair.refresh;
            }
            // On the wire when the process died: the kill cut it.
            Err(why) => {
                chain.cut = Some((current, why));
                break;
            }
        }
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_flows_leaves_nothing_half_written() {
    let dir = TempDir::new("mcp-restart-kill9");
    let launch = Launch::local().env("DATABASE_URL", sqlite_url(&dir)).env("MCP_STATELESS", "true");
    let server = launch.start().await;
    let client_id = server.register_public().await;

    // Tokens in use before the crash.
    let before = server.sign_in(&client_id, "alice", "password123").await;
    server.assert_rolls_as(&before.access, None, "alice").await;
    // A code issued and not redeemed yet.
    let (code, code_verifier) = server.sign_in_code(&client_id, "alice", "password123").await;
    // A sign-in page open in a browser, not submitted yet.
    let Pkce { verifier: pending_verifier, challenge: pending_challenge } = Pkce::new();
    let pending = server.open_login(&client_id, &pending_challenge).await;
    // A rotation answered just before the stream starts, with nothing after it.
    let quiet = server.sign_in(&client_id, "alice", "password123").await;
    let quiet_rotated = tokens_of(server.refresh(&client_id, &quiet.refresh).await, "quiet rotation").await;
    // Grants whose refresh tokens are rotating, one request after another, when the process dies.
    let mut grants = Vec::with_capacity(CHAINS);
    for _ in 0..CHAINS {
        grants.push(server.sign_in(&client_id, "alice", "password123").await);
    }

    // A steady stream of rotations: the kill is sent once ANSWERED_BEFORE_KILL of them were
    // answered, while every chain has its next request on the wire (queued on SQLite's writer
    // lock or inside its transaction).
    let killed = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = grants
        .iter()
        .map(|g| {
            let (at, killed, answered) = (server.at.clone(), killed.clone(), answered.clone());
            tokio::spawn(refresh_chain(at, client_id.clone(), g.clone(), killed, answered))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::SeqCst) < ANSWERED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "only {} refreshes answered in 30 s", answered.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    server.kill9().await;
    let mut chains = Vec::with_capacity(CHAINS);
    for task in tasks {
        chains.push(task.await.expect("the refresh chain ends"));
    }
    let cut = chains.iter().filter(|c| c.cut.is_some()).count();
    let total: usize = chains.iter().map(|c| c.answered.len()).sum();
    eprintln!("kill -9 after {total} answered refreshes cut {cut} of {CHAINS} chains");
    assert!(cut >= 1, "the kill cut no refresh in flight ({total} answered first): the half-written case did not run");

    let server = launch.start().await;

    // Every rotation is all or nothing. Answered before the kill: committed, so its access
    // token works, and where nothing followed it, a retry of the token it used (within the
    // grace window) returns the very same pair. Where a cut request followed, that retry is not
    // made: once the successor was used, a retry of its predecessor is a replay and revokes the
    // grant. Cut: either committed (a retry gets the sealed pair) or not (the token is still
    // current); both give 200. A rotation half written (old token retired, successor missing)
    // would fail here.
    let retried = tokens_of(server.refresh(&client_id, &quiet.refresh).await, "quiet retry after kill -9").await;
    assert_eq!(retried, quiet_rotated, "a rotation answered before the kill was committed");
    for (i, chain) in chains.iter().enumerate() {
        let Some((sent, last)) = chain.answered.last() else { continue };
        server.assert_rolls_as(&last.access, None, "alice").await;
        if chain.cut.is_none() {
            let retried = tokens_of(server.refresh(&client_id, sent).await, &format!("chain #{i}: retry")).await;
            assert_eq!(&retried, last, "chain #{i}: its last answered rotation was committed");
        }
    }
    for (i, chain) in chains.iter().enumerate() {
        let current = match (&chain.cut, chain.answered.last()) {
            (Some((sent, why)), _) => {
                eprintln!("chain #{i}: the kill cut a refresh ({why})");
                sent.clone()
            }
            (None, Some((_, last))) => last.refresh.clone(),
            (None, None) => grants[i].refresh.clone(),
        };
        let after = tokens_of(server.refresh(&client_id, &current).await, &format!("chain #{i} after kill -9")).await;
        server.assert_rolls_as(&after.access, None, "alice").await;
        let next = tokens_of(server.refresh(&client_id, &after.refresh).await, &format!("chain #{i} again")).await;
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
