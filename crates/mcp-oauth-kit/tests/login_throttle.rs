//! The sign-in throttle under concurrency: a burst of wrong guesses for one username, sent at
//! once, gets at most the limit of them to password verification (counted by a user store that
//! wraps the demo users), and 429 with `Retry-After` for the rest; on one server, and on two
//! servers sharing a PostgreSQL database (`TEST_DATABASE_URL`). A right password after wrong
//! ones within the limit still signs in. Lockout is no weapon: an attacker's wrong passwords,
//! from one address or from several, do not keep the user from signing in at her own address,
//! and the attacker stays throttled.

mod common;
#[path = "store_support/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{LoginPage, Pkce, STATE, TestServer, assert_wrong_credentials, header, location, param};
use mcp_oauth_kit::store::{MemoryStore, SqlStore, Store};
use mcp_oauth_kit::users::UserStoreError;
use mcp_oauth_kit::{Password, StaticUserStore, User, UserStore, async_trait};
use reqwest::StatusCode;

/// Wrong guesses sent at once.
const GUESSES: usize = 40;
/// The per-(username, address) limit of failed sign-ins (the default); every guess of a burst
/// comes from 127.0.0.1.
const LIMIT: usize = 5;

/// The demo users, counting every password verification.
#[derive(Clone)]
struct CountingUsers {
    inner: StaticUserStore,
    verified: Arc<AtomicUsize>,
}

impl CountingUsers {
    fn new() -> Self {
        Self { inner: common::users(), verified: Arc::default() }
    }

    fn verified(&self) -> usize {
        self.verified.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl UserStore for CountingUsers {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        self.verified.fetch_add(1, Ordering::SeqCst);
        self.inner.authenticate(username, password).await
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        self.inner.find_by_id(id).await
    }
}

/// `n` open sign-in pages, one per pending request (as an attacker would open them, to dodge
/// the per-request limit), taken round-robin from `servers`.
async fn pages(servers: &[&TestServer], n: usize) -> Vec<(usize, LoginPage)> {
    let mut clients = Vec::new();
    for server in servers {
        clients.push(server.register_public().await);
    }
    let mut pages = Vec::with_capacity(n);
    for i in 0..n {
        let s = i % servers.len();
        let challenge = Pkce::new().challenge;
        let url = servers[s].authorize_url(&clients[s], &challenge, STATE, &[]);
        pages.push((s, servers[s].open_login(&url).await));
    }
    pages
}

/// Post a wrong password for `username` on every page at once; asserts that at most [`LIMIT`]
/// reached verification, each answered "wrong username or password" (no code), and that every other guess got 429 with a
/// `Retry-After`.
async fn burst_of_wrong_guesses(servers: &[&TestServer], users: &CountingUsers, username: &str) {
    let pages = pages(servers, GUESSES).await;
    let before = users.verified();
    let posts = pages.iter().enumerate().map(|(i, (s, page))| {
        let form = page.form(username, &format!("wrong-{i}"), "allow");
        async move { servers[*s].post_login(&form, page.cookie.as_deref()).await }
    });
    // Joined, not spawned: every request is in flight before any answer is read.
    let replies = futures::future::join_all(posts).await;
    let verified = users.verified() - before;
    let mut wrong = 0;
    for res in &replies {
        match res.status() {
            StatusCode::SEE_OTHER => {
                assert_wrong_credentials(res, "a verified guess");
                wrong += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let retry: u64 = header(res, "retry-after").parse().expect("a Retry-After in seconds");
                assert!((1..=15 * 60).contains(&retry), "{retry}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(verified <= LIMIT, "{verified} of {GUESSES} concurrent guesses reached password verification");
    assert!(verified >= 1, "the burst was refused before any verification");
    assert_eq!(wrong, verified, "each verified guess was answered 'wrong password', and only those");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_guesses_reach_verification_at_most_the_limit() {
    let users = CountingUsers::new();
    let server = TestServer::start_with_users_and_store(users.clone(), Arc::new(MemoryStore::new()), |c| c).await;
    burst_of_wrong_guesses(&[&server], &users, "alice").await;
    // alice is locked out now, even with her password, and that costs no verification either.
    let before = users.verified();
    let page = &pages(&[&server], 1).await[0].1;
    let res = server.post_login(&page.form("alice", "password123", "allow"), page.cookie.as_deref()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(users.verified(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_after_wrong_ones_within_the_limit_signs_in() {
    let users = CountingUsers::new();
    let server = TestServer::start_with_users_and_store(users.clone(), Arc::new(MemoryStore::new()), |c| c).await;
    for round in 0..2 {
        for (i, (_, page)) in pages(&[&server], LIMIT - 1).await.iter().enumerate() {
            let res = server.post_login(&page.form("alice", "wrong", "allow"), page.cookie.as_deref()).await;
            assert_wrong_credentials(&res, format!("round {round}, guess {}", i + 1));
        }
        let page = &pages(&[&server], 1).await[0].1;
        let res = server.post_login(&page.form("alice", "password123", "allow"), page.cookie.as_deref()).await;
        assert_eq!(res.status(), StatusCode::FOUND, "round {round}: the last place of the limit is hers");
        assert!(param(&location(&res), "code").is_some());
    }
    assert_eq!(users.verified(), 2 * LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_guesses_on_two_postgres_instances_reach_verification_at_most_the_limit() {
    let test = "concurrent_wrong_guesses_on_two_postgres_instances_reach_verification_at_most_the_limit";
    let Some(url) = postgres::postgres_url(test) else { return };
    let users = CountingUsers::new();
    // Other runs share the database, so the per-address limit (on 127.0.0.1) is off here, and
    // the username is this run's own.
    let config = |mut c: mcp_oauth_kit::Config| {
        c.login_failures_per_ip = 0;
        c
    };
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.expect("connect to PostgreSQL"));
        servers.push(TestServer::start_with_users_and_store(users.clone(), store, config).await);
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let username = format!("mallory-{}-{nanos}", std::process::id());
    burst_of_wrong_guesses(&[&servers[0], &servers[1]], &users, &username).await;
}

/// Where alice signs in from, and where the attackers guess from, as the trusted proxy in
/// front of the server (127.0.0.1, the TCP peer) reports them in `X-Forwarded-For`.
const ALICE_AT_HOME: &str = "203.0.113.7";
const ATTACKERS: [&str; 4] = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "2001:db8:bad::1"];

/// A server behind a trusted proxy on 127.0.0.1, on a clock the test moves.
async fn behind_proxy() -> (TestServer, mcp_oauth_kit::clock::ManualClock) {
    TestServer::start_on_clock(|mut c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
        c
    })
    .await
}

/// One sign-in from `from`, on a fresh sign-in request (the per-request limit stays out of it).
async fn sign_in_from(server: &TestServer, from: &str, username: &str, password: &str) -> reqwest::Response {
    let page = &pages(&[server], 1).await[0].1;
    let headers = [("origin", server.base.as_str()), ("x-forwarded-for", from)];
    server.post_login_with(&page.form(username, password, "allow"), page.cookie.as_deref(), &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_at_one_address_cannot_lock_the_user_out_at_another() {
    let (server, _frozen) = behind_proxy().await;
    let attacker = ATTACKERS[0];
    for guess in 1..=LIMIT {
        let res = sign_in_from(&server, attacker, "alice", &format!("guess-{guess}")).await;
        assert_wrong_credentials(&res, format!("guess {guess}"));
    }
    // The attacker is throttled, even with the right password and with the name's case changed.
    for username in ["alice", "ALICE"] {
        let res = sign_in_from(&server, attacker, username, "password123").await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{username}");
        assert_eq!(header(&res, "retry-after"), "900", "the whole window is left");
    }
    // A spoofed entry left of the proxy's own does not get the attacker alice's address.
    let spoofed = format!("{ALICE_AT_HOME}, {attacker}");
    let res = sign_in_from(&server, &spoofed, "alice", "password123").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "still the attacker's address");
    // alice, at home, signs in at once.
    let res = sign_in_from(&server, ALICE_AT_HOME, "alice", "password123").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(param(&location(&res), "code").is_some());
    // Her sign-in did not lift the attacker's throttle.
    let res = sign_in_from(&server, attacker, "alice", "password123").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_at_many_addresses_only_delay_the_user() {
    let (server, clock) = behind_proxy().await;
    // Twenty wrong passwords for alice, five from each address: the per-username limit.
    for attacker in ATTACKERS {
        for guess in 1..=LIMIT {
            let res = sign_in_from(&server, attacker, "alice", &format!("{attacker}-{guess}")).await;
            assert_wrong_credentials(&res, format!("{attacker} guess {guess}"));
        }
    }
    // A fifth address: one more guess goes on, and starts a delay for the name.
    let res = sign_in_from(&server, "198.51.100.5", "alice", "one-more").await;
    assert_wrong_credentials(&res, "the guess that starts the delay");
    let res = sign_in_from(&server, "198.51.100.6", "alice", "and-another").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the delay holds for every address");
    // alice waits the delay, not the window: a second, then her password works.
    let res = sign_in_from(&server, ALICE_AT_HOME, "alice", "password123").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = header(&res, "retry-after").parse().expect("seconds");
    assert_eq!(wait, 1, "the first delay is a second");
    clock.advance(std::time::Duration::from_secs(wait));
    let res = sign_in_from(&server, ALICE_AT_HOME, "alice", "password123").await;
    assert_eq!(res.status(), StatusCode::FOUND, "alice signs in after the delay");
    // bob was never delayed.
    let res = sign_in_from(&server, ATTACKERS[0], "bob", "hunter2").await;
    assert_eq!(res.status(), StatusCode::FOUND);
}
