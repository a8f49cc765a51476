//! `GET /authorize` with a registered client: redirect URIs bent towards another host (a
//! loopback one may change only its port), PKCE downgrades and a foreign audience. Every error
//! ends on the server's own page, never in a redirect: before a user signs in, an error redirect
//! to a URI that anyone may register would make the server an open redirector (RFC 9700
//! §4.11.2). And metadata-document client ids whose host is loopback written as an IPv6 address
//! (refused before any fetch), or a name that resolves to a private address (refused by the
//! resolver's address check).

use reqwest::StatusCode;

use crate::client::{App, CLIENT_REDIRECT, FOREIGN_RESOURCE, Pkce, Target, unique};
use crate::report::{Outcome, Report};

/// Redirect URIs that are not the registered `https://client.example/cb`, by probe id.
const REDIRECT_TRICKS: &[(&str, &str)] = &[
    ("authorize/redirect-dot-segments", "https://client.example/cb/../evil"),
    ("authorize/redirect-extra-query", "https://client.example/cb?x=1"),
    ("authorize/redirect-host-suffix", "https://client.example.evil.example/cb"),
    ("authorize/redirect-userinfo", "https://client.example@evil.example/cb"),
    ("authorize/redirect-foreign-host", "https://evil.example/cb"),
];

/// A native app's loopback redirect URI (RFC 8252 §7.3: any port is accepted, nothing else may differ).
const LOOPBACK_REDIRECT: &str = "http://127.0.0.1:8123/cb";

/// Variants of [`LOOPBACK_REDIRECT`] that a URL parser would forgive but a browser does not
/// read the same, by probe id.
const LOOPBACK_TRICKS: &[(&str, &str)] = &[
    ("authorize/redirect-userinfo-loopback", "http://evil.example.com@127.0.0.1:8123/cb"),
    ("authorize/redirect-userinfo-loopback-other-port", "http://evil.example.com@127.0.0.1:9/cb"),
];

/// Metadata-document client ids whose host stands for 127.0.0.1, by probe id: a NAT64 gateway
/// or a 6to4 relay would deliver to it, and a mapped address is it.
const CIMD_DISGUISED_LOOPBACK: &[(&str, &str)] = &[
    ("cimd/ipv4-mapped-loopback-host", "https://[::ffff:127.0.0.1]/client.json"),
    ("cimd/nat64-loopback-host", "https://[64:ff9b::127.0.0.1]/client.json"),
    ("cimd/6to4-loopback-host", "https://[2002:7f00:1::1]/client.json"),
];

pub(crate) async fn run(t: &Target, app: &App, report: &mut Report) {
    for (id, client_id) in CIMD_DISGUISED_LOOPBACK {
        report.record(id, cimd_disguised_loopback(t, client_id).await);
    }
    report.record("cimd/name-resolving-to-private-address", cimd_private_name(t).await);
    for (id, uri) in REDIRECT_TRICKS {
        report.record(id, redirect_trick(t, app, Some(uri)).await);
    }
    match t.register_app("Native app", &[LOOPBACK_REDIRECT]).await {
        Ok(native) => {
            for (id, uri) in LOOPBACK_TRICKS {
                report.record(id, redirect_trick(t, &native, Some(uri)).await);
            }
        }
        Err(e) => report.record("authorize/register-loopback-client", Err(e)),
    }
    let two = t.register_app("two redirects", &[CLIENT_REDIRECT, "https://client.example/cb2"]).await;
    let result = match two {
        Ok(two) => redirect_trick(t, &two, None).await,
        Err(e) => Err(e),
    };
    report.record("authorize/redirect-missing-two-registered", result);
    report.record("authorize/unknown-client", unknown_client(t).await);

    report.record("pkce/plain-method", pkce_downgrade(t, app, Some("plain"), Downgrade::PlainChallenge).await);
    report.record("pkce/missing-challenge", pkce_downgrade(t, app, Some("S256"), Downgrade::NoChallenge).await);
    report.record("pkce/missing-method", pkce_downgrade(t, app, None, Downgrade::Keep).await);
    report.record("pkce/verifier-as-challenge", pkce_downgrade(t, app, Some("S256"), Downgrade::PlainChallenge).await);

    report.record("audience/authorize-foreign-resource", foreign_resource(t, app).await);
    report.record("authorize/open-redirect-via-error", open_redirect_via_error(t).await);
}

/// An attacker registers a client whose redirect URI is their landing page and links to a
/// request that fails (`response_type=token`): the browser must stay on our page, which names
/// the client and the error, rather than be sent on with our `iss`.
async fn open_redirect_via_error(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let evil = t.register_app("Evil redirector", &["https://evil.example/landing"]).await?;
    let mut params = t.authorization_params(&evil, &Pkce::new(), &unique("state"));
    for (k, v) in &mut params {
        if k == "response_type" {
            *v = "token".to_owned();
        }
    }
    let reply = t.authorize(&params).await?;
    o.refusal_page(&reply, StatusCode::BAD_REQUEST, "unsupported_response_type");
    o.expect(reply.body.contains("Evil redirector"), "the page does not name the client");
    o.expect(!reply.body.contains("evil.example/landing"), "the page links to the client's redirect URI");
    Ok(o)
}

/// An otherwise valid request whose `redirect_uri` is `uri` (or absent).
async fn redirect_trick(t: &Target, app: &App, uri: Option<&str>) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let mut params = t.authorization_params(app, &Pkce::new(), &unique("state"));
    params.retain(|(k, _)| k != "redirect_uri");
    params.extend(uri.map(|u| ("redirect_uri".to_owned(), u.to_owned())));
    let reply = t.authorize(&params).await?;
    o.error_page(&reply);
    Ok(o)
}

/// An error page that says the host is private: refused from the URL, not after a fetch.
async fn cimd_disguised_loopback(t: &Target, client_id: &str) -> anyhow::Result<Outcome> {
    cimd_refused(t, client_id, "must not point at a private or loopback address").await
}

/// A client id on this machine's host name, which its hosts file maps to a loopback or private
/// address (the suite runs beside the server): a name passes the URL check, so the page must
/// be the resolver's refusal, not a failed connection.
async fn cimd_private_name(t: &Target) -> anyhow::Result<Outcome> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?.trim().to_owned();
    let why = format!("host {name} resolves to a non-public address");
    cimd_refused(t, &format!("https://{name}/client.json"), &why).await
}

/// The error page for a metadata-document client id, saying `why` (a fetch would have failed
/// with another reason).
async fn cimd_refused(t: &Target, client_id: &str, why: &str) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let app = App { client_id: client_id.into(), redirect_uris: vec![CLIENT_REDIRECT.into()] };
    let reply = t.authorize(&t.authorization_params(&app, &Pkce::new(), &unique("state"))).await?;
    o.error_page(&reply);
    o.expect(reply.body.contains(why), format!("the page does not say {why:?} (was it fetched?)"));
    Ok(o)
}

async fn unknown_client(t: &Target) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let app = App { client_id: "mcp_client_never_registered".into(), redirect_uris: vec![CLIENT_REDIRECT.into()] };
    let reply = t.authorize(&t.authorization_params(&app, &Pkce::new(), &unique("state"))).await?;
    o.error_page(&reply);
    Ok(o)
}

/// What a PKCE downgrade does to `code_challenge`.
enum Downgrade {
    /// Keep the S256 challenge.
    Keep,
    /// Leave it out.
    NoChallenge,
    /// Send the verifier itself, as `plain` would.
    PlainChallenge,
}

async fn pkce_downgrade(t: &Target, app: &App, method: Option<&str>, how: Downgrade) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let pkce = Pkce::new();
    let state = unique("state");
    let mut params = t.authorization_params(app, &pkce, &state);
    params.retain(|(k, _)| k != "code_challenge" && k != "code_challenge_method");
    match how {
        Downgrade::Keep => params.push(("code_challenge".into(), pkce.challenge.clone())),
        Downgrade::NoChallenge => {}
        // 64 characters: a valid verifier, not an S256 challenge.
        Downgrade::PlainChallenge => {
            params.push(("code_challenge".into(), format!("{}{}", pkce.verifier, "A".repeat(21))))
        }
    }
    params.extend(method.map(|m| ("code_challenge_method".to_owned(), m.to_owned())));
    let reply = t.authorize(&params).await?;
    o.refusal_page(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    Ok(o)
}

/// RFC 8707: a token for another resource server cannot be obtained here.
async fn foreign_resource(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let state = unique("state");
    let mut params = t.authorization_params(app, &Pkce::new(), &state);
    for (k, v) in &mut params {
        if k == "resource" {
            *v = FOREIGN_RESOURCE.to_owned();
        }
    }
    let reply = t.authorize(&params).await?;
    o.refusal_page(&reply, StatusCode::BAD_REQUEST, "invalid_target");
    Ok(o)
}
