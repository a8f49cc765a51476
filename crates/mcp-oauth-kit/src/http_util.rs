//! HTTP plumbing shared by the endpoints: body types, bounded body reading, form parsing,
//! and the response builders (JSON, OAuth errors, HTML with its security headers, redirects).

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt, Full};

use crate::error::{OAuthError, OAuthErrorCode};

/// The error type of request bodies once boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request body of any origin (hyper, axum, a test), boxed.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;
/// The response body the kit produces (rmcp's too).
pub type ResponseBody = BoxBody<Bytes, Infallible>;
/// A response of the kit.
pub type HttpResponse = Response<ResponseBody>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// A JSON response that no cache keeps (tokens and registrations must not be cached).
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> HttpResponse {
    let mut res = response(status, "application/json", value.to_string());
    no_store(res.headers_mut());
    res
}

/// A public JSON document (the metadata): cacheable and readable from any origin.
pub(crate) fn public_json(value: &serde_json::Value) -> HttpResponse {
    let mut res = response(StatusCode::OK, "application/json", value.to_string());
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    res
}

pub(crate) fn no_store(h: &mut HeaderMap) {
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// How long a client is asked to wait when the store failed: enough for a database that is
/// restarting or failing over, short enough for a user who retries by hand.
pub(crate) const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// `Retry-After` in whole seconds (at least 1).
pub(crate) fn set_retry_after(res: &mut HttpResponse, after: Duration) {
    res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
}

/// 429 with `Retry-After` in whole seconds (at least 1).
pub(crate) fn too_many_requests(retry_after: std::time::Duration) -> HttpResponse {
    let secs = retry_after.as_secs().max(1);
    let e = OAuthError::new(OAuthErrorCode::SlowDown, format!("too many requests; retry after {secs} s"));
    let mut res = oauth_error(&e);
    set_retry_after(&mut res, retry_after);
    res
}

/// Add `Retry-After` to the answer for `e` if it is `temporarily_unavailable` (a store failure).
pub(crate) fn retry_after_unavailable(res: &mut HttpResponse, e: &OAuthError) {
    if e.code == OAuthErrorCode::TemporarilyUnavailable {
        set_retry_after(res, STORE_RETRY_AFTER);
    }
}

/// An RFC 6749 §5.2 error body with the code's status (and `Retry-After` for
/// `temporarily_unavailable`).
pub(crate) fn oauth_error(e: &OAuthError) -> HttpResponse {
    let mut res = json(e.code.status(), &e.to_json());
    retry_after_unavailable(&mut res, e);
    res
}

/// A plain-text response, for errors outside OAuth (404, 405, 403 on a foreign host).
pub(crate) fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut res = response(status, "text/plain; charset=utf-8", body);
    no_store(res.headers_mut());
    res
}

/// An HTML page with the headers a sign-in page needs: no framing (clickjacking), no
/// third-party anything, no caching. No `form-action`: Chromium applies it to the redirect
/// that follows the form POST, which would block the way back to the client.
pub(crate) fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut res = response(status, "text/html; charset=utf-8", body);
    let h = res.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it Chromium sends `Origin: null` on the page's own form POST,
    // which the sign-in form must refuse as foreign.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    no_store(h);
    res
}

/// A 302 redirect.
pub(crate) fn redirect(location: &str) -> HttpResponse {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            res.headers_mut().insert(LOCATION, v);
        }
        // Locations come from validated URLs re-serialised by the `url` crate; this is only
        // reachable through a bug, and a 500 is then the honest answer.
        Err(_) => *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    no_store(res.headers_mut());
    res
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    TooLarge,
    Read,
}

impl BodyError {
    pub(crate) fn to_oauth(&self) -> (StatusCode, OAuthError) {
        match self {
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, OAuthError::invalid_request("request body is too large")),
            Self::Read => (StatusCode::BAD_REQUEST, OAuthError::invalid_request("request body could not be read")),
        }
    }

    pub(crate) fn response(&self) -> HttpResponse {
        let (status, e) = self.to_oauth();
        let mut res = json(status, &e.to_json());
        // The rest of the body is still on the wire: say that the connection ends here, so
        // that a keep-alive client does not send its next request into a closing socket.
        res.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        res
    }
}

/// Read a whole body, refusing more than `limit` bytes whatever `Content-Length` says.
pub(crate) async fn read_body(mut body: RequestBody, limit: usize) -> Result<Bytes, BodyError> {
    if http_body::Body::size_hint(&body).lower() > limit as u64 {
        return Err(BodyError::TooLarge); // Content-Length says so: do not read at all
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Whether the request's media type is `expected` (parameters such as `charset` ignored).
pub(crate) fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

/// The most parameters a form or query string may have. The largest OAuth request has about a
/// dozen; the cap keeps a 64 KiB body of one-byte keys from costing thousands of allocations.
pub(crate) const MAX_FORM_PARAMETERS: usize = 64;

/// A parsed `application/x-www-form-urlencoded` body or query string.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parse, refusing invalid UTF-8, more than [`MAX_FORM_PARAMETERS`] parameters, and
    /// repeated parameters (RFC 6749 §3.1: "Request and response parameters MUST NOT be
    /// included more than once"). Linear in the input: parsing stops at the first parameter
    /// over the cap, and repeats are found with a hash set.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        if std::str::from_utf8(bytes).is_err() {
            return Err(OAuthError::invalid_request("the parameters are not valid UTF-8"));
        }
        let mut pairs = Vec::new();
        for (k, v) in url::form_urlencoded::parse(bytes) {
            if pairs.len() == MAX_FORM_PARAMETERS {
                return Err(OAuthError::invalid_request(format!(
                    "too many parameters: at most {MAX_FORM_PARAMETERS} are accepted"
                )));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        let mut seen = HashSet::with_capacity(pairs.len());
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !seen.insert(k.as_str())) {
            return Err(OAuthError::invalid_request(format!("parameter {k:?} is repeated")));
        }
        Ok(Self(pairs))
    }

    /// A parameter, with empty values treated as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// A parameter including an empty value (for `scope=`, which means "the default").
    pub(crate) fn get_raw(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Escape text for HTML element content and double-quoted attributes.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Give a body of any type the kit's boxed request body type.
pub(crate) fn box_body<B>(body: B) -> RequestBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::http_util::BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_refuse_repeats_and_bad_utf8() {
        let f = Form::parse(b"a=1&b=&c=x%20y").expect("valid");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), None);
        assert_eq!(f.get_raw("b"), Some(""));
        assert_eq!(f.get("c"), Some("x y"));
        assert!(Form::parse(b"a=1&a=2").is_err());
        assert!(Form::parse(b"a=\xff").is_err());
        assert!(Form::parse(b"a=%ff").is_ok(), "percent-decoded garbage becomes U+FFFD, not a panic");
    }

    #[test]
    fn forms_are_capped_at_max_form_parameters() {
        let form = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
        let at_cap = Form::parse(form(MAX_FORM_PARAMETERS).as_bytes()).expect("at the cap");
        assert_eq!(at_cap.get("k63"), Some("v"));
        for n in [MAX_FORM_PARAMETERS + 1, 16_000] {
            let e = Form::parse(form(n).as_bytes()).expect_err("over the cap");
            assert_eq!(e.code, crate::error::OAuthErrorCode::InvalidRequest);
            assert_eq!(e.description, "too many parameters: at most 64 are accepted", "{n}");
        }
        // Empty pairs (`&&`) are no parameters; a repeat is found wherever it is.
        assert!(Form::parse("&".repeat(1000).as_bytes()).is_ok());
        let e = Form::parse(format!("{}&k0=again", form(MAX_FORM_PARAMETERS - 1)).as_bytes()).expect_err("repeat");
        assert_eq!(e.description, "parameter \"k0\" is repeated");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
