//! `GET /authorize`: the authorization endpoint (RFC 6749 §4.1.1 with PKCE and RFC 8707).
//! A valid request is remembered and the browser goes to the login page; errors go back to
//! the client only once its redirect URI has been validated (§4.1.2.1).

use http::StatusCode;

use crate::config::Config;
use crate::error::OAuthError;
use crate::http_util::{Form, HttpResponse, redirect};
use crate::login::error_page;
use crate::provider::{AuthProvider, AuthorizationRequest, AuthorizeError};

/// Handle the query string of `GET /authorize`.
pub(crate) async fn authorize(provider: &dyn AuthProvider, config: &Config, query: &str) -> HttpResponse {
    let server_name = config.server_name.as_str();
    let form = match Form::parse(query.as_bytes()) {
        Ok(f) => f,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, server_name, &e),
    };
    let get = |k: &str| form.get(k).map(str::to_owned);
    let request = AuthorizationRequest {
        response_type: get("response_type"),
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        state: get("state"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        // `scope=` (empty) is what some clients send for "the default".
        scope: form.get_raw("scope").map(str::to_owned),
        resource: get("resource"),
    };
    match provider.start_authorization(request).await {
        // Absolute, from the public URL: behind a proxy the request's Host is not ours to trust.
        Ok(handle) => redirect(&config.url(&format!("/login?request={handle}"))),
        Err(AuthorizeError::Redirect(location)) => redirect(&location),
        Err(AuthorizeError::Page(e)) => error_page(StatusCode::BAD_REQUEST, server_name, &e),
        #[allow(unreachable_patterns)]
        Err(_) => error_page(StatusCode::BAD_REQUEST, server_name, &OAuthError::invalid_request("invalid request")),
    }
}
