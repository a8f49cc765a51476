//! The authorization server's HTTP endpoints, one file each: discovery metadata, registration,
//! authorization, the sign-in and consent page, and token issuance and revocation. Each parses
//! its request and renders its response; the protocol rules they call are
//! [`OAuthServer`](crate::auth::OAuthServer)'s, and only the router knows their paths.

pub(crate) mod authorize;
#[cfg(feature = "jwt")]
pub(crate) mod callback;
pub(crate) mod health;
pub(crate) mod introspect;
pub(crate) mod login;
pub(crate) mod metadata;
pub(crate) mod pages;
pub(crate) mod registration;
mod session_cookie;
pub(crate) mod token;
