//! The verification role: one of this server's access tokens checked against the store, as
//! the [`AuthProvider`] the MCP endpoint asks. The guard's
//! [`VerifiedCache`](crate::verified_cache::VerifiedCache) sits in front of it, and every
//! revocation clears that cache.

use async_trait::async_trait;

use super::OAuthServer;
use crate::provider::{AccessToken, AuthProvider, TokenRejection};
use crate::secret::TokenHash;

/// Whether `token` can be one of ours (`mcp_at_` and 43 characters; 128 bounds the hashing):
/// nothing else is hashed or looked up.
fn looks_like_access_token(token: &str) -> bool {
    token.starts_with("mcp_at_") && token.len() <= 128
}

#[async_trait]
impl AuthProvider for OAuthServer {
    async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        self.verify(token).await
    }

    fn authorization_servers(&self) -> Vec<String> {
        vec![self.config.issuer()]
    }
}

impl OAuthServer {
    /// Verify one of this server's access tokens against the store. The guard's cache sits in
    /// front of this, and every revocation clears it.
    pub(crate) async fn verify(&self, token: &str) -> Result<AccessToken, TokenRejection> {
        if !looks_like_access_token(token) {
            return Err(TokenRejection::Invalid);
        }
        let record = self.store.access_token(&TokenHash::of(token), self.now()).await?;
        let record = record.ok_or(TokenRejection::Invalid)?;
        if record.grant.resource != self.config.resource() {
            return Err(TokenRejection::WrongAudience);
        }
        let g = record.grant;
        let upstream = self.vault.as_ref().map(|vault| vault.link(&g.grant_id));
        let token = AccessToken::builder(g.subject, record.expires_at)
            .username(g.username)
            .client_id(g.client_id)
            .scopes(g.scopes)
            .audience(g.resource)
            .claims(g.claims)
            .grant_id(g.grant_id)
            .build();
        Ok(match upstream {
            Some(link) => token.with_upstream(link),
            None => token,
        })
    }
}
