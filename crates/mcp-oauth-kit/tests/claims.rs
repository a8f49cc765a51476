//! Who is calling, beyond id and name: the claims a `UserStore` attaches to a user reach every
//! access token of the user's sign-in, tools read them typed, a refresh takes them afresh from
//! the user store, and a user store that hands over too much fails the sign-in cleanly.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{Pkce, STATE, TestServer, text_of, tokens_of};
use mcp_oauth_kit::auth::{AuthProvider, TokenRejection};
use mcp_oauth_kit::claims::MAX_CLAIMS_BYTES;
use mcp_oauth_kit::users::UserStoreError;
use mcp_oauth_kit::{
    AccessToken, Password, StaticUserStore, ToolDef, ToolError, ToolOutput, Tools, User, UserStore, async_trait,
};
use reqwest::StatusCode;
use serde_json::json;

/// Reads the caller's claims typed, and says what a mistyped one reports.
async fn profile(caller: AccessToken) -> Result<ToolOutput, ToolError> {
    let email: String = caller.claim("email")?;
    let roles: Vec<String> = caller.claim("roles")?;
    let org: Option<String> = caller.claim("org")?;
    let mistyped = caller.claim::<u32>("email").map_err(|e| e.to_string()).expect_err("email is no number");
    Ok(ToolOutput::text(format!("{email} {roles:?} {org:?}"))
        .with_structured(json!({ "claims": caller.claims(), "mistyped": mistyped })))
}

fn tools() -> Tools {
    Tools::new().tool(ToolDef::new("profile", "The caller's claims").handler(profile))
}

fn alice() -> User {
    User::new("user-alice", "alice").with_claim("email", "alice@example.com").with_claim("roles", vec!["admin", "dev"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_the_user_store_reach_the_tool() {
    let users = StaticUserStore::new().with_account(alice(), &Password::new("password123")).expect("hash");
    let server = TestServer::start_with_users_and_tools(users, tools()).await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let reply = server.call_tool(&t.access, &session, "profile").await;
    assert_eq!(text_of(&reply["result"]), r#"alice@example.com ["admin", "dev"] None"#);
    let structured = &reply["result"]["structuredContent"];
    assert_eq!(structured["claims"], json!({ "email": "alice@example.com", "roles": ["admin", "dev"] }));
    assert_eq!(
        structured["mistyped"],
        r#"the caller's "email" claim does not have the expected type: invalid type: string "alice@example.com", expected u32"#
    );
}

/// A user store whose one user, alice, the test can change.
#[derive(Clone)]
struct Directory {
    users: StaticUserStore,
    alice: Arc<Mutex<User>>,
}

#[async_trait]
impl UserStore for Directory {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        let found = self.users.authenticate(username, password).await?;
        Ok(found.map(|_| self.alice.lock().expect("alice").clone()))
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        let alice = self.alice.lock().expect("alice").clone();
        Ok((alice.id == id).then_some(alice))
    }
}

fn directory(alice: User) -> Directory {
    let users = StaticUserStore::new().with_user("user-alice", "alice", &Password::new("password123")).expect("hash");
    Directory { users, alice: Arc::new(Mutex::new(alice)) }
}

/// The claims are read again at each refresh: a changed email reaches the next access token,
/// while the token issued before keeps what it was issued with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_takes_the_users_current_claims() {
    let dir = directory(alice());
    let server = TestServer::start_with_users_and_tools(dir.clone(), tools()).await;
    let first = server.sign_in("alice", "password123", &[]).await;
    *dir.alice.lock().expect("alice") = alice().with_claim("email", "alice@new.example.com").with_claim("org", "acme");
    let second = tokens_of(&first.client_id, server.refresh(&first.client_id, &first.refresh).await).await;

    let session = server.initialize(&second.access).await;
    let reply = server.call_tool(&second.access, &session, "profile").await;
    assert_eq!(text_of(&reply["result"]), r#"alice@new.example.com ["admin", "dev"] Some("acme")"#);
    let session = server.initialize(&first.access).await;
    let reply = server.call_tool(&first.access, &session, "profile").await;
    assert_eq!(text_of(&reply["result"]), r#"alice@example.com ["admin", "dev"] None"#);
}

/// A user store that hands over more than `MAX_CLAIMS_BYTES` of claims: the sign-in fails with
/// a 500 page and issues no code; at a refresh, `server_error`; nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_claims_fail_the_sign_in_and_the_refresh() {
    let dir = directory(alice().with_claim("bio", "x".repeat(MAX_CLAIMS_BYTES)));
    let server = TestServer::start_with_users_and_tools(dir.clone(), tools()).await;
    let client_id = server.register_public().await;
    let challenge = Pkce::new().challenge;
    let auth = server.authorize_url(&client_id, &challenge, STATE, &[]);
    let refused = server.login(&auth, "alice", "password123").await.expect_err("no code");
    assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(refused.headers().get("location").is_none(), "a page, not a redirect");

    // Signed in while the claims were small; grown past the bound before the refresh.
    *dir.alice.lock().expect("alice") = alice();
    let t = server.sign_in("alice", "password123", &[]).await;
    *dir.alice.lock().expect("alice") = alice().with_claim("bio", "x".repeat(MAX_CLAIMS_BYTES));
    let res = server.refresh(&t.client_id, &t.refresh).await;
    let (status, error) = common::oauth_error(res).await;
    assert_eq!((status, error.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "server_error"));
}

/// A verifier of tokens minted elsewhere, as an external JWT verifier would build its callers.
#[derive(Debug)]
struct ExternalVerifier;

#[async_trait]
impl AuthProvider for ExternalVerifier {
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        if token != "ext-token-of-dora" {
            return Err(TokenRejection::Invalid);
        }
        Ok(AccessToken::builder("idp|7", SystemTime::now() + Duration::from_secs(3600))
            .username("dora")
            .client_id("ext-client")
            .scopes(["mcp"])
            .claim("email", "dora@idp.example")
            .claim("roles", vec!["viewer"])
            .claim("org", "idp-org")
            .build())
    }

    fn authorization_servers(&self) -> Vec<String> {
        vec!["https://idp.example".to_owned()]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_a_token_verifier_reach_the_tool() {
    let server = TestServer::start_with_provider_and_tools(ExternalVerifier, tools()).await;
    let session = server.initialize("ext-token-of-dora").await;
    let reply = server.call_tool("ext-token-of-dora", &session, "profile").await;
    assert_eq!(text_of(&reply["result"]), r#"dora@idp.example ["viewer"] Some("idp-org")"#);
}
