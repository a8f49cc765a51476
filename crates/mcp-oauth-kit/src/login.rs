//! `GET/POST /login`: the sign-in and consent page between `/authorize` and the client's
//! redirect URI.
//!
//! The form carries the pending authorization's handle and its CSRF token; the same token is
//! set as a cookie, so the POST must come from the browser that loaded the page (login CSRF).
//! Wrong passwords and unknown users get the same answer; each pending authorization allows
//! a few attempts before it is dropped.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::config::Config;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http_util::{Form, HttpResponse, escape_html, has_content_type, html, redirect};
use crate::provider::{AuthProvider, LoginContext};
use crate::rate_limit::Limits;
use crate::secret::{Password, TokenHash, ct_eq_str};
use crate::user_store::UserStore;

const TEMPLATE: &str = include_str!("../assets/login.html");

/// One cookie per pending sign-in (named after a digest of its handle), so that two sign-in
/// pages open in one browser do not overwrite each other's token.
fn cookie_name(config: &Config, handle: &str) -> String {
    let tag: String = TokenHash::of(handle).to_hex().chars().take(12).collect();
    // `__Host-` cookies must be Secure, so the prefix is only usable over https.
    if config.secure_cookies() { format!("__Host-mcp_login_{tag}") } else { format!("mcp_login_{tag}") }
}

fn set_cookie(config: &Config, handle: &str, csrf: &str) -> Option<HeaderValue> {
    let secure = if config.secure_cookies() { "; Secure" } else { "" };
    let name = cookie_name(config, handle);
    let value = format!("{name}={csrf}; Path=/; HttpOnly; SameSite=Lax; Max-Age=900{secure}");
    HeaderValue::from_str(&value).ok()
}

fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn render(config: &Config, ctx: &LoginContext, handle: &str, username: &str, error: Option<&str>) -> String {
    let scopes: String = ctx.scopes.iter().map(|s| format!("<li>{}</li>", escape_html(s))).collect();
    let error =
        error.map(|e| format!(r#"<div class="error" role="alert">{}</div>"#, escape_html(e))).unwrap_or_default();
    TEMPLATE
        .replace("{{server_name}}", &escape_html(&config.server_name))
        .replace("{{client_name}}", &escape_html(&ctx.client_name))
        .replace("{{redirect_host}}", &escape_html(&ctx.redirect_host))
        .replace("{{scopes}}", &scopes)
        .replace("{{request}}", &escape_html(handle))
        .replace("{{csrf_token}}", &escape_html(&ctx.csrf_token))
        .replace("{{username}}", &escape_html(username))
        .replace("{{error}}", &error)
}

/// A page for errors that must not go back to the client (unknown client, bad redirect URI,
/// expired sign-in).
pub(crate) fn error_page(status: StatusCode, server_name: &str, e: &OAuthError) -> HttpResponse {
    // A failing store is our fault, not the request's: 5xx whatever the caller suggested.
    let status = match e.code {
        OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable => e.code.status(),
        _ => status,
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"color-scheme\" content=\"light dark\">\
         <title>Cannot continue · {name}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:10vh auto;padding:0 1.5rem}}\
         code{{font-size:.9em}}</style></head><body><h1>This sign-in cannot continue</h1><p>{desc}</p>\
         <p>Error: <code>{code}</code>. Go back to the application and connect again.</p></body></html>",
        name = escape_html(server_name),
        desc = escape_html(&e.description),
        code = e.code.as_str(),
    );
    html(status, body)
}

/// `GET /login?request=…`
pub(crate) async fn show(provider: &dyn AuthProvider, config: &Config, query: &str) -> HttpResponse {
    let form = Form::parse(query.as_bytes()).unwrap_or_default();
    let Some(handle) = form.get("request") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &config.server_name,
            &OAuthError::invalid_request("no sign-in request"),
        );
    };
    match provider.login_context(handle).await {
        Ok(ctx) => {
            let mut res = html(StatusCode::OK, render(config, &ctx, handle, "", None));
            if let Some(cookie) = set_cookie(config, handle, &ctx.csrf_token) {
                res.headers_mut().insert(SET_COOKIE, cookie);
            }
            res
        }
        Err(e) => error_page(StatusCode::BAD_REQUEST, &config.server_name, &e),
    }
}

/// `POST /login` with the form body already read within the size limit.
pub(crate) async fn submit(
    provider: &dyn AuthProvider,
    users: &dyn UserStore,
    limits: &Limits,
    ip: &str,
    config: &Config,
    headers: &HeaderMap,
    body: &[u8],
) -> HttpResponse {
    let page_error = |status, e: OAuthError| error_page(status, &config.server_name, &e);
    if !has_content_type(headers, "application/x-www-form-urlencoded") {
        return page_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            OAuthError::invalid_request("expected a form submission"),
        );
    }
    let form = match Form::parse(body) {
        Ok(f) => f,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, e),
    };
    let (Some(handle), Some(csrf)) = (form.get("request"), form.get("csrf_token")) else {
        return page_error(StatusCode::BAD_REQUEST, OAuthError::invalid_request("the form is incomplete"));
    };
    let ctx = match provider.login_context(handle).await {
        Ok(ctx) => ctx,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, e),
    };
    let cookie_ok = read_cookie(headers, &cookie_name(config, handle)).is_some_and(|c| ct_eq_str(c, &ctx.csrf_token));
    if !ct_eq_str(csrf, &ctx.csrf_token) || !cookie_ok {
        let e = OAuthError::invalid_request(
            "the form did not come from this browser's sign-in page (missing cookie or CSRF token); start again from the application",
        );
        return page_error(StatusCode::FORBIDDEN, e);
    }
    if form.get("decision") == Some("deny") {
        return match provider.deny_authorization(handle, csrf).await {
            Ok(location) => redirect(&location),
            Err(e) => page_error(StatusCode::BAD_REQUEST, e),
        };
    }
    let username = form.get("username").unwrap_or("");
    // Throttle guessing before spending an argon2 run on it. The username key is normalised so
    // that case variants share one budget.
    let user_key = username.to_lowercase();
    if let Err(retry) = limits.login_failures_by_user.check(&user_key).and(limits.login_failures_by_ip.check(ip)) {
        tracing::warn!(%ip, "sign-in throttled after repeated failures");
        let e = OAuthError::new(
            OAuthErrorCode::SlowDown,
            format!("too many failed sign-ins; try again in {} s", retry.as_secs().max(1)),
        );
        let mut res = page_error(StatusCode::TOO_MANY_REQUESTS, e);
        if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
            res.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return res;
    }
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
        let _ = limits.login_failures_by_user.hit(&user_key);
        let _ = limits.login_failures_by_ip.hit(ip);
        return match provider.record_failed_login(handle).await {
            Ok(true) => {
                let page = render(config, &ctx, handle, username, Some("Wrong username or password."));
                html(StatusCode::UNAUTHORIZED, page)
            }
            Ok(false) => page_error(
                StatusCode::TOO_MANY_REQUESTS,
                OAuthError::invalid_request("too many wrong passwords for this sign-in request"),
            ),
            Err(e) => page_error(StatusCode::SERVICE_UNAVAILABLE, e),
        };
    };
    limits.login_failures_by_user.reset(&user_key);
    match provider.complete_authorization(handle, csrf, &user).await {
        Ok(location) => {
            tracing::info!(subject = %user.id, "user signed in and approved");
            redirect(&location)
        }
        Err(e) => page_error(StatusCode::BAD_REQUEST, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; mcp_login=abc; b=2"));
        assert_eq!(read_cookie(&h, "mcp_login"), Some("abc"));
        assert_eq!(read_cookie(&h, "missing"), None);
    }

    #[test]
    fn the_page_escapes_client_supplied_text() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let ctx = LoginContext {
            client_name: "<script>alert(1)</script>".into(),
            redirect_host: "evil\"host".into(),
            scopes: vec!["mcp".into()],
            csrf_token: "tok".into(),
        };
        let page = render(&config, &ctx, "h", "\"><img>", None);
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("\"><img>"));
        assert!(!page.contains("{{"), "every placeholder is filled");
    }
}
