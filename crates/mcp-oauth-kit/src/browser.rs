//! The browser behind a sign-in form: its cookies, the form token bound to it, and whether a
//! form post is a same-origin submission of this server's own page (login CSRF, RFC 9700
//! §4.4.1.8).
//!
//! Each browser gets a random secret in the `mcp_browser` cookie (`HttpOnly`, `SameSite=Lax`,
//! `Path=/`; `__Host-` and `Secure` over https) the first time it sees a sign-in page. The form
//! token of a pending sign-in is derived from that secret and the request handle, so a token
//! read in one browser (by a sibling subdomain that opened `/authorize` for itself) is worthless
//! in another. On top of the token, a post that the browser marks as cross-site
//! (`Sec-Fetch-Site`) or from another origin (`Origin`, where `null` counts as foreign) is
//! refused before anything is read or spent.

use http::header::{COOKIE, ORIGIN};
use http::{HeaderMap, HeaderValue};

use crate::config::Config;
use crate::secret::{NewSecret, ct_eq_str, derived_token};

/// Prefix of a browser secret; anything else in the cookie is ignored.
const SECRET_PREFIX: &str = "mcp_br_";

/// How long a browser keeps its secret: 400 days, the longest Chromium allows.
const BROWSER_COOKIE_MAX_AGE_SECS: u64 = 400 * 24 * 3600;

/// The value of cookie `name` among the request's `Cookie` headers; an emptied cookie is none.
pub(crate) fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The browser cookie's name: `__Host-` (and so `Secure`, host-only, `Path=/`) over https.
fn cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() { "__Host-mcp_browser" } else { "mcp_browser" }
}

/// The browser's secret, as a sign-in page needs it: the one its cookie holds, or a new one
/// with the `Set-Cookie` that gives it to the browser.
#[derive(Clone)]
pub(crate) struct Browser {
    secret: String,
    /// `Some` when the secret is new and the response must set it.
    pub(crate) set_cookie: Option<HeaderValue>,
}

impl Browser {
    /// The browser's secret from its cookie, if it brought a well-formed one.
    pub(crate) fn known(config: &Config, headers: &HeaderMap) -> Option<Self> {
        read_cookie(headers, cookie_name(config))
            .filter(|s| s.starts_with(SECRET_PREFIX) && s.len() <= 64)
            .map(|s| Self { secret: s.to_owned(), set_cookie: None })
    }

    /// The browser's secret, or a new one for a browser that has none yet.
    pub(crate) fn known_or_new(config: &Config, headers: &HeaderMap) -> Self {
        Self::known(config, headers).unwrap_or_else(|| {
            let secret = NewSecret::generate(SECRET_PREFIX).into_string();
            let secure = if config.secure_cookies() { "; Secure" } else { "" };
            let value = format!(
                "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={BROWSER_COOKIE_MAX_AGE_SECS}{secure}",
                cookie_name(config)
            );
            Self { set_cookie: HeaderValue::from_str(&value).ok(), secret }
        })
    }

    /// The token the sign-in form of request `handle` carries in this browser.
    pub(crate) fn form_token(&self, handle: &str) -> String {
        derived_token(&format!("login-form/{handle}"), &self.secret)
    }

    /// The flag on the sign-in page's URL after a wrong password (the page is shown by a
    /// redirect after the POST, so that a reload does not post the form again): the second it
    /// was set and a token over it, `handle` and this browser's secret. A link cannot make
    /// another browser show the error, and no store write is spent on it.
    pub(crate) fn failure_flag(&self, handle: &str, at_secs: u64) -> String {
        format!("{at_secs}.{}", derived_token(&format!("login-failed/{handle}/{at_secs}"), &self.secret))
    }

    /// Whether `flag` is this browser's [`Browser::failure_flag`] for `handle`, set at most
    /// `ttl_secs` before `now_secs`.
    pub(crate) fn failure_flag_is_fresh(&self, handle: &str, flag: &str, now_secs: u64, ttl_secs: u64) -> bool {
        let Some(at) = flag.split_once('.').and_then(|(at, _)| at.parse::<u64>().ok()) else { return false };
        at <= now_secs && now_secs - at <= ttl_secs && ct_eq_str(flag, &self.failure_flag(handle, at))
    }

    #[cfg(feature = "jwt")]
    /// A value derived from this browser's secret for one `purpose` (an upstream sign-in's
    /// `state`, `nonce` and PKCE verifier): unguessable without the cookie.
    pub(crate) fn derived(&self, purpose: &str) -> String {
        derived_token(purpose, &self.secret)
    }

    /// Whether `token` is this browser's form token for `handle` (constant time).
    pub(crate) fn form_token_matches(&self, handle: &str, token: &str) -> bool {
        ct_eq_str(token, &self.form_token(handle))
    }
}

/// Where a form post comes from, as far as the browser says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Submission {
    /// `Sec-Fetch-Site: same-origin` or `Origin` equal to this server's: this server's own page.
    SameOrigin,
    /// Neither header: a client that is not a browser, or a very old browser.
    Unmarked,
    /// Marked as coming from elsewhere: another site, a sibling subdomain, or `Origin: null`.
    Foreign,
}

/// Classify a form post by its `Sec-Fetch-Site` and `Origin` headers. Each header that is
/// present must say "this origin"; the public URL's origin is the only one (web clients'
/// extra origins may call the API, not post the sign-in form).
pub(crate) fn submission(config: &Config, headers: &HeaderMap) -> Submission {
    let own = config.public_url.origin().ascii_serialization();
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes() == b"same-origin");
    let origin = headers.get(ORIGIN).map(|v| v.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(&own)));
    match (fetch_site, origin) {
        (Some(false), _) | (_, Some(false)) => Submission::Foreign,
        (None, None) => Submission::Unmarked,
        _ => Submission::SameOrigin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; mcp_browser=abc; b=2; empty="));
        assert_eq!(read_cookie(&h, "mcp_browser"), Some("abc"));
        assert_eq!(read_cookie(&h, "missing"), None);
        assert_eq!(read_cookie(&h, "empty"), None, "an emptied cookie is no cookie");
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(value).expect("a header"));
        h
    }

    #[test]
    fn a_new_browser_gets_a_long_lived_http_only_cookie() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let browser = Browser::known_or_new(&config, &HeaderMap::new());
        let set = browser.set_cookie.expect("a new cookie").to_str().expect("ascii").to_owned();
        assert!(set.starts_with("mcp_browser=mcp_br_"), "{set}");
        assert!(set.ends_with("; Path=/; HttpOnly; SameSite=Lax; Max-Age=34560000"), "{set}");
        let config = Config::new("https://mcp.example.com").expect("valid");
        let set = Browser::known_or_new(&config, &HeaderMap::new()).set_cookie.expect("a new cookie");
        let set = set.to_str().expect("ascii");
        assert!(set.starts_with("__Host-mcp_browser=mcp_br_") && set.ends_with("; Secure"), "{set}");
    }

    #[test]
    fn form_tokens_belong_to_one_browser_and_one_request() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let x = Browser::known(&config, &with_cookie("mcp_browser=mcp_br_x")).expect("known");
        let y = Browser::known(&config, &with_cookie("mcp_browser=mcp_br_y")).expect("known");
        assert!(x.set_cookie.is_none(), "a known browser keeps its cookie");
        let token = x.form_token("h1");
        assert!(x.form_token_matches("h1", &token));
        assert!(!y.form_token_matches("h1", &token), "another browser");
        assert!(!x.form_token_matches("h2", &token), "another request");
        assert!(Browser::known(&config, &with_cookie("mcp_browser=forged")).is_none(), "not a secret of ours");
    }

    #[test]
    fn only_this_origin_may_post_the_form() {
        let config = Config::new("http://127.0.0.1:8000").expect("valid");
        let rows: &[(&[(&str, &str)], Submission)] = &[
            (&[("sec-fetch-site", "same-origin")], Submission::SameOrigin),
            (&[("origin", "http://127.0.0.1:8000")], Submission::SameOrigin),
            (&[("sec-fetch-site", "same-origin"), ("origin", "http://127.0.0.1:8000")], Submission::SameOrigin),
            (&[], Submission::Unmarked),
            (&[("sec-fetch-site", "same-site")], Submission::Foreign),
            (&[("sec-fetch-site", "cross-site")], Submission::Foreign),
            (&[("sec-fetch-site", "none")], Submission::Foreign),
            (&[("origin", "null")], Submission::Foreign),
            (&[("origin", "http://evil.127.0.0.1:8000")], Submission::Foreign),
            (&[("origin", "http://localhost:8000")], Submission::Foreign),
            (&[("sec-fetch-site", "same-origin"), ("origin", "null")], Submission::Foreign),
        ];
        for (headers, expected) in rows {
            let mut h = HeaderMap::new();
            for (k, v) in *headers {
                h.insert(*k, HeaderValue::from_static(v));
            }
            assert_eq!(submission(&config, &h), *expected, "{headers:?}");
        }
    }
}
