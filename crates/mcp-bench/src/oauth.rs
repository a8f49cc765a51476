//! The OAuth flow as a platform and its user's browser run it: dynamic registration,
//! `/authorize`, the login form (cookie + CSRF token), the code exchange, refreshes.
//! Every step checks the answer the way a client would.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::client::{Conn, Reply};

/// The redirect URI every bench client registers (a native app's loopback listener; never called).
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";
const STATE: &str = "bench-state";
/// The example's demo users (examples/mcp-server-example/src/users.rs).
pub(crate) const USERS: [(&str, &str); 2] = [("alice", "password123"), ("bob", "hunter2")];

/// A signed-in client's tokens.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) client_id: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
    pub(crate) username: String,
}

/// An authorization code waiting for its exchange.
#[derive(Debug, Clone)]
pub(crate) struct PendingCode {
    pub(crate) client_id: String,
    pub(crate) code: String,
    pub(crate) verifier: String,
    pub(crate) username: String,
}

fn expect(reply: &Reply, status: StatusCode, what: &str) -> Result<(), String> {
    if reply.status == status {
        Ok(())
    } else {
        let body: String = reply.text().chars().take(300).collect();
        Err(format!("{what}: expected {status}, got {}: {body}", reply.status))
    }
}

/// A PKCE verifier (256 random bits) and its S256 challenge.
pub(crate) fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// `POST /register` of a public client, as MCP clients do; returns its `client_id`.
pub(crate) async fn register(conn: &mut Conn) -> Result<String, String> {
    let body = json!({
        "client_name": "mcp-bench",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    let reply = conn.post_json("/register", body.to_string()).await?;
    expect(&reply, StatusCode::CREATED, "POST /register")?;
    let v: Value = serde_json::from_slice(&reply.body).map_err(|e| format!("registration is not JSON: {e}"))?;
    v["client_id"].as_str().map(str::to_owned).ok_or_else(|| "registration without client_id".into())
}

fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_owned())
}

fn location(reply: &Reply, base: &str) -> Result<Url, String> {
    let raw = reply.header("location").ok_or("redirect without Location")?;
    Url::parse(raw)
        .or_else(|_| Url::parse(base).and_then(|b| b.join(raw)))
        .map_err(|e| format!("Location {raw:?}: {e}"))
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `/authorize` → login page → `POST /login` (Allow) → the code. Also returns how long the
/// `POST /login` took (the argon2 verification is most of it).
pub(crate) async fn authorize(
    conn: &mut Conn,
    base: &str,
    client_id: &str,
    (username, password): (&str, &str),
) -> Result<(PendingCode, Duration), String> {
    let (verifier, challenge) = pkce();
    let resource = format!("{base}/mcp");
    let auth = Url::parse_with_params(
        &format!("{base}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", STATE),
            ("scope", "mcp"),
            ("resource", resource.as_str()),
        ],
    )
    .map_err(|e| e.to_string())?;
    let path = &auth[url::Position::BeforePath..];
    let reply = conn.get(path, None).await?;
    expect(&reply, StatusCode::FOUND, "GET /authorize")?;
    let login = location(&reply, base)?;
    if !login.as_str().starts_with(&format!("{base}/login?request=")) {
        return Err(format!("/authorize redirected to {login}, not to the login page"));
    }
    let reply = conn.get(&login[url::Position::BeforePath..], None).await?;
    expect(&reply, StatusCode::OK, "GET /login")?;
    let cookie = reply
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        // `mcp_login_…`: the per-request cookie of builds before the browser cookie, so that
        // `--candidate-bin` can compare against them.
        .find(|pair| pair.trim_start().starts_with("mcp_browser=") || pair.trim_start().starts_with("mcp_login_"))
        .map(|pair| pair.trim().to_owned())
        .ok_or("the login page set no mcp_browser cookie")?;
    let html = reply.text();
    let request = hidden_input(&html, "request").ok_or("no request field on the login page")?;
    let csrf = hidden_input(&html, "csrf_token").ok_or("no csrf_token field on the login page")?;
    let form = [
        ("request", request.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", username),
        ("password", password),
        ("decision", "allow"),
    ];
    let started = Instant::now();
    let origin = url::Url::parse(base).map_err(|e| e.to_string())?.origin().ascii_serialization();
    let reply = conn.post_form("/login", &form, Some(&cookie), Some(&origin)).await?;
    let login_time = started.elapsed();
    expect(&reply, StatusCode::FOUND, "POST /login")?;
    let callback = location(&reply, base)?;
    if !callback.as_str().starts_with(REDIRECT_URI) {
        return Err(format!("the login redirected to {callback}, not to the client"));
    }
    if param(&callback, "state").as_deref() != Some(STATE) || param(&callback, "iss").as_deref() != Some(base) {
        return Err(format!("callback without the right state and iss: {callback}"));
    }
    let code = param(&callback, "code").ok_or_else(|| format!("callback without a code: {callback}"))?;
    let pending = PendingCode { client_id: client_id.to_owned(), code, verifier, username: username.to_owned() };
    Ok((pending, login_time))
}

fn tokens_of(reply: &Reply, client_id: &str, username: &str, what: &str) -> Result<Tokens, String> {
    expect(reply, StatusCode::OK, what)?;
    let v: Value = serde_json::from_slice(&reply.body).map_err(|e| format!("{what}: not JSON: {e}"))?;
    let field = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| format!("{what}: no {k}"));
    if v["token_type"].as_str() != Some("Bearer") {
        return Err(format!("{what}: token_type is not Bearer"));
    }
    Ok(Tokens {
        client_id: client_id.to_owned(),
        access: field("access_token")?,
        refresh: field("refresh_token")?,
        username: username.to_owned(),
    })
}

/// `POST /token` (`authorization_code` + PKCE verifier).
pub(crate) async fn exchange(conn: &mut Conn, base: &str, code: &PendingCode) -> Result<Tokens, String> {
    let resource = format!("{base}/mcp");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", code.client_id.as_str()),
        ("code_verifier", code.verifier.as_str()),
        ("resource", resource.as_str()),
    ];
    let reply = conn.post_form("/token", &form, None, None).await?;
    tokens_of(&reply, &code.client_id, &code.username, "code exchange")
}

/// `POST /token` (`refresh_token`): the rotated pair.
pub(crate) async fn refresh(conn: &mut Conn, tokens: &Tokens) -> Result<Tokens, String> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh.as_str()),
        ("client_id", tokens.client_id.as_str()),
    ];
    let reply = conn.post_form("/token", &form, None, None).await?;
    let next = tokens_of(&reply, &tokens.client_id, &tokens.username, "refresh")?;
    if next.refresh == tokens.refresh {
        return Err("refresh did not rotate the refresh token".into());
    }
    Ok(next)
}

/// The whole flow for one user: register, authorize, sign in, exchange.
pub(crate) async fn sign_in(conn: &mut Conn, base: &str, user: (&str, &str)) -> Result<Tokens, String> {
    let client_id = register(conn).await?;
    let (code, _) = authorize(conn, base, &client_id, user).await?;
    exchange(conn, base, &code).await
}
