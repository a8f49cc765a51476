//! The sign-in and consent page (`GET/POST /login`): what it shows, its security headers, the
//! browser cookie and the form token bound to it, cross-site posts, wrong passwords and their
//! limit, deny (never a redirect before sign-in), expiry, single use.

mod common;

use std::time::Duration;

use common::{
    LoginPage, PROXIED_HOST, Pkce, REDIRECT_URI, STATE, TestServer, assert_wrong_credentials, header, location, param,
};
use reqwest::StatusCode;
use serde_json::json;

/// A server, a public client and an open login page for it.
async fn login_page(server: &TestServer) -> LoginPage {
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    server.open_login(&server.authorize_url(&client_id, &challenge, STATE, &[])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_names_the_client_escaped_and_the_redirect_host() {
    let server = TestServer::start().await;
    let reg = server
        .register(json!({
            "client_name": "<b>x</b>",
            "redirect_uris": ["https://app.example.com/oauth/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let client_id = reg["client_id"].as_str().expect("client_id");
    let challenge = Pkce::new().challenge;
    let url = server.authorize_url(
        client_id,
        &challenge,
        STATE,
        &[("redirect_uri", "https://app.example.com/oauth/cb"), ("scope", "mcp admin")],
    );
    let page = server.open_login(&url).await;
    assert!(page.html.contains("&lt;b&gt;x&lt;/b&gt;"), "the client name, escaped");
    assert!(!page.html.contains("<b>x</b>"), "never raw");
    assert!(page.html.contains("app.example.com"), "the redirect host");
    // The requested scopes: `mcp` in words (its default description), `admin` by name (none).
    assert!(page.html.contains("<li>Use the tools of this server on your behalf</li>"), "mcp in words");
    assert!(page.html.contains("<li>admin</li>"), "a scope without a description");
    assert!(page.html.contains("Test MCP server"), "the server name");
    assert!(!page.html.contains("{{"), "every placeholder is filled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_has_its_security_headers_and_sets_the_browser_cookie() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let h = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(h("x-frame-options"), "DENY");
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("form-action"), "form-action would block the redirect back to the client: {csp}");
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert!(h("content-type").starts_with("text/html"));
    // Under `no-referrer` Chromium sends `Origin: null` on the page's own POST.
    assert_eq!(h("referrer-policy"), "same-origin");
    let set_cookie = h("set-cookie");
    // One secret per browser, long-lived; the form token is derived from it, never equal to it.
    assert!(set_cookie.starts_with("mcp_browser=mcp_br_"), "{set_cookie}");
    assert!(!set_cookie.contains(&page.csrf_token), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=34560000"] {
        assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: a Secure cookie would never come back");
    // A browser that has the cookie keeps it: the next page sets none and uses the same secret.
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    let auth = server.authorize_url(&client_id, &challenge, STATE, &[]);
    let login_url = location(&server.get(&auth).await);
    let again = server.login_page_in(login_url.as_str(), page.cookie.as_deref()).await;
    assert!(again.headers.get("set-cookie").is_none(), "the browser keeps its cookie");
    assert_ne!(again.csrf_token, page.csrf_token, "each request has its own token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_and_allow_gives_a_code_with_state_and_iss() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let res = server.post_login(&page.form("alice", "password123", "allow"), page.cookie.as_deref()).await;
    assert_code_redirect(&server, &res);
    assert_eq!(header(&res, "cache-control"), "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_look_alike() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let cookie = page.cookie.as_deref();
    let wrong = server.post_login(&page.form("alice", "not-her-password", "allow"), cookie).await;
    let unknown = server.post_login(&page.form("mallory", "password123", "allow"), cookie).await;
    assert_wrong_credentials(&wrong, "a wrong password");
    assert_wrong_credentials(&unknown, "an unknown user");
    let wrong_at = location(&wrong);
    let (status, wrong) = server.page_after(&wrong, cookie).await;
    assert_eq!(status, StatusCode::OK);
    let (_, unknown) = server.page_after(&unknown, cookie).await;
    let wrong = wrong.replace("value=\"alice\"", "value=\"USER\"");
    let unknown = unknown.replace("value=\"mallory\"", "value=\"USER\"");
    assert_eq!(wrong, unknown, "the two answers differ only in the echoed username");
    assert!(wrong.contains("Wrong username or password."));
    assert!(wrong.contains("<title>Error: Sign in"), "the title says so");
    assert!(!wrong.contains("not-her-password"), "the password is never echoed");
    // The link shows the error only in the browser it was made for.
    let stranger = server.get(wrong_at.as_str()).await.text().await.expect("page");
    assert!(!stranger.contains("Wrong username") && stranger.contains("<title>Sign in"), "another browser");
    // The form is still usable after a wrong password.
    let ok = server.post_login(&page.form("alice", "password123", "allow"), cookie).await;
    assert_code_redirect(&server, &ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echoed_username_is_escaped() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let res = server.post_login(&page.form("\"><script>x</script>", "nope", "allow"), page.cookie.as_deref()).await;
    assert_wrong_credentials(&res, "a wrong password");
    let (_, html) = server.page_after(&res, page.cookie.as_deref()).await;
    assert!(!html.contains("<script>x</script>"));
    assert!(html.contains("&quot;&gt;&lt;script&gt;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_cookie_or_with_a_wrong_token_is_refused() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let good = page.form("alice", "password123", "allow");
    let mut wrong_csrf = good.clone();
    wrong_csrf[1].1 = "A".repeat(page.csrf_token.len());
    let wrong_cookie = format!("mcp_browser={}", "B".repeat(page.csrf_token.len()));
    let forged_secret = "mcp_browser=mcp_br_forged".to_owned();
    // (case, form, Cookie header)
    type Case<'a> = (&'a str, Vec<(String, String)>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("no cookie", good.clone(), None),
        ("another cookie only", good.clone(), Some("other=1")),
        ("wrong cookie", good.clone(), Some(&wrong_cookie)),
        ("another browser's secret", good.clone(), Some(&forged_secret)),
        ("wrong csrf_token", wrong_csrf, page.cookie.as_deref()),
    ];
    for (name, form, cookie) in cases {
        let res = server.post_login(&form, cookie).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{name}");
        assert!(res.headers().get("location").is_none(), "{name}: no code");
    }
    // None of that spent the request: the real browser still signs in.
    let res = server.post_login(&good, page.cookie.as_deref()).await;
    assert_code_redirect(&server, &res);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_or_non_form_posts_are_refused() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let cookie = page.cookie.as_deref();
    let res = server.post_login(&[("request", page.request.as_str())], cookie).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "no csrf_token");
    let res = server.post_login(&[("csrf_token", page.csrf_token.as_str())], cookie).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "no request");
    let res = server
        .client
        .post(server.url("/login"))
        .header("cookie", cookie.expect("a cookie"))
        .json(&json!({ "request": page.request, "csrf_token": page.csrf_token }))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON is not a form submission");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_before_signing_in_shows_our_page_and_never_redirects() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let res = server.post_login(&page.form("", "", "deny"), page.cookie.as_deref()).await;
    // Nobody authenticated here: the client's redirect URI (anyone's choice) is not followed.
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("location").is_none(), "no redirect to the client");
    let html = res.text().await.expect("page");
    assert!(html.contains("declined") && html.contains("Test client"), "{html}");
    assert!(!html.contains(REDIRECT_URI), "not even a link to the client: {html}");
    // The request is over: allowing it afterwards gives nothing.
    let res = server.post_login(&page.form("alice", "password123", "allow"), page.cookie.as_deref()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_drop_the_request() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let cookie = page.cookie.as_deref();
    // Different usernames, so that the per-username throttle does not mask the per-request limit.
    for (attempt, user) in ["alice", "mallory1", "mallory2", "mallory3"].iter().enumerate() {
        let res = server.post_login(&page.form(user, "wrong", "allow"), cookie).await;
        assert_wrong_credentials(&res, format!("attempt {}", attempt + 1));
    }
    let res = server.post_login(&page.form("mallory4", "wrong", "allow"), cookie).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "attempt 5 drops the request");
    assert!(res.headers().get("location").is_none());
    let res = server.post_login(&page.form("alice", "password123", "allow"), cookie).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the request is gone");
    assert!(res.headers().get("location").is_none(), "the right password afterwards gets no code");
    let res = server.get(&server.url(&format!("/login?request={}", page.request))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the page is gone too");
    // A new request works: the limit was the request's, not alice's.
    let page = login_page(&server).await;
    let res = server.post_login(&page.form("alice", "password123", "allow"), page.cookie.as_deref()).await;
    assert_code_redirect(&server, &res);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_for_one_username_at_one_address_are_throttled_across_requests() {
    // A clock that stands still: the whole throttle window is left, to the second.
    let (server, _frozen) = TestServer::start_on_clock(|c| c).await;
    let first = login_page(&server).await;
    for attempt in 1..=4 {
        let res = server.post_login(&first.form("alice", "wrong", "allow"), first.cookie.as_deref()).await;
        assert_wrong_credentials(&res, format!("attempt {attempt}"));
    }
    let page = login_page(&server).await;
    let cookie = page.cookie.as_deref();
    let res = server.post_login(&page.form("alice", "wrong", "allow"), cookie).await;
    assert_wrong_credentials(&res, "attempt 5, on a new request");
    for user in ["alice", "ALICE"] {
        let res = server.post_login(&page.form(user, "password123", "allow"), cookie).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{user}: throttled even with the right password");
        assert_eq!(header(&res, "retry-after"), "900", "the whole 15-minute window is left");
        assert!(res.headers().get("location").is_none());
    }
    // Another user is not locked out by alice's failures.
    let res = server.post_login(&page.form("bob", "hunter2", "allow"), cookie).await;
    assert_code_redirect(&server, &res);
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_store_share_the_sign_in_throttle() {
    let dir = common::TempDir::new("throttle");
    let (a, b) = TestServer::two_on_one_sqlite_file(&dir, |c| c).await;
    // Five wrong passwords for alice: three on one instance, two on the other.
    for (server, failures) in [(&a, 3), (&b, 2)] {
        let page = login_page(server).await;
        for attempt in 1..=failures {
            let res = server.post_login(&page.form("alice", "wrong", "allow"), page.cookie.as_deref()).await;
            assert_wrong_credentials(&res, format!("{} attempt {attempt}", server.base));
        }
    }
    for server in [&a, &b] {
        let page = login_page(server).await;
        let res = server.post_login(&page.form("alice", "password123", "allow"), page.cookie.as_deref()).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{}: throttled on every instance", server.base);
        assert!(header(&res, "retry-after").parse::<u64>().is_ok_and(|s| (1..=15 * 60).contains(&s)));
        assert!(res.headers().get("location").is_none());
    }
    // Bob is not locked out on either.
    for server in [&a, &b] {
        let page = login_page(server).await;
        let res = server.post_login(&page.form("bob", "hunter2", "allow"), page.cookie.as_deref()).await;
        assert_code_redirect(server, &res);
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_store_share_the_oauth_rate_limit() {
    let dir = common::TempDir::new("oauth-limit");
    let limit = |mut c: mcp_oauth_kit::Config| {
        c.oauth_requests_per_minute = 4;
        c
    };
    let (a, b) = TestServer::two_on_one_sqlite_file(&dir, limit).await;
    for server in [&a, &b, &a, &b] {
        server.register_public().await;
    }
    for server in [&a, &b] {
        let res = server.register_raw(&json!({ "redirect_uris": [REDIRECT_URI] })).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{}", server.base);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_throttled() {
    let server = TestServer::start_with(|mut c| {
        c.login_failures_per_user = 0;
        c.login_failures_per_ip = 3;
        c
    })
    .await;
    for user in ["u1", "u2", "u3"] {
        let page = login_page(&server).await;
        let res = server.post_login(&page.form(user, "wrong", "allow"), page.cookie.as_deref()).await;
        assert_wrong_credentials(&res, user);
    }
    let page = login_page(&server).await;
    let res = server.post_login(&page.form("bob", "hunter2", "allow"), page.cookie.as_deref()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_endpoints_are_rate_limited_per_address() {
    let (server, clock) = TestServer::start_on_clock(|mut c| {
        c.oauth_requests_per_minute = 3;
        c
    })
    .await;
    for _ in 0..3 {
        server.register_public().await;
    }
    let res = server.register_raw(&json!({ "redirect_uris": [REDIRECT_URI] })).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "60", "the whole minute is left");
    assert_eq!(common::oauth_error(res).await.1, "slow_down");
    // `/token` has a budget of its own (a platform refreshes from shared addresses).
    let res = server.token(&[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS, "/token has its own budget");
    // Discovery and the MCP endpoint are not OAuth endpoints.
    let res = server.get(&server.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = server.mcp(None, &common::initialize_request(), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The window's last millisecond: still refused (Retry-After is at least 1).
    clock.advance(Duration::from_secs(60) - Duration::from_millis(1));
    let res = server.register_raw(&json!({ "redirect_uris": [REDIRECT_URI] })).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "1");
    // At its end a new window starts.
    clock.advance(Duration::from_millis(1));
    let res = server.register_raw(&json!({ "redirect_uris": [REDIRECT_URI] })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_missing_requests_get_an_error_page() {
    let server = TestServer::start().await;
    for path in ["/login?request=nope", "/login", "/login?request="] {
        let res = server.get(&server.url(path)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{path}");
        assert!(res.headers().get("set-cookie").is_none(), "{path}");
    }
    let form = [("request", "nope"), ("csrf_token", "x"), ("username", "alice"), ("password", "password123")];
    let res = server.post_login(&form, Some("mcp_login=x")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_gets_an_error_page() {
    let (server, clock) = TestServer::start_on_clock(|c| c).await;
    let page = login_page(&server).await;
    // The last millisecond of the 10 minutes a user has to sign in: the page still shows.
    clock.advance(Duration::from_secs(600) - Duration::from_millis(1));
    let res = server.get(&server.url(&format!("/login?request={}", page.request))).await;
    assert_eq!(res.status(), StatusCode::OK);
    clock.advance(Duration::from_millis(1));
    let res = server.get(&server.url(&format!("/login?request={}", page.request))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = server.post_login(&page.form("alice", "password123", "allow"), page.cookie.as_deref()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_is_single_use() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let form = page.form("alice", "password123", "allow");
    let first = server.post_login(&form, page.cookie.as_deref()).await;
    assert_code_redirect(&server, &first);
    let second = server.post_login(&form, page.cookie.as_deref()).await;
    assert_spent_request_page(second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_double_submits_give_one_code() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let form = page.form("alice", "password123", "allow");
    let (a, b) = tokio::join!(
        server.post_login(&form, page.cookie.as_deref()),
        server.post_login(&form, page.cookie.as_deref())
    );
    // Exactly one wins; the loser gets the page of a spent request, not a 500 or a second code.
    let (winner, loser) = if a.status() == StatusCode::FOUND { (a, b) } else { (b, a) };
    assert_code_redirect(&server, &winner);
    assert_spent_request_page(loser).await;
}

/// A 302 to the client with a code, our `state` and `iss`, and no `error`.
fn assert_code_redirect(server: &TestServer, res: &reqwest::Response) {
    assert_code_redirect_from(&server.base, res);
}

/// [`assert_code_redirect`] for a server whose issuer (its public URL) is `issuer`.
fn assert_code_redirect_from(issuer: &str, res: &reqwest::Response) {
    assert_eq!(res.status(), StatusCode::FOUND, "a redirect with a code");
    let to = location(res);
    let mut target = to.clone();
    target.set_query(None);
    assert_eq!(target.as_str(), REDIRECT_URI, "the registered redirect URI exactly");
    assert!(param(&to, "code").is_some_and(|c| c.len() >= 32), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some(STATE), "{to}");
    assert_eq!(param(&to, "iss").as_deref(), Some(issuer), "{to}");
    assert_eq!(param(&to, "error"), None, "{to}");
}

/// The answer to a sign-in request already approved: our 400 page naming `invalid_request`,
/// no redirect (so no second code).
async fn assert_spent_request_page(res: reqwest::Response) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none(), "no second code");
    let html = res.text().await.expect("page");
    assert!(html.contains("<code>invalid_request</code>"), "{html}");
    assert!(html.contains("this sign-in request is unknown or has expired"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_the_cookie_is_host_prefixed_and_secure() {
    let server = TestServer::behind_tls_proxy().await;
    // What the proxy forwards: our path, the public Host.
    let via_proxy = |url: &reqwest::Url| {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        server.client.get(server.url(&path)).header("host", PROXIED_HOST)
    };
    let client_id = &server.register_via_proxy(REDIRECT_URI).await;
    let challenge = Pkce::new().challenge;
    let auth = reqwest::Url::parse(&server.authorize_url(client_id, &challenge, STATE, &[])).expect("URL");
    let res = via_proxy(&auth).send().await.expect("GET /authorize");
    assert_eq!(res.status(), StatusCode::FOUND);
    let login_url = location(&res);
    assert!(login_url.as_str().starts_with(&format!("https://{PROXIED_HOST}/login?request=")), "{login_url}");

    let res = via_proxy(&login_url).send().await.expect("GET /login");
    assert_eq!(res.status(), StatusCode::OK);
    let set_cookie = header(&res, "set-cookie");
    assert!(set_cookie.starts_with("__Host-mcp_browser="), "{set_cookie}");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/") && !set_cookie.contains("Domain="), "__Host- rules: {set_cookie}");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let html = res.text().await.expect("page");
    let page = LoginPage {
        request: common::hidden_input(&html, "request").expect("request"),
        csrf_token: common::hidden_input(&html, "csrf_token").expect("csrf_token"),
        cookie: Some(cookie.clone()),
        html,
        headers: reqwest::header::HeaderMap::new(),
    };
    let form = page.form("alice", "password123", "allow");
    let post = |cookie: String| {
        server
            .client
            .post(server.url("/login"))
            .header("host", PROXIED_HOST)
            .header("cookie", cookie)
            .form(&form)
            .send()
    };
    let unprefixed = cookie.trim_start_matches("__Host-").to_owned();
    let res = post(unprefixed).await.expect("POST /login");
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "over https only the __Host- cookie counts");
    let res = post(cookie).await.expect("POST /login");
    assert_code_redirect_from(&format!("https://{PROXIED_HOST}"), &res);
}

/// Every `name=value` a browser would hold after these responses (later ones win).
fn cookie_jar(pages: &[&LoginPage]) -> String {
    let mut jar: Vec<(String, String)> = Vec::new();
    for page in pages {
        for set in page.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let Some((name, value)) = set.split(';').next().and_then(|p| p.split_once('=')) else { continue };
            jar.retain(|(n, _)| n != name.trim());
            jar.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sign_ins_in_one_browser_both_complete() {
    let server = TestServer::start().await;
    // A client that opened the browser twice, or two clients connecting at once.
    let first = login_page(&server).await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    let login_url = location(&server.get(&server.authorize_url(&client_id, &challenge, STATE, &[])).await);
    let second = server.login_page_in(login_url.as_str(), first.cookie.as_deref()).await;
    let jar = cookie_jar(&[&first, &second]);
    let res = server.post_login(&first.form("alice", "password123", "allow"), Some(&jar)).await;
    assert_code_redirect(&server, &res);
    let res = server.post_login(&second.form("alice", "password123", "allow"), Some(&jar)).await;
    assert_code_redirect(&server, &res);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusual_state_comes_back_unchanged() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let state = "a b&c=d/é+%25?#x\"<>";
    let challenge = Pkce::new().challenge;
    let callback = server
        .login(&server.authorize_url(&client_id, &challenge, state, &[]), "alice", "password123")
        .await
        .expect("a code");
    assert_eq!(param(&callback, "state").as_deref(), Some(state), "on success");
    // Errors and Deny go back to the client only for a signed-in browser.
    let session = server.sign_in_session("alice", "password123").await;
    let url = server.authorize_url(&client_id, &challenge, state, &[("scope", "nope")]);
    let res = server.client.get(url).header("cookie", &session).send().await.expect("GET /authorize");
    assert_eq!(param(&common::return_link(res).await, "state").as_deref(), Some(state), "on error");
    let auth = server.authorize_url(&client_id, &challenge, state, &[]);
    let login_url = location(&server.client.get(auth).header("cookie", &session).send().await.expect("GET"));
    let page = server.login_page_in(login_url.as_str(), Some(&session)).await;
    let form: Vec<_> =
        page.form("", "", "deny").into_iter().filter(|(k, _)| k != "username" && k != "password").collect();
    let res = server.post_login(&form, Some(&format!("{}; {session}", page.cookie.expect("a browser cookie")))).await;
    assert_eq!(param(&location(&res), "state").as_deref(), Some(state), "on deny");
}

/// A second browser: a fresh `mcp_browser` cookie from a sign-in page of its own.
async fn another_browser(server: &TestServer) -> String {
    login_page(server).await.cookie.expect("a browser cookie")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_token_read_in_one_browser_is_worthless_in_another() {
    let server = TestServer::start().await;
    // Browser X (the attacker's) opens the request and reads its form token.
    let x = login_page(&server).await;
    // Browser Y (the victim's) has a cookie of its own, and even a sign-in session.
    let y = another_browser(&server).await;
    let victim = server.sign_in_session("alice", "password123").await;
    let y_jar = format!("{y}; {victim}");
    for fields in [x.form("", "", "allow"), x.form("alice", "password123", "allow"), x.form("", "", "deny")] {
        let consent_only: Vec<_> = fields.iter().filter(|(k, _)| k != "username" && k != "password").cloned().collect();
        for form in [fields, consent_only] {
            let res = server.post_login(&form, Some(&y_jar)).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{form:?}");
            assert!(res.headers().get("location").is_none(), "no code, no redirect");
            assert!(res.headers().get("set-cookie").is_none(), "no session started");
        }
    }
    // Nothing was spent: browser X itself still completes.
    let res = server.post_login(&x.form("alice", "password123", "allow"), x.cookie.as_deref()).await;
    assert_code_redirect(&server, &res);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_before_anything_is_spent() {
    let server = TestServer::start().await;
    let page = login_page(&server).await;
    let form = page.form("alice", "password123", "allow");
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("a sibling subdomain", &[("sec-fetch-site", "same-site")]),
        ("another site", &[("sec-fetch-site", "cross-site")]),
        ("Origin: null", &[("origin", "null")]),
        ("a foreign origin", &[("origin", "https://evil.example")]),
        ("a sibling origin", &[("origin", "http://sub.127.0.0.1.nip.io")]),
        ("same-origin with Origin: null", &[("sec-fetch-site", "same-origin"), ("origin", "null")]),
    ];
    for (name, headers) in cases {
        let res = server.post_login_with(&form, page.cookie.as_deref(), headers).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{name}");
        assert!(res.headers().get("location").is_none(), "{name}: no code");
        assert!(res.headers().get("set-cookie").is_none(), "{name}: no session");
        assert!(header(&res, "content-type").starts_with("text/html"), "{name}: our error page");
    }
    // Our own page's post, as Chromium sends it, still signs in (nothing was consumed).
    let own = [("sec-fetch-site", "same-origin"), ("origin", server.base.as_str())];
    let res = server.post_login_with(&form, page.cookie.as_deref(), &own).await;
    assert_code_redirect(&server, &res);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_private_schemes_name_and_no_format_characters_in_the_client_name() {
    let server = TestServer::start().await;
    let uri = "com.evil://claude.ai/cb";
    let reg = server
        .register(json!({
            "client_name": "Claude\u{202e}lanigirO\u{200b} \u{2066}app\u{2069}",
            "redirect_uris": [uri],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let client_id = reg["client_id"].as_str().expect("client_id");
    let challenge = Pkce::new().challenge;
    let page = server.open_login(&server.authorize_url(client_id, &challenge, STATE, &[("redirect_uri", uri)])).await;
    assert!(
        page.html.contains("You will be sent back to <strong>com.evil://claude.ai</strong>"),
        "not to \"claude.ai\": {}",
        page.html
    );
    assert!(page.html.contains("<strong>ClaudelanigirO app</strong>"), "{}", page.html);
    for c in ['\u{202e}', '\u{200b}', '\u{2066}', '\u{2069}'] {
        assert!(!page.html.contains(c), "{c:?} is shown");
    }
}
