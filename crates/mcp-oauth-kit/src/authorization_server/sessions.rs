//! Sign-in sessions: after a sign-in (a password, or at the upstream provider), the browser
//! keeps a secret whose digest the store keeps, so that the next authorization asks for
//! consent only.

use super::OAuthServer;
use crate::clock::later;
use crate::error::OAuthError;
use crate::secret::{NewSecret, TokenHash};
use crate::store::SessionRecord;
use crate::user_store::User;

/// Session secrets are `mcp_ss_` and 43 base64url characters; anything else is not looked up.
fn is_session_secret(secret: &str) -> bool {
    secret.starts_with("mcp_ss_") && secret.len() <= 64
}

impl OAuthServer {
    /// Start a sign-in session for `user`, who has just signed in with their password on the
    /// login page or at the upstream provider (every check of its answer passed): returns the secret the browser keeps in its session cookie, or `None` when
    /// sign-in sessions are off ([`Config::session_ttl`](crate::Config::session_ttl) zero).
    ///
    /// # Errors
    /// When the store fails.
    ///
    /// # Security
    /// The secret is a credential: the store keeps only its digest.
    pub(crate) async fn start_session(&self, user: &User) -> Result<Option<String>, OAuthError> {
        if self.config.session_ttl.is_zero() {
            return Ok(None);
        }
        let secret = NewSecret::generate("mcp_ss_");
        let now = self.now();
        let mut session = SessionRecord::new(
            secret.hash(),
            user.id.clone(),
            user.username.clone(),
            now,
            later(now, self.config.session_ttl),
        );
        // No user store knows an upstream user: the session carries what their sign-in said. A
        // store's user gets their claims from the store again.
        if self.is_upstream_subject(&user.id) {
            session = session.with_claims(user.claims.clone());
        }
        self.store.insert_session(session).await?;
        Ok(Some(secret.into_string()))
    }

    /// The user of the session that the cookie's `secret` names, while the session lasts;
    /// `None` for an unknown, ended or expired session, and when sessions are off.
    ///
    /// # Errors
    /// When the store fails.
    pub(crate) async fn session_user(&self, secret: &str) -> Result<Option<User>, OAuthError> {
        if self.config.session_ttl.is_zero() || !is_session_secret(secret) {
            return Ok(None);
        }
        let session = self.store.session(&TokenHash::of(secret), self.now()).await?;
        Ok(session.map(|s| {
            let mut user = User::new(s.subject, s.username);
            user.claims = s.claims;
            user
        }))
    }

    /// End the session that `secret` names (sign-out). Ending an unknown session is no error.
    ///
    /// # Errors
    /// When the store fails.
    pub(crate) async fn end_session(&self, secret: &str) -> Result<(), OAuthError> {
        if is_session_secret(secret) {
            self.store.delete_session(&TokenHash::of(secret)).await?;
        }
        Ok(())
    }
}
