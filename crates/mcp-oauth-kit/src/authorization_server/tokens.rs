//! The token role: client authentication, the `authorization_code` grant (PKCE, single-use
//! codes whose replay revokes the grant, RFC 8707 audience), the `refresh_token` grant
//! (rotation; reuse revokes the family except for a retry inside the grace window, whose
//! successor pair is sealed with the old token) and RFC 7009 revocation.

use std::time::SystemTime;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use super::{OAuthServer, is_pkce_string};
use crate::clock::later;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::escaped::Escaped;
use crate::metrics::{self, TokenEvent};
use crate::oauth_messages::{ClientCredentials, TokenResponse};
use crate::secret::{NewSecret, TokenHash, ct_eq_str, pkce_s256};
use crate::store::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, Grant, IssuedTokens, RefreshRotation,
    RefreshTokenRecord, RevokedToken,
};

impl OAuthServer {
    /// The claims of the user store's user `subject` as they are now (a changed email or role
    /// reaches the next token), or `None` when the user may no longer sign in.
    async fn current_claims(&self, subject: &str) -> Result<Option<crate::claims::Claims>, OAuthError> {
        let may = self.users.may_sign_in(subject).await.map_err(|e| OAuthError::server_error(&e))?;
        let user = match may {
            true => self.users.find_by_id(subject).await.map_err(|e| OAuthError::server_error(&e))?,
            false => None,
        };
        let Some(user) = user else {
            tracing::info!(subject = %Escaped(subject), "refresh refused: the user may no longer sign in");
            return Ok(None);
        };
        crate::claims::checked_size(&user.claims).map_err(|e| OAuthError::server_error(&e))?;
        Ok(Some(user.claims))
    }

    /// Authenticate a client at the token or revocation endpoint. Unknown client and wrong
    /// secret give the same answer.
    pub(crate) async fn authenticate_client(&self, creds: &ClientCredentials) -> Result<ClientRecord, OAuthError> {
        let failed = || OAuthError::invalid_client("client authentication failed");
        let Some(client_id) = creds.client_id.as_deref() else {
            return Err(OAuthError::invalid_request("client_id is required"));
        };
        let client = self.store.client(client_id).await?.ok_or_else(failed)?;
        match (&client.secret_hash, creds.client_secret.as_deref()) {
            (None, _) => Ok(client),
            (Some(expected), Some(given)) if expected.ct_eq(&TokenHash::of(given)) => Ok(client),
            _ => Err(failed()),
        }
    }

    fn issue(&self, grant: &Grant) -> (TokenResponse, IssuedTokens) {
        let now = self.now();
        let access = NewSecret::generate("mcp_at_");
        let refresh = NewSecret::generate("mcp_rt_");
        // No token outlives its grant.
        let access_expires_at = later(now, self.config.access_token_ttl).min(grant.expires_at);
        let records = IssuedTokens {
            access: AccessTokenRecord { hash: access.hash(), grant: grant.clone(), expires_at: access_expires_at },
            refresh: RefreshTokenRecord {
                hash: refresh.hash(),
                grant: grant.clone(),
                expires_at: later(now, self.config.refresh_token_ttl).min(grant.expires_at),
            },
        };
        let response = TokenResponse {
            access_token: access.into_string(),
            token_type: "Bearer".into(),
            expires_in: access_expires_at.duration_since(now).unwrap_or_default().as_secs(),
            refresh_token: refresh.into_string(),
            scope: grant.scopes.join(" "),
        };
        (response, records)
    }

    /// Whether this token request may redeem `code`: the client it was issued to, the same
    /// redirect URI, the PKCE verifier of its challenge and a matching resource.
    fn check_code(
        &self,
        client: &ClientRecord,
        code: &CodeRecord,
        redirect_uri: Option<&str>,
        verifier: &str,
        resource: Option<&str>,
    ) -> Result<(), OAuthError> {
        if code.grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant("the authorization code is invalid, expired or already used"));
        }
        match redirect_uri {
            Some(r) if r != code.redirect_uri => {
                return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
            }
            None if code.redirect_uri_given => {
                return Err(OAuthError::invalid_request("redirect_uri is required: the authorization request had one"));
            }
            _ => {}
        }
        if !verifier_matches(verifier, &code.code_challenge) {
            return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
        }
        self.check_resource(&code.grant, resource)
    }

    fn check_resource(&self, grant: &Grant, resource: Option<&str>) -> Result<(), OAuthError> {
        match self.canonical_resource(resource) {
            Some(r) if resource.is_none() || r == grant.resource => Ok(()),
            _ => Err(OAuthError::new(OAuthErrorCode::InvalidTarget, "resource does not match the grant")),
        }
    }

    /// The `authorization_code` grant (with PKCE).
    ///
    /// # Errors
    /// RFC 6749 §5.2 errors.
    pub(crate) async fn exchange_code(
        &self,
        creds: ClientCredentials,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        let Some(verifier) = code_verifier else {
            return Err(OAuthError::invalid_request("code_verifier is required (PKCE)"));
        };
        let invalid = || OAuthError::invalid_grant("the authorization code is invalid, expired or already used");
        let hash = TokenHash::of(code);
        let now = self.now();
        // Decide on the code as read, then spend it and store the tokens in one transaction.
        // A code record never changes, so the copy read here is the one redeemed.
        let Some(record) = self.store.code(&hash, now).await? else { return Err(invalid()) };
        let verdict = self.check_code(&client, &record, redirect_uri, verifier, resource);
        // A failed check spends the code all the same: no second try with another verifier.
        let (response, tokens) = verdict.is_ok().then(|| self.issue(&record.grant)).unzip();
        match self.store.redeem_code(&hash, now, tokens).await? {
            CodeRedemption::Redeemed(_) => {}
            CodeRedemption::Replayed(record) => {
                // A spent code presented again may have been stolen, and the thief may hold the
                // verifier too: whoever presents it, revoke everything it issued (OAuth 2.1
                // §4.1.3, RFC 9700 §4.5). A client whose first response was lost signs in again.
                tracing::warn!(client_id = %Escaped(&record.grant.client_id), "authorization code replayed; revoking its grant");
                self.store.revoke_grant(&record.grant.grant_id).await?;
                self.verified.clear();
                return Err(invalid());
            }
            CodeRedemption::Unknown => return Err(invalid()),
        }
        verdict?;
        let response = response.ok_or_else(invalid)?;
        metrics::token(TokenEvent::Issued);
        tracing::info!(
            client_id = %Escaped(&client.client_id),
            subject = %Escaped(&record.grant.subject),
            "tokens issued"
        );
        Ok(response)
    }

    /// The `refresh_token` grant (with rotation).
    ///
    /// # Errors
    /// RFC 6749 §5.2 errors.
    pub(crate) async fn refresh(
        &self,
        creds: ClientCredentials,
        refresh_token: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        if !client.grant_types.iter().any(|g| g == "refresh_token") {
            return Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "this client did not register the refresh_token grant",
            ));
        }
        let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
        let old = TokenHash::of(refresh_token);
        let now = self.now();
        // Build the successor first so that the rotation is one atomic store call.
        let Some(current) = self.store_refresh_grant(&old, now).await? else { return Err(invalid()) };
        if current.client_id != client.client_id {
            return Err(invalid());
        }
        self.check_resource(&current, resource)?;
        if current.expires_at <= now {
            return Err(OAuthError::invalid_grant("the grant has reached its lifetime: sign in again"));
        }
        // An upstream user is not the user store's: the grant keeps the sign-in's claims
        // until its lifetime ends.
        let claims = if self.is_upstream_subject(&current.subject) {
            current.claims.clone()
        } else {
            self.current_claims(&current.subject).await?.ok_or_else(invalid)?
        };
        let mut grant = current.clone();
        grant.claims = claims;
        if scope.is_some_and(|s| !s.trim().is_empty()) {
            let asked = self.parse_scopes(scope)?;
            if asked.iter().any(|s| !current.scopes.contains(s)) {
                return Err(OAuthError::new(OAuthErrorCode::InvalidScope, "scope exceeds the original grant"));
            }
            grant.scopes = asked;
        }
        let (response, records) = self.issue(&grant);
        let sealed = seal_successor(refresh_token, &response);
        match self.store.rotate_refresh(&old, now, records, sealed).await? {
            RefreshRotation::Rotated(_) => {
                metrics::token(TokenEvent::Refreshed);
                Ok(response)
            }
            RefreshRotation::AlreadyRotated { grant, rotated_at, sealed_successor } => {
                let in_grace = now.duration_since(rotated_at).unwrap_or_default() <= self.config.refresh_grace;
                if in_grace && let Some(previous) = sealed_successor.and_then(|s| open_successor(refresh_token, &s)) {
                    tracing::info!(client_id = %Escaped(&grant.client_id), "refresh retried within the grace window");
                    return Ok(previous);
                }
                tracing::warn!(client_id = %Escaped(&grant.client_id), "rotated refresh token reused; revoking its family");
                self.store.revoke_grant(&grant.grant_id).await?;
                self.verified.clear();
                Err(invalid())
            }
            RefreshRotation::Unknown => Err(invalid()),
        }
    }

    /// RFC 7009 revocation.
    ///
    /// # Errors
    /// `invalid_client` when the client fails to authenticate.
    pub(crate) async fn revoke(&self, creds: ClientCredentials, token: &str) -> Result<(), OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        let hash = TokenHash::of(token);
        // RFC 7009 §2.1: a token of another client is not revoked, and that is not an error.
        let owner = self.owner_of(&hash).await?;
        if owner.as_deref().is_some_and(|o| o != client.client_id) {
            return Ok(());
        }
        match self.store.revoke_token(&hash).await? {
            RevokedToken::Unknown => {}
            kind @ (RevokedToken::Access | RevokedToken::Refresh) => {
                self.verified.clear();
                metrics::token(TokenEvent::Revoked);
                tracing::info!(client_id = %Escaped(&client.client_id), ?kind, "token revoked");
            }
        }
        Ok(())
    }

    /// The grant of a refresh token (current or already rotated), read before minting so
    /// that client and resource are checked first; the rotation itself is the store's atomic
    /// `rotate_refresh`, which decides between concurrent users of the same token.
    async fn store_refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, OAuthError> {
        Ok(self.store.refresh_grant(hash, now).await?)
    }

    /// The client whose token `hash` is, expired or not: `revoke_token` acts on an expired
    /// token the sweeper has not removed yet (and a refresh token takes its live grant with it),
    /// so its ownership counts too.
    async fn owner_of(&self, hash: &TokenHash) -> Result<Option<String>, OAuthError> {
        // The epoch: before every expiry, so expired records are found.
        const ANY_TIME: SystemTime = std::time::UNIX_EPOCH;
        if let Some(t) = self.store.access_token(hash, ANY_TIME).await? {
            return Ok(Some(t.grant.client_id));
        }
        Ok(self.store.refresh_grant(hash, ANY_TIME).await?.map(|g| g.client_id))
    }
}

/// Whether `verifier` is a well-formed PKCE verifier whose S256 digest is `challenge`.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    is_pkce_string(verifier, 43, 128) && ct_eq_str(&pkce_s256(verifier), challenge)
}

/// The key that seals a rotation's successor pair: derived from the *old* refresh token, which
/// only its holder knows (the store keeps an unrelated digest of it).
fn grace_cipher(old_refresh_token: &str) -> ChaCha20Poly1305 {
    let mut h = Sha256::new();
    h.update(b"mcp-oauth-kit/refresh-grace/v1\0");
    h.update(old_refresh_token.as_bytes());
    ChaCha20Poly1305::new(Key::from_slice(&h.finalize()))
}

fn seal_successor(old_refresh_token: &str, response: &TokenResponse) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    if getrandom::fill(&mut nonce).is_err() {
        return Vec::new(); // no grace for this rotation rather than a predictable nonce
    }
    let Ok(plain) = serde_json::to_vec(response) else { return Vec::new() };
    match grace_cipher(old_refresh_token).encrypt(Nonce::from_slice(&nonce), plain.as_slice()) {
        Ok(ct) => [nonce.as_slice(), ct.as_slice()].concat(),
        Err(_) => Vec::new(),
    }
}

fn open_successor(old_refresh_token: &str, sealed: &[u8]) -> Option<TokenResponse> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(12);
    let plain = grace_cipher(old_refresh_token).decrypt(Nonce::from_slice(nonce), ct).ok()?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_opens_only_with_the_old_token() {
        let r = TokenResponse {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            expires_in: 1,
            refresh_token: "r".into(),
            scope: "mcp".into(),
        };
        let sealed = seal_successor("mcp_rt_old", &r);
        assert_eq!(open_successor("mcp_rt_old", &sealed), Some(r));
        assert_eq!(open_successor("mcp_rt_other", &sealed), None);
        assert_eq!(open_successor("mcp_rt_old", &sealed[..5]), None);
    }
}
