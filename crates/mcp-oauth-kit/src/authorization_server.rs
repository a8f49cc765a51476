//! [`OAuthServer`]: the kit's own OAuth 2.1 authorization server over a [`Store`]. It holds the
//! protocol rules; the HTTP endpoints ([`crate::endpoints`]) only parse and render. Users
//! configure it on the builder and hold it only as a handle for [`OAuthServer::revoke_user`];
//! its roles are crate-private methods that the endpoints call directly, one file each:
//!
//! - `registration`: RFC 7591 registration and the lookup of a client, registered or
//!   described by a Client ID Metadata Document;
//! - `authorization`: the authorization request (exact redirect-URI matching, loopback `http`
//!   on any port, RFC 8252 §7.3; PKCE S256 only, OAuth 2.1 §4.1.1; `resource` bound to the
//!   grant, RFC 8707), the user's approval or denial, and remembered consent, which approves
//!   without asking only for a signed-in user, a client whose identity is assured, and scopes
//!   the user approved before (RFC 6749 §10.2, RFC 8252 §8.6);
//! - `sessions`: sign-in sessions, kept as digests;
//! - `tokens`: single-use codes whose replay revokes the grant; refresh tokens that rotate,
//!   with reuse revoking the family except for a retry inside the grace window, within a grant
//!   lifetime that rotation does not extend, and only while the user may still sign in;
//!   revocation;
//! - `verification`: this server's access tokens, checked against the store for the guard.

mod authorization;
mod introspection;
mod registration;
mod sessions;
mod tokens;
mod verification;

use std::sync::Arc;
use std::time::SystemTime;

use url::Url;

#[cfg(feature = "cimd")]
use crate::cimd::CimdResolver;
use crate::config::Config;
use crate::error::{OAuthError, OAuthErrorCode, StoreError};
use crate::escaped::Escaped;
use crate::store::{Grant, Store};
use crate::upstream_tokens::{KeepUpstreamError, UpstreamTokens, UpstreamVault};
use crate::user_store::UserStore;
use crate::verified_cache::VerifiedCache;

/// The built-in authorization server, as a handle for [`OAuthServer::revoke_user`] while the
/// server runs. It is configured with
/// [`McpServerBuilder::user_store`](crate::McpServerBuilder::user_store), not built by hand,
/// so that it always has the builder's user store and shares the guard's token cache.
///
/// ```no_run
/// # async fn run(server: mcp_oauth_kit::McpServer) -> Result<(), mcp_oauth_kit::Error> {
/// // `None` for a server built with `auth_provider` (a resource server only).
/// if let Some(accounts) = server.authorization_server() {
///     tokio::spawn(server.run());
///     accounts.revoke_user("u-2").await?;
/// }
/// # Ok(()) }
/// ```
///
/// It also implements [`AuthProvider`](crate::auth::AuthProvider), verifying its own tokens against its store (without
/// the guard's cache).
#[derive(Clone)]
pub struct OAuthServer {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    #[cfg(feature = "cimd")]
    cimd: Option<Arc<CimdResolver>>,
    /// The guard's cache, cleared here at every revocation.
    verified: Arc<VerifiedCache>,
    /// Who may sign in, asked again at each refresh ([`UserStore::may_sign_in`]).
    users: Arc<dyn UserStore>,
    /// Users' sealed upstream tokens, with [`Config::upstream_token_key`].
    vault: Option<Arc<UpstreamVault>>,
    /// Whether the login page asks for passwords (a user store was configured).
    passwords: bool,
    /// The upstream provider the login page offers, if any.
    #[cfg(feature = "jwt")]
    upstream: Option<Arc<crate::upstream::OidcProvider>>,
}

impl std::fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthServer").field("issuer", &self.config.issuer()).finish_non_exhaustive()
    }
}

/// PKCE verifiers are 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1); challenges
/// of S256 are exactly 43 base64url characters.
fn is_pkce_string(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl OAuthServer {
    /// An authorization server for `config` over `store`, whose users are `users`, and which
    /// clears `verified` (the guard's cache) at every revocation.
    pub(crate) fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        users: Arc<dyn UserStore>,
        verified: Arc<VerifiedCache>,
    ) -> Self {
        #[cfg(feature = "cimd")]
        let cimd = config.client_id_metadata_documents.then(|| {
            let resolver = CimdResolver::new(config.danger_allow_private_cimd_hosts)
                .with_extra_roots(config.danger_cimd_root_certificates.clone())
                .with_clock(config.clock.clone());
            Arc::new(resolver)
        });
        let vault = UpstreamVault::new(&config, store.clone());
        Self {
            vault,
            config,
            store,
            #[cfg(feature = "cimd")]
            cimd,
            verified,
            users,
            passwords: true,
            #[cfg(feature = "jwt")]
            upstream: None,
        }
    }

    /// Offer sign-in at `upstream` on the login page; `passwords` says whether the password
    /// form stays beside it (a user store was configured).
    #[cfg(feature = "jwt")]
    pub(crate) fn with_upstream(mut self, upstream: crate::upstream::OidcProvider, passwords: bool) -> Self {
        self.upstream = Some(Arc::new(upstream));
        self.passwords = passwords;
        self
    }

    /// The upstream provider the login page offers.
    #[cfg(feature = "jwt")]
    pub(crate) fn upstream(&self) -> Option<&crate::upstream::OidcProvider> {
        self.upstream.as_deref()
    }

    /// Whether users' upstream tokens are kept for tools ([`Config::upstream_token_key`]).
    #[cfg(feature = "jwt")]
    pub(crate) fn keeps_upstream_tokens(&self) -> bool {
        self.vault.is_some()
    }

    /// The name of the upstream provider the login page offers, if any.
    pub(crate) fn upstream_name(&self) -> Option<&str> {
        #[cfg(feature = "jwt")]
        return self.upstream.as_deref().map(crate::upstream::OidcProvider::name);
        #[cfg(not(feature = "jwt"))]
        None
    }

    /// Whether the login page asks for passwords.
    pub(crate) fn passwords(&self) -> bool {
        self.passwords
    }

    /// Whether `subject` names a user of the upstream provider (`{issuer}#{sub}`), whom the
    /// user store does not know.
    pub(crate) fn is_upstream_subject(&self, subject: &str) -> bool {
        #[cfg(feature = "jwt")]
        return self.upstream.as_ref().is_some_and(|u| u.owns_subject(subject));
        #[cfg(not(feature = "jwt"))]
        {
            let _ = subject;
            false
        }
    }

    /// The current time, from [`Config::clock`].
    fn now(&self) -> SystemTime {
        self.config.clock.now()
    }

    /// Who may sign in on the login page.
    pub(crate) fn users(&self) -> &dyn UserStore {
        &*self.users
    }

    /// Keep `tokens`, the user's tokens at an upstream identity provider, for `grant` (sealed
    /// with [`Config::upstream_token_key`], replacing any it had), so that its tools get them
    /// with [`AccessToken::upstream_token`](crate::AccessToken::upstream_token). The upstream
    /// sign-in calls this once the grant's code is stored; they end with the grant.
    ///
    /// # Errors
    /// [`KeepUpstreamError::NotConfigured`] without a key, or when the tokens' client is not
    /// among [`Config::upstream_clients`]; [`KeepUpstreamError::Store`] when the store fails.
    pub async fn keep_upstream_tokens(&self, grant: &Grant, tokens: &UpstreamTokens) -> Result<(), KeepUpstreamError> {
        let vault = self.vault.as_ref().ok_or_else(|| {
            KeepUpstreamError::NotConfigured("Config::upstream_token_key (UPSTREAM_TOKEN_KEY) is not set".into())
        })?;
        vault.keep(grant, tokens).await
    }

    /// Revoke everything of the user `user_id` (the token subject, [`User::id`](crate::User::id)): every grant
    /// and the codes and tokens issued from it, every sign-in session and every remembered
    /// consent. Their access tokens stop at the MCP endpoint at once on this instance, and
    /// within [`Config::token_cache_ttl`] on other instances sharing the store. For "delete
    /// my account" and "sign out everywhere"; a client the user connects again starts over.
    ///
    /// ```no_run
    /// use mcp_oauth_kit::auth::OAuthServer;
    ///
    /// /// Your "delete my account" handler, given the handle at start-up.
    /// async fn delete_account(accounts: &OAuthServer, user_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    ///     // Remove the user from your database first, so no new sign-in succeeds meanwhile.
    ///     accounts.revoke_user(user_id).await?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; then nothing may have been revoked, so retry.
    pub async fn revoke_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.store.revoke_subject(user_id).await?;
        self.verified.clear();
        tracing::info!(subject = %Escaped(user_id), "every grant, session and consent of the user revoked");
        Ok(())
    }

    /// Revoke everything of every user: every grant and the codes and tokens issued from it,
    /// every sign-in session and every remembered consent. Clients stay registered; each user
    /// signs in again, with a password, the next time their client connects. Access tokens
    /// stop at the MCP endpoint at once on this instance, and within
    /// [`Config::token_cache_ttl`] on other instances sharing the store. For a suspected leak
    /// of tokens, or after restoring an old backup (which brings back what was revoked since).
    ///
    /// ```no_run
    /// # async fn run(server: mcp_oauth_kit::McpServer) -> Result<(), mcp_oauth_kit::Error> {
    /// let accounts = server.authorization_server().expect("built with a user store");
    /// accounts.revoke_all().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; then nothing was revoked (one transaction), so
    /// retry.
    pub async fn revoke_all(&self) -> Result<(), StoreError> {
        self.store.revoke_all().await?;
        self.verified.clear();
        tracing::warn!("every grant, sign-in session and remembered consent revoked");
        Ok(())
    }

    /// Resources a client may name: the MCP endpoint, with or without a trailing slash.
    fn canonical_resource(&self, requested: Option<&str>) -> Option<String> {
        let canonical = self.config.resource();
        match requested.map(str::trim) {
            None | Some("") => Some(canonical),
            Some(r) if r == canonical || r.strip_suffix('/') == Some(canonical.as_str()) => Some(canonical),
            Some(_) => None,
        }
    }

    /// The scopes `scope` asks for, sorted and without repeats; the default scopes for none.
    ///
    /// # Errors
    /// `invalid_scope` for a scope this server does not support.
    fn parse_scopes(&self, scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
        let requested: Vec<String> =
            scope.unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if requested.is_empty() {
            return Ok(self.config.default_scopes.clone());
        }
        if let Some(unknown) = requested.iter().find(|s| !self.config.scopes_supported.contains(s)) {
            return Err(OAuthError::new(OAuthErrorCode::InvalidScope, format!("unknown scope {unknown:?}")));
        }
        let mut scopes = requested;
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

/// `base` (a validated redirect URI) with `params` added to its query.
fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => base.to_owned(), // unreachable: redirect URIs are validated at registration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_strings() {
        assert!(is_pkce_string(&"a".repeat(43), 43, 128));
        assert!(!is_pkce_string(&"a".repeat(42), 43, 128));
        assert!(!is_pkce_string(&"a".repeat(129), 43, 128));
        assert!(!is_pkce_string(&format!("{}+", "a".repeat(43)), 43, 128));
    }
}
