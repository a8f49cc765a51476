//! Verifiers of access tokens minted by another authorization server, for a server in
//! resource-server mode: [`JwtVerifier`](crate::auth::JwtVerifier) checks JWTs against the
//! issuer's keys, [`IntrospectionVerifier`](crate::auth::IntrospectionVerifier) asks the
//! issuer (RFC 7662). Both build the caller by the same rules (`token_claims.rs`) and reach
//! the issuer through the same guarded HTTP client (`upstream_http.rs`). The kit's own
//! authorization server does not pass through here.

#[cfg(feature = "introspection")]
pub(crate) mod introspection;
#[cfg(feature = "jwt")]
pub(crate) mod jwks;
#[cfg(feature = "jwt")]
pub(crate) mod jwt;
mod token_claims;
pub(crate) mod upstream_http;
