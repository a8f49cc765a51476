//! The demo users. DEMO ONLY: real servers implement `UserStore` over their user database.

use mcp_oauth_kit::StaticUserStore;
use mcp_oauth_kit::users::UserStoreError;

/// alice / password123 and bob / hunter2, as argon2id hashes (made with
/// `mcp_oauth_kit::users::hash_password`), so that no plain password sits in memory.
pub(crate) fn demo_users() -> Result<StaticUserStore, UserStoreError> {
    StaticUserStore::new()
        .with_user_hash(
            "user-alice",
            "alice",
            "$argon2id$v=19$m=19456,t=2,p=1$FXu7BxJ16M/kH9foUBJM6A$FSVLQ27iHKnxrByeKJutYa57oRUNFICmVfsiNoEtVdU",
        )?
        .with_user_hash(
            "user-bob",
            "bob",
            "$argon2id$v=19$m=19456,t=2,p=1$Ip1L8W+xhbHKtk10/cJs4g$WuCpFfrTPZXiqHek1thr5boB0LM8umSnAm4uniHdqQg",
        )
}

#[cfg(test)]
mod tests {
    use mcp_oauth_kit::{Password, UserStore};

    #[tokio::test]
    async fn the_documented_passwords_work() {
        let users = super::demo_users().expect("valid hashes");
        for (name, password) in [("alice", "password123"), ("bob", "hunter2")] {
            let user = users.authenticate(name, &Password::new(password)).await.expect("no backend error");
            assert_eq!(user.map(|u| u.username), Some(name.to_owned()));
        }
        assert!(users.authenticate("alice", &Password::new("hunter2")).await.expect("ok").is_none());
    }
}
