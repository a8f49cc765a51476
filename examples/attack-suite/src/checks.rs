//! The answers the RFCs require, as checks on a [`Reply`]: each records what it saw and
//! fails the probe when the server answered otherwise.

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;

use crate::client::{Reply, Tokens, query_param};
use crate::report::Outcome;

/// The shortest access-token lifetime under which a 401 after revocation proves revocation:
/// far longer than any probe takes.
const MIN_LIFETIME_SECS: u64 = 600;

impl Outcome {
    /// The reply is not a server error (the server did not fall over).
    pub(crate) fn no_server_error(&mut self, reply: &Reply) {
        self.expect(!reply.status.is_server_error(), format!("server error {}", reply.summary()));
    }

    /// Nothing was issued: no code, token or registration.
    pub(crate) fn nothing_issued(&mut self, reply: &Reply) {
        if let Some(what) = reply.issued() {
            self.expect(false, format!("the server issued {what}"));
        }
    }

    /// An RFC 6749 §5.2 / RFC 7591 §3.2.2 JSON error: exactly `status` and `code`, nothing
    /// issued.
    pub(crate) fn oauth_error(&mut self, reply: &Reply, status: StatusCode, code: &str) {
        self.saw(reply.summary());
        self.expect(reply.status == status, format!("expected {status}, got {}", reply.summary()));
        let got = reply.error_code();
        self.expect(got.as_deref() == Some(code), format!("expected error {code}, got {got:?}"));
        self.nothing_issued(reply);
    }

    /// RFC 6749 §4.1.2 with RFC 9207: a 302 to exactly `redirect_uri`, carrying a code, `state`
    /// unchanged and `iss`, and no `error`.
    pub(crate) fn code_redirect(&mut self, reply: &Reply, redirect_uri: &str, state: &str, issuer: &str) {
        self.saw(reply.summary());
        self.expect(reply.status == StatusCode::FOUND, format!("expected 302, got {}", reply.status));
        let Some(mut to) = reply.location().and_then(|l| url::Url::parse(l).ok()) else {
            return self.expect(false, "no absolute Location");
        };
        let param = |name| query_param(&to, name);
        self.expect(param("code").is_some(), "the redirect carries no code");
        self.expect(param("error").is_none(), "the redirect carries an error");
        self.expect(param("state").as_deref() == Some(state), "state did not come back unchanged");
        self.expect(param("iss").as_deref() == Some(issuer), "iss is not the issuer");
        to.set_query(None);
        self.expect(to.as_str() == redirect_uri, format!("redirected to {to}, not to {redirect_uri}"));
    }

    /// The authorization server's error page (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2: never
    /// redirect before a user has signed in): 400, HTML naming `invalid_request`, no `Location`.
    pub(crate) fn error_page(&mut self, reply: &Reply) {
        self.refusal_page(reply, StatusCode::BAD_REQUEST, "invalid_request");
    }

    /// An HTML page refusing the request with `status` and `code`, without redirecting.
    pub(crate) fn refusal_page(&mut self, reply: &Reply, status: StatusCode, code: &str) {
        self.saw(reply.summary());
        self.expect(reply.status == status, format!("expected {status}, got {}", reply.status));
        self.expect(reply.location().is_none(), "the error was redirected (Location header present)");
        let html = reply.header("content-type").is_some_and(|c| c.starts_with("text/html"));
        self.expect(html, "the error is not an HTML page");
        let shown = reply.page_error_code();
        self.expect(shown == Some(code), format!("expected the page to name {code}, it names {shown:?}"));
        self.nothing_issued(reply);
    }

    /// RFC 6750 §3 / RFC 9728 §5.1: 401 with a `Bearer` challenge naming the resource
    /// metadata, and `error="invalid_token"` when a token was presented.
    pub(crate) fn bearer_refused(&mut self, reply: &Reply, token_presented: bool) {
        let challenge = reply.header(WWW_AUTHENTICATE.as_str()).unwrap_or_default();
        self.saw(format!("{} WWW-Authenticate: {challenge}", reply.status.as_u16()));
        self.expect(reply.status == StatusCode::UNAUTHORIZED, format!("expected 401, got {}", reply.summary()));
        self.expect(challenge.starts_with("Bearer "), "no Bearer challenge");
        self.expect(challenge.contains("resource_metadata=\""), "the challenge does not name resource_metadata");
        if token_presented {
            self.expect(challenge.contains("error=\"invalid_token\""), "the challenge lacks error=\"invalid_token\"");
        }
    }

    /// [`Outcome::bearer_refused`] for `tokens`' access token after its revocation, and
    /// conclusive: the server issues long-lived tokens and less than half the lifetime had
    /// passed, so the 401 cannot be plain expiry.
    pub(crate) fn revoked_token_refused(&mut self, reply: &Reply, tokens: &Tokens) {
        self.bearer_refused(reply, true);
        let age = tokens.requested.elapsed();
        self.saw(format!("{} ms after the token was requested", age.as_millis()));
        self.expect(
            tokens.expires_in >= MIN_LIFETIME_SECS,
            format!(
                "inconclusive: tokens live {} s; run this server with the default lifetime (at least {MIN_LIFETIME_SECS} s)",
                tokens.expires_in
            ),
        );
        self.expect(
            age.as_millis() * 2 < u128::from(tokens.expires_in) * 1000,
            format!(
                "inconclusive: the token may have expired ({} ms of its {} s lifetime had passed)",
                age.as_millis(),
                tokens.expires_in
            ),
        );
    }

    /// The guard let `token` in: `initialize` answered 200 (a control step: without it a
    /// later 401 would prove nothing).
    pub(crate) fn token_accepted(&mut self, reply: &Reply, which: &str) {
        self.expect(
            reply.status == StatusCode::OK,
            format!("control failed: {which} should work but /mcp answered {}", reply.summary()),
        );
    }
}
