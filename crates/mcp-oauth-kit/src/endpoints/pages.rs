//! The HTML pages of the sign-in flow: the sign-in and consent form
//! (`assets/login.html`, filled in one pass, every value escaped), and the short notices
//! (an error that must not go back to the client, "declined", "signed out").

use http::StatusCode;
use http::header::SET_COOKIE;

use crate::browser::Browser;
use crate::config::Config;
use crate::error::OAuthError;
use crate::http_util::{HttpResponse, escape_html, html, retry_after_unavailable};
use crate::oauth_messages::LoginContext;
use crate::user_store::User;

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

/// Sign-in at the upstream provider, beside the password form: a form of its own, so that
/// Enter in the password field still submits the password form.
const UPSTREAM_FORM: &str = r#"<form method="post" action="/login" class="upstream">
    <input type="hidden" name="request" value="{{request}}">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <button type="submit" name="upstream" value="1">Continue with {{upstream}}</button>
  </form>"#;

/// What the sign-in page shows instead of credentials when all users sign in upstream:
/// "Allow" continues there.
const UPSTREAM_ONLY: &str =
    r#"<p class="signed-in">Allow continues to sign in with <strong>{{upstream}}</strong>.</p>"#;

/// The sign-in page's credential fields and what follows its form, for the sign-in methods
/// `ctx` offers.
fn sign_in_methods(ctx: &LoginContext, username: &str, request: &str, form_token: &str) -> (String, String) {
    let fields = || fill(SIGN_IN_FIELDS, &[("username", &escape_html(username))]);
    match ctx.upstream.as_deref().map(escape_html) {
        None => (fields(), String::new()),
        Some(name) if !ctx.passwords => (fill(UPSTREAM_ONLY, &[("upstream", &name)]), String::new()),
        Some(name) => {
            let form = fill(
                UPSTREAM_FORM,
                &[("upstream", &name), ("request", request), ("csrf_token", &escape_html(form_token))],
            );
            (fields(), form)
        }
    }
}

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

/// Which page to render for a pending authorization.
pub(crate) enum Page<'a> {
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
        Page::SignIn { username, error } => {
            let (fields, account) = sign_in_methods(ctx, username, &request, form_token);
            (
                "Sign in",
                format!("Sign in to {server_name}"),
                fields,
                error
                    .map(|e| format!(r#"<div class="error" role="alert">{}</div>"#, escape_html(e)))
                    .unwrap_or_default(),
                account,
                "Only sign in if you started this connection yourself.",
            )
        }
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
pub(crate) fn page_response(
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
    let own = e.code.status();
    let status = if own.is_server_error() { own } else { status };
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
pub(crate) fn declined_page(server_name: &str, client_name: &str) -> HttpResponse {
    let main = format!(
        "<h1>Request declined</h1><p>You declined the request of <strong>{client}</strong>. \
         Nothing was shared with it. You can close this window.</p>",
        client = escape_html(client_name),
    );
    notice_page(StatusCode::OK, server_name, "Declined", &main)
}

/// The page after a sign-out that names no pending sign-in.
pub(crate) fn signed_out_page(config: &Config) -> HttpResponse {
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
    fn the_upstream_sign_in_is_offered_beside_or_instead_of_passwords() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let sign_in = Page::SignIn { username: "", error: None };
        let mut ctx = context("App", false);
        ctx.upstream = Some("<Acme>".into());
        let page = render(&config, &ctx, "h", "tok", &sign_in);
        assert!(page.contains(r#"type="password""#) && page.contains("Continue with &lt;Acme&gt;"));
        let upstream_form = page.find(r#"name="upstream""#).expect("the upstream button");
        assert!(page.find(r#"type="password""#).is_some_and(|p| p < upstream_form), "the password form first");
        assert_eq!(page.matches(r#"name="csrf_token" value="tok""#).count(), 2, "both forms carry the token");
        ctx.passwords = false;
        let page = render(&config, &ctx, "h", "tok", &sign_in);
        assert!(!page.contains(r#"type="password""#) && !page.contains(r#"name="upstream""#));
        assert!(page.contains("Allow continues to sign in with <strong>&lt;Acme&gt;</strong>"));
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
}
