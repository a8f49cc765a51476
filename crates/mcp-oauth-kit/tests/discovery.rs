//! Discovery: RFC 9728 protected-resource metadata, RFC 8414 authorization-server metadata,
//! the 401 challenge that points a client at them, and the router's Host / Origin / CORS rules.

mod common;

use common::{TestServer, header};
use reqwest::StatusCode;
use reqwest::header::{HOST, ORIGIN};
use serde_json::{Value, json};

async fn get_json(server: &TestServer, path: &str) -> Value {
    let res = server.get(&server.url(path)).await;
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    assert!(header(&res, "content-type").starts_with("application/json"), "GET {path}");
    res.json().await.expect("JSON metadata")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata_is_served_at_every_form_of_its_path() {
    let server = TestServer::start().await;
    let paths = [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp/",
    ];
    for path in paths {
        let prm = get_json(&server, path).await;
        assert_eq!(prm["resource"], format!("{}/mcp", server.base), "{path}");
        assert_eq!(prm["authorization_servers"], json!([server.base]), "{path}");
        assert_eq!(prm["scopes_supported"], json!(["mcp", "admin"]), "{path}");
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata_of_another_resource_is_not_found() {
    let server = TestServer::start().await;
    for path in ["/.well-known/oauth-protected-resource/other", "/.well-known/oauth-protected-resource/mcpx"] {
        let res = server.get(&server.url(path)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_metadata_is_served_at_both_well_known_paths() {
    let server = TestServer::start().await;
    let base = &server.base;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let asm = get_json(&server, path).await;
        assert_eq!(asm["issuer"], json!(base), "{path}: the issuer is the public URL exactly");
        assert_eq!(asm["authorization_endpoint"], format!("{base}/authorize"), "{path}");
        assert_eq!(asm["token_endpoint"], format!("{base}/token"), "{path}");
        assert_eq!(asm["registration_endpoint"], format!("{base}/register"), "{path}");
        assert_eq!(asm["revocation_endpoint"], format!("{base}/revoke"), "{path}");
        assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]), "{path}: S256 only");
        assert_eq!(asm["response_types_supported"], json!(["code"]), "{path}");
        assert_eq!(asm["grant_types_supported"], json!(["authorization_code", "refresh_token"]), "{path}");
        assert_eq!(asm["authorization_response_iss_parameter_supported"], json!(true), "{path}");
        assert_eq!(asm["scopes_supported"], json!(["mcp", "admin"]), "{path}");
        let methods = asm["token_endpoint_auth_methods_supported"].as_array().expect("auth methods");
        assert!(methods.contains(&json!("none")), "{path}: public clients are supported");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_without_a_token_gets_a_challenge_pointing_at_the_metadata() {
    let server = TestServer::start().await;
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);
    for path in ["/mcp", "/mcp/"] {
        let res = server.mcp_at(path, None, &common::initialize_request(), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = header(&res, "www-authenticate");
        assert!(challenge.starts_with("Bearer "), "{path}: {challenge}");
        assert!(challenge.contains(&format!("resource_metadata=\"{prm_url}\"")), "{path}: {challenge}");
        assert!(!challenge.contains("error="), "{path}: no error code without a token (RFC 6750 §3.1): {challenge}");
    }
    let res = server.get(&server.url("/mcp")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "GET /mcp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_header_is_refused() {
    let server = TestServer::start().await;
    let port = server.base.rsplit(':').next().expect("a port").to_owned();
    let cases = [
        ("evil.example.com", StatusCode::FORBIDDEN),
        ("evil.example.com:80", StatusCode::FORBIDDEN),
        ("127.0.0.1", StatusCode::FORBIDDEN),
        ("127.0.0.1:1", StatusCode::FORBIDDEN),
        (&*format!("127.0.0.1:{port}"), StatusCode::OK),
        (&*format!("localhost:{port}"), StatusCode::OK),
    ];
    for (host, want) in cases {
        for path in ["/.well-known/oauth-authorization-server", "/"] {
            let res = server.client.get(server.url(path)).header(HOST, host).send().await.expect("GET");
            assert_eq!(res.status(), want, "Host: {host} on {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_at_the_mcp_endpoint() {
    let server = TestServer::start().await;
    let tokens = server.sign_in("alice", "password123", &[]).await;
    for origin in ["https://evil.example.com", "http://127.0.0.1:1", "null"] {
        let res = server
            .client
            .post(server.url("/mcp"))
            .bearer_auth(&tokens.access)
            .header(ORIGIN, origin)
            .header("accept", "application/json, text/event-stream")
            .json(&common::initialize_request())
            .send()
            .await
            .expect("POST /mcp");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "Origin: {origin}");
        assert!(header(&res, "access-control-allow-origin").is_empty(), "Origin: {origin}");
    }
    // The server's own origin passes, and gets CORS headers.
    let res = server
        .client
        .post(server.url("/mcp"))
        .bearer_auth(&tokens.access)
        .header(ORIGIN, &server.base)
        .header("accept", "application/json, text/event-stream")
        .json(&common::initialize_request())
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "access-control-allow-origin"), server.base);
    assert!(header(&res, "access-control-expose-headers").contains("mcp-session-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_answered_for_allowed_origins_only() {
    let server = TestServer::start().await;
    let preflight = |origin: &str, path: &str| {
        server
            .client
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    for path in ["/mcp", "/token", "/register"] {
        let res = preflight(&server.base, path).await.expect("OPTIONS");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(header(&res, "access-control-allow-origin"), server.base, "{path}");
        assert!(header(&res, "access-control-allow-methods").contains("POST"), "{path}");
        assert!(header(&res, "access-control-allow-headers").contains("authorization"), "{path}");

        let res = preflight("https://evil.example.com", path).await.expect("OPTIONS");
        assert!(header(&res, "access-control-allow-origin").is_empty(), "{path}: a foreign origin gets no CORS grant");
    }
    // Metadata is public: a foreign origin's preflight is not refused, but grants nothing.
    let res =
        preflight("https://evil.example.com", "/.well-known/oauth-protected-resource/mcp").await.expect("OPTIONS");
    assert!(header(&res, "access-control-allow-origin").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_readable_from_any_origin() {
    let server = TestServer::start().await;
    let res = server
        .client
        .get(server.url("/.well-known/oauth-authorization-server"))
        .header(ORIGIN, "https://claude.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods() {
    let server = TestServer::start().await;
    let cases = [
        (reqwest::Method::GET, "/nope", StatusCode::NOT_FOUND),
        (reqwest::Method::GET, "/.well-known/nope", StatusCode::NOT_FOUND),
        (reqwest::Method::GET, "/mcpx", StatusCode::NOT_FOUND),
        (reqwest::Method::POST, "/nope", StatusCode::NOT_FOUND),
        (reqwest::Method::GET, "/", StatusCode::OK),
        (reqwest::Method::GET, "/token", StatusCode::METHOD_NOT_ALLOWED),
        (reqwest::Method::GET, "/register", StatusCode::METHOD_NOT_ALLOWED),
        (reqwest::Method::PUT, "/authorize", StatusCode::METHOD_NOT_ALLOWED),
    ];
    for (method, path, want) in cases {
        let res = server.client.request(method.clone(), server.url(path)).send().await.expect("request");
        assert_eq!(res.status(), want, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_urls_come_from_the_public_url_never_from_the_host_header() {
    // Behind a TLS proxy: the public URL is https, the proxy talks to us on 127.0.0.1.
    let server = TestServer::start_with(|c| {
        let mut public = mcp_oauth_kit::Config::new("https://mcp.example.com")
            .expect("valid")
            .with_scopes(&["mcp", "admin"], &["mcp"]);
        public.listen_addr = c.listen_addr;
        public.extra_allowed_hosts = vec![c.listen_addr.to_string()];
        public
    })
    .await;
    for host in ["mcp.example.com", "MCP.example.com:443", &server.base["http://".len()..]] {
        let asm: Value = server
            .client
            .get(server.url("/.well-known/oauth-authorization-server"))
            .header(HOST, host)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        assert_eq!(asm["issuer"], "https://mcp.example.com", "Host: {host}");
        assert_eq!(asm["token_endpoint"], "https://mcp.example.com/token", "Host: {host}");
        let res = server.client.get(server.url("/.well-known/oauth-protected-resource/mcp")).header(HOST, host);
        let prm: Value = res.send().await.expect("GET").json().await.expect("JSON");
        assert_eq!(prm["resource"], "https://mcp.example.com/mcp", "Host: {host}");
        let res =
            server.client.post(server.url("/mcp")).header(HOST, host).json(&json!({})).send().await.expect("POST");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            header(&res, "www-authenticate")
                .contains("resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""),
            "Host: {host}"
        );
    }
    let res = server
        .client
        .get(server.url("/.well-known/oauth-authorization-server"))
        .header(HOST, "evil.example.com")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a Host that is neither public nor configured");
}
