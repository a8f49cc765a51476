//! What a client reads off a response: where a redirect goes, a query parameter of that URL,
//! and a cookie the server set.

use http::HeaderMap;
use http::header::{LOCATION, SET_COOKIE};
use url::Url;

/// The `Location` of a redirect as a URL, `None` when there is none or it does not parse.
///
/// With `base` (the URL the request went to), a relative `Location` is resolved against it,
/// as a browser does. Without, only an absolute `Location` counts: the kit builds every
/// redirect from its public URL, and a test that checks that passes `None`.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::LOCATION};
/// use url::Url;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(LOCATION, HeaderValue::from_static("/login?request=r1"));
/// let base = Url::parse("http://127.0.0.1:8000/authorize").unwrap();
/// let login = mcp_test_support::location(&headers, Some(&base)).unwrap();
/// assert_eq!(login.as_str(), "http://127.0.0.1:8000/login?request=r1");
/// assert_eq!(mcp_test_support::location(&headers, None), None, "relative");
/// ```
pub fn location(headers: &HeaderMap, base: Option<&Url>) -> Option<Url> {
    let raw = headers.get(LOCATION)?.to_str().ok()?;
    match base {
        Some(base) => base.join(raw).ok(),
        None => Url::parse(raw).ok(),
    }
}

/// The value of the first query parameter `name` of `url`, decoded.
///
/// ```
/// let url = url::Url::parse("http://127.0.0.1/cb?code=a%2Bb&state=s").unwrap();
/// assert_eq!(mcp_test_support::param(&url, "code").as_deref(), Some("a+b"));
/// assert_eq!(mcp_test_support::param(&url, "error"), None);
/// ```
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The `name=value` pair of the first `Set-Cookie` whose cookie name ends with `name`, as it
/// goes back in a `Cookie` header.
///
/// Matching the end of the name finds a cookie under its `__Host-` prefix too, which the
/// server adds when its public URL is `https`.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::SET_COOKIE};
///
/// let mut headers = HeaderMap::new();
/// headers.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
/// headers.append(SET_COOKIE, HeaderValue::from_static("__Host-mcp_browser=b1; Path=/; Secure"));
/// let pair = mcp_test_support::set_cookie(&headers, "mcp_browser");
/// assert_eq!(pair.as_deref(), Some("__Host-mcp_browser=b1"));
/// ```
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::trim)
        .find(|pair| pair.split_once('=').is_some_and(|(n, _)| n.ends_with(name)))
        .map(str::to_owned)
}
