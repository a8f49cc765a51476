//! How a client is shown on the sign-in, consent and error pages: its name, and where the
//! user will be sent back.
//!
//! A client chooses its own name (at registration or in its metadata document), so the name is
//! cleaned before a user reads it: control characters and Unicode format characters (general
//! category Cf: bidi overrides that reverse text, zero-width characters that hide it) are
//! dropped, so that "Claude\u{202e}lanigirO" cannot read as something else. A metadata-document
//! client also shows the host its name comes from. A redirect URI that is not `https` shows its
//! scheme: `com.evil://claude.ai/cb` is not "claude.ai". HTML escaping is the page's job.

use url::Url;

use crate::store::ClientRecord;

/// Whether `client_id` is meant as a metadata document URL (rather than a registered id). Also
/// without the `cimd` feature: such ids are then refused, and a stored one still shows its host.
pub(crate) fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Longest name shown, in characters.
const MAX_CHARS: usize = 100;

/// Unicode's format characters (general category Cf, Unicode 15.1) as inclusive ranges.
const FORMAT: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

fn is_format(c: char) -> bool {
    FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `name` without control and format characters (line and paragraph separators too), trimmed
/// and cut to [`MAX_CHARS`].
pub(crate) fn clean(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|&c| !c.is_control() && !is_format(c) && c != '\u{2028}' && c != '\u{2029}')
        .take(MAX_CHARS)
        .collect();
    kept.trim().to_owned()
}

/// What the pages call `client`: its cleaned name (its id when it has none, or none is left),
/// and for a metadata-document client the host that serves the document, so that "Claude"
/// served from evil.example does not pass for the real one.
pub(crate) fn display_name(client: &ClientRecord) -> String {
    let name = client.client_name.as_deref().map(clean).filter(|n| !n.is_empty());
    match (name, is_metadata_url(&client.client_id)) {
        (Some(name), true) => {
            let host = Url::parse(&client.client_id).ok().and_then(|u| u.host_str().map(str::to_owned));
            format!("{name} ({})", host.unwrap_or_default())
        }
        (Some(name), false) => name,
        (None, _) => clean(&client.client_id),
    }
}

/// Where the user is sent back to: the host of an `https` redirect URI; otherwise scheme and
/// host (`http://127.0.0.1`, `com.example.app://callback`), or the scheme alone (`com.app:`).
pub(crate) fn redirect_target(redirect_uri: &str) -> String {
    let Ok(url) = Url::parse(redirect_uri) else { return String::new() };
    match (url.scheme(), url.host_str()) {
        ("https", Some(host)) => host.to_owned(),
        (scheme, Some(host)) if !host.is_empty() => format!("{scheme}://{host}"),
        (scheme, _) => format!("{scheme}:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_control_characters_are_dropped() {
        let rows = [
            ("Claude", "Claude"),
            ("Claude\u{202e}lanigirO", "ClaudelanigirO"),
            ("a\u{200b}b\u{200d}c\u{feff}d\u{2066}e\u{2069}", "abcde"),
            ("line\nbreak\r\ttab\u{1b}[31m", "linebreaktab[31m"),
            ("x\u{85}y\u{2028}z\u{2029}", "xyz"),
            ("tag\u{e0041}s\u{ad}", "tags"),
            ("  \u{200e} padded \u{200f} ", "padded"),
            ("Zoë 東京 👋🏽", "Zoë 東京 👋🏽"),
        ];
        for (raw, shown) in rows {
            assert_eq!(clean(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn names_are_cut_to_a_hundred_characters() {
        assert_eq!(clean(&"é".repeat(150)).chars().count(), MAX_CHARS);
    }

    fn client(id: &str, name: Option<&str>) -> ClientRecord {
        ClientRecord {
            client_id: id.into(),
            secret_hash: None,
            auth_method: "none".into(),
            client_name: name.map(str::to_owned),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            grant_types: vec!["authorization_code".into()],
            scope: None,
            issued_at: std::time::UNIX_EPOCH,
        }
    }

    #[test]
    fn metadata_document_clients_show_their_host_and_nameless_clients_their_id() {
        let doc = client("https://evil.example/client.json", Some("Claude\u{202e}"));
        assert_eq!(display_name(&doc), "Claude (evil.example)");
        assert_eq!(display_name(&client("mcp_client_x", Some("App"))), "App");
        assert_eq!(display_name(&client("mcp_client_x", None)), "mcp_client_x");
        assert_eq!(display_name(&client("mcp_client_x", Some("\u{202e}\u{200b}"))), "mcp_client_x");
    }

    #[test]
    fn only_https_redirects_show_a_bare_host() {
        let rows = [
            ("https://claude.ai/api/mcp/auth_callback", "claude.ai"),
            ("com.evil://claude.ai/cb", "com.evil://claude.ai"),
            ("cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp"),
            ("http://127.0.0.1:3000/cb", "http://127.0.0.1"),
            ("com.example.app:/oauth", "com.example.app:"),
            ("not a url", ""),
        ];
        for (uri, shown) in rows {
            assert_eq!(redirect_target(uri), shown, "{uri}");
        }
    }
}
