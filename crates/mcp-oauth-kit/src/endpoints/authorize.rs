//! `GET /authorize`: the authorization endpoint (RFC 6749 §4.1.1 with PKCE and RFC 8707).
//! A valid request is remembered and the browser goes to the login page. Errors are shown on
//! this server's own page, naming the client; none is redirected, since no user has
//! authenticated here yet and anyone can register a client with any redirect URI (RFC 9700
//! §4.11.2: no open redirector). A browser with a live sign-in session is offered a link
//! back to the client with the error (§4.1.2.1).

use http::{HeaderMap, StatusCode};

use crate::authorization_server::OAuthServer;
use crate::config::Config;
use crate::endpoints::pages::{client_error_page, error_page};
use crate::endpoints::session_cookie::has_live_session;
use crate::http_util::{Form, HttpResponse, redirect};
use crate::oauth_messages::{AuthorizationRequest, AuthorizeError};
use crate::user_store::UserStore;

/// Handle the query string of `GET /authorize`.
pub(crate) async fn authorize(
    provider: &OAuthServer,
    users: &dyn UserStore,
    config: &Config,
    headers: &HeaderMap,
    query: &str,
) -> HttpResponse {
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
        Err(AuthorizeError::Redirect { client_name, error, location }) => {
            let signed_in = has_live_session(provider, users, config, headers).await;
            client_error_page(server_name, &client_name, &error, signed_in.then_some(location.as_str()))
        }
        Err(AuthorizeError::Page(e)) => error_page(StatusCode::BAD_REQUEST, server_name, &e),
    }
}
