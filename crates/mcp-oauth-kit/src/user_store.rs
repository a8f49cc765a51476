//! Who may sign in: the [`UserStore`] trait that the login page calls, and [`StaticUserStore`],
//! a fixed list of users with argon2id password hashes.
//!
//! Implement [`UserStore`] over your own user database to use the kit with real accounts.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::PasswordHash;
use async_trait::async_trait;

use crate::error::UserStoreError;
use crate::password::{hash_password, verify_password_async};
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
        assert!(!crate::password::verify_password(DUMMY_HASH, &Password::new("")));
    }

    #[test]
    fn rejects_a_malformed_hash() {
        assert!(StaticUserStore::new().with_user_hash("1", "x", "plaintext").is_err());
    }
}
