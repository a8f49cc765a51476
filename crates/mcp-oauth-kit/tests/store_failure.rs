//! A store that fails, injected: every endpoint that needs it answers 503 with `Retry-After`
//! (the bearer guard too, never a 401 that would make a client drop its tokens), in the shape
//! the endpoint speaks (the OAuth JSON error `temporarily_unavailable`, or the error page for a
//! browser), nothing panics, and once the store is back everything works again with the
//! tokens, clients and sign-in requests from before. The OAuth endpoints' rate limiter fails
//! closed: a limiter that cannot count refuses.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::failing_store::{Failing, FailingStore};
use common::{LoginPage, TestServer, Tokens, header, initialize_request, location, oauth_error, param};
use reqwest::{Response, StatusCode, Url};
use serde_json::json;

/// A server over a failing store (healthy for now) with a signed-in user, a registered client
/// and a sign-in page left open. Verified tokens are not cached, so the guard asks the store.
async fn signed_in(oauth_requests_per_minute: u32) -> (Arc<FailingStore>, TestServer, Tokens, LoginPage) {
    signed_in_with(oauth_requests_per_minute, None).await
}

/// [`signed_in`], with requests waiting at most `store_timeout` for each store operation when
/// given (`Config::store_timeout`'s default otherwise).
async fn signed_in_with(
    oauth_requests_per_minute: u32,
    store_timeout: Option<Duration>,
) -> (Arc<FailingStore>, TestServer, Tokens, LoginPage) {
    let store = Arc::new(FailingStore::default());
    let server = TestServer::start_with_store(store.clone(), move |mut c| {
        c.token_cache_ttl = Duration::ZERO;
        c.oauth_requests_per_minute = oauth_requests_per_minute;
        c.store_timeout = store_timeout.unwrap_or(c.store_timeout);
        c
    })
    .await;
    let tokens = server.sign_in("alice", "password123", &[]).await;
    let challenge = common::Pkce::new().challenge;
    let page = server.open_login(&server.authorize_url(&tokens.client_id, &challenge, "st", &[])).await;
    (store, server, tokens, page)
}

/// `Retry-After` in seconds; panics unless it is a positive whole number.
fn retry_after(res: &Response) -> u64 {
    let secs: u64 = header(res, "retry-after").parse().expect("a Retry-After in seconds");
    assert!(secs >= 1, "Retry-After {secs}");
    secs
}

/// 503 `temporarily_unavailable` as JSON, with `Retry-After`.
async fn assert_unavailable_json(res: Response, what: &str) {
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    retry_after(&res);
    assert_eq!(oauth_error(res).await, (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable".into()), "{what}");
}

/// 503 error page (never a redirect), with `Retry-After`.
async fn assert_unavailable_page(res: Response, what: &str) {
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    retry_after(&res);
    assert!(res.headers().get("location").is_none(), "{what}: no redirect");
    assert!(header(&res, "content-type").starts_with("text/html"), "{what}: a page");
    let page = res.text().await.expect("the page");
    assert!(page.contains("<code>temporarily_unavailable</code>"), "{what}: {page}");
}

/// The bearer guard's answer: 503 with `Retry-After`, and no `WWW-Authenticate` challenge
/// (a 401 would tell the client its token is bad).
fn assert_guard_unavailable(res: &Response) {
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    retry_after(res);
    assert!(res.headers().get("www-authenticate").is_none(), "the token is not called invalid");
}

fn login_url(server: &TestServer, page: &LoginPage) -> String {
    Url::parse_with_params(&server.url("/login"), [("request", page.request.as_str())]).expect("a URL").to_string()
}

/// Every endpoint while the store is down, then the same client, tokens and sign-in page once
/// it is back.
async fn outage_and_recovery(oauth_requests_per_minute: u32) {
    let (store, server, tokens, page) = signed_in(oauth_requests_per_minute).await;
    store.set_failing(Failing::Everything);

    assert_guard_unavailable(&server.mcp(Some(&tokens.access), &initialize_request(), None).await);
    let registration = json!({ "client_name": "During the outage", "redirect_uris": [common::REDIRECT_URI] });
    assert_unavailable_json(server.register_raw(&registration).await, "POST /register").await;
    assert_unavailable_json(server.refresh(&tokens.client_id, &tokens.refresh).await, "refresh at /token").await;
    let verifier = "v".repeat(43);
    let code = [
        ("grant_type", "authorization_code"),
        ("code", "some-code"),
        ("redirect_uri", common::REDIRECT_URI),
        ("client_id", tokens.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    assert_unavailable_json(server.token(&code).await, "code at /token").await;
    assert_unavailable_json(server.revoke(&tokens.client_id, &tokens.access).await, "POST /revoke").await;
    let challenge = common::Pkce::new().challenge;
    let authorize = server.authorize_url(&tokens.client_id, &challenge, "st", &[]);
    assert_unavailable_page(server.get(&authorize).await, "GET /authorize").await;
    assert_unavailable_page(server.get(&login_url(&server, &page)).await, "GET /login").await;
    let form = page.form("alice", "password123", "allow");
    assert_unavailable_page(server.post_login(&form, page.cookie.as_deref()).await, "POST /login").await;

    store.set_failing(Failing::Nothing);
    let res = server.mcp(Some(&tokens.access), &initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::OK, "the token from before the outage works");
    let res = server.post_login(&form, page.cookie.as_deref()).await;
    assert_eq!(res.status(), StatusCode::FOUND, "the sign-in page from before the outage works");
    assert!(param(&location(&res), "code").is_some(), "{}", location(&res));
    assert_eq!(server.refresh(&tokens.client_id, &tokens.refresh).await.status(), StatusCode::OK);
    assert_eq!(server.register_raw(&registration).await.status(), StatusCode::CREATED);
}

/// With the limiter off, each endpoint meets the failure itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_each_endpoint_answers_503_and_works_again_after() {
    outage_and_recovery(0).await;
}

/// With the limiter on, it meets the failure first, and answers in the endpoint's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_the_rate_limiter_answers_503_in_the_endpoints_shape() {
    outage_and_recovery(600).await;
}

/// Only the counters fail: the limiter refuses what it cannot count (the endpoints themselves
/// would work), and the MCP endpoint, which it does not guard, is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_rate_limiter_fails_closed() {
    let (store, server, tokens, page) = signed_in(600).await;
    store.set_failing(Failing::RateLimits);

    let registration = json!({ "client_name": "Uncounted", "redirect_uris": [common::REDIRECT_URI] });
    assert_unavailable_json(server.register_raw(&registration).await, "POST /register").await;
    assert_unavailable_json(server.refresh(&tokens.client_id, &tokens.refresh).await, "refresh at /token").await;
    assert_unavailable_page(server.get(&login_url(&server, &page)).await, "GET /login").await;
    let res = server.mcp(Some(&tokens.access), &initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::OK, "the MCP endpoint does not count requests");

    store.set_failing(Failing::Nothing);
    assert_eq!(server.register_raw(&registration).await.status(), StatusCode::CREATED);
    assert_eq!(server.refresh(&tokens.client_id, &tokens.refresh).await.status(), StatusCode::OK);
}

/// The store stops answering (a query stuck on a lock, a database gone silent): each request
/// fails once `Config::store_timeout` has passed, in its endpoint's shape, rather than being
/// held for good; then everything works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_stuck_each_request_fails_after_the_bound() {
    let bound = Duration::from_secs(1);
    let test = async {
        let (store, server, tokens, page) = signed_in_with(0, Some(bound)).await;
        store.set_failing(Failing::Hanging);
        let waited = |started: Instant, what: &str| {
            let waited = started.elapsed();
            assert!(waited >= bound && waited < bound * 4, "{what} answered after {waited:?}");
        };

        let started = Instant::now();
        assert_guard_unavailable(&server.mcp(Some(&tokens.access), &initialize_request(), None).await);
        waited(started, "POST /mcp");
        let registration = json!({ "client_name": "Stuck", "redirect_uris": [common::REDIRECT_URI] });
        let started = Instant::now();
        assert_unavailable_json(server.register_raw(&registration).await, "POST /register").await;
        waited(started, "POST /register");
        let started = Instant::now();
        assert_unavailable_json(server.refresh(&tokens.client_id, &tokens.refresh).await, "refresh").await;
        waited(started, "refresh at /token");
        let started = Instant::now();
        let form = page.form("alice", "password123", "allow");
        assert_unavailable_page(server.post_login(&form, page.cookie.as_deref()).await, "POST /login").await;
        waited(started, "POST /login");

        store.set_failing(Failing::Nothing);
        let res = server.mcp(Some(&tokens.access), &initialize_request(), None).await;
        assert_eq!(res.status(), StatusCode::OK, "the token from before works");
        let res = server.post_login(&form, page.cookie.as_deref()).await;
        assert_eq!(res.status(), StatusCode::FOUND, "the sign-in page from before works");
        assert_eq!(server.refresh(&tokens.client_id, &tokens.refresh).await.status(), StatusCode::OK);
    };
    // Without the bound the first request never returns: fail rather than hang.
    tokio::time::timeout(Duration::from_secs(60), test).await.expect("a request was held past the bound");
}
