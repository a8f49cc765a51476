//! `POST /introspect` (RFC 7662 §2): a confidential client, authenticated by
//! `client_secret_basic` or `client_secret_post`, asks whether one of its access tokens is
//! active. The policy is in `authorization_server/introspection.rs`.

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::authorization_server::OAuthServer;
use crate::endpoints::token::client_request;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http_util::{HttpResponse, json, oauth_error};

/// `POST /introspect` with the body already read within the size limit.
pub(crate) async fn introspect(provider: &OAuthServer, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
    let (form, creds, _) = match client_request(headers, body) {
        Ok(request) => request,
        Err(response) => return challenge(*response),
    };
    // `token_type_hint` is only a hint (§2.1): the answer does not depend on it.
    let Some(token) = form.get("token") else {
        return oauth_error(&OAuthError::invalid_request("token is required"));
    };
    match provider.introspect(&creds, token).await {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(e) => {
            if e.code == OAuthErrorCode::InvalidClient {
                tracing::info!("introspection refused: client authentication failed");
            }
            challenge(oauth_error(&e))
        }
    }
}

/// RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
fn challenge(mut res: HttpResponse) -> HttpResponse {
    if res.status() == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"introspect\""));
    }
    res
}
