//! Who may sign in: the [`UserStore`] trait that the login page calls, and [`StaticUserStore`],
//! a fixed list of users with argon2id password hashes.
//!
//! Implement [`UserStore`] over your own user database to use the kit with real accounts.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;

use crate::error::UserStoreError;
use crate::secret::Password;

/// A user who can sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// A stable, unique identifier: the `subject` of the tokens issued for this user. It must
    /// never be reused for another person.
    pub id: String,
    /// The name the user signs in with and that tools show.
    pub username: String,
}

impl User {
    /// A user with the given id and username.
    pub fn new(id: impl Into<String>, username: impl Into<String>) -> Self {
        Self { id: id.into(), username: username.into() }
    }
}

/// The user database behind the login page.
///
/// # Security
/// `authenticate` must take about the same time whether the username exists or not, or an
/// attacker can enumerate accounts by timing: verify against a dummy hash for unknown users
/// (as [`StaticUserStore`] does).
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Check a username and password. `Ok(None)` for an unknown user or a wrong password
    /// (the two must look alike to the caller).
    ///
    /// # Errors
    /// [`UserStoreError`] only when the backend fails.
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError>;

    /// Look a user up by id (the token subject), for example to check the account still exists.
    ///
    /// # Errors
    /// [`UserStoreError`] only when the backend fails.
    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError>;
}

#[async_trait]
impl<T: UserStore + ?Sized> UserStore for Arc<T> {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        (**self).authenticate(username, password).await
    }
    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        (**self).find_by_id(id).await
    }
}

/// Hash a password with argon2id and a random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`) that [`StaticUserStore::with_user_hash`] accepts.
///
/// # Errors
/// [`UserStoreError::Backend`] if hashing fails (it does not for ordinary input).
pub fn hash_password(password: &Password) -> Result<String, UserStoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UserStoreError::Backend(e.to_string().into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserStoreError::Backend(e.to_string().into()))?;
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserStoreError::Backend(e.to_string().into()))
}

/// A fixed set of users with argon2id password hashes, for demos, tests and small deployments.
///
/// ```
/// use mcp_oauth_kit::{Password, StaticUserStore, hash_password};
/// let hash = hash_password(&Password::new("correct horse")).unwrap();
/// let users = StaticUserStore::new().with_user_hash("u-1", "carol", &hash).unwrap();
/// ```
#[derive(Clone)]
pub struct StaticUserStore {
    by_name: HashMap<String, (User, String)>,
    /// Verified against when the username is unknown, so that both cases cost one argon2 run.
    dummy_hash: String,
}

impl std::fmt::Debug for StaticUserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticUserStore").field("users", &self.by_name.len()).finish_non_exhaustive()
    }
}

/// A valid argon2id hash (default parameters) of a random password nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2oT3bFQXqNBu0tCW6l5PZMxEuFA0FQdJq8wK2m8N5zw";

impl Default for StaticUserStore {
    fn default() -> Self {
        Self::new()
    }
}

impl StaticUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self { by_name: HashMap::new(), dummy_hash: DUMMY_HASH.to_owned() }
    }

    /// Add a user by id, username and argon2 PHC hash (see [`hash_password`]).
    ///
    /// # Errors
    /// [`UserStoreError::InvalidHash`] if `phc_hash` is not a PHC string.
    pub fn with_user_hash(mut self, id: &str, username: &str, phc_hash: &str) -> Result<Self, UserStoreError> {
        PasswordHash::new(phc_hash).map_err(|_| UserStoreError::InvalidHash(username.to_owned()))?;
        self.by_name.insert(username.to_owned(), (User::new(id, username), phc_hash.to_owned()));
        Ok(self)
    }

    /// Add a user with a plain password, hashed now (costs one argon2 run at start-up).
    ///
    /// # Errors
    /// [`UserStoreError`] if hashing fails.
    pub fn with_user(self, id: &str, username: &str, password: &Password) -> Result<Self, UserStoreError> {
        let hash = hash_password(password)?;
        self.with_user_hash(id, username, &hash)
    }
}

/// Check a password against an argon2 PHC hash (as made by [`hash_password`]). It costs one
/// argon2 run and blocks: from async code use [`verify_password_async`]. For unknown users,
/// verify against a dummy hash so that both cases take the same time.
pub fn verify_password(phc_hash: &str, password: &Password) -> bool {
    verify(phc_hash, password)
}

/// [`verify_password`] on the kit's argon2 threads, for your own [`UserStore`].
///
/// Why not `spawn_blocking`: each argon2 run allocates its memory cost (19 MiB by default) in
/// one block. On tokio's many blocking threads every thread gets its own malloc arena, and
/// glibc keeps each arena's freed block: the process grew by hundreds of MiB over a few
/// thousand sign-ins in the benchmark. A fixed, small set of threads bounds that to one
/// block per thread, and queues sign-in floods instead of running them all at once.
///
/// # Errors
/// [`UserStoreError::Backend`] only if the argon2 threads are gone.
pub async fn verify_password_async(phc_hash: String, password: Password) -> Result<bool, UserStoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    argon2_workers().submit(Box::new(move |memory: &mut Vec<Block>| {
        let _ = tx.send(verify_with_memory(memory, &phc_hash, &password));
    }))?;
    rx.await.map_err(|_| UserStoreError::Backend("the argon2 worker stopped".into()))
}

/// A verification to run, given the worker's reusable argon2 memory.
type Argon2Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Verify with a caller-owned memory block, so that a worker allocates argon2's memory cost
/// once instead of on every run (allocating and freeing 19 MiB per sign-in is what made glibc
/// keep growing the heap: it raises its mmap threshold after the first free).
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

/// The threads that run argon2 (at most 4, at most one per core).
struct Argon2Workers {
    jobs: std::sync::mpsc::Sender<Argon2Job>,
}

impl Argon2Workers {
    fn submit(&self, job: Argon2Job) -> Result<(), UserStoreError> {
        self.jobs.send(job).map_err(|_| UserStoreError::Backend("the argon2 workers are gone".into()))
    }
}

fn argon2_workers() -> &'static Argon2Workers {
    static WORKERS: std::sync::OnceLock<Argon2Workers> = std::sync::OnceLock::new();
    WORKERS.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<Argon2Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("mcp-argon2-{i}")).spawn(move || {
                // This thread's argon2 memory, allocated on first use and reused ever after.
                let mut memory = Vec::new();
                loop {
                    // The lock is held only while waiting for the next job, not while running it.
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => job(&mut memory),
                        Err(_) => return, // every sender is gone
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start an argon2 thread");
            }
        }
        Argon2Workers { jobs }
    })
}

fn verify(hash: &str, password: &Password) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[async_trait]
impl UserStore for StaticUserStore {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        let (hash, user) = match self.by_name.get(username) {
            Some((user, hash)) => (hash.clone(), Some(user.clone())),
            None => (self.dummy_hash.clone(), None),
        };
        // argon2 is deliberately slow (tens of milliseconds): keep it off the async workers.
        let ok = verify_password_async(hash, password.clone()).await?;
        Ok(if ok { user } else { None })
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        Ok(self.by_name.values().find(|(u, _)| u.id == id).map(|(u, _)| u.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn authenticates_only_the_right_password() {
        let store = StaticUserStore::new().with_user("u1", "alice", &Password::new("password123")).expect("hash");
        let alice = store.authenticate("alice", &Password::new("password123")).await.expect("ok");
        assert_eq!(alice, Some(User::new("u1", "alice")));
        assert_eq!(store.authenticate("alice", &Password::new("nope")).await.expect("ok"), None);
        assert_eq!(store.authenticate("mallory", &Password::new("password123")).await.expect("ok"), None);
        assert_eq!(store.find_by_id("u1").await.expect("ok").map(|u| u.username), Some("alice".into()));
    }

    #[test]
    fn the_dummy_hash_parses_so_unknown_users_cost_a_full_verification() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify(DUMMY_HASH, &Password::new("")));
    }

    #[test]
    fn reusable_memory_verification_agrees_with_the_reference() {
        let hash = hash_password(&Password::new("s3cret")).expect("hash");
        let mut memory = Vec::new();
        for (password, want) in [("s3cret", true), ("s3cret!", false), ("", false), ("s3cret", true)] {
            assert_eq!(verify_with_memory(&mut memory, &hash, &Password::new(password)), want, "{password}");
            assert_eq!(verify(&hash, &Password::new(password)), want, "{password}");
        }
        assert!(!verify_with_memory(&mut memory, DUMMY_HASH, &Password::new("")));
        assert!(!verify_with_memory(&mut memory, "not a hash", &Password::new("")));
    }

    #[test]
    fn rejects_a_malformed_hash() {
        assert!(StaticUserStore::new().with_user_hash("1", "x", "plaintext").is_err());
    }
}
