//! The login form: forged submissions (the form token is bound to the browser's `mcp_browser`
//! cookie and the sign-in request; posts marked cross-site or from another origin are
//! refused), Deny before signing in (never a redirect to the client), clickjacking headers,
//! username enumeration by answer or by timing, and password guessing.
//!
//! The server allows, by default, 5 failed sign-ins per (username, client address) and 20 per
//! client address in 15 minutes (and past 20 per username, growing delays). The suite guesses
//! from one address, so the (username, address) limit is the one its guessing probes meet:
//! they show that an attacker is throttled. This module spends 14 + 5 = 19 of the address's
//! 20, then the concurrent burst may take the last one, so the suite needs a freshly started
//! server with the default limits, and no other probe may fail a sign-in.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use crate::client::{ALICE, App, BOB, LoginPage, Pkce, Reply, Target, unique};
use crate::report::{Outcome, Report};

/// Samples per side of the timing comparison.
const TIMING_SAMPLES: usize = 7;
/// The slower median may be at most this many times the faster one.
const TIMING_FACTOR: f64 = 2.0;
/// Wrong passwords tried for bob before giving up on seeing a 429.
const MAX_GUESSES: usize = 6;
/// Wrong passwords sent at once for one username.
const BURST: usize = 12;
/// Failed sign-ins the server allows per (username, address): all of the suite's guesses come
/// from one address.
const PER_USER_LIMIT: usize = 5;

pub(crate) async fn run(t: &Target, app: &App, report: &mut Report) {
    report.record("login/page-hardening", page_hardening(t, app).await);
    report.record("login-csrf/no-cookie", csrf(t, app, Forgery::NoCookie).await);
    report.record("login-csrf/other-requests-token", csrf(t, app, Forgery::OtherRequestsToken).await);
    report.record("login-csrf/other-requests-cookie", csrf(t, app, Forgery::OtherRequestsCookie).await);
    report.record("login-csrf/token-from-another-browser", csrf(t, app, Forgery::OtherBrowser).await);
    report.record("login-csrf/sec-fetch-site-same-site", csrf(t, app, Forgery::SameSite).await);
    report.record("login-csrf/origin-null", csrf(t, app, Forgery::NullOrigin).await);
    report.record("login-csrf/foreign-origin", csrf(t, app, Forgery::ForeignOrigin).await);
    report.record("login-csrf/genuine-submission-works", csrf(t, app, Forgery::None).await);
    report.record("login/deny-without-sign-in", deny_without_sign_in(t, app).await);
}

/// Run last among the sign-in probes: they lock bob out at the suite's address for 15 minutes.
pub(crate) async fn run_guessing(t: &Target, app: &App, report: &mut Report) {
    match enumeration(t, app).await {
        Ok((same_answer, timing)) => {
            report.record("login/enumeration-same-answer", Ok(same_answer));
            report.record("login/enumeration-timing", Ok(timing));
        }
        Err(e) => report.record("login/enumeration", Err(e)),
    }
    report.record("login/brute-force-throttled", brute_force(t, app).await);
    report.record("login/concurrent-guesses-throttled", concurrent_guesses(t, app).await);
}

async fn open(t: &Target, app: &App) -> anyhow::Result<LoginPage> {
    t.open_login(&t.authorization_params(app, &Pkce::new(), &unique("state"))).await
}

/// The page cannot be framed, cached or read by scripts, and its cookie is not sent
/// cross-site.
async fn page_hardening(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let login = open(t, app).await?;
    let page = &login.page;
    let csp = page.header("content-security-policy").unwrap_or_default();
    o.saw(format!("CSP {csp:?}"));
    o.expect(csp.contains("frame-ancestors 'none'"), "no CSP frame-ancestors 'none'");
    o.expect(page.header("x-frame-options").is_some_and(|v| v.eq_ignore_ascii_case("deny")), "no X-Frame-Options DENY");
    o.expect(page.header("cache-control").is_some_and(|v| v.contains("no-store")), "the page may be cached");
    let cookie = page.header("set-cookie").unwrap_or_default();
    o.saw(format!("Set-Cookie {}", cookie.split_once('=').map_or("", |(name, _)| name)));
    let lower = cookie.to_ascii_lowercase();
    o.expect(lower.contains("httponly"), "the CSRF cookie is not HttpOnly");
    o.expect(lower.contains("samesite=lax") || lower.contains("samesite=strict"), "the CSRF cookie has no SameSite");
    o.expect(login.field("csrf_token").is_some_and(|v| v.len() >= 32), "no CSRF token in the form");
    Ok(o)
}

/// How a forged sign-in differs from the genuine one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forgery {
    /// The genuine submission (the control).
    None,
    /// A cross-site POST: the browser's SameSite=Lax cookie is not sent.
    NoCookie,
    /// The cookie of this request, the CSRF token of another one.
    OtherRequestsToken,
    /// The attacker's own request and token, the victim's cookie.
    OtherRequestsCookie,
    /// The form token read in the attacker's browser, posted from the victim's (whose own
    /// cookie is sent): a sibling subdomain that opened `/authorize` for itself.
    OtherBrowser,
    /// A sibling subdomain's page: `Sec-Fetch-Site: same-site`.
    SameSite,
    /// A sandboxed or privacy-stripped page: `Origin: null`.
    NullOrigin,
    /// Another site's page: `Origin: https://evil.example`.
    ForeignOrigin,
}

/// Posts correct credentials through a forged form: 403 and no code, or for
/// [`Forgery::None`] the code.
async fn csrf(t: &Target, app: &App, forgery: Forgery) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let state = unique("state");
    let victim = t.open_login(&t.authorization_params(app, &Pkce::new(), &state)).await?;
    let other = open(t, app).await?;
    let mut fields = victim.submission(ALICE.name, ALICE.password);
    let mut cookie = victim.cookie().map(str::to_owned);
    let own_origin = t.origin();
    let mut headers = vec![("origin", own_origin.as_str())];
    let take = |page: &LoginPage, name: &str| page.field(name).unwrap_or_default().to_owned();
    match forgery {
        Forgery::None => {}
        Forgery::NoCookie => cookie = None,
        Forgery::OtherRequestsToken => set(&mut fields, "csrf_token", take(&other, "csrf_token")),
        Forgery::OtherRequestsCookie => {
            set(&mut fields, "request", take(&other, "request"));
            set(&mut fields, "csrf_token", take(&other, "csrf_token"));
        }
        // `other` was opened in a browser of its own: its cookie is the victim's browser here.
        Forgery::OtherBrowser => cookie = other.cookie().map(str::to_owned),
        Forgery::SameSite => headers = vec![("sec-fetch-site", "same-site")],
        Forgery::NullOrigin => headers = vec![("origin", "null")],
        Forgery::ForeignOrigin => headers = vec![("origin", "https://evil.example")],
    }
    let reply = t.post_login_with(&victim, &fields, cookie.as_deref(), &headers).await?;
    if forgery == Forgery::None {
        o.code_redirect(&reply, app.redirect_uri(), &state, t.issuer());
    } else {
        o.refusal_page(&reply, StatusCode::FORBIDDEN, "invalid_request");
    }
    Ok(o)
}

/// Deny on the sign-in page, with no password typed: nobody authenticated, so the answer is
/// the server's own page and never a redirect to the client's (anyone's) redirect URI.
async fn deny_without_sign_in(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let page = open(t, app).await?;
    let reply = t.post_login(&page, &page.form.submission("", "", "deny"), page.cookie()).await?;
    o.saw(reply.summary());
    o.expect(reply.status == StatusCode::OK, format!("expected our 200 page, got {}", reply.summary()));
    o.expect(reply.location().is_none(), "Deny redirected before anyone signed in (Location header present)");
    o.expect(reply.body.contains("declined"), "the page does not say the request was declined");
    o.nothing_issued(&reply);
    Ok(o)
}

fn set(fields: &mut [(String, String)], name: &str, value: String) {
    for (k, v) in fields.iter_mut() {
        if k == name {
            *v = value.clone();
        }
    }
}

/// One timed sign-in attempt.
async fn timed(t: &Target, page: &LoginPage, user: &str, password: &str) -> anyhow::Result<(Reply, Duration)> {
    let started = Instant::now();
    let reply = t.post_login(page, &page.submission(user, password), page.cookie()).await?;
    Ok((reply, started.elapsed()))
}

/// Unknown users and wrong passwords of a known user must look alike: same status (303 back
/// to the sign-in page), same page there (except the echoed username), and about the same time (the server runs argon2 for
/// unknown users too).
///
/// Each round is one fresh sign-in request with one attempt of each kind, in alternating
/// order (so load drifts hit both sides), then alice's right password, which clears her
/// per-user failure count. Each unknown name is new, so none reaches its own limit.
async fn enumeration(t: &Target, app: &App) -> anyhow::Result<(Outcome, Outcome)> {
    let mut answer = Outcome::new();
    let mut timing = Outcome::new();
    let wrong_password = "Tr0ub4dor&3-wrong";
    let (mut unknown_times, mut known_times) = (Vec::new(), Vec::new());
    let mut compared = false;
    for round in 0..TIMING_SAMPLES {
        let page = open(t, app).await?;
        let stranger = format!("mallory{round}");
        let (unknown, known) = if round % 2 == 0 {
            let u = timed(t, &page, &stranger, wrong_password).await?;
            (u, timed(t, &page, ALICE.name, wrong_password).await?)
        } else {
            let k = timed(t, &page, ALICE.name, wrong_password).await?;
            (timed(t, &page, &stranger, wrong_password).await?, k)
        };
        unknown_times.push(unknown.1);
        known_times.push(known.1);
        let (unknown, known) = (unknown.0, known.0);
        answer.nothing_issued(&unknown);
        answer.nothing_issued(&known);
        answer.expect(
            unknown.status == known.status,
            format!("round {round}: unknown user {} vs wrong password {}", unknown.status, known.status),
        );
        if !compared {
            compared = true;
            answer.saw(format!("both {}", known.status));
            answer.expect(
                known.status == StatusCode::SEE_OTHER,
                format!("expected 303 back to the sign-in page, got {}", known.status),
            );
            // The pages the browser then shows.
            let known = t.page_after(&known, page.cookie()).await?;
            let unknown = t.page_after(&unknown, page.cookie()).await?;
            answer.expect(!known.body.contains(wrong_password), "the page echoes the password");
            answer.expect(known.body.contains("Wrong username or password"), "the page does not say what went wrong");
            let same = unknown.body.replace(&stranger, "{user}") == known.body.replace(ALICE.name, "{user}");
            answer.saw(if same { "identical pages apart from the username" } else { "the pages differ" });
            answer.expect(same, "the page for an unknown user differs from the one for a wrong password");
        }
        // The right password resets alice's per-user failure count (5 allowed).
        let reset = t.post_login(&page, &page.submission(ALICE.name, ALICE.password), page.cookie()).await?;
        if reset.issued() != Some("an authorization code") {
            anyhow::bail!("alice's own sign-in after round {round} failed: {}", reset.summary());
        }
    }
    let (u, k) = (median(&mut unknown_times), median(&mut known_times));
    let ratio = u.max(k).as_secs_f64() / u.min(k).as_secs_f64().max(1e-6);
    timing.saw(format!(
        "median of {TIMING_SAMPLES}: unknown user {} ms, wrong password {} ms (ratio {ratio:.2})",
        u.as_millis(),
        k.as_millis()
    ));
    timing.expect(ratio <= TIMING_FACTOR, format!("the timings differ by more than a factor of {TIMING_FACTOR}"));
    Ok((answer, timing))
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Guessing bob's password, each guess from a fresh sign-in request (as an attacker would, to
/// dodge the per-request limit): 429 with `Retry-After` after a few, and then even the right
/// password gets no code.
async fn brute_force(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let mut throttled = None;
    for guess in 1..=MAX_GUESSES {
        let page = open(t, app).await?;
        let reply = t.post_login(&page, &page.submission(BOB.name, &format!("guess-{guess}")), page.cookie()).await?;
        o.nothing_issued(&reply);
        o.no_server_error(&reply);
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((guess, reply));
            break;
        }
    }
    let Some((guess, reply)) = throttled else {
        o.expect(false, format!("{MAX_GUESSES} wrong passwords and still no 429"));
        return Ok(o);
    };
    let retry_after = reply.header(RETRY_AFTER.as_str()).and_then(|v| v.parse::<u64>().ok());
    o.saw(format!("429 at guess {guess}, Retry-After {retry_after:?} s"));
    o.expect(retry_after.is_some_and(|s| s >= 1), "the 429 has no valid Retry-After");
    let page = open(t, app).await?;
    let right = t.post_login(&page, &page.submission(BOB.name, BOB.password), page.cookie()).await?;
    o.saw(format!("then the right password: {}", right.summary()));
    o.expect(right.status == StatusCode::TOO_MANY_REQUESTS, "the right password got through the lockout");
    o.nothing_issued(&right);
    Ok(o)
}

/// Guesses sent all at once, each from its own sign-in request, so that none waits for
/// another's failure to be counted: at most the per-username limit may be answered "wrong
/// password" (fewer once the address's budget runs out), the rest 429 with `Retry-After`.
async fn concurrent_guesses(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let username = unique("mallory-burst");
    let mut pages = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        pages.push(open(t, app).await?);
    }
    let guesses = pages.iter().enumerate().map(|(i, page)| {
        let fields = page.submission(&username, &format!("guess-{i}"));
        async move { t.post_login(page, &fields, page.cookie()).await }
    });
    let (mut wrong, mut throttled) = (0, 0);
    for reply in futures::future::join_all(guesses).await {
        let reply = reply?;
        o.nothing_issued(&reply);
        o.no_server_error(&reply);
        match reply.status {
            StatusCode::SEE_OTHER => wrong += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                throttled += 1;
                let retry_after = reply.header(RETRY_AFTER.as_str()).and_then(|v| v.parse::<u64>().ok());
                o.expect(retry_after.is_some_and(|s| s >= 1), "a 429 has no valid Retry-After");
            }
            other => o.expect(false, format!("expected 303 (wrong password) or 429, got {other}")),
        }
    }
    o.saw(format!("{BURST} guesses at once: {wrong} answered 'wrong password', {throttled} × 429"));
    o.expect(wrong <= PER_USER_LIMIT, format!("{wrong} guesses were checked, over the limit of {PER_USER_LIMIT}"));
    o.expect(throttled >= BURST - PER_USER_LIMIT, "too few guesses were throttled");
    Ok(o)
}
