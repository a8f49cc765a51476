//! [`OAuthServer`]: the kit's own OAuth 2.1 authorization server over a [`Store`]. It holds the
//! protocol rules; the HTTP endpoints only parse and render. Its roles (registration,
//! authorization and consent, tokens) are crate-private methods that the router calls directly;
//! users configure it on the builder and hold it only as a handle for
//! [`OAuthServer::revoke_user`].
//!
//! Rules enforced here: exact redirect-URI matching (loopback `http` on any port, RFC 8252
//! §7.3); PKCE S256 only (OAuth 2.1 §4.1.1); single-use codes whose replay revokes the grant;
//! `resource` bound to the grant and checked as audience (RFC 8707); refresh tokens that rotate,
//! with reuse revoking the family except for a retry inside the grace window, within a grant
//! lifetime that rotation does not extend, and only while the user may still sign in; sign-in sessions
//! kept as digests; and remembered consent, which approves a request without asking only for
//! a signed-in user, a client whose identity is assured, and scopes the user approved before
//! (RFC 6749 §10.2, RFC 8252 §8.6).

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};
use url::Url;

#[cfg(feature = "cimd")]
use crate::cimd::CimdResolver;
use crate::client_display::{clean as clean_client_name, display_name, is_metadata_url, redirect_target};
use crate::clock::later;
use crate::config::Config;
use crate::error::{OAuthError, OAuthErrorCode, StoreError};
use crate::escaped::Escaped;
use crate::oauth_messages::{
    AuthorizationRequest, AuthorizeError, ClientCredentials, ClientMetadata, LoginContext, RegisteredClient,
    TokenResponse,
};
use crate::provider::{AccessToken, AuthProvider, TokenRejection};
use crate::redirect_uri::{RedirectUri, redirect_matches};
use crate::secret::{NewSecret, TokenHash, ct_eq_str, pkce_s256};
use crate::store::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens,
    PendingAuthorization, RefreshRotation, RefreshTokenRecord, RevokedToken, SessionRecord, Store,
};
use crate::user_store::{User, UserStore};
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
/// It also implements [`AuthProvider`], verifying its own tokens against its store (without
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
        Self {
            config,
            store,
            #[cfg(feature = "cimd")]
            cimd,
            verified,
            users,
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

    /// Revoke everything of the user `user_id` (the token subject, [`User::id`]): every grant
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

    /// The client record for `client_id`: registered, or (for an `https` URL) from its
    /// Client ID Metadata Document, which is then kept like a registration.
    /// Without the `cimd` feature, or with [`Config::client_id_metadata_documents`] off, such a
    /// `client_id` is refused as an invalid request, as the metadata's
    /// `client_id_metadata_document_supported: false` announces.
    async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>, AuthorizeError> {
        if !is_metadata_url(client_id) {
            return self.store.client(client_id).await.map_err(|e| AuthorizeError::Page(e.into()));
        }
        #[cfg(feature = "cimd")]
        if let Some(cimd) = &self.cimd {
            return match cimd.resolve(client_id).await {
                Ok((record, fresh)) => {
                    if fresh {
                        self.store.insert_client(record.clone()).await.map_err(|e| AuthorizeError::Page(e.into()))?;
                    }
                    Ok(Some(record))
                }
                Err(why) => Err(AuthorizeError::Page(OAuthError::invalid_request(why))),
            };
        }
        Err(AuthorizeError::Page(OAuthError::invalid_request(
            "this server does not accept client ID metadata documents: register the client",
        )))
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

/// Whether `token` can be one of ours (`mcp_at_` and 43 characters; 128 bounds the hashing):
/// nothing else is hashed or looked up.
fn looks_like_access_token(token: &str) -> bool {
    token.starts_with("mcp_at_") && token.len() <= 128
}

/// Whether `verifier` is a well-formed PKCE verifier whose S256 digest is `challenge`.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    is_pkce_string(verifier, 43, 128) && ct_eq_str(&pkce_s256(verifier), challenge)
}

/// Session secrets are `mcp_ss_` and 43 base64url characters; anything else is not looked up.
fn is_session_secret(secret: &str) -> bool {
    secret.starts_with("mcp_ss_") && secret.len() <= 64
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

fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => base.to_owned(), // unreachable: redirect URIs are validated at registration
    }
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

/// The roles, called by the endpoints.
impl OAuthServer {
    /// Verify one of this server's access tokens against the store. The guard's cache sits in
    /// front of this, and the revocations below clear it.
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
        Ok(AccessToken::builder(g.subject, record.expires_at)
            .username(g.username)
            .client_id(g.client_id)
            .scopes(g.scopes)
            .audience(g.resource)
            .claims(g.claims)
            .build())
    }

    /// RFC 7591: register a client.
    ///
    /// # Errors
    /// `invalid_redirect_uri` / `invalid_client_metadata` for bad metadata.
    pub(crate) async fn register_client(&self, metadata: ClientMetadata) -> Result<RegisteredClient, OAuthError> {
        let bad_meta = |d: String| OAuthError::new(OAuthErrorCode::InvalidClientMetadata, d);
        let uris = metadata.redirect_uris.unwrap_or_default();
        if uris.is_empty() {
            return Err(OAuthError::new(OAuthErrorCode::InvalidRedirectUri, "redirect_uris is required"));
        }
        if uris.len() > 10 {
            return Err(OAuthError::new(OAuthErrorCode::InvalidRedirectUri, "at most 10 redirect_uris"));
        }
        for uri in &uris {
            RedirectUri::parse(uri).map_err(|why| {
                OAuthError::new(OAuthErrorCode::InvalidRedirectUri, format!("redirect URI {uri:?}: {why}"))
            })?;
        }
        let auth_method = metadata.token_endpoint_auth_method.unwrap_or_else(|| "client_secret_basic".into());
        if !matches!(auth_method.as_str(), "none" | "client_secret_post" | "client_secret_basic") {
            return Err(bad_meta(format!("token_endpoint_auth_method {auth_method:?} is not supported")));
        }
        // MCP clients expect to refresh; a client that wants no refresh tokens says so.
        let grant_types =
            metadata.grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
        if let Some(g) = grant_types.iter().find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token")) {
            return Err(bad_meta(format!("grant type {g:?} is not supported")));
        }
        if let Some(r) = metadata.response_types.iter().flatten().find(|r| r.as_str() != "code") {
            return Err(bad_meta(format!("response type {r:?} is not supported")));
        }
        if let Some(scope) = metadata.scope.as_deref() {
            self.parse_scopes(Some(scope)).map_err(|e| bad_meta(e.description.into_owned()))?;
        }
        let name = metadata.client_name.as_deref().map(clean_client_name);
        let secret = (auth_method != "none").then(|| NewSecret::generate("mcp_cs_"));
        let record = ClientRecord {
            client_id: NewSecret::generate("mcp_client_").into_string(),
            secret_hash: secret.as_ref().map(NewSecret::hash),
            auth_method,
            client_name: name,
            redirect_uris: uris,
            grant_types,
            scope: metadata.scope,
            issued_at: self.now(),
        };
        self.store.insert_client(record.clone()).await?;
        tracing::info!(client_id = %Escaped(&record.client_id), "client registered");
        Ok(RegisteredClient { record, client_secret: secret.map(NewSecret::into_string) })
    }

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
    /// `invalid_request` for an unknown handle or wrong CSRF token.
    pub(crate) async fn complete_authorization(
        &self,
        handle: &str,
        csrf_token: &str,
        user: &User,
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
            grant,
            redirect_uri: pending.redirect_uri.clone(),
            redirect_uri_given: pending.redirect_uri_given,
            code_challenge: pending.code_challenge.clone(),
            expires_at: later(now, self.config.code_ttl),
        };
        // Taking the pending authorization makes the approval single-use even under a double
        // submit, and stores the code in the same transaction (a pending record never changes
        // but for its failure count, so the copy read above is what is taken).
        self.store.take_pending(&hash, now, Some(record)).await?.ok_or_else(expired)?;
        let iss = self.config.issuer();
        let mut params = vec![("code", code.expose()), ("iss", iss.as_str())];
        if let Some(s) = pending.state.as_deref() {
            params.push(("state", s));
        }
        Ok(with_query(&pending.redirect_uri, &params))
    }

    /// Start a sign-in session for `user`, who has just signed in with their password on the
    /// login page: returns the secret the browser keeps in its session cookie, or `None` when
    /// sign-in sessions are off ([`Config::session_ttl`] zero).
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
        let session = SessionRecord {
            hash: secret.hash(),
            subject: user.id.clone(),
            username: user.username.clone(),
            created_at: now,
            expires_at: later(now, self.config.session_ttl),
        };
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
        Ok(session.map(|s| User::new(s.subject, s.username)))
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
        let may = self.users.may_sign_in(&current.subject).await.map_err(|e| OAuthError::server_error(&e))?;
        // The user's claims as they are now: a changed email or role reaches the next token.
        let user = match may {
            true => self.users.find_by_id(&current.subject).await.map_err(|e| OAuthError::server_error(&e))?,
            false => None,
        };
        let Some(user) = user else {
            tracing::info!(subject = %Escaped(&current.subject), "refresh refused: the user may no longer sign in");
            return Err(invalid());
        };
        crate::claims::checked_size(&user.claims).map_err(|e| OAuthError::server_error(&e))?;
        let mut grant = current.clone();
        grant.claims = user.claims;
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
            RefreshRotation::Rotated(_) => Ok(response),
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
            #[allow(unreachable_patterns)]
            _ => Err(invalid()),
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
            kind => {
                self.verified.clear();
                tracing::info!(client_id = %Escaped(&client.client_id), ?kind, "token revoked");
            }
        }
        Ok(())
    }
}

impl OAuthServer {
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

    #[test]
    fn pkce_strings() {
        assert!(is_pkce_string(&"a".repeat(43), 43, 128));
        assert!(!is_pkce_string(&"a".repeat(42), 43, 128));
        assert!(!is_pkce_string(&"a".repeat(129), 43, 128));
        assert!(!is_pkce_string(&format!("{}+", "a".repeat(43)), 43, 128));
    }
}
