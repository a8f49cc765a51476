//! `GET /oauth/callback`, where an upstream OpenID provider sends the browser back after a
//! sign-in there: what an attacker can send it without any provider. A callback whose `state`
//! this server did not hand to this browser (none, a made-up one, or one naming a real sign-in
//! request but not minted for the browser that sends it), with or without a `code`, or with an
//! `error=` as if from the provider, is this server's own error page: 400, no redirect to the
//! client, no code, no sign-in session cookie, and none of the sent text as markup. A huge query
//! is refused cleanly, and the server answers normally afterwards.

use reqwest::StatusCode;
use reqwest::header::COOKIE;

use crate::client::{App, Pkce, Reply, Target, unique};
use crate::report::{Outcome, Report};

const CALLBACK: &str = "/oauth/callback";

pub(crate) async fn run(t: &Target, app: &App, report: &mut Report) {
    let probes = [
        ("callback/no-state", format!("{CALLBACK}?code=stolen-code")),
        ("callback/unknown-state", format!("{CALLBACK}?code=stolen-code&state=made-up.state")),
        ("callback/error-without-state", format!("{CALLBACK}?error=access_denied")),
        ("callback/no-code", format!("{CALLBACK}?state=made-up.state")),
        (
            "callback/provider-error-with-markup",
            format!(
                "{CALLBACK}?error=server_error&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=made-up.state"
            ),
        ),
    ];
    for (id, path) in probes {
        report.record(id, refused(t, t.get(&path)).await);
    }
    report.record("callback/real-request-forged-state", real_request_forged_state(t, app).await);
    report.record("callback/huge-query", huge_query(t).await);
}

/// Our error page: 400, HTML, no redirect, nothing issued.
fn check_refused(o: &mut Outcome, reply: &Reply) {
    o.saw(reply.summary());
    o.expect(reply.status == StatusCode::BAD_REQUEST, format!("expected 400, got {}", reply.status));
    o.expect(reply.header("location").is_none(), "the callback redirected");
    let html = reply.header("content-type").is_some_and(|c| c.starts_with("text/html"));
    o.expect(html && reply.body.contains("cannot continue"), "not the server's error page");
    let session =
        reply.headers.get_all("set-cookie").iter().any(|c| c.to_str().is_ok_and(|c| c.contains("mcp_session=")));
    o.expect(!session, "a refused callback set a sign-in session cookie");
    o.expect(!reply.body.contains("<script>alert(1)"), "the callback put the sent text into the page as markup");
    o.nothing_issued(reply);
}

async fn refused(t: &Target, req: reqwest::RequestBuilder) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.send(req).await?;
    check_refused(&mut o, &reply);
    Ok(o)
}

/// A real pending sign-in and the browser that opened it, with a `state` of the right shape
/// (`{request}.{token}`) whose token the server did not derive for that browser.
async fn real_request_forged_state(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let page = t.open_login(&t.authorization_params(app, &Pkce::new(), &unique("state"))).await?;
    let request = page.field("request").unwrap_or_default().to_owned();
    let state: String = url::form_urlencoded::byte_serialize(format!("{request}.forged").as_bytes()).collect();
    let mut req = t.get(&format!("{CALLBACK}?code=stolen-code&state={state}"));
    if let Some(cookie) = page.cookie() {
        req = req.header(COOKIE, cookie);
    }
    refused(t, req).await
}

/// 20 KB and 60 KB of query (over the callback's bound, under the largest URI a client can
/// send): a 414 page without a redirect, and the server still answers the next request.
async fn huge_query(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    for size in [20_000, 60_000] {
        let path = format!("{CALLBACK}?state={}", "a".repeat(size));
        let reply = t.send_unpooled(t.get(&path)).await?;
        o.saw(format!("{size} bytes: {}", reply.summary()));
        let refused = matches!(reply.status, StatusCode::URI_TOO_LONG | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        o.expect(refused, format!("expected 414 or 431 for {size} bytes, got {}", reply.status));
        o.expect(reply.header("location").is_none(), "the callback redirected");
    }
    let after = t.send(t.get(&format!("{CALLBACK}?state=x.y"))).await?;
    check_refused(&mut o, &after);
    Ok(o)
}
