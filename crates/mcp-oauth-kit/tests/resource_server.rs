//! Resource-server mode: an [`AuthProvider`] of the application's verifies tokens issued
//! elsewhere. Only `/mcp` and the protected-resource metadata are served; the kit caches the
//! provider's answers for `Config::token_cache_ttl`, never past a token's expiry.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{TestServer, header, rpc_reply, text_of, tool_call, tools, users};
use mcp_oauth_kit::auth::{AuthProvider, TokenRejection};
use mcp_oauth_kit::store::StoreError;
use mcp_oauth_kit::{AccessToken, Config, Error, McpServer, async_trait};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ISSUER: &str = "https://login.example.com";
const GOOD: &str = "upstream-token-carol";
const DOWN: &str = "upstream-token-while-the-idp-is-down";
const EXPIRED: &str = "upstream-token-expired";

/// Tokens of an "external identity provider": a table the test edits, and a count of the
/// questions the kit asked.
#[derive(Clone, Default)]
struct Upstream {
    tokens: Arc<Mutex<HashMap<String, AccessToken>>>,
    calls: Arc<AtomicUsize>,
    issuers: Vec<String>,
}

impl Upstream {
    fn new(issuers: &[&str]) -> Self {
        Self { issuers: issuers.iter().map(|s| (*s).to_owned()).collect(), ..Self::default() }
    }

    fn issue(&self, token: &str, caller: AccessToken) {
        self.tokens.lock().expect("the table").insert(token.to_owned(), caller);
    }

    fn revoke(&self, token: &str) {
        self.tokens.lock().expect("the table").remove(token);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AuthProvider for Upstream {
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if token == DOWN {
            return Err(TokenRejection::Backend(StoreError::Backend("the identity provider is down".into())));
        }
        self.tokens.lock().expect("the table").get(token).cloned().ok_or(TokenRejection::Invalid)
    }

    fn authorization_servers(&self) -> Vec<String> {
        self.issuers.clone()
    }
}

/// Carol, for the server at `base`, valid for an hour (or until `expires_at`).
fn carol(base: &str, expires_at: Option<SystemTime>) -> AccessToken {
    let expires_at = expires_at.unwrap_or(SystemTime::now() + Duration::from_secs(3600));
    AccessToken::builder("u-carol", expires_at)
        .username("carol")
        .client_id("upstream-client")
        .scopes(["mcp"])
        .audience(format!("{base}/mcp"))
        .build()
}

/// A resource server over `upstream`, caching verified tokens for `cache_ttl`; stateless, so
/// that each call is one request.
async fn start(upstream: &Upstream, cache_ttl: Duration) -> TestServer {
    TestServer::start_with_provider(upstream.clone(), |mut c| {
        c.token_cache_ttl = cache_ttl;
        c.stateless = true;
        c
    })
    .await
}

/// The status of a stateless `tools/call whoami` with `token`, and the body's text.
async fn call_whoami(server: &TestServer, token: &str) -> (StatusCode, String, String) {
    let res = server.mcp(Some(token), &tool_call(3, "whoami"), None).await;
    let status = res.status();
    let challenge = header(&res, "www-authenticate");
    let body = if status == StatusCode::OK { text_of(&rpc_reply(res).await["result"]) } else { String::new() };
    (status, challenge, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_mcp_endpoint_and_its_metadata_are_served() {
    let upstream = Upstream::new(&[ISSUER, "https://backup-login.example.com"]);
    let server = start(&upstream, Duration::from_secs(1)).await;
    assert!(server.oauth.is_none(), "a resource server has no built-in authorization server");

    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let res = server.get(&server.url(path)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let prm: Value = res.json().await.expect("JSON metadata");
        assert_eq!(prm["resource"], json!(server.url("/mcp")), "{path}");
        assert_eq!(prm["authorization_servers"], json!([ISSUER, "https://backup-login.example.com"]), "{path}");
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/authorize?client_id=x&response_type=code",
        "/login?request=x",
    ] {
        assert_eq!(server.get(&server.url(path)).await.status(), StatusCode::NOT_FOUND, "GET {path}");
    }
    for path in ["/register", "/token", "/revoke", "/login", "/logout"] {
        let res = server.client.post(server.url(path)).body("").send().await.expect("POST");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    assert_eq!(upstream.calls(), 0, "no token was presented");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_tokens_open_the_mcp_endpoint_and_its_refusals_are_401_or_503() {
    let upstream = Upstream::new(&[ISSUER]);
    let server = start(&upstream, Duration::from_secs(60)).await;
    upstream.issue(GOOD, carol(&server.base, None));
    upstream.issue(EXPIRED, carol(&server.base, Some(SystemTime::now() - Duration::from_secs(1))));

    let (status, _, text) = call_whoami(&server, GOOD).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "carol"));

    let (status, challenge, _) = call_whoami(&server, "upstream-token-never-issued").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // The provider said yes, but the token's own expiry has passed: the kit refuses it.
    let (status, challenge, _) = call_whoami(&server, EXPIRED).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    let res = server.mcp(Some(DOWN), &tool_call(4, "whoami"), None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "an unknown answer is not a 401");
    assert_eq!(header(&res, "retry-after"), "5");
}

/// The documented trade-off: within the TTL a token revoked upstream still opens the endpoint,
/// and the provider is asked once; refusals are asked again every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_cached_for_the_ttl_and_refusals_are_not() {
    let upstream = Upstream::new(&[ISSUER]);
    let server = start(&upstream, Duration::from_secs(600)).await;
    upstream.issue(GOOD, carol(&server.base, None));

    for _ in 0..3 {
        assert_eq!(call_whoami(&server, GOOD).await.0, StatusCode::OK);
    }
    assert_eq!(upstream.calls(), 1, "a cached answer asks the provider again");
    upstream.revoke(GOOD);
    assert_eq!(call_whoami(&server, GOOD).await.0, StatusCode::OK, "within the TTL the cached answer holds");
    assert_eq!(upstream.calls(), 1);

    for _ in 0..2 {
        assert_eq!(call_whoami(&server, "upstream-token-unknown").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(upstream.calls(), 3, "a refusal was cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_zero_ttl_a_token_revoked_upstream_stops_at_once() {
    let upstream = Upstream::new(&[ISSUER]);
    let server = start(&upstream, Duration::ZERO).await;
    upstream.issue(GOOD, carol(&server.base, None));

    assert_eq!(call_whoami(&server, GOOD).await.0, StatusCode::OK);
    assert_eq!(call_whoami(&server, GOOD).await.0, StatusCode::OK);
    assert_eq!(upstream.calls(), 2, "with a zero TTL every request asks the provider");
    upstream.revoke(GOOD);
    assert_eq!(call_whoami(&server, GOOD).await.0, StatusCode::UNAUTHORIZED);
}

fn config_error(result: Result<McpServer, Error>) -> (String, String) {
    match result {
        Err(Error::Config(e)) => (e.setting, e.reason),
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error, the server built"),
    }
}

#[test]
fn the_builder_takes_a_user_store_or_an_auth_provider_and_not_both() {
    let config = || Config::new("https://mcp.example.com").expect("valid");
    let (setting, reason) = config_error(McpServer::builder(config()).tools(tools()).build());
    assert_eq!(setting, "user_store");
    assert!(reason.contains("auth_provider"), "{reason}");

    let both = McpServer::builder(config()).user_store(users()).auth_provider(Upstream::new(&[ISSUER]));
    let (setting, reason) = config_error(both.tools(tools()).build());
    assert_eq!(setting, "user_store");
    assert!(reason.contains("auth_provider(...) replaces"), "{reason}");

    let nowhere = McpServer::builder(config()).auth_provider(Upstream::new(&[])).tools(tools()).build();
    let (setting, reason) = config_error(nowhere);
    assert_eq!(setting, "auth_provider");
    assert!(reason.contains("authorization_servers is empty"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_user_is_refused_without_the_built_in_authorization_server() {
    let config = Config::new("https://mcp.example.com").expect("valid");
    let server = McpServer::builder(config)
        .auth_provider(Upstream::new(&[ISSUER]))
        .tools(mcp_oauth_kit::Tools::new())
        .build()
        .expect("builds");
    assert!(server.authorization_server().is_none());
    match server.revoke_user("u-carol").await {
        Err(Error::Config(e)) => assert_eq!(e.setting, "auth_provider"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
