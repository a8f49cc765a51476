//! A scripted "browser" for tests: it signs in through the server's HTML login
//! form instead of a human.

use anyhow::{Context as _, bail};
use reqwest::{
    Url,
    header::{LOCATION, ORIGIN},
    redirect,
};

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

/// An HTML `<form>`, reduced to what a browser would submit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlForm {
    /// The `method` attribute, lowercased (`get` when absent).
    pub method: String,
    /// The `action` attribute (entities decoded), if present.
    pub action: Option<String>,
    /// `name`/`value` of every successful control: text, password, hidden, …
    /// inputs and checked checkboxes/radios, in document order.
    pub fields: Vec<(String, String)>,
    /// `name`/`value` of the named submit buttons (`<button>` and
    /// `<input type="submit">`); only the one clicked is submitted.
    pub submit_buttons: Vec<(String, String)>,
}

impl HtmlForm {
    /// Whether the form has a (non-button) field called `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// Sets field `name` to `value`, adding it if the form lacks it.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The fields to post when clicking `button` (a `(name, value)` pair among
    /// [`submit_buttons`](Self::submit_buttons)); falls back to the first named
    /// submit button when `button` is `None` or not on the form.
    pub fn submission(&self, button: Option<(&str, &str)>) -> Vec<(String, String)> {
        let clicked = button
            .and_then(|(name, value)| self.submit_buttons.iter().find(|(n, v)| n == name && v == value))
            .or_else(|| self.submit_buttons.first());
        let mut fields = self.fields.clone();
        fields.extend(clicked.cloned());
        fields
    }
}

/// Finds the `<form>`s of an HTML page with a small tag scanner (no HTML
/// parser): comments, `<script>` and `<style>` bodies are skipped, attribute
/// names are case-insensitive, values may be double-, single- or unquoted, and
/// character references (`&amp;`, `&quot;`, `&#39;`, `&#x2F;`, …) are decoded.
pub fn find_forms(html: &str) -> Vec<HtmlForm> {
    let mut forms = Vec::new();
    let mut current: Option<HtmlForm> = None;
    for tag in Tags::new(html) {
        match (tag.name.as_str(), tag.closing) {
            ("form", false) => {
                forms.extend(current.take());
                current = Some(HtmlForm {
                    method: tag.attr("method").unwrap_or("get").to_ascii_lowercase(),
                    action: tag.attr("action").map(str::to_owned),
                    ..HtmlForm::default()
                });
            }
            ("form", true) => forms.extend(current.take()),
            ("input", false) => {
                let (Some(form), Some(name)) = (current.as_mut(), tag.attr("name")) else {
                    continue;
                };
                let value = tag.attr("value");
                match tag.attr("type").unwrap_or("text").to_ascii_lowercase().as_str() {
                    "submit" => form.submit_buttons.push((name.to_owned(), value.unwrap_or_default().to_owned())),
                    "checkbox" | "radio" if tag.attr("checked").is_some() => {
                        form.fields.push((name.to_owned(), value.unwrap_or("on").to_owned()))
                    }
                    "checkbox" | "radio" | "button" | "image" | "reset" | "file" => {}
                    _ => form.fields.push((name.to_owned(), value.unwrap_or_default().to_owned())),
                }
            }
            ("button", false) => {
                let (Some(form), Some(name)) = (current.as_mut(), tag.attr("name")) else {
                    continue;
                };
                if tag.attr("type").unwrap_or("submit").eq_ignore_ascii_case("submit") {
                    let value = tag.attr("value").unwrap_or_default();
                    form.submit_buttons.push((name.to_owned(), value.to_owned()));
                }
            }
            _ => {}
        }
    }
    forms.extend(current);
    forms
}

/// One start or end tag.
struct Tag {
    /// Lowercased tag name.
    name: String,
    closing: bool,
    /// Lowercased attribute names with decoded values (`""` for bare attributes).
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Iterator over the tags of an HTML document.
///
/// Every delimiter it looks for is ASCII, so slicing at those byte offsets is
/// always on a UTF-8 character boundary.
struct Tags<'a> {
    html: &'a str,
    pos: usize,
}

impl<'a> Tags<'a> {
    fn new(html: &'a str) -> Self {
        Self { html, pos: 0 }
    }

    /// Moves past the next occurrence of `needle` (case-insensitively), or to the end.
    fn skip_past(&mut self, needle: &str) {
        let rest = self.html[self.pos..].to_ascii_lowercase();
        self.pos = match rest.find(needle) {
            Some(i) => self.pos + i + needle.len(),
            None => self.html.len(),
        };
    }
}

impl Iterator for Tags<'_> {
    type Item = Tag;

    fn next(&mut self) -> Option<Tag> {
        let bytes = self.html.as_bytes();
        loop {
            let start = self.pos + self.html[self.pos..].find('<')?;
            self.pos = start + 1;
            if self.html[self.pos..].starts_with("!--") {
                self.skip_past("-->");
                continue;
            }
            let closing = bytes.get(self.pos) == Some(&b'/');
            if closing {
                self.pos += 1;
            }
            let name_len = bytes[self.pos..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
            if name_len == 0 {
                // `<!DOCTYPE …>`, `<?xml …?>` or a stray `<` in text.
                continue;
            }
            let name = self.html[self.pos..self.pos + name_len].to_ascii_lowercase();
            self.pos += name_len;
            let attrs = self.attributes();
            if !closing && (name == "script" || name == "style") {
                self.skip_past(&format!("</{name}"));
            }
            return Some(Tag { name, closing, attrs });
        }
    }
}

impl Tags<'_> {
    /// Parses attributes up to and including the tag's closing `>`.
    fn attributes(&mut self) -> Vec<(String, String)> {
        let bytes = self.html.as_bytes();
        let mut attrs = Vec::new();
        let skip_ws = |pos: &mut usize| {
            while bytes.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
                *pos += 1;
            }
        };
        let mut pos = self.pos;
        loop {
            skip_ws(&mut pos);
            match bytes.get(pos) {
                None => break,
                Some(b'>') => {
                    pos += 1;
                    break;
                }
                Some(b'/') => {
                    pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name_start = pos;
            while bytes.get(pos).is_some_and(|b| !b.is_ascii_whitespace() && !b"=>/".contains(b)) {
                pos += 1;
            }
            let name = self.html[name_start..pos].to_ascii_lowercase();
            let mut after_name = pos;
            skip_ws(&mut after_name);
            if bytes.get(after_name) != Some(&b'=') {
                attrs.push((name, String::new()));
                continue;
            }
            pos = after_name + 1;
            skip_ws(&mut pos);
            let raw = match bytes.get(pos) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let value_start = pos + 1;
                    let value_end =
                        bytes[value_start..].iter().position(|b| *b == quote).map_or(bytes.len(), |i| value_start + i);
                    pos = (value_end + 1).min(bytes.len());
                    &self.html[value_start..value_end]
                }
                _ => {
                    let value_start = pos;
                    while bytes.get(pos).is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>') {
                        pos += 1;
                    }
                    &self.html[value_start..pos]
                }
            };
            attrs.push((name, decode_entities(raw)));
        }
        self.pos = pos;
        attrs
    }
}

/// Decodes the character references that show up in attribute values.
fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let code = if let Some(hex) = entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        entity.strip_prefix('#').and_then(|dec| dec.parse().ok())
                    };
                    code.and_then(char::from_u32)
                }
            };
            ch.map(|ch| (ch, end))
        });
        match decoded {
            Some((ch, end)) => {
                out.push(ch);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Sign in &ndash; Acme</title>
  <style>form > input { display: block }</style>
  <script>if (a < b) { document.write('<input name="evil" value="x">'); }</script>
</head>
<body>
  <!-- <form method="post" action="/not-this-one"><input name="nope"></form> -->
  <h1>Sign in to continue to “Claude”</h1>
  <FORM Method="POST" action='/login?flow=a&amp;b=1'>
    <input type="hidden" name="request" value="req_7f3&amp;x">
    <input type="hidden" name="csrf_token" value="tok&#x2F;en&quot;=">
    <label>Username <input type="text" name="username" autocomplete="username" required></label>
    <label>Password <input type=password name=password></label>
    <input type="checkbox" name="remember" value="yes">
    <input type="checkbox" name="terms" checked>
    <input name="note" value="caf&#233; ☕">
    <button type="submit" name="decision" value="allow">Allow</button>
    <button type="submit" name="decision" value="deny">Deny</button>
    <button type="button" name="help">?</button>
  </FORM>
  <form action="/search"><input name="q"></form>
</body>
</html>"#;

    #[test]
    fn scans_the_login_form() {
        let forms = find_forms(LOGIN_PAGE);
        assert_eq!(forms.len(), 2, "{forms:#?}");
        let login = &forms[0];
        assert_eq!(login.method, "post");
        assert_eq!(login.action.as_deref(), Some("/login?flow=a&b=1"));
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        assert_eq!(
            login.fields,
            pairs(&[
                ("request", "req_7f3&x"),
                ("csrf_token", "tok/en\"="),
                ("username", ""),
                ("password", ""),
                ("terms", "on"),
                ("note", "café ☕"),
            ])
        );
        assert_eq!(login.submit_buttons, pairs(&[("decision", "allow"), ("decision", "deny")]));
        assert_eq!(forms[1].method, "get");
        assert_eq!(forms[1].fields, pairs(&[("q", "")]));
    }

    #[test]
    fn fills_in_credentials_and_clicks_allow() {
        let mut form = find_forms(LOGIN_PAGE).remove(0);
        assert!(form.has_field("password"));
        form.set("username", "alice");
        form.set("password", "p&ss w0rd");
        let submission = form.submission(Some(("decision", "allow")));
        assert_eq!(submission.first().map(|(n, _)| n.as_str()), Some("request"));
        assert!(submission.contains(&("username".into(), "alice".into())));
        assert!(submission.contains(&("password".into(), "p&ss w0rd".into())));
        assert_eq!(submission.last(), Some(&("decision".to_string(), "allow".to_string())));
        assert!(!submission.iter().any(|(_, v)| v == "deny"));
        let deny = form.submission(Some(("decision", "deny")));
        assert_eq!(deny.last(), Some(&("decision".to_string(), "deny".to_string())));
    }

    #[test]
    fn decodes_entities() {
        assert_eq!(decode_entities("a&amp;b&lt;&gt;&#39;&#X41;"), "a&b<>'A");
        assert_eq!(decode_entities("fish & chips &unknown; &"), "fish & chips &unknown; &");
    }

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
