//! The atomic operations of [`Store`] under contention: 50 callers at once redeem one code,
//! rotate one refresh token, or take one pending sign-in, and exactly one of them wins (and
//! only the winner's tokens are stored); a revocation of the grant or of its whole user racing
//! a redemption or a rotation leaves none of the grant's tokens; or
//! count on one rate-limit key, and each sees its own count. Run
//! against [`MemoryStore`], a SQLite file (where concurrent writers must queue, not fail with
//! `database is locked`), and PostgreSQL when `TEST_DATABASE_URL` is set.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod store_support;

use mcp_oauth_kit::store::{
    CodeRecord, CodeRedemption, Grant, IssuedTokens, MemoryStore, PendingAuthorization, RefreshRotation, SqlStore,
    Store, StoreError,
};
use store_support::{HOUR, TempDir, hash, insert_code, insert_tokens, ms, now, pair, unique};
use tokio::sync::Barrier;

const CALLERS: usize = 50;

fn grant() -> Grant {
    Grant::new(unique("grant"), unique("subject"), "carol", unique("client"), vec!["mcp".into()], "https://mcp/mcp")
}

/// Run `op(i)` for `CALLERS` tasks released at the same moment; their results, in order.
async fn at_once<T, F, Fut>(op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = op(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(CALLERS);
    for task in tasks {
        results.push(task.await.expect("task panicked"));
    }
    results
}

async fn one_redemption(store: Arc<dyn Store>) {
    let now = now();
    let g = grant();
    let code = CodeRecord::new(hash("code"), g.clone(), "http://127.0.0.1/cb", "c".repeat(43), now + HOUR);
    insert_code(&*store, &code).await;
    // Every caller brings its own tokens; only the winner's may be stored.
    let tokens: Vec<IssuedTokens> = (0..CALLERS).map(|_| pair(&g, now + HOUR)).collect();
    let outcomes = at_once(|i| {
        let (store, tokens) = (store.clone(), tokens[i].clone());
        let hash = code.hash;
        async move { store.redeem_code(&hash, now, Some(tokens)).await }
    })
    .await;
    let mut winner = None;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome.expect("no backend error under contention") {
            CodeRedemption::Redeemed(c) => {
                assert_eq!(c, code);
                assert_eq!(winner.replace(i), None, "two callers redeemed the same code");
            }
            CodeRedemption::Replayed(c) => assert_eq!(c, code),
            other => panic!("unexpected {other:?}"),
        }
    }
    only_the_winners_pair_is_stored(&*store, &tokens, winner.expect("one caller redeemed the code"), now).await;
}

/// Of the token pairs that concurrent callers brought, only the winner's was stored.
async fn only_the_winners_pair_is_stored(store: &dyn Store, pairs: &[IssuedTokens], winner: usize, now: SystemTime) {
    for (i, p) in pairs.iter().enumerate() {
        let stored = store.access_token(&p.access.hash, now).await.expect("access").is_some();
        assert_eq!(stored, i == winner, "pair {i} stored: {stored}");
        let stored = store.refresh_grant(&p.refresh.hash, now).await.expect("grant").is_some();
        assert_eq!(stored, i == winner, "pair {i} stored: {stored}");
    }
}

async fn one_rotation(store: Arc<dyn Store>) {
    let now = now();
    let g = grant();
    let old = pair(&g, now + HOUR);
    insert_tokens(&*store, &old).await;
    // Every caller brings its own successor; only the winner's may be stored.
    let successors: Vec<IssuedTokens> = (0..CALLERS).map(|_| pair(&g, now + 2 * HOUR)).collect();
    let outcomes = at_once(|i| {
        let store = store.clone();
        let (old, new) = (old.refresh.hash, successors[i].clone());
        async move { store.rotate_refresh(&old, now, new, vec![i as u8]).await }
    })
    .await;
    let mut winner = None;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome.expect("no backend error under contention") {
            RefreshRotation::Rotated(record) => {
                assert_eq!(record, old.refresh);
                assert_eq!(winner.replace(i), None, "two callers rotated the same token");
            }
            RefreshRotation::AlreadyRotated { grant, rotated_at, .. } => {
                assert_eq!(grant, g);
                assert_eq!(rotated_at, now);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let winner = winner.expect("one caller rotated the token");
    only_the_winners_pair_is_stored(&*store, &successors, winner, now).await;
    // A late retry is handed the winner's sealed successor.
    let outcome = store.rotate_refresh(&old.refresh.hash, now + ms(1), pair(&g, now + HOUR), vec![]).await;
    let expected =
        RefreshRotation::AlreadyRotated { grant: g, rotated_at: now, sealed_successor: Some(vec![winner as u8]) };
    assert_eq!(outcome.expect("rotate"), expected);
}

async fn one_taker(store: Arc<dyn Store>) {
    let now = now();
    let p = PendingAuthorization::new(hash("pending"), "c", "http://127.0.0.1/cb", "x", "r", "csrf", now + HOUR);
    store.insert_pending(p.clone()).await.expect("insert pending");
    let outcomes = at_once(|_| {
        let store = store.clone();
        let id = p.id_hash;
        async move { store.take_pending(&id, now, None).await }
    })
    .await;
    let taken: Vec<_> = outcomes.into_iter().filter_map(|o| o.expect("no backend error")).collect();
    assert_eq!(taken, vec![p]);
}

/// What a racing revocation revokes: the grant (a replay, a reused refresh token), or
/// everything of its user (`revoke_subject`).
#[derive(Clone, Copy, Debug)]
enum Revocation {
    Grant,
    Subject,
}

impl Revocation {
    async fn revoke(self, store: &dyn Store, grant: &Grant) -> Result<(), StoreError> {
        match self {
            Self::Grant => store.revoke_grant(&grant.grant_id).await,
            Self::Subject => store.revoke_subject(&grant.subject).await,
        }
    }
}

/// Revoking a grant while one of its refresh tokens rotates leaves nothing of the grant,
/// whichever goes first: not the successor pair either.
async fn revocation_beats_rotation(store: Arc<dyn Store>, how: Revocation) {
    let now = now();
    for round in 0..100 {
        let g = grant();
        let old = pair(&g, now + HOUR);
        insert_tokens(&*store, &old).await;
        let new = pair(&g, now + HOUR);
        let barrier = Arc::new(Barrier::new(2));
        let rotate = {
            let (store, barrier, old, new) = (store.clone(), barrier.clone(), old.refresh.hash, new.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.rotate_refresh(&old, now, new, vec![1]).await
            })
        };
        let revoke = {
            let (store, barrier, g) = (store.clone(), barrier.clone(), g.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                how.revoke(&*store, &g).await
            })
        };
        rotate.await.expect("task").expect("rotate");
        revoke.await.expect("task").expect("revoke");
        let access = store.access_token(&new.access.hash, now).await.expect("access");
        let refresh = store.refresh_grant(&new.refresh.hash, now).await.expect("grant");
        assert_eq!((access, refresh), (None, None), "round {round}: the successor outlived the {how:?} revocation");
    }
}

/// Revoking a grant (as a replayed code does) while its code is redeemed leaves nothing of the
/// grant, whichever goes first: not the tokens the redemption stores either.
async fn revocation_beats_redemption(store: Arc<dyn Store>, how: Revocation) {
    let now = now();
    for round in 0..100 {
        let g = grant();
        let code = CodeRecord::new(hash("code"), g.clone(), "http://127.0.0.1/cb", "c".repeat(43), now + HOUR);
        insert_code(&*store, &code).await;
        let tokens = pair(&g, now + HOUR);
        let barrier = Arc::new(Barrier::new(2));
        let redeem = {
            let (store, barrier, hash, tokens) = (store.clone(), barrier.clone(), code.hash, tokens.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.redeem_code(&hash, now, Some(tokens)).await
            })
        };
        let revoke = {
            let (store, barrier, g) = (store.clone(), barrier.clone(), g.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                how.revoke(&*store, &g).await
            })
        };
        let outcome = redeem.await.expect("task").expect("redeem");
        // Redeemed when the redemption went first, Unknown when the revocation did: never a
        // replay, nor another code.
        if outcome != CodeRedemption::Unknown {
            assert_eq!(outcome, CodeRedemption::Redeemed(code.clone()), "round {round}");
        }
        revoke.await.expect("task").expect("revoke");
        let access = store.access_token(&tokens.access.hash, now).await.expect("access");
        let refresh = store.refresh_grant(&tokens.refresh.hash, now).await.expect("grant");
        assert_eq!((access, refresh), (None, None), "round {round}: the tokens outlived the {how:?} revocation");
    }
}

/// 50 events on one key at once, through `stores` in turn: the counts are 1 to 50, each once
/// (none lost, none doubled), and the window is the one the first event opened.
async fn every_hit_counts_once(stores: &[Arc<dyn Store>]) {
    let now = now();
    let key = format!("race:{}", hash("limit").to_hex());
    let outcomes = at_once(|i| {
        let store = stores[i % stores.len()].clone();
        let key = key.clone();
        async move { store.hit_rate_limit(&key, Duration::from_secs(60), now).await }
    })
    .await;
    let mut counts: Vec<u32> = outcomes
        .into_iter()
        .map(|o| {
            let window = o.expect("no backend error under contention");
            assert_eq!(window.ends_at, now + ms(60_000));
            window.count
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=CALLERS as u32).collect::<Vec<_>>());
    let window = stores[0].rate_limit_count(&key, now).await.expect("count");
    assert_eq!(window.count, CALLERS as u32);
}

async fn races(store: Arc<dyn Store>) {
    one_redemption(store.clone()).await;
    one_rotation(store.clone()).await;
    one_taker(store.clone()).await;
    every_hit_counts_once(std::slice::from_ref(&store)).await;
    for how in [Revocation::Grant, Revocation::Subject] {
        revocation_beats_rotation(store.clone(), how).await;
        revocation_beats_redemption(store.clone(), how).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_has_one_winner() {
    races(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_has_one_winner() {
    let dir = TempDir::new("mcp-oauth-kit-race");
    let url = dir.sqlite_url("race.db");
    let store = SqlStore::connect(&url).await.expect("open SQLite");
    races(Arc::new(store.clone())).await;
    // Two instances on one file, as two processes would be: still one winner.
    let other = SqlStore::connect(&url).await.expect("open SQLite again");
    let both: [Arc<dyn Store>; 2] = [Arc::new(store.clone()), Arc::new(other.clone())];
    two_instances(&both).await;
    store.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_has_one_winner() {
    let Some(url) = store_support::postgres::postgres_url("postgres_store_has_one_winner") else { return };
    let store = SqlStore::connect(&url).await.expect("open PostgreSQL");
    races(Arc::new(store.clone())).await;
    let other = SqlStore::connect(&url).await.expect("open PostgreSQL again");
    let both: [Arc<dyn Store>; 2] = [Arc::new(store.clone()), Arc::new(other.clone())];
    two_instances(&both).await;
    store.close().await;
    other.close().await;
}

/// Callers split over two instances (two pools) of one database: one code, one redemption;
/// one rate-limit key, one count each.
async fn two_instances(stores: &[Arc<dyn Store>; 2]) {
    every_hit_counts_once(stores).await;
    let now = now();
    let code = CodeRecord::new(hash("code"), grant(), "http://127.0.0.1/cb", "c".repeat(43), now + HOUR);
    insert_code(&*stores[0], &code).await;
    let outcomes = at_once(|i| {
        let store = stores[i % 2].clone();
        let hash = code.hash;
        async move { store.redeem_code(&hash, now, None).await }
    })
    .await;
    // One redemption; every other caller sees a replay of the same code.
    let mut outcomes: Vec<CodeRedemption> = outcomes.into_iter().map(|o| o.expect("no backend error")).collect();
    let winner = outcomes.iter().position(|o| *o == CodeRedemption::Redeemed(code.clone())).expect("one redemption");
    outcomes.remove(winner);
    assert!(outcomes.iter().all(|o| *o == CodeRedemption::Replayed(code.clone())), "{outcomes:?}");
}
