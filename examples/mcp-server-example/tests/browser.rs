//! A real sign-in in headless Chromium, driven over the W3C WebDriver HTTP API of
//! `chromedriver`: open an authorization URL, type alice's password, press Allow, and end at
//! the client's loopback redirect URI with a code.
//!
//! An HTTP-level test cannot see what a browser adds or blocks on its own: the `Origin` it
//! sends on the form's POST (under `Referrer-Policy: no-referrer` Chromium sends `Origin: null`,
//! which the sign-in form refuses as foreign), `Sec-Fetch-Site`, the cookies it keeps, and CSP
//! rules applied to the redirect after the POST.
//!
//! The greeting card's MCP App runs here too, inside a small host page that this test serves:
//! the host answers `ui/initialize` with theme variables, and forwards the View's `tools/call`
//! to the real server with alice's access token.
//!
//! Needs `/usr/bin/chromedriver` and Chromium (`apt-get install chromium chromium-driver`;
//! `CHROMEDRIVER` names another driver). Without them the tests print a notice and pass,
//! unless `REQUIRE_BROWSER=1` (CI sets it). `BROWSER_SCREENSHOT=file.png` saves a screenshot
//! of the sign-in page, `CARD_SCREENSHOT=file.png` one of the card in its host, and
//! `PAGE_SCREENSHOTS=dir` the sign-in pages of the layout test (light, dark, 320 px wide,
//! keyboard focus, the error page; with the upstream provider's button: light, dark, 320 px
//! wide, and the consent page of a user signed in there).
//!
//! The upstream sign-in runs here too, against node-oidc-provider (see
//! `mcp_test_support::oidc_provider`; it needs Node.js, and fails without it only under
//! `REQUIRE_OIDC_PROVIDER=1`): the button on our page, the provider's own pages, the code, a
//! tool that names the provider's user, and the sign-in session that the next client's
//! authorization finds.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use serde_json::{Value, json};
use support::{Launch, Pkce, STATE, param, rpc_reply};

/// How long chromedriver may take to answer, and the browser to reach the redirect URI.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the client's redirect URI may wait for the browser after Allow was clicked.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    path.exists().then_some(path)
}

/// chromedriver, or `None` after a notice when there is none; fails instead under
/// `REQUIRE_BROWSER=1`.
fn chromedriver_or_skip() -> Option<PathBuf> {
    let found = chromedriver();
    if found.is_none() {
        assert!(
            std::env::var("REQUIRE_BROWSER").as_deref() != Ok("1"),
            "REQUIRE_BROWSER=1 but there is no chromedriver (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver, or set CHROMEDRIVER)");
    }
    found
}

/// A port nobody listens on right now (the server and chromedriver take theirs by number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A child process, killed when dropped (panics included).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The chromedriver process.
struct Driver {
    _process: Process,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start(path: &PathBuf) -> Self {
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
        let http = reqwest::Client::builder().timeout(BROWSER_TIMEOUT).build().expect("an HTTP client");
        let driver = Self { _process: Process(child), base: format!("http://127.0.0.1:{port}"), http };
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        loop {
            let status = driver.http.get(format!("{}/status", driver.base)).send().await;
            if let Ok(res) = status
                && let Ok(body) = res.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready within {BROWSER_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let reply: Value = res.json().await.unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        assert!(status.is_success(), "{method} {path}: {status} {reply}");
        reply["value"].clone()
    }

    async fn new_session(&self) -> Session<'_> {
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=900,900"],
            },
        }}});
        let value = self.command(reqwest::Method::POST, "/session", Some(capabilities)).await;
        let id = value["sessionId"].as_str().expect("a session id").to_owned();
        Session { driver: self, path: format!("/session/{id}") }
    }
}

/// One browser window of chromedriver.
struct Session<'a> {
    driver: &'a Driver,
    path: String,
}

impl Session<'_> {
    async fn post(&self, path: &str, body: Value) -> Value {
        self.driver.command(reqwest::Method::POST, &format!("{}{path}", self.path), Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.driver.command(reqwest::Method::GET, &format!("{}{path}", self.path), None).await
    }

    async fn navigate(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn current_url(&self) -> String {
        self.get("/url").await.as_str().expect("a URL").to_owned()
    }

    async fn element(&self, css: &str) -> String {
        let found = self.post("/element", json!({ "using": "css selector", "value": css })).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text })).await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.get(&format!("/element/{id}/text")).await.as_str().expect("an element's text").to_owned()
    }

    async fn enabled(&self, css: &str) -> bool {
        let id = self.element(css).await;
        self.get(&format!("/element/{id}/enabled")).await.as_bool().expect("whether it is enabled")
    }

    /// Run `script` (a function body) in the current frame; returns what it returns.
    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// A CSS property of an element as the browser computed it, e.g. `rgb(0, 122, 94)`.
    async fn computed(&self, css: &str, property: &str) -> String {
        let script =
            format!("return getComputedStyle(document.querySelector({css:?})).getPropertyValue({property:?});");
        self.script(&script).await.as_str().expect("a computed value").to_owned()
    }

    /// Look into the `<iframe>` that `css` selects; [`Session::leave_frame`] comes back.
    async fn enter_frame(&self, css: &str) {
        let id = self.element(css).await;
        self.post("/frame", json!({ "id": { ELEMENT: id } })).await;
    }

    async fn leave_frame(&self) {
        self.post("/frame/parent", json!({})).await;
    }

    /// Poll the text of `css` until `done` holds for it (at most [`BROWSER_TIMEOUT`]).
    async fn wait_for_text(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        loop {
            let text = self.text(css).await;
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} still shows {text:?} after {BROWSER_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let png = self.get("/screenshot").await;
        STANDARD.decode(png.as_str().expect("base64")).expect("a PNG")
    }

    /// Resize the window (its outer size, in CSS pixels at scale 1).
    async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height })).await;
    }

    /// Make the page see `prefers-color-scheme: dark` (or light), through the DevTools protocol
    /// that chromedriver passes on.
    async fn prefer_colour_scheme(&self, scheme: &str) {
        let params = json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] });
        self.post("/goog/cdp/execute", json!({ "cmd": "Emulation.setEmulatedMedia", "params": params })).await;
    }

    /// Press keys in the focused element (W3C WebDriver key codes, e.g. `\u{E004}` for Tab).
    async fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| [json!({ "type": "keyDown", "value": k }), json!({ "type": "keyUp", "value": k })])
            .collect();
        self.post("/actions", json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })).await;
    }

    /// The `id` of the element that has the focus.
    async fn focused_id(&self) -> String {
        self.script("return document.activeElement.id;").await.as_str().unwrap_or_default().to_owned()
    }

    /// Whether the page is wider than the window (a horizontal scroll bar).
    async fn scrolls_sideways(&self) -> bool {
        let value = self.script("return document.documentElement.scrollWidth > window.innerWidth;").await;
        value.as_bool().expect("a boolean")
    }

    /// Save a screenshot as `name`.png in the `PAGE_SCREENSHOTS` folder, if it is set.
    async fn save_screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("PAGE_SCREENSHOTS") {
            let path = PathBuf::from(dir).join(format!("{name}.png"));
            std::fs::write(&path, self.screenshot().await).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    async fn close(self) {
        self.driver.command(reqwest::Method::DELETE, &self.path, None).await;
    }
}

/// The client's loopback redirect URI: answers its first few requests with a small page, and
/// hands the first request's target (path and query) to the test.
fn callback_listener() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the callback listener");
    let port = listener.local_addr().expect("its address").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        // The browser may also ask for a favicon; a few connections are plenty.
        for socket in listener.incoming().take(8) {
            let Ok(mut socket) = socket else { continue };
            let _ = socket.set_read_timeout(Some(BROWSER_TIMEOUT));
            let mut head = vec![0u8; 8192];
            let n = socket.read(&mut head).unwrap_or(0);
            let line = String::from_utf8_lossy(&head[..n]).lines().next().unwrap_or_default().to_owned();
            if let (Some(target), Some(tx)) = (line.split_whitespace().nth(1), tx.take()) {
                let _ = tx.send(target.to_owned());
            }
            let body = "<!doctype html><title>Signed in</title><p>You can close this window.</p>";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes());
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_and_reaches_the_client_with_a_code() {
    let Some(driver_path) = chromedriver_or_skip() else { return };
    let (server, port) = start_where_the_browser_goes().await;
    let client_id = server.register_public().await;
    let (callback_port, callback) = callback_listener();
    // A loopback redirect URI may use any port (RFC 8252 §7.3).
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let authorize = authorization_url(&server.url("/authorize"), &client_id, &redirect_uri);

    let driver = Driver::start(&driver_path).await;
    let browser = driver.new_session().await;
    browser.navigate(authorize.as_str()).await;
    let at = browser.current_url().await;
    assert!(at.starts_with(&server.url("/login?request=")), "the browser is on the sign-in page, not {at}");
    if let Some(file) = std::env::var_os("BROWSER_SCREENSHOT") {
        std::fs::write(&file, browser.screenshot().await).expect("write the screenshot");
    }
    browser.type_into("#username", "alice").await;
    browser.type_into("#password", "password123").await;
    browser.click(r#"button[value="allow"]"#).await;

    // WebDriver's click returns once the navigation it caused has loaded; the wait is a bound.
    let Ok(target) = callback.recv_timeout(CALLBACK_TIMEOUT) else {
        let at = browser.current_url().await;
        let page = browser.get("/source").await;
        let text: String = page.as_str().unwrap_or_default().chars().take(600).collect();
        panic!("the browser did not reach the redirect URI within {CALLBACK_TIMEOUT:?}; it is at {at}: {text}");
    };
    let arrived = Url::parse(&format!("http://127.0.0.1:{callback_port}{target}")).expect("a URL");
    assert_eq!(arrived.path(), "/callback");
    assert!(param(&arrived, "code").is_some_and(|c| c.starts_with("mcp_code_")), "a code: {arrived}");
    assert_eq!(param(&arrived, "state").as_deref(), Some(STATE));
    assert_eq!(param(&arrived, "iss"), Some(format!("http://127.0.0.1:{port}")));
    let at = browser.current_url().await;
    assert!(at.starts_with(&redirect_uri), "the browser ended at the client, not {at}");
    browser.close().await;
}

/// The server on a port of its own, with that address as its public URL: the browser follows
/// the public URL, so it must be where the server listens.
async fn start_where_the_browser_goes() -> (support::Server, u16) {
    let port = free_port();
    let server = Launch { public_url: format!("http://127.0.0.1:{port}"), env: Vec::new() }
        .env("PORT", port.to_string())
        .env("DATABASE_URL", "memory")
        .start()
        .await;
    (server, port)
}

/// An authorization request of `client_id` with a fresh PKCE challenge.
fn authorization_url(authorize_endpoint: &str, client_id: &str, redirect_uri: &str) -> Url {
    authorization_url_with(authorize_endpoint, client_id, redirect_uri, &Pkce::new().challenge)
}

/// An authorization request of `client_id` with the PKCE `challenge`.
fn authorization_url_with(authorize_endpoint: &str, client_id: &str, redirect_uri: &str, challenge: &str) -> Url {
    Url::parse_with_params(
        authorize_endpoint,
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", STATE),
        ],
    )
    .expect("an authorization URL")
}

/// The page's background as the browser computed it, light and dark (`assets/pages.css`).
const LIGHT_BACKGROUND: &str = "rgb(244, 245, 247)";
const DARK_BACKGROUND: &str = "rgb(18, 21, 27)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_pages_fit_a_phone_follow_dark_mode_and_work_by_keyboard() {
    let Some(driver_path) = chromedriver_or_skip() else { return };
    let (server, _) = start_where_the_browser_goes().await;
    let client_id = server.register_public().await;
    // Nothing listens there: this test never gets as far as the redirect.
    let authorize = authorization_url(&server.url("/authorize"), &client_id, "http://127.0.0.1:9/callback");
    let driver = Driver::start(&driver_path).await;
    let browser = driver.new_session().await;

    // Light, at the default width: the username has the focus.
    browser.navigate(authorize.as_str()).await;
    assert_eq!(browser.computed("body", "background-color").await, LIGHT_BACKGROUND);
    assert_eq!(browser.focused_id().await, "username", "the first field has the focus");
    browser.save_screenshot("light").await;

    // By keyboard: type the name, Tab to the password, type a wrong one, Enter.
    browser.keys("alice\u{E004}").await;
    assert_eq!(browser.focused_id().await, "password");
    browser.keys("not-her-password\u{E007}").await;
    // Enter returns before the navigation it starts: wait for the page it leads to.
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    while !browser.current_url().await.contains("&failed=") {
        assert!(Instant::now() < deadline, "no page after the wrong password within {BROWSER_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let loaded = "return document.readyState === 'complete';";
    while browser.script(loaded).await != json!(true) {
        assert!(Instant::now() < deadline, "the page did not load within {BROWSER_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The wrong password: the title says so, the field is marked and has the focus back.
    let title = browser.script("return document.title;").await;
    assert!(title.as_str().is_some_and(|t| t.starts_with("Error: ")), "the title: {title}");
    assert_eq!(browser.focused_id().await, "password", "the focus is on the field to fix");
    let marked = "const p = document.getElementById('password'); \
                  return [p.getAttribute('aria-invalid'), p.getAttribute('aria-describedby')];";
    assert_eq!(browser.script(marked).await, json!(["true", "login-error"]));
    assert_eq!(browser.text("#login-error").await, "Wrong username or password.");
    // It came by a redirect after the POST: a reload fetches the page again, posts nothing.
    let at = browser.current_url().await;
    assert!(at.contains("&failed="), "the page after a wrong password is a GET: {at}");
    browser.post("/refresh", json!({})).await;
    assert_eq!(browser.current_url().await, at);
    assert_eq!(browser.text("#login-error").await, "Wrong username or password.");
    assert_eq!(browser.focused_id().await, "password", "after the reload too");
    // A keyboard user sees where the focus is: Tab to the Allow button, which draws an outline.
    browser.keys("\u{E004}").await;
    let outline = browser
        .script("const s = getComputedStyle(document.activeElement); return [document.activeElement.value, s.outlineStyle, s.outlineWidth];")
        .await;
    assert_eq!(outline, json!(["allow", "solid", "3px"]), "the focused button's outline");
    browser.save_screenshot("keyboard-focus").await;

    // Dark.
    browser.prefer_colour_scheme("dark").await;
    assert_eq!(browser.computed("body", "background-color").await, DARK_BACKGROUND);
    browser.save_screenshot("dark").await;
    browser.prefer_colour_scheme("light").await;

    // 320 px wide (a small phone): the sign-in page and the error page fit without scrolling
    // sideways, even with a long client name.
    browser.resize(320, 800).await;
    let inner = browser.script("return window.innerWidth;").await;
    assert!(inner.as_u64().is_some_and(|w| w <= 320), "the window is narrow: {inner}");
    browser
        .navigate(authorization_url(&server.url("/authorize"), &client_id, "http://127.0.0.1:9/callback").as_str())
        .await;
    assert!(!browser.scrolls_sideways().await, "the sign-in page scrolls sideways at 320 px");
    browser.save_screenshot("narrow").await;
    browser.navigate(&server.url("/login?request=gone")).await;
    assert!(!browser.scrolls_sideways().await, "the error page scrolls sideways at 320 px");
    assert_eq!(browser.computed("main", "max-width").await, "400px", "the error page wears the sign-in page's styles");
    let text = browser.text("main").await;
    assert!(text.contains("This sign-in link has expired. Start again from your app."), "{text}");
    browser.save_screenshot("error-narrow").await;
    browser.resize(900, 900).await;
    browser.save_screenshot("error").await;
    browser.close().await;
}

/// The greeting card, as the server embeds it in its results.
const CARD: &str = include_str!("../assets/greeting_card.html");

/// The accent the test host sets (`--color-text-info`), and the card's own light-theme accent
/// (`--gc-accent`, `#6d28d9`) that shows when no host sets one.
const HOST_ACCENT: &str = "rgb(0, 122, 94)";
const OWN_ACCENT: &str = "rgb(109, 40, 217)";

/// A minimal MCP Apps host: it embeds the card in an iframe, answers `ui/initialize` with a
/// light theme, its variables and the `serverTools` capability, sends the tool result once the
/// View is initialized, and forwards the View's `tools/call` to `POST /tools-call`.
fn host_page(tool_result: &Value) -> String {
    let context = json!({
        "theme": "light",
        "styles": { "variables": {
            "--color-text-info": HOST_ACCENT,
            "--color-ring-primary": "rgb(0, 90, 160)",
            "--color-text-inverse": "rgb(255, 255, 255)",
        }},
    });
    // The result embeds the card's HTML: `</script>` in it must not end the host's script.
    let tool_result = tool_result.to_string().replace("</", "<\\/");
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>Test host</title>
<iframe id="view" src="/card.html" style="width:640px;height:420px;border:1px solid #ccc"></iframe>
<script>
const CONTEXT = {context};
const RESULT = {tool_result};
const view = document.getElementById("view");
window.addEventListener("message", async (event) => {{
  if (event.source !== view.contentWindow) return;
  const m = event.data;
  const answer = (body) => view.contentWindow.postMessage(Object.assign({{ jsonrpc: "2.0", id: m.id }}, body), "*");
  if (m.method === "ui/initialize") {{
    answer({{ result: {{ protocolVersion: "2026-01-26", hostInfo: {{ name: "test-host", version: "0" }},
      hostCapabilities: {{ serverTools: {{}} }}, hostContext: CONTEXT }} }});
  }} else if (m.method === "ui/notifications/initialized") {{
    view.contentWindow.postMessage({{ jsonrpc: "2.0", method: "ui/notifications/tool-result", params: RESULT }}, "*");
  }} else if (m.method === "tools/call") {{
    const res = await fetch("/tools-call", {{ method: "POST", headers: {{ "content-type": "application/json" }}, body: JSON.stringify(m) }});
    const reply = await res.json();
    answer(reply.error ? {{ error: reply.error }} : {{ result: reply.result }});
  }}
}});
</script>"#
    )
}

/// A `tools/call` the View sent, and where its JSON-RPC reply goes.
type Forwarded = (Value, std::sync::mpsc::Sender<Value>);

/// Serves the host page and the card, and hands each `POST /tools-call` body to the test,
/// which forwards it to the MCP server; answers with what the test sends back.
fn host_server(page: String) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Forwarded>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the host page's listener");
    let port = listener.local_addr().expect("its address").port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        // The page, the card, a favicon and a few calls: a bound on what one test asks.
        for socket in listener.incoming().take(32) {
            let Ok(mut socket) = socket else { continue };
            let _ = socket.set_read_timeout(Some(BROWSER_TIMEOUT));
            let Some((target, body)) = read_request(&mut socket) else { continue };
            let (content_type, reply) = match target.as_str() {
                "GET /host.html" => ("text/html; charset=utf-8", page.clone()),
                "GET /card.html" => ("text/html; charset=utf-8", CARD.to_owned()),
                "POST /tools-call" => {
                    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
                    let call = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = tx.send((call, reply_tx));
                    let reply = reply_rx.recv_timeout(BROWSER_TIMEOUT).unwrap_or_else(|_| {
                        json!({ "error": {
                        "code": -32603, "message": "the test did not forward the call" } })
                    });
                    ("application/json", reply.to_string())
                }
                _ => ("text/plain", String::new()),
            };
            let status = if reply.is_empty() { "404 Not Found" } else { "200 OK" };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                reply.len()
            );
            let _ = socket.write_all(head.as_bytes()).and_then(|()| socket.write_all(reply.as_bytes()));
        }
    });
    (port, rx)
}

/// `METHOD /path` and the body of one HTTP/1.1 request (bounded to 64 KiB).
fn read_request(socket: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = socket.read(&mut chunk).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&chunk[..n]);
        if data.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut words = head.lines().next()?.split_whitespace();
    let target = format!("{} {}", words.next()?, words.next()?);
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(64 * 1024);
    while data.len() < head_end + length {
        let n = socket.read(&mut chunk).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&chunk[..n]);
    }
    Some((target, data[head_end..head_end + length].to_vec()))
}

/// Whether `text` is exactly what `roll_dice` says for alice and a six-sided die.
fn is_alices_roll(text: &str) -> bool {
    text.strip_prefix("alice rolled a ")
        .and_then(|rest| rest.strip_suffix(" on a 6-sided die."))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| (1..=6).contains(&n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_greeting_card_rolls_a_die_through_its_host_and_wears_the_hosts_accent() {
    let Some(driver_path) = chromedriver_or_skip() else { return };
    let server = Launch::local().env("DATABASE_URL", "memory").start().await;
    let client_id = server.register_public().await;
    let tokens = server.sign_in(&client_id, "alice", "password123").await;
    let session = server.initialize(&tokens.access).await;
    let card_call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "greeting_card", "arguments": { "message": "Roll for it!" } } });
    let card = rpc_reply(server.mcp(&tokens.access, &card_call, Some(&session)).await).await;
    assert_eq!(card["result"]["structuredContent"], json!({ "username": "alice", "message": "Roll for it!" }));

    let (host_port, mut calls) = host_server(host_page(&card["result"]));
    // The host's part: each tools/call of the View goes to the server as alice, unchanged.
    let endpoint = server.at.clone();
    let (access, mcp_session) = (tokens.access.clone(), session.clone());
    let forwarded = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let seen = forwarded.clone();
    let forwarder = tokio::spawn(async move {
        while let Some((call, reply)) = calls.recv().await {
            seen.lock().expect("the list of calls").push(call.clone());
            let _ = reply.send(rpc_reply(endpoint.mcp(&access, &call, Some(&mcp_session)).await).await);
        }
    });

    let driver = Driver::start(&driver_path).await;
    let browser = driver.new_session().await;
    browser.navigate(&format!("http://127.0.0.1:{host_port}/host.html")).await;
    browser.enter_frame("#view").await;
    // The tool result arrived: the card greets alice, and the host lets it call tools.
    browser.wait_for_text("#name", |t| t == "alice").await;
    assert_eq!(browser.text("#message").await, "Roll for it!");
    assert!(browser.enabled("#roll").await, "the button works under a host with serverTools");
    browser.click("#roll").await;
    let rolled = browser.wait_for_text("#roll-result", |t| t != "Rolling…" && !t.is_empty()).await;
    assert!(is_alices_roll(&rolled), "the card shows alice's roll, not {rolled:?}");
    // The accent follows the host's --color-text-info.
    assert_eq!(browser.computed("#roll", "background-color").await, HOST_ACCENT);
    assert_eq!(browser.computed("#name", "color").await, HOST_ACCENT);
    assert_eq!(browser.computed("#roll", "color").await, "rgb(255, 255, 255)");
    if let Some(file) = std::env::var_os("CARD_SCREENSHOT") {
        browser.leave_frame().await;
        std::fs::write(&file, browser.screenshot().await).expect("write the screenshot");
        browser.enter_frame("#view").await;
    }
    browser.leave_frame().await;

    // Without a host: the card shows, the button stays off, the colours are the card's own.
    browser.navigate(&format!("http://127.0.0.1:{host_port}/card.html")).await;
    assert_eq!(browser.text("#message").await, "Waiting for a greeting… (no MCP host connected)");
    assert_eq!(browser.text("#roll-result").await, "Rolling needs an MCP host.");
    assert!(!browser.enabled("#roll").await, "no host, no roll");
    assert_eq!(browser.computed("#roll", "background-color").await, OWN_ACCENT);
    browser.close().await;
    drop(driver);

    // Exactly one call went through the host: the View's own, as the View sent it.
    forwarder.abort();
    let forwarded = forwarded.lock().expect("the list of calls").clone();
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    assert_eq!(forwarded[0]["method"], "tools/call");
    assert_eq!(forwarded[0]["params"], json!({ "name": "roll_dice", "arguments": { "sides": 6 } }));
}

/// node-oidc-provider (see `mcp_test_support::oidc_provider`) for a server at `public_url`;
/// its issuer is `http://127.0.0.1:{port}`.
struct UpstreamProvider {
    _process: Process,
    issuer: String,
    _dir: mcp_test_support::TempDir,
}

/// The client id and secret our server has at the provider.
const UPSTREAM_CLIENT: (&str, &str) = ("mcp-kit", "test-secret-of-the-kit-at-the-provider");

impl UpstreamProvider {
    /// Started and serving its discovery document, or `None` without Node.js (a notice, or a
    /// failure under `REQUIRE_OIDC_PROVIDER=1`).
    async fn start(public_url: &str) -> Option<Self> {
        use mcp_test_support::oidc_provider;
        if !oidc_provider::node_or_skip() {
            return None;
        }
        tokio::task::spawn_blocking(oidc_provider::install).await.expect("npm ci ran");
        let dir = mcp_test_support::TempDir::new("upstream-browser");
        let env = [
            ("OIDC_PORT", "0".to_owned()),
            ("OIDC_RESOURCE", format!("{public_url}/mcp")),
            ("OIDC_CLIENT_ID", UPSTREAM_CLIENT.0.to_owned()),
            ("OIDC_CLIENT_SECRET", UPSTREAM_CLIENT.1.to_owned()),
            ("OIDC_REDIRECT_URI", format!("{public_url}/oauth/callback")),
            ("OIDC_KEYS_OUT", dir.path().join("keys.json").display().to_string()),
        ];
        let log = dir.path().join("provider.log");
        let (child, port) =
            tokio::task::spawn_blocking(move || oidc_provider::spawn(&env, &log)).await.expect("the provider started");
        let provider = Self { _process: Process(child), issuer: format!("http://127.0.0.1:{port}"), _dir: dir };
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
        let deadline = Instant::now() + BROWSER_TIMEOUT;
        while !reqwest::get(&discovery).await.is_ok_and(|r| r.status().is_success()) {
            assert!(Instant::now() < deadline, "no discovery document at {discovery}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(provider)
    }
}

/// Wait (within [`BROWSER_TIMEOUT`]) until the browser's URL starts with `prefix` and the page
/// has loaded.
async fn wait_for_page(browser: &Session<'_>, prefix: &str) {
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    loop {
        let at = browser.current_url().await;
        let loaded = browser.script("return document.readyState === 'complete';").await == json!(true);
        if at.starts_with(prefix) && loaded {
            return;
        }
        assert!(Instant::now() < deadline, "the browser is at {at}, not {prefix}…");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new client's authorization request, opened in the browser.
struct Authorization {
    client_id: String,
    /// The client's loopback redirect URI, and what arrives there.
    redirect_uri: String,
    arrived: std::sync::mpsc::Receiver<String>,
    verifier: String,
}

impl Authorization {
    async fn open(server: &support::Server, browser: &Session<'_>) -> Self {
        let client_id = server.register_public().await;
        let (callback_port, arrived) = callback_listener();
        let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
        let Pkce { verifier, challenge } = Pkce::new();
        browser
            .navigate(authorization_url_with(&server.url("/authorize"), &client_id, &redirect_uri, &challenge).as_str())
            .await;
        Self { client_id, redirect_uri, arrived, verifier }
    }

    /// The code that reached the client, redeemed: its access token calls `roll_dice`, which
    /// names `user`.
    async fn rolls_as(&self, server: &support::Server, user: &str) {
        let target = self.arrived.recv_timeout(CALLBACK_TIMEOUT).expect("the client's redirect URI was reached");
        let arrived = Url::parse(&format!("http://127.0.0.1{target}")).expect("a URL");
        let code = param(&arrived, "code").unwrap_or_else(|| panic!("no code: {target}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", self.client_id.as_str()),
            ("code_verifier", self.verifier.as_str()),
        ];
        let res = reqwest::Client::new().post(server.url("/token")).form(&form).send().await.expect("POST /token");
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        let tokens: Value = res.json().await.expect("a token response");
        let token = tokens["access_token"].as_str().expect("an access token");
        let session = server.initialize(token).await;
        server.assert_rolls_as(token, Some(&session), user).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_at_the_upstream_provider_and_keeps_a_session() {
    let Some(driver_path) = chromedriver_or_skip() else { return };
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let Some(provider) = UpstreamProvider::start(&public_url).await else { return };
    let server = Launch { public_url: public_url.clone(), env: Vec::new() }
        .env("PORT", port.to_string())
        .env("DATABASE_URL", "memory")
        .env("OIDC_ISSUER", provider.issuer.as_str())
        .env("OIDC_CLIENT_ID", UPSTREAM_CLIENT.0)
        .env("OIDC_CLIENT_SECRET", UPSTREAM_CLIENT.1)
        .start()
        .await;
    let driver = Driver::start(&driver_path).await;
    let browser = driver.new_session().await;

    // Our sign-in page: the password form, and below it "Continue with" the provider (named by
    // its host), a secondary choice that fits a phone and follows dark mode.
    let client = Authorization::open(&server, &browser).await;
    assert!(browser.current_url().await.starts_with(&server.url("/login?request=")));
    assert_eq!(browser.text("form.upstream button").await, "Continue with 127.0.0.1");
    let below = "return document.querySelector('form.upstream').getBoundingClientRect().top \
                 > document.querySelector('#password').getBoundingClientRect().bottom;";
    assert_eq!(browser.script(below).await, json!(true), "the button comes after the password form");
    assert_ne!(
        browser.computed("form.upstream button", "background-color").await,
        browser.computed("button.primary", "background-color").await,
        "Allow stays the one primary button"
    );
    browser.save_screenshot("upstream-light").await;
    browser.prefer_colour_scheme("dark").await;
    assert_eq!(browser.computed("body", "background-color").await, DARK_BACKGROUND);
    let text = browser.computed("form.upstream button", "color").await;
    assert_eq!(text, browser.computed("main", "color").await, "the button's text follows the theme");
    browser.save_screenshot("upstream-dark").await;
    browser.prefer_colour_scheme("light").await;
    browser.resize(320, 800).await;
    assert!(!browser.scrolls_sideways().await, "the sign-in page with the button scrolls sideways at 320 px");
    browser.save_screenshot("upstream-narrow").await;
    browser.resize(900, 900).await;

    // The provider's own sign-in and consent pages, then back to the client with a code.
    browser.click("form.upstream button").await;
    wait_for_page(&browser, &format!("{}/", provider.issuer)).await;
    browser.type_into(r#"input[name="login"]"#, "u-carol").await;
    browser.type_into(r#"input[name="password"]"#, "any").await;
    browser.click(r#"button[type="submit"]"#).await;
    wait_for_page(&browser, &format!("{}/", provider.issuer)).await;
    browser.click(r#"button[type="submit"]"#).await;
    client.rolls_as(&server, "carol").await;

    // Another client in the same browser: our consent page, signed in as carol; Allow.
    let client = Authorization::open(&server, &browser).await;
    wait_for_page(&browser, &server.url("/login?request=")).await;
    assert_eq!(browser.text(".signed-in").await, "Signed in as carol.");
    browser.save_screenshot("upstream-consent").await;
    browser.click(r#"button[value="allow"]"#).await;
    client.rolls_as(&server, "carol").await;
    browser.close().await;
}
