//! The messages of the built-in authorization server's roles: what the OAuth endpoints parse
//! from a request and hand to [`OAuthServer`](crate::auth::OAuthServer), and what it answers. Internal: users configure
//! the authorization server, they do not call it.

use crate::error::OAuthError;
use crate::secret::Redacted;

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 8707), as
/// received: validation is `OAuthServer::start_authorization`'s job.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct AuthorizationRequest {
    /// Must be `code`.
    pub(crate) response_type: Option<String>,
    /// The registered client.
    pub(crate) client_id: Option<String>,
    /// One of the client's registered redirect URIs.
    pub(crate) redirect_uri: Option<String>,
    /// Opaque client state, returned unchanged.
    pub(crate) state: Option<String>,
    /// PKCE challenge (required).
    pub(crate) code_challenge: Option<String>,
    /// PKCE method: must be `S256`.
    pub(crate) code_challenge_method: Option<String>,
    /// Space-separated scopes; empty or absent means the default scopes.
    pub(crate) scope: Option<String>,
    /// The protected resource the token is for (RFC 8707).
    pub(crate) resource: Option<String>,
}

/// A failed authorization request, and where its error goes (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthorizeError {
    /// The client or redirect URI could not be validated: show an error page, never redirect.
    Page(OAuthError),
    /// The client and redirect URI are valid, so the error may go back to the client; the
    /// endpoint does that only for a browser with a live sign-in session, and shows a page
    /// otherwise, so that an unauthenticated request cannot use this server as an open
    /// redirector (RFC 9700 §4.11.2).
    Redirect {
        /// The client's name as the pages show it.
        client_name: String,
        /// What went wrong.
        error: OAuthError,
        /// The client's redirect URI carrying the error (`error`, `state`, `iss`).
        location: String,
    },
}

/// What the login page shows and checks for a pending authorization. Its `Debug` redacts the
/// CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct LoginContext {
    /// The client's registered name (or its id when it gave none).
    pub(crate) client_name: String,
    /// The host the user will be sent back to.
    pub(crate) redirect_host: String,
    /// The scopes being requested.
    pub(crate) scopes: Vec<String>,
    /// The pending request's own token, which the login page hands back to
    /// `OAuthServer::complete_authorization` and `OAuthServer::deny_authorization`. The
    /// form itself carries a token derived from a per-browser cookie instead, so that a page
    /// read in one browser is worthless in another.
    pub(crate) csrf_token: String,
    /// Whether the page may offer to remember the user's decision ("Remember this decision
    /// for …"): remembered consent is on, and the client's identity is assured for this
    /// request, so that a later request can be approved without asking (see
    /// `OAuthServer::remembered_consent`).
    pub(crate) can_remember: bool,
    /// The upstream provider the page offers ("Continue with …"), if any.
    pub(crate) upstream: Option<String>,
    /// Whether the page asks for a username and password.
    pub(crate) passwords: bool,
}

impl std::fmt::Debug for LoginContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginContext")
            .field("client_name", &self.client_name)
            .field("redirect_host", &self.redirect_host)
            .field("scopes", &self.scopes)
            .field("csrf_token", &Redacted)
            .field("can_remember", &self.can_remember)
            .finish()
    }
}

impl LoginContext {
    /// A context that does not offer to remember the decision.
    #[cfg(test)]
    pub(crate) fn new(
        client_name: impl Into<String>,
        redirect_host: impl Into<String>,
        scopes: Vec<String>,
        csrf_token: impl Into<String>,
    ) -> Self {
        Self {
            client_name: client_name.into(),
            redirect_host: redirect_host.into(),
            scopes,
            csrf_token: csrf_token.into(),
            can_remember: false,
            upstream: None,
            passwords: true,
        }
    }
}

/// How a client authenticated at the token or revocation endpoint. Its `Debug` redacts the
/// secret.
#[derive(Clone, Default)]
pub(crate) struct ClientCredentials {
    /// `client_id` from the form or the Basic header.
    pub(crate) client_id: Option<String>,
    /// `client_secret` from the form or the Basic header.
    pub(crate) client_secret: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| Redacted))
            .finish()
    }
}

impl ClientCredentials {
    /// Credentials with the given id and optional secret.
    pub(crate) fn new(client_id: Option<String>, client_secret: Option<String>) -> Self {
        Self { client_id, client_secret }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TokenResponse {
    /// The access token.
    pub(crate) access_token: String,
    /// Always `Bearer`.
    pub(crate) token_type: String,
    /// Seconds until the access token expires.
    pub(crate) expires_in: u64,
    /// The refresh token (rotated on every use).
    pub(crate) refresh_token: String,
    /// The granted scopes, space-separated.
    pub(crate) scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A client registration request (RFC 7591 §2), as received: the fields the kit uses (others,
/// such as `client_uri`, are ignored).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct ClientMetadata {
    /// Redirect URIs (required).
    #[serde(default)]
    pub(crate) redirect_uris: Option<Vec<String>>,
    /// `none`, `client_secret_post` or `client_secret_basic`.
    #[serde(default)]
    pub(crate) token_endpoint_auth_method: Option<String>,
    /// Grant types; default `authorization_code`.
    #[serde(default)]
    pub(crate) grant_types: Option<Vec<String>>,
    /// Response types; default `code`.
    #[serde(default)]
    pub(crate) response_types: Option<Vec<String>>,
    /// Human-readable name.
    #[serde(default)]
    pub(crate) client_name: Option<String>,
    /// Space-separated scopes.
    #[serde(default)]
    pub(crate) scope: Option<String>,
}

/// A registered client, as returned to the registrant (RFC 7591 §3.2.1). Its `Debug` redacts
/// the secret.
#[derive(Clone)]
pub(crate) struct RegisteredClient {
    /// The stored record.
    pub(crate) record: crate::store::ClientRecord,
    /// The client secret, shown once (confidential clients only).
    pub(crate) client_secret: Option<String>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("record", &self.record)
            .field("client_secret", &self.client_secret.as_ref().map(|_| Redacted))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_client_secrets() {
        let credentials = ClientCredentials::new(Some("client-1".into()), Some("mcp_cs_secret-7d3b".into()));
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("secret-7d3b") && shown.contains("client-1"), "{shown}");
        assert!(shown.contains("client_secret: Some([redacted])"), "{shown}");

        let record = crate::store::ClientRecord {
            client_id: "client-1".into(),
            secret_hash: Some(crate::secret::TokenHash::of("mcp_cs_secret-7d3b")),
            auth_method: "client_secret_basic".into(),
            client_name: Some("App".into()),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            grant_types: vec!["authorization_code".into()],
            scope: None,
            issued_at: std::time::UNIX_EPOCH,
        };
        let registered = RegisteredClient { record, client_secret: Some("mcp_cs_secret-7d3b".into()) };
        let shown = format!("{registered:?}");
        assert!(!shown.contains("secret-7d3b") && shown.contains("client-1"), "{shown}");
        assert!(shown.contains("client_secret: Some([redacted])"), "{shown}");
        let public = ClientCredentials::new(Some("client-2".into()), None);
        assert!(format!("{public:?}").contains("client_secret: None"));
    }
}
