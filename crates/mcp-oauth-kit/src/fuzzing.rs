//! Entry points for the fuzz targets in the repository's `fuzz/` folder (feature `fuzzing`).
//! Each feeds untrusted bytes to one parser of the kit; none may panic, whatever the input.
//! Not part of the public API.

use http::{HeaderMap, HeaderValue};

use crate::http_util::Form;
use crate::redirect_uri::{RedirectUri, redirect_matches};

/// Form bodies and query strings (`/token`, `/revoke`, `/login`, `/authorize`).
pub fn form(data: &[u8]) {
    if let Ok(form) = Form::parse(data) {
        let _ = (form.get("grant_type"), form.get_raw("scope"));
    }
}

/// The `Authorization` header: bearer tokens at `/mcp`, Basic client credentials at `/token`.
pub fn authorization_header(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    let _ = crate::guard::bearer_token(&headers);
    let _ = crate::endpoints::token::client_credentials(&headers, &Form::default());
}

/// Redirect URIs at registration, and matching a requested one against a registered one.
pub fn redirect_uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (registered, requested) =
        text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    let _ = RedirectUri::parse(registered);
    let _ = RedirectUri::parse(text);
    let _ = redirect_matches(registered, requested);
}

/// JSON bodies of `/register`.
pub fn client_metadata(data: &[u8]) {
    let _ = crate::endpoints::registration::parse_metadata(data);
}

/// Client ID Metadata Documents, as fetched.
#[cfg(feature = "cimd")]
pub fn cimd_document(data: &[u8]) {
    // Building a resolver is free: its HTTP client is made on the first fetch, never here.
    let _ = crate::cimd::CimdResolver::new(false).validate_document("https://app.example.com/client.json", data);
}
