//! The MCP endpoint's bearer guard: another user's session, and tokens that are garbage,
//! unsigned, in the wrong place, of the wrong scheme, expired or revoked.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use anyhow::Context as _;

use crate::client::{ALICE, App, BOB, CLIENT_REDIRECT, MCP_ACCEPT, MCP_PROTOCOL, Target};
use crate::report::{Outcome, Report};

/// The longest access-token lifetime the expiry probe waits out.
const MAX_TTL_SECS: u64 = 5;

pub(crate) async fn run(t: &Target, app: &App, report: &mut Report) {
    report.record("mcp/session-hijack", session_hijack(t, app).await);
    report.record("bearer/no-token", no_token(t).await);
    report.record("bearer/garbage", presented(t, "Bearer garbage").await);
    report.record("bearer/alg-none-jwt", presented(t, &format!("Bearer {}", unsigned_jwt(t))).await);
    let basic = format!("Basic {}", STANDARD.encode(format!("{}:{}", ALICE.name, ALICE.password)));
    report.record("bearer/basic-scheme", presented(t, &basic).await);
    report.record("bearer/query-parameter", query_parameter(t, app).await);
    report.record("bearer/revoked", revoked(t, app).await);
}

/// Alice opens a session; bob, with a perfectly valid token of his own, drives and then
/// deletes it.
async fn session_hijack(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let alice = t.tokens(app, ALICE).await?;
    let bob = t.tokens(app, BOB).await?;
    let init = t.mcp_initialize(&alice.access).await?;
    o.token_accepted(&init, "alice's initialize");
    let Some(session) = init.header("mcp-session-id").map(str::to_owned) else {
        o.expect(false, "alice's initialize returned no mcp-session-id");
        return Ok(o);
    };
    let in_session = |token: &str, body: serde_json::Value| {
        t.mcp(Some(token))
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", MCP_PROTOCOL)
            .body(body.to_string())
    };
    let own =
        t.send(in_session(&alice.access, json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))).await?;
    o.saw(format!("alice in her session: {}", own.status.as_u16()));
    o.expect(own.status == StatusCode::ACCEPTED, "control failed: alice cannot use her own session (expected 202)");

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "roll_dice", "arguments": {"sides": 6}}});
    let hijack = t.send(in_session(&bob.access, call)).await?;
    o.saw(format!("bob's tools/call in it: {}", hijack.summary()));
    o.expect(hijack.status == StatusCode::FORBIDDEN, format!("expected 403, got {}", hijack.status));
    o.expect(!hijack.body.contains("rolled"), "bob's call ran in alice's session");

    let delete = t
        .request(Method::DELETE, "/mcp")
        .bearer_auth(&bob.access)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", MCP_PROTOCOL);
    let delete = t.send(delete).await?;
    o.saw(format!("bob's DELETE of it: {}", delete.status.as_u16()));
    o.expect(delete.status == StatusCode::FORBIDDEN, format!("expected 403 for the DELETE, got {}", delete.status));
    Ok(o)
}

async fn no_token(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.send(t.mcp(None).body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)).await?;
    o.bearer_refused(&reply, false);
    Ok(o)
}

/// `/mcp` with this `Authorization` header.
async fn presented(t: &Target, authorization: &str) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let req =
        t.mcp(None).header(AUTHORIZATION, authorization).body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    o.bearer_refused(&t.send(req).await?, true);
    Ok(o)
}

/// A JWT claiming to be alice's token for this resource, with `alg: none` and no signature.
fn unsigned_jwt(t: &Target) -> String {
    let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = part(json!({"alg": "none", "typ": "JWT"}));
    let claims = part(json!({
        "iss": t.issuer(),
        "sub": "user-alice",
        "aud": t.resource(),
        "scope": "mcp",
        "exp": 4_102_444_800u64,
    }));
    format!("{header}.{claims}.")
}

/// A valid token, but in the query string (RFC 6750 §2.3, which OAuth 2.1 forbids): the
/// guard must not read it there.
async fn query_parameter(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let tokens = t.tokens(app, ALICE).await?;
    // Tokens are base64url behind a prefix: nothing to escape.
    let req = t
        .post(&format!("/mcp?access_token={}", tokens.access))
        .header(ACCEPT, MCP_ACCEPT)
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    o.bearer_refused(&t.send(req).await?, false);
    o.token_accepted(&t.mcp_initialize(&tokens.access).await?, "the same token in the header");
    Ok(o)
}

async fn revoked(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let tokens = t.tokens(app, ALICE).await?;
    let twin = t.tokens(app, ALICE).await?;
    o.token_accepted(&t.mcp_initialize(&tokens.access).await?, "the access token before revocation");
    let revoke = t.revoke(app, &tokens.access).await?;
    o.saw(format!("/revoke: {}", revoke.status.as_u16()));
    o.expect(revoke.status == StatusCode::OK, "revocation was not accepted");
    o.revoked_token_refused(&t.mcp_initialize(&tokens.access).await?, &tokens);
    o.token_accepted(&t.mcp_initialize(&twin.access).await?, "a twin token of another grant, not revoked");
    // RFC 7009: revoking the refresh token ends the grant.
    let revoke = t.revoke(app, &tokens.refresh).await?;
    o.expect(revoke.status == StatusCode::OK, "revocation of the refresh token was not accepted");
    let refresh = t.refresh(app, &tokens.refresh).await?;
    o.saw("revoked refresh token:");
    o.oauth_error(&refresh, StatusCode::BAD_REQUEST, "invalid_grant");
    Ok(o)
}

/// Waits out the access token's lifetime on the `--expiry-server`, which runs with
/// `ACCESS_TOKEN_TTL_SECS=3`.
pub(crate) async fn expired(base: &str) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let t = Target::connect(base).await.context("the --expiry-server")?;
    let app = t.register_app("Expiry probe", &[CLIENT_REDIRECT]).await?;
    let tokens = t.tokens(&app, ALICE).await?;
    if tokens.expires_in > MAX_TTL_SECS {
        o.expect(
            false,
            format!("expires_in is {} s: start the --expiry-server with ACCESS_TOKEN_TTL_SECS=3", tokens.expires_in),
        );
        return Ok(o);
    }
    o.token_accepted(&t.mcp_initialize(&tokens.access).await?, "the access token before it expires");
    let deadline = tokens.received + std::time::Duration::from_millis(tokens.expires_in * 1000 + 1000);
    tokio::time::sleep_until(deadline.into()).await;
    o.saw(format!("{} s after issue:", tokens.expires_in + 1));
    o.bearer_refused(&t.mcp_initialize(&tokens.access).await?, true);
    Ok(o)
}
