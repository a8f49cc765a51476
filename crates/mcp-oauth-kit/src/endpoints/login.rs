//! `GET/POST /login`: the sign-in and consent page between `/authorize` and the client's
//! redirect URI; and `POST /logout`, which ends the browser's sign-in session.
//!
//! The form carries the pending authorization's handle and a token bound to this browser
//! (see [`crate::browser`]); a post from another site or origin is refused before anything is
//! read or spent (login CSRF). Wrong passwords and unknown users get the same answer; each
//! pending authorization allows a few attempts before it is dropped.
//!
//! Nothing here sends the browser to the client before a user has authenticated on this
//! server (RFC 9700 §4.11.2): Deny on the sign-in page shows this server's own page. Only the
//! consent-only page of a live session, submitted from this origin, sends `access_denied` back.
//!
//! A sign-in (a password here, or at the upstream provider: see [`super::callback`]) also
//! starts a sign-in session: the `mcp_session` cookie (`HttpOnly`,
//! `SameSite=Lax`, `Path=/`; `__Host-` and `Secure` over https) holds a random secret whose
//! digest the store keeps. For a browser with a session, `GET /login` asks no password: it
//! shows a consent-only page ("Signed in as alice", Allow / Deny, "Not you?"), or, when the
//! provider says the user remembered their consent to this client for these scopes
//! ([`OAuthServer::remembered_consent`]), approves at once and redirects to the client.
//! `prompt=login` (the "Not you?" link) ignores the session. The decision rules are the
//! provider's and the HTML is [`super::pages`]'s; this file reads cookies and forms and picks
//! the page.

use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};

use crate::authorization_server::OAuthServer;
use crate::browser::{Browser, Submission, read_cookie, submission};
use crate::config::Config;
#[cfg(feature = "jwt")]
use crate::endpoints::callback::Who;
use crate::endpoints::pages::{Page, declined_page, error_page, page_response, signed_out_page};
use crate::endpoints::session_cookie::{begin_session, session_cookie, session_cookie_name, signed_in_user};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::escaped::Escaped;
use crate::http_util::{Form, HttpResponse, has_content_type, redirect, set_retry_after};
use crate::metrics::{self, Limit, SignIn, SignInMethod};
use crate::rate_limit::{Limits, SignInAttempt};
use crate::secret::{Password, ct_eq_str, derived_token};
use crate::user_store::{User, UserStore};

/// What the form of the sign-out page's token is derived for.
const LOGOUT_PURPOSE: &str = "logout";

/// How long the sign-in page shows "Wrong username or password" after the redirect that
/// follows a wrong one (a reload within it shows the alert again; later, a plain form).
const FAILURE_FLAG_SECS: u64 = 120;

/// What the sign-in page says after a wrong password or an unknown user, alike.
const WRONG_CREDENTIALS: &str = "Wrong username or password.";

/// The short-lived cookie that carries the typed username across the redirect after a wrong
/// password: it stays in the browser that typed it (never in a URL, where proxies log it).
fn username_cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() { "__Host-mcp_login_name" } else { "mcp_login_name" }
}

/// Usernames longer than this are not carried across the redirect (a cookie is small).
const MAX_CARRIED_USERNAME: usize = 256;

/// Seconds since the Unix epoch on the configured clock.
fn now_secs(config: &Config) -> u64 {
    config.clock.now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The answer to a wrong password: 303 to the sign-in page with a failure flag (redirect after
/// POST, so a reload does not post the password again), and the username in a cookie for
/// [`FAILURE_FLAG_SECS`].
fn wrong_credentials(config: &Config, browser: &Browser, handle: &str, username: &str) -> HttpResponse {
    let flag = browser.failure_flag(handle, now_secs(config));
    let mut url = match url::Url::parse(&config.url("/login")) {
        Ok(url) => url,
        Err(e) => {
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, &config.server_name, &OAuthError::server_error(&e));
        }
    };
    url.query_pairs_mut().append_pair("request", handle).append_pair("failed", &flag);
    let mut res = redirect(url.as_str());
    *res.status_mut() = StatusCode::SEE_OTHER;
    if username.len() <= MAX_CARRIED_USERNAME {
        let value: String = url::form_urlencoded::byte_serialize(username.as_bytes()).collect();
        let secure = if config.secure_cookies() { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={FAILURE_FLAG_SECS}{secure}",
            username_cookie_name(config)
        );
        if let Ok(cookie) = http::HeaderValue::from_str(&cookie) {
            res.headers_mut().append(SET_COOKIE, cookie);
        }
    }
    res
}

/// The sign-in page's error and typed username after [`wrong_credentials`]' redirect, when
/// its flag is this browser's, for this request, and fresh.
fn after_wrong_credentials(
    config: &Config,
    headers: &HeaderMap,
    browser: &Browser,
    handle: &str,
    flag: Option<&str>,
) -> Option<String> {
    let flag = flag?;
    if !browser.failure_flag_is_fresh(handle, flag, now_secs(config), FAILURE_FLAG_SECS) {
        return None;
    }
    let typed = read_cookie(headers, username_cookie_name(config)).unwrap_or_default();
    let typed = url::form_urlencoded::parse(format!("u={typed}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some(typed.unwrap_or_default())
}

/// `GET /login?request=…[&prompt=login]`
pub(crate) async fn show(
    provider: &OAuthServer,
    users: &dyn UserStore,
    config: &Config,
    headers: &HeaderMap,
    query: &str,
) -> HttpResponse {
    let page_error = |status, e: OAuthError| error_page(status, &config.server_name, &e);
    let form = Form::parse(query.as_bytes()).unwrap_or_default();
    let Some(handle) = form.get("request") else {
        return page_error(StatusCode::BAD_REQUEST, OAuthError::invalid_request("no sign-in request"));
    };
    let ctx = match provider.login_context(handle).await {
        Ok(ctx) => ctx,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, e),
    };
    let browser = Browser::known_or_new(config, headers);
    let failed = after_wrong_credentials(config, headers, &browser, handle, form.get("failed"));
    // "Not you?", and its sign-in page again after a wrong password there (the redirect does
    // not carry the prompt): the sign-in page, whoever is signed in. Otherwise a wrong password
    // would land on the consent page of the user who was not you.
    let has_session = read_cookie(headers, session_cookie_name(config)).is_some();
    let another_account = form.get("prompt") == Some("login") || (failed.is_some() && has_session);
    let signed_in = if another_account || failed.is_some() {
        Ok(None)
    } else {
        signed_in_user(provider, users, config, headers).await
    };
    let (user, secret) = match signed_in {
        Ok(Some(found)) => found,
        Ok(None) => {
            let page = match &failed {
                Some(username) => Page::SignIn { username, error: Some(WRONG_CREDENTIALS), another_account },
                None => Page::SignIn { username: "", error: None, another_account },
            };
            return page_response(config, &ctx, handle, &browser, &page, StatusCode::OK);
        }
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    match provider.remembered_consent(handle, &user.id).await {
        Ok(true) => {
            // A new grant of a user whose provider tokens are kept needs tokens of its own:
            // the provider again, once this browser has the cookie its sign-in is bound to
            // (a browser without it gets the consent page, which sets it).
            #[cfg(feature = "jwt")]
            if let Some(upstream) = super::callback::for_new_tokens(provider, &user) {
                if browser.set_cookie.is_none() {
                    return super::callback::start(upstream, config, handle, &browser, Who::SignedIn(&user.id));
                }
                let logout_token = derived_token(LOGOUT_PURPOSE, secret);
                let page = Page::Consent { user: &user, logout_token: &logout_token };
                return page_response(config, &ctx, handle, &browser, &page, StatusCode::OK);
            }
            return match provider.complete_session_authorization(handle, &ctx.csrf_token, &user).await {
                Ok(location) => {
                    tracing::info!(subject = %Escaped(&user.id), "approved from the user's session and remembered consent");
                    redirect(&location)
                }
                Err(e) if e.code == OAuthErrorCode::ServerError => page_error(StatusCode::INTERNAL_SERVER_ERROR, e),
                Err(e) => page_error(StatusCode::BAD_REQUEST, e),
            };
        }
        Ok(false) => {}
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
    let logout_token = derived_token(LOGOUT_PURPOSE, secret);
    let page = Page::Consent { user: &user, logout_token: &logout_token };
    page_response(config, &ctx, handle, &browser, &page, StatusCode::OK)
}

/// The form a sign-in page posted; `Err` is the error page to answer with (boxed: a
/// response is large).
fn page_form(config: &Config, headers: &HeaderMap, body: &[u8]) -> Result<Form, Box<HttpResponse>> {
    if !has_content_type(headers, "application/x-www-form-urlencoded") {
        let e = OAuthError::invalid_request("expected a form submission");
        return Err(Box::new(error_page(StatusCode::UNSUPPORTED_MEDIA_TYPE, &config.server_name, &e)));
    }
    Form::parse(body).map_err(|e| Box::new(error_page(StatusCode::BAD_REQUEST, &config.server_name, &e)))
}

/// The answer to a form post that the browser marks as coming from another site or origin:
/// refused before anything is read or spent.
fn foreign_post(config: &Config) -> HttpResponse {
    let e = OAuthError::invalid_request("the form was not submitted from this server's own page");
    error_page(StatusCode::FORBIDDEN, &config.server_name, &e)
}

/// `POST /login` with the form body already read within the size limit.
pub(crate) async fn submit(
    provider: &OAuthServer,
    users: &dyn UserStore,
    limits: &Limits,
    ip: &str,
    config: &Config,
    headers: &HeaderMap,
    body: &[u8],
) -> HttpResponse {
    let page_error = |status, e: OAuthError| error_page(status, &config.server_name, &e);
    let origin = submission(config, headers);
    if origin == Submission::Foreign {
        return foreign_post(config);
    }
    let form = match page_form(config, headers, body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let (Some(handle), Some(form_token)) = (form.get("request"), form.get("csrf_token")) else {
        return page_error(StatusCode::BAD_REQUEST, OAuthError::invalid_request("the form is incomplete"));
    };
    let ctx = match provider.login_context(handle).await {
        Ok(ctx) => ctx,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, e),
    };
    let Some(browser) = Browser::known(config, headers).filter(|b| b.form_token_matches(handle, form_token)) else {
        let e = OAuthError::invalid_request(
            "the form did not come from this browser's sign-in page (missing cookie or form token); start again from the application",
        );
        return page_error(StatusCode::FORBIDDEN, e);
    };
    #[cfg(feature = "jwt")]
    if let Some(upstream) = provider.upstream()
        && super::callback::chosen(&form)
    {
        let who = if form.get("prompt") == Some("login") { Who::AnyoneAskedAgain } else { Who::Anyone };
        return super::callback::start(upstream, config, handle, &browser, who);
    }
    // The pending request's own token, which the provider checks again.
    let csrf = ctx.csrf_token.as_str();
    let remember = ctx.can_remember && form.get("remember").is_some();
    // The sign-in page posts credentials (possibly empty); the consent-only page posts none
    // and stands on the browser's session, which takes a real submission of our own page.
    let with_credentials = form.get_raw("username").is_some() || form.get_raw("password").is_some();
    let has_session_cookie = read_cookie(headers, session_cookie_name(config)).is_some();
    // A sign-in page (with credentials, or the upstream's) never stands on the session: its
    // Deny after "Not you?" is not the signed-in user's decision.
    let sign_in_page = with_credentials || form.get("upstream").is_some();
    let session_post = !sign_in_page && has_session_cookie;
    if session_post && origin != Submission::SameOrigin {
        return foreign_post(config);
    }
    let session = if session_post {
        match signed_in_user(provider, users, config, headers).await {
            Ok(found) => found,
            Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    } else {
        None
    };
    if form.get("decision") == Some("deny") {
        let Some((user, _)) = &session else {
            // Nobody has authenticated here: the answer is our page, not a redirect.
            return match provider.deny_authorization(handle, csrf).await {
                Ok(_) => declined_page(&config.server_name, &ctx.client_name),
                Err(e) if e.code == OAuthErrorCode::ServerError => page_error(StatusCode::INTERNAL_SERVER_ERROR, e),
                Err(e) => page_error(StatusCode::BAD_REQUEST, e),
            };
        };
        if remember && let Err(e) = provider.forget_consent(handle, &user.id).await {
            return page_error(StatusCode::SERVICE_UNAVAILABLE, e);
        }
        return match provider.deny_authorization(handle, csrf).await {
            Ok(location) => redirect(&location),
            Err(e) => page_error(StatusCode::BAD_REQUEST, e),
        };
    }
    if session_post {
        return match session {
            Some((user, _)) => {
                // The provider again for a user whose tokens there are kept: the new grant
                // needs tokens of its own.
                #[cfg(feature = "jwt")]
                if let Some(upstream) = super::callback::for_new_tokens(provider, &user) {
                    if remember && let Err(e) = provider.remember_consent(handle, &user.id).await {
                        return page_error(StatusCode::SERVICE_UNAVAILABLE, e);
                    }
                    return super::callback::start(upstream, config, handle, &browser, Who::SignedIn(&user.id));
                }
                let res = approve(provider, handle, csrf, &user, remember, config, Approval::FromSession).await;
                if res.status() == StatusCode::FOUND {
                    tracing::info!(subject = %Escaped(&user.id), "signed-in user approved");
                }
                res
            }
            // The session ended while the page was open: ask for the password, count nothing.
            None => {
                let error = Some("Your sign-in has ended. Sign in again.");
                let page = Page::SignIn { username: "", error, another_account: false };
                let mut res = page_response(config, &ctx, handle, &browser, &page, StatusCode::UNAUTHORIZED);
                if let Some(clear) = session_cookie(config, None) {
                    res.headers_mut().append(SET_COOKIE, clear);
                }
                res
            }
        };
    }
    let username = form.get("username").unwrap_or("");
    // Count the attempt before spending an argon2 run on it, so that concurrent guesses
    // cannot all pass a check that only later failures would close.
    let attempt = match limits.sign_in_attempt(username, ip).await {
        Ok(SignInAttempt::Allowed(attempt)) => attempt,
        Ok(SignInAttempt::Limited(retry)) => {
            tracing::warn!(%ip, "sign-in throttled after repeated failures");
            metrics::sign_in(SignInMethod::Password, SignIn::Throttled);
            metrics::rate_limited(Limit::SignIn);
            let secs = retry.as_secs().max(1);
            let e =
                OAuthError::new(OAuthErrorCode::SlowDown, format!("too many failed sign-ins; try again in {secs} s"));
            let mut res = page_error(StatusCode::TOO_MANY_REQUESTS, e);
            set_retry_after(&mut res, retry);
            return res;
        }
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, e.into()),
    };
    let password = Password::new(form.get("password").unwrap_or(""));
    let user = match users.authenticate(username, &password).await {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "user store failed");
            return page_error(StatusCode::SERVICE_UNAVAILABLE, OAuthError::server_error(&e));
        }
    };
    let Some(user) = user else {
        tracing::info!(%ip, "sign-in failed: wrong username or password");
        metrics::sign_in(SignInMethod::Password, SignIn::Failed);
        return match provider.record_failed_login(handle).await {
            Ok(true) => wrong_credentials(config, &browser, handle, username),
            Ok(false) => page_error(
                StatusCode::TOO_MANY_REQUESTS,
                OAuthError::invalid_request("too many wrong passwords for this sign-in request"),
            ),
            Err(e) => page_error(StatusCode::SERVICE_UNAVAILABLE, e),
        };
    };
    if let Err(e) = limits.sign_in_succeeded(username, ip, &attempt).await {
        return page_error(StatusCode::SERVICE_UNAVAILABLE, e.into());
    }
    // The password is right, but the account may be disabled: no code, no session.
    match users.may_sign_in(&user.id).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(subject = %Escaped(&user.id), "sign-in refused: the user may not sign in");
            let e = OAuthError::new(OAuthErrorCode::AccessDenied, "this account may not sign in");
            return page_error(StatusCode::FORBIDDEN, e);
        }
        Err(e) => {
            tracing::error!(error = %e, "user store failed");
            return page_error(StatusCode::SERVICE_UNAVAILABLE, OAuthError::server_error(&e));
        }
    }
    let mut res = approve(provider, handle, csrf, &user, remember, config, Approval::WithPassword).await;
    if res.status() != StatusCode::FOUND {
        return res;
    }
    tracing::info!(subject = %Escaped(&user.id), "user signed in and approved");
    metrics::sign_in(SignInMethod::Password, SignIn::Succeeded);
    begin_session(provider, config, headers, &user, &mut res).await;
    res
}

/// How the user who approves has signed in.
#[derive(Clone, Copy)]
enum Approval {
    /// With their password, just now.
    WithPassword,
    /// Earlier, in this browser's sign-in session.
    FromSession,
}

/// `user` approved the pending authorization: remember the consent if asked, issue the code,
/// and redirect to the client.
async fn approve(
    provider: &OAuthServer,
    handle: &str,
    csrf: &str,
    user: &User,
    remember: bool,
    config: &Config,
    how: Approval,
) -> HttpResponse {
    let page_error = |status, e: OAuthError| error_page(status, &config.server_name, &e);
    // Before the consent is remembered, which would otherwise be kept under that subject.
    if let Approval::WithPassword = how
        && let Err(e) = provider.check_local_user(user)
    {
        return page_error(StatusCode::INTERNAL_SERVER_ERROR, e);
    }
    if remember && let Err(e) = provider.remember_consent(handle, &user.id).await {
        return page_error(StatusCode::SERVICE_UNAVAILABLE, e);
    }
    let completed = match how {
        Approval::WithPassword => provider.complete_authorization(handle, csrf, user).await,
        Approval::FromSession => provider.complete_session_authorization(handle, csrf, user).await,
    };
    match completed {
        Ok(location) => redirect(&location),
        // The user store handed over what the kit cannot store (claims too large): not the user's fault.
        Err(e) if e.code == OAuthErrorCode::ServerError => page_error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => page_error(StatusCode::BAD_REQUEST, e),
    }
}

/// `POST /logout` with the form body already read within the size limit: end this browser's
/// sign-in session, then go back to the sign-in page of the request the form names (or say
/// that the user is signed out).
///
/// The form's token is derived from the session secret, which only this browser's cookie
/// holds, so another site cannot sign the user out: a cross-site POST carries no `SameSite=Lax`
/// cookie, and a same-site one cannot know the token; a post the browser marks as cross-site
/// or from another origin is refused first. Nor does a request without the session cookie get
/// the cookie removed.
pub(crate) async fn logout(provider: &OAuthServer, config: &Config, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
    let page_error = |status, e: OAuthError| error_page(status, &config.server_name, &e);
    if submission(config, headers) == Submission::Foreign {
        return foreign_post(config);
    }
    let form = match page_form(config, headers, body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let mut ended = false;
    if let Some(secret) = read_cookie(headers, session_cookie_name(config)) {
        let expected = derived_token(LOGOUT_PURPOSE, secret);
        if !form.get("logout_token").is_some_and(|t| ct_eq_str(t, &expected)) {
            let e = OAuthError::invalid_request("the sign-out did not come from this browser's page");
            return page_error(StatusCode::FORBIDDEN, e);
        }
        if let Err(e) = provider.end_session(secret).await {
            return page_error(StatusCode::SERVICE_UNAVAILABLE, e);
        }
        tracing::info!("signed out");
        ended = true;
    }
    let mut res = match form.get("request") {
        Some(handle) => match url::Url::parse(&config.url("/login")) {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair("request", handle);
                redirect(url.as_str())
            }
            Err(_) => signed_out_page(config),
        },
        None => signed_out_page(config),
    };
    if ended && let Some(clear) = session_cookie(config, None) {
        res.headers_mut().append(SET_COOKIE, clear);
    }
    res
}
