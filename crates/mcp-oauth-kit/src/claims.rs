//! Extra claims about the caller (email, roles, organisation, an identity provider's
//! `permissions`): a JSON object that a [`UserStore`](crate::UserStore) attaches to a
//! [`User`](crate::User) or a token verifier to an [`AccessToken`](crate::AccessToken), and
//! that tools read typed with [`AccessToken::claim`](crate::AccessToken::claim).
//!
//! The built-in authorization server stores a user's claims with the grant at sign-in, and
//! takes them afresh from [`UserStore::find_by_id`](crate::UserStore::find_by_id) at each
//! refresh, so a changed email or role reaches the next access token.
//!
//! Reach for this module to match on a [`ClaimError`] (a claim missing or of another type)
//! or to name the [`Claims`] map in code of your own.

use serde_json::{Map, Value};

/// The claims of a user or token: a JSON object.
pub type Claims = Map<String, Value>;

/// Claims as `{"email": [redacted], …}` in a `Debug`: which there are, not what they say
/// (an email address, groups: personal data that has no place in a log).
pub(crate) struct ClaimNames<'a>(pub(crate) &'a Claims);

impl std::fmt::Debug for ClaimNames<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.keys().map(|name| (name, crate::secret::Redacted))).finish()
    }
}

/// The most a user's claims may take as JSON (16 KiB). They are stored with every code and token
/// of a grant and copied into every verified request: a sign-in or refresh whose user store
/// hands over more fails with `server_error` (the cause is logged), rather than fill the store.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;

/// Why [`AccessToken::claim`](crate::AccessToken::claim) found no value of the asked type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The token has no claim of that name (ask for an `Option<T>` to get `None` instead).
    #[error("the caller's token has no {name:?} claim")]
    Missing {
        /// The claim asked for.
        name: String,
    },
    /// The claim is there, but its JSON value is not of the type asked for.
    #[error("the caller's {name:?} claim does not have the expected type: {source}")]
    Invalid {
        /// The claim asked for.
        name: String,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
}

/// A user's claims over [`MAX_CLAIMS_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("the user's claims take {bytes} bytes as JSON, more than the {MAX_CLAIMS_BYTES} allowed")]
pub(crate) struct ClaimsTooLarge {
    bytes: usize,
}

/// `claims` as stored: JSON text, at most [`MAX_CLAIMS_BYTES`].
pub(crate) fn checked_size(claims: &Claims) -> Result<(), ClaimsTooLarge> {
    // A map of JSON values always serializes; its length is what a store keeps.
    let bytes = serde_json::to_vec(claims).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_CLAIMS_BYTES { Err(ClaimsTooLarge { bytes }) } else { Ok(()) }
}

/// The claim `name` of `claims` as a `T`; a missing claim reads as JSON `null`, so an
/// `Option<T>` gets `None`.
pub(crate) fn read<T: serde::de::DeserializeOwned>(claims: &Claims, name: &str) -> Result<T, ClaimError> {
    match claims.get(name) {
        Some(value) => T::deserialize(value).map_err(|source| ClaimError::Invalid { name: name.to_owned(), source }),
        None => T::deserialize(&Value::Null).map_err(|_| ClaimError::Missing { name: name.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn claims_read_typed() {
        let c = claims(json!({ "email": "a@example.com", "roles": ["admin", "dev"], "age": 7 }));
        assert_eq!(read::<String>(&c, "email").expect("email"), "a@example.com");
        assert_eq!(read::<Vec<String>>(&c, "roles").expect("roles"), ["admin", "dev"]);
        assert_eq!(read::<Option<String>>(&c, "org").expect("optional"), None);
        assert_eq!(read::<Option<u32>>(&c, "age").expect("optional"), Some(7));
        match read::<String>(&c, "org") {
            Err(ClaimError::Missing { name }) => assert_eq!(name, "org"),
            other => panic!("expected Missing, got {other:?}"),
        }
        match read::<u32>(&c, "email") {
            Err(e @ ClaimError::Invalid { .. }) => {
                assert!(e.to_string().starts_with("the caller's \"email\" claim does not have the expected type"));
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn claims_are_bounded() {
        let fits = claims(json!({ "k": "x".repeat(MAX_CLAIMS_BYTES - r#"{"k":""}"#.len()) }));
        assert!(checked_size(&fits).is_ok());
        let over = claims(json!({ "k": "x".repeat(MAX_CLAIMS_BYTES) }));
        let err = checked_size(&over).expect_err("too large");
        assert_eq!(err.bytes, MAX_CLAIMS_BYTES + r#"{"k":""}"#.len());
    }
}
