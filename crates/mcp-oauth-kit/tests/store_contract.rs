//! The [`Store`] contract: one generic walk through every method and invariant of the trait
//! (expiry, single redemption, replay detection, rotation outcomes, revocation, sign-in
//! sessions, MCP sessions, remembered consent, rate-limit windows and their rollover, upstream
//! tokens and their compare-and-swap, sweeping expired state and unused clients), run against
//! [`MemoryStore`], a SQLite file, and PostgreSQL when `TEST_DATABASE_URL` is set.
//! Then what only a database has: a restart, migrations run twice or at once, and
//! [`open_store`]'s URL handling.
//!
//! The PostgreSQL tests share their database with whatever else runs on it: every id and hash
//! is unique to the run, nothing is truncated, and counts that another run could change are
//! checked only on stores of their own.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod store_support;

use mcp_oauth_kit::store::{
    AccessTokenRecord, ClientRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, McpSessionRecord, MemoryStore,
    PendingAuthorization, RateLimitWindow, RefreshRotation, RefreshTokenRecord, RevokedToken, SessionRecord, SqlStore,
    Store, StoreError, TokenHash, open_store,
};
use store_support::{
    HOUR, TempDir, code, hash, insert_code, insert_tokens, ms, now, pair, pending_for, unique, upstream,
};

const MINUTE: Duration = Duration::from_secs(60);

/// A rate-limit key as the kit makes them: a policy prefix and a digest.
fn limit_key() -> String {
    format!("test:{}", hash("limit").to_hex())
}

/// A grant of a user of its own, ending in 90 days, with claims of several JSON types (values
/// every store must keep as they were).
fn grant(scopes: &[&str]) -> Grant {
    let mut g = Grant::new(
        unique("grant"),
        unique("subject"),
        "carol",
        unique("client"),
        scopes.iter().map(|s| s.to_string()).collect(),
        "https://mcp.example.com/mcp",
    );
    g.expires_at = now() + 90 * 24 * HOUR;
    let claims = serde_json::json!({
        "email": "carol@example.com",
        "roles": ["admin", "dev"],
        "org": { "id": 7, "name": "Ünïcode & \"quotes\"" },
        "verified": true,
    });
    g.claims = claims.as_object().cloned().expect("an object");
    g
}

/// The PostgreSQL URL to test against, or `None` (after saying so) when there is none; a set
/// `TEST_DATABASE_URL` that is not PostgreSQL fails the test.
fn postgres_url(test: &str) -> Option<String> {
    store_support::postgres::postgres_url(test)
}

/// Every method of the trait, and its invariants. `private` says the store is this test's
/// alone, so that counts over the whole store can be checked exactly.
async fn contract(store: &dyn Store, private: bool) {
    let now = now();
    clients(store, now).await;
    pending(store, now).await;
    codes(store, now).await;
    tokens(store, now).await;
    rotation(store, now).await;
    forgetting_sealed_successors(store, now, private).await;
    revocation(store, now).await;
    subject_revocation(store, now).await;
    sessions(store, now).await;
    mcp_sessions(store, now).await;
    mcp_sessions_end_with_their_grant_or_user(store, now).await;
    consents(store, now).await;
    rate_limits(store, now).await;
    upstream_tokens(store, now).await;
    sweeping(store, now, private).await;
    unused_clients(store, now, private).await;
    if private {
        // Last: it ends everything of everyone, which a shared store's other tests would see.
        revocation_of_everything(store, now).await;
    }
}

async fn clients(store: &dyn Store, now: SystemTime) {
    let mut full = ClientRecord::new(
        unique("client"),
        "client_secret_basic",
        vec!["http://127.0.0.1/cb".into(), "https://app.example.com/cb?x=1".into()],
        vec!["authorization_code".into(), "refresh_token".into()],
        now,
    );
    full.secret_hash = Some(hash("secret"));
    full.client_name = Some("Ünïcode client ✓".into());
    full.scope = Some("mcp admin".into());
    let bare = ClientRecord::new(unique("client"), "none", vec!["http://localhost/cb".into()], vec![], now);
    store.insert_client(full.clone()).await.expect("insert client");
    store.insert_client(bare.clone()).await.expect("insert client");
    assert_eq!(store.client(&full.client_id).await.expect("client"), Some(full));
    assert_eq!(store.client(&bare.client_id).await.expect("client"), Some(bare));
    assert_eq!(store.client(&unique("client")).await.expect("client"), None);
}

async fn pending(store: &dyn Store, now: SystemTime) {
    let mut p = PendingAuthorization::new(
        hash("pending"),
        unique("client"),
        "http://127.0.0.1:9999/cb",
        "c".repeat(43),
        "https://mcp.example.com/mcp",
        unique("csrf"),
        now + HOUR,
    );
    p.state = Some("st-1".into());
    p.scopes = vec!["mcp".into(), "admin".into()];
    p.redirect_uri_given = false;
    store.insert_pending(p.clone()).await.expect("insert pending");
    assert_eq!(store.pending(&p.id_hash, now).await.expect("pending"), Some(p.clone()));
    assert_eq!(store.pending(&p.id_hash, p.expires_at).await.expect("pending"), None, "expired at expires_at");
    assert_eq!(store.pending(&hash("pending"), now).await.expect("pending"), None);

    assert_eq!(store.record_failed_login(&p.id_hash).await.expect("failed login"), 1);
    assert_eq!(store.record_failed_login(&p.id_hash).await.expect("failed login"), 2);
    assert_eq!(store.record_failed_login(&hash("pending")).await.expect("failed login"), u32::MAX);
    p.failed_logins = 2;
    assert_eq!(store.pending(&p.id_hash, now).await.expect("pending"), Some(p.clone()));

    assert_eq!(store.take_pending(&p.id_hash, now, None).await.expect("take"), Some(p.clone()));
    assert_eq!(store.take_pending(&p.id_hash, now, None).await.expect("take"), None, "taken once only");
    assert_eq!(store.pending(&p.id_hash, now).await.expect("pending"), None);
    assert_eq!(store.record_failed_login(&p.id_hash).await.expect("failed login"), u32::MAX);

    // Approval: the code is stored with the taking, and only by the one taker.
    let c = code(&grant(&["mcp"]), now + HOUR);
    let approved = pending_for(&c, now + HOUR);
    store.insert_pending(approved.clone()).await.expect("insert pending");
    let taken = store.take_pending(&approved.id_hash, now, Some(c.clone())).await.expect("take");
    assert_eq!(taken, Some(approved.clone()));
    assert_eq!(store.code(&c.hash, now).await.expect("code"), Some(c.clone()));
    let late_code = code(&c.grant, now + HOUR);
    let taken = store.take_pending(&approved.id_hash, now, Some(late_code.clone())).await.expect("take");
    assert_eq!(taken, None);
    assert_eq!(store.code(&late_code.hash, now).await.expect("code"), None, "no code without a pending sign-in");
    // One transaction: a code that cannot be stored (its hash is taken) leaves the sign-in
    // pending, to be approved again.
    let retry = pending_for(&c, now + HOUR);
    store.insert_pending(retry.clone()).await.expect("insert pending");
    let clash = store.take_pending(&retry.id_hash, now, Some(c.clone())).await;
    assert!(matches!(clash, Err(StoreError::Backend(_))), "duplicate code hash: {clash:?}");
    assert_eq!(store.pending(&retry.id_hash, now).await.expect("pending"), Some(retry.clone()), "still pending");
    let fresh = code(&c.grant, now + HOUR);
    assert_eq!(store.take_pending(&retry.id_hash, now, Some(fresh.clone())).await.expect("take"), Some(retry));
    assert_eq!(store.code(&fresh.hash, now).await.expect("code"), Some(fresh));
    // An expired sign-in stores no code.
    let expired_code = code(&c.grant, now + HOUR);
    let expiring = pending_for(&expired_code, now + ms(10));
    store.insert_pending(expiring.clone()).await.expect("insert pending");
    let taken = store.take_pending(&expiring.id_hash, now + ms(10), Some(expired_code.clone())).await.expect("take");
    assert_eq!(taken, None);
    assert_eq!(store.code(&expired_code.hash, now).await.expect("code"), None);

    // An expired one is not handed out, and is gone afterwards.
    let mut late = p.clone();
    late.id_hash = hash("pending");
    late.expires_at = now + ms(10);
    store.insert_pending(late.clone()).await.expect("insert pending");
    assert_eq!(store.take_pending(&late.id_hash, now + ms(10), None).await.expect("take"), None);
    assert_eq!(store.record_failed_login(&late.id_hash).await.expect("failed login"), u32::MAX, "removed");
}

async fn codes(store: &dyn Store, now: SystemTime) {
    let c = code(&grant(&["mcp"]), now + HOUR);
    insert_code(store, &c).await;
    assert_eq!(store.redeem_code(&c.hash, now, None).await.expect("redeem"), CodeRedemption::Redeemed(c.clone()));
    assert_eq!(
        store.redeem_code(&c.hash, now + ms(1), None).await.expect("redeem"),
        CodeRedemption::Replayed(c.clone())
    );
    assert_eq!(
        store.redeem_code(&c.hash, now + ms(2), None).await.expect("redeem"),
        CodeRedemption::Replayed(c.clone())
    );
    assert_eq!(
        store.redeem_code(&c.hash, c.expires_at, None).await.expect("redeem"),
        CodeRedemption::Unknown,
        "expired"
    );
    assert_eq!(store.redeem_code(&hash("code"), now, None).await.expect("redeem"), CodeRedemption::Unknown);

    let expired = code(&grant(&[]), now + ms(10));
    insert_code(store, &expired).await;
    assert_eq!(store.redeem_code(&expired.hash, now + ms(10), None).await.expect("redeem"), CodeRedemption::Unknown);
    assert_eq!(store.redeem_code(&expired.hash, now + ms(20), None).await.expect("redeem"), CodeRedemption::Unknown);
    assert_eq!(store.code(&expired.hash, now).await.expect("code"), Some(expired.clone()));
    assert_eq!(store.code(&expired.hash, now + ms(10)).await.expect("code"), None, "expired at expires_at");
    assert_eq!(store.code(&hash("code"), now).await.expect("code"), None);
    // Looked up, used or not: the server reads a code before deciding on it.
    assert_eq!(store.code(&c.hash, now).await.expect("code"), Some(c.clone()), "used");

    // What the token request must repeat, and a grant without an end, come back as stored.
    let mut unnamed = code(&grant(&["mcp"]), now + HOUR);
    unnamed.redirect_uri_given = false;
    // The "no end" of `Grant::new`.
    unnamed.grant.expires_at = Grant::new("g", "s", "u", "c", vec![], "r").expires_at;
    insert_code(store, &unnamed).await;
    assert_eq!(store.code(&unnamed.hash, now).await.expect("code"), Some(unnamed.clone()));
    let endless = pair(&unnamed.grant, now + HOUR);
    insert_tokens(store, &endless).await;
    assert_eq!(store.refresh_grant(&endless.refresh.hash, now).await.expect("grant"), Some(unnamed.grant));

    // Redeeming stores the tokens it is given, in the same transaction.
    let g = grant(&["mcp"]);
    let (with_tokens, tokens) = (code(&g, now + HOUR), pair(&g, now + HOUR));
    insert_code(store, &with_tokens).await;
    let outcome = store.redeem_code(&with_tokens.hash, now, Some(tokens.clone())).await.expect("redeem");
    assert_eq!(outcome, CodeRedemption::Redeemed(with_tokens.clone()));
    assert_eq!(store.access_token(&tokens.access.hash, now).await.expect("access"), Some(tokens.access.clone()));
    assert_eq!(store.refresh_grant(&tokens.refresh.hash, now).await.expect("grant"), Some(g.clone()));
    // A replay's tokens are not stored; an unknown code's neither.
    let replayed = pair(&g, now + HOUR);
    let outcome = store.redeem_code(&with_tokens.hash, now, Some(replayed.clone())).await.expect("redeem");
    assert_eq!(outcome, CodeRedemption::Replayed(with_tokens));
    assert_eq!(store.access_token(&replayed.access.hash, now).await.expect("access"), None);
    assert_eq!(store.refresh_grant(&replayed.refresh.hash, now).await.expect("grant"), None);
    let unknown = pair(&g, now + HOUR);
    let outcome = store.redeem_code(&hash("code"), now, Some(unknown.clone())).await.expect("redeem");
    assert_eq!(outcome, CodeRedemption::Unknown);
    assert_eq!(store.access_token(&unknown.access.hash, now).await.expect("access"), None);

    // One transaction: tokens that cannot be stored (a hash already taken) leave the code
    // unused, so that nothing is half-written and the exchange can be tried again.
    let retried = code(&g, now + HOUR);
    insert_code(store, &retried).await;
    let clash = IssuedTokens::new(
        AccessTokenRecord::new(tokens.access.hash, g.clone(), now + HOUR),
        RefreshTokenRecord::new(hash("refresh"), g.clone(), now + HOUR),
    );
    let refused = store.redeem_code(&retried.hash, now, Some(clash.clone())).await;
    assert!(matches!(refused, Err(StoreError::Backend(_))), "duplicate access hash: {refused:?}");
    assert_eq!(store.refresh_grant(&clash.refresh.hash, now).await.expect("grant"), None, "nothing half-written");
    let again = pair(&g, now + HOUR);
    let outcome = store.redeem_code(&retried.hash, now, Some(again.clone())).await.expect("redeem");
    assert_eq!(outcome, CodeRedemption::Redeemed(retried), "the code was left unused");
    assert_eq!(store.access_token(&again.access.hash, now).await.expect("access"), Some(again.access));
}

async fn tokens(store: &dyn Store, now: SystemTime) {
    let g = grant(&["mcp", "admin"]);
    let t = pair(&g, now + HOUR);
    insert_tokens(store, &t).await;
    assert_eq!(store.access_token(&t.access.hash, now).await.expect("access"), Some(t.access.clone()));
    assert_eq!(store.access_token(&t.access.hash, t.access.expires_at).await.expect("access"), None, "expired");
    assert_eq!(store.access_token(&t.refresh.hash, now).await.expect("access"), None, "a refresh token is no access");
    assert_eq!(store.access_token(&hash("access"), now).await.expect("access"), None);
    assert_eq!(store.refresh_grant(&t.refresh.hash, now).await.expect("grant"), Some(g.clone()));
    assert_eq!(store.refresh_grant(&t.refresh.hash, t.refresh.expires_at).await.expect("grant"), None, "expired");
    assert_eq!(store.refresh_grant(&t.access.hash, now).await.expect("grant"), None);
    assert_eq!(store.refresh_grant(&hash("refresh"), now).await.expect("grant"), None);
}

/// The sweeper drops a rotation's sealed successor once the grace window is over; a retry
/// then gets none, and the rest of the record (its grant, when it was rotated) stays.
async fn forgetting_sealed_successors(store: &dyn Store, now: SystemTime, private: bool) {
    let g = grant(&["mcp"]);
    let old = pair(&g, now + HOUR);
    insert_tokens(store, &old).await;
    // Later than any rotation of the other sections, so that the cut-offs below tell them apart.
    let at = now + HOUR / 2;
    let outcome = store.rotate_refresh(&old.refresh.hash, at, pair(&g, now + 2 * HOUR), vec![4, 2]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Rotated(old.refresh.clone()));
    let retry = |t: SystemTime| store.rotate_refresh(&old.refresh.hash, t, pair(&g, now + HOUR), vec![]);

    // Rotated after the cut-off: kept (the other sections' rotations, earlier, may go).
    store.forget_sealed_successors(at - ms(1)).await.expect("forget");
    let expected =
        RefreshRotation::AlreadyRotated { grant: g.clone(), rotated_at: at, sealed_successor: Some(vec![4, 2]) };
    assert_eq!(retry(at + ms(1)).await.expect("retry"), expected);

    // At the cut-off: dropped, once.
    let dropped = store.forget_sealed_successors(at).await.expect("forget");
    assert!(dropped >= 1, "the rotation at the cut-off is dropped");
    let expected = RefreshRotation::AlreadyRotated { grant: g.clone(), rotated_at: at, sealed_successor: None };
    assert_eq!(retry(at + ms(2)).await.expect("retry"), expected);
    assert_eq!(store.refresh_grant(&old.refresh.hash, at + ms(2)).await.expect("grant"), Some(g.clone()));
    if private {
        assert_eq!(store.forget_sealed_successors(at).await.expect("forget"), 0, "nothing left to drop");
    }
}

async fn rotation(store: &dyn Store, now: SystemTime) {
    let g = grant(&["mcp", "admin"]);
    let first = pair(&g, now + HOUR);
    insert_tokens(store, &first).await;

    // The successor may carry narrower scopes under the same grant id.
    let mut narrower = g.clone();
    narrower.scopes = vec!["mcp".into()];
    let second = pair(&narrower, now + 2 * HOUR);
    let sealed = vec![0u8, 1, 2, 255, 0];
    let outcome = store.rotate_refresh(&first.refresh.hash, now, second.clone(), sealed.clone()).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Rotated(first.refresh.clone()));
    assert_eq!(store.access_token(&second.access.hash, now).await.expect("access"), Some(second.access.clone()));
    assert_eq!(store.refresh_grant(&second.refresh.hash, now).await.expect("grant"), Some(narrower.clone()));
    // A rotated token still names its grant (the server needs it to decide on reuse).
    assert_eq!(store.refresh_grant(&first.refresh.hash, now).await.expect("grant"), Some(g.clone()));
    // Rotating does not revoke the old access token.
    assert_eq!(store.access_token(&first.access.hash, now).await.expect("access"), Some(first.access.clone()));

    // A retry: told when, and handed the sealed successor while that is current. Its own
    // pair is not stored.
    let retry = pair(&g, now + HOUR);
    let outcome = store.rotate_refresh(&first.refresh.hash, now + ms(5), retry.clone(), vec![9]).await;
    let expected =
        RefreshRotation::AlreadyRotated { grant: g.clone(), rotated_at: now, sealed_successor: Some(sealed.clone()) };
    assert_eq!(outcome.expect("rotate"), expected);
    assert_eq!(store.access_token(&retry.access.hash, now).await.expect("access"), None);
    assert_eq!(store.refresh_grant(&retry.refresh.hash, now).await.expect("grant"), None);

    // Once the successor is rotated in turn, the old token's retry gets nothing sealed.
    let third = pair(&narrower, now + 3 * HOUR);
    let outcome = store.rotate_refresh(&second.refresh.hash, now + ms(10), third.clone(), vec![7, 7]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Rotated(second.refresh.clone()));
    let outcome = store.rotate_refresh(&first.refresh.hash, now + ms(20), pair(&g, now + HOUR), vec![]).await;
    let expected = RefreshRotation::AlreadyRotated { grant: g.clone(), rotated_at: now, sealed_successor: None };
    assert_eq!(outcome.expect("rotate"), expected);
    let outcome = store.rotate_refresh(&second.refresh.hash, now + ms(20), pair(&g, now + HOUR), vec![]).await;
    let expected = RefreshRotation::AlreadyRotated {
        grant: narrower.clone(),
        rotated_at: now + ms(10),
        sealed_successor: Some(vec![7, 7]),
    };
    assert_eq!(outcome.expect("rotate"), expected);

    // Nor once the successor has expired.
    let g2 = grant(&["mcp"]);
    let old = pair(&g2, now + HOUR);
    insert_tokens(store, &old).await;
    let short = pair(&g2, now + ms(100));
    let outcome = store.rotate_refresh(&old.refresh.hash, now, short, vec![1]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Rotated(old.refresh.clone()));
    let outcome = store.rotate_refresh(&old.refresh.hash, now + ms(99), pair(&g2, now + HOUR), vec![]).await;
    let expected =
        RefreshRotation::AlreadyRotated { grant: g2.clone(), rotated_at: now, sealed_successor: Some(vec![1]) };
    assert_eq!(outcome.expect("rotate"), expected);
    let outcome = store.rotate_refresh(&old.refresh.hash, now + ms(100), pair(&g2, now + HOUR), vec![]).await;
    let expected = RefreshRotation::AlreadyRotated { grant: g2.clone(), rotated_at: now, sealed_successor: None };
    assert_eq!(outcome.expect("rotate"), expected);

    // An expired, unknown or revoked token rotates into nothing, and stores nothing.
    let g3 = grant(&["mcp"]);
    let expiring = pair(&g3, now + ms(50));
    insert_tokens(store, &expiring).await;
    let next = pair(&g3, now + HOUR);
    let outcome = store.rotate_refresh(&expiring.refresh.hash, now + ms(50), next.clone(), vec![]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Unknown);
    assert_eq!(store.access_token(&next.access.hash, now).await.expect("access"), None);
    let outcome = store.rotate_refresh(&hash("refresh"), now, pair(&g3, now + HOUR), vec![]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Unknown);
    store.revoke_grant(&g.grant_id).await.expect("revoke grant");
    let outcome = store.rotate_refresh(&first.refresh.hash, now + ms(30), pair(&g, now + HOUR), vec![]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Unknown);
    let outcome = store.rotate_refresh(&third.refresh.hash, now + ms(30), pair(&g, now + HOUR), vec![]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Unknown, "the whole family went");
}

async fn revocation(store: &dyn Store, now: SystemTime) {
    // Two grants side by side: revoking one leaves the other.
    let (a, b) = (grant(&["mcp"]), grant(&["mcp"]));
    let (a1, b1) = (pair(&a, now + HOUR), pair(&b, now + HOUR));
    let (a_code, b_code) = (code(&a, now + HOUR), code(&b, now + HOUR));
    for t in [&a1, &b1] {
        insert_tokens(store, t).await;
    }
    for c in [&a_code, &b_code] {
        insert_code(store, c).await;
    }
    let (a_up, b_up) = (upstream(&a), upstream(&b));
    for u in [&a_up, &b_up] {
        store.put_upstream_tokens(u.clone()).await.expect("put upstream");
    }
    let a2 = pair(&a, now + HOUR);
    let outcome = store.rotate_refresh(&a1.refresh.hash, now, a2.clone(), vec![1]).await;
    assert_eq!(outcome.expect("rotate"), RefreshRotation::Rotated(a1.refresh.clone()));

    // An access token alone.
    assert_eq!(store.revoke_token(&a2.access.hash).await.expect("revoke"), RevokedToken::Access);
    assert_eq!(store.access_token(&a2.access.hash, now).await.expect("access"), None);
    assert_eq!(store.refresh_grant(&a2.refresh.hash, now).await.expect("grant"), Some(a.clone()), "refresh stays");
    assert!(store.access_token(&a1.access.hash, now).await.expect("access").is_some(), "other access stays");
    assert_eq!(store.revoke_token(&a2.access.hash).await.expect("revoke"), RevokedToken::Unknown, "already gone");
    assert_eq!(store.upstream_tokens(&a.grant_id, now).await.expect("upstream"), Some(a_up), "an access token alone");

    // A refresh token (even a rotated one): the whole grant.
    assert_eq!(store.revoke_token(&a1.refresh.hash).await.expect("revoke"), RevokedToken::Refresh);
    assert_eq!(store.access_token(&a1.access.hash, now).await.expect("access"), None);
    assert_eq!(store.refresh_grant(&a1.refresh.hash, now).await.expect("grant"), None);
    assert_eq!(store.refresh_grant(&a2.refresh.hash, now).await.expect("grant"), None);
    assert_eq!(store.redeem_code(&a_code.hash, now, None).await.expect("redeem"), CodeRedemption::Unknown);
    assert_eq!(store.revoke_token(&a2.refresh.hash).await.expect("revoke"), RevokedToken::Unknown);
    assert_eq!(store.upstream_tokens(&a.grant_id, now).await.expect("upstream"), None, "upstream tokens go with it");

    // The other grant is untouched.
    assert_eq!(store.access_token(&b1.access.hash, now).await.expect("access"), Some(b1.access.clone()));
    assert_eq!(store.upstream_tokens(&b.grant_id, now).await.expect("upstream"), Some(b_up));
    assert_eq!(store.refresh_grant(&b1.refresh.hash, now).await.expect("grant"), Some(b.clone()));

    // By grant id: codes (used or not), access and refresh tokens.
    assert_eq!(
        store.redeem_code(&b_code.hash, now, None).await.expect("redeem"),
        CodeRedemption::Redeemed(b_code.clone())
    );
    store.revoke_grant(&b.grant_id).await.expect("revoke grant");
    assert_eq!(
        store.redeem_code(&b_code.hash, now, None).await.expect("redeem"),
        CodeRedemption::Unknown,
        "no replay left"
    );
    assert_eq!(store.access_token(&b1.access.hash, now).await.expect("access"), None);
    assert_eq!(store.refresh_grant(&b1.refresh.hash, now).await.expect("grant"), None);
    assert_eq!(store.upstream_tokens(&b.grant_id, now).await.expect("upstream"), None, "and their upstream tokens");
    store.revoke_grant(&unique("grant")).await.expect("revoking an unknown grant is no error");

    assert_eq!(store.revoke_token(&hash("token")).await.expect("revoke"), RevokedToken::Unknown);
}

/// Everything of one user goes at once (grants of every client, used codes, rotated tokens,
/// sign-in sessions, remembered consent); another user's stays.
async fn subject_revocation(store: &dyn Store, now: SystemTime) {
    let (gone, kept) = (grant(&["mcp"]), grant(&["mcp"]));
    let mut second = grant(&["admin"]);
    second.subject = gone.subject.clone();
    let mut everything = Vec::new();
    for g in [&gone, &second, &kept] {
        let (c, used, old) = (code(g, now + HOUR), code(g, now + HOUR), pair(g, now + HOUR));
        insert_code(store, &c).await;
        insert_code(store, &used).await;
        assert_eq!(
            store.redeem_code(&used.hash, now, None).await.expect("redeem"),
            CodeRedemption::Redeemed(used.clone())
        );
        insert_tokens(store, &old).await;
        let new = pair(g, now + HOUR);
        let rotated = store.rotate_refresh(&old.refresh.hash, now, new.clone(), vec![1]).await.expect("rotate");
        assert_eq!(rotated, RefreshRotation::Rotated(old.refresh.clone()));
        let session = SessionRecord::new(hash("session"), g.subject.as_str(), "carol", now, now + HOUR);
        store.insert_session(session.clone()).await.expect("insert session");
        let consent = ConsentRecord::new(g.subject.as_str(), g.client_id.as_str(), g.scopes.clone(), now, now + HOUR);
        store.put_consent(consent.clone()).await.expect("put consent");
        store.put_upstream_tokens(upstream(g)).await.expect("put upstream");
        everything.push((g.clone(), c, used, old, new, session, consent));
    }

    store.revoke_subject(&gone.subject).await.expect("revoke subject");
    for (g, c, used, old, new, session, consent) in everything {
        let alive = g.subject == kept.subject;
        let what = if alive { "another user's" } else { "the user's" };
        assert_eq!(store.code(&c.hash, now).await.expect("code").is_some(), alive, "{what} code");
        assert_eq!(store.code(&used.hash, now).await.expect("code").is_some(), alive, "{what} used code");
        for t in [&old, &new] {
            assert_eq!(store.access_token(&t.access.hash, now).await.expect("access").is_some(), alive, "{what}");
            assert_eq!(store.refresh_grant(&t.refresh.hash, now).await.expect("grant").is_some(), alive, "{what}");
        }
        assert_eq!(store.session(&session.hash, now).await.expect("session").is_some(), alive, "{what} session");
        let remembered = store.consent(&consent.subject, &consent.client_id, now).await.expect("consent");
        assert_eq!(remembered.is_some(), alive, "{what} consent");
        let kept_upstream = store.upstream_tokens(&g.grant_id, now).await.expect("upstream");
        assert_eq!(kept_upstream.is_some(), alive, "{what} upstream tokens");
    }
    store.revoke_subject(&unique("subject")).await.expect("revoking an unknown user is no error");
}

/// [`Store::revoke_all`]: every code, token, upstream token, session, MCP session and consent of every user
/// goes; clients, pending sign-ins and rate-limit counters stay.
async fn revocation_of_everything(store: &dyn Store, now: SystemTime) {
    let client = ClientRecord::new(unique("client"), "none", vec!["http://127.0.0.1/cb".into()], vec![], now);
    store.insert_client(client.clone()).await.expect("insert client");
    let key = limit_key();
    store.hit_rate_limit(&key, HOUR, now).await.expect("hit");
    let (mut everything, mut mcp_sessions) = (Vec::new(), Vec::new());
    for g in [grant(&["mcp"]), grant(&["admin"])] {
        let (c, tokens) = (code(&g, now + HOUR), pair(&g, now + HOUR));
        insert_code(store, &c).await;
        insert_tokens(store, &tokens).await;
        let session = SessionRecord::new(hash("session"), g.subject.as_str(), "carol", now, now + HOUR);
        store.insert_session(session.clone()).await.expect("insert session");
        let consent = ConsentRecord::new(g.subject.as_str(), g.client_id.as_str(), g.scopes.clone(), now, now + HOUR);
        store.put_consent(consent.clone()).await.expect("put consent");
        store.put_upstream_tokens(upstream(&g)).await.expect("put upstream tokens");
        let mcp = mcp_session(&g.subject, Some(&g.grant_id), now);
        store.put_mcp_session(mcp.clone()).await.expect("put MCP session");
        mcp_sessions.push(mcp.id_hash);
        everything.push((c, tokens, session, consent, g.grant_id));
    }
    // Opened with another issuer's token: no grant, and it goes too.
    let ungranted = mcp_session(&unique("subject"), None, now);
    store.put_mcp_session(ungranted.clone()).await.expect("put MCP session");
    mcp_sessions.push(ungranted.id_hash);

    store.revoke_all().await.expect("revoke all");
    for (c, tokens, session, consent, grant_id) in everything {
        assert_eq!(store.upstream_tokens(&grant_id, now).await.expect("upstream"), None, "upstream tokens");
        assert_eq!(store.code(&c.hash, now).await.expect("code"), None, "code");
        assert_eq!(store.access_token(&tokens.access.hash, now).await.expect("access"), None, "access token");
        assert_eq!(store.refresh_grant(&tokens.refresh.hash, now).await.expect("grant"), None, "refresh token");
        assert_eq!(store.session(&session.hash, now).await.expect("session"), None, "session");
        assert_eq!(store.consent(&consent.subject, &consent.client_id, now).await.expect("consent"), None);
    }
    for id_hash in &mcp_sessions {
        assert_eq!(store.mcp_session(id_hash).await.expect("get"), None, "MCP session");
    }
    assert_eq!(store.client(&client.client_id).await.expect("client"), Some(client), "clients stay");
    assert_eq!(store.rate_limit_count(&key, now).await.expect("count").count, 1, "counters stay");
    store.revoke_all().await.expect("revoking nothing is no error");
}

async fn sessions(store: &dyn Store, now: SystemTime) {
    let s = SessionRecord::new(hash("session"), unique("subject"), "Çarol ✓", now, now + HOUR);
    store.insert_session(s.clone()).await.expect("insert session");
    assert_eq!(store.session(&s.hash, now).await.expect("session"), Some(s.clone()));
    assert_eq!(store.session(&s.hash, s.expires_at - ms(1)).await.expect("session"), Some(s.clone()));
    assert_eq!(store.session(&s.hash, s.expires_at).await.expect("session"), None, "expired at expires_at");
    assert_eq!(store.session(&hash("session"), now).await.expect("session"), None);
    // Two sessions of one user are independent.
    let other = SessionRecord::new(hash("session"), s.subject.clone(), "Çarol ✓", now, now + HOUR);
    store.insert_session(other.clone()).await.expect("insert session");
    store.delete_session(&s.hash).await.expect("delete session");
    assert_eq!(store.session(&s.hash, now).await.expect("session"), None, "signed out");
    assert_eq!(store.session(&other.hash, now).await.expect("session"), Some(other.clone()));
    store.delete_session(&s.hash).await.expect("deleting twice is no error");
    store.delete_session(&hash("session")).await.expect("deleting an unknown session is no error");
    // An upstream user's session keeps the claims of their sign-in.
    let claims = serde_json::json!({"email": "carol@example.com", "groups": ["staff"]});
    let claims = claims.as_object().cloned().expect("an object");
    let upstream = SessionRecord::new(hash("session"), unique("subject"), "carol", now, now + HOUR).with_claims(claims);
    store.insert_session(upstream.clone()).await.expect("insert session");
    assert_eq!(store.session(&upstream.hash, now).await.expect("session"), Some(upstream));
}

fn mcp_session(subject: &str, grant_id: Option<&str>, last_used_at: SystemTime) -> McpSessionRecord {
    let initialize = r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"Çlient ✓"}}"#;
    McpSessionRecord::new(hash("mcp-session"), subject, grant_id.map(str::to_owned), initialize, last_used_at)
}

/// Saved, read back as they were, replaced, used (a time never goes back), ended, and swept
/// once idle.
async fn mcp_sessions(store: &dyn Store, now: SystemTime) {
    let subject = unique("subject");
    let s = mcp_session(&subject, Some(&unique("grant")), now);
    store.put_mcp_session(s.clone()).await.expect("put");
    assert_eq!(store.mcp_session(&s.id_hash).await.expect("get"), Some(s.clone()));
    assert_eq!(store.mcp_session(&hash("mcp-session")).await.expect("get"), None);
    let external = mcp_session(&subject, None, now);
    store.put_mcp_session(external.clone()).await.expect("put");
    assert_eq!(store.mcp_session(&external.id_hash).await.expect("get"), Some(external.clone()), "no grant");
    let mut replaced = s.clone();
    replaced.initialize = r#"{"protocolVersion":"2025-11-25"}"#.to_owned();
    store.put_mcp_session(replaced.clone()).await.expect("replace");
    assert_eq!(store.mcp_session(&s.id_hash).await.expect("get"), Some(replaced.clone()));

    let unknown = hash("unknown");
    let gone = store.sync_mcp_sessions(&[s.id_hash, unknown], &[s.id_hash, unknown], now + MINUTE).await.expect("sync");
    assert_eq!(gone, [unknown], "the held session the store does not have");
    let touched = store.mcp_session(&s.id_hash).await.expect("get").expect("kept");
    assert_eq!(touched.last_used_at, now + MINUTE);
    let gone = store.sync_mcp_sessions(&[s.id_hash], &[s.id_hash], now).await.expect("sync");
    assert!(gone.is_empty(), "{gone:?}");
    assert_eq!(store.mcp_session(&s.id_hash).await.expect("get").expect("kept").last_used_at, now + MINUTE);
    let gone = store.sync_mcp_sessions(&[], &[external.id_hash, unknown], now + HOUR).await.expect("held, unused");
    assert_eq!(gone, [unknown]);
    assert_eq!(store.mcp_session(&external.id_hash).await.expect("get"), Some(external.clone()), "untouched");
    assert!(store.sync_mcp_sessions(&[], &[], now).await.expect("syncing nothing").is_empty());
    // More ids than one statement binds: every one is answered.
    let many: Vec<TokenHash> = (0..1201).map(|i| hash(&format!("held-{i}"))).chain([s.id_hash]).collect();
    let gone = store.sync_mcp_sessions(&many, &many, now + MINUTE).await.expect("sync many");
    assert_eq!(gone, many[..1201], "all but the stored one, in order");

    // Idle at or before the cut-off: `external` (used at `now`), not `s` (used a minute later).
    let swept = store.sweep_idle_mcp_sessions(now).await.expect("sweep");
    assert!(swept >= 1, "{swept}");
    assert_eq!(store.mcp_session(&external.id_hash).await.expect("get"), None, "idle");
    assert!(store.mcp_session(&s.id_hash).await.expect("get").is_some(), "used since");

    store.delete_mcp_session(&s.id_hash).await.expect("delete");
    assert_eq!(store.mcp_session(&s.id_hash).await.expect("get"), None, "ended");
    store.delete_mcp_session(&s.id_hash).await.expect("deleting twice is no error");
}

/// Revoking a grant (by id, or through its refresh token) or a user ends their MCP sessions;
/// others stay.
async fn mcp_sessions_end_with_their_grant_or_user(store: &dyn Store, now: SystemTime) {
    let (by_id, by_token, by_user, kept) = (grant(&["mcp"]), grant(&["mcp"]), grant(&["mcp"]), grant(&["mcp"]));
    let tokens = pair(&by_token, now + HOUR);
    insert_tokens(store, &tokens).await;
    let sessions: Vec<McpSessionRecord> = [&by_id, &by_token, &by_user, &kept]
        .iter()
        .map(|g| mcp_session(&g.subject, Some(&g.grant_id), now + HOUR))
        .collect();
    // A session of the user opened with another issuer's token (no grant) goes with the user.
    let ungranted = mcp_session(&by_user.subject, None, now + HOUR);
    for s in sessions.iter().chain([&ungranted]) {
        store.put_mcp_session(s.clone()).await.expect("put");
    }
    store.revoke_grant(&by_id.grant_id).await.expect("revoke grant");
    assert_eq!(store.revoke_token(&tokens.refresh.hash).await.expect("revoke"), RevokedToken::Refresh);
    store.revoke_subject(&by_user.subject).await.expect("revoke subject");
    for (s, alive) in sessions.iter().zip([false, false, false, true]).chain([(&ungranted, false)]) {
        assert_eq!(store.mcp_session(&s.id_hash).await.expect("get").is_some(), alive, "{s:?}");
    }
    store.delete_mcp_session(&sessions[3].id_hash).await.expect("delete");
}

async fn consents(store: &dyn Store, now: SystemTime) {
    let (subject, client) = (unique("subject"), unique("client"));
    assert_eq!(store.consent(&subject, &client, now).await.expect("consent"), None);
    let first = ConsentRecord::new(subject.as_str(), client.as_str(), vec!["mcp".into()], now, now + HOUR);
    store.put_consent(first.clone()).await.expect("put consent");
    assert_eq!(store.consent(&subject, &client, now).await.expect("consent"), Some(first.clone()));
    assert_eq!(store.consent(&subject, &client, first.expires_at).await.expect("consent"), None, "expired");
    assert_eq!(store.consent(&subject, &unique("client"), now).await.expect("consent"), None, "per client");
    assert_eq!(store.consent(&unique("subject"), &client, now).await.expect("consent"), None, "per user");
    // Another client of the same user, and the same client of another user, stay apart.
    let sibling = ConsentRecord::new(subject.as_str(), unique("client"), vec!["admin".into()], now, now + HOUR);
    store.put_consent(sibling.clone()).await.expect("put consent");
    // Putting again replaces.
    let wider = ConsentRecord::new(
        subject.as_str(),
        client.as_str(),
        vec!["admin".into(), "mcp".into()],
        now + ms(5),
        now + 2 * HOUR,
    );
    store.put_consent(wider.clone()).await.expect("put consent");
    assert_eq!(store.consent(&subject, &client, now).await.expect("consent"), Some(wider));
    store.revoke_consent(&subject, &client).await.expect("revoke consent");
    assert_eq!(store.consent(&subject, &client, now).await.expect("consent"), None);
    assert_eq!(store.consent(&subject, &sibling.client_id, now).await.expect("consent"), Some(sibling));
    store.revoke_consent(&subject, &client).await.expect("revoking twice is no error");
}

async fn rate_limits(store: &dyn Store, now: SystemTime) {
    let (key, other) = (limit_key(), limit_key());
    let end = now + MINUTE;
    assert_eq!(store.rate_limit_count(&key, now).await.expect("count"), RateLimitWindow::new(0, now), "no window");
    assert_eq!(store.hit_rate_limit(&key, MINUTE, now).await.expect("hit"), RateLimitWindow::new(1, end));
    // Later hits count in the window the first one opened; its end does not move.
    assert_eq!(store.hit_rate_limit(&key, MINUTE, now + ms(1)).await.expect("hit"), RateLimitWindow::new(2, end));
    assert_eq!(store.hit_rate_limit(&key, MINUTE, end - ms(1)).await.expect("hit"), RateLimitWindow::new(3, end));
    assert_eq!(store.rate_limit_count(&key, end - ms(1)).await.expect("count"), RateLimitWindow::new(3, end));
    assert_eq!(store.rate_limit_count(&key, end - ms(1)).await.expect("count").count, 3, "counting without counting");
    assert_eq!(
        store.hit_rate_limit(&other, MINUTE, now + ms(2)).await.expect("hit"),
        RateLimitWindow::new(1, end + ms(2))
    );
    // The window ends: counting stops, and the next hit opens a new one.
    assert_eq!(store.rate_limit_count(&key, end).await.expect("count"), RateLimitWindow::new(0, end));
    let next = end + ms(10);
    assert_eq!(store.hit_rate_limit(&key, MINUTE, next).await.expect("hit"), RateLimitWindow::new(1, next + MINUTE));
    assert_eq!(store.rate_limit_count(&key, next).await.expect("count"), RateLimitWindow::new(1, next + MINUTE));
    // Reset forgets the key only.
    store.reset_rate_limit(&key).await.expect("reset");
    assert_eq!(store.rate_limit_count(&key, next).await.expect("count").count, 0);
    assert_eq!(store.rate_limit_count(&other, now + ms(3)).await.expect("count").count, 1, "other keys stay");
    assert_eq!(store.hit_rate_limit(&key, MINUTE, next).await.expect("hit"), RateLimitWindow::new(1, next + MINUTE));
    store.reset_rate_limit(&limit_key()).await.expect("resetting an unknown key is no error");
    undoing_a_hit(store, now).await;
    // Keys of the longest documented length, and windows of another length.
    let long = format!("{}:{}", "p".repeat(135), hash("limit").to_hex());
    assert_eq!(long.len(), 200);
    let day = Duration::from_secs(86_400);
    assert_eq!(
        store.hit_rate_limit(&long, day, now).await.expect("hit"),
        RateLimitWindow::new(1, now + ms(86_400_000))
    );
}

/// An undo takes back one event of the window it names, never of a later one, never below 0.
async fn undoing_a_hit(store: &dyn Store, now: SystemTime) {
    let key = limit_key();
    let end = now + MINUTE;
    store.hit_rate_limit(&key, MINUTE, now).await.expect("hit");
    store.hit_rate_limit(&key, MINUTE, now + ms(1)).await.expect("hit");
    store.undo_rate_limit_hit(&key, end).await.expect("undo");
    assert_eq!(store.rate_limit_count(&key, now + ms(2)).await.expect("count"), RateLimitWindow::new(1, end));
    assert_eq!(store.hit_rate_limit(&key, MINUTE, now + ms(2)).await.expect("hit"), RateLimitWindow::new(2, end));
    for _ in 0..3 {
        store.undo_rate_limit_hit(&key, end).await.expect("undo");
    }
    assert_eq!(
        store.rate_limit_count(&key, now + ms(3)).await.expect("count"),
        RateLimitWindow::new(0, end),
        "not below 0"
    );
    store.hit_rate_limit(&key, MINUTE, now + ms(3)).await.expect("hit");
    store.undo_rate_limit_hit(&key, end + ms(1)).await.expect("another window's undo is no error");
    assert_eq!(store.rate_limit_count(&key, now + ms(3)).await.expect("count").count, 1, "another window's undo");
    let next = end + ms(5);
    store.hit_rate_limit(&key, MINUTE, next).await.expect("hit");
    store.undo_rate_limit_hit(&key, end).await.expect("undo of the ended window");
    assert_eq!(store.rate_limit_count(&key, next).await.expect("count").count, 1, "the new window keeps its event");
    store.undo_rate_limit_hit(&limit_key(), end).await.expect("undoing on an unknown key is no error");
}

async fn sweeping(store: &dyn Store, now: SystemTime, private: bool) {
    // Expired long ago (no other part of the contract uses such times), so that a sweep at
    // `then` takes exactly these, and nothing current.
    let then = UNIX_EPOCH + ms(1_000_000);
    let g = grant(&["mcp"]);
    let mut p = PendingAuthorization::new(hash("pending"), "c", "http://127.0.0.1/cb", "x", "r", "csrf", then - ms(1));
    p.scopes = vec!["mcp".into()];
    store.insert_pending(p.clone()).await.expect("insert pending");
    insert_code(store, &code(&g, then)).await;
    let old = pair(&g, then - ms(500));
    insert_tokens(store, &old).await;
    let current = pair(&g, now + HOUR);
    insert_tokens(store, &current).await;
    let old_session = SessionRecord::new(hash("session"), unique("subject"), "carol", then - ms(100), then);
    store.insert_session(old_session.clone()).await.expect("insert session");
    let session = SessionRecord::new(hash("session"), unique("subject"), "carol", now, now + HOUR);
    store.insert_session(session.clone()).await.expect("insert session");
    let old_consent =
        ConsentRecord::new(unique("subject"), unique("client"), vec!["mcp".into()], UNIX_EPOCH + ms(1), then - ms(1));
    store.put_consent(old_consent.clone()).await.expect("put consent");
    let consent = ConsentRecord::new(unique("subject"), unique("client"), vec!["mcp".into()], now, now + HOUR);
    store.put_consent(consent.clone()).await.expect("put consent");
    let (old_key, key) = (limit_key(), limit_key());
    store.hit_rate_limit(&old_key, MINUTE, then - MINUTE).await.expect("hit");
    store.hit_rate_limit(&key, MINUTE, now).await.expect("hit");
    // Upstream tokens go with their grant: at its end, or once it has no code or refresh token
    // left; those of a grant that goes on stay.
    let mut ended = grant(&["mcp"]);
    ended.expires_at = then;
    insert_tokens(store, &pair(&ended, now + HOUR)).await;
    let orphan = grant(&["mcp"]);
    for g in [&ended, &orphan, &g] {
        store.put_upstream_tokens(upstream(g)).await.expect("put upstream");
    }

    let swept = store.sweep_expired(then).await.expect("sweep");
    if private {
        assert_eq!(
            swept, 9,
            "one pending, one code, one access and one refresh token, one session, one consent, one window, \
             two grants' upstream tokens"
        );
        assert_eq!(store.sweep_expired(then).await.expect("sweep"), 0, "nothing left to sweep");
    }
    // Gone, not just out of date: looked up at an earlier time, they are still not there.
    let long_ago = then - ms(200);
    assert_eq!(store.session(&old_session.hash, long_ago).await.expect("session"), None);
    let swept_consent = store.consent(&old_consent.subject, &old_consent.client_id, long_ago).await;
    assert_eq!(swept_consent.expect("consent"), None);
    assert_eq!(store.rate_limit_count(&old_key, then - MINUTE).await.expect("count").count, 0);
    assert_eq!(store.session(&session.hash, now).await.expect("session"), Some(session));
    assert_eq!(store.consent(&consent.subject, &consent.client_id, now).await.expect("consent"), Some(consent));
    assert_eq!(store.rate_limit_count(&key, now).await.expect("count").count, 1);
    // Deleted, not just hidden: revocation and failure counting look past expiry.
    assert_eq!(store.record_failed_login(&p.id_hash).await.expect("failed login"), u32::MAX);
    assert_eq!(store.revoke_token(&old.access.hash).await.expect("revoke"), RevokedToken::Unknown);
    assert_eq!(store.revoke_token(&old.refresh.hash).await.expect("revoke"), RevokedToken::Unknown);
    assert_eq!(store.access_token(&current.access.hash, now).await.expect("access"), Some(current.access.clone()));
    assert_eq!(store.refresh_grant(&current.refresh.hash, now).await.expect("grant"), Some(g.clone()));
    for gone in [&ended, &orphan] {
        assert_eq!(store.upstream_tokens(&gone.grant_id, long_ago).await.expect("upstream"), None);
    }
    assert!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream").is_some(), "a live grant's stay");
    store.delete_upstream_tokens(&g.grant_id).await.expect("delete upstream");
}

/// A grant's sealed upstream tokens: kept as given, replaced only at the version shown (one of
/// two refreshes wins), hidden once the grant has ended, and deleted.
async fn upstream_tokens(store: &dyn Store, now: SystemTime) {
    let g = grant(&["mcp"]);
    let first = upstream(&g);
    assert_eq!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream"), None);
    store.put_upstream_tokens(first.clone()).await.expect("put upstream");
    assert_eq!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream"), Some(first.clone()));

    // A refresh claims the record (bumping its version), then stores the new pair.
    let mut claimed = first.clone();
    (claimed.version, claimed.refreshing_until) = (first.version + 1, Some(now + MINUTE));
    let mut rival = first.clone();
    (rival.version, rival.sealed) = (first.version + 1, b"rival".to_vec());
    let (won, lost) = futures::join!(
        store.replace_upstream_tokens(first.version, claimed.clone()),
        store.replace_upstream_tokens(first.version, rival.clone()),
    );
    let (won, lost) = (won.expect("replace"), lost.expect("replace"));
    assert!(won != lost, "exactly one of two replacements at the same version wins");
    let winner = if won { claimed } else { rival };
    assert_eq!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream"), Some(winner.clone()));
    assert!(!store.replace_upstream_tokens(first.version, first.clone()).await.expect("replace"), "a stale version");
    let mut refreshed = winner.clone();
    (refreshed.version, refreshed.sealed, refreshed.refreshing_until) =
        (winner.version + 1, unique("rotated").into_bytes(), None);
    assert!(store.replace_upstream_tokens(winner.version, refreshed.clone()).await.expect("replace"));
    assert_eq!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream"), Some(refreshed.clone()));

    // Past the grant's end they are not handed out.
    assert_eq!(store.upstream_tokens(&g.grant_id, g.expires_at).await.expect("upstream"), None);
    // A new sign-in for the grant replaces them whatever their version.
    store.put_upstream_tokens(first.clone()).await.expect("put upstream");
    assert_eq!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream"), Some(first.clone()));

    store.delete_upstream_tokens(&g.grant_id).await.expect("delete upstream");
    assert_eq!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream"), None);
    let revived = store.replace_upstream_tokens(first.version, refreshed).await.expect("replace");
    assert!(!revived, "a refresh that finishes after the grant went stores nothing");
    assert_eq!(store.upstream_tokens(&g.grant_id, now).await.expect("upstream"), None);
    store.delete_upstream_tokens(&g.grant_id).await.expect("deleting unknown upstream tokens is no error");
}

/// Registrations that no user signed in to go once they are old enough; used ones, young
/// ones and ones with a sign-in in progress stay.
async fn unused_clients(store: &dyn Store, now: SystemTime, private: bool) {
    let cutoff = now - HOUR;
    let client = |at| ClientRecord::new(unique("client"), "none", vec!["http://127.0.0.1/cb".into()], vec![], at);
    let (unused, used, waiting, young) =
        (client(cutoff - ms(1)), client(cutoff - ms(1)), client(cutoff - ms(1)), client(cutoff));
    for c in [&unused, &used, &waiting, &young] {
        store.insert_client(c.clone()).await.expect("insert client");
    }
    let mut g = grant(&["mcp"]);
    g.client_id = used.client_id.clone();
    insert_code(store, &code(&g, now + HOUR)).await;
    let p = PendingAuthorization::new(
        hash("pending"),
        waiting.client_id.as_str(),
        "http://127.0.0.1/cb",
        "x",
        "r",
        "csrf",
        now + HOUR,
    );
    store.insert_pending(p.clone()).await.expect("insert pending");

    let swept = store.sweep_unused_clients(cutoff).await.expect("sweep");
    assert!(if private { swept == 1 } else { swept >= 1 }, "swept {swept}");
    assert_eq!(store.client(&unused.client_id).await.expect("client"), None);
    for kept in [&used, &waiting, &young] {
        assert_eq!(store.client(&kept.client_id).await.expect("client").as_ref(), Some(kept));
    }
    // A sign-in that ends without a code (wrong passwords, denial) does not make a client used.
    assert_eq!(store.take_pending(&p.id_hash, now, None).await.expect("take"), Some(p));
    let swept = store.sweep_unused_clients(cutoff).await.expect("sweep");
    assert!(if private { swept == 1 } else { swept >= 1 }, "swept {swept}");
    assert_eq!(store.client(&waiting.client_id).await.expect("client"), None);
    assert_eq!(store.client(&used.client_id).await.expect("client"), Some(used));
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(&MemoryStore::new(), true).await;
}

#[tokio::test]
async fn sqlite_store_keeps_the_contract() {
    let dir = TempDir::new("mcp-oauth-kit-store");
    let store = SqlStore::connect(&dir.sqlite_url("oauth.db")).await.expect("open SQLite");
    contract(&store, true).await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_store_keeps_the_contract() {
    let store = SqlStore::connect("sqlite::memory:").await.expect("open SQLite in memory");
    contract(&store, true).await;
}

#[tokio::test]
async fn postgres_store_keeps_the_contract() {
    let Some(url) = postgres_url("postgres_store_keeps_the_contract") else { return };
    let store = SqlStore::connect(&url).await.expect("open PostgreSQL");
    contract(&store, false).await;
    store.close().await;
}

/// A store over the application's own SQLite pool keeps the contract, and the application's
/// pool sees the store's tables: one database, one pool.
#[tokio::test]
async fn sqlite_store_over_the_applications_pool_keeps_the_contract() {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    let dir = TempDir::new("mcp-oauth-kit-store-pool");
    std::fs::create_dir_all(&dir.0).expect("the app's directory");
    let options = SqliteConnectOptions::new()
        .filename(dir.0.join("app.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new().max_connections(5).connect_with(options).await.expect("the app's pool");
    sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY)").execute(&pool).await.expect("the app's table");
    let store = SqlStore::from_sqlite_pool(pool.clone()).await.expect("a store over the pool");
    contract(&store, true).await;
    let client = ClientRecord::new(unique("shared"), "none", vec!["http://127.0.0.1/cb".into()], vec![], now());
    store.insert_client(client.clone()).await.expect("insert");
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE client_id = $1")
        .bind(&client.client_id)
        .fetch_one(&pool)
        .await
        .expect("the app's pool reads the store's table");
    assert_eq!(seen, 1);
    assert!(SqlStore::from_sqlite_pool(pool.clone()).await.is_ok(), "a second store over it migrates nothing");
    store.close().await;
    assert!(pool.is_closed(), "the store and the app share one pool");
}

/// A store over the application's own PostgreSQL pool keeps the contract, in the schema the
/// pool's `search_path` names (a schema of this test's own, so the store is private to it),
/// and the application's pool sees the store's tables.
#[tokio::test]
async fn postgres_store_over_the_applications_pool_keeps_the_contract() {
    use std::str::FromStr as _;

    let Some(url) = postgres_url("postgres_store_over_the_applications_pool_keeps_the_contract") else { return };
    // A SQL identifier: letters, digits and underscores.
    let schema = unique("mcp_pool").replace('-', "_");
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .expect("TEST_DATABASE_URL is a PostgreSQL URL")
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::PgPool::connect_with(options).await.expect("the app's pool");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.expect("the app's schema");
    let store = SqlStore::from_postgres_pool(pool.clone()).await.expect("a store over the pool");
    contract(&store, true).await;
    let key = unique("shared");
    store.hit_rate_limit(&key, Duration::from_secs(60), now()).await.expect("hit");
    let hits: i64 = sqlx::query_scalar(&format!("SELECT hits FROM {schema}.rate_limits WHERE limit_key = $1"))
        .bind(&key)
        .fetch_one(&pool)
        .await
        .expect("the app's pool reads the store's table, in the app's schema");
    assert_eq!(hits, 1);
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await.expect("drop the schema");
    store.close().await;
    assert!(pool.is_closed(), "the store and the app share one pool");
}

/// What a restart must keep: clients, pending sign-ins, used and unused codes, tokens and the
/// rotation state with its sealed successor, sign-in sessions, consent and rate-limit counts.
async fn survives_a_restart(url: &str) {
    let now = now();
    let g = grant(&["mcp"]);
    let client = ClientRecord::new(unique("client"), "none", vec!["http://127.0.0.1/cb".into()], vec![], now);
    let p = PendingAuthorization::new(hash("pending"), "c", "http://127.0.0.1/cb", "x", "r", "csrf", now + HOUR);
    let (used, fresh) = (code(&g, now + HOUR), code(&g, now + HOUR));
    let (first, second) = (pair(&g, now + 3 * HOUR), pair(&g, now + 3 * HOUR));
    // Rotated later than the cut-off of `forgetting_sealed_successors` (its `now` + 30 min),
    // which may run at the same time on the same PostgreSQL database and drops every seal
    // rotated before it.
    let rotated_at = now + HOUR;
    let session = SessionRecord::new(hash("session"), g.subject.clone(), "carol", now, now + HOUR);
    let consent =
        ConsentRecord::new(g.subject.as_str(), client.client_id.as_str(), vec!["mcp".into()], now, now + HOUR);
    let key = limit_key();
    {
        let store = SqlStore::connect(url).await.expect("open");
        store.insert_session(session.clone()).await.expect("insert session");
        store.put_consent(consent.clone()).await.expect("put consent");
        store.hit_rate_limit(&key, MINUTE, now).await.expect("hit");
        store.hit_rate_limit(&key, MINUTE, now).await.expect("hit");
        store.insert_client(client.clone()).await.expect("insert client");
        store.insert_pending(p.clone()).await.expect("insert pending");
        insert_code(&store, &used).await;
        insert_code(&store, &fresh).await;
        assert_eq!(
            store.redeem_code(&used.hash, now, None).await.expect("redeem"),
            CodeRedemption::Redeemed(used.clone())
        );
        insert_tokens(&store, &first).await;
        let outcome = store.rotate_refresh(&first.refresh.hash, rotated_at, second.clone(), vec![4, 2]).await;
        assert_eq!(outcome.expect("rotate"), RefreshRotation::Rotated(first.refresh.clone()));
        store.close().await;
    }
    let store = SqlStore::connect(url).await.expect("reopen");
    assert_eq!(store.session(&session.hash, now).await.expect("session"), Some(session));
    assert_eq!(store.consent(&consent.subject, &consent.client_id, now).await.expect("consent"), Some(consent));
    let window = store.hit_rate_limit(&key, MINUTE, now + ms(1)).await.expect("hit");
    assert_eq!(window, RateLimitWindow::new(3, now + MINUTE), "the count goes on");
    assert_eq!(store.client(&client.client_id).await.expect("client"), Some(client));
    assert_eq!(store.pending(&p.id_hash, now).await.expect("pending"), Some(p));
    assert_eq!(store.redeem_code(&used.hash, now, None).await.expect("redeem"), CodeRedemption::Replayed(used));
    assert_eq!(store.redeem_code(&fresh.hash, now, None).await.expect("redeem"), CodeRedemption::Redeemed(fresh));
    assert_eq!(store.access_token(&second.access.hash, now).await.expect("access"), Some(second.access));
    let outcome = store.rotate_refresh(&first.refresh.hash, rotated_at + ms(1), pair(&g, now + HOUR), vec![]).await;
    let expected = RefreshRotation::AlreadyRotated { grant: g, rotated_at, sealed_successor: Some(vec![4, 2]) };
    assert_eq!(outcome.expect("rotate"), expected);
    store.close().await;
}

#[tokio::test]
async fn sqlite_store_survives_a_restart() {
    let dir = TempDir::new("mcp-oauth-kit-store");
    survives_a_restart(&dir.sqlite_url("restart.db")).await;
    // `sqlite:PATH` names the same file as `sqlite://PATH`.
    let short = dir.sqlite_url("restart.db").replacen("sqlite://", "sqlite:", 1);
    let store = SqlStore::connect(&short).await.expect("reopen as sqlite:PATH");
    store.close().await;
}

#[tokio::test]
async fn postgres_store_survives_a_restart() {
    let Some(url) = postgres_url("postgres_store_survives_a_restart") else { return };
    survives_a_restart(&url).await;
}

/// Migrations run again on every start, and several instances may start at once.
async fn migrates_twice_and_at_once(url: &str) {
    let first = SqlStore::connect(url).await.expect("first start");
    let second = SqlStore::connect(url).await.expect("second start, schema already there");
    let starts = start_at_once(url).await;
    // Registered now: the contract's sweep of unused clients may run on the same database.
    let client = ClientRecord::new(unique("client"), "none", vec!["http://127.0.0.1/cb".into()], vec![], now());
    first.insert_client(client.clone()).await.expect("insert client");
    for store in starts.iter().chain([&second]) {
        assert_eq!(store.client(&client.client_id).await.expect("client"), Some(client.clone()));
        store.close().await;
    }
    first.close().await;
}

/// Four instances starting at the same moment.
async fn start_at_once(url: &str) -> Vec<SqlStore> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move { SqlStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.expect("task").expect("concurrent start"));
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations_run_twice_and_at_once() {
    let dir = TempDir::new("mcp-oauth-kit-store");
    // A fresh file: the concurrent starts race to create the schema.
    let url = dir.sqlite_url("migrate.db");
    let racers = start_at_once(&url).await;
    for store in racers {
        store.close().await;
    }
    migrates_twice_and_at_once(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_run_twice_and_at_once() {
    let Some(url) = postgres_url("postgres_migrations_run_twice_and_at_once") else { return };
    migrates_twice_and_at_once(&url).await;
}

#[tokio::test]
async fn open_store_picks_the_backend_from_the_url() {
    let memory = open_store("memory").await.expect("memory");
    let client =
        ClientRecord::new(unique("client"), "none", vec!["http://127.0.0.1/cb".into()], vec![], UNIX_EPOCH + ms(1));
    memory.insert_client(client.clone()).await.expect("insert client");
    assert_eq!(memory.client(&client.client_id).await.expect("client"), Some(client.clone()));

    let dir = TempDir::new("mcp-oauth-kit-store");
    let sqlite = open_store(&dir.sqlite_url("open.db")).await.expect("sqlite");
    sqlite.insert_client(client.clone()).await.expect("insert client");
    assert_eq!(sqlite.client(&client.client_id).await.expect("client"), Some(client));
    assert!(dir.0.join("nested").join("open.db").exists(), "file and parent directory created");

    for bad in ["mysql://root@localhost/x", "redis://:hunter2@localhost", "", "memory://", "/var/lib/oauth.db"] {
        let message = open_store(bad).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("`memory`, `sqlite://PATH`"), "{bad:?} → {message}");
        assert!(!message.contains("hunter2"), "the message must not echo a password: {message}");
    }
}

#[tokio::test]
async fn unreachable_databases_fail_fast_and_say_why() {
    // Nothing listens on port 1: refused at once, and the message says so.
    let started = Instant::now();
    let err = open_store("postgres://postgres:hunter2@127.0.0.1:1/test").await.err().expect("refused");
    let message = err.to_string();
    assert!(message.contains("cannot connect to PostgreSQL at postgres@127.0.0.1:1/test"), "{message}");
    assert!(!message.contains("hunter2"), "the message must not echo the password: {message}");
    assert!(started.elapsed() < Duration::from_secs(3), "refused took {:?}", started.elapsed());

    // A server that accepts and never answers: the connect timeout ends the wait.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = open_store(&format!("postgres://postgres@127.0.0.1:{port}/test")).await.err().expect("timeout");
    let elapsed = started.elapsed();
    assert!(err.to_string().contains("no answer within 5s"), "{err}");
    assert!(elapsed >= Duration::from_secs(4) && elapsed < Duration::from_secs(8), "gave up after {elapsed:?}");
    silent.abort();

    // A SQLite file that cannot be created.
    let err = open_store("sqlite:///proc/no/such/dir/x.db").await.err().expect("unwritable");
    assert!(err.to_string().contains("/proc/no/such/dir"), "{err}");
}

#[path = "common/log_capture.rs"]
mod log_capture;

/// Starting on a database whose schema is up to date logs nothing at `info`: PostgreSQL's
/// NOTICE "relation … already exists, skipping" (a `CREATE … IF NOT EXISTS` that finds its
/// table, which sqlx logs at `info`) is kept quiet at every start.
#[tokio::test]
async fn postgres_starts_log_no_notice() {
    let Some(url) = postgres_url("postgres_starts_log_no_notice") else { return };
    let captured = log_capture::captured();
    for _ in 0..2 {
        SqlStore::connect(&url).await.expect("open PostgreSQL").close().await;
    }
    let lines = captured.lines();
    assert!(!lines.iter().any(|l| l.contains("already exists")), "{lines:#?}");
}

/// A PostgreSQL database the store may not write (here: every transaction read-only, as on a
/// standby) stops the start with a message saying so, instead of failing every sign-in later.
#[tokio::test]
async fn postgres_refuses_a_database_it_cannot_write() {
    let Some(url) = postgres_url("postgres_refuses_a_database_it_cannot_write") else { return };
    SqlStore::connect(&url).await.expect("open PostgreSQL").close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    let read_only = format!("{url}{separator}options=-c%20default_transaction_read_only%3Don");
    let err = SqlStore::connect(&read_only).await.expect_err("refused");
    assert!(err.to_string().contains("may not write the store's tables"), "{err}");
}
