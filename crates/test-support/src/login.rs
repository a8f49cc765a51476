//! The browser's part of an authorization (RFC 6749 §4.1): the sign-in form of the login page,
//! and the authorization response the server sends back to the client's redirect URI.

use http::HeaderMap;
use url::Url;

use crate::html::{HtmlForm, find_forms};
use crate::redirect::{param, set_cookie};

/// The sign-in form of a login page, as the browser that loaded it holds it: the form's
/// fields (hidden `request` and `csrf_token` included) and the browser cookie the page set.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::SET_COOKIE};
/// use mcp_test_support::LoginForm;
///
/// let html = r#"<form method="post" action="/login">
///   <input type="hidden" name="request" value="r1"><input type="hidden" name="csrf_token" value="t1">
///   <input name="username"><input type="password" name="password">
///   <button name="decision" value="allow">Allow</button><button name="decision" value="deny">Deny</button>
/// </form>"#;
/// let mut headers = HeaderMap::new();
/// headers.insert(SET_COOKIE, HeaderValue::from_static("mcp_browser=b1; Path=/; HttpOnly"));
/// let form = LoginForm::read(&headers, html).expect("a sign-in form");
/// assert_eq!(form.field("request"), Some("r1"));
/// assert_eq!(form.cookie.as_deref(), Some("mcp_browser=b1"));
/// let sent = form.submission("alice", "password123", "allow");
/// assert_eq!(sent.last(), Some(&("decision".to_owned(), "allow".to_owned())));
/// ```
#[derive(Debug, Clone)]
pub struct LoginForm {
    /// The page's `<form method="post">` that asks for a password.
    pub form: HtmlForm,
    /// The browser cookie (`mcp_browser=…`, or `__Host-mcp_browser=…` behind https) as it goes
    /// back in a `Cookie` header; `None` when the page set none.
    pub cookie: Option<String>,
}

impl LoginForm {
    /// The sign-in form of a login page and the cookie its response set; `None` when the page
    /// has no POST form with a `password` field.
    pub fn read(headers: &HeaderMap, html: &str) -> Option<Self> {
        let form = find_forms(html).into_iter().find(|f| f.method == "post" && f.has_field("password"))?;
        Some(Self { form, cookie: set_cookie(headers, "mcp_browser") })
    }

    /// The value of a field of the form (`request`, `csrf_token`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Where the form posts, resolved against the page's URL.
    pub fn action(&self, page: &Url) -> Option<Url> {
        page.join(self.form.action.as_deref().unwrap_or_default()).ok()
    }

    /// What the browser posts when the user types these credentials and presses the
    /// `decision` button (`allow` or `deny`).
    pub fn submission(&self, username: &str, password: &str, decision: &str) -> Vec<(String, String)> {
        let mut form = self.form.clone();
        form.set("username", username);
        form.set("password", password);
        form.submission(Some(("decision", decision)))
    }
}

/// The authorization response a redirect brings back to the client (RFC 6749 §4.1.2, with the
/// RFC 9207 `iss`).
///
/// ```
/// use mcp_test_support::{AuthorizationResponse, CallbackError};
/// use url::Url;
///
/// let ok = Url::parse("http://127.0.0.1:9999/callback?code=c1&state=s&iss=http%3A%2F%2Fa").unwrap();
/// let response = AuthorizationResponse::from_callback(&ok).unwrap();
/// assert_eq!((response.code.as_str(), response.iss.as_deref()), ("c1", Some("http://a")));
///
/// let denied = Url::parse("http://127.0.0.1:9999/callback?error=access_denied&state=s").unwrap();
/// let refused = AuthorizationResponse::from_callback(&denied).unwrap_err();
/// assert!(matches!(refused, CallbackError::Refused { ref error, .. } if error == "access_denied"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The authorization code.
    pub code: String,
    /// The `state` the client sent, echoed.
    pub state: Option<String>,
    /// The issuer that sent the code.
    pub iss: Option<String>,
}

/// Why a redirect to the client carries no usable authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackError {
    /// The server sent an `error` (RFC 6749 §4.1.2.1), with or without a code.
    Refused {
        /// The `error` code, e.g. `access_denied`.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// Neither a `code` nor an `error`.
    NoCode,
}

impl std::fmt::Display for CallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { error, description: Some(d) } => write!(f, "authorization refused: {error}: {d}"),
            Self::Refused { error, description: None } => write!(f, "authorization refused: {error}"),
            Self::NoCode => f.write_str("the redirect to the client carries no code"),
        }
    }
}

impl std::error::Error for CallbackError {}

impl AuthorizationResponse {
    /// Reads the response off the URL the server redirected the browser to.
    ///
    /// # Errors
    /// [`CallbackError::Refused`] when the URL carries an `error` (a code never comes with
    /// one), [`CallbackError::NoCode`] when it carries no code.
    pub fn from_callback(callback: &Url) -> Result<Self, CallbackError> {
        if let Some(error) = param(callback, "error") {
            return Err(CallbackError::Refused { error, description: param(callback, "error_description") });
        }
        let code = param(callback, "code").ok_or(CallbackError::NoCode)?;
        Ok(Self { code, state: param(callback, "state"), iss: param(callback, "iss") })
    }
}
