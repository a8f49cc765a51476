//! RFC 7591 dynamic client registration at `POST /register`: what is accepted, and each way a
//! registration is refused (status and exact `error` code), and registrations nobody used being
//! swept.

mod common;

use std::time::{Duration, Instant};

use common::{Pkce, REDIRECT_URI, STATE, TestServer, header, oauth_error};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_is_registered_without_a_secret() {
    let server = TestServer::start().await;
    let uris = json!([REDIRECT_URI, "https://app.example.com/oauth/callback"]);
    let res = server
        .register_raw(&json!({
            "client_name": "Public app",
            "redirect_uris": uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "mcp",
        }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(header(&res, "cache-control"), "no-store");
    let reg: Value = res.json().await.expect("JSON");
    assert!(reg["client_id"].as_str().is_some_and(|id| !id.is_empty()), "{reg}");
    assert_eq!(reg["redirect_uris"], uris, "redirect URIs are echoed exactly");
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert_eq!(reg["client_name"], "Public app");
    assert_eq!(reg["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert!(reg.get("client_secret").is_none(), "a public client gets no secret: {reg}");
    assert!(reg["client_id_issued_at"].as_u64().is_some_and(|t| t > 1_600_000_000), "seconds since the epoch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_clients_get_a_secret() {
    let server = TestServer::start().await;
    for method in [None, Some("client_secret_basic"), Some("client_secret_post")] {
        let mut body = json!({ "redirect_uris": [REDIRECT_URI] });
        if let Some(m) = method {
            body["token_endpoint_auth_method"] = json!(m);
        }
        let reg = server.register(body).await;
        assert_eq!(reg["token_endpoint_auth_method"], method.unwrap_or("client_secret_basic"), "{method:?}");
        assert!(reg["client_secret"].as_str().is_some_and(|s| s.len() >= 32), "{method:?}: {reg}");
        assert_eq!(reg["client_secret_expires_at"], 0, "{method:?}");
    }
    let a = server.register(json!({ "redirect_uris": [REDIRECT_URI] })).await;
    let b = server.register(json!({ "redirect_uris": [REDIRECT_URI] })).await;
    assert_ne!(a["client_id"], b["client_id"]);
    assert_ne!(a["client_secret"], b["client_secret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_app_redirect_uris_are_accepted() {
    let server = TestServer::start().await;
    for uri in [
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "http://localhost:33418/callback",
        "http://[::1]/cb",
        "http://127.0.0.1/cb",
        "com.example.app:/oauth2redirect",
    ] {
        let reg = server.register(json!({ "redirect_uris": [uri], "token_endpoint_auth_method": "none" })).await;
        assert_eq!(reg["redirect_uris"], json!([uri]), "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_is_refused_with_the_right_code() {
    let server = TestServer::start().await;
    let ok = || json!({ "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none" });
    let with = |key: &str, value: Value| {
        let mut body = ok();
        body[key] = value;
        body
    };
    let without_uris = {
        let mut body = ok();
        body.as_object_mut().expect("object").remove("redirect_uris");
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("remote http", with("redirect_uris", json!(["http://app.example.com/cb"])), "invalid_redirect_uri"),
        ("javascript:", with("redirect_uris", json!(["javascript:alert(1)"])), "invalid_redirect_uri"),
        ("data:", with("redirect_uris", json!(["data:text/html,hi"])), "invalid_redirect_uri"),
        ("file:", with("redirect_uris", json!(["file:///etc/passwd"])), "invalid_redirect_uri"),
        ("fragment", with("redirect_uris", json!(["https://app.example.com/cb#x"])), "invalid_redirect_uri"),
        ("credentials", with("redirect_uris", json!(["https://u:p@app.example.com/cb"])), "invalid_redirect_uri"),
        ("relative", with("redirect_uris", json!(["/callback"])), "invalid_redirect_uri"),
        (
            "one bad among good",
            with("redirect_uris", json!([REDIRECT_URI, "http://evil.example/cb"])),
            "invalid_redirect_uri",
        ),
        ("empty list", with("redirect_uris", json!([])), "invalid_redirect_uri"),
        ("missing redirect_uris", without_uris, "invalid_redirect_uri"),
        (
            "unknown auth method",
            with("token_endpoint_auth_method", json!("private_key_jwt")),
            "invalid_client_metadata",
        ),
        (
            "grant type password",
            with("grant_types", json!(["authorization_code", "password"])),
            "invalid_client_metadata",
        ),
        ("grant type implicit", with("grant_types", json!(["implicit"])), "invalid_client_metadata"),
        ("response type token", with("response_types", json!(["token"])), "invalid_client_metadata"),
        ("unknown scope", with("scope", json!("mcp superuser")), "invalid_client_metadata"),
        ("redirect_uris is a string", with("redirect_uris", json!("x")), "invalid_client_metadata"),
        ("client_name is a number", with("client_name", json!(42)), "invalid_client_metadata"),
        ("grant_types is an object", with("grant_types", json!({ "a": 1 })), "invalid_client_metadata"),
        ("body is an array", json!([REDIRECT_URI]), "invalid_client_metadata"),
    ];
    for (name, body, want) in cases {
        let res = server.register_raw(&body).await;
        assert_eq!(oauth_error(res).await, (StatusCode::BAD_REQUEST, want.to_owned()), "{name}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused() {
    let server = TestServer::start().await;
    let post = |content_type: &'static str, body: &'static str| {
        server.client.post(server.url("/register")).header(CONTENT_TYPE, content_type).body(body).send()
    };
    let valid = r#"{"redirect_uris":["http://127.0.0.1:9999/callback"]}"#;
    let cases = [
        ("malformed JSON", "application/json", r#"{"redirect_uris": ["#, "invalid_client_metadata"),
        ("empty body", "application/json", "", "invalid_client_metadata"),
        ("form content type", "application/x-www-form-urlencoded", valid, "invalid_request"),
        ("text content type", "text/plain", valid, "invalid_request"),
    ];
    for (name, content_type, body, want) in cases {
        let res = post(content_type, body).await.expect("POST /register");
        assert_eq!(oauth_error(res).await, (StatusCode::BAD_REQUEST, want.to_owned()), "{name}");
    }
    let res = post("application/json; charset=utf-8", valid).await.expect("POST /register");
    assert_eq!(res.status(), StatusCode::CREATED, "a charset parameter is fine");
    let res = server.client.post(server.url("/register")).body(valid).send().await.expect("POST /register");
    assert_eq!(oauth_error(res).await, (StatusCode::BAD_REQUEST, "invalid_request".to_owned()), "no content type");
}

/// serde skips an unknown field's value without its recursion limit: the nesting bound must
/// refuse it before serde runs, while a deep string and ordinary nesting pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_refused() {
    let server = TestServer::start().await;
    let post = |body: String| {
        server.client.post(server.url("/register")).header(CONTENT_TYPE, "application/json").body(body).send()
    };
    let with_extra = |extra: &str| format!(r#"{{"redirect_uris":["{REDIRECT_URI}"],"extension":{extra}}}"#);
    let deep = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let res = post(with_extra(&deep(10_000))).await.expect("POST /register");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| d.contains("deeper than 16")), "{body}");
    let res = post(with_extra(&deep(16))).await.expect("POST /register");
    assert_eq!(oauth_error(res).await.1, "invalid_client_metadata", "17 levels with the metadata object");
    let res = post(with_extra(&deep(15))).await.expect("POST /register");
    assert_eq!(res.status(), StatusCode::CREATED, "16 levels are fine");
    let brackets = json!({ "redirect_uris": [REDIRECT_URI], "client_name": "[{".repeat(1000) });
    assert_eq!(server.register_raw(&brackets).await.status(), StatusCode::CREATED, "brackets in a string");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_with_413() {
    let server = TestServer::start().await;
    let body = json!({ "redirect_uris": [REDIRECT_URI], "client_name": "x".repeat(65 * 1024) });
    let res = server.register_raw(&body).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The server is still there.
    server.register_public().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_names_are_stored_without_control_characters() {
    let server = TestServer::start().await;
    let reg =
        server.register(json!({ "redirect_uris": [REDIRECT_URI], "client_name": "Evil\r\nApp\u{0}\u{202e}" })).await;
    assert_eq!(reg["client_name"], "EvilApp");
}

/// A registration that no user signed in to is swept after `unused_client_ttl`; one that a
/// user signed in to stays, and its tokens keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_nobody_used_are_swept() {
    let (server, clock) = TestServer::start_on_clock(|mut c| {
        c.sweep_interval = Duration::from_millis(200);
        c
    })
    .await;
    let unused = server.register_public().await;
    let used = server.register_public().await;
    let (_, error) = oauth_error(server.exchange(&unused, "mcp_code_bogus", &"v".repeat(43)).await).await;
    assert_eq!(error, "invalid_grant", "a new registration is known");
    let tokens = server.sign_in_client(&used, "alice", "password123", &[]).await;
    // Older than `unused_client_ttl` (24 hours by default) by a millisecond.
    clock.advance(Duration::from_secs(24 * 3600) + Duration::from_millis(1));
    // Polled at the token endpoint: an `/authorize` would start a sign-in, which keeps the
    // client. Bounded: the sweep runs every 200 ms of real time.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, error) = oauth_error(server.exchange(&unused, "mcp_code_bogus", &"v".repeat(43)).await).await;
        if error == "invalid_client" {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            break;
        }
        assert_eq!(error, "invalid_grant", "the unused client is known until swept");
        assert!(Instant::now() < deadline, "the unused registration was not swept within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let challenge = Pkce::new().challenge;
    let res = server.get(&server.authorize_url(&used, &challenge, STATE, &[])).await;
    assert_eq!(res.status(), StatusCode::FOUND, "the used client stays");
    let res = server.refresh(&used, &tokens.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "and its refresh token still works");
}
