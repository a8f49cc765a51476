//! Token verification at the MCP endpoint: the [`AuthProvider`] trait, the verified caller
//! ([`AccessToken`], its [`TokenClaims`] and [`AccessTokenBuilder`]), and [`OAuthServer`], the
//! kit's own authorization server.
//!
//! Most servers never open this module: with a [`UserStore`](crate::UserStore) the kit is its
//! own authorization server, and tools receive the caller as an [`AccessToken`] (also at the
//! crate root). Reach for it to accept tokens issued elsewhere (an external identity
//! provider's JWTs, an RFC 7662 introspection endpoint): `JwtVerifier` and
//! `IntrospectionVerifier` (features `jwt` and `introspection`, on by default) are ready-made
//! [`AuthProvider`]s; for anything else implement the trait (its page has a complete example)
//! and build each verified caller with [`AccessToken::builder`]:
//!
//! ```
//! use std::time::{Duration, SystemTime};
//!
//! use mcp_oauth_kit::auth::AccessToken;
//!
//! let caller = AccessToken::builder("u-1", SystemTime::now() + Duration::from_secs(3600))
//!     .username("carol")
//!     .scopes(["mcp"])
//!     .build();
//! assert_eq!(caller.username, "carol");
//! ```
//!
//! [`McpServer::authorization_server`](crate::McpServer::authorization_server) hands out the [`OAuthServer`],
//! for example to revoke a user's tokens with [`OAuthServer::revoke_user`].

pub use crate::authorization_server::OAuthServer;
pub use crate::provider::{AccessToken, AccessTokenBuilder, AuthProvider, TokenClaims, TokenRejection};
pub use crate::upstream_tokens::{
    KeepUpstreamError, UpstreamAccessToken, UpstreamClient, UpstreamTokenKey, UpstreamTokens,
};
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use crate::verifiers::introspection::{
    IntrospectionVerifier, IntrospectionVerifierBuilder, IntrospectionVerifierError,
};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use crate::verifiers::jwt::{JwtAlgorithm, JwtVerifier, JwtVerifierBuilder, JwtVerifierError};
