//! The attacker's HTTP toolkit: raw requests against the target, PKCE, client registration,
//! and a scripted browser that drives the login form (`GET /authorize` → `/login` page with its
//! browser cookie (`mcp_browser`) → `POST /login` from the page's origin → `302` to the client
//! with `code`, `state` and `iss`).
//!
//! Nothing here follows redirects or keeps cookies on its own: every probe sees exactly what
//! the server sent and chooses what to send back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mcp_test_support::{AuthorizationResponse, LoginForm};
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, HOST, HeaderMap, LOCATION, ORIGIN};
use reqwest::{RequestBuilder, StatusCode, redirect};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

pub(crate) use mcp_test_support::param as query_param;
pub(crate) use mcp_test_support::{Pkce, unique};

/// The demo users of `mcp-server-example`.
pub(crate) const ALICE: User = User { name: "alice", password: "password123" };
/// See [`ALICE`].
pub(crate) const BOB: User = User { name: "bob", password: "hunter2" };

/// The redirect URI of the "legitimate" client the probes register.
pub(crate) const CLIENT_REDIRECT: &str = "https://client.example/cb";
/// A resource (RFC 8707) this server does not serve.
pub(crate) const FOREIGN_RESOURCE: &str = "https://other.example/mcp";
/// What a Streamable HTTP client must accept.
pub(crate) const MCP_ACCEPT: &str = "application/json, text/event-stream";
/// The MCP protocol version the probes speak (one that opens a session).
pub(crate) const MCP_PROTOCOL: &str = "2025-06-18";

/// Longest a probe waits for a response body (an SSE stream may stay open).
const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a probe waits for a response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A demo account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct User {
    pub(crate) name: &'static str,
    pub(crate) password: &'static str,
}

/// The server under attack.
#[derive(Debug)]
pub(crate) struct Target {
    base: Url,
    /// `{base}/mcp`, as the protected-resource metadata names it.
    resource: String,
    http: reqwest::Client,
    /// A client that never reuses a connection, for bodies the server stops reading: it may
    /// drop such a connection after answering.
    unpooled: reqwest::Client,
    /// Requests sent to the rate-limited OAuth endpoints, for the rate-limit probe's report.
    oauth_requests: AtomicUsize,
}

impl Target {
    /// A target at `base` (the server's `PUBLIC_URL`). Fetches the protected-resource metadata
    /// once, which also shows that the server is up.
    pub(crate) async fn connect(base: &str) -> anyhow::Result<Self> {
        let base = Url::parse(base).with_context(|| format!("{base:?} is not a URL"))?;
        let builder = || {
            reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
        };
        let http = builder().build()?;
        let unpooled = builder().pool_max_idle_per_host(0).build()?;
        let oauth_requests = AtomicUsize::new(0);
        let mut target = Self { base, resource: String::new(), http, unpooled, oauth_requests };
        let prm = target.send(target.get("/.well-known/oauth-protected-resource/mcp")).await?;
        if prm.status != StatusCode::OK {
            bail!("the protected-resource metadata answered {}", prm.summary());
        }
        target.resource =
            prm.json()["resource"].as_str().context("the protected-resource metadata has no `resource`")?.to_owned();
        Ok(target)
    }

    /// An absolute URL on the target.
    pub(crate) fn url(&self, path_and_query: &str) -> Url {
        self.base.join(path_and_query).unwrap_or_else(|_| self.base.clone())
    }

    /// The canonical MCP resource URL.
    pub(crate) fn resource(&self) -> &str {
        &self.resource
    }

    /// The issuer the server names in `iss` (its public URL without a trailing slash).
    pub(crate) fn issuer(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The server's own browser origin (`http://127.0.0.1:PORT`).
    pub(crate) fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    /// The port the server answers on.
    pub(crate) fn port(&self) -> u16 {
        self.base.port_or_known_default().unwrap_or(80)
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path))
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// `POST /mcp` with the headers a Streamable HTTP client sends, and `token` if any.
    pub(crate) fn mcp(&self, token: Option<&str>) -> RequestBuilder {
        let req = self.post("/mcp").header(ACCEPT, MCP_ACCEPT).header(CONTENT_TYPE, "application/json");
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// The page a browser shows after the sign-in form's redirect (a wrong password answers
    /// 303 back to the sign-in page): `GET` of the `Location` with the browser's `cookie` and
    /// the cookies the redirect set.
    pub(crate) async fn page_after(&self, reply: &Reply, cookie: Option<&str>) -> anyhow::Result<Reply> {
        let to = reply.location_url(&self.url("/")).with_context(|| format!("no Location: {}", reply.summary()))?;
        let set = reply.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()?.split(';').next());
        let cookies: Vec<&str> = cookie.into_iter().chain(set).collect();
        let mut req = self.http.get(to);
        if !cookies.is_empty() {
            req = req.header(reqwest::header::COOKIE, cookies.join("; "));
        }
        self.send(req).await
    }

    /// Sends a request and reads the whole reply (the body within [`BODY_TIMEOUT`]).
    pub(crate) async fn send(&self, req: RequestBuilder) -> anyhow::Result<Reply> {
        self.execute(&self.http, req).await
    }

    /// [`Target::send`] on a connection of its own, closed afterwards: for oversized bodies.
    pub(crate) async fn send_unpooled(&self, req: RequestBuilder) -> anyhow::Result<Reply> {
        self.execute(&self.unpooled, req).await
    }

    /// Posts `body` to `path` over a raw HTTP/1.1 connection, reading the answer while the
    /// body is still being written, as curl and browsers do. A server may answer before it has
    /// read a body that is too large and then close: hyper's client, busy writing, reports the
    /// broken pipe and loses that answer; this one still reads it. Returns the status line
    /// and headers.
    pub(crate) async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> anyhow::Result<String> {
        let host = self.base.host_str().context("the target URL has no host")?;
        let authority = format!("{host}:{}", self.port());
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = tokio::net::TcpStream::connect(&authority).await?;
        let (mut reader, mut writer) = stream.into_split();
        let upload = tokio::spawn(async move {
            writer.write_all(head.as_bytes()).await?;
            writer.write_all(&body).await
        });
        let mut received = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = |r: &[u8]| r.windows(4).position(|w| w == b"\r\n\r\n");
        let read_head = async {
            while head_end(&received).is_none() {
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                }
            }
        };
        let timed_out = tokio::time::timeout(REQUEST_TIMEOUT, read_head).await.is_err();
        upload.abort();
        let Some(end) = head_end(&received) else {
            bail!("no response head (timed out: {timed_out}, {} bytes received)", received.len());
        };
        Ok(String::from_utf8_lossy(&received[..end]).into_owned())
    }

    async fn execute(&self, client: &reqwest::Client, req: RequestBuilder) -> anyhow::Result<Reply> {
        let req = req.build()?;
        // A foreign Host or Origin is refused before the rate limiter counts the request; the
        // sign-in form checks its origin itself, after counting.
        let path = req.url().path();
        let form_page = matches!(path, "/login" | "/logout");
        let spoofed = req.headers().contains_key(HOST) || (req.headers().contains_key(ORIGIN) && !form_page);
        if !spoofed
            && matches!(
                path,
                "/register" | "/authorize" | "/login" | "/token" | "/revoke" | "/introspect" | "/oauth/callback"
            )
        {
            self.oauth_requests.fetch_add(1, Ordering::Relaxed);
        }
        let what = format!("{} {}", req.method(), req.url().path());
        let sent = Instant::now();
        let response = client.execute(req).await.with_context(|| what.clone())?;
        Ok(Reply::read(response, sent).await)
    }

    /// How many requests went to the OAuth endpoints so far.
    pub(crate) fn oauth_requests(&self) -> usize {
        self.oauth_requests.load(Ordering::Relaxed)
    }

    /// `POST /register` with a JSON body.
    pub(crate) async fn register(&self, metadata: &Value) -> anyhow::Result<Reply> {
        self.send(self.post("/register").json(metadata)).await
    }

    /// Registers a public client (PKCE, no secret) with these redirect URIs.
    pub(crate) async fn register_app(&self, name: &str, redirect_uris: &[&str]) -> anyhow::Result<App> {
        let reply = self.register(&App::metadata(name, redirect_uris)).await?;
        if reply.status != StatusCode::CREATED {
            bail!("registering {name:?} failed: {}", reply.summary());
        }
        let client_id = reply.json()["client_id"].as_str().context("registration without client_id")?.to_owned();
        Ok(App { client_id, redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect() })
    }

    /// `GET /authorize` with these query parameters.
    pub(crate) async fn authorize(&self, params: &[(String, String)]) -> anyhow::Result<Reply> {
        let mut url = self.url("/authorize");
        url.query_pairs_mut().extend_pairs(params);
        self.send(self.http.get(url)).await
    }

    /// A complete, valid authorization request of `app` (first redirect URI, scope `mcp`,
    /// this server's resource): probes change one parameter at a time.
    pub(crate) fn authorization_params(&self, app: &App, pkce: &Pkce, state: &str) -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", app.client_id.as_str()),
            ("redirect_uri", app.redirect_uri()),
            ("state", state),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", "mcp"),
            ("resource", self.resource()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Sends an authorization request and opens the login page it redirects to in a new
    /// browser, keeping the browser cookie the page sets.
    pub(crate) async fn open_login(&self, params: &[(String, String)]) -> anyhow::Result<LoginPage> {
        let reply = self.authorize(params).await?;
        let location = reply.location_url(&self.base).with_context(|| format!("/authorize: {}", reply.summary()))?;
        if location.path() != "/login" {
            bail!("/authorize redirected to {location} instead of the login page");
        }
        let page = self.send(self.http.get(location.clone())).await?;
        if page.status != StatusCode::OK {
            bail!("the login page answered {}", page.summary());
        }
        let form = LoginForm::read(&page.headers, &page.body).context("no sign-in form on the login page")?;
        let action = form.action(&location).context("bad form action")?;
        Ok(LoginPage { page, form, action })
    }

    /// Posts `fields` to the login form's action, with `cookie` (a `name=value` pair) if any,
    /// from the page's origin as a browser does.
    pub(crate) async fn post_login(
        &self,
        page: &LoginPage,
        fields: &[(String, String)],
        cookie: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let origin = page.action.origin().ascii_serialization();
        self.post_login_with(page, fields, cookie, &[(ORIGIN.as_str(), &origin)]).await
    }

    /// [`Target::post_login`] with exactly these extra `headers` (no `Origin` unless named).
    pub(crate) async fn post_login_with(
        &self,
        page: &LoginPage,
        fields: &[(String, String)],
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut req = self.http.post(page.action.clone()).form(fields);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req).await
    }

    /// Signs `user` in through the real form for a fresh authorization request of `app`.
    pub(crate) async fn sign_in(&self, app: &App, user: User) -> anyhow::Result<Authorized> {
        let pkce = Pkce::new();
        let state = unique("state");
        let page = self.open_login(&self.authorization_params(app, &pkce, &state)).await?;
        let reply = self.post_login(&page, &page.submission(user.name, user.password), page.cookie()).await?;
        let location = reply.location_url(&self.base).with_context(|| format!("sign-in: {}", reply.summary()))?;
        let response = AuthorizationResponse::from_callback(&location).with_context(|| format!("{location}"))?;
        if response.state != Some(state) {
            bail!("the sign-in's redirect changed the state: {location}");
        }
        Ok(Authorized { code: response.code, pkce })
    }

    /// `POST /token` with these form fields.
    pub(crate) async fn token_request(&self, fields: &[(&str, &str)]) -> anyhow::Result<Reply> {
        self.send(self.post("/token").form(fields)).await
    }

    /// Redeems a code as `app` (`verifier: None` leaves `code_verifier` out).
    pub(crate) async fn redeem(&self, app: &App, code: &str, verifier: Option<&str>) -> anyhow::Result<Reply> {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", app.redirect_uri()),
            ("client_id", app.client_id.as_str()),
        ];
        fields.extend(verifier.map(|v| ("code_verifier", v)));
        self.token_request(&fields).await
    }

    /// `POST /token` with the `refresh_token` grant.
    pub(crate) async fn refresh(&self, app: &App, refresh_token: &str) -> anyhow::Result<Reply> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", app.client_id.as_str()),
        ])
        .await
    }

    /// `POST /revoke` (RFC 7009).
    pub(crate) async fn revoke(&self, app: &App, token: &str) -> anyhow::Result<Reply> {
        self.send(self.post("/revoke").form(&[("token", token), ("client_id", app.client_id.as_str())])).await
    }

    /// Signs `user` in and redeems the code: a fresh token pair.
    pub(crate) async fn tokens(&self, app: &App, user: User) -> anyhow::Result<Tokens> {
        let authorized = self.sign_in(app, user).await?;
        let reply = self.redeem(app, &authorized.code, Some(&authorized.pkce.verifier)).await?;
        Tokens::from_reply(&reply)
    }

    /// `initialize` at `/mcp`: 200 with an `mcp-session-id` when the guard lets `token` in.
    pub(crate) async fn mcp_initialize(&self, token: &str) -> anyhow::Result<Reply> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": MCP_PROTOCOL,
                "capabilities": {},
                "clientInfo": { "name": "attack-suite", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        self.send(self.mcp(Some(token)).body(body.to_string())).await
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) client_id: String,
    pub(crate) redirect_uris: Vec<String>,
}

impl App {
    /// RFC 7591 metadata of a public client such as an MCP host registers.
    pub(crate) fn metadata(name: &str, redirect_uris: &[&str]) -> Value {
        json!({
            "client_name": name,
            "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    pub(crate) fn redirect_uri(&self) -> &str {
        self.redirect_uris.first().map(String::as_str).unwrap_or_default()
    }
}

/// The login page of one pending authorization, as a browser holds it.
#[derive(Debug)]
pub(crate) struct LoginPage {
    /// The page itself (status, headers, HTML).
    pub(crate) page: Reply,
    /// The sign-in form and the browser cookie the page set.
    pub(crate) form: LoginForm,
    action: Url,
}

impl LoginPage {
    /// The browser cookie the page set, as `name=value`.
    pub(crate) fn cookie(&self) -> Option<&str> {
        self.form.cookie.as_deref()
    }

    /// A hidden field of the form (`request`, `csrf_token`).
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.form.field(name)
    }

    /// What the browser posts when the user types these credentials and clicks Allow.
    pub(crate) fn submission(&self, username: &str, password: &str) -> Vec<(String, String)> {
        self.form.submission(username, password, "allow")
    }
}

/// A code the server sent to the client's redirect URI, with the PKCE pair it is bound to.
#[derive(Debug)]
pub(crate) struct Authorized {
    pub(crate) code: String,
    pub(crate) pkce: Pkce,
}

/// A token response.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) refresh: String,
    pub(crate) expires_in: u64,
    /// When the response arrived (the access token expires `expires_in` later).
    pub(crate) received: Instant,
    /// When the token request was sent: the tokens are at most `requested.elapsed()` old.
    pub(crate) requested: Instant,
}

impl Tokens {
    pub(crate) fn from_reply(reply: &Reply) -> anyhow::Result<Self> {
        if reply.status != StatusCode::OK {
            bail!("token request refused: {}", reply.summary());
        }
        let body = reply.json();
        let text = |k: &str| body[k].as_str().map(str::to_owned).with_context(|| format!("token response without {k}"));
        Ok(Self {
            access: text("access_token")?,
            refresh: text("refresh_token")?,
            expires_in: body["expires_in"].as_u64().context("token response without expires_in")?,
            received: Instant::now(),
            requested: reply.sent,
        })
    }
}

/// A response, read in full.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
    /// When the request was sent.
    pub(crate) sent: Instant,
}

impl Reply {
    async fn read(response: reqwest::Response, sent: Instant) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = match tokio::time::timeout(BODY_TIMEOUT, response.bytes()).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Err(e)) => format!("<body unreadable: {e}>"),
            Err(_) => "<body still streaming>".to_owned(),
        };
        Self { status, headers, body, sent }
    }

    /// A header as text (the first one of that name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The RFC 6749 §5.2 `error` of a JSON body.
    pub(crate) fn error_code(&self) -> Option<String> {
        self.json()["error"].as_str().map(str::to_owned)
    }

    /// The error code an HTML error page shows (`Error: <code>invalid_request</code>`).
    pub(crate) fn page_error_code(&self) -> Option<&str> {
        let start = self.body.find("<code>")? + "<code>".len();
        let len = self.body[start..].find("</code>")?;
        Some(&self.body[start..start + len])
    }

    pub(crate) fn location(&self) -> Option<&str> {
        self.header(LOCATION.as_str())
    }

    /// The `Location` header, resolved against `base`.
    pub(crate) fn location_url(&self, base: &Url) -> Option<Url> {
        self.location().and_then(|l| base.join(l).ok())
    }

    /// Whether the reply hands out anything an attacker wants: a code in a redirect, or a
    /// token or client registration in a JSON body.
    pub(crate) fn issued(&self) -> Option<&'static str> {
        let json = self.json();
        let location_has_code =
            self.location().and_then(|l| Url::parse(l).ok()).is_some_and(|u| u.query_pairs().any(|(k, _)| k == "code"));
        if location_has_code {
            Some("an authorization code")
        } else if json.get("access_token").is_some() {
            Some("an access token")
        } else if json.get("refresh_token").is_some() {
            Some("a refresh token")
        } else if json.get("client_id").is_some() {
            Some("a client registration")
        } else {
            None
        }
    }

    /// `status`, the OAuth error code or a body snippet, and the `Location` if any.
    pub(crate) fn summary(&self) -> String {
        let mut s = self.status.as_u16().to_string();
        if let Some(code) = self.error_code() {
            s.push(' ');
            s.push_str(&code);
        } else if let Some(code) = self.page_error_code() {
            s.push_str(&format!(" page {code}"));
        } else if !self.body.is_empty() && !self.body.trim_start().starts_with('<') {
            s.push_str(&format!(" {:?}", snippet(self.body.trim(), 80)));
        }
        if let Some(location) = self.location() {
            s.push_str(&format!(" → {}", snippet(location, 100)));
        }
        s
    }
}

/// The first `max` characters of `s`, with an ellipsis if cut.
pub(crate) fn snippet(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}
