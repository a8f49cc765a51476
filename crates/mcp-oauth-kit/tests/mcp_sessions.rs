//! MCP sessions kept in the store: a session opened on one instance continues on another and
//! after a restart, for its user only (403 for anyone else's token, also after a restore); it
//! ends for every instance on `DELETE`, when its grant is revoked, and when it stays idle.
//!
//! The instances are in-process servers over one SQLite file (or PostgreSQL, for a session
//! ended elsewhere), behind one public URL (the first's), each also answering to its own
//! address, as instances behind a load balancer do. An instance learns at its next sweep that
//! a session it holds was ended on another.
//! While the store is down, a new or restored session gets 503 with `Retry-After`, and sessions
//! an instance holds go on.
#![cfg(feature = "sqlite")]

mod common;
#[cfg(feature = "postgres")]
#[path = "store_support/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::failing_store::{Failing, FailingStore};
use common::{TempDir, TestServer, text_of, tool_call};
use mcp_oauth_kit::clock::{Clock, ManualClock};
use mcp_oauth_kit::store::{SqlStore, Store, TokenHash};
use mcp_oauth_kit::{Config, McpServer};
use reqwest::StatusCode;
use tokio::net::TcpListener;

const HOUR: Duration = Duration::from_secs(3600);

fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("shared.db").display())
}

const MINUTE: Duration = Duration::from_secs(60);

/// Wait (bounded) until the store says `session` was last used at `at`.
async fn last_used_reaches(store: &SqlStore, session: &str, at: SystemTime) {
    let mut seen = None;
    for _ in 0..200 {
        let record = store.mcp_session(&TokenHash::of(session)).await.expect("read").expect("stored");
        seen = Some(record.last_used_at);
        // The SQL store keeps milliseconds.
        let millis = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).ok();
        if millis(record.last_used_at) == millis(at) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no sweep wrote the session's use at {at:?}; it says {seen:?}");
}

/// One instance of a deployment whose public URL is `public` (None: its own), over the SQLite
/// file in `dir`, with a configuration adjusted by `tweak`.
async fn instance(dir: &TempDir, public: Option<&str>, tweak: impl FnOnce(Config) -> Config) -> TestServer {
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&sqlite_url(dir)).await.expect("open SQLite"));
    instance_over(store, public, tweak).await
}

/// Another instance over `store`, behind the public URL `public`.
async fn instance_on(store: Arc<dyn Store>, public: &str, tweak: impl FnOnce(Config) -> Config) -> TestServer {
    instance_over(store, Some(public), tweak).await
}

async fn instance_over(
    store: Arc<dyn Store>,
    public: Option<&str>,
    tweak: impl FnOnce(Config) -> Config,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
    let port = listener.local_addr().expect("local address").port();
    let public = public.map(str::to_owned);
    TestServer::launch_on(listener, move |own| {
        let mut config = match public {
            Some(public) => {
                let mut c = Config::new(&public).expect("valid").with_scopes(&["mcp", "admin"], &["mcp"]);
                c.listen_addr = own.listen_addr;
                c.extra_allowed_hosts = vec![format!("127.0.0.1:{port}")];
                c
            }
            None => own,
        };
        config.sweep_interval = Duration::from_millis(200);
        McpServer::builder(tweak(config)).store(store).user_store(common::users()).tools(common::tools())
    })
    .await
}

/// Two instances of one deployment over one SQLite file.
async fn two_instances(dir: &TempDir) -> (TestServer, TestServer) {
    let a = instance(dir, None, |c| c).await;
    let b = instance(dir, Some(&a.base), |c| c).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_continues_on_another_instance_for_its_user_only() {
    let dir = TempDir::new("mcp-sessions");
    let (a, b) = two_instances(&dir).await;
    let alice = a.sign_in("alice", "password123", &[]).await;
    let bob = a.sign_in("bob", "hunter2", &[]).await;
    let session = a.initialize(&alice.access).await;

    // Bob first, on the instance that has never seen the session: the stored binding refuses.
    let res = b.mcp(Some(&bob.access), &tool_call(2, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "bob's token on alice's stored session");
    // Alice continues on B without a new initialize.
    let reply = b.call_tool(&alice.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice", "{reply}");
    // And Bob is still refused, now by B's own binding of the restored session.
    let res = b.mcp(Some(&bob.access), &tool_call(3, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "bob's token on alice's restored session");
    // Back on A: still hers, still working.
    let reply = a.call_tool(&alice.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice", "{reply}");
    // A session id nobody issued is unknown everywhere.
    let res = b.mcp(Some(&alice.access), &tool_call(4, "whoami"), Some("made-up-session")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_restart() {
    let dir = TempDir::new("mcp-sessions");
    let first = instance(&dir, None, |c| c).await;
    let public = first.base.clone();
    let alice = first.sign_in("alice", "password123", &[]).await;
    let session = first.initialize(&alice.access).await;
    drop(first);
    // The process is gone with everything it held in memory; the store is all that is left.
    let restarted = instance(&dir, Some(&public), |c| c).await;
    let reply = restarted.call_tool(&alice.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), "alice", "{reply}");
    let list = restarted.rpc(&alice.access, &session, 9, "tools/list", serde_json::json!({})).await;
    assert!(list["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session_for_every_instance() {
    let dir = TempDir::new("mcp-sessions");
    let (a, b) = two_instances(&dir).await;
    let alice = a.sign_in("alice", "password123", &[]).await;
    let session = a.initialize(&alice.access).await;
    end_session(&a, &alice.access, &session).await;
    let res = b.mcp(Some(&alice.access), &tool_call(2, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "ended, also for the other instance");
    let res = a.mcp(Some(&alice.access), &tool_call(3, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "ended where it was deleted");
}

/// The client's `DELETE` of `session` on `server`, which must succeed.
async fn end_session(server: &TestServer, token: &str, session: &str) {
    let res = server
        .client
        .delete(server.url("/mcp"))
        .bearer_auth(token)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", common::PROTOCOL_VERSION)
        .send()
        .await
        .expect("DELETE /mcp");
    assert!(res.status().is_success(), "{}", res.status());
}

/// Ask `server` about `session` with `token` until it answers 404, within ten sweeps of
/// 200 ms; panics with the last status otherwise.
async fn ends_within_the_sweep(server: &TestServer, token: &str, session: &str, what: &str) {
    let mut last = None;
    for i in 0..40 {
        let res = server.mcp(Some(token), &tool_call(100 + i, "whoami"), Some(session)).await;
        if res.status() == StatusCode::NOT_FOUND {
            return;
        }
        last = Some(res.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: the instance still answers {last:?} after ten sweeps");
}

/// Two instances over the store at `url`; a session opened on A and continued on B is ended
/// on B, first by its client's `DELETE`, then (another session) by revoking its grant. A,
/// which holds both in memory, learns of it at its next sweep and answers 404, although it
/// still trusts the revoked grant's token from its cache.
async fn ending_on_b_ends_on_a(url: &str) {
    let open =
        || async { Arc::new(mcp_oauth_kit::store::open_store(url).await.expect("open the store")) as Arc<dyn Store> };
    let trusting = |mut c: Config| {
        c.token_cache_ttl = Duration::from_secs(600);
        c
    };
    let a = instance_over(open().await, None, trusting).await;
    let b = instance_on(open().await, &a.base, trusting).await;
    let alice = a.sign_in("alice", "password123", &[]).await;

    let session = a.initialize(&alice.access).await;
    assert_eq!(text_of(&a.call_tool(&alice.access, &session, "whoami").await["result"]), "alice");
    assert_eq!(text_of(&b.call_tool(&alice.access, &session, "whoami").await["result"]), "alice");
    end_session(&b, &alice.access, &session).await;
    ends_within_the_sweep(&a, &alice.access, &session, "deleted on B").await;

    let session = a.initialize(&alice.access).await;
    assert_eq!(text_of(&a.call_tool(&alice.access, &session, "whoami").await["result"]), "alice");
    assert_eq!(b.revoke(&alice.client_id, &alice.refresh).await.status(), StatusCode::OK);
    ends_within_the_sweep(&a, &alice.access, &session, "grant revoked on B").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_on_another_instance_ends_here_at_the_next_sweep() {
    let dir = TempDir::new("mcp-sessions");
    ending_on_b_ends_on_a(&sqlite_url(&dir)).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_on_another_postgres_instance_ends_here_at_the_next_sweep() {
    let Some(url) = postgres::postgres_url("a_session_ended_on_another_postgres_instance_ends_here_at_the_next_sweep")
    else {
        return;
    };
    ending_on_b_ends_on_a(&url).await;
}

/// What a flood of made-up session ids costs: without a valid token, no store read; with
/// one, a few reads per second and then 429 with `Retry-After`; an id the store did not know,
/// asked again, no read. A real session opened on another instance still restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_session_ids_cost_a_bounded_number_of_store_reads() {
    let store = Arc::new(FailingStore::default());
    // Time stands still, so that every request below falls in one budget window.
    let clock = ManualClock::starting_now();
    let on_clock = |mut c: Config| {
        c.clock = Arc::new(clock.clone());
        c
    };
    let a = TestServer::start_with_store(store.clone(), on_clock).await;
    let b = instance_on(store.clone(), &a.base, on_clock).await;
    let alice = a.sign_in("alice", "password123", &[]).await;
    let real = a.initialize(&alice.access).await;
    let reads = || store.mcp_session_reads();
    let before = reads();

    for i in 0..20 {
        let made_up = format!("made-up-{i}");
        for token in [None, Some("not-a-valid-token")] {
            let res = b.mcp(token, &tool_call(i, "whoami"), Some(&made_up)).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(reads(), before, "no token, no read");

    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = b.mcp(Some(&alice.access), &tool_call(i, "whoami"), Some(&format!("made-up-{i}"))).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(common::header(&res, "retry-after"), "1");
        }
        statuses.push(res.status());
    }
    let count = |s| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!((count(StatusCode::NOT_FOUND), count(StatusCode::TOO_MANY_REQUESTS)), (10, 20), "{statuses:?}");
    assert_eq!(reads() - before, 10, "one read per id within the budget");
    let res = b.mcp(Some(&alice.access), &tool_call(31, "whoami"), Some("made-up-0")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "known to be unknown, even over budget");
    assert_eq!(reads() - before, 10, "and not read again");

    // The next window: the real session continues on B, read once.
    clock.advance(Duration::from_secs(1));
    assert_eq!(text_of(&b.call_tool(&alice.access, &real, "whoami").await["result"]), "alice");
    assert_eq!(reads() - before, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_a_revoked_grant_is_refused() {
    let dir = TempDir::new("mcp-sessions");
    let (a, b) = two_instances(&dir).await;
    let first = a.sign_in("alice", "password123", &[]).await;
    let session = a.initialize(&first.access).await;
    assert_eq!(text_of(&a.call_tool(&first.access, &session, "whoami").await["result"]), "alice");

    // Revoking the refresh token revokes its grant, and with it the session.
    let res = a.revoke(&first.client_id, &first.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = a.mcp(Some(&first.access), &tool_call(2, "whoami"), Some(&session)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the grant's token is dead");

    // A new sign-in of the same user is a new grant: it does not revive the old session,
    // neither where it lives in memory nor elsewhere.
    let second = a.sign_in("alice", "password123", &[]).await;
    for (name, server) in [("A", &a), ("B", &b)] {
        let res = server.mcp(Some(&second.access), &tool_call(3, "whoami"), Some(&session)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "on {name}");
    }
    // Its own session works.
    let fresh = b.initialize(&second.access).await;
    assert_eq!(text_of(&b.call_tool(&second.access, &fresh, "whoami").await["result"]), "alice");

    // Revoking the user ends that one too.
    a.oauth.as_ref().expect("built-in authorization server").revoke_user("user-alice").await.expect("revoke user");
    let third = a.sign_in("alice", "password123", &[]).await;
    let res = a.mcp(Some(&third.access), &tool_call(4, "whoami"), Some(&fresh)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the user's sessions went with the user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_swept_and_used_ones_kept() {
    let dir = TempDir::new("mcp-sessions");
    let clock = ManualClock::starting_now();
    // Tokens outlive the test's day: what expires here is the session.
    let on_clock = |mut c: Config| {
        c.clock = Arc::new(clock.clone());
        c.access_token_ttl = 48 * HOUR;
        c
    };
    let a = instance(&dir, None, on_clock).await;
    let b = instance(&dir, Some(&a.base), on_clock).await;
    let alice = a.sign_in("alice", "password123", &[]).await;
    let idle = a.initialize(&alice.access).await;
    let used = a.initialize(&alice.access).await;
    let store = SqlStore::connect(&sqlite_url(&dir)).await.expect("open SQLite");
    let start = Clock::now(&clock);

    // A minute on, both are used, and a sweep writes that (and whatever use of the handshake
    // was still unwritten): from then on, only new use is written.
    clock.advance(MINUTE);
    for session in [&idle, &used] {
        assert_eq!(text_of(&a.call_tool(&alice.access, session, "whoami").await["result"]), "alice");
    }
    last_used_reaches(&store, &idle, start + MINUTE).await;
    last_used_reaches(&store, &used, start + MINUTE).await;
    // Twenty hours on, `used` is used on A, and a sweep writes that.
    clock.advance(20 * HOUR);
    assert_eq!(text_of(&a.call_tool(&alice.access, &used, "whoami").await["result"]), "alice");
    last_used_reaches(&store, &used, start + MINUTE + 20 * HOUR).await;
    // Past the idle limit (24 hours by default) for `idle` only.
    clock.advance(5 * HOUR);
    // Watched in the store itself: asking B would restore the session there before the sweep.
    let mut gone = false;
    for _ in 0..200 {
        if store.mcp_session(&TokenHash::of(&idle)).await.expect("read").is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the idle session was swept");
    let res = b.mcp(Some(&alice.access), &tool_call(2, "whoami"), Some(&idle)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the swept session is unknown");
    assert_eq!(text_of(&b.call_tool(&alice.access, &used, "whoami").await["result"]), "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_gets_503_for_new_and_restored_sessions_and_spares_held_ones() {
    let store = Arc::new(FailingStore::default());
    // Tokens stay trusted from the cache meanwhile, as they do for a short outage.
    let trusting = |mut c: Config| {
        c.token_cache_ttl = Duration::from_secs(600);
        c
    };
    let a = TestServer::start_with_store(store.clone(), trusting).await;
    let b = instance_on(store.clone(), &a.base, trusting).await;
    let alice = a.sign_in("alice", "password123", &[]).await;
    let held = a.initialize(&alice.access).await;
    let elsewhere = a.initialize(&alice.access).await;
    // B verifies the token once, while the store is up.
    let res = b.mcp(Some(&alice.access), &tool_call(2, "whoami"), Some("made-up-session")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    store.set_failing(Failing::Everything);
    // A new session would exist in one process only: refused, with a time to retry.
    let res = a.mcp(Some(&alice.access), &common::initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "initialize while the store is down");
    assert_eq!(common::header(&res, "retry-after"), "5");
    // A session B does not hold cannot be checked: 503, not 404 (the client would drop it).
    let res = b.mcp(Some(&alice.access), &tool_call(3, "whoami"), Some(&elsewhere)).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "restore while the store is down");
    assert_eq!(common::header(&res, "retry-after"), "5");
    // A session A holds needs no store.
    assert_eq!(text_of(&a.call_tool(&alice.access, &held, "whoami").await["result"]), "alice");

    store.set_failing(Failing::Nothing);
    assert_eq!(text_of(&b.call_tool(&alice.access, &elsewhere, "whoami").await["result"]), "alice");
    let fresh = a.initialize(&alice.access).await;
    assert_eq!(text_of(&b.call_tool(&alice.access, &fresh, "whoami").await["result"]), "alice");
}
