//! The back-channel half of an upstream sign-in: the authorization code redeemed at the
//! provider's token endpoint (RFC 6749 §4.1.3 with the PKCE verifier, OpenID Connect Core
//! §3.1.3), the id_token validated, the provider's userinfo read for the claims the id_token
//! leaves out (§5.3, with its `sub` required to be the id_token's), and the user the kit
//! issues its own code for. A plain OAuth 2.0 provider has no id_token: its userinfo,
//! read through a [`UserinfoMapping`](super::UserinfoMapping), says who signed in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::id_token::{Expected, IdTokenError, validate};
use super::{Identity, OidcProvider};
use crate::claims::Claims;
use crate::secret::Password;
use crate::user_store::User;
use crate::verifiers::upstream_http::{FetchError, send, send_answer};

/// Claims of the provider that the caller carries.
const CARRIED_CLAIMS: [&str; 4] = ["name", "email", "email_verified", "groups"];
/// Claims that may name the user, in order; the provider's `sub` when none does.
const USERNAME_CLAIMS: [&str; 3] = ["preferred_username", "name", "email"];

/// Why an upstream sign-in failed after the provider sent the browser back. The message is
/// safe to show: it never holds a code, token or secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignInError {
    /// The provider could not be reached or answered with an error status.
    #[error("the provider could not complete the sign-in ({0})")]
    Provider(FetchError),
    /// The token endpoint refused the code with an OAuth error (RFC 6749 §5.2; GitHub sends
    /// it with status 200), such as `invalid_grant` or `incorrect_client_credentials`.
    #[error("the provider refused the code: {0}")]
    Refused(String),
    /// The provider answered something that is not a valid token or userinfo response.
    #[error("the provider's answer is invalid: {0}")]
    BadResponse(&'static str),
    /// The id_token was refused.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// The provider's token response, kept with the grant the sign-in creates (see
/// `OAuthServer::keep_upstream_tokens`); never sent to the MCP client. `Debug` shows no token.
pub(crate) struct UpstreamTokens {
    pub(crate) access_token: Password,
    pub(crate) refresh_token: Option<Password>,
    /// Seconds, as the provider said.
    pub(crate) expires_in: Option<u64>,
    pub(crate) scope: Option<String>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A completed upstream sign-in: who signed in, and the provider's tokens.
#[derive(Debug)]
pub(crate) struct UpstreamSignIn {
    pub(crate) user: User,
    pub(crate) tokens: UpstreamTokens,
}

/// The values of one sign-in that the browser's callback must match.
pub(crate) struct Pending<'a> {
    pub(crate) code: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) code_verifier: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) now: std::time::SystemTime,
}

/// Beyond this an error code from the provider is cut.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// The provider's `error` as it may be shown and logged: RFC 6749 §5.2's characters only
/// (printable ASCII without `"` and `\`), cut short.
fn error_code(error: &str) -> String {
    error.chars().filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\')).take(MAX_ERROR_CODE_CHARS).collect()
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl OidcProvider {
    /// Redeem the code, validate the id_token and read the user.
    ///
    /// # Errors
    /// [`SignInError`] for a provider that fails or refuses, an invalid answer or id_token.
    pub(crate) async fn sign_in(&self, pending: &Pending<'_>) -> Result<UpstreamSignIn, SignInError> {
        let url = &self.token_endpoint;
        let (status, body) = send_answer(self.token_request(pending), url).await.map_err(SignInError::Provider)?;
        let parsed = serde_json::from_slice::<Map<String, Value>>(&body);
        let text = |response: &Map<String, Value>, name: &str| -> Option<String> {
            response.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        if let Some(error) = parsed.as_ref().ok().and_then(|r| text(r, "error")) {
            return Err(SignInError::Refused(error_code(&error)));
        }
        if !(200..300).contains(&status) {
            return Err(SignInError::Provider(FetchError::Status { url: url.as_str().to_owned(), status }));
        }
        let response = parsed.map_err(|_| SignInError::BadResponse("the token response is not a JSON object"))?;
        let text = |name: &str| response.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let access_token = text("access_token").ok_or(SignInError::BadResponse("no access_token"))?;
        if !text("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
            return Err(SignInError::BadResponse("the token_type is not Bearer"));
        }
        let claims = match &self.identity {
            Identity::IdToken { algorithms, keys, .. } => {
                let id_token =
                    text("id_token").ok_or(SignInError::BadResponse("no id_token (is the openid scope granted?)"))?;
                let expected = Expected {
                    issuer: &self.issuer,
                    client_id: &self.client_id,
                    nonce: pending.nonce,
                    algorithms,
                    now: pending.now,
                };
                let mut claims = validate(id_token, keys, &expected).await?;
                if CARRIED_CLAIMS.iter().chain(&USERNAME_CLAIMS).any(|c| !claims.contains_key(*c)) {
                    self.add_userinfo(&mut claims, access_token).await?;
                }
                claims
            }
            // No id_token is read, even when the provider sends one: the userinfo says who.
            Identity::Userinfo(mapping) => mapping.claims(&self.userinfo(access_token).await?)?,
        };
        let tokens = UpstreamTokens {
            access_token: Password::new(access_token),
            refresh_token: text("refresh_token").map(Password::new),
            expires_in: response.get("expires_in").and_then(Value::as_u64),
            scope: text("scope").map(str::to_owned),
        };
        Ok(UpstreamSignIn { user: self.user(&claims), tokens })
    }

    /// The token request that redeems the code (RFC 6749 §4.1.3, RFC 7636 §4.5), with the
    /// client authenticated as the provider's metadata allows.
    pub(super) fn token_request(&self, pending: &Pending<'_>) -> reqwest::RequestBuilder {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", pending.code)
            .append_pair("redirect_uri", pending.redirect_uri)
            .append_pair("code_verifier", pending.code_verifier);
        let mut request = self.http.post(self.token_endpoint.clone()).header("accept", "application/json");
        match self.client_auth {
            super::ClientAuth::Basic => {
                // RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
                let pair = format!("{}:{}", form_encode(&self.client_id), form_encode(self.client_secret.expose()));
                request = request.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
            }
            super::ClientAuth::Post => {
                form.append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", self.client_secret.expose());
            }
        }
        request.header("content-type", "application/x-www-form-urlencoded").body(form.finish())
    }

    /// Fill the claims the id_token left out from the userinfo endpoint, if the provider has
    /// one (OpenID Connect Core §5.3.2: its `sub` must be the id_token's).
    async fn add_userinfo(&self, claims: &mut Map<String, Value>, access_token: &str) -> Result<(), SignInError> {
        if self.userinfo_endpoint.is_none() {
            return Ok(());
        }
        let info = self.userinfo(access_token).await?;
        if info.get("sub") != claims.get("sub") {
            return Err(SignInError::BadResponse("the userinfo is about another user than the id_token"));
        }
        for name in CARRIED_CLAIMS.iter().chain(&USERNAME_CLAIMS) {
            if !claims.contains_key(*name)
                && let Some(value) = info.get(*name)
            {
                claims.insert((*name).to_owned(), value.clone());
            }
        }
        Ok(())
    }

    /// The userinfo endpoint's answer about the owner of `access_token` (a provider without
    /// one answers nothing).
    async fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>, SignInError> {
        let Some(url) = &self.userinfo_endpoint else { return Ok(Map::new()) };
        let request = self.http.get(url.clone()).bearer_auth(access_token).header("accept", "application/json");
        let body = send(request, url).await.map_err(SignInError::Provider)?;
        serde_json::from_slice(&body).map_err(|_| SignInError::BadResponse("the userinfo is not a JSON object"))
    }

    /// The user validated `claims` describe (their `sub` is checked non-empty).
    fn user(&self, claims: &Map<String, Value>) -> User {
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        let username = USERNAME_CLAIMS
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
            .unwrap_or(sub);
        let carried: Claims =
            CARRIED_CLAIMS.iter().filter_map(|c| claims.get(*c).map(|v| ((*c).to_owned(), v.clone()))).collect();
        let mut user = User::new(self.subject(sub), username);
        user.claims = carried;
        user
    }
}
