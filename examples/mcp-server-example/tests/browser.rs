//! A real sign-in in headless Chromium, driven over the W3C WebDriver HTTP API of
//! `chromedriver`: open an authorization URL, type alice's password, press Allow, and end at
//! the client's loopback redirect URI with a code.
//!
//! An HTTP-level test cannot see what a browser adds or blocks on its own: the `Origin` it
//! sends on the form's POST (under `Referrer-Policy: no-referrer` Chromium sends `Origin: null`,
//! which the sign-in form refuses as foreign), `Sec-Fetch-Site`, the cookies it keeps, and CSP
//! rules applied to the redirect after the POST.
//!
//! Needs `/usr/bin/chromedriver` and Chromium (`apt-get install chromium chromium-driver`;
//! `CHROMEDRIVER` names another driver). Without them the test prints a notice and passes,
//! unless `REQUIRE_BROWSER=1` (CI sets it). `BROWSER_SCREENSHOT=file.png` saves a screenshot
//! of the sign-in page.

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
use support::{Launch, STATE, param, pkce};

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

/// A port nobody listens on right now (the server and chromedriver take theirs by number).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The chromedriver process, killed when dropped (panics included).
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        let driver = Self { child, base: format!("http://127.0.0.1:{port}"), http };
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

    async fn screenshot(&self) -> Vec<u8> {
        let png = self.get("/screenshot").await;
        STANDARD.decode(png.as_str().expect("base64")).expect("a PNG")
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
    let Some(driver_path) = chromedriver() else {
        assert!(
            std::env::var("REQUIRE_BROWSER").as_deref() != Ok("1"),
            "REQUIRE_BROWSER=1 but there is no chromedriver (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver, or set CHROMEDRIVER)");
        return;
    };
    // The browser follows the public URL, so it must be where the server listens.
    let port = free_port();
    let server = Launch { public_url: format!("http://127.0.0.1:{port}"), env: Vec::new() }
        .env("PORT", port.to_string())
        .env("DATABASE_URL", "memory")
        .start()
        .await;
    let client_id = server.register_public().await;
    let (callback_port, callback) = callback_listener();
    // A loopback redirect URI may use any port (RFC 8252 §7.3).
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let (_, challenge) = pkce();
    let authorize = Url::parse_with_params(
        &server.url("/authorize"),
        [
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", STATE),
        ],
    )
    .expect("an authorization URL");

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
