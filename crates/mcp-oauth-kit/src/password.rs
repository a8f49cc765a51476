//! Password hashing: argon2id PHC strings, and the few threads that verify them.
//!
//! Verification is deliberately slow (tens of milliseconds and 19 MiB of memory per run with
//! the default parameters), so it runs on a small, fixed set of threads of its own, never on the
//! async workers. Each thread reuses one memory block for every sign-in of a burst and gives it
//! back to the operating system once sign-ins stop.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::UserStoreError;
use crate::secret::Password;

/// Hash a password with argon2id and a random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`) that [`StaticUserStore::with_user_hash`] accepts.
///
/// ```
/// use mcp_oauth_kit::Password;
/// use mcp_oauth_kit::users::{hash_password, verify_password};
///
/// // When an account is created or its password changed; store the hash, never the password.
/// let hash = hash_password(&Password::new("correct horse"))?;
/// assert!(hash.starts_with("$argon2id$"));
/// assert!(verify_password(&hash, &Password::new("correct horse")));
/// assert!(!verify_password(&hash, &Password::new("wrong horse")));
/// # Ok::<(), mcp_oauth_kit::users::UserStoreError>(())
/// ```
///
/// [`StaticUserStore::with_user_hash`]: crate::StaticUserStore::with_user_hash
///
/// # Errors
/// [`UserStoreError::Backend`] if hashing fails (it does not for ordinary input).
pub fn hash_password(password: &Password) -> Result<String, UserStoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UserStoreError::Backend(e.to_string().into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserStoreError::Backend(e.to_string().into()))?;
    Argon2::new(ALGORITHM, VERSION, PARAMS)
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserStoreError::Backend(e.to_string().into()))
}

/// The argon2 variant, version and costs of every hash [`hash_password`] makes.
const ALGORITHM: Algorithm = Algorithm::Argon2id;
const VERSION: Version = Version::V0x13;
const PARAMS: Params = Params::DEFAULT;
const OUTPUT_LEN: usize = Params::DEFAULT_OUTPUT_LEN;

/// A hash of no password anyone knows (random salt and output) that costs one verification
/// exactly as `template` does: the same algorithm, version, costs, salt and output lengths.
/// Without a template (or with one that does not parse), it costs what a hash from
/// [`hash_password`] costs. Verifying an unknown user's password against it takes as long as
/// verifying a known user's.
pub(crate) fn dummy_hash(template: Option<&str>) -> String {
    let parsed = template.and_then(|t| PasswordHash::new(t).ok());
    let own_params = ParamsString::try_from(&PARAMS).unwrap_or_default();
    let (algorithm, version, params, salt_len, output_len) = match &parsed {
        Some(t) => {
            let mut buf = [0u8; 64];
            let salt_len = t.salt.and_then(|s| s.decode_b64(&mut buf).ok()).map_or(16, <[u8]>::len);
            (t.algorithm, t.version, t.params.clone(), salt_len, t.hash.map_or(OUTPUT_LEN, |h| h.len()))
        }
        None => (ALGORITHM.ident(), Some(VERSION.into()), own_params, 16, OUTPUT_LEN),
    };
    let mut random = [0u8; 128];
    // Unpredictable bytes are not needed (nobody can sign in against it); a failing RNG
    // leaves zeros, which cost the same.
    let _ = getrandom::fill(&mut random);
    let (salt_bytes, output_bytes) = random.split_at(64);
    let salt = SaltString::encode_b64(&salt_bytes[..salt_len.clamp(8, 48)]);
    let output = Output::new(&output_bytes[..output_len.clamp(Output::MIN_LENGTH, 64)]);
    match (salt, output) {
        (Ok(salt), Ok(output)) => {
            PasswordHash { algorithm, version, params, salt: Some(salt.as_salt()), hash: Some(output) }.to_string()
        }
        // Lengths are clamped to what both accept; this is not reached.
        _ => String::new(),
    }
}

/// Check a password against an argon2 PHC hash (as made by [`hash_password`]). It costs one
/// argon2 run and blocks: from async code use [`verify_password_or_dummy`], which also
/// verifies against a dummy hash for unknown users so that both cases take the same time.
pub fn verify_password(phc_hash: &str, password: &Password) -> bool {
    match PasswordHash::new(phc_hash) {
        Ok(parsed) => Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// [`verify_password`] on the kit's argon2 threads, for your own [`UserStore`].
///
/// [`UserStore`]: crate::UserStore
///
/// Why not `spawn_blocking`: each argon2 run needs its memory cost (19 MiB by default) in one
/// block. On tokio's many blocking threads every thread gets its own malloc arena, and glibc
/// keeps each arena's freed block, so the process grows with every thread that ever ran a
/// sign-in. A fixed, small set of threads bounds that to one block per thread, queues sign-in floods instead of running them all at once, and frees the blocks
/// 30 seconds after the last sign-in.
///
/// # Errors
/// [`UserStoreError::Backend`] only if the argon2 threads are gone.
pub(crate) async fn verify_password_async(phc_hash: String, password: Password) -> Result<bool, UserStoreError> {
    static WORKERS: OnceLock<Argon2Workers> = OnceLock::new();
    let workers = WORKERS.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
        Argon2Workers::start(threads, MEMORY_KEPT_IDLE)
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    workers.submit(Box::new(move |memory: &mut Vec<Block>| {
        let _ = tx.send(verify_with_memory(memory, &phc_hash, &password));
    }))?;
    rx.await.map_err(|_| UserStoreError::Backend("the argon2 worker stopped".into()))
}

/// Check a password for your own [`UserStore`]: against the user's stored argon2 PHC hash,
/// or, when there is no such user (`None`), against a dummy hash that costs exactly as much as
/// one from [`hash_password`], so that an unknown username takes as long as a wrong password
/// and the two cannot be told apart by timing. Runs on a small, fixed set of argon2
/// threads of the kit's own, never on the async workers.
///
/// Returns `Ok(true)` only for a known user and the right password; the unknown-user case is
/// always `Ok(false)`.
///
/// [`UserStore`]: crate::UserStore
///
/// ```
/// use mcp_oauth_kit::Password;
/// use mcp_oauth_kit::users::{hash_password, verify_password_or_dummy};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_oauth_kit::users::UserStoreError> {
/// let stored = hash_password(&Password::new("correct horse"))?;
/// // A row found by username: its hash. No row: `None`, at the same cost.
/// assert!(verify_password_or_dummy(Some(stored.clone()), &Password::new("correct horse")).await?);
/// assert!(!verify_password_or_dummy(Some(stored), &Password::new("wrong")).await?);
/// assert!(!verify_password_or_dummy(None, &Password::new("correct horse")).await?);
/// # Ok(()) }
/// ```
///
/// # Security
/// The dummy has the costs of [`hash_password`] (argon2id, m=19456, t=2, p=1). If your users'
/// hashes were made with other costs, rehash them at their next sign-in, or an unknown
/// username answers measurably faster or slower than a known one.
///
/// # Errors
/// [`UserStoreError::Backend`] if the stored hash is not an argon2 PHC string (a corrupt row:
/// signing in cannot succeed, and the operator should hear of it), or if the argon2 threads
/// are gone.
pub async fn verify_password_or_dummy(
    stored_hash: Option<String>,
    password: &Password,
) -> Result<bool, UserStoreError> {
    match stored_hash {
        Some(hash) => {
            if PasswordHash::new(&hash).is_err() {
                // The hash is not repeated in the error: it is a secret of its own.
                return Err(UserStoreError::backend("a stored password hash is not an argon2 PHC string"));
            }
            verify_password_async(hash, password.clone()).await
        }
        // Nobody knows the dummy's password; should one ever match, it still signs nobody in.
        None => verify_password_async(default_dummy_hash().to_owned(), password.clone()).await.map(|_| false),
    }
}

/// The dummy hash of [`verify_password_or_dummy`], made once: of no known password, with the
/// costs of [`hash_password`].
fn default_dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| dummy_hash(None))
}

/// How long an argon2 thread keeps its memory block after its last run. A burst of sign-ins
/// reuses the block; a quiet server returns it (19 MiB a thread) instead of holding it for good.
/// Allocating it again costs a few milliseconds of page faults, next to an argon2 run's tens.
const MEMORY_KEPT_IDLE: Duration = Duration::from_secs(30);

/// At least this many 1 KiB blocks are reserved (not touched) for a thread's memory: just over
/// glibc's largest dynamic mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB on 64-bit).
/// glibc raises its threshold to the size of a freed mapping, so a second 19 MiB allocation would
/// come from the heap, whose free top it keeps: the block would never be returned. Reserved
/// above the ceiling, the block is always a mapping of its own, and freeing it unmaps it. Only
/// the blocks argon2 uses are ever touched, so the reservation costs address space, not memory.
const OWN_MAPPING_BLOCKS: usize = 32 * 1024 + 1;

/// Verify with a caller-owned memory block, so that a thread allocates argon2's memory cost
/// once per burst instead of on every run.
fn verify_with_memory(memory: &mut Vec<Block>, hash: &str, password: &Password) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Ok(params), Ok(algorithm)) = (Params::try_from(&parsed), Algorithm::try_from(parsed.algorithm)) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.reserve_exact(blocks.max(OWN_MAPPING_BLOCKS) - memory.len());
        memory.resize(blocks, Block::new());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password.expose().as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
}

/// A verification to run, given the thread's reusable argon2 memory.
type Argon2Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The threads that run argon2, and the queue they take work from.
struct Argon2Workers {
    queue: Arc<JobQueue>,
}

/// Jobs waiting for a thread. A condition variable rather than a channel: every idle thread
/// waits on it at once, so each one notices on its own when it has been idle long enough.
#[derive(Default)]
struct JobQueue {
    jobs: Mutex<VecDeque<Argon2Job>>,
    ready: Condvar,
    /// Memory the threads hold between runs, in bytes (for tests and diagnostics).
    held_bytes: AtomicUsize,
}

impl JobQueue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Argon2Job>> {
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Argon2Workers {
    /// Start `threads` threads that free their memory after `keep_idle` without a job.
    fn start(threads: usize, keep_idle: Duration) -> Self {
        let queue = Arc::new(JobQueue::default());
        for i in 0..threads {
            let queue = queue.clone();
            let spawned =
                std::thread::Builder::new().name(format!("mcp-argon2-{i}")).spawn(move || work(&queue, keep_idle));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start an argon2 thread");
            }
        }
        Self { queue }
    }

    fn submit(&self, job: Argon2Job) -> Result<(), UserStoreError> {
        // Only the threads hold the other references: with none left, nobody would run the job.
        if Arc::strong_count(&self.queue) == 1 {
            return Err(UserStoreError::Backend("the argon2 workers are gone".into()));
        }
        self.queue.lock().push_back(job);
        self.queue.ready.notify_one();
        Ok(())
    }

    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.queue.held_bytes.load(Ordering::Relaxed)
    }
}

/// One argon2 thread: run jobs with this thread's memory; free it after `keep_idle` without one.
fn work(queue: &JobQueue, keep_idle: Duration) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let next = {
            let mut jobs = queue.lock();
            loop {
                if let Some(job) = jobs.pop_front() {
                    break Some(job);
                }
                if memory.is_empty() {
                    jobs = queue.ready.wait(jobs).unwrap_or_else(std::sync::PoisonError::into_inner);
                    continue;
                }
                let (guard, waited) =
                    queue.ready.wait_timeout(jobs, keep_idle).unwrap_or_else(std::sync::PoisonError::into_inner);
                jobs = guard;
                if waited.timed_out() && jobs.is_empty() {
                    break None;
                }
            }
        };
        let before = std::mem::size_of_val(memory.as_slice());
        match next {
            Some(job) => job(&mut memory),
            None => memory = Vec::new(),
        }
        let after = std::mem::size_of_val(memory.as_slice());
        if after >= before {
            queue.held_bytes.fetch_add(after - before, Ordering::Relaxed);
        } else {
            queue.held_bytes.fetch_sub(before - after, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// argon2's default memory cost, 19,456 blocks of 1 KiB.
    const DEFAULT_COST_BYTES: usize = 19_456 * 1024;

    #[test]
    fn reusable_memory_verification_agrees_with_the_reference() {
        let hash = hash_password(&Password::new("s3cret")).expect("hash");
        let mut memory = Vec::new();
        for (password, want) in [("s3cret", true), ("s3cret!", false), ("", false), ("s3cret", true)] {
            assert_eq!(verify_with_memory(&mut memory, &hash, &Password::new(password)), want, "{password}");
            assert_eq!(verify_password(&hash, &Password::new(password)), want, "{password}");
        }
        assert_eq!(std::mem::size_of_val(memory.as_slice()), DEFAULT_COST_BYTES);
        assert!(memory.capacity() >= OWN_MAPPING_BLOCKS, "reserved past glibc's mmap threshold ceiling");
        assert!(!verify_with_memory(&mut memory, "not a hash", &Password::new("")));
    }

    /// Algorithm, version, m, t, p, salt and output lengths of a PHC string.
    fn shape(phc: &str) -> (String, Option<u32>, u32, u32, u32, usize, usize) {
        let parsed = PasswordHash::new(phc).expect("a PHC string");
        let params = Params::try_from(&parsed).expect("argon2 parameters");
        let salt = parsed.salt.expect("a salt").as_str().len();
        let out = parsed.hash.expect("an output").len();
        (parsed.algorithm.to_string(), parsed.version, params.m_cost(), params.t_cost(), params.p_cost(), salt, out)
    }

    #[test]
    fn the_unknown_user_dummy_costs_a_full_verification_like_a_real_hash() {
        let real = hash_password(&Password::new("password123")).expect("hash");
        let dummy = default_dummy_hash();
        assert_eq!(shape(dummy), shape(&real));
        assert_eq!(shape(dummy), ("argon2id".into(), Some(0x13), 19_456, 2, 1, 22, 32));
        // The whole argon2 run happens: its full memory cost is filled, and the output compared.
        let mut memory = Vec::new();
        assert!(!verify_with_memory(&mut memory, dummy, &Password::new("password123")));
        assert_eq!(std::mem::size_of_val(memory.as_slice()), DEFAULT_COST_BYTES);
        assert_eq!(default_dummy_hash(), dummy, "made once");
    }

    #[tokio::test]
    async fn verify_or_dummy_signs_in_only_a_known_user_with_the_right_password() {
        let stored = hash_password(&Password::new("password123")).expect("hash");
        let cases = [
            (Some(stored.clone()), "password123", true),
            (Some(stored.clone()), "password124", false),
            (Some(stored), "", false),
            (None, "password123", false),
            (None, "", false),
        ];
        for (hash, password, want) in cases {
            let known = hash.is_some();
            let got = verify_password_or_dummy(hash, &Password::new(password)).await.expect("verified");
            assert_eq!(got, want, "known user: {known}, password {password:?}");
        }
    }

    #[tokio::test]
    async fn verify_or_dummy_refuses_a_corrupt_stored_hash_with_an_error_that_hides_it() {
        let err = verify_password_or_dummy(Some("plaintext-password".into()), &Password::new("plaintext-password"))
            .await
            .expect_err("a corrupt hash is an error");
        assert!(matches!(err, UserStoreError::Backend(_)), "{err:?}");
        assert_eq!(err.to_string(), "user store backend error: a stored password hash is not an argon2 PHC string");
    }

    fn verify_on(workers: &Argon2Workers, hash: &str, password: &str) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let (hash, password) = (hash.to_owned(), Password::new(password));
        workers
            .submit(Box::new(move |memory: &mut Vec<Block>| {
                let _ = tx.send(verify_with_memory(memory, &hash, &password));
            }))
            .expect("workers running");
        rx.recv_timeout(Duration::from_secs(30)).expect("an answer")
    }

    /// Wait (at most 10 s) until what the workers hold satisfies `ok`; returns it.
    fn wait_until_held(workers: &Argon2Workers, ok: impl Fn(usize) -> bool) -> usize {
        for _ in 0..1000 {
            if ok(workers.held_bytes()) {
                return workers.held_bytes();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the argon2 threads hold {} bytes", workers.held_bytes());
    }

    fn wait_for_held(workers: &Argon2Workers, bytes: usize) {
        wait_until_held(workers, |held| held == bytes);
    }

    #[test]
    fn threads_keep_their_memory_through_a_burst_and_free_it_when_idle() {
        let hash = hash_password(&Password::new("s3cret")).expect("hash");
        let workers = Argon2Workers::start(1, Duration::from_millis(400));
        assert_eq!(workers.held_bytes(), 0, "nothing is allocated before the first sign-in");
        assert!(verify_on(&workers, &hash, "s3cret"));
        assert!(!verify_on(&workers, &hash, "wrong"));
        // Counted right after the job, before the thread next waits.
        wait_for_held(&workers, DEFAULT_COST_BYTES);
        wait_for_held(&workers, 0);
        // A sign-in after the release allocates again and still verifies.
        assert!(verify_on(&workers, &hash, "s3cret"));
        wait_for_held(&workers, DEFAULT_COST_BYTES);
    }

    #[test]
    fn several_threads_share_one_queue() {
        let hash = hash_password(&Password::new("s3cret")).expect("hash");
        let workers = Arc::new(Argon2Workers::start(2, Duration::from_secs(60)));
        let answers: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let (workers, hash) = (&workers, &hash);
                    s.spawn(move || verify_on(workers, hash, if i % 2 == 0 { "s3cret" } else { "nope" }))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("joined")).collect()
        });
        assert_eq!(answers, [true, false, true, false]);
        // One block per thread that ran a job, however the four were shared out.
        let held = wait_until_held(&workers, |held| held > 0 && held.is_multiple_of(DEFAULT_COST_BYTES));
        assert!(held == DEFAULT_COST_BYTES || held == 2 * DEFAULT_COST_BYTES, "{held}");
    }
}
