//! Secrets: generation from the OS RNG, SHA-256 digests for storage, constant-time comparison,
//! and redacted wrappers so that a secret never reaches a log through `Debug`.
//!
//! Invariant: tokens, codes, client secrets and CSRF tokens are created here and nowhere else.
//! The stores only ever see the [`TokenHash`] of tokens, codes, client secrets and sign-in
//! request handles; the short-lived CSRF token of a pending sign-in is kept as it is (it is
//! useless without the browser's cookie and the request handle).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A password typed into the login form. Its `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wrap a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, for hashing or verification. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// The SHA-256 digest of a token, code or secret: what the stores keep instead of the secret.
///
/// A lookup by digest is safe against timing attacks: the attacker controls the input of the
/// hash, not the bytes that the map compares.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Digest a secret string.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// The digest as lowercase hex, for storage in text columns.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Constant-time equality, for digests that are compared rather than looked up.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines, and says nothing useful about the secret.
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// A freshly generated secret (access token, refresh token, code, client secret, CSRF token).
/// Its `Debug` prints `[redacted]`; [`NewSecret::expose`] is the only way to read it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct NewSecret(String);

impl NewSecret {
    /// 256 bits from the operating system's RNG, base64url, behind a readable prefix such as
    /// `mcp_at_` (prefixes let secret scanners recognise a leaked token).
    pub(crate) fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        // The OS RNG failing is not a condition we can serve through: no secret is better than
        // a predictable one.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        Self(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Stands in for a secret in a hand-written `Debug`: prints `[redacted]`.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Constant-time comparison of two strings (CSRF tokens, PKCE challenges).
pub(crate) fn ct_eq_str(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A token derived from `secret` for one `purpose` (for example the sign-out form's token,
/// derived from the session secret): unguessable without the secret, useless for anything
/// else, and unrelated to the [`TokenHash`] the store keeps of the secret.
pub(crate) fn derived_token(purpose: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"mcp-oauth-kit/");
    h.update(purpose.as_bytes());
    h.update(b"/v1\0");
    h.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// The PKCE S256 transformation (RFC 7636 §4.2): `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub(crate) fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_unique_prefixed_and_redacted() {
        let a = NewSecret::generate("mcp_at_");
        let b = NewSecret::generate("mcp_at_");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("mcp_at_"));
        assert_eq!(a.expose().len(), "mcp_at_".len() + 43);
        assert_eq!(format!("{a:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password([redacted])");
    }

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn derived_tokens_depend_on_purpose_and_secret() {
        let a = derived_token("logout", "mcp_ss_a");
        assert_eq!(a, derived_token("logout", "mcp_ss_a"));
        assert_ne!(a, derived_token("logout", "mcp_ss_b"));
        assert_ne!(a, derived_token("other", "mcp_ss_a"));
        assert_ne!(a, URL_SAFE_NO_PAD.encode(TokenHash::of("mcp_ss_a").0), "not the stored digest");
    }

    #[test]
    fn hashes_compare_by_value() {
        assert!(TokenHash::of("x").ct_eq(&TokenHash::of("x")));
        assert!(!TokenHash::of("x").ct_eq(&TokenHash::of("y")));
        assert!(ct_eq_str("abc", "abc"));
        assert!(!ct_eq_str("abc", "abd"));
        assert!(!ct_eq_str("abc", "ab"));
    }
}
