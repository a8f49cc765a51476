//! Client ID Metadata Documents end to end: an `https`-style `client_id` that names its own
//! metadata (served here over loopback `http`, which only `danger_allow_private_cimd_hosts`
//! permits) is fetched, validated, shown on the consent page with its host, and usable at
//! `/token`; a document that lies about its `client_id` is refused; private hosts are refused
//! by default.

mod common;

use common::{REDIRECT_URI, TestServer, location, param, pkce, serve_document};
use reqwest::StatusCode;

fn document(client_id: &str) -> String {
    serde_json::json!({
        "client_id": client_id,
        "client_name": "Doc Client",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_client_signs_in_without_registering() {
    let server = TestServer::start_with(|mut c| {
        c.danger_allow_private_cimd_hosts = true;
        c
    })
    .await;
    let client_id = serve_document("/oauth/client.json", document).await;
    let (verifier, challenge) = pkce();
    let res = server.get(&server.authorize_url(&client_id, &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let login = location(&res);
    assert!(login.path().ends_with("/login"), "{login}");
    let page = server.get(login.as_str()).await.text().await.expect("page");
    assert!(page.contains("Doc Client (127.0.0.1)"), "the consent page names the document's host");

    let auth = server.authorize_url(&client_id, &challenge, "st", &[]);
    let callback = server.login(&auth, "alice", "password123").await.expect("a code");
    let code = param(&callback, "code").expect("a code");
    let token = server.exchange(&client_id, &code, &verifier).await;
    assert_eq!(token.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_that_lie_or_live_on_private_hosts_are_refused() {
    // A document whose client_id names another URL.
    let lenient = TestServer::start_with(|mut c| {
        c.danger_allow_private_cimd_hosts = true;
        c
    })
    .await;
    let liar = serve_document("/c.json", |_| document("https://other.example/c.json")).await;
    let (_, challenge) = pkce();
    let res = lenient.get(&lenient.authorize_url(&liar, &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());

    // By default: no private or loopback hosts, no plain http.
    let strict = TestServer::start().await;
    let honest = serve_document("/c.json", document).await;
    let res = strict.get(&strict.authorize_url(&honest, &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
}
