//! DNS rebinding and cross-origin reads: a page on `evil.example` whose name now resolves to
//! the server sends `Host: evil.example`; a page that merely calls the server sends its own
//! `Origin`. Neither may reach the MCP or OAuth endpoints, and preflights must not grant it.

use reqwest::header::{HOST, ORIGIN};
use reqwest::{Method, RequestBuilder, StatusCode};

use crate::client::{MCP_ACCEPT, Target};
use crate::report::{Outcome, Report};

const EVIL_ORIGIN: &str = "https://evil.example";

pub(crate) async fn run(t: &Target, report: &mut Report) {
    let evil_with_port = format!("evil.example:{}", t.port());
    let hosts: [(&str, &str, RequestBuilder); 5] = [
        ("rebinding/host-mcp", "evil.example", mcp_call(t)),
        ("rebinding/host-with-port-mcp", evil_with_port.as_str(), mcp_call(t)),
        ("rebinding/host-token", "evil.example", token_call(t)),
        ("rebinding/host-resource-metadata", "evil.example", t.get("/.well-known/oauth-protected-resource/mcp")),
        ("rebinding/host-as-metadata", "evil.example", t.get("/.well-known/oauth-authorization-server")),
    ];
    for (id, host, req) in hosts {
        report.record(id, forbidden(t, req.header(HOST, host)).await);
    }
    report.record("rebinding/origin-mcp", forbidden(t, mcp_call(t).header(ORIGIN, EVIL_ORIGIN)).await);
    report.record("rebinding/origin-null-mcp", forbidden(t, mcp_call(t).header(ORIGIN, "null")).await);
    report.record("rebinding/origin-token", forbidden(t, token_call(t).header(ORIGIN, EVIL_ORIGIN)).await);
    report.record("cors/preflight-evil-origin-mcp", preflight(t, "/mcp", EVIL_ORIGIN, false).await);
    report.record("cors/preflight-evil-origin-token", preflight(t, "/token", EVIL_ORIGIN, false).await);
    report.record("cors/preflight-own-origin-allowed", preflight(t, "/mcp", &t.origin(), true).await);
}

fn mcp_call(t: &Target) -> RequestBuilder {
    t.mcp(None).body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
}

fn token_call(t: &Target) -> RequestBuilder {
    t.post("/token").form(&[("grant_type", "authorization_code"), ("code", "x"), ("client_id", "x")])
}

/// 403 (not 421, which Node's fetch retries), and no CORS grant.
async fn forbidden(t: &Target, req: RequestBuilder) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.send(req).await?;
    o.saw(reply.summary());
    o.expect(reply.status == StatusCode::FORBIDDEN, format!("expected 403, got {}", reply.status));
    o.expect(reply.header("access-control-allow-origin").is_none(), "the refusal still grants CORS access");
    o.nothing_issued(&reply);
    Ok(o)
}

/// An `OPTIONS` preflight from `origin`: granted exactly when `allowed`.
async fn preflight(t: &Target, path: &str, origin: &str, allowed: bool) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let req = t
        .request(Method::OPTIONS, path)
        .header(ORIGIN, origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, mcp-session-id")
        .header("accept", MCP_ACCEPT);
    let reply = t.send(req).await?;
    let granted = reply.header("access-control-allow-origin").map(str::to_owned);
    o.saw(format!("{} access-control-allow-origin: {granted:?}", reply.status.as_u16()));
    // Our own origin gets the empty 204 of a granted preflight; a foreign one the 403 that any
    // request from it gets.
    let status = if allowed { StatusCode::NO_CONTENT } else { StatusCode::FORBIDDEN };
    o.expect(reply.status == status, format!("expected {status}, got {}", reply.summary()));
    if allowed {
        o.expect(granted.as_deref() == Some(origin), "control failed: the server's own origin is not granted");
    } else {
        o.expect(granted.is_none(), "the foreign origin is granted");
        o.expect(reply.header("access-control-allow-credentials").is_none(), "credentials are granted");
    }
    Ok(o)
}
