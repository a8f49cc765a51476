//! Sign-in at an upstream OpenID provider, against a real one (node-oidc-provider, see
//! `tests/oidc`), driven as an MCP client and a browser with a cookie jar would: our
//! `/authorize`, our login page's "Continue with …", the provider's own sign-in and consent
//! pages, our `/oauth/callback`, our code, our token, a tool call that sees the provider's
//! user; the sign-in session it leaves in the browser (the next authorization asks for consent
//! only, remembered consent skips even that, revoking the user ends it). Then what must fail:
//! a forged id_token (wrong nonce, issuer, audience, expired, unsigned), a wrong or foreign
//! `state`, a replayed callback, a provider that is down, and a user who cancels, each on our
//! own error page with no code and no session; and a key rotation at the provider, which is
//! followed.

mod common;
mod oidc;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Pkce, REDIRECT_URI, STATE, TestServer, hidden_input, param, rpc_reply};
use mcp_oauth_kit::auth::UpstreamTokenKey;
use mcp_oauth_kit::store::{MemoryStore, Store};
use mcp_oauth_kit::upstream::OidcProvider as Upstream;
use mcp_oauth_kit::{AccessToken, Config, McpServer, Password, StaticUserStore, ToolDef, ToolError, Tools};
use oidc::{AtProvider, OidcProvider, ProviderConfig, browser, call_caller, follow, through_provider};
use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A provider, and our server (stateless, tool `caller`) whose users sign in there, beside the
/// demo users' password form when `with_passwords`. `None` when Node.js is missing and not
/// required.
async fn start(with_passwords: bool) -> Option<(TestServer, OidcProvider)> {
    start_with(move |_| with_passwords.then(common::users), |_| {}, Arc::new(MemoryStore::new())).await
}

/// [`start`] with the user store that `users` makes for the provider's issuer, if any, the
/// configuration adjusted by `tweak`, over `store`.
async fn start_with(
    users: impl FnOnce(&str) -> Option<StaticUserStore> + Send + 'static,
    tweak: impl FnOnce(&mut Config) + Send + 'static,
    store: Arc<dyn Store>,
) -> Option<(TestServer, OidcProvider)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let provider = OidcProvider::start(ProviderConfig::for_server(&base)).await?;
    let upstream = Upstream::discover(&provider.issuer, &provider.config.client_id, &provider.config.client_secret)
        .await
        .expect("the provider's metadata")
        .display_name("Test IdP")
        .scopes(["openid", "profile", "email", "groups"])
        .min_refetch_interval(Duration::ZERO);
    let users = users(upstream.issuer());
    let server = TestServer::launch_on(listener, move |mut config| {
        config.stateless = true;
        tweak(&mut config);
        let tools = Tools::new()
            .tool(ToolDef::new("caller", "Describe the caller").handler(oidc::caller))
            .tool(ToolDef::new("upstream", "The caller's upstream access token").handler(upstream_token));
        let builder = McpServer::builder(config).upstream(upstream).tools(tools).store(store);
        match users {
            Some(users) => builder.user_store(users),
            None => builder,
        }
    })
    .await;
    Some((server, provider))
}

/// The caller's access token at the provider, which a real tool would send to the provider's
/// API; this one hands it to the test, which checks it there.
async fn upstream_token(caller: AccessToken) -> Result<String, ToolError> {
    Ok(caller.upstream_token().await?.secret().to_owned())
}

/// What the `upstream` tool answers for `token`: the text, and whether it is an error.
async fn call_upstream(server: &TestServer, token: &str) -> (String, bool) {
    let body =
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "upstream", "arguments": {}}});
    let reply = rpc_reply(server.mcp(Some(token), &body, None).await).await;
    let text = reply["result"]["content"][0]["text"].as_str().expect("a text result").to_owned();
    (text, reply["result"]["isError"] == json!(true))
}

/// A sign-in under way: the browser, the MCP client and its PKCE verifier, and the provider's
/// redirect to our callback, not yet followed.
struct AtCallback {
    browser: reqwest::Client,
    client_id: String,
    verifier: String,
    callback: String,
}

/// A new MCP client's authorization request, through our login page (the upstream button, or
/// Allow on a page without passwords) and the provider's pages, up to the callback.
async fn to_callback(server: &TestServer, provider: &OidcProvider, act: AtProvider) -> AtCallback {
    let oidc::ToProvider { browser, client_id, verifier, url } = oidc::to_provider(server, provider).await;
    assert!(param(&url, "nonce").is_some());
    let callback = through_provider(&browser, url.as_str(), &server.url("/oauth/callback"), act).await;
    AtCallback { browser, client_id, verifier, callback }
}

/// `GET` the callback URL in `browser`.
async fn open(browser: &reqwest::Client, url: &str) -> Response {
    browser.get(url).send().await.expect("GET /oauth/callback")
}

/// Assert that `res` is our error page with `status`, no redirect, and `needle` in its text.
async fn assert_error_page(res: Response, status: StatusCode, needle: &str) {
    assert_eq!(res.status(), status);
    assert!(res.headers().get("location").is_none(), "a page, not a redirect");
    assert!(res.headers().get("set-cookie").is_none(), "no sign-in session on an error page");
    let html = res.text().await.expect("HTML");
    assert!(html.contains("This sign-in cannot continue") && html.contains(needle), "{needle}: {html}");
}

/// Follow the callback to the client's redirect URI, redeem the code, and return the tokens.
async fn redeem(server: &TestServer, at: &AtCallback) -> Value {
    let res = open(&at.browser, &at.callback).await;
    tokens_from(server, &at.client_id, REDIRECT_URI, &at.verifier, res).await
}

/// Our redirect `res` to the client's `redirect_uri`: its code, redeemed by `client_id`.
async fn tokens_from(server: &TestServer, client_id: &str, redirect_uri: &str, verifier: &str, res: Response) -> Value {
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let back = Url::parse(&follow(&res)).expect("a URL");
    assert!(back.as_str().starts_with(redirect_uri), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some(STATE));
    assert_eq!(param(&back, "iss").as_deref(), Some(server.base.as_str()), "our issuer, not the provider's");
    let code = param(&back, "code").expect("a code");
    let res = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("a token response")
}

/// An authorization request of `client_id` to `redirect_uri` in `browser`: the PKCE
/// verifier, and our answer to the browser's `GET /login` (a page, or a redirect).
async fn authorize_in(
    server: &TestServer,
    browser: &reqwest::Client,
    client_id: &str,
    redirect_uri: &str,
) -> (String, Response) {
    let Pkce { verifier, challenge } = Pkce::new();
    let url = server.authorize_url(client_id, &challenge, STATE, &[("redirect_uri", redirect_uri)]);
    let res = browser.get(url).send().await.expect("authorize");
    assert_eq!(res.status(), StatusCode::FOUND);
    (verifier, browser.get(follow(&res)).send().await.expect("GET /login"))
}

/// Press Allow on the consent-only page `html`, ticking "Remember" when `remember`.
async fn allow(server: &TestServer, browser: &reqwest::Client, html: &str, remember: bool) -> Response {
    let request = hidden_input(html, "request").expect("request");
    let csrf_token = hidden_input(html, "csrf_token").expect("csrf_token");
    let mut form = vec![("request", request.as_str()), ("csrf_token", csrf_token.as_str()), ("decision", "allow")];
    if remember {
        form.push(("remember", "1"));
    }
    browser.post(server.url("/login")).header("origin", &server.base).form(&form).send().await.expect("POST")
}

/// What the `caller` tool sees with the access token in `tokens`.
async fn seen_with(server: &TestServer, tokens: &Value) -> Value {
    let (status, _, seen) = call_caller(server, tokens["access_token"].as_str().expect("an access token")).await;
    assert_eq!(status, StatusCode::OK);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_user_reaches_the_tool_and_a_replayed_callback_gets_nothing() {
    let Some((server, provider)) = start(false).await else { return };
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    let tokens = redeem(&server, &at).await;
    let access = tokens["access_token"].as_str().expect("an access token");
    assert!(access.starts_with("mcp_at_"), "our own token, not the provider's");

    let (status, _, seen) = call_caller(&server, access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["subject"], json!(format!("{}#u-carol", provider.issuer)), "scoped to the issuer");
    assert_eq!(seen["username"], "carol", "from preferred_username (the provider's userinfo)");
    assert_eq!(seen["client_id"], json!(at.client_id));
    assert_eq!(seen["claims"]["name"], "Carol Example");
    assert_eq!(seen["claims"]["email"], "carol@example.com");
    assert_eq!(seen["claims"]["email_verified"], true);
    assert_eq!(seen["claims"]["groups"], json!(["staff", "mcp-users"]));

    // The same callback again: the pending authorization is gone, so no second code.
    assert_error_page(open(&at.browser, &at.callback).await, StatusCode::BAD_REQUEST, "unknown, has expired").await;

    // Refreshing needs no user store: the grant keeps the sign-in's claims.
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let res = server.refresh(&at.client_id, refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("JSON");
    let (status, _, seen) = call_caller(&server, body["access_token"].as_str().expect("a token")).await;
    assert_eq!((status, seen["claims"]["email"].clone()), (StatusCode::OK, json!("carol@example.com")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_the_tool_gets_the_provider_token_which_ends_with_our_grant() {
    let key = UpstreamTokenKey::from_bytes([7; 32]);
    let Some((server, provider)) =
        start_with(|_| None, |c| c.upstream_token_key = Some(key), Arc::new(MemoryStore::new())).await
    else {
        return;
    };
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    let tokens = redeem(&server, &at).await;
    let access = tokens["access_token"].as_str().expect("an access token");

    let (upstream, is_error) = call_upstream(&server, access).await;
    assert!(!is_error, "{upstream}");
    assert!(!tokens.to_string().contains(&upstream), "never sent to the MCP client");
    // A real token of the provider's, for carol: its userinfo endpoint says so.
    let me = reqwest::Client::new().get(format!("{}/me", provider.issuer)).bearer_auth(&upstream).send().await;
    let me: Value = me.expect("GET /me").json().await.expect("userinfo JSON");
    assert_eq!(me["sub"], "u-carol", "{me}");

    // Revoking our grant (its refresh token, RFC 7009) forgets the provider's tokens with it.
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let form = [("token", refresh), ("client_id", at.client_id.as_str())];
    assert_eq!(server.client.post(server.url("/revoke")).form(&form).send().await.expect("revoke").status(), 200);
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "upstream", "arguments": {}}});
    assert_eq!(server.mcp(Some(access), &body, None).await.status(), StatusCode::UNAUTHORIZED);
    let again = redeem(&server, &to_callback(&server, &provider, AtProvider::SignIn).await).await;
    let (fresh, is_error) = call_upstream(&server, again["access_token"].as_str().expect("a token")).await;
    assert!(!is_error && fresh != upstream, "a new sign-in keeps new tokens: {fresh}");

    // From the browser's sign-in session, Allow goes to the provider again: the new grant
    // gets tokens of its own rather than none.
    let client_id = server.register_public().await;
    let (verifier, res) = authorize_in(&server, &at.browser, &client_id, REDIRECT_URI).await;
    let html = res.text().await.expect("HTML");
    assert!(html.contains("Signed in as <strong>carol</strong>"), "{html}");
    let res = allow(&server, &at.browser, &html, false).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let callback =
        through_provider(&at.browser, &follow(&res), &server.url("/oauth/callback"), AtProvider::SignIn).await;
    let tokens = tokens_from(&server, &client_id, REDIRECT_URI, &verifier, open(&at.browser, &callback).await).await;
    let (own, is_error) = call_upstream(&server, tokens["access_token"].as_str().expect("a token")).await;
    assert!(!is_error && own != upstream && own != fresh, "tokens of its own: {own}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_keeps_a_sign_in_session_until_the_user_is_revoked() {
    let Some((server, provider)) = start(true).await else { return };
    let carol = format!("{}#u-carol", provider.issuer);
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    let res = open(&at.browser, &at.callback).await;
    let cookie = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cookie.starts_with("mcp_session=mcp_ss_") && cookie.contains("; HttpOnly; SameSite=Lax"), "{cookie}");
    tokens_from(&server, &at.client_id, REDIRECT_URI, &at.verifier, res).await;

    // Another client in the same browser (a web app, whose consent may be remembered):
    // consent only, for carol, with what her sign-in said.
    let web = "https://app.example.com/callback";
    let reg = json!({"client_name": "Web app", "redirect_uris": [web], "token_endpoint_auth_method": "none"});
    let client_id = server.register(reg).await["client_id"].as_str().expect("client_id").to_owned();
    let (verifier, res) = authorize_in(&server, &at.browser, &client_id, web).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("HTML");
    assert!(html.contains("Signed in as <strong>carol</strong>"), "{html}");
    assert!(!html.contains(r#"type="password""#) && !html.contains("Continue with"), "no sign-in asked: {html}");
    let res = allow(&server, &at.browser, &html, true).await;
    let seen = seen_with(&server, &tokens_from(&server, &client_id, web, &verifier, res).await).await;
    assert_eq!((seen["subject"].clone(), seen["username"].clone()), (json!(carol), json!("carol")));
    assert_eq!(seen["claims"]["email"], "carol@example.com", "the sign-in's claims, kept with the session");
    assert_eq!(seen["claims"]["groups"], json!(["staff", "mcp-users"]));

    // The consent was remembered: the same client again goes straight back with a code.
    let (verifier, res) = authorize_in(&server, &at.browser, &client_id, web).await;
    let tokens = tokens_from(&server, &client_id, web, &verifier, res).await;
    assert_eq!(seen_with(&server, &tokens).await["subject"], json!(carol));

    // Revoking carol ends her session: the next authorization asks her to sign in.
    server.oauth.as_ref().expect("the built-in authorization server").revoke_user(&carol).await.expect("revoke");
    let (_, res) = authorize_in(&server, &at.browser, &client_id, web).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("HTML");
    assert!(html.contains(r#"type="password""#) && html.contains("Continue with Test IdP"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_passwords_a_rotated_provider_key_is_followed() {
    let Some((server, mut provider)) = start(true).await else { return };
    let first = to_callback(&server, &provider, AtProvider::SignIn).await;
    redeem(&server, &first).await;
    // New signing keys under a new key id, same issuer: the next id_token names a key the
    // kit has not seen, and the kit fetches the key set again.
    provider.restart("key-2").await;
    let second = to_callback(&server, &provider, AtProvider::SignIn).await;
    let tokens = redeem(&server, &second).await;
    let (status, _, seen) = call_caller(&server, tokens["access_token"].as_str().expect("a token")).await;
    assert_eq!((status, seen["username"].clone()), (StatusCode::OK, json!("carol")));
    // The password form still works beside it.
    let password_tokens = server.sign_in("alice", "password123", &[]).await;
    let (status, _, seen) = call_caller(&server, &password_tokens.access).await;
    assert_eq!((status, seen["username"].clone()), (StatusCode::OK, json!("alice")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_id_tokens_are_refused_on_our_page() {
    let Some((server, provider)) = start(false).await else { return };
    for (mode, needle) in [
        ("wrong_nonce", "id_token&#39;s nonce is wrong"),
        ("wrong_iss", "id_token&#39;s iss is wrong"),
        ("wrong_aud", "id_token&#39;s aud is wrong"),
        ("expired", "id_token&#39;s exp is wrong"),
        ("alg_none", "id_token&#39;s signature is invalid"),
    ] {
        let at = to_callback(&server, &provider, AtProvider::SignIn).await;
        provider.tamper(mode).await;
        assert_error_page(open(&at.browser, &at.callback).await, StatusCode::BAD_GATEWAY, needle).await;
    }
    // The provider's own id_token still passes: the refusals were the forgeries'.
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    redeem(&server, &at).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_of_another_browser_or_request_is_refused_and_spends_nothing() {
    let Some((server, provider)) = start(false).await else { return };
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    let url = Url::parse(&at.callback).expect("a URL");
    let state = param(&url, "state").expect("a state");
    let (handle, _) = state.split_once('.').expect("handle.mac");
    let with_state = |state: Option<&str>| {
        let mut u = url.clone();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().filter(|(k, _)| k != "state").collect();
        let mut q = u.query_pairs_mut();
        q.clear().extend_pairs(&pairs);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        drop(q);
        u.to_string()
    };
    let unknown = "unknown, has expired, or was not started in this browser";
    for bad in [with_state(None), with_state(Some(&format!("{handle}.forged"))), with_state(Some(handle))] {
        assert_error_page(open(&at.browser, &bad).await, StatusCode::BAD_REQUEST, unknown).await;
    }
    // The right URL in another browser (no cookie of ours): refused too.
    assert_error_page(open(&browser(), &at.callback).await, StatusCode::BAD_REQUEST, unknown).await;
    // None of that spent the sign-in: the browser that started it still gets its code.
    redeem(&server, &at).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_is_down_or_a_user_who_cancels_gets_our_page() {
    let Some((server, mut provider)) = start(false).await else { return };
    let cancelled = to_callback(&server, &provider, AtProvider::Cancel).await;
    assert!(cancelled.callback.contains("error=access_denied"), "{}", cancelled.callback);
    let res = open(&cancelled.browser, &cancelled.callback).await;
    assert_error_page(res, StatusCode::FORBIDDEN, "the sign-in at Test IdP was cancelled or refused").await;

    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    provider.stop();
    let res = open(&at.browser, &at.callback).await;
    assert_error_page(res, StatusCode::BAD_GATEWAY, "the provider could not complete the sign-in").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_user_cannot_take_an_upstream_users_subject() {
    let store = Arc::new(MemoryStore::new());
    let Some((server, provider)) = start_with(
        |issuer| {
            let impostor =
                StaticUserStore::new().with_user(&format!("{issuer}#u-carol"), "mallory", &Password::new("pw-1"));
            Some(impostor.expect("a user store"))
        },
        |_| {},
        store.clone(),
    )
    .await
    else {
        return;
    };
    let carol = format!("{}#u-carol", provider.issuer);
    let client_id = server.register_public().await;
    let auth = server.authorize_url(&client_id, &Pkce::new().challenge, STATE, &[]);
    let res = server.login(&auth, "mallory", "pw-1").await.expect_err("no code for the impostor");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "the user store's mistake, not the user's");

    // Nor a consent remembered in carol's name, which would skip her consent page later.
    let web = "https://app.example.com/callback";
    let reg = json!({"client_name": "Web app", "redirect_uris": [web], "token_endpoint_auth_method": "none"});
    let web_client = server.register(reg).await["client_id"].as_str().expect("client_id").to_owned();
    let auth = server.authorize_url(&web_client, &Pkce::new().challenge, STATE, &[("redirect_uri", web)]);
    let page = server.open_login(&auth).await;
    assert!(page.html.contains(r#"name="remember""#), "the web app's consent may be remembered: {}", page.html);
    let mut form = page.form("mallory", "pw-1", "allow");
    form.push(("remember".to_owned(), "1".to_owned()));
    let res = server.post_login(&form, page.cookie.as_deref()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let remembered = store.consent(&carol, &web_client, SystemTime::now()).await.expect("the store");
    assert!(remembered.is_none(), "the impostor's consent was kept under carol's subject");
    // Carol herself still signs in upstream.
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    redeem(&server, &at).await;
}

/// Sign-ins at the provider are counted in `mcp_sign_ins_total` beside password ones: one
/// that came back with a user, and one that the user cancelled there.
#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_at_the_provider_are_counted() {
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let Some((server, provider)) =
        start_with(|_| None, move |c| c.metrics_addr = Some(metrics), Arc::new(MemoryStore::new())).await
    else {
        return;
    };
    let count = |outcome: &'static str| {
        let client = server.client.clone();
        async move {
            let res = client.get(format!("http://{metrics}/metrics")).send().await.expect("GET /metrics");
            let text = res.text().await.expect("the exposition");
            let series = format!(r#"mcp_sign_ins_total{{method="upstream",outcome="{outcome}"}} "#);
            text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0.0, |v| v.parse::<f64>().expect("a number"))
        }
    };
    let (succeeded, failed) = (count("succeeded").await, count("failed").await);

    redeem(&server, &to_callback(&server, &provider, AtProvider::SignIn).await).await;
    let cancelled = to_callback(&server, &provider, AtProvider::Cancel).await;
    assert_eq!(open(&cancelled.browser, &cancelled.callback).await.status(), StatusCode::FORBIDDEN);

    assert!(count("succeeded").await > succeeded, "the sign-in that came back with a user");
    assert!(count("failed").await > failed, "the sign-in cancelled at the provider");
}

/// "Not you?" on the consent page of a browser signed in upstream: the sign-in page's
/// "Continue with …" then asks the provider to sign the user in again (`prompt=login`), where
/// the provider's own session would otherwise sign the same user in without a question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_you_makes_the_provider_ask_who_signs_in() {
    let Some((server, provider)) = start(true).await else { return };
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    redeem(&server, &at).await;

    let client_id = server.register_public().await;
    let (_, res) = authorize_in(&server, &at.browser, &client_id, REDIRECT_URI).await;
    let html = res.text().await.expect("HTML");
    assert!(html.contains("Signed in as <strong>carol</strong>") && html.contains("Not you?"), "{html}");
    let request = hidden_input(&html, "request").expect("request");
    let url = server.url(&format!("/login?request={request}&prompt=login"));
    let html = at.browser.get(url).send().await.expect("GET /login").text().await.expect("HTML");
    assert!(html.contains(r#"type="password""#) && html.contains(r#"name="prompt" value="login""#), "{html}");
    let csrf_token = hidden_input(&html, "csrf_token").expect("csrf_token");

    // Where the provider's first page is, for the upstream form posted with `extra` fields.
    let continue_with = |extra: &'static [(&'static str, &'static str)]| {
        let mut form = vec![("request", request.clone()), ("csrf_token", csrf_token.clone()), ("upstream", "1".into())];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let (browser, login) = (at.browser.clone(), server.url("/login"));
        let (origin, callback) = (server.base.clone(), server.url("/oauth/callback"));
        async move {
            let res = browser.post(login).header("origin", origin).form(&form).send().await.expect("POST /login");
            let mut next = follow(&res);
            assert_eq!(param(&Url::parse(&next).expect("a URL"), "prompt").as_deref(), extra.first().map(|(_, v)| *v));
            for _ in 0..10 {
                if next.starts_with(&callback) {
                    return None;
                }
                let res = browser.get(&next).send().await.expect("GET at the provider");
                if !res.status().is_redirection() {
                    return Some(res.text().await.expect("a page"));
                }
                next = follow(&res);
            }
            panic!("no page and no callback after 10 redirects");
        }
    };
    // Without the prompt the provider's session answers at once, straight back to us…
    assert_eq!(continue_with(&[]).await, None, "the provider's session signs carol in silently");
    // …with it, the provider asks who signs in.
    let page = continue_with(&[("prompt", "login")]).await.expect("the provider's sign-in page");
    assert!(page.contains(r#"name="prompt" value="login""#), "{page}");
}

/// On a server whose users all sign in upstream, the consent page of a browser signed in
/// there stands on the sign-in session like the password layout's: Allow issues the code (no
/// second trip to the provider) and "Remember" is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_passwords_the_consent_page_stands_on_the_sign_in_session() {
    let Some((server, provider)) = start(false).await else { return };
    let carol = format!("{}#u-carol", provider.issuer);
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    redeem(&server, &at).await;

    let web = "https://app.example.com/callback";
    let reg = json!({"client_name": "Web app", "redirect_uris": [web], "token_endpoint_auth_method": "none"});
    let client_id = server.register(reg).await["client_id"].as_str().expect("client_id").to_owned();
    let (verifier, res) = authorize_in(&server, &at.browser, &client_id, web).await;
    let html = res.text().await.expect("HTML");
    assert!(html.contains("Signed in as <strong>carol</strong>") && html.contains(r#"name="remember""#), "{html}");
    assert!(!html.contains(r#"name="upstream""#), "the consent page is not a sign-in page: {html}");
    let res = allow(&server, &at.browser, &html, true).await;
    let tokens = tokens_from(&server, &client_id, web, &verifier, res).await;
    assert_eq!(seen_with(&server, &tokens).await["subject"], json!(carol));

    // Remembered: the same client again goes straight back with a code.
    let (verifier, res) = authorize_in(&server, &at.browser, &client_id, web).await;
    tokens_from(&server, &client_id, web, &verifier, res).await;
}

/// A round trip to the provider from carol's sign-in session (her provider tokens are kept, so
/// a new grant goes back there) when the provider's own session has meanwhile become dave's, on
/// a shared computer: our callback refuses dave, with no code, instead of a grant for someone
/// whom nobody asked, made on carol's consent page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_from_a_sign_in_session_refuses_another_user() {
    let key = UpstreamTokenKey::from_bytes([7; 32]);
    let tweak = move |c: &mut Config| c.upstream_token_key = Some(key);
    let Some((server, provider)) = start_with(|_| None, tweak, Arc::new(MemoryStore::new())).await else { return };
    let at = to_callback(&server, &provider, AtProvider::SignIn).await;
    redeem(&server, &at).await;

    // Dave signs in at the provider in this browser, by "Not you?", and leaves it there.
    let client_id = server.register_public().await;
    let (_, res) = authorize_in(&server, &at.browser, &client_id, REDIRECT_URI).await;
    let html = res.text().await.expect("HTML");
    let request = hidden_input(&html, "request").expect("request");
    let url = server.url(&format!("/login?request={request}&prompt=login"));
    let html = at.browser.get(url).send().await.expect("GET /login").text().await.expect("HTML");
    let csrf_token = hidden_input(&html, "csrf_token").expect("csrf_token");
    let form = [
        ("request", request.as_str()),
        ("csrf_token", &csrf_token),
        ("upstream", "1"),
        ("prompt", "login"),
        ("decision", "allow"),
    ];
    let res = at.browser.post(server.url("/login")).header("origin", &server.base).form(&form).send().await;
    let to_provider = follow(&res.expect("POST /login"));
    through_provider(&at.browser, &to_provider, &server.url("/oauth/callback"), AtProvider::SignInAs("u-dave")).await;

    // Carol's session, a new client: Allow goes to the provider, which answers for dave.
    let client_id = server.register_public().await;
    let (_, res) = authorize_in(&server, &at.browser, &client_id, REDIRECT_URI).await;
    let html = res.text().await.expect("HTML");
    assert!(html.contains("Signed in as <strong>carol</strong>"), "{html}");
    let res = allow(&server, &at.browser, &html, false).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let callback =
        through_provider(&at.browser, &follow(&res), &server.url("/oauth/callback"), AtProvider::SignInAs("u-dave"))
            .await;
    assert_error_page(open(&at.browser, &callback).await, StatusCode::FORBIDDEN, "another account").await;
}
