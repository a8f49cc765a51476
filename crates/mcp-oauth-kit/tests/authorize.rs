//! `GET /authorize` (RFC 6749 §4.1.1 with PKCE and RFC 8707): every error is shown on the
//! server's own page and never redirected, since no user has authenticated yet and anyone may
//! register a redirect URI (RFC 9700 §4.11.2); the page names the client and the error. A
//! browser with a live sign-in session is offered a link back to the client with `error`,
//! `state` and `iss` (RFC 9207).

mod common;

use common::{Pkce, REDIRECT_URI, STATE, TestServer, header, location, param, return_link};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_request_goes_to_the_login_page() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    let res = server.get(&server.authorize_url(&client_id, &challenge, STATE, &[])).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(header(&res, "cache-control"), "no-store");
    let to = location(&res);
    assert!(to.as_str().starts_with(&format!("{}/login?request=", server.base)), "{to}");
    assert!(param(&to, "request").is_some_and(|r| r.len() >= 32), "an unguessable handle: {to}");
    assert_eq!(param(&to, "state"), None, "state stays on the server until the redirect back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_client_or_redirect_uri_gets_an_error_page_and_no_redirect() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let two_uris = server
        .register(json!({
            "redirect_uris": [REDIRECT_URI, "https://app.example.com/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let two_uris = two_uris["client_id"].as_str().expect("client_id").to_owned();
    let challenge = Pkce::new().challenge;
    let valid = |client: &str| {
        vec![
            ("response_type".to_owned(), "code".to_owned()),
            ("client_id".to_owned(), client.to_owned()),
            ("redirect_uri".to_owned(), REDIRECT_URI.to_owned()),
            ("code_challenge".to_owned(), challenge.clone()),
            ("code_challenge_method".to_owned(), "S256".to_owned()),
            ("state".to_owned(), STATE.to_owned()),
        ]
    };
    let set = |mut params: Vec<(String, String)>, key: &str, value: Option<&str>| {
        params.retain(|(k, _)| k != key);
        if let Some(v) = value {
            params.push((key.to_owned(), v.to_owned()));
        }
        params
    };
    let cases = [
        ("unknown client", set(valid(&client_id), "client_id", Some("mcp_client_nope"))),
        ("missing client_id", set(valid(&client_id), "client_id", None)),
        ("unregistered redirect_uri", set(valid(&client_id), "redirect_uri", Some("https://evil.example.com/cb"))),
        ("redirect_uri with another path", set(valid(&client_id), "redirect_uri", Some("http://127.0.0.1:9999/other"))),
        (
            "redirect_uri with extra query",
            set(valid(&client_id), "redirect_uri", Some("http://127.0.0.1:9999/callback?x=1")),
        ),
        (
            "redirect_uri on localhost instead of 127.0.0.1",
            set(valid(&client_id), "redirect_uri", Some("http://localhost:9999/callback")),
        ),
        ("missing redirect_uri with two registered", set(valid(&two_uris), "redirect_uri", None)),
        // RFC 9700 §4.1.3: exact string matching; only a loopback port may differ.
        (
            "redirect_uri with userinfo",
            set(valid(&client_id), "redirect_uri", Some("http://evil.example.com@127.0.0.1:9999/callback")),
        ),
        (
            "redirect_uri with userinfo and another port",
            set(valid(&client_id), "redirect_uri", Some("http://evil.example.com@127.0.0.1:8000/callback")),
        ),
        (
            "redirect_uri with a fragment",
            set(valid(&client_id), "redirect_uri", Some("http://127.0.0.1:9999/callback#x")),
        ),
        (
            "redirect_uri with a trailing slash",
            set(valid(&client_id), "redirect_uri", Some("http://127.0.0.1:9999/callback/")),
        ),
        (
            "redirect_uri percent-encoded",
            set(valid(&client_id), "redirect_uri", Some("http://127.0.0.1:9999/%63allback")),
        ),
        (
            "redirect_uri in another case",
            set(valid(&client_id), "redirect_uri", Some("http://127.0.0.1:9999/Callback")),
        ),
        (
            "https redirect_uri with its default port",
            set(valid(&two_uris), "redirect_uri", Some("https://app.example.com:443/cb")),
        ),
        ("repeated parameter", {
            let mut p = valid(&client_id);
            p.push(("client_id".to_owned(), client_id.clone()));
            p
        }),
    ];
    for (name, params) in cases {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let res = server.get(&server.authorize_url_from(&pairs)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(res.headers().get("location").is_none(), "{name}: must not redirect");
        assert!(header(&res, "content-type").starts_with("text/html"), "{name}");
        let page = res.text().await.expect("page");
        assert!(page.contains("invalid_request"), "{name}: {page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_redirect_uri_may_use_another_port() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    for uri in ["http://127.0.0.1:51234/callback", "http://127.0.0.1/callback"] {
        let url = server.authorize_url(&client_id, &challenge, STATE, &[("redirect_uri", uri)]);
        let res = server.get(&url).await;
        assert_eq!(res.status(), StatusCode::FOUND, "{uri}");
        assert!(location(&res).as_str().starts_with(&format!("{}/login?", server.base)), "{uri}");
    }
    // The way back from an error leads to the port the client asked for.
    let url = server.authorize_url(
        &client_id,
        &challenge,
        STATE,
        &[("redirect_uri", "http://127.0.0.1:51234/callback"), ("code_challenge_method", "plain")],
    );
    let session = server.sign_in_session("alice", "password123").await;
    let to = return_link(server.client.get(&url).header("cookie", &session).send().await.expect("GET")).await;
    assert_eq!(to.port(), Some(51234));
    assert_eq!(param(&to, "error").as_deref(), Some("invalid_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_registered_redirect_uri_may_be_omitted() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    let url = server.authorize_url_from(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let res = server.get(&url).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(location(&res).as_str().starts_with(&format!("{}/login?", server.base)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_a_valid_client_are_shown_on_our_page_and_never_redirected() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    let url_with = |params: &[(&str, Option<&str>)]| {
        let mut all: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", STATE),
        ];
        for (k, v) in params {
            all.retain(|(key, _)| key != k);
            if let Some(v) = v {
                all.push((k, v));
            }
        }
        server.authorize_url_from(&all)
    };
    let short = "a".repeat(42);
    let plus = format!("{}+", "a".repeat(42));
    let other_path = format!("{}/other", server.base);
    // (case, parameters to set or (None) remove, expected error)
    type Case<'a> = (&'a str, Vec<(&'a str, Option<&'a str>)>, &'a str);
    let cases: Vec<Case> = vec![
        ("missing code_challenge", vec![("code_challenge", None)], "invalid_request"),
        ("method plain", vec![("code_challenge_method", Some("plain"))], "invalid_request"),
        ("missing method", vec![("code_challenge_method", None)], "invalid_request"),
        ("lowercase method", vec![("code_challenge_method", Some("s256"))], "invalid_request"),
        ("challenge too short", vec![("code_challenge", Some(&short))], "invalid_request"),
        ("challenge with +", vec![("code_challenge", Some(&plus))], "invalid_request"),
        ("response_type token", vec![("response_type", Some("token"))], "unsupported_response_type"),
        ("missing response_type", vec![("response_type", None)], "unsupported_response_type"),
        ("unknown scope", vec![("scope", Some("mcp superuser"))], "invalid_scope"),
        ("resource of another server", vec![("resource", Some("https://other.example.com/mcp"))], "invalid_target"),
        ("resource of another path", vec![("resource", Some(&other_path))], "invalid_target"),
    ];
    let session = server.sign_in_session("alice", "password123").await;
    for (name, params, want) in &cases {
        // No user has authenticated in this browser: our page, naming the client and the error.
        let res = server.get(&url_with(params)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(res.headers().get("location").is_none(), "{name}: no redirect");
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{name}");
        let html = res.text().await.expect("page");
        assert!(html.contains("<strong>Test client</strong>"), "{name}: names the client: {html}");
        assert!(html.contains(&format!("<code>{want}</code>")), "{name}: says what went wrong: {html}");
        assert!(!html.contains(REDIRECT_URI), "{name}: no way to the client: {html}");
        // A signed-in browser gets the same page, with a link back to the client.
        let res = server.client.get(url_with(params)).header("cookie", &session).send().await.expect("GET");
        let to = return_link(res).await;
        assert!(to.as_str().starts_with(&format!("{REDIRECT_URI}?")), "{name}: {to}");
        assert_eq!(param(&to, "error").as_deref(), Some(*want), "{name}: {to}");
        assert_eq!(param(&to, "state").as_deref(), Some(STATE), "{name}: {to}");
        assert_eq!(param(&to, "iss").as_deref(), Some(server.base.as_str()), "{name}: {to}");
        assert_eq!(param(&to, "code"), None, "{name}");
    }
    // Without a state, none comes back.
    let url = url_with(&[("state", None), ("code_challenge_method", Some("plain"))]);
    let to = return_link(server.client.get(url).header("cookie", &session).send().await.expect("GET")).await;
    assert_eq!(param(&to, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&to, "state"), None);
    // A session cookie that names no live session is no session.
    let res = server.client.get(url_with(&[])).header("cookie", "mcp_session=mcp_ss_forged").send().await;
    let res = res.expect("GET");
    assert_eq!(res.status(), StatusCode::FOUND, "a valid request still goes to the login page");
    let res = server.client.get(url_with(&cases[0].1)).header("cookie", "mcp_session=mcp_ss_forged").send().await;
    let res = res.expect("GET");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.expect("page");
    assert!(html.contains(&format!("<code>{}</code>", cases[0].2)), "the error page: {html}");
    assert!(!html.contains("Return to"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resource_may_name_this_mcp_endpoint() {
    let server = TestServer::start().await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    for resource in [format!("{}/mcp", server.base), format!("{}/mcp/", server.base)] {
        let res = server.get(&server.authorize_url(&client_id, &challenge, STATE, &[("resource", &resource)])).await;
        assert_eq!(res.status(), StatusCode::FOUND, "{resource}");
        assert!(location(&res).as_str().starts_with(&format!("{}/login?", server.base)), "{resource}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_scope_means_the_default_scope() {
    let server = TestServer::start().await;
    let tokens = server.sign_in("alice", "password123", &[("scope", "")]).await;
    assert_eq!(tokens.body["scope"], "mcp");
    let tokens = server.sign_in("alice", "password123", &[]).await;
    assert_eq!(tokens.body["scope"], "mcp", "no scope at all: the default too");
    let tokens = server.sign_in("alice", "password123", &[("scope", "admin mcp admin")]).await;
    assert_eq!(tokens.body["scope"], "admin mcp", "scopes are deduplicated");
}
