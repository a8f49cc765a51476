//! Sign-in at a plain OAuth 2.0 provider (RFC 6749 §4.1, such as GitHub): no discovery and no
//! id_token, so the user is whoever the provider's userinfo endpoint says owns the access
//! token, read through a [`UserinfoMapping`]. The rest is the OpenID flow's: the same callback,
//! PKCE S256, a `state` bound to the browser, and a subject scoped to the provider.

use serde_json::{Map, Value};

use super::exchange::SignInError;
use super::id_token::MAX_SUB_LEN;
use super::{ClientAuth, Identity, OidcProvider, UpstreamError};
use crate::escaped::Escaped;
use crate::secret::Password;
use crate::verifiers::upstream_http::{self, checked_url};

/// Where a plain OAuth 2.0 provider's endpoints are, for [`OidcProvider::oauth2`]. Each must
/// be `https` (plain `http` only to a loopback host).
#[derive(Debug, Clone, Copy)]
pub struct OAuth2Endpoints<'a> {
    /// Where the browser signs in (RFC 6749 §3.1).
    pub authorization: &'a str,
    /// Where the kit redeems the code (RFC 6749 §3.2).
    pub token: &'a str,
    /// The API that describes the owner of an access token, as a JSON object.
    pub userinfo: &'a str,
}

/// Which members of a plain OAuth 2.0 provider's userinfo answer name the user, for
/// [`OidcProvider::oauth2`]. Only the subject is required; members not configured, absent or
/// `null` are left out.
///
/// ```
/// use mcp_oauth_kit::upstream::UserinfoMapping;
///
/// // GitLab's `/api/v4/user`.
/// let gitlab = UserinfoMapping::new("id").username("username").name("name").email("email");
/// ```
#[derive(Debug, Clone)]
pub struct UserinfoMapping {
    subject: String,
    username: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

impl UserinfoMapping {
    /// The member that identifies the user, stable and unique at the provider (a string, or
    /// an integer such as GitHub's `id`). Never an email or a username, which users can change
    /// and others can then take.
    pub fn new(subject: impl Into<String>) -> Self {
        Self { subject: subject.into(), username: None, name: None, email: None }
    }

    /// The member that holds the username (default: the name, else the email, else the subject).
    pub fn username(mut self, member: impl Into<String>) -> Self {
        self.username = Some(member.into());
        self
    }

    /// The member that holds the display name, the caller's `name` claim.
    pub fn name(mut self, member: impl Into<String>) -> Self {
        self.name = Some(member.into());
        self
    }

    /// The member that holds the email address, the caller's `email` claim.
    pub fn email(mut self, member: impl Into<String>) -> Self {
        self.email = Some(member.into());
        self
    }

    /// The userinfo `info` as OpenID claims: `sub`, and `preferred_username`, `name` and
    /// `email` when present as non-empty strings.
    pub(super) fn claims(&self, info: &Map<String, Value>) -> Result<Map<String, Value>, SignInError> {
        let sub = match info.get(&self.subject) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
            _ => return Err(SignInError::BadResponse("the userinfo has no subject (a string or an integer)")),
        };
        if sub.is_empty() || sub.len() > MAX_SUB_LEN || sub.chars().any(char::is_control) {
            return Err(SignInError::BadResponse("the userinfo's subject is empty, too long or not printable"));
        }
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String(sub));
        for (claim, member) in [("preferred_username", &self.username), ("name", &self.name), ("email", &self.email)] {
            if let Some(value) = member.as_deref().and_then(|m| info.get(m)).and_then(Value::as_str)
                && !value.trim().is_empty()
            {
                claims.insert(claim.into(), Value::String(value.to_owned()));
            }
        }
        Ok(claims)
    }
}

impl OidcProvider {
    /// A plain OAuth 2.0 provider, without OpenID Connect, at `endpoints`, where the kit is the
    /// confidential client `client_id` with `client_secret` (sent with HTTP Basic; see
    /// [`OidcProvider::client_secret_post`]). `identifier` (a URL, such as
    /// `https://git.example.com`) scopes its users' subjects, `{identifier}#{subject}`, and its
    /// host is the button's default name; a provider that sends `iss` on its authorization
    /// responses (RFC 9207) must send exactly `identifier`, or the sign-in is refused as a
    /// mix-up. Ask for scopes with [`OidcProvider::scopes`]; none are asked for by default.
    ///
    /// Register `{PUBLIC_URL}/oauth/callback` as the redirect URI at the provider, then:
    ///
    /// ```no_run
    /// use mcp_oauth_kit::upstream::{OAuth2Endpoints, OidcProvider, UserinfoMapping};
    ///
    /// # fn run(builder: mcp_oauth_kit::McpServerBuilder) -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoints = OAuth2Endpoints {
    ///     authorization: "https://git.example.com/oauth/authorize",
    ///     token: "https://git.example.com/oauth/token",
    ///     userinfo: "https://git.example.com/api/v4/user",
    /// };
    /// let mapping = UserinfoMapping::new("id").username("username").name("name").email("email");
    /// let gitlab = OidcProvider::oauth2("https://git.example.com", endpoints, mapping, "client-id", "secret")?
    ///     .display_name("GitLab")
    ///     .scopes(["read_user"]);
    /// let builder = builder.upstream(gitlab);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`UpstreamError::InvalidUrl`] when `identifier` or an endpoint is not an `https` URL
    /// (or `http` to a loopback host), or `identifier` has a fragment;
    /// [`UpstreamError::Setup`] when the HTTP client cannot be built.
    pub fn oauth2(
        identifier: &str,
        endpoints: OAuth2Endpoints<'_>,
        mapping: UserinfoMapping,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, UpstreamError> {
        let identifier = identifier.trim().trim_end_matches('/');
        let parsed = checked_url(identifier).map_err(|e| UpstreamError::InvalidUrl(format!("the identifier: {e}")))?;
        // A `#` in the identifier would blur where the subject begins.
        if identifier.contains('#') {
            return Err(UpstreamError::InvalidUrl(format!("the identifier {identifier:?} has a fragment")));
        }
        let endpoint = |name: &str, url: &str| {
            checked_url(url.trim()).map_err(|e| UpstreamError::InvalidUrl(format!("the {name} endpoint: {e}")))
        };
        let authorization_endpoint = endpoint("authorization", endpoints.authorization)?;
        let token_endpoint = endpoint("token", endpoints.token)?;
        let userinfo_endpoint = endpoint("userinfo", endpoints.userinfo)?;
        let http = upstream_http::client().map_err(|e| UpstreamError::Setup(e.to_string()))?;
        tracing::info!(identifier = %Escaped(identifier), "upstream OAuth 2.0 provider configured");
        Ok(Self {
            issuer: identifier.to_owned(),
            client_id: client_id.into(),
            client_secret: Password::new(client_secret),
            client_auth: ClientAuth::Basic,
            authorization_endpoint,
            token_endpoint,
            userinfo_endpoint: Some(userinfo_endpoint),
            identity: Identity::Userinfo(mapping),
            sends_iss: false,
            http,
            display_name: parsed.host_str().unwrap_or_default().to_owned(),
            scopes: String::new(),
        })
    }

    /// GitHub (an OAuth app or a GitHub App's user sign-in), with the client id and secret
    /// of the app whose callback URL is `{PUBLIC_URL}/oauth/callback`. Subjects are
    /// `https://github.com#{id}` (the account's number, which survives a renamed login), the
    /// username is the `login`, and `name` and `email` (the public email, if any) become
    /// claims. It asks for `read:user`.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::upstream::OidcProvider;
    ///
    /// # fn run(builder: mcp_oauth_kit::McpServerBuilder) -> Result<(), Box<dyn std::error::Error>> {
    /// let builder = builder.upstream(OidcProvider::github("Iv1.0123456789abcdef", "secret")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`UpstreamError::Setup`] when the HTTP client cannot be built.
    pub fn github(client_id: impl Into<String>, client_secret: impl Into<String>) -> Result<Self, UpstreamError> {
        let endpoints = OAuth2Endpoints {
            authorization: "https://github.com/login/oauth/authorize",
            token: "https://github.com/login/oauth/access_token",
            userinfo: "https://api.github.com/user",
        };
        let mapping = UserinfoMapping::new("id").username("login").name("name").email("email");
        // GitHub documents the client credentials in the form body.
        Ok(Self::oauth2("https://github.com", endpoints, mapping, client_id, client_secret)?
            .client_secret_post()
            .display_name("GitHub")
            .scopes(["read:user"]))
    }

    /// Send the client id and secret in the token request's body (`client_secret_post`)
    /// instead of HTTP Basic, for a plain OAuth 2.0 provider that wants them there. (An OpenID
    /// provider's metadata decides this by itself.)
    pub fn client_secret_post(mut self) -> Self {
        self.client_auth = ClientAuth::Post;
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::upstream::AuthorizationRequest;

    use super::*;

    fn info(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn github_numbers_become_subjects_and_bad_subjects_are_refused() {
        let github = UserinfoMapping::new("id").username("login").name("name").email("email");
        let claims = github.claims(&info(json!({"id": 12345, "login": "octocat", "name": null}))).expect("claims");
        assert_eq!(Value::Object(claims), json!({"sub": "12345", "preferred_username": "octocat"}));
        for bad in
            [json!({"login": "x"}), json!({"id": 1.5}), json!({"id": true}), json!({"id": ""}), json!({"id": "a\nb"})]
        {
            assert!(github.claims(&info(bad.clone())).is_err(), "{bad}");
        }
        assert!(github.claims(&info(json!({"id": "x".repeat(MAX_SUB_LEN + 1)}))).is_err());
    }

    #[test]
    fn the_github_preset_asks_for_no_nonce_and_scopes_its_subjects() {
        let github = OidcProvider::github("id", "secret").expect("the preset");
        let request = AuthorizationRequest {
            redirect_uri: "https://mcp.example.com/oauth/callback",
            state: "s",
            nonce: "n",
            challenge: "c",
            prompt_login: false,
        };
        let url = github.authorization_url(&request);
        assert!(url.starts_with("https://github.com/login/oauth/authorize?"), "{url}");
        assert!(
            !url.contains("nonce") && url.contains("code_challenge_method=S256") && url.contains("scope=read%3Auser")
        );
        assert_eq!(github.subject("583231"), "https://github.com#583231");
        assert!(github.owns_subject("https://github.com#583231") && !github.owns_subject("https://github.com.evil#1"));
        assert_eq!(github.client_auth, ClientAuth::Post);
    }

    /// A token endpoint on a loopback port that answers each request with `status` and `body`.
    async fn token_endpoint(status: u16, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/token", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let head =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_refused_code_names_the_providers_error_even_with_status_200() {
        let rows = [
            (
                200,
                r#"{"error":"bad_verification_code","error_description":"The code is incorrect."}"#,
                "refused the code: bad_verification_code",
            ),
            (400, r#"{"error":"invalid_grant\u0000<b>"}"#, "refused the code: invalid_grant<b>"),
            (500, "<html>oops</html>", "answered HTTP 500"),
        ];
        for (status, body, message) in rows {
            let token = token_endpoint(status, body).await;
            let endpoints = OAuth2Endpoints {
                authorization: "http://127.0.0.1:1/auth",
                token: &token,
                userinfo: "http://127.0.0.1:1/me",
            };
            let provider =
                OidcProvider::oauth2("http://127.0.0.1:1", endpoints, UserinfoMapping::new("id"), "id", "secret")
                    .expect("a provider");
            let pending = crate::upstream::Pending {
                code: "c",
                redirect_uri: "http://127.0.0.1:2/oauth/callback",
                code_verifier: "v",
                nonce: "n",
                now: std::time::SystemTime::now(),
            };
            let error = provider.sign_in(&pending).await.expect_err("no sign-in");
            assert!(error.to_string().contains(message), "{status}: {error}");
        }
    }

    #[test]
    fn the_github_token_request_asks_for_json_with_the_secret_in_the_body() {
        let github = OidcProvider::github("Iv1.abc", "s3cret&x").expect("the preset");
        let pending = crate::upstream::Pending {
            code: "the-code",
            redirect_uri: "https://mcp.example.com/oauth/callback",
            code_verifier: "the-verifier",
            nonce: "unused",
            now: std::time::SystemTime::now(),
        };
        let request = github.token_request(&pending).build().expect("a request");
        assert_eq!(request.url().as_str(), "https://github.com/login/oauth/access_token");
        // Without it GitHub answers form-encoded.
        assert_eq!(request.headers().get("accept").and_then(|v| v.to_str().ok()), Some("application/json"));
        assert!(request.headers().get("authorization").is_none());
        let body = request.body().and_then(|b| b.as_bytes()).map(|b| String::from_utf8_lossy(b).into_owned());
        let body = body.expect("a form body");
        for pair in ["code_verifier=the-verifier", "client_id=Iv1.abc", "client_secret=s3cret%26x"] {
            assert!(body.contains(pair), "{pair} in {body}");
        }
    }
}
