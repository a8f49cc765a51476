//! Upstream tokens for tools: a user's tokens at an upstream identity provider, kept sealed
//! for one of our grants, handed to tools through the caller, refreshed at the REAL provider
//! (node-oidc-provider, see `oidc/mod.rs`) when they expire, never sent to the MCP client, and
//! gone with the grant. The provider's own sign-in pages give the first refresh token
//! (`upstream_sign_in`), as the kit's upstream sign-in will.

mod common;
mod oidc;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcp_oauth_kit::auth::{KeepUpstreamError, UpstreamClient, UpstreamTokenKey, UpstreamTokens};
use mcp_oauth_kit::clock::{Clock, ManualClock};
use mcp_oauth_kit::store::{Grant, MemoryStore, SqlStore, Store, TokenHash};
use mcp_oauth_kit::{AccessToken, Config, Json, McpServer, ToolDef, ToolError, Tools};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use url::Url;

use common::{Pkce, TempDir, TestServer, param, rpc_reply, tool_call, users};
use oidc::{OidcProvider, ProviderConfig};

/// The test's key for sealing upstream tokens.
const KEY: [u8; 32] = [42; 32];

/// What the provider's access token (a JWT for our resource: node-oidc-provider's resource
/// indicators) says, as the `upstream_whoami` tool reads it: its issuer, subject and id prove
/// which token the tool holds, without returning the token.
async fn upstream_whoami(caller: AccessToken) -> Result<Json<Value>, ToolError> {
    use base64::Engine as _;
    let upstream = caller.upstream_token().await?;
    let payload = upstream.secret().split('.').nth(1).ok_or_else(|| ToolError::message("not a JWT"))?;
    let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    let expires_ms = upstream.expires_at().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis());
    Ok(Json(json!({ "iss": claims["iss"], "sub": claims["sub"], "jti": claims["jti"], "expires_ms": expires_ms })))
}

/// The provider's sign-in as a browser goes through it (its dev login and consent pages, with
/// their cookies), then the code exchange: the provider's token response.
async fn upstream_sign_in(provider: &OidcProvider) -> Value {
    let c = &provider.config;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
    let mut cookies = BTreeMap::<String, String>::new();
    let pkce = Pkce::new();
    let query = [
        ("client_id", c.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("scope", "openid offline_access mcp"),
        // A resource indicator: the provider then mints its access tokens as JWTs for it.
        ("resource", c.resource.as_str()),
        ("prompt", "consent"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "upstream-state"),
    ];
    let base = Url::parse(&provider.issuer).expect("the issuer");
    let mut next = Url::parse_with_params(&format!("{}/auth", provider.issuer), query).expect("auth URL");
    let mut form: Option<Vec<(&str, &str)>> = None;
    for _ in 0..12 {
        let cookie = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let req = match form.take() {
            Some(fields) => http.post(next.clone()).form(&fields),
            None => http.get(next.clone()),
        };
        let res = req.header("cookie", cookie).send().await.expect("a request to the provider");
        for set in res.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap_or_default().split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(location) = res.headers().get(LOCATION) {
            next = base.join(location.to_str().expect("a Location")).expect("a URL");
            if next.as_str().starts_with(&c.redirect_uri) {
                let code = param(&next, "code").unwrap_or_else(|| panic!("the provider gave no code: {next}"));
                return exchange(provider, &code, &pkce.verifier).await;
            }
            continue;
        }
        let page = res.text().await.expect("a page");
        // The dev interaction page: a login form, then a consent form, both posted back to it.
        form = Some(if page.contains("name=\"login\"") {
            vec![("prompt", "login"), ("login", "u-carol"), ("password", "any")]
        } else if page.contains("value=\"consent\"") {
            vec![("prompt", "consent")]
        } else {
            panic!("an unexpected page at the provider: {page}");
        });
    }
    panic!("the provider's sign-in did not end at the redirect URI");
}

async fn exchange(provider: &OidcProvider, code: &str, verifier: &str) -> Value {
    let c = &provider.config;
    let res = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("the provider's token endpoint");
    let status = res.status();
    let body: Value = res.json().await.expect("a JSON token response");
    assert_eq!(status, StatusCode::OK, "the code exchange at the provider: {body}");
    assert!(body["refresh_token"].is_string(), "offline_access gives a refresh token: {body}");
    body
}

/// `tools/call upstream_whoami` with our access token: the whole reply, as the MCP client reads it.
async fn call(server: &TestServer, token: &str) -> (Value, String) {
    let res = server.mcp(Some(token), &tool_call(1, "upstream_whoami"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let reply = rpc_reply(res).await;
    (reply["result"].clone(), reply.to_string())
}

/// The text of a tool's error result.
fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], true, "an error result: {result}");
    result["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

/// Our grant behind `refresh_token`.
async fn grant_of(store: &dyn Store, refresh_token: &str, now: SystemTime) -> Grant {
    store.refresh_grant(&TokenHash::of(refresh_token), now).await.expect("the store").expect("a live grant")
}

/// Every byte of the SQLite files in `dir` (the database and its journal).
fn raw_files(dir: &TempDir) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("the temp dir") {
        bytes.extend(std::fs::read(entry.expect("an entry").path()).expect("a database file"));
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The whole life of a user's upstream tokens, against the real provider: kept sealed (the
/// database holds no token), used by a tool that never returns them, refreshed at the
/// provider when they expire, kept when the provider is down, and dropped with a message to
/// reconnect when the provider refuses the refresh token.
#[tokio::test]
async fn tools_use_refreshed_upstream_tokens_that_never_reach_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let Some(mut provider) = OidcProvider::start(ProviderConfig::for_server(&base)).await else { return };
    let (issuer, c) = (provider.issuer.clone(), provider.config.clone());
    let token_endpoint = format!("{issuer}/token");
    let dir = TempDir::new("upstream-tokens");
    let url = format!("sqlite://{}", dir.path().join("kit.db").display());
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.expect("open SQLite"));
    let clock = ManualClock::starting_now();
    let tools = Tools::new()
        .tool(ToolDef::new("upstream_whoami", "Who the upstream provider says I am").handler(upstream_whoami));
    let (on_clock, on_store, endpoint) = (clock.clone(), store.clone(), token_endpoint.clone());
    let server = TestServer::launch_on(listener, move |mut config| {
        config.stateless = true;
        config.clock = Arc::new(on_clock);
        config.upstream_token_key = Some(UpstreamTokenKey::from_bytes(KEY));
        config.upstream_clients = vec![UpstreamClient::new(endpoint, c.client_id.clone(), c.client_secret.clone())];
        McpServer::builder(config).user_store(users()).store(on_store).tools(tools)
    })
    .await;

    // The user signed in upstream and connected an MCP client; the callback keeps the tokens.
    let upstream = upstream_sign_in(&provider).await;
    let (upstream_access, upstream_refresh) = (
        upstream["access_token"].as_str().expect("access_token").to_owned(),
        upstream["refresh_token"].as_str().expect("refresh_token").to_owned(),
    );
    let lifetime = Duration::from_secs(upstream["expires_in"].as_u64().expect("expires_in"));
    let ours = server.sign_in("alice", "password123", &[]).await;
    let grant = grant_of(&*store, &ours.refresh, clock.now()).await;
    let kept = UpstreamTokens::new(&upstream_access, &token_endpoint, &provider.config.client_id)
        .with_refresh_token(&upstream_refresh)
        .with_expires_at(clock.now() + lifetime);
    let oauth = server.oauth.as_ref().expect("the built-in authorization server");
    oauth.keep_upstream_tokens(&grant, &kept).await.expect("kept");

    // Encrypted at rest: neither token is anywhere in the database's files.
    let raw = raw_files(&dir);
    assert!(!raw.is_empty());
    for secret in [&upstream_access, &upstream_refresh] {
        assert!(!contains(&raw, secret), "an upstream token in clear in the database");
    }

    // The tool holds a live upstream token for the user; the client sees neither token.
    let (result, whole) = call(&server, &ours.access).await;
    let seen = &result["structuredContent"];
    assert_eq!((seen["iss"].as_str(), seen["sub"].as_str()), (Some(issuer.as_str()), Some("u-carol")), "{result}");
    for secret in [&upstream_access, &upstream_refresh] {
        assert!(!whole.contains(secret.as_str()), "an upstream token reached the MCP client");
    }
    let (first_expiry, first_jti) = (seen["expires_ms"].as_u64().expect("an expiry"), seen["jti"].clone());
    let version = |store: Arc<dyn Store>, grant_id: String| async move {
        store.upstream_tokens(&grant_id, SystemTime::now()).await.expect("the store").map(|r| r.version)
    };
    assert_eq!(version(store.clone(), grant.grant_id.clone()).await, Some(1), "no refresh while fresh");

    // Expired: refreshed at the provider's token endpoint, the new pair stored.
    clock.advance(lifetime);
    let (result, whole) = call(&server, &ours.access).await;
    let seen = &result["structuredContent"];
    assert_eq!(seen["sub"], "u-carol", "{result}");
    assert_ne!(seen["jti"], first_jti, "a new access token from the provider");
    let second_expiry = seen["expires_ms"].as_u64().expect("an expiry");
    assert!(second_expiry > first_expiry, "with a later expiry");
    assert_eq!(version(store.clone(), grant.grant_id.clone()).await, Some(3), "claimed, then replaced");
    assert!(!whole.contains(&upstream_refresh));
    assert!(!contains(&raw_files(&dir), &upstream_refresh), "still sealed after the refresh");

    // The provider is down: the tool says to try again, and nothing is lost.
    provider.stop();
    clock.advance(lifetime);
    let (result, _) = call(&server, &ours.access).await;
    assert!(error_text(&result).contains("try again"), "{result}");
    assert!(version(store.clone(), grant.grant_id.clone()).await.is_some(), "the tokens are kept");

    // Back, but it forgot its grants (a provider restart, or the user revoked the app there):
    // `invalid_grant`. The tool tells the user to reconnect; the dead tokens go.
    provider.restart("key-2").await;
    let (result, _) = call(&server, &ours.access).await;
    assert!(error_text(&result).contains("reconnect"), "{result}");
    assert_eq!(version(store.clone(), grant.grant_id.clone()).await, None);
    let (result, _) = call(&server, &ours.access).await;
    assert!(error_text(&result).contains("reconnect"), "still no upstream account: {result}");
}

/// A server whose upstream tokens the test keeps by hand (no provider is contacted: they are
/// fresh), over `store`.
async fn server_keeping(store: Arc<dyn Store>, clock: ManualClock) -> TestServer {
    server_refreshing_at(store, clock, "http://127.0.0.1:9/token").await
}

/// [`server_keeping`] with the upstream client's token endpoint at `token_endpoint`.
async fn server_refreshing_at(store: Arc<dyn Store>, clock: ManualClock, token_endpoint: &str) -> TestServer {
    let token_endpoint = token_endpoint.to_owned();
    let tools = Tools::new().tool(ToolDef::new("upstream_whoami", "Has an upstream token").handler(
        |caller: AccessToken| async move {
            let token = caller.upstream_token().await?;
            Ok(format!("token of {} bytes", token.secret().len()))
        },
    ));
    TestServer::launch_on(TcpListener::bind("127.0.0.1:0").await.expect("bind"), move |mut config| {
        config.stateless = true;
        config.clock = Arc::new(clock);
        config.upstream_token_key = Some(UpstreamTokenKey::from_bytes(KEY));
        config.upstream_clients = vec![UpstreamClient::new(token_endpoint, "kit", "secret")];
        McpServer::builder(config).user_store(users()).store(store).tools(tools)
    })
    .await
}

fn fresh_tokens() -> UpstreamTokens {
    UpstreamTokens::new("upstream-at-fresh", "http://127.0.0.1:9/token", "kit")
        .with_refresh_token("upstream-rt-fresh")
        .with_expires_at(SystemTime::now() + Duration::from_secs(3600))
}

/// Revoking our refresh token (RFC 7009) or the user ends the grant, and its upstream tokens
/// with it: the tool then has none.
#[tokio::test]
async fn upstream_tokens_end_with_the_grant() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = server_keeping(store.clone(), ManualClock::starting_now()).await;
    let oauth = server.oauth.clone().expect("the built-in authorization server");

    let by_token = server.sign_in("alice", "password123", &[]).await;
    let by_user = server.sign_in("bob", "hunter2", &[]).await;
    let mut grants = Vec::new();
    for tokens in [&by_token, &by_user] {
        let grant = grant_of(&*store, &tokens.refresh, SystemTime::now()).await;
        oauth.keep_upstream_tokens(&grant, &fresh_tokens()).await.expect("kept");
        let (result, whole) = call(&server, &tokens.access).await;
        assert_eq!(result["content"][0]["text"], "token of 17 bytes", "{result}");
        assert!(!whole.contains("upstream-at-fresh"));
        grants.push(grant);
    }

    let res = server.revoke(&by_token.client_id, &by_token.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(store.upstream_tokens(&grants[0].grant_id, SystemTime::now()).await.expect("store"), None);
    oauth.revoke_user("user-bob").await.expect("revoke bob");
    assert_eq!(store.upstream_tokens(&grants[1].grant_id, SystemTime::now()).await.expect("store"), None);

    // A new sign-in without upstream tokens: the tool asks to reconnect.
    let again = server.sign_in("alice", "password123", &[]).await;
    let (result, _) = call(&server, &again.access).await;
    assert!(error_text(&result).contains("reconnect"), "{result}");
}

/// A rotated refresh token used again after the grace window is theft (RFC 9700 §4.14.2): the
/// grant is revoked, and its upstream tokens with it. The sweep drops those of a grant that
/// expired.
#[tokio::test]
async fn reuse_detection_and_the_sweep_drop_upstream_tokens() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let server = server_keeping(store.clone(), clock.clone()).await;
    let oauth = server.oauth.clone().expect("the built-in authorization server");

    let stolen = server.sign_in("alice", "password123", &[]).await;
    let grant = grant_of(&*store, &stolen.refresh, clock.now()).await;
    oauth.keep_upstream_tokens(&grant, &fresh_tokens()).await.expect("kept");
    let res = server.refresh(&stolen.client_id, &stolen.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "the rotation");
    clock.advance(Duration::from_secs(60));
    let res = server.refresh(&stolen.client_id, &stolen.refresh).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the reuse");
    assert_eq!(store.upstream_tokens(&grant.grant_id, clock.now()).await.expect("store"), None);

    let ended = server.sign_in("bob", "hunter2", &[]).await;
    let grant = grant_of(&*store, &ended.refresh, clock.now()).await;
    oauth.keep_upstream_tokens(&grant, &fresh_tokens()).await.expect("kept");
    let after_the_grant = grant.expires_at + Duration::from_secs(1);
    store.sweep_expired(after_the_grant).await.expect("sweep");
    assert_eq!(store.upstream_tokens(&grant.grant_id, SystemTime::UNIX_EPOCH).await.expect("store"), None);
}

/// A token endpoint that counts its requests and answers each, slowly, with a new token
/// pair: the stand-in for a provider that would punish a refresh token spent twice.
async fn counting_token_endpoint(hits: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://127.0.0.1:{}/token", listener.local_addr().expect("addr").port());
    tokio::spawn(async move {
        for _ in 0..20 {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !contains(&request, "refresh_token=") && request.len() < 65_536 {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&chunk[..read]),
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                let body = format!(
                    r#"{{"access_token":"refreshed-access-{n}","token_type":"Bearer","expires_in":3600,"refresh_token":"rotated-{n}"}}"#
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    url
}

/// Concurrent tool calls that find the upstream token expired refresh it once: the others wait
/// for that refresh instead of spending the refresh token again, and all get the new token.
#[tokio::test]
async fn concurrent_calls_refresh_once() {
    let hits = Arc::new(AtomicUsize::new(0));
    let endpoint = counting_token_endpoint(hits.clone()).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let server = server_refreshing_at(store.clone(), clock.clone(), &endpoint).await;
    let ours = server.sign_in("alice", "password123", &[]).await;
    let grant = grant_of(&*store, &ours.refresh, clock.now()).await;
    let expired = UpstreamTokens::new("expired-access", &endpoint, "kit")
        .with_refresh_token("the-only-refresh-token")
        .with_expires_at(clock.now());
    let oauth = server.oauth.clone().expect("the built-in authorization server");
    oauth.keep_upstream_tokens(&grant, &expired).await.expect("kept");

    let calls = (0..5).map(|_| call(&server, &ours.access));
    for (result, whole) in futures::future::join_all(calls).await {
        assert_eq!(result["content"][0]["text"], "token of 18 bytes", "{result}");
        assert!(!whole.contains("refreshed-access") && !whole.contains("rotated-1"), "no token to the client");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one refresh for five calls");
    let record = store.upstream_tokens(&grant.grant_id, clock.now()).await.expect("store").expect("kept");
    assert_eq!((record.version, record.refreshing_until), (3, None), "claimed once, then replaced");
}

/// Tokens of a client the configuration does not know are refused (they could never be
/// refreshed), as is keeping tokens without a key.
#[tokio::test]
async fn only_configured_clients_tokens_are_kept() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = server_keeping(store.clone(), ManualClock::starting_now()).await;
    let ours = server.sign_in("alice", "password123", &[]).await;
    let grant = grant_of(&*store, &ours.refresh, SystemTime::now()).await;
    let oauth = server.oauth.clone().expect("the built-in authorization server");
    let stranger = UpstreamTokens::new("at", "https://elsewhere.example.com/token", "kit");
    let err = oauth.keep_upstream_tokens(&grant, &stranger).await.expect_err("an unknown client");
    assert!(matches!(err, KeepUpstreamError::NotConfigured(_)), "{err}");
    assert_eq!(store.upstream_tokens(&grant.grant_id, SystemTime::now()).await.expect("store"), None);

    let keyless = TestServer::start_with(|c| c).await;
    let ours = keyless.sign_in("alice", "password123", &[]).await;
    let grant = Grant::new("g", "user-alice", "alice", ours.client_id.as_str(), vec![], "r");
    let err = keyless.oauth.clone().expect("oauth").keep_upstream_tokens(&grant, &fresh_tokens()).await;
    assert!(err.expect_err("no key").to_string().contains("UPSTREAM_TOKEN_KEY"));
}

/// Upstream clients without a key: the server does not start, and says which variable to set;
/// a bad key names it too.
#[test]
fn upstream_clients_without_a_key_refuse_to_start() {
    let mut config = Config::new("http://127.0.0.1:8000").expect("config");
    config.upstream_clients = vec![UpstreamClient::new("https://login.example.com/token", "kit", "secret")];
    let Err(err) = McpServer::builder(config).user_store(users()).tools(Tools::new()).build() else {
        panic!("refused without a key");
    };
    assert!(err.to_string().contains("UPSTREAM_TOKEN_KEY"), "{err}");

    let lookup = |key: &'static str| move |name: &str| (name == "UPSTREAM_TOKEN_KEY").then(|| key.to_owned());
    let err = Config::from_lookup(lookup("c2hvcnQ=")).expect_err("a 5-byte key");
    assert!(err.to_string().contains("UPSTREAM_TOKEN_KEY") && err.to_string().contains("not 32"), "{err}");
    let good = Config::from_lookup(lookup("KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=")).expect("32 bytes");
    assert!(good.upstream_token_key.is_some());
    assert!(!format!("{good:?}").contains("KioqKioq"), "the key is redacted");
}
