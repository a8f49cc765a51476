//! Redirect URIs: which ones a client may register (OAuth 2.1 §2.3.1, RFC 8252 §7) and how a
//! requested one is matched against the registered ones (exactly; loopback on any port).

use url::{Host, Url};

/// A redirect URI accepted for registration: `https`, `http` to a loopback address, or a
/// private-use scheme of a native app (`cursor://…`, `com.example.app:/cb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedirectUri(Url);

/// Schemes that run code or read local data in a browser: never a redirect target.
const FORBIDDEN_SCHEMES: &[&str] =
    &["javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws", "wss"];

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl RedirectUri {
    /// Validate a redirect URI for registration; the error says why it is refused.
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() > 2000 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must be a URL of at most 2000 characters without spaces or control characters");
        }
        let url = Url::parse(raw).map_err(|_| "is not an absolute URL")?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err("must not contain a fragment");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials");
        }
        match url.scheme() {
            "https" if url.host().is_some() => Ok(Self(url)),
            "http" if is_loopback(&url) => Ok(Self(url)),
            "http" => Err("http is allowed only for loopback addresses; use https"),
            "https" => Err("needs a host"),
            s if FORBIDDEN_SCHEMES.contains(&s) => Err("uses a forbidden scheme"),
            // RFC 8252 §7.1 private-use schemes for native apps (Cursor, VS Code, …).
            _ => Ok(Self(url)),
        }
    }
}

/// Whether `requested` matches the `registered` redirect URI: character for character, except
/// that a loopback `http` URI may use any port (RFC 8252 §7.3: native apps get an ephemeral one).
/// The comparison is on the text, never on parsed URLs, which would forgive what a browser
/// reads differently: userinfo (`http://evil.example@127.0.0.1/cb`), case, percent-encoding,
/// default ports, trailing dots.
pub(crate) fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (without_loopback_port(registered), without_loopback_port(requested)) {
        (Some(reg), Some(req)) => reg == req,
        _ => false,
    }
}

/// `uri` with the port taken out of its text, when it is a loopback `http` URI without
/// userinfo or fragment; `None` for anything else.
fn without_loopback_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') || uri.contains('#') {
        return None;
    }
    // The last `:` starts the port unless it is inside an IPv6 literal (`[::1]`).
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            host
        }
        _ => authority,
    };
    let url = Url::parse(uri).ok()?;
    is_loopback(&url).then(|| format!("http://{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        let ok = [
            "https://app.example.com/callback",
            "http://127.0.0.1:18049/oauth/callback",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "com.example.app:/oauth2redirect",
        ];
        for uri in ok {
            assert!(RedirectUri::parse(uri).is_ok(), "{uri} should be accepted");
        }
        let bad = [
            "http://evil.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "/relative",
            "not a url",
            "https://app.example.com/cb\r\nSet-Cookie: x",
            "http://127.0.0.1.evil.com/cb",
        ];
        for uri in bad {
            assert!(RedirectUri::parse(uri).is_err(), "{uri} should be refused");
        }
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let cases = [
            ("https://a.example/cb", "https://a.example/cb", true),
            ("https://a.example/cb", "https://a.example/cb/", false),
            ("https://a.example/cb", "https://a.example/cb?x=1", false),
            ("https://a.example/cb", "https://A.example/cb", false),
            ("https://a.example:443/cb", "https://a.example:8443/cb", false),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/cb", true),
            ("http://127.0.0.1/cb", "http://127.0.0.1:2000/cb", true),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/other", false),
            ("http://127.0.0.1:1000/cb", "http://localhost:1000/cb", false),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/cb#x", false),
            ("cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp/oauth/callback", true),
            ("http://[::1]:1000/cb", "http://[::1]:2000/cb", true),
            ("http://[::1]/cb", "http://[::1]:2000/cb", true),
            // Whatever a parser would forgive, the text does not.
            ("http://127.0.0.1:1000/cb", "http://evil.example.com@127.0.0.1:2000/cb", false),
            ("http://127.0.0.1:1000/cb", "http://u:p@127.0.0.1:1000/cb", false),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/cb/", false),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/CB", false),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/%63b", false),
            ("http://127.0.0.1:1000/cb", "HTTP://127.0.0.1:2000/cb", false),
            ("http://localhost:1000/cb", "http://LOCALHOST:2000/cb", false),
            ("http://127.0.0.1:1000/cb", "http://127.1:2000/cb", false),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:/cb", false),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000\\cb", false),
            ("https://a.example/cb", "https://a.example:443/cb", false),
            ("https://a.example/cb", "https://u@a.example/cb", false),
            ("https://a.example/cb", "https://a.example/cb#x", false),
        ];
        for (registered, requested, want) in cases {
            assert_eq!(redirect_matches(registered, requested), want, "{registered} vs {requested}");
        }
    }
}
