//! `POST /token` (RFC 6749 §3.2: `authorization_code` with PKCE, `refresh_token`) and
//! `POST /revoke` (RFC 7009). Both authenticate the client by `client_secret_basic`,
//! `client_secret_post`, or `client_id` alone for public clients.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::authorization_server::OAuthServer;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::escaped::Escaped;
use crate::http_util::{Form, HttpResponse, has_content_type, json, oauth_error, too_many_requests};
use crate::oauth_messages::ClientCredentials;
use crate::rate_limit::{Limits, Verdict};

/// Read the client's credentials from the Basic header or the form; both at once is an error
/// (RFC 6749 §2.3: "MUST NOT use more than one authentication method").
pub(crate) fn client_credentials(headers: &HeaderMap, form: &Form) -> Result<(ClientCredentials, bool), OAuthError> {
    let basic = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim().to_owned())
    });
    let Some(encoded) = basic else {
        let creds = ClientCredentials::new(
            form.get("client_id").map(str::to_owned),
            form.get("client_secret").map(str::to_owned),
        );
        return Ok((creds, false));
    };
    if form.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request("use one client authentication method, not two"));
    }
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let decoded = STANDARD.decode(encoded.as_bytes()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before going into the header.
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if form.get("client_id").is_some_and(|f| f != id) {
        return Err(OAuthError::invalid_request("client_id in the form differs from the Basic credentials"));
    }
    Ok((ClientCredentials::new(Some(id), (!secret.is_empty()).then_some(secret)), true))
}

fn error_response(e: &OAuthError, used_basic: bool) -> HttpResponse {
    let mut res = oauth_error(e);
    if used_basic && e.code == OAuthErrorCode::InvalidClient {
        // RFC 6749 §5.2: a 401 after Basic authentication carries the challenge.
        res.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"token\""));
    }
    res
}

/// A client's request to the token or revocation endpoint: its form and how it authenticated
/// (`true` for Basic). The `Err` is the finished error response (boxed: a response is large).
pub(crate) fn client_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Form, ClientCredentials, bool), Box<HttpResponse>> {
    if !has_content_type(headers, "application/x-www-form-urlencoded") {
        let e = OAuthError::invalid_request("the body must be application/x-www-form-urlencoded");
        return Err(Box::new(oauth_error(&e)));
    }
    let form = Form::parse(body).map_err(|e| Box::new(oauth_error(&e)))?;
    let (creds, used_basic) = client_credentials(headers, &form).map_err(|e| Box::new(error_response(&e, true)))?;
    Ok((form, creds, used_basic))
}

/// `POST /token` with the body already read within the size limit.
pub(crate) async fn token(provider: &OAuthServer, limits: &Limits, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
    let (form, creds, used_basic) = match client_request(headers, body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    // Counted per client as well as per address (the router's part), before any work.
    if let Some(client_id) = &creds.client_id {
        match limits.token_request_for_client(client_id).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Limited(retry)) => {
                tracing::warn!(client_id = %Escaped(client_id), "token endpoint rate limit reached for a client");
                return too_many_requests(retry);
            }
            Err(e) => return oauth_error(&e.into()),
        }
    }
    let result = match form.get("grant_type") {
        Some("authorization_code") => match form.get("code") {
            Some(code) => {
                provider
                    .exchange_code(
                        creds,
                        code,
                        form.get("redirect_uri"),
                        form.get("code_verifier"),
                        form.get("resource"),
                    )
                    .await
            }
            None => Err(OAuthError::invalid_request("code is required")),
        },
        Some("refresh_token") => match form.get("refresh_token") {
            Some(rt) => provider.refresh(creds, rt, form.get("scope"), form.get("resource")).await,
            None => Err(OAuthError::invalid_request("refresh_token is required")),
        },
        Some(_) => Err(OAuthError::new(OAuthErrorCode::UnsupportedGrantType, "grant_type is not supported")),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    };
    match result {
        Ok(tokens) => match serde_json::to_value(&tokens) {
            Ok(v) => json(StatusCode::OK, &v),
            Err(e) => oauth_error(&OAuthError::server_error(&e)),
        },
        Err(e) => {
            tracing::info!(error = e.code.as_str(), "token request refused");
            error_response(&e, used_basic)
        }
    }
}

/// `POST /revoke` (RFC 7009 §2): 200 whether or not the token existed.
pub(crate) async fn revoke(provider: &OAuthServer, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
    let (form, creds, used_basic) = match client_request(headers, body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(token) = form.get("token") else {
        return oauth_error(&OAuthError::invalid_request("token is required"));
    };
    if let Some(hint) = form.get("token_type_hint")
        && !matches!(hint, "access_token" | "refresh_token")
    {
        return oauth_error(&OAuthError::new(OAuthErrorCode::UnsupportedTokenType, "unknown token_type_hint"));
    }
    match provider.revoke(creds, token).await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({})),
        Err(e) => error_response(&e, used_basic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut h = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&value).expect("ascii"));
        let (creds, basic) = client_credentials(&h, &Form::default()).expect("valid");
        assert!(basic);
        assert_eq!(creds.client_id.as_deref(), Some("my client"));
        assert_eq!(creds.client_secret.as_deref(), Some("s:cret"));
    }

    #[test]
    fn two_methods_or_garbage_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!notbase64"));
        assert!(client_credentials(&h, &Form::default()).is_err());
        let value = format!("Basic {}", STANDARD.encode("c:s"));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&value).expect("ascii"));
        let form = Form::parse(b"client_secret=s").expect("valid");
        assert!(client_credentials(&h, &form).is_err());
    }
}
