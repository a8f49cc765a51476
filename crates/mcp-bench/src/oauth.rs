//! The OAuth flow as a platform and its user's browser run it: dynamic registration,
//! `/authorize`, the login form (cookie + CSRF token), the code exchange, refreshes.
//! Every step checks the answer the way a client would.

use std::time::{Duration, Instant};

use http::StatusCode;
use mcp_test_support::{AuthorizationResponse, LoginForm, Pkce};
use serde_json::{Value, json};
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

/// `mcp_login_…`: the per-request cookie of builds before the browser cookie, so that
/// `--candidate-bin` can compare against them.
fn legacy_login_cookie(headers: &http::HeaderMap) -> Option<String> {
    let set = headers.get_all(http::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok());
    set.filter_map(|v| v.split(';').next()).find(|pair| pair.starts_with("mcp_login_")).map(str::to_owned)
}

fn location(reply: &Reply, base: &Url) -> Result<Url, String> {
    mcp_test_support::location(&reply.headers, Some(base))
        .ok_or_else(|| format!("no usable Location: {:?}", reply.header("location")))
}

/// `/authorize` → login page → `POST /login` (Allow) → the code. Also returns how long the
/// `POST /login` took (the argon2 verification is most of it).
pub(crate) async fn authorize(
    conn: &mut Conn,
    base: &str,
    client_id: &str,
    (username, password): (&str, &str),
) -> Result<(PendingCode, Duration), String> {
    let Pkce { verifier, challenge } = Pkce::new();
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
    let login = location(&reply, &auth)?;
    if !login.as_str().starts_with(&format!("{base}/login?request=")) {
        return Err(format!("/authorize redirected to {login}, not to the login page"));
    }
    let reply = conn.get(&login[url::Position::BeforePath..], None).await?;
    expect(&reply, StatusCode::OK, "GET /login")?;
    let page = LoginForm::read(&reply.headers, &reply.text()).ok_or("no sign-in form on the login page")?;
    let cookie = page
        .cookie
        .clone()
        .or_else(|| legacy_login_cookie(&reply.headers))
        .ok_or("the login page set no mcp_browser cookie")?;
    let submission = page.submission(username, password, "allow");
    let form: Vec<(&str, &str)> = submission.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let started = Instant::now();
    let origin = url::Url::parse(base).map_err(|e| e.to_string())?.origin().ascii_serialization();
    let reply = conn.post_form("/login", &form, Some(&cookie), Some(&origin)).await?;
    let login_time = started.elapsed();
    expect(&reply, StatusCode::FOUND, "POST /login")?;
    let callback = location(&reply, &auth)?;
    if !callback.as_str().starts_with(REDIRECT_URI) {
        return Err(format!("the login redirected to {callback}, not to the client"));
    }
    let response = AuthorizationResponse::from_callback(&callback).map_err(|e| format!("{e}: {callback}"))?;
    if response.state.as_deref() != Some(STATE) || response.iss.as_deref() != Some(base) {
        return Err(format!("callback without the right state and iss: {callback}"));
    }
    let code = response.code;
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
