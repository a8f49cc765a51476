//! Who may sign in: the [`UserStore`] trait that the login page calls, and [`StaticUserStore`],
//! a fixed list of users with argon2id password hashes.
//!
//! Implement [`UserStore`] over your own user database to use the kit with real accounts.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::PasswordHash;
use async_trait::async_trait;

use crate::claims::{ClaimNames, Claims};
use crate::error::UserStoreError;
use crate::password::{dummy_hash, hash_password, verify_password_async};
use crate::secret::Password;

/// A user who can sign in. Its `Debug` names the claims without their values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// A stable, unique identifier: the `subject` of the tokens issued for this user. It must
    /// never be reused for another person.
    pub id: String,
    /// The name the user signs in with and that tools show.
    pub username: String,
    /// Extra claims (email, roles, organisation, …) that every access token of the user's
    /// sign-ins carries, for tools to read with [`AccessToken::claim`](crate::AccessToken::claim).
    /// At most [`MAX_CLAIMS_BYTES`](crate::claims::MAX_CLAIMS_BYTES) as JSON, or the sign-in
    /// fails. The kit reads them again from [`UserStore::find_by_id`] at each refresh.
    pub claims: Claims,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { id, username, claims } = self;
        f.debug_struct("User").field("id", id).field("username", username).field("claims", &ClaimNames(claims)).finish()
    }
}

impl User {
    /// A user with the given id and username, and no claims.
    pub fn new(id: impl Into<String>, username: impl Into<String>) -> Self {
        Self { id: id.into(), username: username.into(), claims: Claims::new() }
    }

    /// Add the claim `name` (replacing one of that name).
    ///
    /// ```
    /// use mcp_oauth_kit::User;
    ///
    /// let user = User::new("u-1", "carol").with_claim("email", "carol@example.com").with_claim("roles", vec!["admin"]);
    /// assert_eq!(user.claims["roles"], serde_json::json!(["admin"]));
    /// ```
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }
}

/// The user database behind the login page.
///
/// # Security
/// `authenticate` must take about the same time whether the username exists or not, or an
/// attacker can enumerate accounts by timing: verify against a dummy hash for unknown users
/// (as [`StaticUserStore`] does). [`verify_password_or_dummy`] does both, given the stored hash
/// or `None`; the README's `DbUsers` shows a store over a SQL table with it.
///
/// A store over a map (a table in a real server) that also refuses disabled accounts:
///
/// ```
/// use std::collections::HashMap;
///
/// use mcp_oauth_kit::async_trait;
/// use mcp_oauth_kit::users::{Password, User, UserStore, UserStoreError, verify_password_or_dummy};
///
/// struct Account {
///     user: User,
///     phc_hash: String,
///     disabled: bool,
/// }
///
/// /// Accounts by username.
/// struct MyUsers(HashMap<String, Account>);
///
/// #[async_trait]
/// impl UserStore for MyUsers {
///     async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
///         let account = self.0.get(username);
///         // An unknown name is checked against a dummy hash, at the same cost.
///         let ok = verify_password_or_dummy(account.map(|a| a.phc_hash.clone()), password).await?;
///         Ok(account.filter(|a| ok && !a.disabled).map(|a| a.user.clone()))
///     }
///
///     async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
///         Ok(self.0.values().find(|a| a.user.id == id).map(|a| a.user.clone()))
///     }
///
///     async fn may_sign_in(&self, id: &str) -> Result<bool, UserStoreError> {
///         Ok(self.0.values().any(|a| a.user.id == id && !a.disabled))
///     }
/// }
/// ```
///
/// [`verify_password_or_dummy`]: crate::users::verify_password_or_dummy
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

    /// Whether the user `id` (the token subject) still exists and may sign in. Asked at every
    /// refresh: on `false` the refresh fails with `invalid_grant` and nothing is issued, so a
    /// deleted or disabled account loses access when its access token expires (revoke it at
    /// once with [`OAuthServer::revoke_user`](crate::auth::OAuthServer::revoke_user)). Asked too
    /// after a right password (on `false`: no code, no session) and whenever a sign-in session
    /// is used (on `false` the session ends and the password is asked). The default
    /// says whether [`UserStore::find_by_id`] still finds the user; override it to refuse
    /// disabled or locked accounts too.
    ///
    /// # Errors
    /// [`UserStoreError`] only when the backend fails (the refresh then fails with
    /// `server_error`).
    async fn may_sign_in(&self, id: &str) -> Result<bool, UserStoreError> {
        Ok(self.find_by_id(id).await?.is_some())
    }
}

#[async_trait]
impl<T: UserStore + ?Sized> UserStore for Arc<T> {
    async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
        (**self).authenticate(username, password).await
    }
    async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
        (**self).find_by_id(id).await
    }
    async fn may_sign_in(&self, id: &str) -> Result<bool, UserStoreError> {
        (**self).may_sign_in(id).await
    }
}

/// A fixed set of users with argon2id password hashes, for demos, tests and small deployments.
///
/// ```
/// use mcp_oauth_kit::{Password, StaticUserStore};
/// use mcp_oauth_kit::users::hash_password;
/// let hash = hash_password(&Password::new("correct horse")).unwrap();
/// let users = StaticUserStore::new().with_user_hash("u-1", "carol", &hash).unwrap();
/// ```
#[derive(Clone)]
pub struct StaticUserStore {
    by_name: HashMap<String, (User, String)>,
    /// Verified against when the username is unknown, so that both cases cost one argon2 run
    /// with the same parameters. Made at the first unknown username, after the users are in.
    dummy_hash: OnceLock<String>,
}

impl std::fmt::Debug for StaticUserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticUserStore").field("users", &self.by_name.len()).finish_non_exhaustive()
    }
}

impl Default for StaticUserStore {
    fn default() -> Self {
        Self::new()
    }
}

impl StaticUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self { by_name: HashMap::new(), dummy_hash: OnceLock::new() }
    }

    /// The hash an unknown username is verified against: of no known password, and shaped
    /// like the hash most users have (their algorithm and costs; with no users, those of
    /// [`hash_password`]), so that a wrong username costs what a wrong password costs.
    fn dummy(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            // Per shape (`$alg$v=…$m=…,t=…,p=…`, salt length, output length): how many users
            // have it, and one of their hashes.
            let mut shapes: HashMap<(&str, usize, usize), (usize, &str)> = HashMap::new();
            for (_, hash) in self.by_name.values() {
                let mut parts = hash.rsplitn(3, '$');
                if let (Some(output), Some(salt), Some(head)) = (parts.next(), parts.next(), parts.next()) {
                    shapes.entry((head, salt.len(), output.len())).or_insert((0, hash)).0 += 1;
                }
            }
            let template = shapes.into_iter().max_by_key(|&(shape, (n, _))| (n, shape)).map(|(_, (_, hash))| hash);
            dummy_hash(template)
        })
    }

    /// Add a user by id, username and argon2 PHC hash (see [`hash_password`]).
    ///
    /// ```
    /// use mcp_oauth_kit::StaticUserStore;
    ///
    /// // A hash made once with `hash_password` and kept in the configuration, not the password.
    /// let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$hhoC+6A3ZpVcpMVOXcQjQkYR1PRUdA9ac7XJT55XwZw";
    /// let users = StaticUserStore::new().with_user_hash("u-1", "carol", hash)?;
    /// assert!(StaticUserStore::new().with_user_hash("u-2", "dave", "not a hash").is_err());
    /// # Ok::<(), mcp_oauth_kit::users::UserStoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`UserStoreError::InvalidHash`] if `phc_hash` is not a PHC string.
    pub fn with_user_hash(self, id: &str, username: &str, phc_hash: &str) -> Result<Self, UserStoreError> {
        self.with_account_hash(User::new(id, username), phc_hash)
    }

    /// Add `user`, with their claims, by argon2 PHC hash (see [`hash_password`]).
    ///
    /// ```
    /// use mcp_oauth_kit::{Password, StaticUserStore, User};
    /// use mcp_oauth_kit::users::hash_password;
    ///
    /// let hash = hash_password(&Password::new("correct horse"))?;
    /// let users = StaticUserStore::new()
    ///     .with_account_hash(User::new("u-1", "carol").with_claim("email", "carol@example.com"), &hash)?;
    /// # Ok::<(), mcp_oauth_kit::users::UserStoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`UserStoreError::InvalidHash`] if `phc_hash` is not a PHC string.
    pub fn with_account_hash(mut self, user: User, phc_hash: &str) -> Result<Self, UserStoreError> {
        PasswordHash::new(phc_hash).map_err(|_| UserStoreError::InvalidHash(user.username.clone()))?;
        self.by_name.insert(user.username.clone(), (user, phc_hash.to_owned()));
        self.dummy_hash = OnceLock::new();
        Ok(self)
    }

    /// Add `user`, with their claims, and a plain password hashed now (one argon2 run).
    ///
    /// ```
    /// use mcp_oauth_kit::{Password, StaticUserStore, User};
    ///
    /// let carol = User::new("u-1", "carol").with_claim("roles", vec!["admin"]);
    /// let users = StaticUserStore::new().with_account(carol, &Password::new("correct horse"))?;
    /// # Ok::<(), mcp_oauth_kit::users::UserStoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`UserStoreError`] if hashing fails.
    pub fn with_account(self, user: User, password: &Password) -> Result<Self, UserStoreError> {
        let hash = hash_password(password)?;
        self.with_account_hash(user, &hash)
    }

    /// Add a user with a plain password, hashed now (costs one argon2 run at start-up).
    ///
    /// ```
    /// use mcp_oauth_kit::{Password, StaticUserStore};
    ///
    /// // Demo only: a real server keeps hashes, not passwords, in its configuration.
    /// let users = StaticUserStore::new().with_user("u-1", "demo", &Password::new("demo"))?;
    /// # Ok::<(), mcp_oauth_kit::users::UserStoreError>(())
    /// ```
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
            None => (self.dummy().to_owned(), None),
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

    /// Algorithm, m, t, p and output length of a PHC string.
    fn costs(phc: &str) -> (String, u32, u32, u32, usize) {
        let parsed = PasswordHash::new(phc).expect("a PHC string");
        let params = argon2::Params::try_from(&parsed).expect("argon2 parameters");
        let out = parsed.hash.expect("an output").len();
        (parsed.algorithm.to_string(), params.m_cost(), params.t_cost(), params.p_cost(), out)
    }

    #[test]
    fn unknown_users_cost_what_the_stores_own_hashes_cost() {
        let own = hash_password(&Password::new("x")).expect("hash");
        assert_eq!(costs(StaticUserStore::new().dummy()), costs(&own), "an empty store: hash_password's costs");
        let users = StaticUserStore::new().with_user("u1", "alice", &Password::new("password123")).expect("hash");
        assert_eq!(costs(users.dummy()), costs(&own));

        // Users imported with other costs: the dummy follows the costs most users have.
        let params = argon2::Params::new(8 * 1024, 3, 1, Some(32)).expect("params");
        let argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let imported = |pw: &str| {
            let salt = argon2::password_hash::SaltString::encode_b64(b"0123456789abcdef").expect("salt");
            argon2::PasswordHasher::hash_password(&argon2, pw.as_bytes(), &salt).expect("hash").to_string()
        };
        let users = StaticUserStore::new()
            .with_user_hash("u1", "carol", &imported("a"))
            .and_then(|s| s.with_user_hash("u2", "dave", &imported("b")))
            .and_then(|s| s.with_user_hash("u3", "erin", &own))
            .expect("users");
        let dummy = users.dummy();
        assert_eq!(costs(dummy), ("argon2id".into(), 8 * 1024, 3, 1, 32));
        assert!(!crate::password::verify_password(dummy, &Password::new("a")), "nobody's password");
        assert!(!dummy.ends_with(imported("a").rsplit('$').next().expect("output")), "its own output");
    }

    #[test]
    fn the_dummy_hash_parses_so_unknown_users_cost_a_full_verification() {
        let store = StaticUserStore::new();
        assert!(PasswordHash::new(store.dummy()).is_ok());
        assert!(!crate::password::verify_password(store.dummy(), &Password::new("")));
    }

    #[test]
    fn rejects_a_malformed_hash() {
        assert!(StaticUserStore::new().with_user_hash("1", "x", "plaintext").is_err());
    }
}
