//! What a copy of the database gives away: every secret the server hands out (access and
//! refresh tokens, codes, client secrets, sign-in session secrets) is kept only as a digest, so
//! a stolen file or backup holds nothing that works at the endpoints.

mod common;

use std::sync::Arc;

use common::{Pkce, STATE, TempDir, TestServer, param, tokens_of};
use mcp_oauth_kit::store::{SqlStore, Store};
use serde_json::json;

#[tokio::test]
async fn the_database_file_holds_no_secret_the_server_handed_out() {
    let dir = TempDir::new("secrets-at-rest");
    let url = format!("sqlite://{}", dir.path().join("kit.db").display());
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.expect("open SQLite"));
    let server = TestServer::start_with_store(store, |c| c).await;

    let confidential = server
        .register(json!({
            "client_name": "Confidential client",
            "redirect_uris": [common::REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await;
    let client_secret = confidential["client_secret"].as_str().expect("a client_secret").to_owned();

    let first = server.sign_in("alice", "password123", &[]).await;
    // A rotation leaves a sealed successor for the grace window: it must not be readable either.
    let second = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;

    let challenge = Pkce::new().challenge;
    let callback = server
        .login(&server.authorize_url(&first.client_id, &challenge, STATE, &[]), "bob", "hunter2")
        .await
        .expect("a code");
    let unredeemed_code = param(&callback, "code").expect("a code");
    let session = server.sign_in_session("alice", "password123").await;
    let session_secret = session.split_once('=').expect("name=value").1.to_owned();

    let secrets = [
        ("client secret", client_secret),
        ("first access token", first.access),
        ("first refresh token", first.refresh),
        ("second access token", second.access),
        ("second refresh token", second.refresh),
        ("unredeemed code", unredeemed_code),
        ("sign-in session secret", session_secret),
    ];
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("the temp dir") {
        let path = entry.expect("a dir entry").path();
        files.push(std::fs::read(&path).expect("a database file"));
    }
    let everything = files.concat();
    // The files are the live database (with its write-ahead log): the client's id is stored as is.
    assert!(contains(&everything, first.client_id.as_bytes()), "the test reads the database it wrote");
    for (what, secret) in &secrets {
        assert!(secret.len() >= 40, "{what} is a real secret: {secret}");
        // Any 16 characters of the random part (96 bits) count as a leak: a store that kept a
        // prefix, a suffix or a truncation of the secret would still give most of it away.
        let random_part = secret.splitn(3, '_').nth(2).expect("a secret prefixed `mcp_<kind>_`").as_bytes();
        for piece in random_part.windows(16) {
            // As text, and as the hex text in which the SQL stores keep digests.
            let lower: String = piece.iter().map(|b| format!("{b:02x}")).collect();
            for form in [piece, lower.as_bytes(), lower.to_uppercase().as_bytes()] {
                assert!(!contains(&everything, form), "the database holds part of the {what} in the clear");
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
