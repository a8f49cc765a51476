//! The authorization and consent role: an authorization request validated and kept until the
//! user signs in (RFC 6749 §4.1.1, PKCE S256, RFC 8707 `resource`), what the login page shows
//! for it, and the user's answer: a single-use code, or `access_denied`. Remembered consent
//! approves without asking only for a client whose identity is assured (RFC 6749 §10.2,
//! RFC 8252 §8.6).

use url::Url;

use super::{OAuthServer, is_pkce_string, with_query};
use crate::client_display::{display_name, redirect_target};
use crate::clock::later;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::escaped::Escaped;
use crate::oauth_messages::{AuthorizationRequest, AuthorizeError, LoginContext};
use crate::redirect_uri::redirect_matches;
use crate::secret::{NewSecret, TokenHash, ct_eq_str};
use crate::store::{ClientRecord, CodeRecord, ConsentRecord, Grant, PendingAuthorization};
use crate::user_store::User;

impl OAuthServer {
    /// Validate an authorization request and remember it until the user signs in. Returns the
    /// handle the login page is opened with.
    ///
    /// # Errors
    /// See [`AuthorizeError`].
    pub(crate) async fn start_authorization(&self, req: AuthorizationRequest) -> Result<String, AuthorizeError> {
        let page = |d: &'static str| AuthorizeError::Page(OAuthError::invalid_request(d));
        let client_id = req.client_id.as_deref().ok_or_else(|| page("client_id is missing"))?;
        let client = self.find_client(client_id).await?.ok_or_else(|| page("unknown client"))?;
        let redirect_uri = match req.redirect_uri.as_deref() {
            Some(given) => client
                .redirect_uris
                .iter()
                .any(|r| redirect_matches(r, given))
                .then(|| given.to_owned())
                .ok_or_else(|| page("redirect_uri is not registered for this client"))?,
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(page("redirect_uri is required")),
        };
        // From here on the redirect URI is the client's own; errors may go back to it, but only
        // once a user has signed in here (the endpoint decides, RFC 9700 §4.11.2).
        let state = req.state.clone();
        let iss = self.config.issuer();
        let client_name = display_name(&client);
        let redirect_error = |code: OAuthErrorCode, description: &str| {
            let mut params = vec![("error", code.as_str()), ("error_description", description), ("iss", iss.as_str())];
            if let Some(s) = state.as_deref() {
                params.push(("state", s));
            }
            AuthorizeError::Redirect {
                client_name: client_name.clone(),
                error: OAuthError::new(code, description.to_owned()),
                location: with_query(&redirect_uri, &params),
            }
        };
        if req.response_type.as_deref() != Some("code") {
            return Err(redirect_error(OAuthErrorCode::UnsupportedResponseType, "response_type must be code"));
        }
        let Some(challenge) = req.code_challenge.as_deref() else {
            return Err(redirect_error(OAuthErrorCode::InvalidRequest, "code_challenge is required (PKCE)"));
        };
        if req.code_challenge_method.as_deref() != Some("S256") {
            return Err(redirect_error(OAuthErrorCode::InvalidRequest, "code_challenge_method must be S256"));
        }
        if challenge.len() != 43 || !is_pkce_string(challenge, 43, 43) {
            return Err(redirect_error(OAuthErrorCode::InvalidRequest, "code_challenge is not an S256 challenge"));
        }
        let scopes = self.parse_scopes(req.scope.as_deref()).map_err(|e| redirect_error(e.code, &e.description))?;
        let Some(resource) = self.canonical_resource(req.resource.as_deref()) else {
            return Err(redirect_error(OAuthErrorCode::InvalidTarget, "resource is not served by this server"));
        };
        if state.as_ref().is_some_and(|s| s.len() > 1024) {
            return Err(redirect_error(OAuthErrorCode::InvalidRequest, "state is too long"));
        }
        let handle = NewSecret::generate("");
        let pending = PendingAuthorization {
            id_hash: handle.hash(),
            client_id: client.client_id,
            redirect_uri,
            redirect_uri_given: req.redirect_uri.is_some(),
            state,
            code_challenge: challenge.to_owned(),
            scopes,
            resource,
            csrf_token: NewSecret::generate("").into_string(),
            failed_logins: 0,
            expires_at: later(self.now(), self.config.login_ttl),
        };
        self.store.insert_pending(pending).await.map_err(|e| AuthorizeError::Page(e.into()))?;
        Ok(handle.into_string())
    }

    /// What the login page shows for a pending authorization.
    ///
    /// # Errors
    /// `invalid_request` when the handle is unknown or expired.
    pub(crate) async fn login_context(&self, handle: &str) -> Result<LoginContext, OAuthError> {
        let expired = || OAuthError::invalid_request("this sign-in request is unknown or has expired");
        let pending = self.store.pending(&TokenHash::of(handle), self.now()).await?.ok_or_else(expired)?;
        let client = self.store.client(&pending.client_id).await?.ok_or_else(expired)?;
        let can_remember = self.can_remember(&pending.redirect_uri, &client);
        let redirect_host = redirect_target(&pending.redirect_uri);
        let client_name = display_name(&client);
        Ok(LoginContext {
            client_name,
            redirect_host,
            scopes: pending.scopes,
            csrf_token: pending.csrf_token,
            can_remember,
            upstream: self.upstream_name().map(str::to_owned),
            passwords: self.passwords(),
        })
    }

    /// Count a failed sign-in; returns whether the pending authorization is still usable.
    ///
    /// # Errors
    /// When the store fails.
    pub(crate) async fn record_failed_login(&self, handle: &str) -> Result<bool, OAuthError> {
        let hash = TokenHash::of(handle);
        let failures = self.store.record_failed_login(&hash).await?;
        if failures >= self.config.max_login_attempts {
            self.store.take_pending(&hash, self.now(), None).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// The user signed in and approved: issue a code; returns the URL to redirect to.
    ///
    /// # Errors
    /// `invalid_request` for an unknown handle or wrong CSRF token; `server_error` for a user
    /// store's user whose id could be taken for an upstream user's.
    pub(crate) async fn complete_authorization(
        &self,
        handle: &str,
        csrf_token: &str,
        user: &User,
    ) -> Result<String, OAuthError> {
        self.check_local_user(user)?;
        self.issue_code(handle, csrf_token, user, None).await
    }

    /// Refuse a user store's user whose id has the form of an upstream user's subject: what
    /// they did would be kept, and trusted, under that upstream user's name. Call it before
    /// anything is stored for `user`.
    ///
    /// # Errors
    /// `server_error`: the user store's mistake, not the user's.
    pub(crate) fn check_local_user(&self, user: &User) -> Result<(), OAuthError> {
        if self.is_upstream_subject(&user.id) {
            let e =
                format!("the user store's user id {} has the form of an upstream user's subject", Escaped(&user.id));
            return Err(OAuthError::server_error(&e));
        }
        Ok(())
    }

    /// The user of this browser's sign-in session approved: issue a code; returns the URL to
    /// redirect to. Sessions start only after a sign-in passed every check (a password, with
    /// the user id checked as in [`OAuthServer::complete_authorization`], or at the upstream
    /// provider), so an upstream subject here is that provider's user.
    ///
    /// # Errors
    /// As [`OAuthServer::complete_authorization`].
    pub(crate) async fn complete_session_authorization(
        &self,
        handle: &str,
        csrf_token: &str,
        user: &User,
    ) -> Result<String, OAuthError> {
        if self.is_upstream_subject(&user.id) {
            return self.issue_code(handle, csrf_token, user, None).await;
        }
        self.complete_authorization(handle, csrf_token, user).await
    }

    /// The user signed in at the upstream provider, having approved on the login page: issue
    /// a code for them; returns the URL to redirect to.
    ///
    /// # Errors
    /// As [`OAuthServer::complete_authorization`].
    #[cfg(feature = "jwt")]
    pub(crate) async fn complete_upstream_authorization(
        &self,
        handle: &str,
        csrf_token: &str,
        sign_in: crate::upstream::UpstreamSignIn,
    ) -> Result<String, OAuthError> {
        let crate::upstream::UpstreamSignIn { user, tokens } = sign_in;
        // Kept only with a key to seal them (`Config::upstream_token_key`); otherwise dropped
        // here, so that they never reach the store or the MCP client.
        let kept = match (&self.vault, self.upstream()) {
            (Some(_), Some(provider)) => Some(provider.tokens_to_keep(tokens, self.now())),
            _ => None,
        };
        self.issue_code(handle, csrf_token, &user, kept).await
    }

    /// Issue a code for `user` from the pending authorization `handle`, and keep the user's
    /// `upstream` tokens for the grant it is for.
    async fn issue_code(
        &self,
        handle: &str,
        csrf_token: &str,
        user: &User,
        upstream: Option<crate::upstream_tokens::UpstreamTokens>,
    ) -> Result<String, OAuthError> {
        let hash = TokenHash::of(handle);
        let expired = || OAuthError::invalid_request("this sign-in request is unknown or has expired");
        let now = self.now();
        let pending = self.store.pending(&hash, now).await?.ok_or_else(expired)?;
        if !ct_eq_str(&pending.csrf_token, csrf_token) {
            return Err(OAuthError::invalid_request("the form's CSRF token does not match"));
        }
        crate::claims::checked_size(&user.claims).map_err(|e| OAuthError::server_error(&e))?;
        let code = NewSecret::generate("mcp_code_");
        let grant = Grant {
            grant_id: NewSecret::generate("").into_string(),
            subject: user.id.clone(),
            username: user.username.clone(),
            client_id: pending.client_id.clone(),
            scopes: pending.scopes.clone(),
            resource: pending.resource.clone(),
            expires_at: later(now, self.config.grant_lifetime),
            claims: user.claims.clone(),
        };
        let record = CodeRecord {
            hash: code.hash(),
            grant: grant.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            redirect_uri_given: pending.redirect_uri_given,
            code_challenge: pending.code_challenge.clone(),
            expires_at: later(now, self.config.code_ttl),
        };
        // Taking the pending authorization makes the approval single-use even under a double
        // submit, and stores the code in the same transaction (a pending record never changes
        // but for its failure count, so the copy read above is what is taken).
        self.store.take_pending(&hash, now, Some(record)).await?.ok_or_else(expired)?;
        // After the code is stored: the sweep forgets upstream tokens of a grant with no code.
        if let Some(tokens) = upstream
            && let Err(e) = self.keep_upstream_tokens(&grant, &tokens).await
        {
            // Nothing half-done: the code goes with its grant, and the user starts again.
            if let Err(revoke) = self.store.revoke_grant(&grant.grant_id).await {
                tracing::error!(error = %revoke, "a code whose upstream tokens were not kept could not be revoked");
            }
            return Err(OAuthError::server_error(&format!("the upstream tokens could not be kept: {e}")));
        }
        let iss = self.config.issuer();
        let mut params = vec![("code", code.expose()), ("iss", iss.as_str())];
        if let Some(s) = pending.state.as_deref() {
            params.push(("state", s));
        }
        Ok(with_query(&pending.redirect_uri, &params))
    }

    /// The user declined: returns the URL that tells the client `access_denied`.
    ///
    /// # Errors
    /// `invalid_request` for an unknown handle or wrong CSRF token.
    pub(crate) async fn deny_authorization(&self, handle: &str, csrf_token: &str) -> Result<String, OAuthError> {
        let hash = TokenHash::of(handle);
        let expired = || OAuthError::invalid_request("this sign-in request is unknown or has expired");
        let pending = self.store.pending(&hash, self.now()).await?.ok_or_else(expired)?;
        if !ct_eq_str(&pending.csrf_token, csrf_token) {
            return Err(OAuthError::invalid_request("the form's CSRF token does not match"));
        }
        self.store.take_pending(&hash, self.now(), None).await?;
        let iss = self.config.issuer();
        let mut params =
            vec![("error", "access_denied"), ("error_description", "the user declined"), ("iss", iss.as_str())];
        if let Some(s) = pending.state.as_deref() {
            params.push(("state", s));
        }
        Ok(with_query(&pending.redirect_uri, &params))
    }

    /// Whether the pending authorization `handle` may be approved for the signed-in user
    /// `subject` without showing the page: the user asked to remember their consent to its
    /// client, for at least the scopes it asks now, and the client's identity is assured for
    /// this request.
    ///
    /// # Errors
    /// When the store fails.
    ///
    /// # Security
    /// A public client whose code goes to a loopback or private-use redirect URI can be
    /// impersonated by any app on the device (RFC 8252 §8.6): never approve one silently.
    pub(crate) async fn remembered_consent(&self, handle: &str, subject: &str) -> Result<bool, OAuthError> {
        let Some(pending) = self.rememberable(handle).await? else { return Ok(false) };
        let consent = self.store.consent(subject, &pending.client_id, self.now()).await?;
        Ok(consent.is_some_and(|c| pending.scopes.iter().all(|s| c.scopes.contains(s))))
    }

    /// The user `subject` approved the pending authorization `handle` and asked to remember
    /// the decision: remember their consent to its client for its scopes. Call it before
    /// [`OAuthServer::complete_authorization`], which ends the pending authorization. Does
    /// nothing when the request's `LoginContext::can_remember` is `false`.
    ///
    /// # Errors
    /// When the store fails.
    pub(crate) async fn remember_consent(&self, handle: &str, subject: &str) -> Result<(), OAuthError> {
        let Some(pending) = self.rememberable(handle).await? else { return Ok(()) };
        let now = self.now();
        // What the user approves adds to what they approved before (a narrower request later
        // does not take back the wider consent).
        let mut scopes = match self.store.consent(subject, &pending.client_id, now).await? {
            Some(previous) => previous.scopes,
            None => Vec::new(),
        };
        scopes.extend(pending.scopes);
        scopes.sort();
        scopes.dedup();
        let expires_at = later(now, self.config.consent_ttl);
        self.store
            .put_consent(ConsentRecord::new(subject, pending.client_id.as_str(), scopes, now, expires_at))
            .await?;
        tracing::info!(subject = %Escaped(subject), client_id = %Escaped(&pending.client_id), "consent remembered");
        Ok(())
    }

    /// The user `subject` declined the pending authorization `handle` and asked to remember
    /// the decision: forget any consent to its client remembered before.
    ///
    /// # Errors
    /// When the store fails.
    pub(crate) async fn forget_consent(&self, handle: &str, subject: &str) -> Result<(), OAuthError> {
        if let Some(pending) = self.store.pending(&TokenHash::of(handle), self.now()).await? {
            self.store.revoke_consent(subject, &pending.client_id).await?;
        }
        Ok(())
    }

    /// Whether a request of `client` whose code goes to `redirect_uri` may be approved from a
    /// remembered consent. Only when the client's identity is assured (client impersonation,
    /// RFC 6749 §10.2, RFC 8252 §8.6): the code goes to an `https` redirect URI, which only the
    /// client's owner serves, or the client is confidential and must prove itself with its
    /// secret to redeem the code. A loopback `http` (any port) or private-use redirect URI can
    /// be claimed by any app on the device, so a public client using one is asked every time.
    fn can_remember(&self, redirect_uri: &str, client: &ClientRecord) -> bool {
        self.config.remembers_consent()
            && (client.secret_hash.is_some() || Url::parse(redirect_uri).is_ok_and(|u| u.scheme() == "https"))
    }

    /// The pending authorization `handle` and its client, if both exist and a consent to it
    /// may be remembered.
    async fn rememberable(&self, handle: &str) -> Result<Option<PendingAuthorization>, OAuthError> {
        let Some(pending) = self.store.pending(&TokenHash::of(handle), self.now()).await? else { return Ok(None) };
        let Some(client) = self.store.client(&pending.client_id).await? else { return Ok(None) };
        Ok(self.can_remember(&pending.redirect_uri, &client).then_some(pending))
    }
}
