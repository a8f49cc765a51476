//! `Debug` never prints a secret: each type that holds one (a token, a client or session
//! secret, a password, a CSRF token, a password hash, a database password) is formatted with
//! `{:?}`, and neither the secret nor its full digest may appear.

use std::time::UNIX_EPOCH;

use crate::oauth_messages::{ClientCredentials, LoginContext, RegisteredClient, TokenResponse};
use crate::store::TokenHash;
use crate::store::{
    AccessTokenRecord, ClientRecord, CodeRecord, Grant, IssuedTokens, MemoryStore, PendingAuthorization,
    RefreshRotation, RefreshTokenRecord, SessionRecord, Store,
};
use crate::users::hash_password;
use crate::{Config, McpServer, Password, StaticUserStore, Tools};

const SECRET: &str = "mcp_xx_s3cr3t-7d3b9f0a";

#[tokio::test]
async fn debug_never_prints_a_secret() {
    let digest = TokenHash::of(SECRET);
    let mut config = Config::new("https://mcp.example.com").expect("valid");
    config.database_url = Some(format!("postgres://app:{SECRET}@db.internal/app"));
    let password = Password::new(SECRET);
    let phc = hash_password(&password).expect("hash");
    let users = StaticUserStore::new().with_user_hash("u-1", "carol", &phc).expect("a PHC hash");

    // Claims are personal data (an email address here): named, never shown.
    let mut claims = crate::claims::Claims::new();
    claims.insert("email".into(), SECRET.into());
    let mut grant = Grant::new("g-1", "u-1", "carol", "c-1", vec!["mcp".into()], "https://mcp.example.com/mcp");
    grant.claims = claims.clone();
    let mut user = crate::User::new("u-1", "carol");
    user.claims = claims.clone();
    let mut client = ClientRecord::new("c-1", "client_secret_basic", vec!["https://app/cb".into()], vec![], UNIX_EPOCH);
    client.secret_hash = Some(digest);
    let pending = PendingAuthorization::new(digest, "c-1", "https://app/cb", "c".repeat(43), "r", SECRET, UNIX_EPOCH);
    let store = MemoryStore::new();
    store.insert_pending(pending.clone()).await.expect("insert");
    let rotation = RefreshRotation::AlreadyRotated {
        grant: grant.clone(),
        rotated_at: UNIX_EPOCH,
        sealed_successor: Some(SECRET.as_bytes().to_vec()),
    };
    let tokens = IssuedTokens::new(
        AccessTokenRecord::new(digest, grant.clone(), UNIX_EPOCH),
        RefreshTokenRecord::new(digest, grant.clone(), UNIX_EPOCH),
    );
    let builder = McpServer::builder(config.clone()).user_store(users.clone()).store(MemoryStore::new());
    let builder_shown = format!("{builder:?}");
    let server = builder.tools(Tools::new()).build().expect("builds");
    let oauth = server.authorization_server().expect("the built-in authorization server");
    let response = TokenResponse {
        access_token: SECRET.into(),
        token_type: "Bearer".into(),
        expires_in: 60,
        refresh_token: SECRET.into(),
        scope: "mcp".into(),
    };
    let mut login = LoginContext::new("App", "app", vec!["mcp".into()], SECRET);
    login.can_remember = true;

    let shown: Vec<(&str, String)> = vec![
        ("Config", format!("{config:?}")),
        ("Password", format!("{password:?}")),
        ("StaticUserStore", format!("{users:?}")),
        ("ClientRecord", format!("{client:?}")),
        ("PendingAuthorization", format!("{pending:?}")),
        ("MemoryStore", format!("{store:?}")),
        ("CodeRecord", format!("{:?}", CodeRecord::new(digest, grant.clone(), "https://app/cb", "c", UNIX_EPOCH))),
        ("IssuedTokens", format!("{tokens:?}")),
        (
            "SessionRecord",
            format!("{:?}", SessionRecord::new(digest, "u-1", "carol", UNIX_EPOCH, UNIX_EPOCH).with_claims(claims)),
        ),
        ("Grant", format!("{grant:?}")),
        ("User", format!("{user:?}")),
        ("AlreadyRotated", format!("{rotation:?}")),
        ("McpServerBuilder", builder_shown),
        ("McpServer", format!("{server:?}")),
        ("Router", format!("{:?}", server.router())),
        ("OAuthServer", format!("{oauth:?}")),
        ("ClientCredentials", format!("{:?}", ClientCredentials::new(Some("c-1".into()), Some(SECRET.into())))),
        ("TokenResponse", format!("{response:?}")),
        ("LoginContext", format!("{login:?}")),
        (
            "RegisteredClient",
            format!("{:?}", RegisteredClient { record: client.clone(), client_secret: Some(SECRET.into()) }),
        ),
    ];
    let sealed_bytes = format!("{:?}", SECRET.as_bytes());
    let sealed_bytes = sealed_bytes.trim_matches(|c| c == '[' || c == ']');
    let phc_salt_and_hash = phc.rsplit('$').take(2).collect::<Vec<_>>();
    for (name, text) in &shown {
        assert!(text.contains(name), "{name} is not what was formatted: {text}");
        assert!(!text.contains("s3cr3t"), "{name} prints the secret: {text}");
        assert!(!text.contains(&digest.to_hex()), "{name} prints a whole digest: {text}");
        assert!(!text.contains(sealed_bytes), "{name} prints the secret's bytes: {text}");
        for part in &phc_salt_and_hash {
            assert!(!text.contains(part), "{name} prints the password hash: {text}");
        }
    }
    let by_name = |name: &str| &shown.iter().find(|(n, _)| *n == name).expect("formatted").1;
    assert!(by_name("PendingAuthorization").contains("csrf_token: [redacted]"));
    assert!(by_name("AlreadyRotated").contains("sealed_successor: Some([redacted])"));
    assert!(by_name("Config").contains("database_url: Some([redacted])"));
}
