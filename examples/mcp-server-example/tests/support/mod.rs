//! Shared helpers of the tests that run the real `mcp-server-example` binary as a child process
//! (killed when dropped, panics included), with an HTTP client that plays both the MCP client
//! and the user's browser through the login form, step by step. Beside it: a round-robin proxy
//! (`round_robin`), rmcp's signed-in client (`rmcp_client`) and a private PostgreSQL cluster to
//! stop and start (`pg_cluster`).
//!
//! Every wait is bounded; every request has a timeout.

// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mcp_test_support::LoginForm;
// Each test binary uses a different part of these too.
#[allow(unused_imports)]
pub(crate) use mcp_test_support::{Pkce, TempDir, param, text_of};
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, HOST, ORIGIN};
use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};

/// `TEST_DATABASE_URL`, checked to be PostgreSQL (shared with the kit's store tests).
#[path = "../../../../crates/mcp-oauth-kit/tests/store_support/postgres.rs"]
pub(crate) mod postgres;

pub(crate) mod pg_cluster;
pub(crate) mod rmcp_client;
pub(crate) mod round_robin;

/// The redirect URI every test client registers (a native app's loopback listener; nothing
/// listens there: the tests read the code from the `Location` header).
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";
/// The `state` of every authorization request.
pub(crate) const STATE: &str = "st-restart";
/// The MCP protocol revision of `initialize`.
pub(crate) const PROTOCOL_VERSION: &str = "2025-06-18";
/// How long a server may take to answer its health check after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM (it drains for at most 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Every HTTP request of the tests gives up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The binary under test: `MCP_SERVER_BIN` if set (CI points it at the release build), else
/// the one cargo built for this test. A relative `MCP_SERVER_BIN` is taken from the current
/// directory (cargo runs tests in the package's directory) or else from the workspace root, so
/// that `MCP_SERVER_BIN=target/release/mcp-server-example cargo test` works from the root.
pub(crate) fn server_bin() -> PathBuf {
    let Some(path) = std::env::var_os("MCP_SERVER_BIN").filter(|v| !v.is_empty()).map(PathBuf::from) else {
        return PathBuf::from(env!("CARGO_BIN_EXE_mcp-server-example"));
    };
    if path.is_absolute() || path.exists() {
        return path;
    }
    let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let from_root = workspace_root.join(&path);
    assert!(
        from_root.exists(),
        "MCP_SERVER_BIN={} is neither in {} nor in the workspace root",
        path.display(),
        std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
    );
    from_root
}

/// The public URL of every test server: the load balancer's address in a deployment. The
/// server binds a port of the system's choosing (`PORT=0`, so no port is handed out before it
/// is bound) and the tests reach it there with this URL's `Host`, as a proxy that keeps the
/// `Host` does; a restarted server keeps its issuer on any port.
pub(crate) const PUBLIC_URL: &str = "http://127.0.0.1";

/// How to start one server process: its environment (besides `PORT=0`, `RUST_LOG` and
/// `PUBLIC_URL`). Starting the same `Launch` again restarts the server on the same
/// database, with the same issuer.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) public_url: String,
    pub(crate) env: Vec<(String, String)>,
}

impl Launch {
    /// A server on a port the system picks, with [`PUBLIC_URL`].
    pub(crate) fn local() -> Self {
        Self { public_url: PUBLIC_URL.to_owned(), env: Vec::new() }
    }

    /// Set an environment variable of the server.
    pub(crate) fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Start the server, learn its port from its `serving` log line, and wait (bounded) until it
    /// answers its health check. Checks what a first run shows: stdout names the MCP URL to
    /// connect to, and the log (stderr, a pipe here) carries no terminal colour codes.
    pub(crate) async fn start(&self) -> Server {
        let mut command = Command::new(server_bin());
        command
            .env("PORT", "0")
            .env("PUBLIC_URL", &self.public_url)
            // Warnings, and the one line that says where the server listens.
            .env("RUST_LOG", "warn,mcp_oauth_kit::server=info")
            // The server decides about colours from its own streams: no NO_COLOR to help it.
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", server_bin().display()));
        let stdout = child.stdout.take().expect("the server's stdout");
        let stderr = child.stderr.take().expect("the server's stderr");
        let printed = Captured::default();
        let logged = Captured::default();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // Each stream is read to its end, so that the server never blocks on a full pipe.
        let keep = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                keep.push(line);
            }
        });
        let keep = logged.clone();
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = bound_port(&line)
                    && let Some(tx) = port_tx.take()
                {
                    let _ = tx.send(port);
                }
                keep.push(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            if let Ok(port) = port_rx.try_recv() {
                break port;
            }
            if let Some(status) = child.try_wait().expect("poll the server process") {
                panic!("the server exited at start with {status}");
            }
            assert!(Instant::now() < deadline, "the server did not log where it listens within {START_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut server = Server { child: Some(child), at: Endpoint::new(port, &self.public_url) };
        server.wait_until_ready().await;
        let connect = format!("Connect an MCP client to {}/mcp", self.public_url);
        // Printed before the server listens (after the upstream provider's line, if any); its
        // reader thread may still be on the way.
        let stdout = printed.wait_for(START_TIMEOUT, |lines| lines.contains(&connect)).await;
        assert!(stdout.contains(&connect), "stdout: {stdout:?}");
        let log = logged.lines();
        assert!(log.iter().any(|l| l.contains(" serving ")), "the serving line: {log:?}");
        assert!(!log.iter().any(|l| l.contains("\x1b[")), "a log into a pipe has no colour codes: {log:?}");
        server
    }
}

/// The lines a server process wrote to one stream, shared with the thread that reads them.
#[derive(Debug, Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Captured {
    fn push(&self, line: String) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The lines, once `ready` holds for them or `limit` has passed.
    async fn wait_for(&self, limit: Duration, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let lines = self.lines();
            if ready(&lines) || Instant::now() >= deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The port in the kit's `serving listen=ADDR …` log line, if `line` is that line.
fn bound_port(line: &str) -> Option<u16> {
    if !line.contains(" serving ") {
        return None;
    }
    let addr = line.split_whitespace().find_map(|field| field.strip_prefix("listen="))?;
    addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

/// A running server process. Dropping it kills the process (SIGKILL) and reaps it.
pub(crate) struct Server {
    child: Option<Child>,
    /// Where requests go, and the public URL the server advertises.
    pub(crate) at: Endpoint,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl std::ops::Deref for Server {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.at
    }
}

impl Server {
    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the server process is still ours")
    }

    async fn wait_until_ready(&mut self) {
        let health = self.url("/.well-known/oauth-protected-resource/mcp");
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child().try_wait().expect("poll the server process") {
                panic!("the server on port {} exited at start with {status}", self.port);
            }
            let probe = self.http.get(&health).timeout(Duration::from_secs(2)).send().await;
            if probe.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not answer {health} within {START_TIMEOUT:?}");
    }

    /// The server's process id.
    pub(crate) fn pid(&mut self) -> u32 {
        self.child().id()
    }

    /// `kill -TERM` and wait (bounded) for the process to exit; returns its exit status.
    pub(crate) async fn sigterm(mut self) -> ExitStatus {
        self.send_sigterm();
        self.wait_for_exit(STOP_TIMEOUT).await
    }

    /// `kill -TERM` only: the server starts its graceful shutdown while the test goes on.
    pub(crate) fn send_sigterm(&mut self) {
        let pid = self.pid();
        let sent = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed");
    }

    /// Wait for the process to exit, failing the test after `limit`; returns its exit status.
    pub(crate) async fn exit_within(mut self, limit: Duration) -> ExitStatus {
        self.wait_for_exit(limit).await
    }

    /// `kill -9`: the process dies at once, with whatever it was doing half done.
    pub(crate) async fn kill9(mut self) {
        self.child().kill().expect("kill -9 the server");
        self.wait_for_exit(STOP_TIMEOUT).await;
    }

    async fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child().try_wait().expect("poll the server process") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "the server on port {} did not exit within {limit:?}", self.port);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The `Location` of a redirect, which must be absolute: the server builds every redirect
/// from its public URL.
pub(crate) fn location(res: &Response) -> Url {
    mcp_test_support::location(res.headers(), None).expect("an absolute Location header")
}

/// The `error` of an OAuth JSON error response, with its status.
pub(crate) async fn oauth_error(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let text = res.text().await.expect("an error body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("an OAuth JSON error, not {text:?}"));
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

/// A token pair from `/token`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

/// Parse a successful token response (panics on any other status).
pub(crate) async fn tokens_of(res: Response, what: &str) -> Tokens {
    let status = res.status();
    let text = res.text().await.expect("a token response body");
    assert_eq!(status, StatusCode::OK, "{what}: {text}");
    let body: Value = serde_json::from_str(&text).expect("a JSON token response");
    Tokens {
        access: body["access_token"].as_str().expect("an access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("a refresh_token").to_owned(),
    }
}

/// The login page as a browser holds it: where it was loaded from, and its sign-in form with
/// the `mcp_browser` cookie it was given.
#[derive(Debug, Clone)]
pub(crate) struct LoginPage {
    /// Path and query of the page (`/login?request=…`).
    pub(crate) path: String,
    pub(crate) form: LoginForm,
    /// The browser's `mcp_browser=…` cookie, as it goes back in a `Cookie` header.
    pub(crate) cookie: String,
}

/// One server as seen from outside: the address requests go to, and the public URL it
/// advertises (the same for every instance behind one load balancer). Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) port: u16,
    /// `http://127.0.0.1:PORT`: where this test sends requests.
    pub(crate) base: String,
    /// The server's `PUBLIC_URL`: its issuer; the tokens' audience is `{public_url}/mcp`.
    pub(crate) public_url: String,
    /// The public URL's `Host`, which every request of [`Endpoint::http`] carries.
    pub(crate) host: String,
    /// Follows no redirects: the tests read every `Location` themselves.
    pub(crate) http: reqwest::Client,
}

impl Endpoint {
    /// The server on `127.0.0.1:port` whose public URL is `public_url`, with an HTTP client
    /// of its own (its own connections).
    pub(crate) fn new(port: u16, public_url: &str) -> Self {
        let url = Url::parse(public_url).expect("a public URL");
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => panic!("a public URL with a host: {public_url}"),
        };
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(HOST, host.parse().expect("a Host header"));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .build()
            .expect("an HTTP client");
        Self { port, base: format!("http://127.0.0.1:{port}"), host, public_url: public_url.to_owned(), http }
    }

    /// An absolute URL on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    // ---- registration and the browser's part ----------------------------------------------

    /// Register a public client with [`REDIRECT_URI`]; returns its `client_id`.
    pub(crate) async fn register_public(&self) -> String {
        let body = json!({
            "client_name": "Restart test client",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        });
        let res = self.http.post(self.url("/register")).json(&body).send().await.expect("POST /register");
        assert_eq!(res.status(), StatusCode::CREATED, "registration");
        let reg: Value = res.json().await.expect("a JSON registration");
        reg["client_id"].as_str().expect("a client_id").to_owned()
    }

    /// `GET /authorize` (code, [`REDIRECT_URI`], S256, [`STATE`]) as sent.
    pub(crate) async fn authorize(&self, client_id: &str, challenge: &str) -> Response {
        let params = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", STATE),
        ];
        let url = Url::parse_with_params(&self.url("/authorize"), params).expect("an authorization URL");
        self.http.get(url).send().await.expect("GET /authorize")
    }

    /// Start an authorization here and load its login page, as a browser does. `/authorize`
    /// redirects to `{public_url}/login?request=…`; the page is then loaded from *this*
    /// server (behind a load balancer, any instance may serve it).
    pub(crate) async fn open_login(&self, client_id: &str, challenge: &str) -> LoginPage {
        let res = self.authorize(client_id, challenge).await;
        assert_eq!(res.status(), StatusCode::FOUND, "GET /authorize");
        let login = location(&res);
        let expected = format!("{}/login?request=", self.public_url);
        assert!(login.as_str().starts_with(&expected), "/authorize redirects to {expected}…, not {login}");
        let path = format!("{}?{}", login.path(), login.query().unwrap_or_default());
        let res = self.get(&path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET the login page");
        self.login_page(path, res).await
    }

    /// `GET` a path on this server, without cookies.
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    /// The form and cookie of a login page response.
    pub(crate) async fn login_page(&self, path: String, res: Response) -> LoginPage {
        let headers = res.headers().clone();
        let html = res.text().await.expect("the login page");
        let form = LoginForm::read(&headers, &html).expect("a sign-in form on the login page");
        assert!(form.field("request").is_some() && form.field("csrf_token").is_some(), "{form:?}");
        let cookie = form.cookie.clone().expect("the login page sets its cookie");
        LoginPage { path, form, cookie }
    }

    /// Submit a login page's form (with its cookie, from the page's origin) here, pressing Allow.
    pub(crate) async fn submit_login(&self, page: &LoginPage, username: &str, password: &str) -> Response {
        let form = page.form.submission(username, password, "allow");
        let origin = Url::parse(&self.public_url).expect("a public URL").origin().ascii_serialization();
        let req = self.http.post(self.url("/login")).header(COOKIE, &page.cookie).header(ORIGIN, origin);
        req.form(&form).send().await.expect("POST /login")
    }

    /// The code in a successful login response (the redirect to the client), with `state` and
    /// `iss` checked.
    pub(crate) fn code_of(&self, res: &Response) -> String {
        assert_eq!(res.status(), StatusCode::FOUND, "the login form redirects to the client");
        let callback = location(res);
        assert!(callback.as_str().starts_with(REDIRECT_URI), "redirect to the client, not {callback}");
        assert_eq!(param(&callback, "state").as_deref(), Some(STATE));
        assert_eq!(param(&callback, "iss").as_deref(), Some(self.public_url.as_str()), "iss is the issuer");
        param(&callback, "code").expect("a code")
    }

    /// Sign `username` in for `client_id` through the login form; returns the code (not yet
    /// redeemed) and its PKCE verifier.
    pub(crate) async fn sign_in_code(&self, client_id: &str, username: &str, password: &str) -> (String, String) {
        let Pkce { verifier, challenge } = Pkce::new();
        let page = self.open_login(client_id, &challenge).await;
        let res = self.submit_login(&page, username, password).await;
        (self.code_of(&res), verifier)
    }

    /// Sign in and redeem the code here.
    pub(crate) async fn sign_in(&self, client_id: &str, username: &str, password: &str) -> Tokens {
        let (code, verifier) = self.sign_in_code(client_id, username, password).await;
        tokens_of(self.exchange(client_id, &code, &verifier).await, "code exchange").await
    }

    // ---- token endpoint -------------------------------------------------------------------

    /// `POST /token` with the `authorization_code` grant of a public client.
    pub(crate) async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ];
        self.http.post(self.url("/token")).form(&form).send().await.expect("POST /token (code)")
    }

    /// `POST /token` with the `refresh_token` grant of a public client.
    pub(crate) async fn refresh(&self, client_id: &str, refresh_token: &str) -> Response {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
        self.http.post(self.url("/token")).form(&form).send().await.expect("POST /token (refresh)")
    }

    /// `POST /revoke` of a public client.
    pub(crate) async fn revoke(&self, client_id: &str, token: &str) -> Response {
        let form = [("token", token), ("client_id", client_id)];
        self.http.post(self.url("/revoke")).form(&form).send().await.expect("POST /revoke")
    }

    // ---- MCP -------------------------------------------------------------------------------

    /// `POST /mcp` with a bearer token, a JSON-RPC body and a session (if any).
    pub(crate) async fn mcp(&self, token: &str, body: &Value, session: Option<&str>) -> Response {
        let mut req = self
            .http
            .post(self.url("/mcp"))
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .bearer_auth(token)
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s).header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        req.send().await.expect("POST /mcp")
    }

    /// `initialize` without a session (a new session), as sent.
    pub(crate) async fn send_initialize(&self, token: &str) -> Response {
        let init = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "restart-test", "version": "0.0.0" },
            },
        });
        self.mcp(token, &init, None).await
    }

    /// `initialize` + `notifications/initialized`; returns the session id.
    pub(crate) async fn initialize(&self, token: &str) -> String {
        let res = self.send_initialize(token).await;
        assert_eq!(res.status(), StatusCode::OK, "initialize");
        let session =
            res.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).expect("a session id").to_owned();
        let reply = rpc_reply(res).await;
        assert!(reply["result"]["protocolVersion"].is_string(), "initialize result: {reply}");
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let res = self.mcp(token, &note, Some(&session)).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "notifications/initialized");
        session
    }

    /// `tools/call roll_dice` (on a session, or stateless without one), as sent.
    pub(crate) async fn call_roll_dice(&self, token: &str, session: Option<&str>) -> Response {
        let call = json!({
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": { "name": "roll_dice", "arguments": { "sides": 6 } },
        });
        self.mcp(token, &call, session).await
    }

    /// `roll_dice` must answer 200 and name `user` as the roller.
    pub(crate) async fn assert_rolls_as(&self, token: &str, session: Option<&str>, user: &str) {
        let res = self.call_roll_dice(token, session).await;
        assert_eq!(res.status(), StatusCode::OK, "roll_dice as {user} on port {}", self.port);
        let text = text_of(&rpc_reply(res).await["result"]);
        assert!(text.starts_with(&format!("{user} rolled a ")), "roll_dice answered {text:?}");
    }

    /// The status of `roll_dice` with `token` (stateless), to poll until it is refused.
    pub(crate) async fn roll_dice_status(&self, token: &str) -> StatusCode {
        self.call_roll_dice(token, None).await.status()
    }
}

/// The JSON-RPC reply in a response that is JSON or an SSE stream (`data:` lines).
pub(crate) async fn rpc_reply(res: Response) -> Value {
    let content_type = res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = res.text().await.expect("an MCP response body");
    mcp_test_support::rpc_reply(&content_type, &text).unwrap_or_else(|| panic!("no JSON-RPC reply in {text:?}"))
}
