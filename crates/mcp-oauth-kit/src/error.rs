//! Errors, one enum per layer. [`OAuthError`] carries the RFC 6749 §5.2 / RFC 7591 §3.2.2 /
//! RFC 8707 error codes and renders as their JSON body; [`Error`] is what start-up returns.
//!
//! Invariant: an internal cause is logged where it happens and turned into `server_error`, or
//! for a store failure into `temporarily_unavailable`; its text never reaches the wire.

use std::borrow::Cow;

use http::StatusCode;

/// The error codes of the OAuth specifications we implement, each with its wire string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum OAuthErrorCode {
    /// RFC 6749 §5.2: a parameter is missing, repeated, or malformed.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (unknown client, bad secret).
    InvalidClient,
    /// RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked, or was issued to
    /// another client; or the PKCE verifier does not match.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope is unknown or exceeds what was granted.
    InvalidScope,
    /// RFC 8707 §2: the `resource` is not one this server serves.
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: the user (or the server) denied the request.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the `response_type` is not supported.
    UnsupportedResponseType,
    /// RFC 7591 §3.2.2: a redirect URI is not acceptable.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: some other client metadata is not acceptable.
    InvalidClientMetadata,
    /// RFC 7009 §2.2.1: the token type hint names a type we cannot revoke.
    UnsupportedTokenType,
    /// Too many requests; the response carries `Retry-After`.
    SlowDown,
    /// RFC 6749 §4.1.2.1: an internal error; the details are in the server log only.
    ServerError,
    /// RFC 6749 §4.1.2.1: temporarily overloaded or under maintenance.
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    /// The wire string, e.g. `invalid_grant`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::SlowDown => "slow_down",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status that goes with the code at the token, registration and revocation
    /// endpoints (RFC 6749 §5.2: 400, or 401 for a failed client authentication).
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidRequest
            | Self::InvalidGrant
            | Self::UnauthorizedClient
            | Self::UnsupportedGrantType
            | Self::InvalidScope
            | Self::InvalidTarget
            | Self::AccessDenied
            | Self::UnsupportedResponseType
            | Self::InvalidRedirectUri
            | Self::InvalidClientMetadata
            | Self::UnsupportedTokenType => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth error: a code from the RFC's list and a human-readable description that is safe
/// to send (it never contains a secret or an internal cause).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub(crate) struct OAuthError {
    /// The RFC error code.
    pub(crate) code: OAuthErrorCode,
    /// What went wrong, for the developer of the client.
    pub(crate) description: Cow<'static, str>,
}

impl OAuthError {
    /// An error with the given code and description.
    pub(crate) fn new(code: OAuthErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self { code, description: description.into() }
    }

    /// `invalid_request`.
    pub(crate) fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub(crate) fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, description)
    }

    /// `invalid_client`.
    pub(crate) fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, description)
    }

    /// `server_error`, after logging the internal cause (which is not sent).
    pub(crate) fn server_error(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error while serving an OAuth request");
        Self::new(OAuthErrorCode::ServerError, "internal server error")
    }

    /// The RFC 6749 §5.2 JSON body.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

impl From<StoreError> for OAuthError {
    /// `temporarily_unavailable` (503 with `Retry-After`), after logging the cause (which is
    /// not sent). A store fails when its database is down, restarting or out of connections,
    /// which passes: the client should retry, not give up on its client id or tokens.
    fn from(e: StoreError) -> Self {
        tracing::error!(cause = %e, "the store failed while serving an OAuth request");
        Self::new(OAuthErrorCode::TemporarilyUnavailable, "the server's storage is unavailable; try again shortly")
    }
}

/// A storage backend failed. Expected outcomes (a missing or already used code, say) are not
/// errors but values of the store's return types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend (database, network) failed.
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A [`UserStore`](crate::UserStore) backend failed (not: the password was wrong).
///
/// `?` converts the errors a user database returns: `sqlx::Error` (with the `sqlite` or
/// `postgres` feature), [`std::io::Error`], and any boxed error; [`UserStoreError::backend`] wraps any other error or message.
///
/// ```
/// use mcp_oauth_kit::users::UserStoreError;
/// fn read_users_file(path: &str) -> Result<String, UserStoreError> {
///     Ok(std::fs::read_to_string(path)?)
/// }
/// let err = read_users_file("/nonexistent/users.toml").unwrap_err();
/// assert!(err.to_string().starts_with("user store backend error: "));
/// ```
///
/// # Security
/// The message is the backend's. The kit logs it and never sends it; the login page shows a
/// generic error. Passwords never reach it: the kit passes them only to argon2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserStoreError {
    /// The user database failed.
    #[error("user store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored password hash could not be parsed.
    #[error("invalid password hash for user {0:?}")]
    InvalidHash(String),
}

impl UserStoreError {
    /// A backend failure from any error or message.
    ///
    /// ```
    /// use mcp_oauth_kit::users::UserStoreError;
    /// let err = UserStoreError::backend("the directory server timed out");
    /// assert_eq!(err.to_string(), "user store backend error: the directory server timed out");
    /// ```
    pub fn backend(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Backend(cause.into())
    }
}

impl From<std::io::Error> for UserStoreError {
    fn from(e: std::io::Error) -> Self {
        Self::backend(e)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
impl From<sqlx::Error> for UserStoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::backend(e)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for UserStoreError {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::Backend(e)
    }
}

/// A configuration value is missing or malformed. The message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {setting}: {reason}")]
pub struct ConfigError {
    /// The setting, e.g. the environment variable `PUBLIC_URL`.
    pub setting: String,
    /// What is wrong with it and what is expected.
    pub reason: String,
}

impl ConfigError {
    /// An error about `setting`.
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { setting: setting.into(), reason: reason.into() }
    }
}

/// What building or running the server can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding or accepting on the socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The user store failed.
    #[error(transparent)]
    UserStore(#[from] UserStoreError),
    /// The command line asks for something the server does not do; the message says what,
    /// and the usage ([`cli::Command`](crate::cli::Command)).
    #[error("{0}")]
    Usage(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_render_as_rfc_strings_and_statuses() {
        let cases = [
            (OAuthErrorCode::InvalidRequest, "invalid_request", 400),
            (OAuthErrorCode::InvalidClient, "invalid_client", 401),
            (OAuthErrorCode::InvalidGrant, "invalid_grant", 400),
            (OAuthErrorCode::UnsupportedGrantType, "unsupported_grant_type", 400),
            (OAuthErrorCode::InvalidScope, "invalid_scope", 400),
            (OAuthErrorCode::InvalidTarget, "invalid_target", 400),
            (OAuthErrorCode::InvalidRedirectUri, "invalid_redirect_uri", 400),
            (OAuthErrorCode::SlowDown, "slow_down", 429),
            (OAuthErrorCode::ServerError, "server_error", 500),
        ];
        for (code, s, status) in cases {
            assert_eq!(code.as_str(), s);
            assert_eq!(code.status().as_u16(), status);
        }
        let body = OAuthError::invalid_grant("code already used").to_json();
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "code already used");
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn sqlx_errors_convert_with_the_question_mark() {
        fn sql() -> Result<(), UserStoreError> {
            Err(sqlx::Error::PoolTimedOut)?
        }
        let err = sql().expect_err("an error");
        assert_eq!(err.to_string(), "user store backend error: pool timed out while waiting for an open connection");
    }

    #[test]
    fn user_store_errors_convert_with_the_question_mark() {
        fn io() -> Result<(), UserStoreError> {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "users.db: timed out"))?
        }
        fn boxed() -> Result<(), UserStoreError> {
            Err(Box::<dyn std::error::Error + Send + Sync>::from("directory down"))?
        }
        let cases = [
            (io().expect_err("an error"), "user store backend error: users.db: timed out"),
            (boxed().expect_err("an error"), "user store backend error: directory down"),
            (UserStoreError::backend("a message"), "user store backend error: a message"),
        ];
        for (err, shown) in cases {
            assert!(matches!(err, UserStoreError::Backend(_)), "{err:?}");
            assert_eq!(err.to_string(), shown);
        }
        let source = std::error::Error::source(&io().expect_err("an error")).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("users.db: timed out"), "the cause stays reachable");
    }
}
