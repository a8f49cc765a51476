//! Two instances of the real `mcp-server-example` binary over one PostgreSQL database, as
//! behind a load balancer: one `PUBLIC_URL` for both (the load balancer's), whose `Host` the
//! tests send to each instance's own port as a proxy would, and `MCP_STATELESS=true` so that
//! any instance serves any MCP request. Every step of the flow may land on either instance.
//!
//! Runs only with `TEST_DATABASE_URL=postgres://…`; otherwise each test says it was skipped.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{Endpoint, Launch, Pkce, Server, Tokens, oauth_error, tokens_of};

/// How long a revocation on one instance may take to reach another: `Config::token_cache_ttl`
/// (1 s) plus wide slack for a busy machine, since these are separate processes on real time.
/// The exact bound is pinned in-process with a manual clock (the kit's `tests/token.rs`,
/// `a_token_revoked_elsewhere_is_refused_once_the_cache_ttl_is_over`).
const REVOCATION_DEADLINE: Duration = Duration::from_secs(4);
/// How long the tests poll for it before giving up.
const REVOCATION_POLL: Duration = Duration::from_secs(6);

/// Instances A and B on one database, started at the same time (their migrations race), or
/// `None` (and a note) without `TEST_DATABASE_URL`; a set one that is not PostgreSQL fails.
async fn start_pair(test: &str) -> Option<(Server, Server)> {
    let database_url = support::postgres::postgres_url(test)?;
    // Both on ports of the system's choosing, with one public URL (the load balancer's): each
    // answers requests carrying that URL's Host, as behind a proxy that keeps it.
    let a = Launch::local().env("DATABASE_URL", database_url).env("MCP_STATELESS", "true");
    let b = a.clone();
    let (a, b) = tokio::join!(a.start(), b.start());
    Some((a, b))
}

/// Poll `roll_dice` with `token` on `at` until it gets 401; returns how long that took.
async fn time_until_refused(at: &Endpoint, token: &str, since: Instant) -> Duration {
    loop {
        let status = at.roll_dice_status(token).await;
        if status == StatusCode::UNAUTHORIZED {
            return since.elapsed();
        }
        assert_eq!(status, StatusCode::OK, "while waiting for the revocation to reach port {}", at.port);
        assert!(
            since.elapsed() < REVOCATION_POLL,
            "a token revoked on another instance still works on port {} after {REVOCATION_POLL:?}",
            at.port
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flow_across_two_instances() {
    let Some((a, b)) = start_pair("one_flow_across_two_instances").await else { return };

    // Both advertise the same resource: the tokens' audience.
    let prm: serde_json::Value =
        b.get("/.well-known/oauth-protected-resource/mcp").await.json().await.expect("protected-resource metadata");
    assert_eq!(prm["resource"], format!("{}/mcp", a.public_url));

    // Registered on A; authorized and signed in on B; tokens from A; tools on B.
    let client_id = a.register_public().await;
    let (code, verifier) = b.sign_in_code(&client_id, "alice", "password123").await;
    let first = tokens_of(a.exchange(&client_id, &code, &verifier).await, "code from B redeemed on A").await;
    b.assert_rolls_as(&first.access, None, "alice").await;

    // Refreshed on A; the new pair works on both.
    let tokens = tokens_of(a.refresh(&client_id, &first.refresh).await, "refresh on A").await;
    a.assert_rolls_as(&tokens.access, None, "alice").await; // A now has it in its token cache
    b.assert_rolls_as(&tokens.access, None, "alice").await;

    // The access token revoked on B: refused on B at once, on A within the cache delay.
    let res = b.revoke(&client_id, &tokens.access).await;
    assert_eq!(res.status(), StatusCode::OK, "revoke on B");
    let revoked_at = Instant::now();
    assert_eq!(b.roll_dice_status(&tokens.access).await, StatusCode::UNAUTHORIZED, "on the revoking instance");
    let delay = time_until_refused(&a, &tokens.access, revoked_at).await;
    eprintln!("access token revoked on B was refused on A after {delay:?}");
    assert!(delay <= REVOCATION_DEADLINE, "revocation reached A after {delay:?}, more than {REVOCATION_DEADLINE:?}");

    // The refresh token revoked on B (and with it the grant): no refresh on A, and the access
    // token of that grant stops working on A too.
    let tokens = tokens_of(b.refresh(&client_id, &tokens.refresh).await, "refresh on B").await;
    a.assert_rolls_as(&tokens.access, None, "alice").await;
    let res = b.revoke(&client_id, &tokens.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "revoke the refresh token on B");
    let revoked_at = Instant::now();
    let (status, error) = oauth_error(a.refresh(&client_id, &tokens.refresh).await).await;
    assert_eq!((status, error.as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"), "refresh on A after revocation");
    let delay = time_until_refused(&a, &tokens.access, revoked_at).await;
    assert!(delay <= REVOCATION_DEADLINE, "grant revocation reached A after {delay:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_on_two_instances_issue_one_pair() {
    const RACERS: usize = 20;
    let Some((a, b)) = start_pair("concurrent_refreshes_on_two_instances_issue_one_pair").await else { return };
    let client_id = a.register_public().await;
    let tokens = b.sign_in(&client_id, "alice", "password123").await;

    // Every racer is the same client retrying with the same token: each must get 200 and the
    // same pair (the winner's, or its grace-window copy). A refusal would revoke the grant and
    // sign the user out, so none is accepted.
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let at = if i % 2 == 0 { a.at.clone() } else { b.at.clone() };
            let (client_id, refresh) = (client_id.clone(), tokens.refresh.clone());
            tokio::spawn(
                async move { tokens_of(at.refresh(&client_id, &refresh).await, &format!("refresh #{i}")).await },
            )
        })
        .collect();
    let mut pairs: HashSet<Tokens> = HashSet::new();
    for task in tasks {
        pairs.insert(task.await.expect("every concurrent refresh gets 200"));
    }
    assert_eq!(pairs.len(), 1, "{RACERS} concurrent refreshes of one token issued {} distinct pairs", pairs.len());
    let Tokens { access, refresh } = pairs.into_iter().next().expect("one pair");
    assert_ne!(refresh, tokens.refresh, "the refresh rotated");
    // The one pair works on both instances, and its refresh token refreshes again.
    a.assert_rolls_as(&access, None, "alice").await;
    b.assert_rolls_as(&access, None, "alice").await;
    let next = tokens_of(a.refresh(&client_id, &refresh).await, "refresh of the issued pair").await;
    b.assert_rolls_as(&next.access, None, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_code_redemption_on_two_instances_has_one_winner() {
    const RACERS: usize = 10;
    let Some((a, b)) = start_pair("concurrent_code_redemption_on_two_instances_has_one_winner").await else { return };
    let client_id = b.register_public().await;
    // The login page loaded from A, its form submitted to B: sign-ins need no stickiness.
    let Pkce { verifier, challenge } = Pkce::new();
    let page = a.open_login(&client_id, &challenge).await;
    let code = b.code_of(&b.submit_login(&page, "bob", "hunter2").await);

    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let at = if i % 2 == 0 { a.at.clone() } else { b.at.clone() };
            let (client_id, code, verifier) = (client_id.clone(), code.clone(), verifier.clone());
            tokio::spawn(async move {
                let res = at.exchange(&client_id, &code, &verifier).await;
                match res.status() {
                    StatusCode::OK => Ok(tokens_of(res, "concurrent redemption").await),
                    _ => Err(oauth_error(res).await),
                }
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("the redemption task ends") {
            Ok(tokens) => winners.push(tokens),
            Err((status, error)) => {
                assert_eq!((status, error.as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"), "a losing redemption");
            }
        }
    }
    assert_eq!(winners.len(), 1, "{} of {RACERS} concurrent redemptions of one code succeeded", winners.len());
    // Every loser presented a spent code: a replay, which revokes what the code issued
    // (OAuth 2.1 §4.1.3), on both instances (neither had verified the token before).
    let winner = &winners[0];
    assert_eq!(a.roll_dice_status(&winner.access).await, StatusCode::UNAUTHORIZED, "on A");
    assert_eq!(b.roll_dice_status(&winner.access).await, StatusCode::UNAUTHORIZED, "on B");
}
