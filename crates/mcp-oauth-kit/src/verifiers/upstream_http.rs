//! HTTP requests to an external authorization server, for the token verifiers: its metadata,
//! its JWKS and its introspection endpoint. `https` only, except plain `http` to a loopback
//! host (a provider on the same machine, and tests); no redirects, no proxy from the
//! environment, a timeout, and a bounded response body.

use std::time::Duration;

use url::{Host, Url};

/// Beyond this a metadata document, key set or introspection answer is refused.
pub(crate) const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The whole request, connection included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to the authorization server failed. The message is safe to log: it never
/// holds a token or a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// It could not be reached, timed out, or the body could not be read.
    #[error("{url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// It answered, but not with a success status.
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// The body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("{url}: the response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { url: String },
}

/// Parse `url` and check it may be contacted: `https`, or `http` to a loopback host.
pub(crate) fn checked_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(format!("{url:?} has no host")),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!("{url:?} must use https (plain http only to a loopback host)")),
    }
}

/// The HTTP client for one verifier.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(concat!("mcp-oauth-kit/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Send `request` and read its success body, within [`MAX_RESPONSE_BYTES`].
pub(crate) async fn send(request: reqwest::RequestBuilder, url: &Url) -> Result<Vec<u8>, FetchError> {
    match send_answer(request, url).await? {
        (200..=299, body) => Ok(body),
        (status, _) => Err(FetchError::Status { url: url.as_str().to_owned(), status }),
    }
}

/// Send `request` and read its status and body, whatever the status (an OAuth error answer
/// names its error in the body), within [`MAX_RESPONSE_BYTES`].
pub(crate) async fn send_answer(request: reqwest::RequestBuilder, url: &Url) -> Result<(u16, Vec<u8>), FetchError> {
    let url = url.as_str().to_owned();
    let unreachable = |e: reqwest::Error| FetchError::Unreachable { url: url.clone(), reason: e.to_string() };
    let mut response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(FetchError::TooLarge { url });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(FetchError::TooLarge { url });
        }
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_or_loopback_http_only() {
        for ok in
            ["https://login.example.com/jwks", "http://127.0.0.1:8080/jwks", "http://[::1]/x", "http://localhost/x"]
        {
            assert!(checked_url(ok).is_ok(), "{ok}");
        }
        for bad in ["http://login.example.com/jwks", "ftp://127.0.0.1/x", "not a url", "file:///etc/passwd"] {
            assert!(checked_url(bad).is_err(), "{bad}");
        }
    }
}
