//! The records a [`Store`](super::Store) keeps: registered clients, pending sign-ins, grants
//! with their codes and tokens, sign-in and MCP sessions, consent and rate-limit windows, the outcomes of the
//! atomic steps, and the constructors a backend outside this crate builds them with.

use std::time::SystemTime;

use crate::claims::{ClaimNames, Claims};
use crate::secret::TokenHash;

/// A client registered through RFC 7591 dynamic registration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientRecord {
    /// The client identifier we issued.
    pub client_id: String,
    /// SHA-256 of the client secret, for confidential clients.
    pub secret_hash: Option<TokenHash>,
    /// `token_endpoint_auth_method`: `none`, `client_secret_post` or `client_secret_basic`.
    pub auth_method: String,
    /// The human-readable name shown on the consent screen.
    pub client_name: Option<String>,
    /// The exact redirect URIs the client registered.
    pub redirect_uris: Vec<String>,
    /// `grant_types` the client may use.
    pub grant_types: Vec<String>,
    /// The scope the client registered for, if it named one.
    pub scope: Option<String>,
    /// When it registered.
    pub issued_at: SystemTime,
}

/// What a signed-in user granted a client: shared by the code and every token issued from it.
/// Revoking the grant revokes them all. Its `Debug` names the claims without their values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// Random identifier of this grant (the "token family").
    pub grant_id: String,
    /// The user's stable id.
    pub subject: String,
    /// The user's name at sign-in time.
    pub username: String,
    /// The client the grant was made to.
    pub client_id: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The resource (RFC 8707) the tokens are for: their audience.
    pub resource: String,
    /// When the grant ends, however often its refresh token rotates: the user's sign-in plus
    /// [`Config::grant_lifetime`](crate::Config::grant_lifetime). No token of it outlives this.
    pub expires_at: SystemTime,
    /// The user's extra claims ([`User::claims`](crate::User::claims)) at sign-in, renewed at
    /// each refresh; every access token of the grant carries them.
    pub claims: Claims,
}

/// An authorization request waiting for the user to sign in. Its `Debug` redacts the CSRF
/// token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// SHA-256 of the request handle carried in the login page's URL.
    pub id_hash: TokenHash,
    /// The client that asked.
    pub client_id: String,
    /// The validated redirect URI to send the code to.
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (rather than relying on the client's only
    /// registered one): the token request must then repeat it (RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    /// The client's `state`, returned unchanged.
    pub state: Option<String>,
    /// The PKCE S256 code challenge.
    pub code_challenge: String,
    /// The scopes asked for (already validated).
    pub scopes: Vec<String>,
    /// The resource asked for (already validated).
    pub resource: String,
    /// CSRF token for the login form (short-lived; compared in constant time).
    pub csrf_token: String,
    /// Wrong passwords so far.
    pub failed_logins: u32,
    /// When the user's time to sign in runs out.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field has to be placed here (and redacted if secret).
        let Self {
            id_hash,
            client_id,
            redirect_uri,
            redirect_uri_given,
            state,
            code_challenge,
            scopes,
            resource,
            csrf_token: _,
            failed_logins,
            expires_at,
        } = self;
        f.debug_struct("PendingAuthorization")
            .field("id_hash", id_hash)
            .field("client_id", client_id)
            .field("redirect_uri", redirect_uri)
            .field("redirect_uri_given", redirect_uri_given)
            .field("state", state)
            .field("code_challenge", code_challenge)
            .field("scopes", scopes)
            .field("resource", resource)
            .field("csrf_token", &crate::secret::Redacted)
            .field("failed_logins", failed_logins)
            .field("expires_at", expires_at)
            .finish()
    }
}

/// An authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub hash: TokenHash,
    /// What the code grants.
    pub grant: Grant,
    /// The redirect URI the code was sent to; a token request that names one must name this.
    pub redirect_uri: String,
    /// Whether the authorization request named `redirect_uri`: the token request must then
    /// repeat it (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).
    pub redirect_uri_given: bool,
    /// The PKCE S256 challenge the verifier must match.
    pub code_challenge: String,
    /// When the code expires.
    pub expires_at: SystemTime,
}

/// An access token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessTokenRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it grants.
    pub grant: Grant,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// A refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it grants.
    pub grant: Grant,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// A new token pair, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedTokens {
    /// The access token.
    pub access: AccessTokenRecord,
    /// The refresh token.
    pub refresh: RefreshTokenRecord,
}

/// A browser's sign-in session at the authorization server: the user signed in on this
/// browser (with a password, or at the upstream provider), which holds the session secret in a
/// cookie. While it lasts, the login page asks that user only for consent (or, with remembered
/// consent, nothing at all). Its `Debug` names the claims without their values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// SHA-256 of the session secret (the cookie's value).
    pub hash: TokenHash,
    /// The user's stable id.
    pub subject: String,
    /// The user's name at sign-in time.
    pub username: String,
    /// The claims of an upstream provider's user at sign-in, which the grants made from the
    /// session carry (no user store knows that user); empty for a user store's user, whose
    /// claims are read from the store again.
    pub claims: Claims,
    /// When the user signed in.
    pub created_at: SystemTime,
    /// When the session ends, whatever happens in between.
    pub expires_at: SystemTime,
}

/// An MCP session of the Streamable HTTP transport (its `Mcp-Session-Id`), kept so that any
/// instance sharing the store can continue it, also after a restart, and only for the user who
/// opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct McpSessionRecord {
    /// SHA-256 of the session id.
    pub id_hash: TokenHash,
    /// The user who opened the session: no one else's token may drive it.
    pub subject: String,
    /// The grant of the token that opened it, when this server issued that token: revoking
    /// the grant (or the user) ends the session.
    pub grant_id: Option<String>,
    /// The client's `initialize` parameters (JSON), replayed when an instance restores the
    /// session.
    pub initialize: String,
    /// When the session was last used, as far as the store knows: instances write their use
    /// in batches, so it may lag by one sweep interval.
    pub last_used_at: SystemTime,
}

/// A user's remembered consent to a client: authorization requests of that client for these
/// scopes (or fewer) may be approved without asking again, while the user has a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsentRecord {
    /// The user's stable id.
    pub subject: String,
    /// The client the user approved.
    pub client_id: String,
    /// The scopes approved, sorted.
    pub scopes: Vec<String>,
    /// When the user (last) approved.
    pub granted_at: SystemTime,
    /// When the consent is forgotten.
    pub expires_at: SystemTime,
}

/// A grant's tokens at an upstream identity provider, sealed: what the kit keeps so that tools
/// can call the provider's API on the user's behalf. The store never sees them in clear:
/// `sealed` is an AEAD ciphertext (XChaCha20-Poly1305 under the configured upstream token key,
/// the grant id as associated data) of the access token, the refresh token, their expiry and scope, and the
/// token endpoint and client id to refresh them with. Its `Debug` shows the ciphertext's
/// length only.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamTokenRecord {
    /// Our grant ([`Grant::grant_id`]) the tokens belong to: they end with it.
    pub grant_id: String,
    /// The grant's user, so that revoking the user removes them.
    pub subject: String,
    /// The sealed tokens.
    pub sealed: Vec<u8>,
    /// Bumped at each replacement: [`Store::replace_upstream_tokens`](super::Store::replace_upstream_tokens)
    /// replaces only the version it was shown.
    pub version: u64,
    /// While a refresh is under way somewhere: until when the others wait for it instead of
    /// spending the refresh token themselves.
    pub refreshing_until: Option<SystemTime>,
    /// The grant's end ([`Grant::expires_at`]): the record is swept then at the latest.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for UpstreamTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { grant_id, subject, sealed, version, refreshing_until, expires_at } = self;
        f.debug_struct("UpstreamTokenRecord")
            .field("grant_id", grant_id)
            .field("subject", subject)
            .field("sealed_bytes", &sealed.len())
            .field("version", version)
            .field("refreshing_until", refreshing_until)
            .field("expires_at", expires_at)
            .finish()
    }
}

/// One key's rate-limit window, as [`Store::hit_rate_limit`](super::Store::hit_rate_limit)
/// and [`Store::rate_limit_count`](super::Store::rate_limit_count) report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitWindow {
    /// Events counted in the window so far (0 when the key has no current window).
    pub count: u32,
    /// When the window ends and counting starts over (`now` when there is no window).
    pub ends_at: SystemTime,
}

/// The outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeRedemption {
    /// First use: here is the code, now marked used, and the tokens given are stored.
    Redeemed(CodeRecord),
    /// The code was used before: a replay; the tokens given are not stored. The caller decides
    /// whether to revoke the grant.
    Replayed(CodeRecord),
    /// No such code (or it expired).
    Unknown,
}

/// The outcome of rotating a refresh token. Its `Debug` redacts the sealed successor (the
/// holder of the old refresh token could open it).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshRotation {
    /// The token was current; it is now retired and the new pair is stored.
    Rotated(RefreshTokenRecord),
    /// The token was already rotated `rotated_at`; `sealed_successor` is what the rotation
    /// stored for a retry in the grace window, if its successor is still current.
    AlreadyRotated {
        /// The grant of the token.
        grant: Grant,
        /// When it was rotated.
        rotated_at: SystemTime,
        /// The successor pair, sealed with a key derived from the old token.
        sealed_successor: Option<Vec<u8>>,
    },
    /// No such token (or it expired or was revoked).
    Unknown,
}

impl std::fmt::Debug for RefreshRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rotated(record) => f.debug_tuple("Rotated").field(record).finish(),
            Self::AlreadyRotated { grant, rotated_at, sealed_successor } => f
                .debug_struct("AlreadyRotated")
                .field("grant", grant)
                .field("rotated_at", rotated_at)
                .field("sealed_successor", &sealed_successor.as_ref().map(|_| crate::secret::Redacted))
                .finish(),
            Self::Unknown => f.write_str("Unknown"),
        }
    }
}

/// What a token hash refers to, for revocation (RFC 7009).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokedToken {
    /// An access token was revoked.
    Access,
    /// A refresh token was revoked, and with it its whole grant.
    Refresh,
    /// Nothing matched (RFC 7009 still answers 200).
    Unknown,
}

/// Constructors for the records, which are `#[non_exhaustive]` and so cannot be built with a
/// struct literal outside this crate: a [`Store`](super::Store) implemented over another database needs them
/// to turn its rows into records. Fields not taken here have the value in the constructor's
/// doc; the fields are public, so set them after construction.
impl Grant {
    /// A grant of `scopes` on `resource`, made by the user `subject` (`username`) to
    /// `client_id`, with no absolute end (`expires_at` is the year 9999) and no `claims`.
    pub fn new(
        grant_id: impl Into<String>,
        subject: impl Into<String>,
        username: impl Into<String>,
        client_id: impl Into<String>,
        scopes: Vec<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            grant_id: grant_id.into(),
            subject: subject.into(),
            username: username.into(),
            client_id: client_id.into(),
            scopes,
            resource: resource.into(),
            expires_at: crate::clock::far_future(),
            claims: Claims::new(),
        }
    }
}

impl ClientRecord {
    /// A client without a secret, name or scope (`secret_hash`, `client_name` and `scope` are
    /// `None`).
    pub fn new(
        client_id: impl Into<String>,
        auth_method: impl Into<String>,
        redirect_uris: Vec<String>,
        grant_types: Vec<String>,
        issued_at: SystemTime,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            secret_hash: None,
            auth_method: auth_method.into(),
            client_name: None,
            redirect_uris,
            grant_types,
            scope: None,
            issued_at,
        }
    }
}

impl PendingAuthorization {
    /// A pending sign-in with no `state`, no `scopes` and no failed logins yet, whose request
    /// named its `redirect_uri` (`redirect_uri_given` is `true`).
    pub fn new(
        id_hash: TokenHash,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        code_challenge: impl Into<String>,
        resource: impl Into<String>,
        csrf_token: impl Into<String>,
        expires_at: SystemTime,
    ) -> Self {
        Self {
            id_hash,
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            redirect_uri_given: true,
            state: None,
            code_challenge: code_challenge.into(),
            scopes: Vec::new(),
            resource: resource.into(),
            csrf_token: csrf_token.into(),
            failed_logins: 0,
            expires_at,
        }
    }
}

impl CodeRecord {
    /// A code for `grant`, sent to `redirect_uri`, bound to the PKCE `code_challenge`, whose
    /// authorization request named its `redirect_uri` (`redirect_uri_given` is `true`).
    pub fn new(
        hash: TokenHash,
        grant: Grant,
        redirect_uri: impl Into<String>,
        code_challenge: impl Into<String>,
        expires_at: SystemTime,
    ) -> Self {
        Self {
            hash,
            grant,
            redirect_uri: redirect_uri.into(),
            redirect_uri_given: true,
            code_challenge: code_challenge.into(),
            expires_at,
        }
    }
}

impl AccessTokenRecord {
    /// An access token for `grant`.
    pub fn new(hash: TokenHash, grant: Grant, expires_at: SystemTime) -> Self {
        Self { hash, grant, expires_at }
    }
}

impl RefreshTokenRecord {
    /// A refresh token for `grant`.
    pub fn new(hash: TokenHash, grant: Grant, expires_at: SystemTime) -> Self {
        Self { hash, grant, expires_at }
    }
}

impl IssuedTokens {
    /// A token pair.
    pub fn new(access: AccessTokenRecord, refresh: RefreshTokenRecord) -> Self {
        Self { access, refresh }
    }
}

impl SessionRecord {
    /// A session of the user `subject` (`username`), begun at `created_at`, without claims.
    pub fn new(
        hash: TokenHash,
        subject: impl Into<String>,
        username: impl Into<String>,
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        Self { hash, subject: subject.into(), username: username.into(), claims: Claims::new(), created_at, expires_at }
    }

    /// The session with the user's `claims` (see [`SessionRecord::claims`]).
    pub fn with_claims(mut self, claims: Claims) -> Self {
        self.claims = claims;
        self
    }
}

impl McpSessionRecord {
    /// The session `id_hash` that `subject` opened with a token of `grant_id`, with the
    /// client's `initialize` parameters.
    pub fn new(
        id_hash: TokenHash,
        subject: impl Into<String>,
        grant_id: Option<String>,
        initialize: impl Into<String>,
        last_used_at: SystemTime,
    ) -> Self {
        Self { id_hash, subject: subject.into(), grant_id, initialize: initialize.into(), last_used_at }
    }
}

impl ConsentRecord {
    /// `subject`'s consent to `client_id` for `scopes`, given at `granted_at`.
    pub fn new(
        subject: impl Into<String>,
        client_id: impl Into<String>,
        scopes: Vec<String>,
        granted_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        Self { subject: subject.into(), client_id: client_id.into(), scopes, granted_at, expires_at }
    }
}

impl RateLimitWindow {
    /// A window that has counted `count` events and ends at `ends_at`.
    pub fn new(count: u32, ends_at: SystemTime) -> Self {
        Self { count, ends_at }
    }
}

impl UpstreamTokenRecord {
    /// The sealed tokens of `grant`, at version 1, with no refresh under way.
    pub fn new(grant: &Grant, sealed: Vec<u8>) -> Self {
        Self {
            grant_id: grant.grant_id.clone(),
            subject: grant.subject.clone(),
            sealed,
            version: 1,
            refreshing_until: None,
            expires_at: grant.expires_at,
        }
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so that a new field has to be placed here (and redacted if personal).
        let Self { grant_id, subject, username, client_id, scopes, resource, expires_at, claims } = self;
        f.debug_struct("Grant")
            .field("grant_id", grant_id)
            .field("subject", subject)
            .field("username", username)
            .field("client_id", client_id)
            .field("scopes", scopes)
            .field("resource", resource)
            .field("expires_at", expires_at)
            .field("claims", &ClaimNames(claims))
            .finish()
    }
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { hash, subject, username, claims, created_at, expires_at } = self;
        f.debug_struct("SessionRecord")
            .field("hash", hash)
            .field("subject", subject)
            .field("username", username)
            .field("claims", &ClaimNames(claims))
            .field("created_at", created_at)
            .field("expires_at", expires_at)
            .finish()
    }
}
