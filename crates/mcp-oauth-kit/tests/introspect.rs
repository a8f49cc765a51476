//! `POST /introspect` (RFC 7662) on the built-in authorization server: only authenticated
//! confidential clients, only their own access tokens, and `{"active":false}` for everything
//! else, with no reason given.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{REDIRECT_URI, STATE, TestServer, Tokens, header, param, tokens_of};
use mcp_oauth_kit::clock::ManualClock;
use mcp_test_support::Pkce;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// A confidential client: its id and secret.
struct Confidential {
    id: String,
    secret: String,
}

async fn register_confidential(server: &TestServer) -> Confidential {
    let reg = server
        .register(json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    Confidential {
        id: reg["client_id"].as_str().expect("a client_id").to_owned(),
        secret: reg["client_secret"].as_str().expect("a client_secret").to_owned(),
    }
}

/// Sign alice in through `client` and exchange the code with its secret.
async fn sign_in(server: &TestServer, client: &Confidential) -> Tokens {
    let Pkce { verifier, challenge } = Pkce::new();
    let auth = server.authorize_url(&client.id, &challenge, STATE, &[]);
    let callback = server.login(&auth, "alice", "password123").await.expect("sign-in gives a code");
    let code = param(&callback, "code").expect("a code");
    let res = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(res.status(), StatusCode::OK, "code exchange");
    tokens_of(&client.id, res).await
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// `POST /introspect` of `token` with Basic credentials.
async fn introspect(server: &TestServer, id: &str, secret: &str, token: &str) -> Response {
    server
        .client
        .post(server.url("/introspect"))
        .header("authorization", basic(id, secret))
        .form(&[("token", token)])
        .send()
        .await
        .expect("POST /introspect")
}

/// The answer of a successful introspection.
async fn answer(res: Response) -> Value {
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "cache-control"), "no-store");
    res.json().await.expect("a JSON answer")
}

async fn assert_inactive(server: &TestServer, client: &Confidential, token: &str, why: &str) {
    let body = answer(introspect(server, &client.id, &client.secret, token).await).await;
    assert_eq!(body, json!({ "active": false }), "{why}: nothing but active=false");
}

async fn assert_invalid_client(res: Response, why: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{why}");
    assert!(header(&res, "www-authenticate").starts_with("Basic "), "{why}: a Basic challenge");
    let body: Value = res.json().await.expect("an error body");
    assert_eq!(body["error"], "invalid_client", "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_token_is_described_to_its_client() {
    let server = TestServer::start().await;
    let client = register_confidential(&server).await;
    let tokens = sign_in(&server, &client).await;

    let body = answer(introspect(&server, &client.id, &client.secret, &tokens.access).await).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "mcp");
    assert_eq!(body["client_id"], json!(client.id));
    assert_eq!(body["username"], "alice");
    assert_eq!(body["sub"], "user-alice");
    assert_eq!(body["aud"], json!(server.url("/mcp")));
    assert_eq!(body["iss"], json!(server.base));
    assert_eq!(body["token_type"], "Bearer");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let exp = body["exp"].as_u64().expect("exp in seconds");
    assert!(exp > now && exp <= now + 3600 + 5, "exp {exp} is within the access-token lifetime");

    // client_secret_post works too, and the hint does not change the answer.
    let res = server
        .client
        .post(server.url("/introspect"))
        .form(&[
            ("token", tokens.access.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ])
        .send()
        .await
        .expect("POST /introspect");
    assert_eq!(answer(res).await["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_refresh_garbage_and_foreign_tokens_are_inactive_alike() {
    let server = TestServer::start().await;
    let client = register_confidential(&server).await;
    let tokens = sign_in(&server, &client).await;

    assert_inactive(&server, &client, &tokens.refresh, "a refresh token").await;
    for garbage in ["garbage", "mcp_at_", "mcp_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &"x".repeat(4096)] {
        assert_inactive(&server, &client, garbage, "a token this server never issued").await;
    }

    // Another confidential client may not read alice's token of the first client.
    let other = register_confidential(&server).await;
    assert_inactive(&server, &other, &tokens.access, "another client's token").await;

    let res = server
        .client
        .post(server.url("/revoke"))
        .header("authorization", basic(&client.id, &client.secret))
        .form(&[("token", tokens.access.as_str())])
        .send()
        .await
        .expect("POST /revoke");
    assert_eq!(res.status(), StatusCode::OK);
    assert_inactive(&server, &client, &tokens.access, "a revoked token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_inactive_from_its_expiry_on() {
    let clock = ManualClock::starting_now();
    let server = TestServer::start_with(|mut c| {
        c.clock = Arc::new(clock.clone());
        c.access_token_ttl = Duration::from_secs(60);
        c
    })
    .await;
    let client = register_confidential(&server).await;
    let tokens = sign_in(&server, &client).await;
    clock.advance(Duration::from_secs(59));
    let body = answer(introspect(&server, &client.id, &client.secret, &tokens.access).await).await;
    assert_eq!(body["active"], true, "a second before expiry");
    clock.advance(Duration::from_secs(1));
    assert_inactive(&server, &client, &tokens.access, "an expired token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_authenticated_confidential_clients_may_ask() {
    let server = TestServer::start().await;
    let client = register_confidential(&server).await;
    let tokens = sign_in(&server, &client).await;
    let public = server.register_public().await;

    let res = introspect(&server, &client.id, "wrong-secret", &tokens.access).await;
    assert_invalid_client(res, "a wrong secret").await;
    let res = introspect(&server, "no-such-client", &client.secret, &tokens.access).await;
    assert_invalid_client(res, "an unknown client").await;
    let res = introspect(&server, &public, "", &tokens.access).await;
    assert_invalid_client(res, "a public client (Basic, empty secret)").await;
    for form in [
        vec![("token", tokens.access.as_str()), ("client_id", public.as_str())],
        vec![("token", tokens.access.as_str())],
    ] {
        let res = server.client.post(server.url("/introspect")).form(&form).send().await.expect("POST");
        assert_invalid_client(res, "no secret in the form").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_rfc_errors() {
    let server = TestServer::start_with(|mut c| {
        c.max_oauth_body_bytes = 4096;
        c
    })
    .await;
    let client = register_confidential(&server).await;
    let auth = basic(&client.id, &client.secret);
    let post = || server.client.post(server.url("/introspect")).header("authorization", auth.as_str());

    let res = post().form(&[("token_type_hint", "access_token")]).send().await.expect("POST");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "no token");
    assert_eq!(res.json::<Value>().await.expect("JSON")["error"], "invalid_request");

    let res = post().header("content-type", "application/json").body("{}").send().await.expect("POST");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "not a form");

    let huge = format!("token={}", "a".repeat(64 * 1024));
    let res = post().header("content-type", "application/x-www-form-urlencoded").body(huge).send().await.expect("POST");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "a body over the limit");

    let res = server.get(&server.url("/introspect")).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    let meta: Value =
        server.get(&server.url("/.well-known/oauth-authorization-server")).await.json().await.expect("JSON");
    assert_eq!(meta["introspection_endpoint"], json!(server.url("/introspect")));
    assert_eq!(
        meta["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_counts_against_the_oauth_request_budget() {
    let server = TestServer::start_with(|mut c| {
        c.oauth_requests_per_minute = 3;
        c
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(introspect(&server, "c", "s", "t").await.status());
    }
    assert_eq!(&statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(&statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 2]);
}
