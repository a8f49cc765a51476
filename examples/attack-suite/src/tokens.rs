//! The token endpoint under attack: PKCE left out or guessed, stolen codes replayed, rotated
//! refresh tokens reused, tokens asked for a foreign audience.
//!
//! The documented rules (DESIGN.md §5, OAuth 2.1 §4.1.3, RFC 9700 §4.14): a code replayed by
//! anyone, the client that holds its verifier included, revokes everything the code issued; the
//! token request repeats the authorization request's `redirect_uri`; reuse of a rotated refresh
//! token revokes its whole family, except for a retry within the grace window, which gets the
//! same pair again.

use reqwest::StatusCode;

use crate::client::{ALICE, App, FOREIGN_RESOURCE, Pkce, Target, Tokens};
use crate::report::{Outcome, Report};

pub(crate) async fn run(t: &Target, app: &App, report: &mut Report) {
    report.record("pkce/token-without-verifier-then-wrong-verifier", missing_and_wrong_verifier(t, app).await);
    report.record("audience/token-foreign-resource", foreign_resource(t, app).await);
    report.record("code-replay/attacker-revokes-grant", replay(t, app, Replayer::Attacker).await);
    report.record("code-replay/holder-replay-revokes-grant", replay(t, app, Replayer::Holder).await);
    report.record("code/token-without-redirect-uri", without_redirect_uri(t, app).await);
    report.record("refresh/reuse-revokes-family", refresh_reuse(t, app).await);
    report.record("refresh/retry-within-grace", refresh_retry(t, app).await);
}

/// A stolen code without the verifier, then with a guessed one; afterwards the code is spent
/// even for its rightful holder (so a verifier cannot be brute-forced).
async fn missing_and_wrong_verifier(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let authorized = t.sign_in(app, ALICE).await?;
    let reply = t.redeem(app, &authorized.code, None).await?;
    o.saw("without code_verifier:");
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    let reply = t.redeem(app, &authorized.code, Some(&Pkce::new().verifier)).await?;
    o.saw("wrong code_verifier:");
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_grant");
    let reply = t.redeem(app, &authorized.code, Some(&authorized.pkce.verifier)).await?;
    o.saw("then the right one:");
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_grant");
    Ok(o)
}

async fn foreign_resource(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let authorized = t.sign_in(app, ALICE).await?;
    let reply = t
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &authorized.code),
            ("redirect_uri", app.redirect_uri()),
            ("client_id", &app.client_id),
            ("code_verifier", &authorized.pkce.verifier),
            ("resource", FOREIGN_RESOURCE),
        ])
        .await?;
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_target");
    Ok(o)
}

/// Who presents a code again after alice's client redeemed it.
enum Replayer {
    /// An attacker who intercepted the code but not the verifier.
    Attacker,
    /// The client that holds the verifier (or a thief who stole both).
    Holder,
}

/// Alice signs in, her client redeems the code, and `who` presents it again: refused, and
/// alice's tokens die with the grant (OAuth 2.1 §4.1.3: whoever replays it).
async fn replay(t: &Target, app: &App, who: Replayer) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let authorized = t.sign_in(app, ALICE).await?;
    let tokens = Tokens::from_reply(&t.redeem(app, &authorized.code, Some(&authorized.pkce.verifier)).await?)?;
    o.token_accepted(&t.mcp_initialize(&tokens.access).await?, "alice's new access token");
    let verifier = match who {
        Replayer::Attacker => Pkce::new().verifier,
        Replayer::Holder => authorized.pkce.verifier.clone(),
    };
    let replay = t.redeem(app, &authorized.code, Some(&verifier)).await?;
    o.saw("replay:");
    o.oauth_error(&replay, StatusCode::BAD_REQUEST, "invalid_grant");
    pair_revoked(&mut o, t, app, &tokens).await?;
    Ok(o)
}

/// The authorization request named `redirect_uri`: a token request without it is refused
/// (RFC 6749 §4.1.3), and the code is spent.
async fn without_redirect_uri(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let authorized = t.sign_in(app, ALICE).await?;
    let reply = t
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &authorized.code),
            ("client_id", &app.client_id),
            ("code_verifier", &authorized.pkce.verifier),
        ])
        .await?;
    o.saw("without redirect_uri:");
    o.oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    let again = t.redeem(app, &authorized.code, Some(&authorized.pkce.verifier)).await?;
    o.saw("then with it:");
    o.oauth_error(&again, StatusCode::BAD_REQUEST, "invalid_grant");
    Ok(o)
}

/// rt0 → rt1 → rt2, then rt0 again: refused, and the newest pair is revoked with the family.
async fn refresh_reuse(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let first = t.tokens(app, ALICE).await?;
    let second = Tokens::from_reply(&t.refresh(app, &first.refresh).await?)?;
    let third = Tokens::from_reply(&t.refresh(app, &second.refresh).await?)?;
    o.token_accepted(&t.mcp_initialize(&third.access).await?, "the newest access token");
    let reuse = t.refresh(app, &first.refresh).await?;
    o.saw("rt0 reused:");
    o.oauth_error(&reuse, StatusCode::BAD_REQUEST, "invalid_grant");
    pair_revoked(&mut o, t, app, &third).await?;
    Ok(o)
}

/// The grant's newest pair died with it: the access token is refused at `/mcp` and the refresh
/// token at `/token`.
async fn pair_revoked(o: &mut Outcome, t: &Target, app: &App, pair: &Tokens) -> anyhow::Result<()> {
    let after = t.mcp_initialize(&pair.access).await?;
    o.saw("the grant's newest access token afterwards:");
    o.revoked_token_refused(&after, pair);
    let refresh = t.refresh(app, &pair.refresh).await?;
    o.saw("its refresh token:");
    o.oauth_error(&refresh, StatusCode::BAD_REQUEST, "invalid_grant");
    Ok(())
}

/// A client that retries a refresh whose response it lost gets the same pair again.
async fn refresh_retry(t: &Target, app: &App) -> anyhow::Result<Outcome> {
    let mut o = Outcome::new();
    let first = t.tokens(app, ALICE).await?;
    let rotated = Tokens::from_reply(&t.refresh(app, &first.refresh).await?)?;
    let retry = t.refresh(app, &first.refresh).await?;
    o.saw(format!("retry: {}", retry.summary()));
    let same = Tokens::from_reply(&retry)
        .is_ok_and(|again| again.access == rotated.access && again.refresh == rotated.refresh);
    o.expect(same, "the retry did not return the pair of the first rotation");
    let check = t.mcp_initialize(&rotated.access).await?;
    o.saw(format!("that access token answers {}", check.status.as_u16()));
    o.expect(check.status == StatusCode::OK, "the retried pair does not work");
    Ok(o)
}
