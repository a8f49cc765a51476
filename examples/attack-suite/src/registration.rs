//! Registration abuse (RFC 7591): redirect URIs that would run script, leak codes to another
//! host or read local files; oversized and malformed bodies; markup, line breaks and terminal
//! escapes in the client name.

use reqwest::StatusCode;
use reqwest::header::{CONNECTION, CONTENT_TYPE};

use crate::client::{App, Pkce, Target, unique};
use crate::report::{Outcome, Report};

/// Redirect URIs no client may register, by probe id.
const BAD_REDIRECT_URIS: &[(&str, &str)] = &[
    ("register/redirect-javascript", "javascript:alert(1)"),
    ("register/redirect-data", "data:text/html,x"),
    ("register/redirect-remote-http", "http://evil.example/cb"),
    ("register/redirect-fragment", "https://a.example/cb#frag"),
    ("register/redirect-file", "file:///etc/passwd"),
];

pub(crate) async fn run(t: &Target, report: &mut Report) {
    for (id, uri) in BAD_REDIRECT_URIS {
        report.record(id, bad_redirect_uri(t, uri).await);
    }
    report.record("register/oversized-body", oversized_body(t).await);
    report.record("http/early-413-announces-close", early_response_announces_close(t).await);
    report.record("register/malformed-json", malformed_json(t).await);
    report.record("register/wrong-content-type", wrong_content_type(t).await);
    report.record("register/script-in-client-name", script_in_client_name(t).await);
    report.record("register/control-characters-in-client-name", control_characters_in_client_name(t).await);
}

async fn bad_redirect_uri(t: &Target, uri: &str) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.register(&App::metadata("attack", &[uri])).await?;
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    Ok(o)
}

/// Registration metadata of about 70 KiB, over the 64 KiB limit of the OAuth endpoints.
fn oversized_metadata() -> serde_json::Value {
    let mut metadata = App::metadata("attack", &["https://client.example/cb"]);
    metadata["client_uri"] = "x".repeat(70 * 1024).into();
    metadata
}

/// A body over the limit: refused with 413 before it is parsed.
async fn oversized_body(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.send_unpooled(t.post("/register").json(&oversized_metadata())).await?;
    o.saw(reply.summary());
    o.expect(reply.status == StatusCode::PAYLOAD_TOO_LARGE, format!("expected 413, got {}", reply.status));
    o.nothing_issued(&reply);
    Ok(o)
}

/// A server that answers before reading the whole body cannot keep the connection: the
/// unread rest would be parsed as the next request. It must say so (`Connection: close`),
/// or a keep-alive client sends its next request into a connection that is being closed
/// and gets a network error (a POST is not retried).
async fn early_response_announces_close(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.send_unpooled(t.post("/register").json(&oversized_metadata())).await?;
    let connection = reply.header(CONNECTION.as_str());
    o.saw(format!("{} with connection: {connection:?}", reply.status.as_u16()));
    o.expect(reply.status == StatusCode::PAYLOAD_TOO_LARGE, format!("expected 413, got {}", reply.status));
    o.expect(
        connection.is_some_and(|c| c.eq_ignore_ascii_case("close")),
        "the 413 does not announce `Connection: close`, yet the server drops the connection after it",
    );
    Ok(o)
}

async fn malformed_json(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let body = r#"{"redirect_uris": ["https://client.example/cb"], "client_name": "#;
    let reply = t.send(t.post("/register").header(CONTENT_TYPE, "application/json").body(body)).await?;
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_client_metadata");
    Ok(o)
}

/// Valid metadata sent as a simple (CORS-safelisted) content type, as a cross-site form could.
async fn wrong_content_type(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let body = App::metadata("attack", &["https://client.example/cb"]).to_string();
    let reply = t.send(t.post("/register").header(CONTENT_TYPE, "text/plain").body(body)).await?;
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    Ok(o)
}

/// A client named `<script>…`: the consent page must show the name as text.
async fn script_in_client_name(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let name = "<script>alert(1)</script>";
    let app = t.register_app(name, &["https://client.example/cb"]).await?;
    let login = t.open_login(&t.authorization_params(&app, &Pkce::new(), &unique("state"))).await?;
    let html = &login.page.body;
    let escaped = html.contains("&lt;script&gt;alert(1)&lt;/script&gt;");
    o.saw(if escaped {
        "the login page shows &lt;script&gt;alert(1)&lt;/script&gt;"
    } else {
        "name not found escaped"
    });
    o.expect(!html.contains(name), "the client name reached the page as live markup");
    o.expect(escaped, "the escaped client name is not on the page");
    Ok(o)
}

/// A client named with a line break and a terminal escape (to forge a log line or restyle an
/// operator's terminal): registered, with the control characters dropped from the name.
async fn control_characters_in_client_name(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let reply = t.register(&App::metadata("Legit\n\u{1b}[31mFORGED", &["https://client.example/cb"])).await?;
    let name = reply.json()["client_name"].as_str().map(str::to_owned);
    o.saw(format!("{} with client_name {name:?}", reply.status.as_u16()));
    o.expect(reply.status == StatusCode::CREATED, format!("expected 201, got {}", reply.status));
    o.expect(
        name.as_deref() == Some("Legit[31mFORGED"),
        "the stored name is not the name without its control characters",
    );
    Ok(o)
}
