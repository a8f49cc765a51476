//! Who may sign in on the login page: the [`UserStore`] trait, [`StaticUserStore`] (a fixed
//! list with argon2id hashes), and the password helpers for a store of your own.
//!
//! Reach for this module when your users live in your own database: implement [`UserStore`]
//! over it, check passwords with [`verify_password_or_dummy`] (an unknown user costs as much
//! as a wrong password, so neither shows by timing), and make hashes for new accounts with
//! [`hash_password`]. The common types ([`UserStore`], [`User`], [`StaticUserStore`],
//! [`Password`]) are also at the crate root.
//!
//! ```
//! use std::collections::HashMap;
//!
//! use mcp_oauth_kit::async_trait;
//! use mcp_oauth_kit::users::{Password, User, UserStore, UserStoreError, verify_password_or_dummy};
//!
//! /// Users by name with their argon2 PHC hashes; a table in a real server.
//! struct MyUsers(HashMap<String, (User, String)>);
//!
//! #[async_trait]
//! impl UserStore for MyUsers {
//!     async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
//!         let row = self.0.get(username);
//!         let hash = row.map(|(_, hash)| hash.clone());
//!         // Verified even for an unknown name, at the same cost.
//!         let ok = verify_password_or_dummy(hash, password).await?;
//!         Ok(row.filter(|_| ok).map(|(user, _)| user.clone()))
//!     }
//!
//!     async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
//!         Ok(self.0.values().find(|(user, _)| user.id == id).map(|(user, _)| user.clone()))
//!     }
//! }
//! ```

pub use crate::error::UserStoreError;
pub use crate::password::{hash_password, verify_password, verify_password_or_dummy};
pub use crate::secret::Password;
pub use crate::user_store::{StaticUserStore, User, UserStore};
