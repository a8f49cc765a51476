//! A server that does not accept Client ID Metadata Documents, because
//! `Config::client_id_metadata_documents` is off or because the kit was built without its
//! `cimd` feature: the metadata says so, and an `https` client id gets the error page without
//! any fetch. Runs in every feature set.

mod common;

use common::{Pkce, TestServer, header};
use reqwest::StatusCode;
use serde_json::Value;

/// The server the metadata and the refusal are checked on: metadata documents off in the
/// configuration where the feature is on, the default configuration where it is off.
async fn server_without_documents() -> TestServer {
    TestServer::start_with(|mut c| {
        if cfg!(feature = "cimd") {
            c.client_id_metadata_documents = false;
        }
        assert!(!c.client_id_metadata_documents, "off by default without the `cimd` feature");
        c
    })
    .await
}

#[tokio::test]
async fn the_metadata_says_documents_are_not_supported_and_https_client_ids_are_refused() {
    let server = server_without_documents().await;
    let res = server.get(&server.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let metadata: Value = res.json().await.expect("JSON metadata");
    assert_eq!(metadata["client_id_metadata_document_supported"], Value::Bool(false));

    let challenge = Pkce::new().challenge;
    // Nothing listens there: the refusal must come before any fetch.
    let res = server.get(&server.authorize_url("https://127.0.0.1:1/client.json", &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none(), "no redirect to an unvalidated client");
    assert!(header(&res, "content-type").starts_with("text/html"), "the error page");
    let page = res.text().await.expect("the page");
    assert!(page.contains("<code>invalid_request</code>"), "{page}");
    assert!(page.contains("this server does not accept client ID metadata documents: register the client"), "{page}");
}

/// Asking for metadata documents from a build that cannot fetch them is a configuration error
/// that names the setting, not a server that advertises what it refuses.
#[cfg(not(feature = "cimd"))]
#[test]
fn turning_documents_on_without_the_feature_fails_the_build() {
    let mut config = mcp_oauth_kit::Config::new("http://127.0.0.1:1").expect("a config");
    config.client_id_metadata_documents = true;
    let err = mcp_oauth_kit::McpServer::builder(config)
        .user_store(common::users())
        .tools(common::tools())
        .build()
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "invalid configuration: client_id_metadata_documents: needs mcp-oauth-kit's `cimd` feature, \
         which this build left out"
    );
}
