//! Token introspection (`POST /introspect`, RFC 7662) under attack: a public client asking, a
//! wrong secret, and a registered confidential client scanning tokens that are not its own.
//!
//! The documented policy (docs/SECURITY.md): only confidential clients that authenticate, only
//! their own access tokens, and `{"active":false}` with nothing more for everything else.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::json;

use crate::client::{ALICE, App, CLIENT_REDIRECT, Reply, Target};
use crate::report::{Outcome, Report};

pub(crate) async fn run(t: &Target, app: &App, report: &mut Report) {
    report.record("introspect/public-client-refused", public_client(t, app).await);
    report.record("introspect/wrong-secret-refused", wrong_secret(t).await);
    report.record("introspect/scanning-foreign-and-forged-tokens", scanning(t, app).await);
}

/// A confidential client an attacker registers for themselves: its id and secret.
async fn attacker(t: &Target) -> anyhow::Result<(String, String)> {
    let reply = t
        .register(&json!({
            "client_name": "Token scanner",
            "redirect_uris": [CLIENT_REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .await?;
    let body = reply.json();
    match (body["client_id"].as_str(), body["client_secret"].as_str()) {
        (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
        _ => anyhow::bail!("registering a confidential client failed: {}", reply.summary()),
    }
}

async fn introspect(t: &Target, id: &str, secret: &str, token: &str) -> anyhow::Result<Reply> {
    let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    t.send(t.post("/introspect").header("authorization", basic).form(&[("token", token)])).await
}

/// 401 `invalid_client` with a Basic challenge.
fn refused(o: &mut Outcome, reply: &Reply) {
    o.oauth_error(reply, StatusCode::UNAUTHORIZED, "invalid_client");
    o.expect(reply.header("www-authenticate").is_some_and(|c| c.starts_with("Basic")), "no Basic challenge");
}

/// The legitimate public MCP client asks about its own token: it has no secret, so it may not.
async fn public_client(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let tokens = t.tokens(app, ALICE).await?;
    let reply = t
        .send(t.post("/introspect").form(&[("token", tokens.access.as_str()), ("client_id", app.client_id.as_str())]))
        .await?;
    refused(&mut o, &reply);
    Ok(o)
}

async fn wrong_secret(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let (id, _) = attacker(t).await?;
    refused(&mut o, &introspect(t, &id, "guessed-secret", "mcp_at_anything").await?);
    Ok(o)
}

/// A registered confidential client presents alice's real token (issued to another client),
/// a refresh token, a made-up token and an oversized one: nothing but `{"active":false}`.
async fn scanning(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let (id, secret) = attacker(t).await?;
    let tokens = t.tokens(app, ALICE).await?;
    let forged = format!("mcp_at_{}", "A".repeat(43));
    let huge = "x".repeat(8 * 1024);
    for (what, token) in [
        ("alice's access token of another client", tokens.access.as_str()),
        ("a refresh token", tokens.refresh.as_str()),
        ("a made-up token", forged.as_str()),
        ("an 8 KiB token", huge.as_str()),
    ] {
        let reply = introspect(t, &id, &secret, token).await?;
        o.saw(format!("{what}: {}", reply.summary()));
        o.expect(reply.status == StatusCode::OK, format!("{what}: expected 200, got {}", reply.summary()));
        o.expect(reply.json() == json!({ "active": false }), format!("{what}: said more than active=false"));
    }
    Ok(o)
}
