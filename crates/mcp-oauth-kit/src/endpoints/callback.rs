//! Sign-in at the upstream OpenID provider (OpenID Connect Core 1.0 §3.1): its start from the
//! login page's "Continue with …", and `GET /oauth/callback`, where the provider sends the
//! browser back with a code.
//!
//! Nothing of a sign-in is stored before it succeeds. Its `state` is the pending
//! authorization's handle and a token derived from this browser's secret (see
//! [`crate::browser`]), so a callback is accepted only in the browser that started it (login
//! CSRF, RFC 9700 §4.7) and only for the authorization the user approved on our page; the
//! `nonce` and the PKCE verifier are derived from the same secret for the same handle, so no
//! one without the browser's cookie can redeem an intercepted code or replay an id_token. The
//! kit's code is issued by taking the pending authorization from the store, atomically, so a
//! replayed callback finds nothing left and gets no second code.
//!
//! Every failure (the user cancelled at the provider, a provider that is down or answers
//! nonsense, an id_token that does not verify) is this server's error page: nobody has signed
//! in yet, so the client's redirect URI is never followed (RFC 9700 §4.11.2), and no session
//! starts.
//!
//! A sign-in that passed every check also starts the browser's sign-in session, as a password
//! does ([`begin_session`]): its cookie rides on the redirect that carries the code, so only
//! the browser whose `state` matched gets it. The next authorization in that browser asks for
//! consent only; sign-out, the session's lifetime and revoking the user end it as they end a
//! password user's. When the provider's tokens are kept for tools, a new grant goes to the
//! provider again for tokens of its own ([`for_new_tokens`]).

use http::{HeaderMap, StatusCode};

use crate::authorization_server::OAuthServer;
use crate::browser::{Browser, read_cookie};
use crate::config::Config;
use crate::endpoints::pages::error_page;
use crate::endpoints::session_cookie::{begin_session, session_cookie_name};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::escaped::Escaped;
use crate::http_util::{Form, HttpResponse, redirect};
use crate::metrics::{self, SignIn, SignInMethod};
use crate::secret::{ct_eq_str, pkce_s256};
use crate::upstream::{AuthorizationRequest, OidcProvider, Pending};
use crate::user_store::User;

/// The callback's path, under the public URL: the redirect URI registered at the provider.
pub(crate) const CALLBACK_PATH: &str = "/oauth/callback";
/// A longer callback query is refused before it is parsed.
const MAX_QUERY_BYTES: usize = 8 * 1024;
/// A longer `error_description` from the provider is cut.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// The values of one browser's upstream sign-in for the pending authorization `handle`.
struct Binding {
    state: String,
    nonce: String,
    verifier: String,
}

impl Binding {
    /// The binding of a sign-in of whoever signs in at the provider (`as_user` `None`), or of
    /// the round trip of the user `as_user` signed in on this browser, whom the provider must
    /// sign in again.
    fn new(browser: &Browser, handle: &str, as_user: Option<&str>) -> Self {
        let mac = match as_user {
            None => browser.derived(&format!("upstream-state/{handle}")),
            Some(subject) => browser.derived(&format!("upstream-state/{handle}/as/{subject}")),
        };
        Self {
            // Handles are base64url, without a `.`.
            state: format!("{handle}.{mac}"),
            nonce: browser.derived(&format!("upstream-nonce/{handle}")),
            verifier: browser.derived(&format!("upstream-pkce/{handle}")),
        }
    }
}

/// The provider to send `user` to before a new grant of theirs from their sign-in session:
/// their tokens there are kept for tools ([`Config::upstream_token_key`]), and each grant
/// holds tokens of its own, which only a sign-in there gives. `None` for anyone else.
pub(crate) fn for_new_tokens<'a>(oauth: &'a OAuthServer, user: &User) -> Option<&'a OidcProvider> {
    oauth.upstream().filter(|_| oauth.keeps_upstream_tokens() && oauth.is_upstream_subject(&user.id))
}

/// Whether the login form asks for the upstream sign-in: the "Continue with …" form beside the
/// password form, or "Allow" on the sign-in page without passwords (both carry `upstream`; the
/// consent-only page of a signed-in user does not, and its Allow stands on the session).
pub(crate) fn chosen(form: &Form) -> bool {
    form.get("upstream").is_some() && form.get("decision") != Some("deny")
}

/// Whom the provider is to sign in.
#[derive(Clone, Copy)]
pub(crate) enum Who<'a> {
    /// Whoever signs in there; the provider may answer from a session of its own.
    Anyone,
    /// Whoever signs in there, asked even if the provider has a session (after "Not you?").
    AnyoneAskedAgain,
    /// The user with this subject, signed in on this browser and back for tokens of a new
    /// grant: the callback refuses anyone else, whom the provider's own session may have
    /// become meanwhile (a shared computer).
    SignedIn(&'a str),
}

/// Send the browser to the provider for the pending authorization `handle`, which the user
/// approved on our page (the caller checked the form's token and origin).
pub(crate) fn start(
    upstream: &OidcProvider,
    config: &Config,
    handle: &str,
    browser: &Browser,
    who: Who<'_>,
) -> HttpResponse {
    let as_user = match who {
        Who::SignedIn(subject) => Some(subject),
        Who::Anyone | Who::AnyoneAskedAgain => None,
    };
    let binding = Binding::new(browser, handle, as_user);
    let challenge = pkce_s256(&binding.verifier);
    let request = AuthorizationRequest {
        redirect_uri: &config.url(CALLBACK_PATH),
        state: &binding.state,
        nonce: &binding.nonce,
        challenge: &challenge,
        prompt_login: matches!(who, Who::AnyoneAskedAgain),
    };
    let url = upstream.authorization_url(&request);
    tracing::info!(issuer = %Escaped(upstream.issuer()), "sign-in continues at the upstream provider");
    redirect(&url)
}

/// `GET /oauth/callback?code=…&state=…[&iss=…]` or `?error=…&state=…`.
pub(crate) async fn callback(oauth: &OAuthServer, config: &Config, headers: &HeaderMap, query: &str) -> HttpResponse {
    let page = |status, e: OAuthError| error_page(status, &config.server_name, &e);
    if query.len() > MAX_QUERY_BYTES {
        return page(StatusCode::URI_TOO_LONG, OAuthError::invalid_request("the sign-in response is too long"));
    }
    let form = match Form::parse(query.as_bytes()) {
        Ok(form) => form,
        Err(e) => return page(StatusCode::BAD_REQUEST, e),
    };
    let unknown = || {
        OAuthError::invalid_request(
            "this sign-in response is unknown, has expired, or was not started in this browser; start again from the application",
        )
    };
    // Without an upstream no sign-in was sent there: every callback is unknown.
    let Some(upstream) = oauth.upstream() else { return page(StatusCode::BAD_REQUEST, unknown()) };
    let Some((handle, mac)) = form.get("state").and_then(|s| s.split_once('.')) else {
        return page(StatusCode::BAD_REQUEST, unknown());
    };
    let Some(browser) = Browser::known(config, headers) else {
        return page(StatusCode::BAD_REQUEST, unknown());
    };
    let (binding, expected) = match binding_of(oauth, config, headers, &browser, handle, mac).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            tracing::warn!("upstream callback refused: its state is not this browser's");
            return page(StatusCode::BAD_REQUEST, unknown());
        }
        Err(e) => return page(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let ctx = match oauth.login_context(handle).await {
        Ok(ctx) => ctx,
        Err(e) if e.code == OAuthErrorCode::InvalidRequest => return page(StatusCode::BAD_REQUEST, unknown()),
        Err(e) => return page(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let name = upstream.name();
    if let Some(error) = form.get("error") {
        let described: String =
            form.get("error_description").unwrap_or("").chars().take(MAX_DESCRIPTION_CHARS).collect();
        tracing::info!(error = %Escaped(error), "the upstream provider returned an error");
        metrics::sign_in(SignInMethod::Upstream, SignIn::Failed);
        let e = if error == "access_denied" {
            OAuthError::new(OAuthErrorCode::AccessDenied, format!("the sign-in at {name} was cancelled or refused"))
        } else {
            OAuthError::new(OAuthErrorCode::AccessDenied, format!("{name} answered {error}: {described}"))
        };
        return page(StatusCode::FORBIDDEN, e);
    }
    // RFC 9207: an `iss` that is not the provider's is a mix-up; a provider that promised it
    // must send it.
    let iss_ok = match form.get("iss") {
        Some(iss) => iss == upstream.issuer(),
        None => !upstream.sends_iss(),
    };
    if !iss_ok {
        tracing::warn!("upstream callback refused: wrong or missing iss");
        metrics::sign_in(SignInMethod::Upstream, SignIn::Failed);
        return page(StatusCode::BAD_REQUEST, OAuthError::invalid_request("the sign-in response names another issuer"));
    }
    let Some(code) = form.get("code") else {
        metrics::sign_in(SignInMethod::Upstream, SignIn::Failed);
        return page(StatusCode::BAD_REQUEST, OAuthError::invalid_request("the sign-in response has no code"));
    };
    let pending = Pending {
        code,
        redirect_uri: &config.url(CALLBACK_PATH),
        code_verifier: &binding.verifier,
        nonce: &binding.nonce,
        now: config.clock.now(),
    };
    let sign_in = match upstream.sign_in(&pending).await {
        Ok(sign_in) => sign_in,
        Err(e) => {
            tracing::warn!(issuer = %Escaped(upstream.issuer()), error = %e, "upstream sign-in failed");
            metrics::sign_in(SignInMethod::Upstream, SignIn::Failed);
            let e = OAuthError::new(OAuthErrorCode::AccessDenied, format!("the sign-in at {name} failed: {e}"));
            return page(StatusCode::BAD_GATEWAY, e);
        }
    };
    if let Some(expected) = &expected
        && sign_in.user.id != *expected
    {
        tracing::warn!(
            expected = %Escaped(expected),
            "upstream sign-in refused: the provider signed in another user than the one signed in on this browser"
        );
        metrics::sign_in(SignInMethod::Upstream, SignIn::Failed);
        let e = OAuthError::new(
            OAuthErrorCode::AccessDenied,
            format!(
                "{name} signed in another account than the one signed in here. Sign out at {name} or choose \"Not you?\", then start again from the application"
            ),
        );
        return page(StatusCode::FORBIDDEN, e);
    }
    let user = sign_in.user.clone();
    match oauth.complete_upstream_authorization(handle, &ctx.csrf_token, sign_in).await {
        Ok(location) => {
            tracing::info!(subject = %Escaped(&user.id), "user signed in upstream and approved");
            metrics::sign_in(SignInMethod::Upstream, SignIn::Succeeded);
            let mut res = redirect(&location);
            begin_session(oauth, config, headers, &user, &mut res).await;
            res
        }
        Err(e) if e.code == OAuthErrorCode::InvalidRequest => page(StatusCode::BAD_REQUEST, unknown()),
        Err(e) => page(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The binding whose state MAC is `mac`, and the subject the provider must sign in: a sign-in
/// of anyone (`None`), or the round trip of the user signed in on this browser (their
/// subject). `Ok(None)` when neither is this browser's.
async fn binding_of(
    oauth: &OAuthServer,
    config: &Config,
    headers: &HeaderMap,
    browser: &Browser,
    handle: &str,
    mac: &str,
) -> Result<Option<(Binding, Option<String>)>, OAuthError> {
    let matches = |binding: &Binding| binding.state.split_once('.').is_some_and(|(_, own)| ct_eq_str(own, mac));
    let anyone = Binding::new(browser, handle, None);
    if matches(&anyone) {
        return Ok(Some((anyone, None)));
    }
    let Some(secret) = read_cookie(headers, session_cookie_name(config)) else { return Ok(None) };
    let Some(user) = oauth.session_user(secret).await? else { return Ok(None) };
    let signed_in = Binding::new(browser, handle, Some(&user.id));
    Ok(matches(&signed_in).then_some((signed_in, Some(user.id))))
}
