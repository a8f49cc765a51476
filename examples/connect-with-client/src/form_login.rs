//! A scripted "browser" for tests: it signs in through the server's HTML login
//! form instead of a human.

use anyhow::{Context as _, bail};
use reqwest::{
    Url,
    header::{LOCATION, ORIGIN},
    redirect,
};

use mcp_test_support::find_forms;

use crate::{AuthorizationResponse, LoginDriver};

/// Signs in by submitting the authorization server's login form, like a user
/// in a browser would, without ever fetching the redirect URI.
///
/// Starting at the authorization URL it follows redirects by hand (keeping
/// cookies), finds the page's `<form method="post">`, submits every named
/// `<input>` (hidden ones included) with `username` and `password` filled in and
/// the `decision=allow` submit button, and follows the redirects that come back
/// until one points at the redirect URI. A page answering the submission
/// (e.g. the form re-rendered after a wrong password) is an error.
#[derive(Clone)]
pub struct FormLogin {
    /// Value for the form's `username` field.
    pub username: String,
    /// Value for the form's `password` field.
    pub password: String,
}

impl std::fmt::Debug for FormLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormLogin").field("username", &self.username).field("password", &"[REDACTED]").finish()
    }
}

/// Requests the login flow may make before giving up (redirects + form posts).
const MAX_STEPS: usize = 20;

impl FormLogin {
    /// The redirect URI [`FormLogin`] registers. Nothing listens there: the
    /// code is read from the `Location` header that points at it.
    pub const REDIRECT_URI: &'static str = "http://127.0.0.1:53682/callback";

    /// A login with these credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into() }
    }

    async fn sign_in(&self, authorization_url: &str, redirect_uri: &str) -> anyhow::Result<AuthorizationResponse> {
        let redirect_uri = Url::parse(redirect_uri).context("invalid redirect URI")?;
        let http = reqwest::Client::builder().cookie_store(true).redirect(redirect::Policy::none()).build()?;

        let mut url = Url::parse(authorization_url).context("invalid authorization URL")?;
        // A form to post, and the origin of the page it came from (sent as `Origin`, as a
        // browser does; the server refuses sign-in forms from other origins).
        let mut post: Option<(Vec<(String, String)>, String)> = None;
        let mut credentials_sent = false;
        for _ in 0..MAX_STEPS {
            let response = match post.take() {
                Some((form, origin)) => http.post(url.clone()).header(ORIGIN, origin).form(&form).send().await,
                None => http.get(url.clone()).send().await,
            }
            .with_context(|| format!("request to {url}"))?;
            let status = response.status();

            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .with_context(|| format!("{status} from {url} without Location"))?
                    .to_str()
                    .context("non-ASCII Location header")?;
                let target = url.join(location).context("invalid Location header")?;
                if same_endpoint(&target, &redirect_uri) {
                    return AuthorizationResponse::from_redirect_url(&target);
                }
                url = target;
                continue;
            }

            let page = response.text().await.unwrap_or_default();
            let form = find_forms(&page).into_iter().find(|form| form.method == "post");
            let is_login_form = form.as_ref().is_some_and(|form| form.has_field("password"));
            if credentials_sent && is_login_form {
                bail!("login rejected: {url} answered {status} with the login form again");
            }
            if !status.is_success() {
                bail!("{url} answered {status} instead of redirecting: {}", snippet(&page));
            }
            let mut form = form.with_context(|| format!("no <form method=\"post\"> on {url}"))?;
            if is_login_form {
                form.set("username", &self.username);
                form.set("password", &self.password);
                credentials_sent = true;
            }
            let fields = form.submission(Some(("decision", "allow")));
            let origin = url.origin().ascii_serialization();
            url = match form.action.as_deref() {
                Some(action) if !action.is_empty() => url.join(action)?,
                _ => url,
            };
            post = Some((fields, origin));
        }
        bail!("gave up after {MAX_STEPS} requests without reaching the redirect URI")
    }
}

impl LoginDriver for FormLogin {
    async fn redirect_uri(&mut self) -> anyhow::Result<String> {
        Ok(Self::REDIRECT_URI.to_owned())
    }

    async fn authorize(
        &mut self,
        authorization_url: &str,
        redirect_uri: &str,
    ) -> anyhow::Result<AuthorizationResponse> {
        self.sign_in(authorization_url, redirect_uri).await
    }
}

/// Same scheme, host, port and path (the query carries the response).
fn same_endpoint(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

fn snippet(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redirect_responses() -> anyhow::Result<()> {
        let url = Url::parse("http://127.0.0.1:1/callback?code=c%2B1&state=s&iss=http%3A%2F%2Fa")?;
        let response = AuthorizationResponse::from_redirect_url(&url)?;
        assert_eq!(response.code, "c+1");
        assert_eq!(response.state, "s");
        assert_eq!(response.iss.as_deref(), Some("http://a"));
        let denied = Url::parse("http://127.0.0.1:1/callback?error=access_denied&state=s")?;
        assert!(AuthorizationResponse::from_redirect_url(&denied).is_err());
        Ok(())
    }
}
