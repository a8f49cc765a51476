//! Sign-in sessions and remembered consent (`GET/POST /login`, `POST /logout`). A browser that
//! signed in is asked only to approve; one whose user asked to remember the decision for a
//! client goes straight back to that client, for the scopes approved, while the session lasts.
//! Never for another client, without the checkbox, after signing out, for more scopes, or for a
//! public client whose redirect URI any app on the device could claim. Also: the session
//! cookie's attributes, "Not you?", sign-out and its CSRF defences, CSRF on the consent-only
//! page (which takes a real same-origin submission), Deny there (back to the client: the user
//! has authenticated), expiry, and instances that share one store.

mod common;

use std::time::Duration;

use common::{
    PROXIED_HOST, Pkce, REDIRECT_URI, STATE, TestServer, header, hidden_input, location, param, text_of, tokens_of,
};
use reqwest::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use reqwest::{Response, StatusCode, Url};
use serde_json::json;

/// Where the web client below sends its users back: `https`, so only its owner gets the codes,
/// and a remembered consent may be used for it.
const WEB_REDIRECT: &str = "https://app.example.com/oauth/callback";

/// A page of ours, as the browser got it.
#[derive(Debug)]
struct Page {
    status: StatusCode,
    html: String,
}

impl Page {
    fn field(&self, name: &str) -> String {
        hidden_input(&self.html, name).unwrap_or_else(|| panic!("no {name} field on {}", self.html))
    }

    fn asks_password(&self) -> bool {
        self.html.contains(r#"type="password""#)
    }

    fn offers_to_remember(&self) -> bool {
        self.html.contains(r#"name="remember""#)
    }

    /// The consent-only page of a signed-in user.
    fn is_consent_for(&self, username: &str) -> bool {
        !self.asks_password() && self.html.contains(&format!("Signed in as <strong>{username}</strong>"))
    }
}

/// Where an authorization request ended.
#[derive(Debug)]
enum Landing {
    /// Back at the client, without a page.
    Client(Url),
    /// On a page of ours.
    Page(Page),
}

impl Landing {
    fn page(self) -> Page {
        match self {
            Landing::Page(page) => page,
            Landing::Client(url) => panic!("expected a page, went straight back to {url}"),
        }
    }

    fn client(self) -> Url {
        match self {
            Landing::Client(url) => url,
            Landing::Page(page) => panic!("expected a redirect to the client, got {}: {}", page.status, page.html),
        }
    }
}

/// A browser: it follows no redirect by itself, but keeps this server's cookies like one, and
/// sends every request to the test server (with the public `Host` when behind a "proxy").
struct Browser<'a> {
    server: &'a TestServer,
    host: Option<&'static str>,
    jar: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a TestServer) -> Self {
        Self { server, host: None, jar: Vec::new() }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn cookies(&self) -> String {
        self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Apply a response's `Set-Cookie`s: an empty value or `Max-Age=0` removes the cookie.
    fn keep(&mut self, res: &Response) {
        for set in res.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let Some((name, value)) = set.split(';').next().and_then(|p| p.split_once('=')) else { continue };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            self.jar.retain(|(n, _)| *n != name);
            if !value.is_empty() && !set.contains("Max-Age=0") {
                self.jar.push((name, value));
            }
        }
    }

    fn local(&self, url: &str) -> String {
        let url = Url::parse(url).unwrap_or_else(|_| Url::parse(&self.server.url(url)).expect("a URL"));
        match url.query() {
            Some(q) => self.server.url(&format!("{}?{q}", url.path())),
            None => self.server.url(url.path()),
        }
    }

    fn request(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = if self.jar.is_empty() { req } else { req.header(COOKIE, self.cookies()) };
        match self.host {
            Some(host) => req.header(HOST, host),
            None => req,
        }
    }

    async fn get(&mut self, url: &str) -> Response {
        let req = self.request(self.server.client.get(self.local(url)));
        let res = req.send().await.expect("GET");
        self.keep(&res);
        res
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Response {
        let mut req = self.request(self.server.client.post(self.server.url(path)).form(form));
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        let res = req.send().await.expect("POST");
        self.keep(&res);
        res
    }

    /// Follow an authorization URL: `/authorize`, then the login page it redirects to.
    async fn authorize(&mut self, auth_url: &str) -> Landing {
        let res = self.get(auth_url).await;
        assert_eq!(res.status(), StatusCode::FOUND, "GET {auth_url}");
        let login = location(&res);
        assert_eq!(login.path(), "/login", "{login}");
        self.open(login.as_str()).await
    }

    /// The page a new authorization request of the web client `client_id` for `scope`
    /// lands on (for tests that do not redeem the code; [`request`] keeps the verifier).
    async fn authorize_web(&mut self, client_id: &str, scope: &str) -> Page {
        let url = request(self.server, client_id, WEB_REDIRECT, scope).url;
        self.authorize(&url).await.page()
    }

    /// `GET` a login URL.
    async fn open(&mut self, login_url: &str) -> Landing {
        let res = self.get(login_url).await;
        if res.status() == StatusCode::FOUND {
            return Landing::Client(location(&res));
        }
        Landing::Page(Page { status: res.status(), html: res.text().await.expect("a page") })
    }

    /// The origin of this server's pages, as the browser sends it on their forms.
    fn own_origin(&self) -> String {
        match self.host {
            Some(host) => format!("https://{host}"),
            None => self.server.base.clone(),
        }
    }

    /// Submit a page's main form: its hidden fields, `fields`, and the button `decision`.
    async fn submit(&mut self, page: &Page, fields: &[(&str, &str)], decision: &str) -> Response {
        let origin = self.own_origin();
        self.submit_from(page, fields, decision, Some(&origin)).await
    }

    /// [`Browser::submit`] with the `Origin` header `origin` (none for `None`).
    async fn submit_from(
        &mut self,
        page: &Page,
        fields: &[(&str, &str)],
        decision: &str,
        origin: Option<&str>,
    ) -> Response {
        let (request, csrf) = (page.field("request"), page.field("csrf_token"));
        let mut form = vec![("request", request.as_str()), ("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        form.push(("decision", decision));
        self.post("/login", &form, origin).await
    }

    /// Sign in on a sign-in page and press Allow, ticking "remember" if asked; the callback.
    async fn sign_in(&mut self, page: &Page, username: &str, password: &str, remember: bool) -> Url {
        assert!(page.asks_password(), "a sign-in page: {}", page.html);
        let mut fields = vec![("username", username), ("password", password)];
        if remember {
            fields.push(("remember", "1"));
        }
        let res = self.submit(page, &fields, "allow").await;
        assert_eq!(res.status(), StatusCode::FOUND, "sign-in as {username}");
        self.approved(&res)
    }

    /// Press Allow on the consent-only page, ticking "remember" if asked; the callback.
    async fn allow(&mut self, page: &Page, remember: bool) -> Url {
        let fields: &[(&str, &str)] = if remember { &[("remember", "1")] } else { &[] };
        let res = self.submit(page, fields, "allow").await;
        assert_eq!(res.status(), StatusCode::FOUND, "allow");
        self.approved(&res)
    }

    /// Follow an authorization URL that must go straight back to the client with a code (a
    /// remembered consent): no page on the way.
    async fn straight_back(&mut self, auth_url: &str) -> Url {
        let callback = self.authorize(auth_url).await.client();
        assert_code(&callback, &self.own_origin());
        callback
    }

    /// The callback of an approval `res`: a redirect carrying a code, our `state` and `iss`, and
    /// no `error`.
    fn approved(&self, res: &Response) -> Url {
        assert_eq!(res.status(), StatusCode::FOUND, "an approval redirects");
        let callback = location(res);
        assert_code(&callback, &self.own_origin());
        callback
    }

    /// `res` answers a Deny by a signed-in user: back to `redirect_uri` exactly, with
    /// `error=access_denied`, our `state` and `iss`, and no code.
    fn denied(&self, res: &Response, redirect_uri: &str) {
        assert_eq!(res.status(), StatusCode::FOUND, "a denial goes back to the client");
        let callback = location(res);
        assert_eq!(without_query(&callback), redirect_uri, "{callback}");
        assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"), "{callback}");
        assert_eq!(param(&callback, "code"), None, "{callback}");
        assert_eq!(param(&callback, "state").as_deref(), Some(STATE), "{callback}");
        assert_eq!(param(&callback, "iss").as_deref(), Some(self.own_origin().as_str()), "{callback}");
    }

    /// The sign-in session's cookie value.
    fn session(&self) -> Option<String> {
        self.cookie("mcp_session").map(str::to_owned)
    }
}

/// An authorization request of a client: its URL and its PKCE verifier.
struct Request {
    url: String,
    verifier: String,
    client_id: String,
    redirect_uri: String,
}

fn request(server: &TestServer, client_id: &str, redirect_uri: &str, scope: &str) -> Request {
    let Pkce { verifier, challenge } = Pkce::new();
    let url = server.authorize_url(client_id, &challenge, STATE, &[("redirect_uri", redirect_uri), ("scope", scope)]);
    Request { url, verifier, client_id: client_id.to_owned(), redirect_uri: redirect_uri.to_owned() }
}

/// `callback` carries a code, our `state` and `issuer` as `iss`, and no `error`.
fn assert_code(callback: &Url, issuer: &str) {
    assert_eq!(param(callback, "error"), None, "an approval carries no error: {callback}");
    assert!(param(callback, "code").is_some_and(|c| c.len() >= 32), "a code: {callback}");
    assert_eq!(param(callback, "state").as_deref(), Some(STATE), "{callback}");
    assert_eq!(param(callback, "iss").as_deref(), Some(issuer), "{callback}");
}

/// `url` without its query: where a redirect sends the browser.
fn without_query(url: &Url) -> String {
    let mut bare = url.clone();
    bare.set_query(None);
    bare.into()
}

/// A browser in which alice has signed in once (remembering her consent or not) for a newly
/// registered web client, whose id comes first.
async fn alice_signed_in(server: &TestServer, remember: bool) -> (String, Browser<'_>) {
    let client = register_web(server, "Web app").await;
    let mut browser = Browser::new(server);
    let page = browser.authorize_web(&client, "mcp").await;
    browser.sign_in(&page, "alice", "password123", remember).await;
    (client, browser)
}

/// A public web client (`https` redirect URI).
async fn register_web(server: &TestServer, name: &str) -> String {
    let reg = server
        .register(json!({
            "client_name": name,
            "redirect_uris": [WEB_REDIRECT],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    reg["client_id"].as_str().expect("client_id").to_owned()
}

/// The callback of `req` carries a code, our `state` and `iss`; it redeems into tokens that
/// act as `username`.
async fn redeems_as(server: &TestServer, req: &Request, callback: &Url, username: &str) {
    assert_eq!(without_query(callback), req.redirect_uri, "{callback}");
    assert_code(callback, &server.base);
    let code = param(callback, "code").expect("a code");
    let res = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &req.redirect_uri),
            ("client_id", &req.client_id),
            ("code_verifier", &req.verifier),
        ])
        .await;
    let tokens = tokens_of(&req.client_id, res).await;
    let session = server.initialize(&tokens.access).await;
    let reply = server.call_tool(&tokens.access, &session, "whoami").await;
    assert_eq!(text_of(&reply["result"]), username);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_consent_skips_the_page_for_the_same_browser_and_client() {
    let server = TestServer::start().await;
    let client = register_web(&server, "Web app").await;
    let mut browser = Browser::new(&server);
    let first = request(&server, &client, WEB_REDIRECT, "mcp");
    let page = browser.authorize(&first.url).await.page();
    assert!(page.offers_to_remember(), "an https client may be remembered");
    assert!(page.html.contains("Remember this decision for <strong>Web app</strong>"));
    assert!(!page.html.contains("checked"), "unchecked by default");
    let callback = browser.sign_in(&page, "alice", "password123", true).await;
    redeems_as(&server, &first, &callback, "alice").await;
    assert!(browser.session().is_some_and(|s| s.starts_with("mcp_ss_")), "signed in");

    // The same browser and client: no page at all.
    for _ in 0..2 {
        let again = request(&server, &client, WEB_REDIRECT, "mcp");
        let callback = browser.straight_back(&again.url).await;
        redeems_as(&server, &again, &callback, "alice").await;
    }
    // Another browser (no session) is asked for a password.
    let mut other = Browser::new(&server);
    let page = other.authorize_web(&client, "mcp").await;
    assert!(page.asks_password());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_consent_is_per_client() {
    let server = TestServer::start().await;
    let (remembered, other) = (register_web(&server, "Remembered").await, register_web(&server, "Other").await);
    let mut browser = Browser::new(&server);
    let page = browser.authorize_web(&remembered, "mcp").await;
    browser.sign_in(&page, "alice", "password123", true).await;
    let page = browser.authorize_web(&other, "mcp").await;
    assert!(page.is_consent_for("alice"), "another client is asked: {}", page.html);
    assert!(page.html.contains("<strong>Other</strong>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_checkbox_nothing_is_remembered() {
    let server = TestServer::start().await;
    let (client, mut browser) = alice_signed_in(&server, false).await;
    // Approving on the consent-only page without it does not remember either.
    for _ in 0..2 {
        let req = request(&server, &client, WEB_REDIRECT, "mcp");
        let page = browser.authorize(&req.url).await.page();
        assert!(page.is_consent_for("alice"), "{}", page.html);
        let callback = browser.allow(&page, false).await;
        redeems_as(&server, &req, &callback, "alice").await;
    }
    // Ticking it there does.
    let page = browser.authorize_web(&client, "mcp").await;
    browser.allow(&page, true).await;
    browser.straight_back(&request(&server, &client, WEB_REDIRECT, "mcp").url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_consent_covers_only_the_scopes_approved() {
    let server = TestServer::start().await;
    let (client, mut browser) = alice_signed_in(&server, true).await;
    // More than approved: asked, and the page names the new scope.
    let wider = request(&server, &client, WEB_REDIRECT, "mcp admin");
    let page = browser.authorize(&wider.url).await.page();
    assert!(page.is_consent_for("alice") && page.html.contains("<li>admin</li>"), "{}", page.html);
    let callback = browser.allow(&page, true).await;
    redeems_as(&server, &wider, &callback, "alice").await;
    // Now both, and either alone, go through.
    for scope in ["mcp admin", "admin", "mcp"] {
        browser.straight_back(&request(&server, &client, WEB_REDIRECT, scope).url).await;
    }
    // Denying a wider request with "remember" ticked forgets the consent.
    let mut other = Browser::new(&server);
    let page = other.authorize_web(&client, "mcp").await;
    other.sign_in(&page, "bob", "hunter2", true).await;
    let page = other.authorize_web(&client, "mcp admin").await;
    let res = other.submit(&page, &[("remember", "1")], "deny").await;
    other.denied(&res, WEB_REDIRECT);
    let page = other.authorize_web(&client, "mcp").await;
    assert!(page.is_consent_for("bob"), "bob's consent was forgotten: {}", page.html);
    // Alice's is hers alone and stays.
    browser.straight_back(&request(&server, &client, WEB_REDIRECT, "mcp").url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_alone_shows_the_consent_only_page() {
    let server = TestServer::start().await;
    let client = server.register_public().await;
    let mut browser = Browser::new(&server);
    let page = browser.authorize(&request(&server, &client, REDIRECT_URI, "mcp").url).await.page();
    browser.sign_in(&page, "alice", "password123", false).await;

    let req = request(&server, &client, REDIRECT_URI, "mcp");
    let page = browser.authorize(&req.url).await.page();
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.is_consent_for("alice"), "{}", page.html);
    assert!(page.html.contains(r#"value="allow""#) && page.html.contains(r#"value="deny""#));
    assert!(page.html.contains("Test client") && page.html.contains("127.0.0.1"), "client and redirect host");
    assert!(!page.field("csrf_token").is_empty());
    assert!(browser.cookie("mcp_browser").is_some(), "the browser cookie is kept");
    let callback = browser.allow(&page, false).await;
    redeems_as(&server, &req, &callback, "alice").await;

    // Deny works there too, and goes back to the client: this user has authenticated here.
    let page = browser.authorize(&request(&server, &client, REDIRECT_URI, "mcp").url).await.page();
    let res = browser.submit(&page, &[], "deny").await;
    browser.denied(&res, REDIRECT_URI);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_decision_takes_a_real_submission_of_our_page() {
    let server = TestServer::start().await;
    let (client, mut browser) = alice_signed_in(&server, false).await;
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(page.is_consent_for("alice"), "{}", page.html);
    // With the right cookie and token, but without any sign that our page was submitted, or
    // with one of another origin: refused, and nothing is spent.
    for origin in [None, Some("null"), Some("https://evil.example")] {
        for decision in ["allow", "deny"] {
            let res = browser.submit_from(&page, &[], decision, origin).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{decision} from {origin:?}");
            assert!(res.headers().get("location").is_none(), "{decision} from {origin:?}: no redirect");
        }
    }
    let res = browser.submit(&page, &[], "allow").await;
    browser.approved(&res);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_with_a_loopback_redirect_is_never_approved_silently() {
    let server = TestServer::start().await;
    let client = server.register_public().await;
    let mut browser = Browser::new(&server);
    let page = browser.authorize(&request(&server, &client, REDIRECT_URI, "mcp").url).await.page();
    assert!(!page.offers_to_remember(), "any app on the device can listen on a loopback port");
    // A hand-made "remember" is ignored.
    browser.sign_in(&page, "alice", "password123", true).await;
    let page = browser.authorize(&request(&server, &client, REDIRECT_URI, "mcp").url).await.page();
    assert!(page.is_consent_for("alice") && !page.offers_to_remember(), "{}", page.html);
    browser.allow(&page, true).await;
    let page = browser.authorize(&request(&server, &client, REDIRECT_URI, "mcp").url).await.page();
    assert!(page.is_consent_for("alice"), "still asked: {}", page.html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_client_may_be_remembered_even_with_a_loopback_redirect() {
    let server = TestServer::start().await;
    let reg = server
        .register(json!({
            "client_name": "Desktop app",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await;
    let client = reg["client_id"].as_str().expect("client_id");
    let mut browser = Browser::new(&server);
    let page = browser.authorize(&request(&server, client, REDIRECT_URI, "mcp").url).await.page();
    assert!(page.offers_to_remember(), "an impersonator could not redeem the code without the secret");
    browser.sign_in(&page, "alice", "password123", true).await;
    browser.straight_back(&request(&server, client, REDIRECT_URI, "mcp").url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_and_remembered_consent_with_it() {
    let server = TestServer::start().await;
    let (remembered, other) = (register_web(&server, "Remembered").await, register_web(&server, "Other").await);
    let mut browser = Browser::new(&server);
    let page = browser.authorize_web(&remembered, "mcp").await;
    browser.sign_in(&page, "alice", "password123", true).await;
    let stolen = browser.session().expect("a session");

    // The sign-out button is on the consent-only page (here: the other client's).
    let page = browser.authorize_web(&other, "mcp").await;
    let logout_token = page.field("logout_token");
    let request_handle = page.field("request");
    let res = browser.post("/logout", &[("request", &request_handle), ("logout_token", &logout_token)], None).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res);
    assert_eq!(back.path(), "/login");
    assert_eq!(param(&back, "request"), Some(request_handle));
    assert!(header(&res, "set-cookie").starts_with("mcp_session=;"), "the cookie is removed");
    assert_eq!(browser.session(), None);
    let page = browser.open(back.as_str()).await.page();
    assert!(page.asks_password(), "back to the sign-in page of the same request");

    // Not for the remembered client either, and the old cookie is dead on the server too.
    let page = browser.authorize_web(&remembered, "mcp").await;
    assert!(page.asks_password());
    browser.jar.push(("mcp_session".into(), stolen));
    let page = browser.authorize_web(&remembered, "mcp").await;
    assert!(page.asks_password(), "a copy of the signed-out cookie is worth nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_needs_the_pages_token_and_no_foreign_origin() {
    let server = TestServer::start().await;
    let (client, mut browser) = alice_signed_in(&server, false).await;
    let page = browser.authorize_web(&client, "mcp").await;
    let token = page.field("logout_token");

    // A same-site page that knows the cookie is sent, but not the token.
    for forged in [vec![], vec![("logout_token", "guess")]] {
        let res = browser.post("/logout", &forged, Some("null")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers().get(SET_COOKIE).is_none());
    }
    // A page of another origin.
    let res = browser.post("/logout", &[("logout_token", &token)], Some("https://evil.example")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A cross-site form carries no SameSite=Lax cookie: nothing happens, not even to the cookie.
    let res = server.client.post(server.url("/logout")).form(&[("logout_token", "x")]).send().await.expect("POST");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(SET_COOKIE).is_none());
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(page.is_consent_for("alice"), "still signed in");

    // `Origin: null` counts as foreign even with the right token; our own origin works.
    let token = page.field("logout_token");
    let res = browser.post("/logout", &[("logout_token", &token)], Some("null")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(SET_COOKIE).is_none());
    let res = browser.post("/logout", &[("logout_token", &token)], Some(&server.base)).await;
    assert_eq!(res.status(), StatusCode::OK, "no request named: a signed-out page");
    assert!(res.text().await.expect("page").contains("You are signed out"));
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(page.asks_password());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_you_signs_in_someone_else() {
    let server = TestServer::start().await;
    let (client, mut browser) = alice_signed_in(&server, true).await;
    let alices = browser.session().expect("alice's session");

    // Alice's consent would approve at once; "Not you?" is on the consent-only page of a
    // request that needs one.
    let req = request(&server, &client, WEB_REDIRECT, "mcp admin");
    let page = browser.authorize(&req.url).await.page();
    let handle = page.field("request");
    let not_you = format!("/login?request={handle}&amp;prompt=login");
    assert!(page.html.contains(&not_you), "{}", page.html);
    let page = browser.open(&not_you.replace("&amp;", "&")).await.page();
    assert!(page.asks_password(), "the session is ignored");
    assert!(!page.html.contains("Signed in as"));
    // A typo on the way: the sign-in page again, with its error, not alice's consent page.
    let res = browser.submit(&page, &[("username", "bob"), ("password", "hunter3")], "allow").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "a wrong password");
    let page = browser.open(location(&res).as_str()).await.page();
    assert!(page.asks_password() && !page.html.contains("Signed in as"), "{}", page.html);
    assert!(page.html.contains(r#"role="alert""#), "the error is shown: {}", page.html);
    let callback = browser.sign_in(&page, "bob", "hunter2", false).await;
    redeems_as(&server, &req, &callback, "bob").await;

    let bobs = browser.session().expect("bob's session");
    assert_ne!(bobs, alices);
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(page.is_consent_for("bob"), "bob has no consent of his own: {}", page.html);
    // Alice's session ended when bob signed in on this browser.
    browser.jar.retain(|(n, _)| n != "mcp_session");
    browser.jar.push(("mcp_session".into(), alices));
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(page.asks_password());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_is_still_enforced_on_the_consent_only_page() {
    let server = TestServer::start().await;
    let (client, mut browser) = alice_signed_in(&server, false).await;
    let victim = browser.authorize_web(&client, "mcp").await;
    let other = browser.authorize_web(&client, "mcp").await;
    let session = format!("mcp_session={}", browser.session().expect("a session"));
    let browser_cookie = format!("mcp_browser={}", browser.cookie("mcp_browser").expect("a browser cookie"));
    let request_handle = victim.field("request");
    let (victim_csrf, other_csrf) = (victim.field("csrf_token"), other.field("csrf_token"));
    // Each case with the status it gets: 400 for a form without its token, 403 for a token
    // that is not this browser's page's.
    let cases = [
        // A same-origin-looking form (the origin checks are tested elsewhere): the session
        // cookie is sent, the browser cookie perhaps, the form token is not known.
        (vec![("request", request_handle.as_str()), ("decision", "allow")], session.clone(), StatusCode::BAD_REQUEST),
        (
            vec![("request", request_handle.as_str()), ("csrf_token", "guess"), ("decision", "allow")],
            format!("{session}; {browser_cookie}"),
            StatusCode::FORBIDDEN,
        ),
        // The token of another request in the same browser.
        (
            vec![("request", request_handle.as_str()), ("csrf_token", other_csrf.as_str()), ("decision", "allow")],
            format!("{session}; {browser_cookie}"),
            StatusCode::FORBIDDEN,
        ),
        // The right token without its cookie.
        (
            vec![("request", request_handle.as_str()), ("csrf_token", victim_csrf.as_str()), ("decision", "allow")],
            session.clone(),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (i, (form, cookie, expected)) in cases.iter().enumerate() {
        let res = server
            .client
            .post(server.url("/login"))
            .header(COOKIE, cookie)
            .header(ORIGIN, &server.base)
            .form(form)
            .send()
            .await
            .expect("POST /login");
        assert_eq!(res.status(), *expected, "case {i}");
        assert!(res.headers().get("location").is_none(), "case {i}: no code");
        let html = res.text().await.expect("page");
        assert!(html.contains("<code>invalid_request</code>"), "case {i}: {html}");
    }
    // The real page still works afterwards.
    browser.allow(&victim, false).await;
}

/// The `Set-Cookie` line of the sign-in session cookie (`mcp_session` or `__Host-mcp_session`).
fn session_cookie(res: &Response) -> String {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("mcp_session="))
        .expect("a session cookie")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_http_only_lax_and_lives_for_the_session_ttl() {
    let server = TestServer::start().await;
    let client = server.register_public().await;
    let mut browser = Browser::new(&server);
    let page = browser.authorize(&request(&server, &client, REDIRECT_URI, "mcp").url).await.page();
    let res = browser.submit(&page, &[("username", "alice"), ("password", "password123")], "allow").await;
    browser.approved(&res);
    let set = session_cookie(&res);
    assert!(set.starts_with("mcp_session="), "{set}");
    let value = set.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v).unwrap_or_default();
    assert!(value.starts_with("mcp_ss_") && value.len() == "mcp_ss_".len() + 43, "{set}");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Max-Age=43200"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    assert!(!set.contains("Secure") && !set.contains("Domain="), "{set}");
    // A wrong password starts no session.
    let mut fresh = Browser::new(&server);
    let page = fresh.authorize(&request(&server, &client, REDIRECT_URI, "mcp").url).await.page();
    let res = fresh.submit(&page, &[("username", "alice"), ("password", "nope")], "allow").await;
    common::assert_wrong_credentials(&res, "a wrong password");
    assert!(!header(&res, "set-cookie").contains("mcp_session"), "no session for a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_the_session_cookie_is_host_prefixed_and_secure() {
    let server = TestServer::behind_tls_proxy().await;
    let client = &server.register_via_proxy(WEB_REDIRECT).await;
    let mut browser = Browser { server: &server, host: Some(PROXIED_HOST), jar: Vec::new() };
    let page = browser.authorize(&request(&server, client, WEB_REDIRECT, "mcp").url).await.page();
    let res =
        browser.submit(&page, &[("username", "alice"), ("password", "password123"), ("remember", "1")], "allow").await;
    browser.approved(&res);
    let set = session_cookie(&res);
    assert!(set.starts_with("__Host-mcp_session=mcp_ss_"), "{set}");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    assert!(!set.contains("Domain="), "__Host- rules: {set}");
    let callback = browser.straight_back(&request(&server, client, WEB_REDIRECT, "mcp").url).await;
    assert_eq!(param(&callback, "iss").as_deref(), Some(format!("https://{PROXIED_HOST}").as_str()));
    // Over https, only the prefixed cookie counts.
    let value = browser.cookie("__Host-mcp_session").expect("kept").to_owned();
    browser.jar = vec![("mcp_session".into(), value)];
    let page = browser.authorize(&request(&server, client, WEB_REDIRECT, "mcp").url).await.page();
    assert!(page.asks_password());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ttl_of_zero_turns_sessions_and_remembering_off() {
    let server = TestServer::start_with(|mut c| {
        c.session_ttl = Duration::ZERO;
        c
    })
    .await;
    let client = register_web(&server, "Web app").await;
    let mut browser = Browser::new(&server);
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(!page.offers_to_remember());
    let res =
        browser.submit(&page, &[("username", "alice"), ("password", "password123"), ("remember", "1")], "allow").await;
    browser.approved(&res);
    assert!(!header(&res, "set-cookie").contains("mcp_session"));
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(page.asks_password());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_asks_for_the_password_again() {
    let (server, clock) = TestServer::start_on_clock(|c| c).await;
    let (client, mut browser) = alice_signed_in(&server, true).await;
    // The session's last millisecond (12 hours by default): consent only.
    clock.advance(Duration::from_secs(12 * 3600) - Duration::from_millis(1));
    let page = browser.authorize_web(&client, "mcp admin").await;
    assert!(page.is_consent_for("alice"));
    clock.advance(Duration::from_millis(1));
    // The consent-only page was open when the session ended: no code, a sign-in page instead.
    let res = browser.submit(&page, &[], "allow").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("location").is_none());
    let html = res.text().await.expect("page");
    assert!(html.contains("Your sign-in has ended") && html.contains(r#"type="password""#));
    // And remembered consent needs a session.
    let page = browser.authorize_web(&client, "mcp").await;
    assert!(page.asks_password());
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_store_share_sessions_and_consent() {
    let dir = common::TempDir::new("consent");
    let (a, b) = TestServer::two_on_one_sqlite_file(&dir, |c| c).await;
    let client = register_web(&a, "Web app").await;
    let mut on_a = Browser::new(&a);
    let page = on_a.authorize_web(&client, "mcp").await;
    on_a.sign_in(&page, "alice", "password123", true).await;
    // The same browser reaches the other instance (behind one public URL, in production).
    let mut on_b = Browser { server: &b, host: None, jar: on_a.jar.clone() };
    let req = request(&b, &client, WEB_REDIRECT, "mcp");
    let callback = on_b.straight_back(&req.url).await;
    redeems_as(&b, &req, &callback, "alice").await;
    // Signing out on one ends the session on both.
    let page = on_b.authorize_web(&client, "mcp admin").await;
    let res = on_b.post("/logout", &[("logout_token", &page.field("logout_token"))], None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = on_a.authorize_web(&client, "mcp").await;
    assert!(page.asks_password());
}

/// `OAuthServer::revoke_all` ends sign-in sessions and remembered consent as well as grants: a
/// browser that was signed in, with its consent remembered, is asked for a password again,
/// not shown the consent-only page, and its old tokens are dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_everything_asks_a_signed_in_browser_for_its_password() {
    let server = TestServer::start().await;
    let (remembered, mut browser) = alice_signed_in(&server, true).await;
    let other = register_web(&server, "Other").await;
    assert!(browser.authorize_web(&other, "mcp").await.is_consent_for("alice"), "signed in before");
    let req = request(&server, &remembered, WEB_REDIRECT, "mcp");
    let callback = browser.straight_back(&req.url).await;
    let code = param(&callback, "code").expect("a code");
    let res = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("client_id", &remembered),
            ("code_verifier", &req.verifier),
        ])
        .await;
    let tokens = tokens_of(&remembered, res).await;

    server.oauth.as_ref().expect("the built-in authorization server").revoke_all().await.expect("revoke all");
    for client in [&remembered, &other] {
        let page = browser.authorize_web(client, "mcp").await;
        assert!(page.asks_password(), "the password page, not consent only: {}", page.html);
    }
    let res = server.refresh(&tokens.client_id, &tokens.refresh).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the refresh token is revoked");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let res = server.mcp(Some(&tokens.access), &list, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the access token is revoked");
}
