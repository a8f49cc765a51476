//! RFC 7662 token introspection by the built-in authorization server: the rule and its policy.
//! The HTTP endpoint is `endpoints/introspect.rs`.
//!
//! Policy (RFC 7662 §4 leaves it to the server):
//! - only confidential clients may ask: a public client has no secret, so anyone could ask in
//!   its name;
//! - a client learns only about access tokens issued to itself. With open dynamic
//!   registration anyone can become a confidential client, and an endpoint that described
//!   every client's tokens would let such a client test stolen or guessed tokens and read whose
//!   they are;
//! - only access tokens are described. A refresh token is for the client that holds it and the
//!   token endpoint; none of its callers needs its description, so it never reads as active;
//! - an inactive answer is always exactly `{"active":false}`: unknown, expired, revoked,
//!   malformed, a refresh token, or another client's token look alike (§2.2).

use serde_json::{Value, json};

use crate::authorization_server::OAuthServer;
use crate::error::OAuthError;
use crate::oauth_messages::ClientCredentials;
use crate::provider::{AuthProvider as _, TokenRejection};

/// The answer for a token that is not active, whatever the reason (RFC 7662 §2.2).
pub(crate) fn inactive() -> Value {
    json!({ "active": false })
}

impl OAuthServer {
    /// RFC 7662 §2: describe `token` to the authenticated confidential client of `creds`.
    ///
    /// The store is asked directly, not the guard's cache, so a revocation shows at once.
    ///
    /// # Errors
    /// `invalid_client` when the client does not authenticate with a secret;
    /// `temporarily_unavailable` when the store fails.
    pub(crate) async fn introspect(&self, creds: &ClientCredentials, token: &str) -> Result<Value, OAuthError> {
        if creds.client_id.is_none() || creds.client_secret.is_none() {
            return Err(OAuthError::invalid_client("introspection needs a confidential client's credentials"));
        }
        let client = self.authenticate_client(creds).await?;
        if client.secret_hash.is_none() {
            return Err(OAuthError::invalid_client("introspection needs a confidential client's credentials"));
        }
        let caller = match self.verify(token).await {
            Ok(caller) => caller,
            Err(TokenRejection::Backend(e)) => return Err(e.into()),
            Err(_) => return Ok(inactive()),
        };
        if caller.client_id != client.client_id {
            return Ok(inactive());
        }
        let exp = caller.expires_at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        // `iat` is left out (it is optional): the store keeps when a token expires, not when it
        // was issued.
        Ok(json!({
            "active": true,
            "scope": caller.scopes.join(" "),
            "client_id": caller.client_id,
            "username": caller.username,
            "sub": caller.subject,
            "aud": caller.audience,
            "iss": self.authorization_servers().first(),
            "exp": exp,
            "token_type": "Bearer",
        }))
    }
}
