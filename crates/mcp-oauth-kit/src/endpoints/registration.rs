//! `POST /register`: RFC 7591 dynamic client registration.

use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::authorization_server::OAuthServer;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http_util::{HttpResponse, has_content_type, json, oauth_error};
use crate::json_depth::{MAX_JSON_DEPTH, within_depth};
use crate::oauth_messages::ClientMetadata;

/// Register a client from a JSON body already read within the size limit.
pub(crate) async fn register(provider: &OAuthServer, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
    if !has_content_type(headers, "application/json") {
        return oauth_error(&OAuthError::invalid_request("the body must be application/json"));
    }
    let metadata = match parse_metadata(body) {
        Ok(m) => m,
        Err(e) => return oauth_error(&e),
    };
    match provider.register_client(metadata).await {
        Ok(client) => {
            let r = &client.record;
            let mut body = json!({
                "client_id": r.client_id,
                "client_id_issued_at": r.issued_at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs(),
                "redirect_uris": r.redirect_uris,
                "grant_types": r.grant_types,
                "response_types": ["code"],
                "token_endpoint_auth_method": r.auth_method,
            });
            if let Some(secret) = &client.client_secret {
                body["client_secret"] = json!(secret);
                body["client_secret_expires_at"] = json!(0);
            }
            if let Some(name) = &r.client_name {
                body["client_name"] = json!(name);
            }
            if let Some(scope) = &r.scope {
                body["scope"] = json!(scope);
            }
            json(StatusCode::CREATED, &body)
        }
        Err(e) => oauth_error(&e),
    }
}

/// The registration metadata in a JSON body: nesting bounded first (see [`crate::json_depth`]),
/// then the fields the kit knows.
pub(crate) fn parse_metadata(body: &[u8]) -> Result<ClientMetadata, OAuthError> {
    if !within_depth(body, MAX_JSON_DEPTH) {
        let description = format!("the client metadata nests arrays or objects deeper than {MAX_JSON_DEPTH} levels");
        return Err(OAuthError::new(OAuthErrorCode::InvalidClientMetadata, description));
    }
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names the field and position, never our internals.
        let description = format!("the client metadata is not valid JSON of the expected shape: {e}");
        OAuthError::new(OAuthErrorCode::InvalidClientMetadata, description)
    })
}
