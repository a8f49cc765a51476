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
//! A password sign-in also starts a sign-in session: the `mcp_session` cookie (`HttpOnly`,
//! `SameSite=Lax`, `Path=/`; `__Host-` and `Secure` over https) holds a random secret whose
//! digest the store keeps. For a browser with a session, `GET /login` asks no password: it
//! shows a consent-only page ("Signed in as alice", Allow / Deny, "Not you?"), or, when the
//! provider says the user remembered their consent to this client for these scopes
//! ([`OAuthServer::remembered_consent`]), approves at once and redirects to the client.
//! `prompt=login` (the "Not you?" link) ignores the session. The decision rules are the
//! provider's; this file only reads cookies and forms and renders pages.

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::authorization_server::OAuthServer;
use crate::browser::{Browser, Submission, read_cookie, submission};
use crate::config::Config;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::escaped::Escaped;
use crate::http_util::{
    Form, HttpResponse, escape_html, has_content_type, html, redirect, retry_after_unavailable, set_retry_after,
};
use crate::oauth_messages::LoginContext;
use crate::rate_limit::{Limits, SignInAttempt};
use crate::secret::{Password, ct_eq_str, derived_token};
use crate::user_store::{User, UserStore};

const TEMPLATE: &str = include_str!("../../assets/login.html");

/// The credential fields of the sign-in page.
const SIGN_IN_FIELDS: &str = r#"<label for="username">Username</label>
    <input id="username" type="text" name="username" value="{{username}}" autocomplete="username" required autofocus>
    <label for="password">Password</label>
    <input id="password" type="password" name="password" autocomplete="current-password" required>"#;

/// What the consent-only page shows instead of credentials.
const SIGNED_IN: &str = r#"<p class="signed-in">Signed in as <strong>{{username}}</strong>.</p>"#;

/// The "remember" checkbox: unchecked, and outside the `decision` buttons, so that a client
/// that posts the form with its default fields gets exactly what it got before.
const REMEMBER: &str = r#"<label class="remember"><input type="checkbox" name="remember" value="1"> <span>Remember this decision for <strong>{{client_name}}</strong></span></label>"#;

/// Below the consent-only form: another account, or sign out. After the main form, so that a
/// script that submits the first form on the page submits the consent.
const ACCOUNT: &str = r#"<div class="account">
    <a href="/login?request={{request_url}}&amp;prompt=login">Not you? Sign in as someone else</a>
    <form method="post" action="/logout">
      <input type="hidden" name="request" value="{{request}}">
      <input type="hidden" name="logout_token" value="{{logout_token}}">
      <button type="submit">Sign out</button>
    </form>
  </div>"#;

/// What the form of the sign-out page's token is derived for.
const LOGOUT_PURPOSE: &str = "logout";

/// Fill `{{name}}` placeholders in one pass: text that was put in is never scanned again, so a
/// client name that contains `{{csrf_token}}` stays that text. Unknown placeholders stay.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            rest = &rest[start..];
            break;
        };
        let name = &after[..end];
        match values.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The sign-in session's cookie: `__Host-` (and so `Secure`, host-only, `Path=/`) over https.
fn session_cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() { "__Host-mcp_session" } else { "mcp_session" }
}

/// `Set-Cookie` for a new session, or with an empty value and `Max-Age=0` to remove it.
fn session_cookie(config: &Config, secret: Option<&str>) -> Option<HeaderValue> {
    let secure = if config.secure_cookies() { "; Secure" } else { "" };
    let name = session_cookie_name(config);
    let (value, max_age) = match secret {
        Some(s) => (s, config.session_ttl.as_secs()),
        None => ("", 0),
    };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")).ok()
}

/// Which page to render for a pending authorization.
enum Page<'a> {
    /// Username and password, with what was typed and what went wrong.
    SignIn { username: &'a str, error: Option<&'a str> },
    /// Allow or deny only, for the user signed in on this browser.
    Consent { user: &'a User, logout_token: &'a str },
}

fn render(config: &Config, ctx: &LoginContext, handle: &str, form_token: &str, page: &Page<'_>) -> String {
    let scopes: String = ctx.scopes.iter().map(|s| format!("<li>{}</li>", escape_html(s))).collect();
    let server_name = escape_html(&config.server_name);
    let client_name = escape_html(&ctx.client_name);
    let request = escape_html(handle);
    let remember = if ctx.can_remember { fill(REMEMBER, &[("client_name", &client_name)]) } else { String::new() };
    let (title, heading, fields, error, account, footer) = match page {
        Page::SignIn { username, error } => (
            "Sign in",
            format!("Sign in to {server_name}"),
            fill(SIGN_IN_FIELDS, &[("username", &escape_html(username))]),
            error.map(|e| format!(r#"<div class="error" role="alert">{}</div>"#, escape_html(e))).unwrap_or_default(),
            String::new(),
            "Only sign in if you started this connection yourself.",
        ),
        Page::Consent { user, logout_token } => {
            let request_url: String = url::form_urlencoded::byte_serialize(handle.as_bytes()).collect();
            let account = fill(
                ACCOUNT,
                &[
                    ("request_url", &escape_html(&request_url)),
                    ("request", &request),
                    ("logout_token", &escape_html(logout_token)),
                ],
            );
            (
                "Allow access",
                format!("Allow access to {server_name}"),
                fill(SIGNED_IN, &[("username", &escape_html(&user.username))]),
                String::new(),
                account,
                "Only allow access if you started this connection yourself.",
            )
        }
    };
    fill(
        TEMPLATE,
        &[
            ("title", title),
            ("heading", &heading),
            ("server_name", &server_name),
            ("client_name", &client_name),
            ("redirect_host", &escape_html(&ctx.redirect_host)),
            ("scopes", &scopes),
            ("request", &request),
            ("csrf_token", &escape_html(form_token)),
            ("fields", &fields),
            ("remember", &remember),
            ("error", &error),
            ("account", &account),
            ("footer", footer),
        ],
    )
}

/// A page of the form, with this browser's form token (and its cookie, when it is new).
fn page_response(
    config: &Config,
    ctx: &LoginContext,
    handle: &str,
    browser: &Browser,
    page: &Page<'_>,
    status: StatusCode,
) -> HttpResponse {
    let mut res = html(status, render(config, ctx, handle, &browser.form_token(handle), page));
    if let Some(cookie) = browser.set_cookie.clone() {
        res.headers_mut().insert(SET_COOKIE, cookie);
    }
    res
}

/// One of the kit's short pages: `title` and `main` are HTML, escaped by the caller.
fn notice_page(status: StatusCode, server_name: &str, title: &str, main: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"color-scheme\" content=\"light dark\">\
         <title>{title} · {name}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:10vh auto;padding:0 1.5rem}}\
         code{{font-size:.9em}}</style></head><body>{main}</body></html>",
        name = escape_html(server_name),
    );
    html(status, body)
}

/// A page for errors that must not go back to the client (unknown client, bad redirect URI,
/// expired sign-in).
pub(crate) fn error_page(status: StatusCode, server_name: &str, e: &OAuthError) -> HttpResponse {
    // A failing store is our fault, not the request's: 5xx whatever the caller suggested.
    let status = match e.code {
        OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable => e.code.status(),
        _ => status,
    };
    let main = format!(
        "<h1>This sign-in cannot continue</h1><p>{desc}</p>\
         <p>Error: <code>{code}</code>. Go back to the application and connect again.</p>",
        desc = escape_html(&e.description),
        code = e.code.as_str(),
    );
    let mut res = notice_page(status, server_name, "Cannot continue", &main);
    retry_after_unavailable(&mut res, e);
    res
}

/// The error of a valid client's authorization request, shown on this server's page rather
/// than redirected (RFC 9700 §4.11.2): it names the client and what went wrong. `back` is the
/// error redirect to the client, offered as a link only to a browser with a live sign-in.
pub(crate) fn client_error_page(
    server_name: &str,
    client_name: &str,
    e: &OAuthError,
    back: Option<&str>,
) -> HttpResponse {
    let client = escape_html(client_name);
    let link =
        back.map(|url| format!(r#"<p><a href="{}">Return to {client}</a></p>"#, escape_html(url))).unwrap_or_default();
    let main = format!(
        "<h1>This sign-in cannot continue</h1><p><strong>{client}</strong> sent a request that {server} cannot accept: \
         {desc}</p><p>Error: <code>{code}</code>. Go back to the application and connect again.</p>{link}",
        server = escape_html(server_name),
        desc = escape_html(&e.description),
        code = e.code.as_str(),
    );
    notice_page(StatusCode::BAD_REQUEST, server_name, "Cannot continue", &main)
}

/// What Deny leads to when no user has authenticated here: this server's own page, never the
/// client's redirect URI.
fn declined_page(server_name: &str, client_name: &str) -> HttpResponse {
    let main = format!(
        "<h1>Request declined</h1><p>You declined the request of <strong>{client}</strong>. \
         Nothing was shared with it. You can close this window.</p>",
        client = escape_html(client_name),
    );
    notice_page(StatusCode::OK, server_name, "Declined", &main)
}

/// Whether this browser has a live sign-in session of a user the store still knows.
pub(crate) async fn has_live_session(
    provider: &OAuthServer,
    users: Option<&dyn UserStore>,
    config: &Config,
    headers: &HeaderMap,
) -> bool {
    match users {
        Some(users) => matches!(signed_in_user(provider, users, config, headers).await, Ok(Some(_))),
        None => false,
    }
}

/// The user signed in on this browser, with their session secret: the session cookie names a
/// current session, and the user store still knows its user and lets them sign in. `Ok(None)`
/// without a cookie or for an ended session; a user who no longer exists or may no longer sign
/// in ends the session.
async fn signed_in_user<'h>(
    provider: &OAuthServer,
    users: &dyn UserStore,
    config: &Config,
    headers: &'h HeaderMap,
) -> Result<Option<(User, &'h str)>, OAuthError> {
    let Some(secret) = read_cookie(headers, session_cookie_name(config)) else { return Ok(None) };
    let Some(user) = provider.session_user(secret).await? else { return Ok(None) };
    let current = match users.find_by_id(&user.id).await.map_err(|e| OAuthError::server_error(&e))? {
        Some(current) if users.may_sign_in(&current.id).await.map_err(|e| OAuthError::server_error(&e))? => current,
        _ => {
            provider.end_session(secret).await?;
            return Ok(None);
        }
    };
    Ok(Some((current, secret)))
}

/// `GET /login?request=…[&prompt=login]`
pub(crate) async fn show(
    provider: &OAuthServer,
    users: Option<&dyn UserStore>,
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
    // "Not you?": the password page, whoever is signed in.
    let signed_in = match users {
        Some(users) if form.get("prompt") != Some("login") => signed_in_user(provider, users, config, headers).await,
        _ => Ok(None),
    };
    let browser = Browser::known_or_new(config, headers);
    let (user, secret) = match signed_in {
        Ok(Some(found)) => found,
        Ok(None) => {
            let page = Page::SignIn { username: "", error: None };
            return page_response(config, &ctx, handle, &browser, &page, StatusCode::OK);
        }
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    match provider.remembered_consent(handle, &user.id).await {
        Ok(true) => {
            return match provider.complete_authorization(handle, &ctx.csrf_token, &user).await {
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
    // The pending request's own token, which the provider checks again.
    let csrf = ctx.csrf_token.as_str();
    let remember = ctx.can_remember && form.get("remember").is_some();
    // The sign-in page posts credentials (possibly empty); the consent-only page posts none
    // and stands on the browser's session, which takes a real submission of our own page.
    let with_credentials = form.get_raw("username").is_some() || form.get_raw("password").is_some();
    let has_session_cookie = read_cookie(headers, session_cookie_name(config)).is_some();
    let session_post = !with_credentials && has_session_cookie;
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
                let res = approve(provider, handle, csrf, &user, remember, config).await;
                if res.status() == StatusCode::FOUND {
                    tracing::info!(subject = %Escaped(&user.id), "signed-in user approved");
                }
                res
            }
            // The session ended while the page was open: ask for the password, count nothing.
            None => {
                let page = Page::SignIn { username: "", error: Some("Your sign-in has ended. Sign in again.") };
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
        return match provider.record_failed_login(handle).await {
            Ok(true) => {
                let page = Page::SignIn { username, error: Some("Wrong username or password.") };
                page_response(config, &ctx, handle, &browser, &page, StatusCode::UNAUTHORIZED)
            }
            Ok(false) => page_error(
                StatusCode::TOO_MANY_REQUESTS,
                OAuthError::invalid_request("too many wrong passwords for this sign-in request"),
            ),
            Err(e) => page_error(StatusCode::SERVICE_UNAVAILABLE, e),
        };
    };
    if let Err(e) = limits.sign_in_succeeded(username, &attempt).await {
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
    let mut res = approve(provider, handle, csrf, &user, remember, config).await;
    if res.status() != StatusCode::FOUND {
        return res;
    }
    tracing::info!(subject = %Escaped(&user.id), "user signed in and approved");
    // A new session for whoever signed in; the one this browser had before (perhaps someone
    // else's: "Not you?") ends.
    if let Some(old) = read_cookie(headers, session_cookie_name(config))
        && let Err(e) = provider.end_session(old).await
    {
        tracing::warn!(error = %e, "could not end the previous session");
    }
    match provider.start_session(&user).await {
        Ok(Some(secret)) => {
            if let Some(cookie) = session_cookie(config, Some(&secret)) {
                res.headers_mut().append(SET_COOKIE, cookie);
            }
        }
        Ok(None) => {}
        // The approval stands; the user just signs in again next time.
        Err(e) => tracing::warn!(error = %e, "could not start a sign-in session"),
    }
    res
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
) -> HttpResponse {
    let page_error = |status, e: OAuthError| error_page(status, &config.server_name, &e);
    if remember && let Err(e) = provider.remember_consent(handle, &user.id).await {
        return page_error(StatusCode::SERVICE_UNAVAILABLE, e);
    }
    match provider.complete_authorization(handle, csrf, user).await {
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

fn signed_out_page(config: &Config) -> HttpResponse {
    let main = format!(
        "<h1>You are signed out</h1><p>Connecting an application to {name} will ask for your password again.</p>",
        name = escape_html(&config.server_name),
    );
    notice_page(StatusCode::OK, &config.server_name, "Signed out", &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(client_name: &str, can_remember: bool) -> LoginContext {
        let mut ctx = LoginContext::new(client_name, "evil\"host", vec!["mcp".into()], "tok");
        ctx.can_remember = can_remember;
        ctx
    }

    #[test]
    fn the_page_escapes_client_supplied_text() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let ctx = context("<script>alert(1)</script>", true);
        let page = render(&config, &ctx, "h", "tok", &Page::SignIn { username: "\"><img>", error: None });
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("\"><img>"));
        assert!(!page.contains("{{"), "every placeholder is filled");
        let user = User::new("u", "<i>eve</i>");
        let page = render(&config, &ctx, "h", "tok", &Page::Consent { user: &user, logout_token: "t" });
        assert!(page.contains("&lt;i&gt;eve&lt;/i&gt;") && !page.contains("<i>eve"));
        assert!(!page.contains("{{"), "every placeholder is filled");
    }

    #[test]
    fn text_put_into_the_page_is_not_filled_again() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let ctx = context("{{csrf_token}} {{request}}", false);
        let page = render(&config, &ctx, "the-handle", "tok", &Page::SignIn { username: "{{username}}", error: None });
        assert!(page.contains("{{csrf_token}} {{request}}"), "the client's name, as it is");
        assert_eq!(page.matches("value=\"tok\"").count(), 1, "the token only where it belongs");
        assert_eq!(fill("a {{x}} {{y}} {{", &[("x", "{{y}}")]), "a {{y}} {{y}} {{");
    }

    #[test]
    fn the_remember_checkbox_is_offered_only_when_allowed_and_never_checked() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let sign_in = Page::SignIn { username: "", error: None };
        let page = render(&config, &context("App", true), "h", "tok", &sign_in);
        assert!(
            page.contains(r#"name="remember""#) && page.contains("Remember this decision for <strong>App</strong>")
        );
        assert!(!page.contains("checked"));
        let page = render(&config, &context("App", false), "h", "tok", &sign_in);
        assert!(!page.contains(r#"name="remember""#));
    }

    #[test]
    fn the_consent_page_has_no_password_and_offers_another_account() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let user = User::new("u", "alice");
        let page =
            render(&config, &context("App", false), "a+b", "tok", &Page::Consent { user: &user, logout_token: "lt" });
        assert!(!page.contains("type=\"password\""));
        assert!(page.contains("Signed in as <strong>alice</strong>"));
        assert!(page.contains("/login?request=a%2Bb&amp;prompt=login"));
        assert!(page.contains(r#"action="/logout""#) && page.contains(r#"value="lt""#));
        let consent_form = page.find(r#"action="/login""#).expect("the consent form");
        assert!(consent_form < page.find(r#"action="/logout""#).expect("the sign-out form"), "consent first");
    }

    #[test]
    fn session_cookies_follow_the_public_url() {
        let mut config = Config::new("http://127.0.0.1:1").expect("valid");
        config.session_ttl = std::time::Duration::from_secs(60);
        let set = session_cookie(&config, Some("mcp_ss_x")).expect("a header");
        assert_eq!(set, "mcp_session=mcp_ss_x; Path=/; HttpOnly; SameSite=Lax; Max-Age=60");
        let clear = session_cookie(&config, None).expect("a header");
        assert_eq!(clear, "mcp_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
        let config = Config::new("https://mcp.example.com").expect("valid");
        let set = session_cookie(&config, Some("mcp_ss_x")).expect("a header");
        assert!(set.to_str().unwrap_or_default().starts_with("__Host-mcp_session=mcp_ss_x; Path=/;"));
        assert!(set.to_str().unwrap_or_default().ends_with("; Secure"));
    }
}
