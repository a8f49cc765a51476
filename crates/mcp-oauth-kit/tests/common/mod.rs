//! Shared harness of the integration tests: a real [`McpServer`] on an ephemeral port (two
//! users, a plain tool, a scoped tool and an MCP App), and a client that plays both the MCP
//! client and the user's browser, step by step, the way a real one does.

// Every test binary uses a different part of the harness.
#![allow(dead_code)]

pub(crate) mod failing_store;
pub(crate) mod log_capture;

use std::sync::Arc;

use mcp_oauth_kit::auth::{AuthProvider, OAuthServer};
use mcp_oauth_kit::clock::ManualClock;
use mcp_oauth_kit::rmcp::ServerHandler;
use mcp_oauth_kit::store::Store;
use mcp_oauth_kit::{
    AccessToken, AppTemplate, Config, McpServer, McpServerBuilder, Password, StaticUserStore, ToolDef, ToolError,
    ToolOutput, Tools, UserStore,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, HOST};
use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The redirect URI every test client registers (a native app's loopback listener).
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";
/// The MCP App template of the `profile_card` tool.
pub(crate) const APP_URI: &str = "ui://test/app";
pub(crate) const APP_HTML: &str = "<!doctype html><html><body>app</body></html>";
pub(crate) const APP_MIME: &str = "text/html;profile=mcp-app";
/// The state every authorization request of the harness carries unless told otherwise.
pub(crate) const STATE: &str = "st-4f2a";
/// The public host of [`TestServer::behind_tls_proxy`].
pub(crate) const PROXIED_HOST: &str = "mcp.example.com";
/// The MCP protocol revision the harness initializes with.
pub(crate) const PROTOCOL_VERSION: &str = "2025-06-18";

type NoArgs = serde_json::Map<String, Value>;

async fn whoami(caller: AccessToken, _args: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(caller.username.clone()).with_structured(json!({ "username": caller.username })))
}

async fn admin_only(caller: AccessToken, _args: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(format!("admin area, welcome {}", caller.username)))
}

async fn profile_card(caller: AccessToken, _args: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(format!("profile of {}", caller.username))
        .with_structured(json!({ "username": caller.username })))
}

/// `whoami`, `admin_only` (scope `admin`) and `profile_card` (an MCP App).
pub(crate) fn tools() -> Tools {
    Tools::new()
        .tool(ToolDef::new("whoami", "Say who is signed in").handler(whoami))
        .tool(ToolDef::new("admin_only", "Only for tokens with the admin scope").scope("admin").handler(admin_only))
        .tool(
            ToolDef::new("profile_card", "Show the caller's profile card")
                .app(AppTemplate::new(APP_URI, "App", APP_HTML))
                .handler(profile_card),
        )
}

/// alice / password123 (`user-alice`) and bob / hunter2 (`user-bob`).
pub(crate) fn users() -> StaticUserStore {
    StaticUserStore::new()
        .with_user("user-alice", "alice", &Password::new("password123"))
        .expect("hash alice")
        .with_user("user-bob", "bob", &Password::new("hunter2"))
        .expect("hash bob")
}

// Each test binary uses a different part of these too.
#[allow(unused_imports)]
pub(crate) use mcp_test_support::{Pkce, TempDir, hidden_input, param, set_cookie, text_of};

/// The `Location` of a redirect, which must be absolute: the server builds every redirect
/// from its public URL.
pub(crate) fn location(res: &Response) -> Url {
    mcp_test_support::location(res.headers(), None).expect("an absolute Location header")
}

/// Asserts that `res` answers a wrong username or password: 303 See Other back to the sign-in
/// page (redirect after POST, so a reload does not post the password again) with a failure
/// flag, and no code.
pub(crate) fn assert_wrong_credentials(res: &Response, what: impl std::fmt::Display) {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{what}");
    let to = location(res);
    assert_eq!(to.path(), "/login", "{what}");
    assert!(param(&to, "failed").is_some() && param(&to, "code").is_none(), "{what}: {to}");
}

/// A header's value as text (`""` when absent).
pub(crate) fn header(res: &Response, name: &str) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Status and `error` code of an OAuth JSON error response.
pub(crate) async fn oauth_error(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res.json().await.expect("an OAuth error is JSON");
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

/// The "Return to …" link of an error page shown to a signed-in browser (it must be a page,
/// not a redirect).
pub(crate) async fn return_link(res: Response) -> Url {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none(), "a page, not a redirect");
    let html = res.text().await.expect("page");
    let start = html.find("<a href=\"").expect("a link back") + "<a href=\"".len();
    let len = html[start..].find('"').expect("the end of the link");
    assert!(html[start + len..].starts_with("\">Return to Test client</a>"), "{html}");
    Url::parse(&html[start..start + len].replace("&amp;", "&")).expect("a URL")
}

/// The login page as a browser holds it: the form's hidden fields and the cookie it was given.
#[derive(Debug, Clone)]
pub(crate) struct LoginPage {
    pub(crate) request: String,
    pub(crate) csrf_token: String,
    /// The browser's `mcp_browser=…` cookie, as it goes back in a `Cookie` header.
    pub(crate) cookie: Option<String>,
    pub(crate) html: String,
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl LoginPage {
    /// The form a user submits: hidden fields, credentials and the pressed button.
    pub(crate) fn form(&self, username: &str, password: &str, decision: &str) -> Vec<(String, String)> {
        [
            ("request", self.request.as_str()),
            ("csrf_token", self.csrf_token.as_str()),
            ("username", username),
            ("password", password),
            ("decision", decision),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }
}

/// Tokens of a completed sign-in.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) client_id: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
    pub(crate) body: Value,
}

/// A running server and a client that does not follow redirects. Dropping it stops the server.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:PORT`: the public URL and issuer.
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    /// The running server's authorization server, for what the application calls directly
    /// ([`OAuthServer::revoke_user`]); `None` for a resource server ([`TestServer::start_with_provider`]).
    pub(crate) oauth: Option<OAuthServer>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestServer {
    /// The server with the default configuration (scopes `mcp` and `admin`, default `mcp`).
    pub(crate) async fn start() -> Self {
        Self::start_with(|c| c).await
    }

    /// The server with a configuration adjusted by `tweak`.
    pub(crate) async fn start_with(tweak: impl FnOnce(Config) -> Config) -> Self {
        Self::start_on(None, tweak).await
    }

    /// The server with a configuration adjusted by `tweak`, reading the time from a clock the
    /// test moves by hand (returned with it): expiry is tested without waiting for it.
    pub(crate) async fn start_on_clock(tweak: impl FnOnce(Config) -> Config) -> (Self, ManualClock) {
        let clock = ManualClock::starting_now();
        let on_clock = clock.clone();
        let server = Self::start_with(move |mut c| {
            c.clock = Arc::new(on_clock);
            tweak(c)
        })
        .await;
        (server, clock)
    }

    /// The server behind a TLS proxy: its public URL is `https://`[`PROXIED_HOST`], and the
    /// proxy forwards requests to it over plain HTTP on its own port, with the public `Host`.
    pub(crate) async fn behind_tls_proxy() -> Self {
        Self::start_with(|c| {
            let public_url = format!("https://{PROXIED_HOST}");
            let mut public = Config::new(&public_url).expect("valid").with_scopes(&["mcp", "admin"], &["mcp"]);
            public.listen_addr = c.listen_addr;
            public
        })
        .await
    }

    /// Register a public client with `redirect_uri` through the proxy of
    /// [`TestServer::behind_tls_proxy`]; returns its `client_id`.
    pub(crate) async fn register_via_proxy(&self, redirect_uri: &str) -> String {
        let body = json!({ "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none" });
        let req = self.client.post(self.url("/register")).header(HOST, PROXIED_HOST).json(&body);
        let reg: Value = req.send().await.expect("POST /register").json().await.expect("JSON");
        reg["client_id"].as_str().expect("client_id").to_owned()
    }

    /// The server over `store` (several servers over one store play instances behind one load
    /// balancer), with a configuration adjusted by `tweak`.
    pub(crate) async fn start_with_store(store: Arc<dyn Store>, tweak: impl FnOnce(Config) -> Config) -> Self {
        Self::start_on(Some(store), tweak).await
    }

    /// Two servers over one new SQLite file, a pool each, as two processes of one deployment
    /// would be. The file lives in `dir`, which the caller keeps until the servers are done.
    #[cfg(feature = "sqlite")]
    pub(crate) async fn two_on_one_sqlite_file(dir: &TempDir, tweak: impl Fn(Config) -> Config) -> (Self, Self) {
        use mcp_oauth_kit::store::SqlStore;
        let url = format!("sqlite://{}", dir.path().join("shared.db").display());
        let a: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.expect("open SQLite"));
        let b: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.expect("open SQLite again"));
        (Self::start_with_store(a, &tweak).await, Self::start_with_store(b, &tweak).await)
    }

    async fn start_on(store: Option<Arc<dyn Store>>, tweak: impl FnOnce(Config) -> Config) -> Self {
        Self::launch(|config| {
            let builder = McpServer::builder(tweak(config)).user_store(users()).tools(tools());
            match store {
                Some(store) => builder.store(store),
                None => builder,
            }
        })
        .await
    }

    /// The server over a user store of the test's own, with a configuration adjusted by `tweak`.
    pub(crate) async fn start_with_users(users: impl UserStore, tweak: impl FnOnce(Config) -> Config) -> Self {
        Self::launch(|config| McpServer::builder(tweak(config)).user_store(users).tools(tools())).await
    }

    /// The server with a user store of the test's own, over `store`.
    pub(crate) async fn start_with_users_and_store(
        users: impl UserStore,
        store: Arc<dyn Store>,
        tweak: impl FnOnce(Config) -> Config,
    ) -> Self {
        Self::launch(|config| McpServer::builder(tweak(config)).user_store(users).tools(tools()).store(store)).await
    }

    /// The server with a user store and a tool registry of the test's own.
    pub(crate) async fn start_with_users_and_tools(users: impl UserStore, tools: Tools) -> Self {
        Self::launch(|config| McpServer::builder(config).user_store(users).tools(tools)).await
    }

    /// A resource server only: tokens verified by `provider`, no authorization server.
    pub(crate) async fn start_with_provider(provider: impl AuthProvider, tweak: impl FnOnce(Config) -> Config) -> Self {
        Self::launch(|config| McpServer::builder(tweak(config)).auth_provider(provider).tools(tools())).await
    }

    /// A resource server only, with a tool registry of the test's own.
    pub(crate) async fn start_with_provider_and_tools(provider: impl AuthProvider, tools: Tools) -> Self {
        Self::launch(|config| McpServer::builder(config).auth_provider(provider).tools(tools)).await
    }

    /// The server with a tool registry (and its state) of the test's own.
    pub(crate) async fn start_with_tools<S: Clone + Send + Sync + 'static>(tools: Tools<S>) -> Self {
        Self::launch(|config| McpServer::builder(config).user_store(users()).tools(tools)).await
    }

    /// The server in front of an rmcp `ServerHandler` of the test's own
    /// ([`McpServerBuilder::rmcp_handler`]) instead of the kit's tool registry.
    pub(crate) async fn start_with_rmcp_handler<S: ServerHandler + Clone + Send + 'static>(handler: S) -> Self {
        Self::launch(|config| McpServer::builder(config).user_store(users()).rmcp_handler(handler)).await
    }

    /// Bind an ephemeral port and serve what `setup` builds from the default configuration.
    async fn launch(setup: impl FnOnce(Config) -> McpServerBuilder) -> Self {
        Self::launch_on(TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port"), setup).await
    }

    /// [`TestServer::launch`] on a listener bound beforehand, for a test that must know the
    /// server's URL before it builds it (to configure an identity provider for it).
    pub(crate) async fn launch_on(listener: TcpListener, setup: impl FnOnce(Config) -> McpServerBuilder) -> Self {
        let addr = listener.local_addr().expect("local address");
        let base = format!("http://127.0.0.1:{}", addr.port());
        let mut config = Config::new(&base)
            .expect("a valid public URL")
            .with_scopes(&["mcp", "admin"], &["mcp"])
            .with_server_name("Test MCP server");
        config.listen_addr = addr;
        let server = setup(config).build().expect("the server builds");
        let oauth = server.authorization_server();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            server.serve(listener, shutdown).await.expect("the server runs");
        });
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client");
        Self { base, client, oauth, shutdown: Some(tx) }
    }

    /// An absolute URL on the server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    // ---- registration ----------------------------------------------------------------------

    /// `POST /register` with a JSON body, as sent.
    pub(crate) async fn register_raw(&self, body: &Value) -> Response {
        self.client.post(self.url("/register")).json(body).send().await.expect("POST /register")
    }

    /// Register a client; panics unless the server answers 201. Returns the registration.
    pub(crate) async fn register(&self, body: Value) -> Value {
        let res = self.register_raw(&body).await;
        assert_eq!(res.status(), StatusCode::CREATED, "registration of {body} refused");
        res.json().await.expect("a JSON registration")
    }

    /// Register a public client (`none`) with [`REDIRECT_URI`]; returns its `client_id`.
    pub(crate) async fn register_public(&self) -> String {
        let reg = self
            .register(json!({
                "client_name": "Test client",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }))
            .await;
        reg["client_id"].as_str().expect("a client_id").to_owned()
    }

    // ---- authorization ---------------------------------------------------------------------

    /// `/authorize?…` with exactly these parameters.
    pub(crate) fn authorize_url_from(&self, params: &[(&str, &str)]) -> String {
        Url::parse_with_params(&self.url("/authorize"), params).expect("a valid URL").to_string()
    }

    /// A valid authorization request of `client_id` (code, [`REDIRECT_URI`], S256, `state`);
    /// each `extra` pair replaces the parameter of that name or is added.
    pub(crate) fn authorize_url(
        &self,
        client_id: &str,
        challenge: &str,
        state: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", state),
        ];
        for (k, v) in extra {
            match params.iter_mut().find(|(pk, _)| pk == k) {
                Some(p) => p.1 = v,
                None => params.push((k, v)),
            }
        }
        self.authorize_url_from(&params)
    }

    /// `GET` a URL (with no cookie), as a browser following a link.
    pub(crate) async fn get(&self, url: &str) -> Response {
        self.client.get(url).send().await.expect("GET")
    }

    /// Follow `auth_url` to the login page, as a browser: `/authorize` must redirect to
    /// `{base}/login?request=…`, which must answer 200 with the form and a cookie.
    pub(crate) async fn open_login(&self, auth_url: &str) -> LoginPage {
        let res = self.get(auth_url).await;
        assert_eq!(res.status(), StatusCode::FOUND, "GET {auth_url}");
        let login_url = location(&res);
        assert!(
            login_url.as_str().starts_with(&format!("{}/login?request=", self.base)),
            "/authorize redirects to the login page, not {login_url}"
        );
        self.login_page(login_url.as_str()).await
    }

    /// `GET /login?request=…` in a new browser; panics unless it is the sign-in form.
    pub(crate) async fn login_page(&self, login_url: &str) -> LoginPage {
        self.login_page_in(login_url, None).await
    }

    /// `GET /login?request=…` in the browser that holds the `mcp_browser` cookie `browser`
    /// (a new one for `None`); panics unless it is the sign-in form.
    pub(crate) async fn login_page_in(&self, login_url: &str, browser: Option<&str>) -> LoginPage {
        let mut req = self.client.get(login_url);
        if let Some(c) = browser {
            req = req.header(COOKIE, c);
        }
        let res = req.send().await.expect("GET /login");
        assert_eq!(res.status(), StatusCode::OK, "GET {login_url}");
        let headers = res.headers().clone();
        let cookie = set_cookie(&headers, "mcp_browser").or_else(|| browser.map(str::to_owned));
        let html = res.text().await.expect("the login page");
        LoginPage {
            request: hidden_input(&html, "request").expect("a request field"),
            csrf_token: hidden_input(&html, "csrf_token").expect("a csrf_token field"),
            cookie,
            html,
            headers,
        }
    }

    /// The page a browser shows after [`assert_wrong_credentials`]' redirect: `GET` of its
    /// `Location` with the browser's `cookie` and the cookies the redirect set.
    pub(crate) async fn page_after(&self, res: &Response, cookie: Option<&str>) -> (StatusCode, String) {
        let set: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect();
        let cookies: Vec<String> = cookie.map(str::to_owned).into_iter().chain(set).collect();
        let mut req = self.client.get(location(res).as_str());
        if !cookies.is_empty() {
            req = req.header(COOKIE, cookies.join("; "));
        }
        let page = req.send().await.expect("GET the sign-in page");
        (page.status(), page.text().await.expect("the page"))
    }

    /// `POST /login` with a form and, if given, a `Cookie` header, from the page's own origin
    /// as a browser sends it.
    pub(crate) async fn post_login<K: AsRef<str>, V: AsRef<str>>(
        &self,
        form: &[(K, V)],
        cookie: Option<&str>,
    ) -> Response {
        self.post_login_with(form, cookie, &[("origin", self.base.as_str())]).await
    }

    /// `POST /login` with a form, a `Cookie` header if given, and exactly the extra `headers`
    /// (no `Origin` unless among them).
    pub(crate) async fn post_login_with<K: AsRef<str>, V: AsRef<str>>(
        &self,
        form: &[(K, V)],
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        let mut req = self.client.post(self.url("/login")).form(&pairs);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("POST /login")
    }

    /// Sign in through the browser flow and press Allow. `Ok` with the callback URL carrying
    /// `code`, `state` and `iss`; `Err` with the final response when no code came back.
    pub(crate) async fn login(&self, auth_url: &str, username: &str, password: &str) -> Result<Url, Response> {
        let page = self.open_login(auth_url).await;
        let res = self.post_login(&page.form(username, password, "allow"), page.cookie.as_deref()).await;
        if res.status() != StatusCode::FOUND {
            return Err(res);
        }
        let callback = location(&res);
        if param(&callback, "code").is_none() {
            return Err(res);
        }
        assert_eq!(param(&callback, "error"), None, "a code never comes with an error: {callback}");
        assert_eq!(param(&callback, "iss").as_deref(), Some(self.base.as_str()), "{callback}");
        Ok(callback)
    }

    /// Sign `username` in with their password in a new browser, for a new public client;
    /// returns the browser's sign-in session cookie (`mcp_session=…`).
    pub(crate) async fn sign_in_session(&self, username: &str, password: &str) -> String {
        let client_id = self.register_public().await;
        let challenge = Pkce::new().challenge;
        let page = self.open_login(&self.authorize_url(&client_id, &challenge, STATE, &[])).await;
        let res = self.post_login(&page.form(username, password, "allow"), page.cookie.as_deref()).await;
        assert_eq!(res.status(), StatusCode::FOUND, "sign-in");
        set_cookie(res.headers(), "mcp_session").expect("a session cookie")
    }

    // ---- token endpoint --------------------------------------------------------------------

    /// `POST /token` with a form.
    pub(crate) async fn token(&self, form: &[(&str, &str)]) -> Response {
        self.client.post(self.url("/token")).form(form).send().await.expect("POST /token")
    }

    /// The `authorization_code` grant of a public client, with [`REDIRECT_URI`].
    pub(crate) async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// The `refresh_token` grant of a public client.
    pub(crate) async fn refresh(&self, client_id: &str, refresh_token: &str) -> Response {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)]).await
    }

    /// `POST /revoke` of a public client.
    pub(crate) async fn revoke(&self, client_id: &str, token: &str) -> Response {
        let form = [("token", token), ("client_id", client_id)];
        self.client.post(self.url("/revoke")).form(&form).send().await.expect("POST /revoke")
    }

    /// Register a public client, sign `username` in (with `extra` authorization parameters,
    /// e.g. a scope) and exchange the code. Panics if any step fails.
    pub(crate) async fn sign_in(&self, username: &str, password: &str, extra: &[(&str, &str)]) -> Tokens {
        let client_id = self.register_public().await;
        self.sign_in_client(&client_id, username, password, extra).await
    }

    /// [`TestServer::sign_in`] for an already registered public client.
    pub(crate) async fn sign_in_client(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> Tokens {
        let Pkce { verifier, challenge } = Pkce::new();
        let auth = self.authorize_url(client_id, &challenge, STATE, extra);
        let callback = self.login(&auth, username, password).await.expect("sign-in gives a code");
        let code = param(&callback, "code").expect("a code");
        let res = self.exchange(client_id, &code, &verifier).await;
        assert_eq!(res.status(), StatusCode::OK, "code exchange");
        tokens_of(client_id, res).await
    }

    // ---- MCP -------------------------------------------------------------------------------

    /// `POST /mcp` with a bearer token (if any), a JSON-RPC body and a session (if any).
    pub(crate) async fn mcp(&self, token: Option<&str>, body: &Value, session: Option<&str>) -> Response {
        self.mcp_at("/mcp", token, body, session).await
    }

    /// [`TestServer::mcp`] at another path (`/mcp/`).
    pub(crate) async fn mcp_at(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        session: Option<&str>,
    ) -> Response {
        self.mcp_post(path, token, session).body(body.to_string()).send().await.expect("POST /mcp")
    }

    /// A `POST` to the MCP endpoint at `path` with the headers a client sends, for a body the
    /// test writes itself (bytes a `Value` cannot hold, or a send that may fail).
    pub(crate) fn mcp_post(&self, path: &str, token: Option<&str>, session: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(self.url(path))
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s).header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        req
    }

    /// `initialize` + `notifications/initialized` at `path`; returns the session id.
    pub(crate) async fn initialize_at(&self, path: &str, token: &str) -> String {
        let res = self.mcp_at(path, Some(token), &initialize_request(), None).await;
        assert_eq!(res.status(), StatusCode::OK, "initialize");
        let session = header(&res, "mcp-session-id");
        assert!(!session.is_empty(), "initialize opens a session");
        let reply = rpc_reply(res).await;
        assert!(reply["result"]["protocolVersion"].is_string(), "initialize result: {reply}");
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let res = self.mcp_at(path, Some(token), &note, Some(&session)).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "notifications/initialized");
        session
    }

    /// `initialize` at `/mcp`; returns the session id.
    pub(crate) async fn initialize(&self, token: &str) -> String {
        self.initialize_at("/mcp", token).await
    }

    /// A JSON-RPC request on a session; returns the reply message (panics unless HTTP 200).
    pub(crate) async fn rpc(&self, token: &str, session: &str, id: u64, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let res = self.mcp(Some(token), &body, Some(session)).await;
        assert_eq!(res.status(), StatusCode::OK, "{method}");
        rpc_reply(res).await
    }

    /// `tools/call` of a tool without arguments; returns the reply message.
    pub(crate) async fn call_tool(&self, token: &str, session: &str, name: &str) -> Value {
        self.rpc(token, session, 7, "tools/call", json!({ "name": name, "arguments": {} })).await
    }
}

/// The `initialize` request of the harness.
pub(crate) fn initialize_request() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "mcp-oauth-kit-tests", "version": "0.0.0" },
        },
    })
}

/// A `tools/call` request body.
pub(crate) fn tool_call(id: u64, name: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": name, "arguments": {} } })
}

/// The JSON-RPC reply in a response that is JSON or an SSE stream (`data:` lines).
pub(crate) async fn rpc_reply(res: Response) -> Value {
    let content_type = header(&res, "content-type");
    let text = res.text().await.expect("an MCP response body");
    mcp_test_support::rpc_reply(&content_type, &text).unwrap_or_else(|| panic!("no JSON-RPC reply in {text:?}"))
}

/// Parse a successful token response of `client_id`.
pub(crate) async fn tokens_of(client_id: &str, res: Response) -> Tokens {
    assert_eq!(res.status(), StatusCode::OK, "token response");
    let body: Value = res.json().await.expect("a JSON token response");
    Tokens {
        client_id: client_id.to_owned(),
        access: body["access_token"].as_str().expect("an access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("a refresh_token").to_owned(),
        body,
    }
}

/// Serve `body` (made from the document's URL) as a client metadata document, as JSON, to
/// every request on a loopback port; returns the document's URL.
pub(crate) async fn serve_document(path: &str, body: impl Fn(&str) -> String + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://127.0.0.1:{}{path}", listener.local_addr().expect("addr").port());
    let doc = body(&url);
    tokio::spawn(async move {
        for _ in 0..20 {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=60\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                doc.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    url
}
