//! `POST /token` (authorization code with PKCE, refresh with rotation, client authentication)
//! and `POST /revoke` (RFC 7009), each refusal checked for status and exact `error` code, and
//! each revocation checked where it matters: at the MCP endpoint.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{
    Pkce, REDIRECT_URI, STATE, TestServer, Tokens, header, initialize_request, location, oauth_error, param, tokens_of,
    users,
};
use mcp_oauth_kit::clock::{Clock, ManualClock};
use mcp_oauth_kit::store::{
    AccessTokenRecord, CodeRecord, IssuedTokens, MemoryStore, PendingAuthorization, RefreshRotation,
    RefreshTokenRecord, RevokedToken, Store, TokenHash,
};
use mcp_oauth_kit::users::UserStoreError;
use mcp_oauth_kit::{Password, StaticUserStore, User, UserStore, async_trait};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// A refused token request: the case, its form, the status and the `error` code.
type Refusal<'a, Form> = (&'a str, Form, StatusCode, &'a str);

/// A signed-in code that has not been exchanged yet.
struct Code {
    client_id: String,
    code: String,
    verifier: String,
}

async fn code_for(server: &TestServer, client_id: &str) -> Code {
    let Pkce { verifier, challenge } = Pkce::new();
    let auth = server.authorize_url(client_id, &challenge, STATE, &[]);
    let callback = server.login(&auth, "alice", "password123").await.expect("a code");
    Code { client_id: client_id.to_owned(), code: param(&callback, "code").expect("code"), verifier }
}

async fn new_code(server: &TestServer) -> Code {
    let client_id = server.register_public().await;
    code_for(server, &client_id).await
}

/// Whether a token opens the MCP endpoint.
async fn works(server: &TestServer, access_token: &str) -> bool {
    let res = server.mcp(Some(access_token), &initialize_request(), None).await;
    match res.status() {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("unexpected status {other} at /mcp"),
    }
}

async fn expect_error(res: Response, status: StatusCode, error: &str, case: &str) {
    assert_eq!(header(&res, "cache-control"), "no-store", "{case}");
    assert_eq!(oauth_error(res).await, (status, error.to_owned()), "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_is_exchanged_for_a_bearer_token_pair() {
    let server = TestServer::start().await;
    let c = new_code(&server).await;
    let res = server.exchange(&c.client_id, &c.code, &c.verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert_eq!(header(&res, "pragma"), "no-cache");
    assert!(header(&res, "content-type").starts_with("application/json"));
    let body: Value = res.json().await.expect("JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "mcp");
    let access = body["access_token"].as_str().expect("access_token");
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    assert_ne!(access, refresh);
    assert!(works(&server, access).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resource_parameter_must_name_this_server() {
    let server = TestServer::start().await;
    let c = new_code(&server).await;
    let res = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &c.code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &c.client_id),
            ("code_verifier", &c.verifier),
            ("resource", "https://other.example.com/mcp"),
        ])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_target", "foreign resource").await;

    let c = new_code(&server).await;
    let resource = format!("{}/mcp", server.base);
    let res = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &c.code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &c.client_id),
            ("code_verifier", &c.verifier),
            ("resource", &resource),
        ])
        .await;
    assert_eq!(res.status(), StatusCode::OK, "own resource");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_code_exchanges_are_refused() {
    let server = TestServer::start().await;
    let other_client = server.register_public().await;
    let other_verifier = Pkce::new().verifier;
    // Each case gets a fresh code; its form is the valid one with one parameter changed.
    let base = |c: &Code| -> Vec<(String, String)> {
        vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), c.code.clone()),
            ("redirect_uri".into(), REDIRECT_URI.into()),
            ("client_id".into(), c.client_id.clone()),
            ("code_verifier".into(), c.verifier.clone()),
        ]
    };
    let changes: Vec<(&str, &str, Option<&str>, StatusCode, &str)> = vec![
        ("wrong verifier", "code_verifier", Some(&other_verifier), StatusCode::BAD_REQUEST, "invalid_grant"),
        ("verifier too short", "code_verifier", Some("abc"), StatusCode::BAD_REQUEST, "invalid_grant"),
        ("missing verifier", "code_verifier", None, StatusCode::BAD_REQUEST, "invalid_request"),
        ("code of another client", "client_id", Some(&other_client), StatusCode::BAD_REQUEST, "invalid_grant"),
        (
            "wrong redirect_uri",
            "redirect_uri",
            Some("http://127.0.0.1:9999/other"),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        ("unknown code", "code", Some("mcp_code_nope"), StatusCode::BAD_REQUEST, "invalid_grant"),
        ("missing code", "code", None, StatusCode::BAD_REQUEST, "invalid_request"),
        ("unknown client", "client_id", Some("mcp_client_nope"), StatusCode::UNAUTHORIZED, "invalid_client"),
        ("missing client_id", "client_id", None, StatusCode::BAD_REQUEST, "invalid_request"),
        ("unsupported grant_type", "grant_type", Some("password"), StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        (
            "client_credentials grant",
            "grant_type",
            Some("client_credentials"),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        ("missing grant_type", "grant_type", None, StatusCode::BAD_REQUEST, "invalid_request"),
    ];
    let mut cases: Vec<Refusal<Vec<(String, String)>>> = Vec::new();
    for (name, key, value, status, error) in changes {
        let c = new_code(&server).await;
        let mut form = base(&c);
        form.retain(|(k, _)| k != key);
        if let Some(v) = value {
            form.push((key.to_owned(), v.to_owned()));
        }
        cases.push((name, form, status, error));
    }
    let c = new_code(&server).await;
    let mut repeated = base(&c);
    repeated.push(("code".into(), c.code.clone()));
    cases.push(("repeated parameter", repeated, StatusCode::BAD_REQUEST, "invalid_request"));
    for (name, form, status, error) in cases {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let res = server.token(&pairs).await;
        expect_error(res, status, error, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_is_refused() {
    let server = TestServer::start().await;
    let c = new_code(&server).await;
    let res = server
        .client
        .post(server.url("/token"))
        .json(&json!({
            "grant_type": "authorization_code",
            "code": c.code,
            "redirect_uri": REDIRECT_URI,
            "client_id": c.client_id,
            "code_verifier": c.verifier,
        }))
        .send()
        .await
        .expect("POST /token");
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request", "JSON content type").await;
    // The refused request did not spend the code.
    let res = server.exchange(&c.client_id, &c.code, &c.verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exchange_spends_the_code() {
    let server = TestServer::start().await;
    let c = new_code(&server).await;
    let wrong = Pkce::new().verifier;
    let res = server.exchange(&c.client_id, &c.code, &wrong).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "wrong verifier").await;
    let res = server.exchange(&c.client_id, &c.code, &c.verifier).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "the code is spent").await;
}

/// The token request must repeat the authorization request's `redirect_uri`, exactly (RFC 6749
/// §4.1.3); a request that named none (one registered URI) needs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_uri_of_the_authorization_request_must_be_repeated() {
    let server = TestServer::start().await;
    let c = new_code(&server).await;
    let without = [
        ("grant_type", "authorization_code"),
        ("code", c.code.as_str()),
        ("client_id", c.client_id.as_str()),
        ("code_verifier", c.verifier.as_str()),
    ];
    expect_error(server.token(&without).await, StatusCode::BAD_REQUEST, "invalid_request", "left out").await;
    let res = server.exchange(&c.client_id, &c.code, &c.verifier).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "the refusal spent the code").await;

    // Named at /authorize: /token must name the same string, not an equivalent one.
    let loopback_port = "http://127.0.0.1:51234/callback";
    for (asked, repeated) in
        [(loopback_port, "http://127.0.0.1:9999/callback"), (REDIRECT_URI, "http://127.0.0.1:9999/callback/")]
    {
        let Pkce { verifier, challenge } = Pkce::new();
        let auth = server.authorize_url(&c.client_id, &challenge, STATE, &[("redirect_uri", asked)]);
        let code = param(&server.login(&auth, "alice", "password123").await.expect("a code"), "code").expect("code");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", repeated),
            ("client_id", c.client_id.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        expect_error(server.token(&form).await, StatusCode::BAD_REQUEST, "invalid_grant", repeated).await;
    }

    // Not named at /authorize (the client's only URI): none to repeat.
    let Pkce { verifier, challenge } = Pkce::new();
    let auth = server.authorize_url_from(&[
        ("response_type", "code"),
        ("client_id", &c.client_id),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let code = param(&server.login(&auth, "alice", "password123").await.expect("a code"), "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", c.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    assert_eq!(server.token(&form).await.status(), StatusCode::OK, "no redirect_uri at either end");
}

/// OAuth 2.1 §4.1.3: a code presented twice revokes what it issued, whoever presents it; its
/// holder with the right verifier too (a thief may hold the verifier as well).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_replayed_by_its_holder_revokes_what_it_issued() {
    let server = TestServer::start_with(|mut c| {
        // Long enough that only the revocation can close /mcp to the token.
        c.token_cache_ttl = Duration::from_secs(600);
        c
    })
    .await;
    replay_revokes_what_the_code_issued(&server, None, "replay with the right verifier").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_with_a_wrong_verifier_revokes_what_it_issued() {
    let server = TestServer::start().await;
    let attacker_verifier = Pkce::new().verifier;
    replay_revokes_what_the_code_issued(&server, Some(&attacker_verifier), "attacker's replay").await;
}

/// Redeem a new code, then replay it with `verifier` (its holder's own for `None`): the
/// replay is refused, and the access and refresh tokens the code issued are revoked.
async fn replay_revokes_what_the_code_issued(server: &TestServer, verifier: Option<&str>, what: &str) {
    let c = new_code(server).await;
    let first = tokens_of(&c.client_id, server.exchange(&c.client_id, &c.code, &c.verifier).await).await;
    assert!(works(server, &first.access).await);
    let res = server.exchange(&c.client_id, &c.code, verifier.unwrap_or(&c.verifier)).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", what).await;
    assert!(!works(server, &first.access).await, "{what}: the access token the code issued is revoked");
    let res = server.refresh(&c.client_id, &first.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "its refresh token too").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_by_another_client_revokes_what_it_issued() {
    let server = TestServer::start().await;
    let c = new_code(&server).await;
    let first = tokens_of(&c.client_id, server.exchange(&c.client_id, &c.code, &c.verifier).await).await;
    let other = server.register_public().await;
    let res = server.exchange(&other, &c.code, &c.verifier).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "replay by another client").await;
    assert!(!works(&server, &first.access).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused() {
    let (server, clock) = TestServer::start_on_clock(|c| c).await;
    let (last_moment, expired) = (new_code(&server).await, new_code(&server).await);
    // Codes live 60 seconds by default.
    clock.advance(Duration::from_secs(60) - Duration::from_millis(1));
    let res = server.exchange(&last_moment.client_id, &last_moment.code, &last_moment.verifier).await;
    assert_eq!(res.status(), StatusCode::OK, "a code is good until its last millisecond");
    clock.advance(Duration::from_millis(1));
    let res = server.exchange(&expired.client_id, &expired.code, &expired.verifier).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "expired code").await;
}

/// A confidential client registered with `method`, and its secret.
async fn confidential(server: &TestServer, method: &str) -> (String, String) {
    let reg = server
        .register(json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    (reg["client_id"].as_str().expect("id").to_owned(), reg["client_secret"].as_str().expect("secret").to_owned())
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn exchange_basic(server: &TestServer, c: &Code, authorization: &str) -> Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", c.verifier.as_str()),
    ];
    server
        .client
        .post(server.url("/token"))
        .header(AUTHORIZATION, authorization)
        .form(&form)
        .send()
        .await
        .expect("POST")
}

async fn exchange_post(server: &TestServer, c: &Code, secret: Option<&str>) -> Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", c.code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", c.client_id.as_str()),
        ("code_verifier", c.verifier.as_str()),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    server.token(&form).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_clients_authenticate_with_basic() {
    let server = TestServer::start().await;
    let (id, secret) = confidential(&server, "client_secret_basic").await;

    let c = code_for(&server, &id).await;
    let res = exchange_basic(&server, &c, &basic(&id, "wrong-secret")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&res, "www-authenticate").starts_with("Basic"), "RFC 6749 §5.2: a Basic challenge");
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_client", "wrong secret via Basic").await;

    let cases = [
        ("malformed Basic", "Basic !!!".to_owned()),
        ("Basic without a colon", format!("Basic {}", STANDARD.encode(&id))),
        ("unknown client via Basic", basic("mcp_client_nope", &secret)),
    ];
    for (name, authorization) in cases {
        let c = code_for(&server, &id).await;
        let res = exchange_basic(&server, &c, &authorization).await;
        assert!(header(&res, "www-authenticate").starts_with("Basic"), "{name}");
        expect_error(res, StatusCode::UNAUTHORIZED, "invalid_client", name).await;
    }

    let c = code_for(&server, &id).await;
    let res = exchange_post(&server, &c, None).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_client", "no secret at all").await;

    let c = code_for(&server, &id).await;
    let res = exchange_basic(&server, &c, &basic(&id, &secret)).await;
    assert_eq!(res.status(), StatusCode::OK, "the right secret via Basic");
    let tokens = tokens_of(&id, res).await;
    assert!(works(&server, &tokens.access).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_clients_authenticate_with_post() {
    let server = TestServer::start().await;
    let (id, secret) = confidential(&server, "client_secret_post").await;

    let c = code_for(&server, &id).await;
    let res = exchange_post(&server, &c, Some("wrong-secret")).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_client", "wrong secret via post").await;

    let c = code_for(&server, &id).await;
    let res = exchange_post(&server, &c, Some(&secret)).await;
    assert_eq!(res.status(), StatusCode::OK, "the right secret via post");

    // Two authentication methods at once are refused (RFC 6749 §2.3).
    let c = code_for(&server, &id).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", c.verifier.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let res = server
        .client
        .post(server.url("/token"))
        .header(AUTHORIZATION, basic(&id, &secret))
        .form(&form)
        .send()
        .await
        .expect("POST");
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request", "Basic and post together").await;
}

// ---- refresh ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_the_pair() {
    let server = TestServer::start().await;
    let first = server.sign_in("alice", "password123", &[]).await;
    let res = server.refresh(&first.client_id, &first.refresh).await;
    assert_eq!(header(&res, "cache-control"), "no-store");
    let second = tokens_of(&first.client_id, res).await;
    assert_ne!(second.refresh, first.refresh, "the refresh token rotates");
    assert_ne!(second.access, first.access);
    assert_eq!(second.body["token_type"], "Bearer");
    assert_eq!(second.body["scope"], "mcp");
    assert!(works(&server, &second.access).await, "the new access token works");
    // The old access token may live until it expires; it must not break the new one.
    let third = tokens_of(&first.client_id, server.refresh(&first.client_id, &second.refresh).await).await;
    assert!(works(&server, &third.access).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_inside_the_grace_window_gets_the_same_pair() {
    let server = TestServer::start().await;
    let first = server.sign_in("alice", "password123", &[]).await;
    let second = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;
    let retry = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;
    assert_eq!(retry.access, second.access, "the same access token");
    assert_eq!(retry.refresh, second.refresh, "the same refresh token");
    assert!(works(&server, &second.access).await, "nothing was revoked");
    let res = server.refresh(&first.client_id, &second.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "the successor is still current");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_after_the_successor_rotated_revokes_the_family() {
    let server = TestServer::start().await;
    let first = server.sign_in("alice", "password123", &[]).await;
    let second = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;
    let third = tokens_of(&first.client_id, server.refresh(&first.client_id, &second.refresh).await).await;
    assert!(works(&server, &third.access).await);
    let res = server.refresh(&first.client_id, &first.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "reuse of a twice-rotated token").await;
    assert!(!works(&server, &third.access).await, "the latest access token is revoked");
    let res = server.refresh(&first.client_id, &third.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "the latest refresh token is revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_after_the_grace_window_revokes_the_family() {
    let (server, clock) = TestServer::start_on_clock(|c| c).await;
    let first = server.sign_in("alice", "password123", &[]).await;
    let second = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;
    // The grace window (10 seconds by default) includes its last instant: the same pair again.
    clock.advance(Duration::from_secs(10));
    let retried = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;
    assert_eq!((&retried.access, &retried.refresh), (&second.access, &second.refresh));
    clock.advance(Duration::from_millis(1));
    let res = server.refresh(&first.client_id, &first.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "reuse outside the grace window").await;
    assert!(!works(&server, &second.access).await);
    let res = server.refresh(&first.client_id, &second.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "the successor is revoked").await;
}

/// The sweeper drops a rotation's sealed successor once the grace window is over: the store
/// then no longer holds a live pair that the old refresh token opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_drops_sealed_successors_after_the_grace_window() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let server = TestServer::start_with_store(store.clone(), |mut c| {
        c.clock = Arc::new(clock.clone());
        c.sweep_interval = Duration::from_millis(100);
        c
    })
    .await;
    let first = server.sign_in("alice", "password123", &[]).await;
    let second = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;
    let old = TokenHash::of(&first.refresh);
    // What a retry with the old token finds in the store (the probe pair is not stored).
    let sealed_successor_kept = || async {
        let now = clock.now();
        let grant = store.refresh_grant(&old, now).await.expect("grant").expect("the old token names its grant");
        let in_a_minute = now + Duration::from_secs(60);
        let probe = IssuedTokens::new(
            AccessTokenRecord::new(TokenHash::of("probe access"), grant.clone(), in_a_minute),
            RefreshTokenRecord::new(TokenHash::of("probe refresh"), grant, in_a_minute),
        );
        match store.rotate_refresh(&old, now, probe, Vec::new()).await.expect("rotate") {
            RefreshRotation::AlreadyRotated { sealed_successor, .. } => sealed_successor.is_some(),
            other => panic!("the old token is rotated, not {other:?}"),
        }
    };
    assert!(sealed_successor_kept().await, "kept inside the grace window");
    // Past the grace window (10 seconds by default). Bounded: the sweep runs every 100 ms.
    clock.advance(Duration::from_secs(10) + Duration::from_millis(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while sealed_successor_kept().await {
        assert!(Instant::now() < deadline, "the sealed successor was not dropped within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(works(&server, &second.access).await, "dropping it revokes nothing");
    let res = server.refresh(&first.client_id, &second.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "the successor still refreshes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_refreshes_are_refused() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let other_client = server.register_public().await;
    let rt = t.refresh.as_str();
    let id = t.client_id.as_str();
    let cases: Vec<Refusal<Vec<(&str, &str)>>> = vec![
        (
            "broader scope",
            vec![("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", id), ("scope", "mcp admin")],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "unknown scope",
            vec![("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", id), ("scope", "root")],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "another client's refresh token",
            vec![("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", &other_client)],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "unknown refresh token",
            vec![("grant_type", "refresh_token"), ("refresh_token", "mcp_rt_nope"), ("client_id", id)],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "missing refresh token",
            vec![("grant_type", "refresh_token"), ("client_id", id)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "foreign resource",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", id),
                ("resource", "https://other.example.com/mcp"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            "an access token as refresh token",
            vec![("grant_type", "refresh_token"), ("refresh_token", &t.access), ("client_id", id)],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ];
    for (name, form, status, error) in cases {
        expect_error(server.token(&form).await, status, error, name).await;
    }
    // None of the refusals spent or revoked the token.
    assert!(works(&server, &t.access).await);
    let res = server.refresh(id, rt).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_may_narrow_the_scope() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[("scope", "mcp admin")]).await;
    assert_eq!(t.body["scope"], "admin mcp");
    let form = [("grant_type", "refresh_token"), ("refresh_token", t.refresh.as_str()), ("client_id", &t.client_id)];
    let narrowed: Vec<(&str, &str)> = form.iter().copied().chain([("scope", "mcp")]).collect();
    let res = server.token(&narrowed).await;
    let narrow = tokens_of(&t.client_id, res).await;
    assert_eq!(narrow.body["scope"], "mcp");
}

// ---- revocation ------------------------------------------------------------------------------

async fn revoke_ok(server: &TestServer, t: &Tokens, token: &str) {
    let res = server.revoke(&t.client_id, token).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_access_token_closes_the_mcp_endpoint_to_it() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    assert!(works(&server, &t.access).await);
    revoke_ok(&server, &t, &t.access).await;
    assert!(!works(&server, &t.access).await);
    let res = server.refresh(&t.client_id, &t.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "the refresh token survives an access token's revocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_refresh_token_revokes_its_access_tokens() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let next = tokens_of(&t.client_id, server.refresh(&t.client_id, &t.refresh).await).await;
    revoke_ok(&server, &t, &next.refresh).await;
    assert!(!works(&server, &next.access).await, "the access token of the revoked refresh token");
    assert!(!works(&server, &t.access).await, "and the earlier one of the same grant");
    let res = server.refresh(&t.client_id, &next.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "revoked refresh token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_edge_cases() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    revoke_ok(&server, &t, "mcp_at_unknown").await;
    revoke_ok(&server, &t, &t.access).await;
    revoke_ok(&server, &t, &t.access).await; // twice: still 200

    // Another client cannot revoke alice's token (and is not told so).
    let t = server.sign_in("alice", "password123", &[]).await;
    let other = server.register_public().await;
    let res = server.revoke(&other, &t.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(works(&server, &t.access).await, "a token of another client is not revoked");

    let form = [("token", t.access.as_str()), ("client_id", t.client_id.as_str()), ("token_type_hint", "id_token")];
    let res = server.client.post(server.url("/revoke")).form(&form).send().await.expect("POST");
    expect_error(res, StatusCode::BAD_REQUEST, "unsupported_token_type", "unknown hint").await;
    let res =
        server.client.post(server.url("/revoke")).form(&[("client_id", &t.client_id)]).send().await.expect("POST");
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request", "no token").await;
    let res = server.revoke("mcp_client_nope", &t.access).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_client", "unknown client").await;
    let res = server
        .client
        .post(server.url("/revoke"))
        .header(CONTENT_TYPE, "application/json")
        .body(json!({ "token": t.access, "client_id": t.client_id }).to_string())
        .send()
        .await
        .expect("POST");
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request", "JSON body").await;
    assert!(works(&server, &t.access).await);
}

// ---- races and bounds ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_redemptions_of_one_code_issue_one_pair_and_revoke_it() {
    let server = TestServer::start().await;
    let c = new_code(&server).await;
    let (a, b) = tokio::join!(
        server.exchange(&c.client_id, &c.code, &c.verifier),
        server.exchange(&c.client_id, &c.code, &c.verifier)
    );
    let (ok, refused): (Vec<Response>, Vec<Response>) = [a, b].into_iter().partition(|r| r.status() == StatusCode::OK);
    assert_eq!(ok.len(), 1, "exactly one redemption wins");
    let refused = refused.into_iter().next().expect("one refusal");
    expect_error(refused, StatusCode::BAD_REQUEST, "invalid_grant", "the loser").await;
    let winner = tokens_of(&c.client_id, ok.into_iter().next().expect("one winner")).await;
    assert!(!works(&server, &winner.access).await, "the second redemption is a replay: it revoked the pair");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_refreshes_with_one_token_get_the_same_pair() {
    let server = TestServer::start().await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let (a, b) = tokio::join!(server.refresh(&t.client_id, &t.refresh), server.refresh(&t.client_id, &t.refresh));
    let a = tokens_of(&t.client_id, a).await;
    let b = tokens_of(&t.client_id, b).await;
    assert_eq!(a.access, b.access);
    assert_eq!(a.refresh, b.refresh);
    assert!(works(&server, &a.access).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_length_is_bounded_as_rfc_7636_says() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let cases = [
        ("43 characters", "A".repeat(43), true),
        ("128 characters with every allowed symbol", format!("{}-._~", "z".repeat(124)), true),
        ("129 characters", "A".repeat(129), false),
        ("42 characters", "A".repeat(42), false),
        ("a character outside the set", format!("{}+", "A".repeat(42)), false),
    ];
    for (name, verifier, ok) in cases {
        let challenge = mcp_test_support::s256(&verifier);
        let auth = server.authorize_url(&client_id, &challenge, STATE, &[]);
        let callback = server.login(&auth, "alice", "password123").await.expect("a code");
        let code = param(&callback, "code").expect("code");
        let res = server.exchange(&client_id, &code, &verifier).await;
        if ok {
            assert_eq!(res.status(), StatusCode::OK, "{name}");
        } else {
            expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", name).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_without_the_refresh_grant_cannot_refresh() {
    let server = TestServer::start().await;
    let reg = server
        .register(json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
        }))
        .await;
    assert_eq!(reg["grant_types"], json!(["authorization_code"]));
    let client_id = reg["client_id"].as_str().expect("client_id");
    let c = code_for(&server, client_id).await;
    let res = server.exchange(client_id, &c.code, &c.verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("JSON");
    if let Some(refresh) = body["refresh_token"].as_str() {
        // Issued anyway: then the grant must at least be refused (RFC 6749 §5.2).
        let res = server.refresh(client_id, refresh).await;
        expect_error(
            res,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "refresh by an authorization_code-only client",
        )
        .await;
    }
}

// ---- revocation of expired tokens ------------------------------------------------------------

/// RFC 7009 §2.1: a client revokes only its own tokens, expired ones too. A token that expired
/// and was not swept yet still names its grant, and revoking a refresh token takes the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_unswept_token_of_another_clients_grant_is_not_revoked() {
    let store = Arc::new(MemoryStore::new());
    let server = TestServer::start_with_store(store.clone(), |c| c).await;
    let alice = server.sign_in("alice", "password123", &[]).await;
    // An earlier pair of alice's grant that expired a moment ago (the sweeper runs each minute),
    // stored the only way the trait allows: redeemed from a code of that grant.
    let now = SystemTime::now();
    let grant = store.refresh_grant(&TokenHash::of(&alice.refresh), now).await.expect("grant").expect("live");
    let (expired_access, expired_refresh) = ("mcp_at_expired-unswept", "mcp_rt_expired-unswept");
    let a_moment_ago = now - Duration::from_millis(1);
    let pair = IssuedTokens::new(
        AccessTokenRecord::new(TokenHash::of(expired_access), grant.clone(), a_moment_ago),
        RefreshTokenRecord::new(TokenHash::of(expired_refresh), grant.clone(), a_moment_ago),
    );
    let in_a_minute = now + Duration::from_secs(60);
    let code = CodeRecord::new(TokenHash::of("mcp_code_old"), grant.clone(), REDIRECT_URI, "c".repeat(43), in_a_minute);
    let pending = PendingAuthorization::new(
        TokenHash::of("old-handle"),
        grant.client_id.as_str(),
        REDIRECT_URI,
        "c".repeat(43),
        grant.resource.as_str(),
        "csrf",
        in_a_minute,
    );
    store.insert_pending(pending.clone()).await.expect("pending");
    store.take_pending(&pending.id_hash, now, Some(code.clone())).await.expect("take").expect("taken");
    store.redeem_code(&code.hash, now, Some(pair)).await.expect("redeem");

    let mallory = server.register_public().await;
    for token in [expired_refresh, expired_access] {
        let res = server.revoke(&mallory, token).await;
        assert_eq!(res.status(), StatusCode::OK, "RFC 7009: no error for another client's token");
    }
    assert!(works(&server, &alice.access).await, "alice's live grant survives another client's revocation");
    let res = server.refresh(&alice.client_id, &alice.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "and so does her refresh token");
    let alice = tokens_of(&alice.client_id, res).await;

    // Its own client may still revoke it, and takes the grant with it.
    revoke_ok(&server, &alice, expired_refresh).await;
    assert!(!works(&server, &alice.access).await, "the owner's revocation of the expired token revoked the grant");
}

// ---- the user behind the grant ---------------------------------------------------------------

/// The harness's users, whom an administrator deletes or disables while they hold tokens.
/// `find_by_id` loses a deleted user; the default `may_sign_in` follows it.
#[derive(Clone)]
struct Directory {
    users: StaticUserStore,
    deleted: Arc<AtomicBool>,
}

#[async_trait]
impl UserStore for Directory {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        self.users.authenticate(username, password).await
    }
    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        Ok(if self.deleted.load(Ordering::SeqCst) { None } else { self.users.find_by_id(id).await? })
    }
}

/// A directory that keeps disabled users (they are still found) but refuses them sign-in.
#[derive(Clone)]
struct Disabling {
    directory: Directory,
    disabled: Arc<AtomicBool>,
}

#[async_trait]
impl UserStore for Disabling {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        self.directory.authenticate(username, password).await
    }
    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        self.directory.find_by_id(id).await
    }
    async fn may_sign_in(&self, _id: &str) -> Result<bool, UserStoreError> {
        Ok(!self.disabled.load(Ordering::SeqCst))
    }
}

/// While `switch` is on, refresh fails with `invalid_grant` and issues nothing: turned off
/// again, the same refresh token still works (it was not spent).
async fn refresh_follows_the_switch(server: &TestServer, switch: &AtomicBool) {
    let t = server.sign_in("alice", "password123", &[]).await;
    switch.store(true, Ordering::SeqCst);
    let res = server.refresh(&t.client_id, &t.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "the user may no longer sign in").await;
    switch.store(false, Ordering::SeqCst);
    let res = server.refresh(&t.client_id, &t.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "nothing was issued or spent by the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_cannot_refresh() {
    let directory = Directory { users: users(), deleted: Arc::default() };
    let server = TestServer::start_with_users(directory.clone(), |c| c).await;
    refresh_follows_the_switch(&server, &directory.deleted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_cannot_refresh() {
    let disabling =
        Disabling { directory: Directory { users: users(), deleted: Arc::default() }, disabled: Arc::default() };
    let server = TestServer::start_with_users(disabling.clone(), |c| c).await;
    refresh_follows_the_switch(&server, &disabling.disabled).await;
}

/// A disabled user's sign-in session no longer counts (the sign-in page asks for the password
/// again), and the right password gets neither a code nor a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_cannot_sign_in_or_approve_from_a_session() {
    let disabling =
        Disabling { directory: Directory { users: users(), deleted: Arc::default() }, disabled: Arc::default() };
    let server = TestServer::start_with_users(disabling.clone(), |c| c).await;
    let session = server.sign_in_session("alice", "password123").await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    let auth = server.authorize_url(&client_id, &challenge, STATE, &[]);
    let page_with_session = |auth: String| {
        let (server, session) = (&server, &session);
        async move {
            let res = server.client.get(&auth).header(COOKIE, session).send().await.expect("GET /authorize");
            assert_eq!(res.status(), StatusCode::FOUND);
            let login = location(&res);
            server.login_page_in(login.as_str(), Some(session)).await.html
        }
    };
    assert!(!page_with_session(auth.clone()).await.contains("name=\"password\""), "enabled: the consent-only page");

    disabling.disabled.store(true, Ordering::SeqCst);
    assert!(page_with_session(auth.clone()).await.contains("name=\"password\""), "disabled: the password is asked");
    let refused = server.login(&auth, "alice", "password123").await.expect_err("no code for a disabled user");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let mut cookies = refused.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok());
    assert!(!cookies.any(|c| c.starts_with("mcp_session=mcp_ss_")), "no session");
    assert!(refused.text().await.expect("the page").contains("may not sign in"));
}

/// A grant ends `grant_lifetime` after sign-in; rotation hands on that end, never a later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_does_not_extend_the_grant_lifetime() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let lifetime = Duration::from_secs(24 * 3600);
    let server = TestServer::start_with_store(store.clone(), |mut c| {
        c.grant_lifetime = lifetime;
        c.clock = Arc::new(clock.clone());
        c
    })
    .await;
    let signed_in_at = clock.now();
    let first = server.sign_in("alice", "password123", &[]).await;
    let end_of = |refresh: String| {
        let store = store.clone();
        async move {
            let grant = store
                .refresh_grant(&TokenHash::of(&refresh), SystemTime::UNIX_EPOCH)
                .await
                .expect("grant")
                .expect("stored");
            grant.expires_at
        }
    };
    let end = end_of(first.refresh.clone()).await;
    assert_eq!(end, signed_in_at + lifetime, "the grant ends its lifetime after sign-in");
    assert_eq!(first.body["expires_in"], 3600);
    clock.advance(Duration::from_secs(3600));
    let second = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;
    assert_eq!(end_of(second.refresh.clone()).await, end, "the rotated grant keeps its end");

    // The grant's last millisecond: a rotation still works, and its access token ends with the grant.
    clock.set(end - Duration::from_millis(1));
    let third = tokens_of(&first.client_id, server.refresh(&first.client_id, &second.refresh).await).await;
    assert_eq!(third.body["expires_in"], 0, "less than a second is left");
    assert_eq!(end_of(third.refresh.clone()).await, end);
    clock.advance(Duration::from_millis(1));
    let res = server.refresh(&first.client_id, &third.refresh).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "past the grant's lifetime").await;
}

/// A token revoked by another instance sharing the store: this instance trusts its cached
/// verification for exactly `token_cache_ttl` (1 second by default), and not a millisecond more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_elsewhere_is_refused_once_the_cache_ttl_is_over() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let server = TestServer::start_with_store(store.clone(), |mut c| {
        c.clock = Arc::new(clock.clone());
        c
    })
    .await;
    let t = server.sign_in("alice", "password123", &[]).await;
    assert!(works(&server, &t.access).await, "verified, and cached now");
    // Revoked in the shared store, as another instance does: this one's cache does not hear of it.
    assert_eq!(store.revoke_token(&TokenHash::of(&t.access)).await.expect("revoke"), RevokedToken::Access);
    clock.advance(Duration::from_secs(1) - Duration::from_millis(1));
    assert!(works(&server, &t.access).await, "trusted from the cache until the end of its TTL");
    clock.advance(Duration::from_millis(1));
    assert!(!works(&server, &t.access).await, "at the TTL the store is asked, and refuses");
}

/// "Sign out everywhere": one call revokes all of a user's grants, and their access tokens stop
/// at /mcp at once, although the verified-token cache would have trusted them for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_user_closes_the_mcp_endpoint_to_all_their_tokens_at_once() {
    let server = TestServer::start_with(|mut c| {
        c.token_cache_ttl = Duration::from_secs(600);
        c
    })
    .await;
    let alice_here = server.sign_in("alice", "password123", &[]).await;
    let alice_there = server.sign_in("alice", "password123", &[]).await;
    let bob = server.sign_in("bob", "hunter2", &[]).await;
    for t in [&alice_here, &alice_there, &bob] {
        assert!(works(&server, &t.access).await, "cached now");
    }
    let oauth = server.oauth.as_ref().expect("the built-in authorization server");
    oauth.revoke_user("user-alice").await.expect("revoke alice");
    for t in [&alice_here, &alice_there] {
        assert!(!works(&server, &t.access).await, "alice's token still opens /mcp");
        let res = server.refresh(&t.client_id, &t.refresh).await;
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_grant", "alice's refresh token").await;
    }
    assert!(works(&server, &bob.access).await, "bob is untouched");
    assert_eq!(server.refresh(&bob.client_id, &bob.refresh).await.status(), StatusCode::OK);
}
