//! The HTML pages of the sign-in flow: the sign-in and consent form (`assets/login.html`,
//! filled in one pass, every value escaped), and the short notices (an error that must not go
//! back to the client, "declined", "signed out"). Every page is `assets/page.html` around its
//! own `<main>`, with one head (`assets/page_head.html`: viewport, description, `noindex`) and
//! one style sheet (`assets/pages.css`), so that an error looks like the page it interrupts, on
//! a phone too; errors say in a plain sentence what happened and what to do, with the RFC error
//! code below for whoever reads it to a support desk.

use http::StatusCode;
use http::header::SET_COOKIE;

use crate::browser::Browser;
use crate::config::Config;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::http_util::{HttpResponse, escape_html, html, retry_after_unavailable};
use crate::oauth_messages::LoginContext;
use crate::user_store::User;

/// Every page: the shared head, and its own content in `<main>`.
const PAGE: &str = include_str!("../../assets/page.html");
const TEMPLATE: &str = include_str!("../../assets/login.html");
const HEAD: &str = include_str!("../../assets/page_head.html");
const STYLE: &str = include_str!("../../assets/pages.css");

/// The credential fields of the sign-in page. After a wrong password the password field takes
/// the focus (`{{password_state}}`), is marked invalid and points at the alert.
const SIGN_IN_FIELDS: &str = r#"<label for="username">Username</label>
    <input id="username" type="text" name="username" value="{{username}}" autocomplete="username" required{{username_focus}}>
    <label for="password">Password</label>
    <input id="password" type="password" name="password" autocomplete="current-password" required{{password_state}}>"#;

/// The alert above the form; the fields it concerns point at its id.
const ALERT: &str = r#"<div class="error" id="login-error" role="alert">{{message}}</div>"#;

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
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">{{prompt}}
    <button type="submit" name="upstream" value="1">Continue with {{upstream}}</button>
  </form>"#;

/// What the sign-in page shows instead of credentials when all users sign in upstream; its
/// Allow button then reads "Continue with …" and continues there.
/// Its hidden `upstream` field tells this sign-in page's Allow from the consent-only page's.
const UPSTREAM_ONLY: &str = r#"<p class="signed-in">Sign in with your <strong>{{upstream}}</strong> account.</p>
    <input type="hidden" name="upstream" value="1">{{prompt}}"#;

/// In the form that continues at the upstream provider after "Not you?": the provider is
/// asked to sign the user in again (`prompt=login`), not to reuse its own session, which is
/// most likely the account the user just said is not theirs.
const PROMPT_LOGIN: &str = r#"
    <input type="hidden" name="prompt" value="login">"#;

/// The sign-in page's credential fields and what follows its form, for the sign-in methods
/// `ctx` offers; `another_account` after "Not you?".
fn sign_in_methods(
    ctx: &LoginContext,
    fields: String,
    request: &str,
    form_token: &str,
    another_account: bool,
) -> (String, String) {
    let prompt = if another_account { PROMPT_LOGIN } else { "" };
    match ctx.upstream.as_deref().map(escape_html) {
        None => (fields, String::new()),
        Some(name) if !ctx.passwords => {
            (fill(UPSTREAM_ONLY, &[("upstream", &name), ("prompt", prompt)]), String::new())
        }
        Some(name) => {
            let form = fill(
                UPSTREAM_FORM,
                &[
                    ("upstream", &name),
                    ("request", request),
                    ("csrf_token", &escape_html(form_token)),
                    ("prompt", prompt),
                ],
            );
            (fields, form)
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
    /// Username and password (or the upstream provider), with what was typed and what went
    /// wrong; `another_account` when the user came by "Not you?".
    SignIn { username: &'a str, error: Option<&'a str>, another_account: bool },
    /// Allow or deny only, for the user signed in on this browser.
    Consent { user: &'a User, logout_token: &'a str },
}

/// A whole page around `main`; every argument is HTML, escaped by the caller.
fn whole_page(server_name: &str, title: &str, description: &str, main: &str) -> String {
    let head =
        fill(HEAD, &[("title", title), ("server_name", server_name), ("description", description), ("style", STYLE)]);
    fill(PAGE, &[("head", &head), ("main", main)])
}

fn render(config: &Config, ctx: &LoginContext, handle: &str, form_token: &str, page: &Page<'_>) -> String {
    let scopes: String =
        ctx.scopes.iter().map(|s| format!("<li>{}</li>", escape_html(config.scope_description(s)))).collect();
    let server_name = escape_html(&config.server_name);
    let client_name = escape_html(&ctx.client_name);
    let request = escape_html(handle);
    let remember = if ctx.can_remember { fill(REMEMBER, &[("client_name", &client_name)]) } else { String::new() };
    let allow = match (page, ctx.upstream.as_deref()) {
        (Page::SignIn { .. }, Some(name)) if !ctx.passwords => format!("Continue with {}", escape_html(name)),
        _ => "Allow".to_owned(),
    };
    let (title, heading, fields, error, account, footer) = match page {
        Page::SignIn { username, error, another_account } => {
            let (username_focus, password_state) = match error {
                Some(_) => ("", r#" aria-invalid="true" aria-describedby="login-error" autofocus"#),
                None => (" autofocus", ""),
            };
            let fields = fill(
                SIGN_IN_FIELDS,
                &[
                    ("username", &escape_html(username)),
                    ("username_focus", username_focus),
                    ("password_state", password_state),
                ],
            );
            let (fields, account) = sign_in_methods(ctx, fields, &request, form_token, *another_account);
            (
                if error.is_some() { "Error: Sign in" } else { "Sign in" },
                format!("Sign in to {server_name}"),
                fields,
                error.map(|e| fill(ALERT, &[("message", &escape_html(e))])).unwrap_or_default(),
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
    let description = match page {
        Page::SignIn { .. } => format!("Sign in to {server_name} to connect an application to your account."),
        Page::Consent { .. } => format!("Allow an application to access your {server_name} account."),
    };
    let main = fill(
        TEMPLATE,
        &[
            ("heading", &heading),
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
            ("allow", &allow),
        ],
    );
    whole_page(&server_name, title, &description, &main)
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
    let name = escape_html(server_name);
    let description = format!("{title}: a page of {name}'s sign-in.");
    html(status, whole_page(&name, title, &description, main))
}

/// What happened, in a sentence a user can act on; the RFC error code goes below it.
fn plain_sentence(e: &OAuthError) -> &'static str {
    match e.code {
        OAuthErrorCode::InvalidRequest if e.description.contains("expired") => {
            "This sign-in link has expired. Start again from your app."
        }
        OAuthErrorCode::InvalidRequest => "This sign-in request cannot be used. Start again from your app.",
        OAuthErrorCode::AccessDenied => "This account may not sign in here. Ask the people who run this service.",
        OAuthErrorCode::SlowDown => "There were too many attempts. Wait a moment, then try again.",
        OAuthErrorCode::ServerError => "Something went wrong on our side. Try again in a moment.",
        OAuthErrorCode::TemporarilyUnavailable => "The service is busy right now. Try again in a moment.",
        OAuthErrorCode::InvalidClient
        | OAuthErrorCode::UnauthorizedClient
        | OAuthErrorCode::InvalidRedirectUri
        | OAuthErrorCode::InvalidClientMetadata => {
            "The app that sent you here is not set up to sign in with this service. Tell the app's makers."
        }
        _ => "The app that sent you here asked for something this service does not offer. Start again from your app.",
    }
}

/// The body of an error page: the plain sentence, the server's detail, the code.
fn error_main(e: &OAuthError, detail: &str) -> String {
    format!(
        "<h1>This sign-in cannot continue</h1><p>{sentence}</p><p class=\"detail\">{detail}</p>\
         <p class=\"code\">Error code: <code>{code}</code></p>",
        sentence = plain_sentence(e),
        code = e.code.as_str(),
    )
}

/// A page for errors that must not go back to the client (unknown client, bad redirect URI,
/// expired sign-in).
pub(crate) fn error_page(status: StatusCode, server_name: &str, e: &OAuthError) -> HttpResponse {
    // A failing store is our fault, not the request's: 5xx whatever the caller suggested.
    let own = e.code.status();
    let status = if own.is_server_error() { own } else { status };
    let detail = format!("Details: {}.", escape_html(e.description.trim_end_matches('.')));
    let mut res = notice_page(status, server_name, "Error", &error_main(e, &detail));
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
    let detail = format!(
        "<strong>{client}</strong> sent a request that {server} cannot accept: {desc}.",
        server = escape_html(server_name),
        desc = escape_html(e.description.trim_end_matches('.')),
    );
    let main = format!("{}{link}", error_main(e, &detail));
    notice_page(StatusCode::BAD_REQUEST, server_name, "Error", &main)
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
        let page = render(
            &config,
            &ctx,
            "h",
            "tok",
            &Page::SignIn { username: "\"><img>", error: None, another_account: false },
        );
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
        let page = render(
            &config,
            &ctx,
            "the-handle",
            "tok",
            &Page::SignIn { username: "{{username}}", error: None, another_account: false },
        );
        assert!(page.contains("{{csrf_token}} {{request}}"), "the client's name, as it is");
        assert_eq!(page.matches("value=\"tok\"").count(), 1, "the token only where it belongs");
        assert_eq!(fill("a {{x}} {{y}} {{", &[("x", "{{y}}")]), "a {{y}} {{y}} {{");
    }

    #[test]
    fn the_remember_checkbox_is_offered_only_when_allowed_and_never_checked() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let sign_in = Page::SignIn { username: "", error: None, another_account: false };
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
        let sign_in = Page::SignIn { username: "", error: None, another_account: false };
        let mut ctx = context("App", false);
        ctx.upstream = Some("<Acme>".into());
        let page = render(&config, &ctx, "h", "tok", &sign_in);
        assert!(page.contains(r#"type="password""#) && page.contains("Continue with &lt;Acme&gt;"));
        let upstream_form = page.find(r#"name="upstream""#).expect("the upstream button");
        assert!(page.find(r#"type="password""#).is_some_and(|p| p < upstream_form), "the password form first");
        assert_eq!(page.matches(r#"name="csrf_token" value="tok""#).count(), 2, "both forms carry the token");
        ctx.passwords = false;
        let page = render(&config, &ctx, "h", "tok", &sign_in);
        assert!(!page.contains(r#"type="password""#) && !page.contains(r#"class="upstream""#));
        assert_eq!(page.matches(r#"<input type="hidden" name="upstream" value="1">"#).count(), 1, "{page}");
        assert!(page.contains("Sign in with your <strong>&lt;Acme&gt;</strong> account."), "{page}");
        assert!(page.contains(r#"value="allow">Continue with &lt;Acme&gt;</button>"#), "{page}");
        assert!(!page.contains(r#"name="prompt""#), "the provider's session may answer: {page}");
    }

    /// After "Not you?" the form that continues at the provider asks it to sign the user in
    /// again, in both layouts; the password form does not carry it.
    #[test]
    fn after_not_you_the_provider_is_asked_to_sign_in_again() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let sign_in = Page::SignIn { username: "", error: None, another_account: true };
        let mut ctx = context("App", false);
        ctx.upstream = Some("Acme".into());
        let page = render(&config, &ctx, "h", "tok", &sign_in);
        let prompt = page.find(r#"<input type="hidden" name="prompt" value="login">"#).expect("the prompt");
        let upstream_form = page.find(r#"class="upstream""#).expect("the upstream form");
        assert!(prompt > upstream_form && page.matches(r#"name="prompt""#).count() == 1, "{page}");
        ctx.passwords = false;
        let page = render(&config, &ctx, "h", "tok", &sign_in);
        assert_eq!(page.matches(r#"<input type="hidden" name="prompt" value="login">"#).count(), 1, "{page}");
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

    fn sign_in(config: &Config, error: Option<&str>) -> String {
        render(
            config,
            &context("App", false),
            "h",
            "tok",
            &Page::SignIn { username: "alice", error, another_account: false },
        )
    }

    /// The head every page shares: phones lay it out at their width, search engines skip it.
    fn assert_shared_head(page: &str) {
        assert!(page.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#), "{page}");
        assert!(page.contains(r#"<meta name="robots" content="noindex, nofollow">"#), "{page}");
        assert!(page.contains(r#"<meta name="description" content=""#), "{page}");
        assert!(page.contains("<main>") && page.contains("--input-border"), "{page}");
        assert!(!page.contains("{{"), "every placeholder is filled: {page}");
    }

    #[test]
    fn after_a_wrong_password_the_password_field_is_invalid_focused_and_described() {
        let config = Config::new("http://127.0.0.1:1").expect("valid");
        let page = sign_in(&config, None);
        assert_shared_head(&page);
        assert!(page.contains("<title>Sign in · MCP server</title>"));
        assert!(page.contains(r#"autocomplete="username" required autofocus>"#), "the username has the focus");
        assert!(!page.contains(r#"aria-invalid="true""#) && !page.contains(r#"role="alert""#));
        let page = sign_in(&config, Some("Wrong username or password."));
        assert!(page.contains("<title>Error: Sign in · MCP server</title>"), "{page}");
        assert!(page.contains(r#"<div class="error" id="login-error" role="alert">Wrong username or password.</div>"#));
        assert!(page.contains(
            r#"autocomplete="current-password" required aria-invalid="true" aria-describedby="login-error" autofocus>"#
        ));
        assert_eq!(page.matches("autofocus").count(), 1, "only the password field takes the focus");
        assert!(page.contains(r#"value="alice""#), "what was typed stays");
    }

    #[test]
    fn the_consent_page_describes_scopes_in_words() {
        let config =
            Config::new("http://127.0.0.1:1").expect("valid").with_scope_description("notes", "Read <your> notes");
        let mut ctx = context("App", false);
        ctx.scopes = vec!["mcp".into(), "notes".into(), "other".into()];
        let user = User::new("u", "alice");
        let page = render(&config, &ctx, "h", "tok", &Page::Consent { user: &user, logout_token: "t" });
        assert_shared_head(&page);
        assert!(page.contains("<li>Use the tools of this server on your behalf</li>"), "{page}");
        assert!(page.contains("<li>Read &lt;your&gt; notes</li>"), "escaped");
        assert!(page.contains("<li>other</li>"), "a scope without a description shows its name");
        assert!(!page.contains("<li>mcp</li>"));
    }

    async fn body(res: HttpResponse) -> String {
        use http_body_util::BodyExt as _;
        let bytes = res.into_body().collect().await.expect("a body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    #[tokio::test]
    async fn the_error_page_matches_the_sign_in_page_and_speaks_plainly() {
        let expired = OAuthError::invalid_request("this sign-in request is unknown or has expired");
        let res = error_page(StatusCode::BAD_REQUEST, "Acme <Notes>", &expired);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let page = body(res).await;
        assert_shared_head(&page);
        assert!(page.contains("<title>Error · Acme &lt;Notes&gt;</title>"), "{page}");
        assert!(page.contains("<p>This sign-in link has expired. Start again from your app.</p>"), "{page}");
        assert!(page.contains(r#"<p class="code">Error code: <code>invalid_request</code></p>"#), "{page}");
        let busy = OAuthError::new(OAuthErrorCode::TemporarilyUnavailable, "the store is unavailable");
        let res = error_page(StatusCode::BAD_REQUEST, "x", &busy);
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key(http::header::RETRY_AFTER));
        assert!(body(res).await.contains("The service is busy right now. Try again in a moment."));
        for page in [
            body(client_error_page("x", "App", &OAuthError::new(OAuthErrorCode::InvalidScope, "no"), None)).await,
            body(declined_page("x", "App")).await,
            body(signed_out_page(&Config::new("http://127.0.0.1:1").expect("valid"))).await,
        ] {
            assert_shared_head(&page);
        }
    }

    /// The WCAG relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).expect("hex")) / 255.0;
            if c <= 0.039_28 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
    }

    /// The value of `--name` in the `n`th `:root` block of the style sheet (0 light, 1 dark).
    fn colour(n: usize, name: &str) -> &'static str {
        let block = STYLE.split(":root {").nth(n + 1).expect("a :root block");
        let at = block.find(&format!("--{name}: ")).expect(name) + name.len() + 4;
        &block[at..at + 7]
    }

    #[test]
    fn input_and_button_borders_reach_3_to_1_against_the_card_in_both_themes() {
        for theme in [0, 1] {
            let (a, b) = (luminance(colour(theme, "input-border")), luminance(colour(theme, "card")));
            let ratio = (a.max(b) + 0.05) / (a.min(b) + 0.05);
            assert!(ratio >= 3.0, "theme {theme}: {ratio:.2}");
        }
        assert!(STYLE.contains("border: 1px solid var(--input-border)"));
        assert!(STYLE.contains("input:focus-visible, button:focus-visible, a:focus-visible { outline: 3px solid"));
    }
}
