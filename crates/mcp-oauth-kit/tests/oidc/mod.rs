//! A real OpenID provider for the tests: node-oidc-provider (npm `oidc-provider`, OpenID
//! Certified), run by `tests/oidc-provider/provider.mjs` on a loopback port.
//!
//! [`OidcProvider::start`] installs it from the lock file (`npm ci`, once, guarded against
//! test binaries that start at the same time), starts it (both through
//! [`mcp_test_support::oidc_provider`], which the example's browser test shares), and waits
//! for its discovery document; dropping the handle kills the process. Without `node` and `npm`
//! it says so loudly and returns `None`, unless `REQUIRE_OIDC_PROVIDER=1` (CI), where that is a
//! failure.
//!
//! The provider has a confidential client (client_secret_basic, the redirect URI given, grant
//! types authorization_code, refresh_token and client_credentials), a second one whose access
//! tokens are opaque (`{client_id}-opaque`), a test account `u-carol` with name, email and
//! groups, resource indicators that mint ES256 JWT access tokens for the given resource (and
//! for `https://other.example.com/mcp`), introspection and revocation. Its signing keys are
//! new at each start, under a key id the test chooses, and are written to a file so that a test
//! can forge tokens with the provider's own key.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_oauth_kit::auth::AuthProvider;
use mcp_oauth_kit::{AccessToken, Config, McpServer, ToolDef, ToolError, ToolOutput, Tools};
use mcp_test_support::oidc_provider;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::{Pkce, STATE, TestServer, header, hidden_input, param, rpc_reply, tool_call};

/// The resource of another server, for which the provider also mints tokens.
pub(crate) const OTHER_RESOURCE: &str = "https://other.example.com/mcp";

/// How the provider is configured.
#[derive(Debug, Clone)]
pub(crate) struct ProviderConfig {
    /// The MCP resource that access tokens are for (`{PUBLIC_URL}/mcp`).
    pub(crate) resource: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// The client's redirect URI (`{PUBLIC_URL}/oauth/callback`).
    pub(crate) redirect_uri: String,
    /// The signing keys' id.
    pub(crate) kid: String,
    /// Access-token lifetime in seconds.
    pub(crate) access_ttl_secs: u64,
}

impl ProviderConfig {
    /// A provider for the server whose public URL is `public_url`.
    pub(crate) fn for_server(public_url: &str) -> Self {
        Self {
            resource: format!("{public_url}/mcp"),
            client_id: "mcp-kit".into(),
            client_secret: "test-secret-of-the-kit-at-the-provider".into(),
            redirect_uri: format!("{public_url}/oauth/callback"),
            kid: "key-1".into(),
            access_ttl_secs: 300,
        }
    }
}

/// A running provider. Dropping it kills the process.
pub(crate) struct OidcProvider {
    child: Option<Child>,
    pub(crate) config: ProviderConfig,
    /// `http://127.0.0.1:PORT`.
    pub(crate) issuer: String,
    port: u16,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl OidcProvider {
    /// Start a provider, or `None` (after saying so on stderr) when Node.js is not installed
    /// and `REQUIRE_OIDC_PROVIDER` is not `1`.
    pub(crate) async fn start(config: ProviderConfig) -> Option<Self> {
        if !oidc_provider::node_or_skip() {
            return None;
        }
        tokio::task::spawn_blocking(oidc_provider::install).await.expect("npm ci ran");
        let dir = std::env::temp_dir().join(format!("mcp-oidc-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
        let mut provider = Self { child: None, config, issuer: String::new(), port: 0, dir, http };
        provider.launch().await;
        Some(provider)
    }

    /// Start the process on `self.port` (0 at first) and wait for its discovery document.
    async fn launch(&mut self) {
        let c = &self.config;
        let env = [
            ("OIDC_PORT", self.port.to_string()),
            ("OIDC_RESOURCE", c.resource.clone()),
            ("OIDC_CLIENT_ID", c.client_id.clone()),
            ("OIDC_CLIENT_SECRET", c.client_secret.clone()),
            ("OIDC_REDIRECT_URI", c.redirect_uri.clone()),
            ("OIDC_KID", c.kid.clone()),
            ("OIDC_KEYS_OUT", self.dir.join("keys.json").display().to_string()),
            ("OIDC_ACCESS_TTL", c.access_ttl_secs.to_string()),
        ];
        let log = self.dir.join("provider.log");
        let (child, port) =
            tokio::task::spawn_blocking(move || oidc_provider::spawn(&env, &log)).await.expect("the provider started");
        self.child = Some(child);
        self.port = port;
        self.issuer = format!("http://127.0.0.1:{port}");
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        for _ in 0..100 {
            if self.http.get(&discovery).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the OpenID provider's discovery document did not come up at {discovery}");
    }

    /// Kill the process (the provider is down until [`OidcProvider::restart`]).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port (same issuer) with new signing keys under `kid`: a key
    /// rotation.
    pub(crate) async fn restart(&mut self, kid: &str) {
        self.stop();
        self.config.kid = kid.to_owned();
        self.launch().await;
    }

    /// `{issuer}/jwks`.
    pub(crate) fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// `{issuer}/token/introspection`.
    pub(crate) fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// An access token of the `client_credentials` grant for `resource`, as the provider's
    /// token endpoint answers it (`client_id` is the main client or its `-opaque` twin).
    pub(crate) async fn client_credentials(&self, client_id: &str, resource: &str, scope: &str) -> String {
        let res = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(&self.config.client_secret))
            .form(&[("grant_type", "client_credentials"), ("resource", resource), ("scope", scope)])
            .send()
            .await
            .expect("POST /token at the provider");
        let status = res.status();
        let body: Value = res.json().await.expect("a JSON token response");
        assert!(status.is_success(), "the provider refused the token request: {body}");
        body["access_token"].as_str().expect("an access_token").to_owned()
    }

    /// Revoke `token` at the provider, as `client_id`.
    pub(crate) async fn revoke(&self, client_id: &str, token: &str) {
        let res = self
            .http
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth(client_id, Some(&self.config.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("POST /token/revocation at the provider");
        assert!(res.status().is_success(), "revocation at the provider: {}", res.status());
    }

    /// Make the next token response's id_token a forgery (`wrong_nonce`, `wrong_iss`,
    /// `wrong_aud`, `expired`, `alg_none`; see provider.mjs).
    pub(crate) async fn tamper(&self, mode: &str) {
        let res = self.http.get(format!("{}/test/tamper?mode={mode}", self.issuer)).send().await.expect("tamper");
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    /// The provider's current ES256 signing key (PKCS#8 DER) and its key id.
    pub(crate) fn es256_key(&self) -> (String, Vec<u8>) {
        let keys: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("keys.json")).expect("the keys file")).expect("JSON");
        let key = keys["keys"].as_array().and_then(|k| k.iter().find(|k| k["alg"] == "ES256")).expect("an ES256 key");
        let der = STANDARD.decode(key["pkcs8"].as_str().expect("pkcs8")).expect("base64");
        (key["kid"].as_str().expect("kid").to_owned(), der)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Tool `caller`: describes its caller (subject, username, client, scopes, audience, claims).
pub(crate) async fn caller(
    caller: AccessToken,
    _args: serde_json::Map<String, Value>,
) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(caller.username.clone()).with_structured(json!({
        "subject": caller.subject,
        "username": caller.username,
        "client_id": caller.client_id,
        "scopes": caller.scopes,
        "audience": caller.audience,
        "claims": caller.claims(),
    })))
}

/// A provider, and a stateless resource server (tool `caller`, which describes its caller)
/// whose token verifier `verifier` makes from the server's configuration (adjusted by `tweak`)
/// and the provider. `None` when Node.js is missing and not required.
pub(crate) async fn with_resource_server<P: AuthProvider>(
    tweak: impl FnOnce(&mut Config),
    verifier: impl FnOnce(&Config, &OidcProvider) -> P,
) -> Option<(TestServer, OidcProvider)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let provider = OidcProvider::start(ProviderConfig::for_server(&base)).await?;
    let server = TestServer::launch_on(listener, |mut config| {
        config.stateless = true;
        tweak(&mut config);
        let verifier = verifier(&config, &provider);
        let tools = Tools::new().tool(ToolDef::new("caller", "Describe the caller").handler(caller));
        McpServer::builder(config).auth_provider(verifier).tools(tools)
    })
    .await;
    Some((server, provider))
}

/// `tools/call caller` with `token`: the status, the `WWW-Authenticate` challenge and the
/// caller as the tool saw it.
pub(crate) async fn call_caller(server: &TestServer, token: &str) -> (StatusCode, String, Value) {
    let res = server.mcp(Some(token), &tool_call(1, "caller"), None).await;
    let status = res.status();
    let challenge = header(&res, "www-authenticate");
    let body = if status == StatusCode::OK {
        rpc_reply(res).await["result"]["structuredContent"].clone()
    } else {
        Value::Null
    };
    (status, challenge, body)
}

/// Assert that `token` gets 401 `invalid_token`.
pub(crate) async fn assert_refused(server: &TestServer, token: &str, why: &str) {
    let (status, challenge, _) = call_caller(server, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}");
    assert!(challenge.contains("error=\"invalid_token\""), "{why}: {challenge}");
}

/// A browser: a client with a cookie jar (shared by every host, as a browser's cookies ignore
/// ports) that follows no redirect by itself.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("a client")
}

/// Where a redirect goes: its `Location`, relative to the request's URL.
pub(crate) fn follow(res: &reqwest::Response) -> String {
    let to = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("a Location header");
    res.url().join(to).expect("a URL").to_string()
}

/// What the user does at the provider's own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtProvider {
    /// Sign in as `u-carol` and consent.
    SignIn,
    /// Sign in as this account and consent.
    SignInAs(&'static str),
    /// Cancel on the sign-in page ("abort").
    Cancel,
}

/// Follow `url` in `browser` through the provider's devInteractions pages (sign-in with the
/// account id, then consent, or cancel) until a redirect to `stop_at`; returns that URL,
/// not followed.
pub(crate) async fn through_provider(browser: &reqwest::Client, url: &str, stop_at: &str, act: AtProvider) -> String {
    let mut next = url.to_owned();
    for _ in 0..20 {
        if next.starts_with(stop_at) {
            return next;
        }
        let res = browser.get(&next).send().await.expect("GET at the provider");
        if res.status().is_redirection() {
            next = follow(&res);
            continue;
        }
        assert_eq!(res.status(), StatusCode::OK, "GET {next}");
        let page_url = res.url().clone();
        let html = res.text().await.expect("a page");
        // Another account signing in where one is signed in: the provider first ends the old
        // session, by a form that its page submits by script.
        if let Some(end) = html.split(r#"action=""#).nth(1).and_then(|a| a.split('"').next())
            && end.ends_with("/session/end/confirm")
        {
            let xsrf = hidden_input(&html, "xsrf").expect("the form's xsrf");
            let form = [("xsrf", xsrf.as_str()), ("logout", "yes")];
            let res = browser.post(end).form(&form).send().await.expect("POST the session's end");
            assert!(res.status().is_redirection(), "POST {end}: {}", res.status());
            next = follow(&res);
            continue;
        }
        let form: &[(&str, &str)] = if html.contains(r#"name="prompt" value="login""#) {
            if act == AtProvider::Cancel {
                next = format!("{}/abort", page_url.as_str().trim_end_matches('/'));
                continue;
            }
            let login = if let AtProvider::SignInAs(account) = act { account } else { "u-carol" };
            &[("prompt", "login"), ("login", login), ("password", "any")]
        } else if html.contains(r#"name="prompt" value="consent""#) {
            &[("prompt", "consent")]
        } else {
            panic!("an unexpected page at {page_url}:\n{html}");
        };
        let res = browser.post(page_url.clone()).form(form).send().await.expect("POST at the provider");
        assert!(res.status().is_redirection(), "POST {page_url}: {}", res.status());
        next = follow(&res);
    }
    panic!("no redirect to {stop_at} after 20 steps");
}

/// A new MCP client's authorization, sent by our login page to the provider: the browser,
/// the client, its PKCE verifier, and the provider's authorization URL, not yet followed.
pub(crate) struct ToProvider {
    pub(crate) browser: reqwest::Client,
    pub(crate) client_id: String,
    pub(crate) verifier: String,
    pub(crate) url: Url,
}

/// A new MCP client's authorization request in a new browser, through our login page to the
/// provider: "Continue with Test IdP" beside the password form, or Allow on a page without
/// passwords. Asserts what every upstream authorization URL carries (PKCE S256, our callback,
/// a `state` bound to the browser).
pub(crate) async fn to_provider(server: &TestServer, provider: &OidcProvider) -> ToProvider {
    let browser = browser();
    let client_id = server.register_public().await;
    let Pkce { verifier, challenge } = Pkce::new();
    let res = browser.get(server.authorize_url(&client_id, &challenge, STATE, &[])).send().await.expect("authorize");
    assert_eq!(res.status(), StatusCode::FOUND);
    let res = browser.get(follow(&res)).send().await.expect("the login page");
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("HTML");
    let request = hidden_input(&html, "request").expect("request");
    let csrf_token = hidden_input(&html, "csrf_token").expect("csrf_token");
    let mut form = vec![("request", request.as_str()), ("csrf_token", csrf_token.as_str()), ("upstream", "1")];
    if html.contains(r#"type="password""#) {
        assert!(html.contains("Continue with Test IdP"), "the upstream beside the password form");
    } else {
        assert!(html.contains(r#"value="allow">Continue with Test IdP</button>"#), "the button alone: {html}");
        assert!(html.contains(r#"<input type="hidden" name="upstream" value="1">"#), "in its form: {html}");
        form.push(("decision", "allow"));
    }
    let res = browser.post(server.url("/login")).header("origin", &server.base).form(&form).send().await.expect("POST");
    assert_eq!(res.status(), StatusCode::FOUND, "the login page sends the browser to the provider");
    assert!(res.headers().get("set-cookie").is_none(), "no session before the provider has answered");
    let at_provider = follow(&res);
    assert!(at_provider.starts_with(&format!("{}/auth?", provider.issuer)), "{at_provider}");
    let url = Url::parse(&at_provider).expect("a URL");
    assert_eq!(param(&url, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param(&url, "redirect_uri"), Some(server.url("/oauth/callback")));
    assert!(param(&url, "state").is_some_and(|s| s.contains('.')), "bound to the browser");
    ToProvider { browser, client_id, verifier, url }
}
