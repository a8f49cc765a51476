//! Sign-in at a plain OAuth 2.0 provider through a userinfo mapping, against a real provider
//! (node-oidc-provider, see `tests/oidc`) driven as one: its authorization and token endpoints,
//! and its userinfo endpoint `/me` with the mapping configured by hand, so no id_token is read
//! (the provider sends one because `/me` needs the `openid` scope; the kit ignores it). The
//! whole chain runs as an MCP client and a browser would, up to a tool call that sees carol.
//! Then a userinfo answer without the subject, not JSON, or too large: our error page (502),
//! no code, and the same authorization still completes once the provider answers well.

mod common;
mod oidc;

use std::sync::{Arc, Mutex};

use common::{REDIRECT_URI, TestServer, param};
use mcp_oauth_kit::upstream::{OAuth2Endpoints, OidcProvider as Upstream, UserinfoMapping};
use mcp_oauth_kit::{McpServer, ToolDef, Tools};
use oidc::{AtProvider, OidcProvider, ProviderConfig, call_caller, follow, through_provider};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the userinfo relay answers in place of the provider's `/me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The provider's answer as it is.
    AsIs,
    /// The provider's answer without its `sub`.
    WithoutSubject,
    /// An HTML page.
    NotJson,
    /// The provider's answer padded beyond what the kit reads.
    Huge,
}

/// A loopback relay in front of the provider's `/me` that answers as its [`Answer`] says (and
/// 403 to a request without the kit's User-Agent); returns its URL.
async fn userinfo_relay(me: String, answer: Arc<Mutex<Answer>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/user", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (me, answer) = (me.clone(), *answer.lock().expect("the answer"));
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let bearer = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: Bearer ").or(l.strip_prefix("Authorization: Bearer ")))
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                // GitHub's API refuses requests without a User-Agent; the kit always sends one.
                if !head.to_ascii_lowercase().contains("\r\nuser-agent: mcp-oauth-kit/") {
                    let _ = socket.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
                    return;
                }
                let real = reqwest::Client::new().get(&me).bearer_auth(&bearer).send().await.expect("GET /me");
                assert_eq!(real.status(), StatusCode::OK, "the provider's /me accepts the kit's access token");
                let mut info: Value = real.json().await.expect("userinfo JSON");
                let (kind, body) = match answer {
                    Answer::AsIs => ("application/json", info.to_string()),
                    Answer::WithoutSubject => {
                        info.as_object_mut().expect("an object").remove("sub");
                        ("application/json", info.to_string())
                    }
                    Answer::NotJson => ("text/html", "<html><body>Sign in again</body></html>".to_owned()),
                    Answer::Huge => {
                        info["padding"] = json!("x".repeat(300 * 1024));
                        ("application/json", info.to_string())
                    }
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    url
}

/// A provider, and our server (stateless, tool `caller`) whose users sign in there as at a
/// plain OAuth 2.0 provider; its userinfo is the provider's `/me`, or the relay in front of
/// it when `relay` is given. `None` when Node.js is missing and not required.
async fn start(relay: Option<Arc<Mutex<Answer>>>) -> Option<(TestServer, OidcProvider)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let provider = OidcProvider::start(ProviderConfig::for_server(&base)).await?;
    let me = format!("{}/me", provider.issuer);
    let userinfo = match relay {
        Some(answer) => userinfo_relay(me, answer).await,
        None => me,
    };
    let (authorization, token) = (format!("{}/auth", provider.issuer), format!("{}/token", provider.issuer));
    let endpoints = OAuth2Endpoints { authorization: &authorization, token: &token, userinfo: &userinfo };
    let mapping = UserinfoMapping::new("sub").username("preferred_username").name("name").email("email");
    let upstream = Upstream::oauth2(
        &provider.issuer,
        endpoints,
        mapping,
        &provider.config.client_id,
        &provider.config.client_secret,
    )
    .expect("the provider's endpoints")
    .display_name("Test IdP")
    .scopes(["openid", "profile", "email"]);
    let server = TestServer::launch_on(listener, move |mut config| {
        config.stateless = true;
        let tools = Tools::new().tool(ToolDef::new("caller", "Describe the caller").handler(oidc::caller));
        McpServer::builder(config).upstream(upstream).tools(tools)
    })
    .await;
    Some((server, provider))
}

/// A new MCP client's authorization request through our login page (Allow, on a page without
/// passwords) to the provider's authorization URL, which asks for no nonce: the browser, the
/// client, its PKCE verifier and that URL.
async fn to_provider(server: &TestServer, provider: &OidcProvider) -> (reqwest::Client, String, String, String) {
    let oidc::ToProvider { browser, client_id, verifier, url } = oidc::to_provider(server, provider).await;
    assert_eq!(param(&url, "nonce"), None, "no nonce: nothing would check it");
    (browser, client_id, verifier, url.to_string())
}

/// Sign in at the provider from `at_provider` and open our callback: its response.
async fn sign_in_there(server: &TestServer, browser: &reqwest::Client, at_provider: &str) -> reqwest::Response {
    let callback = through_provider(browser, at_provider, &server.url("/oauth/callback"), AtProvider::SignIn).await;
    browser.get(&callback).send().await.expect("GET /oauth/callback")
}

/// Follow our callback's redirect to the client, redeem the code and call the tool: what it
/// saw of its caller.
async fn redeem_and_call(server: &TestServer, client_id: &str, verifier: &str, res: reqwest::Response) -> Value {
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let back = Url::parse(&follow(&res)).expect("a URL");
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    let code = param(&back, "code").expect("a code");
    let res = server.exchange(client_id, &code, verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.expect("a token response");
    let access = tokens["access_token"].as_str().expect("an access token");
    assert!(access.starts_with("mcp_at_"), "our own token, not the provider's");
    let (status, _, seen) = call_caller(server, access).await;
    assert_eq!(status, StatusCode::OK);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_userinfo_mapping_names_the_caller_without_an_id_token() {
    let Some((server, provider)) = start(None).await else { return };
    let (browser, client_id, verifier, at_provider) = to_provider(&server, &provider).await;
    let res = sign_in_there(&server, &browser, &at_provider).await;
    let seen = redeem_and_call(&server, &client_id, &verifier, res).await;
    assert_eq!(seen["subject"], json!(format!("{}#u-carol", provider.issuer)), "scoped to the provider");
    assert_eq!(seen["username"], "carol");
    assert_eq!(seen["claims"]["name"], "Carol Example");
    assert_eq!(seen["claims"]["email"], "carol@example.com");
    assert_eq!(seen["claims"].get("groups"), None, "only the mapped members");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_userinfo_answer_is_our_error_page_and_spends_nothing() {
    let answer = Arc::new(Mutex::new(Answer::AsIs));
    let Some((server, provider)) = start(Some(answer.clone())).await else { return };
    let (browser, client_id, verifier, at_provider) = to_provider(&server, &provider).await;
    for (bad, needle) in [
        (Answer::WithoutSubject, "the userinfo has no subject"),
        (Answer::NotJson, "the userinfo is not a JSON object"),
        (Answer::Huge, "is larger than"),
    ] {
        *answer.lock().expect("the answer") = bad;
        let res = sign_in_there(&server, &browser, &at_provider).await;
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY, "{bad:?}");
        assert!(res.headers().get("location").is_none(), "{bad:?}: a page, not a redirect to the client");
        let html = res.text().await.expect("HTML");
        assert!(html.contains("This sign-in cannot continue") && html.contains(needle), "{bad:?}: {html}");
    }
    // Nothing of those attempts was kept: the same authorization, signed in again with a good
    // answer, gets its one code, for carol.
    *answer.lock().expect("the answer") = Answer::AsIs;
    let res = sign_in_there(&server, &browser, &at_provider).await;
    let seen = redeem_and_call(&server, &client_id, &verifier, res).await;
    assert_eq!(seen["subject"], json!(format!("{}#u-carol", provider.issuer)));
}
