//! Input meant to break parsers and headers: invalid UTF-8, repeated parameters, a flood of
//! parameters, CRLF in `state` (header injection through the redirect), deeply nested and
//! oversized JSON. All must get a 4xx, never a 5xx or a hang. Then the OAuth rate limit, and a
//! final health check.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use url::Url;

use crate::client::{ALICE, App, MCP_ACCEPT, Pkce, Reply, Target, query_param, unique};
use crate::report::{Outcome, Report};

/// A `state` that would split the `Location` header if the server echoed it raw.
const CRLF_STATE: &str = "x\r\nX-Injected: yes\r\nSet-Cookie: injected=1";
/// Nesting depth of the JSON bomb.
const NESTING: usize = 10_000;
/// Over the MCP endpoint's 4 MiB limit.
const HUGE_BODY: usize = 5 * 1024 * 1024;
/// Requests the rate-limit probe sends at most (the default limit per client at `/token` is
/// 1200 a minute).
const MAX_BURST: usize = 1_300;
/// Distinct keys in the parameter flood: 64,000 bytes, within the 64 KiB body limit.
const FLOOD_KEYS: usize = 16_000;
/// Timed requests of each kind in the flood probe.
const FLOOD_SAMPLES: usize = 3;

pub(crate) async fn run(t: &Target, app: &App, report: &mut Report) {
    report.record(
        "malformed/token-invalid-utf8",
        token_body(t, b"grant_type=authorization_code&code=\xff\xfe\xfd").await,
    );
    report.record(
        "malformed/token-repeated-parameter",
        token_body(t, b"grant_type=refresh_token&grant_type=authorization_code&code=x&client_id=x").await,
    );
    report.record("malformed/authorize-repeated-parameter", authorize_repeated(t, app).await);
    report.record("malformed/token-parameter-flood", parameter_flood(t).await);
    report.record("malformed/state-crlf-error-page", crlf_state_error(t, app).await);
    report.record("malformed/state-crlf-code-redirect", crlf_state_code(t, app).await);
    report.record("malformed/register-nested-json", register_nested(t).await);
    report.record("malformed/register-nested-json-in-unknown-field", register_nested_unknown_field(t).await);
    report.record("malformed/mcp-nested-json-and-5mib-body", mcp_bodies(t, app).await);
}

/// Run after every other probe that uses the OAuth endpoints: it exhausts the minute's budget.
pub(crate) async fn run_last(t: &Target, app: &App, report: &mut Report) {
    report.record("limits/token-endpoint-rate-limit", rate_limit(t, app).await);
    report.record("health/resource-metadata-after-attacks", health(t).await);
}

async fn token_body(t: &Target, body: &'static [u8]) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let req = t.post("/token").header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
    o.oauth_error(&t.send(req).await?, StatusCode::BAD_REQUEST, "invalid_request");
    Ok(o)
}

/// `FLOOD_KEYS` distinct three-character keys without values.
fn flood() -> String {
    let alphabet: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let n = alphabet.len();
    (0..FLOOD_KEYS).map(|i| format!("{}{}{}&", alphabet[i / (n * n)], alphabet[(i / n) % n], alphabet[i % n])).collect()
}

/// A 64 KiB body of distinct parameters: a parser that compares every key with every earlier
/// one spends about 10⁸ comparisons on it. It must be refused with 400 about as fast as an
/// ordinary bad request (medians; a generous factor for a noisy machine).
async fn parameter_flood(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let flood = flood();
    let (mut flood_times, mut plain_times) = (Vec::new(), Vec::new());
    for _ in 0..FLOOD_SAMPLES {
        for (body, times) in [(flood.clone(), &mut flood_times), ("grant_type=unknown".to_owned(), &mut plain_times)] {
            let req = t.post("/token").header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
            let started = Instant::now();
            let reply = t.send(req).await?;
            times.push(started.elapsed());
            o.nothing_issued(&reply);
            o.expect(reply.status == StatusCode::BAD_REQUEST, format!("expected 400, got {}", reply.summary()));
        }
    }
    flood_times.sort();
    plain_times.sort();
    let (f, p) = (flood_times[FLOOD_SAMPLES / 2], plain_times[FLOOD_SAMPLES / 2]);
    o.saw(format!(
        "{FLOOD_KEYS} keys ({} bytes): 400 in {} ms; an ordinary bad request {} ms",
        flood.len(),
        f.as_millis(),
        p.as_millis()
    ));
    o.expect(f <= p * 10 + Duration::from_millis(50), "the flood costs far more than an ordinary bad request");
    Ok(o)
}

/// Two `client_id`s: which one would a sloppy parser validate, and which one use?
async fn authorize_repeated(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let mut params = t.authorization_params(app, &Pkce::new(), &unique("state"));
    params.push(("client_id".into(), "mcp_client_attacker".into()));
    params.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    o.error_page(&t.authorize(&params).await?);
    Ok(o)
}

/// No injected header.
fn no_injected_headers(o: &mut Outcome, reply: &Reply) {
    o.no_server_error(reply);
    o.expect(reply.header("x-injected").is_none(), "an injected X-Injected header appeared");
    let cookies: Vec<_> = reply.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    o.expect(!cookies.iter().any(|c| c.contains("injected")), "an injected Set-Cookie appeared");
}

/// The redirect carries `state` encoded, unchanged, and no injected header.
fn crlf_checks(o: &mut Outcome, reply: &Reply) {
    no_injected_headers(o, reply);
    let location = reply.location().unwrap_or_default();
    o.expect(!location.contains('\r') && !location.contains('\n'), "raw CR/LF in Location");
    let state = Url::parse(location).ok().and_then(|u| query_param(&u, "state"));
    o.expect(state.as_deref() == Some(CRLF_STATE), "state did not come back unchanged (percent-encoded)");
}

/// A refused request (`plain` PKCE) gets the error page, with no header injected.
async fn crlf_state_error(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let mut params = t.authorization_params(app, &Pkce::new(), CRLF_STATE);
    for (k, v) in &mut params {
        if k == "code_challenge_method" {
            *v = "plain".into();
        }
    }
    let reply = t.authorize(&params).await?;
    o.refusal_page(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    no_injected_headers(&mut o, &reply);
    Ok(o)
}

/// The code redirect after alice signs in echoes `state` too.
async fn crlf_state_code(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let page = t.open_login(&t.authorization_params(app, &Pkce::new(), CRLF_STATE)).await?;
    let reply = t.post_login(&page, &page.submission(ALICE.name, ALICE.password), page.cookie()).await?;
    o.saw(format!("{} with a code: {}", reply.status.as_u16(), reply.issued().is_some()));
    o.expect(reply.status == StatusCode::FOUND, format!("expected 302, got {}", reply.summary()));
    crlf_checks(&mut o, &reply);
    Ok(o)
}

async fn register_nested(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let req = t.post("/register").header(CONTENT_TYPE, "application/json").body("[".repeat(NESTING));
    o.oauth_error(&t.send(req).await?, StatusCode::BAD_REQUEST, "invalid_client_metadata");
    Ok(o)
}

/// Valid metadata with 10,000 nested arrays in a field the server does not know, which a
/// parser skips without its recursion limit.
async fn register_nested_unknown_field(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let body = format!(
        r#"{{"redirect_uris":["https://client.example/cb"],"x":{}{}}}"#,
        "[".repeat(NESTING),
        "]".repeat(NESTING)
    );
    let req = t.post("/register").header(CONTENT_TYPE, "application/json").body(body);
    o.oauth_error(&t.send(req).await?, StatusCode::BAD_REQUEST, "invalid_client_metadata");
    Ok(o)
}

/// With a valid token: a JSON bomb and a body over the limit.
async fn mcp_bodies(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let tokens = t.tokens(app, ALICE).await?;
    let nested = t.send(t.mcp(Some(&tokens.access)).body("[".repeat(NESTING))).await?;
    o.saw(format!("{NESTING} × '[': {}", nested.summary()));
    // rmcp refuses a body it cannot deserialize with 415, the kit's tests pin the same.
    o.expect(nested.status == StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("expected 415, got {}", nested.summary()));

    let padding = "a".repeat(HUGE_BODY);
    let huge = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{padding}"}}}}"#);
    let bearer = format!("Bearer {}", tokens.access);
    let headers = [("Authorization", bearer.as_str()), ("Accept", MCP_ACCEPT), ("Content-Type", "application/json")];
    match t.post_raw("/mcp", &headers, huge.into_bytes()).await {
        Ok(head) => {
            let status = head.split(' ').nth(1).unwrap_or_default().to_owned();
            o.saw(format!("5 MiB body: {}", head.lines().next().unwrap_or_default()));
            o.expect(status == "413", format!("expected 413, got {status:?}"));
        }
        Err(e) => o.expect(false, format!("5 MiB body: the server closed without an answer ({e:#})")),
    }
    Ok(o)
}

/// Guessing codes at `/token` for one client: the per-client limit (1200 a minute by
/// default, before the address's 3000) must answer 429 `slow_down` with `Retry-After` long
/// before the guesses could matter.
async fn rate_limit(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let before = t.oauth_requests();
    let verifier = Pkce::new().verifier;
    for n in 1..=MAX_BURST {
        let guess = unique("code");
        let reply = t.redeem(app, &format!("mcp_code_{guess}"), Some(&verifier)).await?;
        o.nothing_issued(&reply);
        o.no_server_error(&reply);
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = reply.header("retry-after").and_then(|v| v.parse::<u64>().ok());
            o.saw(format!(
                "429 {} at guess {n} (OAuth request no. {} of the suite); Retry-After {retry_after:?} s",
                reply.error_code().unwrap_or_default(),
                before + n
            ));
            o.expect(reply.error_code().as_deref() == Some("slow_down"), "the 429 body is not error=slow_down");
            o.expect(retry_after.is_some_and(|s| (1..=60).contains(&s)), "no Retry-After of 1 to 60 s");
            return Ok(o);
        }
        if reply.status != StatusCode::BAD_REQUEST || reply.error_code().as_deref() != Some("invalid_grant") {
            o.expect(false, format!("guess {n}: expected 400 invalid_grant, got {}", reply.summary()));
            return Ok(o);
        }
    }
    o.expect(
        false,
        format!(
            "{MAX_BURST} code guesses and no 429: start the server without TOKEN_RATE_LIMIT_PER_CLIENT_PER_MINUTE (default 1200)"
        ),
    );
    Ok(o)
}

async fn health(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.send(t.get("/.well-known/oauth-protected-resource/mcp")).await?;
    let resource = reply.json()["resource"].as_str().map(str::to_owned);
    o.saw(format!("{} resource {resource:?}", reply.status.as_u16()));
    o.expect(reply.status == StatusCode::OK, "the server no longer answers");
    o.expect(resource.as_deref() == Some(t.resource()), "the metadata changed");
    Ok(o)
}
