//! The sign-in session's cookie: setting and clearing it, starting a session for whoever has
//! just signed in (with a password or at the upstream provider, the same way), and reading it
//! back into the user signed in on this browser. The session itself is
//! [`OAuthServer`](crate::auth::OAuthServer)'s; this file knows only the cookie.

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::authorization_server::OAuthServer;
use crate::browser::read_cookie;
use crate::config::Config;
use crate::error::OAuthError;
use crate::http_util::HttpResponse;
use crate::user_store::{User, UserStore};

/// The sign-in session's cookie: `__Host-` (and so `Secure`, host-only, `Path=/`) over https.
pub(crate) fn session_cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() { "__Host-mcp_session" } else { "mcp_session" }
}

/// `Set-Cookie` for a new session, or with an empty value and `Max-Age=0` to remove it.
pub(crate) fn session_cookie(config: &Config, secret: Option<&str>) -> Option<HeaderValue> {
    let secure = if config.secure_cookies() { "; Secure" } else { "" };
    let name = session_cookie_name(config);
    let (value, max_age) = match secret {
        Some(s) => (s, config.session_ttl.as_secs()),
        None => ("", 0),
    };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")).ok()
}

/// `user` has just authenticated on this browser and `res` is the successful answer: start
/// their sign-in session, its cookie on `res`, and end the one this browser had before
/// (perhaps someone else's: "Not you?"). A failure leaves `res` as it is: the user just signs
/// in again next time.
pub(crate) async fn begin_session(
    provider: &OAuthServer,
    config: &Config,
    headers: &HeaderMap,
    user: &User,
    res: &mut HttpResponse,
) {
    if let Some(old) = read_cookie(headers, session_cookie_name(config))
        && let Err(e) = provider.end_session(old).await
    {
        tracing::warn!(error = %e, "could not end the previous session");
    }
    match provider.start_session(user).await {
        Ok(Some(secret)) => {
            if let Some(cookie) = session_cookie(config, Some(&secret)) {
                res.headers_mut().append(SET_COOKIE, cookie);
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not start a sign-in session"),
    }
}

/// Whether this browser has a live sign-in session of a user the store still knows.
pub(crate) async fn has_live_session(
    provider: &OAuthServer,
    users: &dyn UserStore,
    config: &Config,
    headers: &HeaderMap,
) -> bool {
    matches!(signed_in_user(provider, users, config, headers).await, Ok(Some(_)))
}

/// The user signed in on this browser, with their session secret: the session cookie names a
/// current session, and the user store still knows its user and lets them sign in (an upstream
/// provider's user, whom no user store knows, is the session's, with the claims of their
/// sign-in). `Ok(None)` without a cookie or for an ended session; a user who no longer exists
/// or may no longer sign in ends the session.
pub(crate) async fn signed_in_user<'h>(
    provider: &OAuthServer,
    users: &dyn UserStore,
    config: &Config,
    headers: &'h HeaderMap,
) -> Result<Option<(User, &'h str)>, OAuthError> {
    let Some(secret) = read_cookie(headers, session_cookie_name(config)) else { return Ok(None) };
    let Some(user) = provider.session_user(secret).await? else { return Ok(None) };
    if provider.is_upstream_subject(&user.id) {
        return Ok(Some((user, secret)));
    }
    let current = match users.find_by_id(&user.id).await.map_err(|e| OAuthError::server_error(&e))? {
        Some(current) if users.may_sign_in(&current.id).await.map_err(|e| OAuthError::server_error(&e))? => current,
        _ => {
            provider.end_session(secret).await?;
            return Ok(None);
        }
    };
    Ok(Some((current, secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
