//! The caller described by an external authorization server's token claims: a verified JWT's
//! payload or an RFC 7662 introspection answer. Both verifiers apply the same rules here, so a
//! deployment can switch between them without its tools seeing a different caller.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::provider::{AccessToken, TokenRejection};

/// Claims the verifiers read themselves; all others reach the tools as the caller's claims.
const READ_HERE: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scp",
    "client_id",
    "azp",
    "active",
    "token_type",
    "username",
];

/// What a token's claims must satisfy.
pub(crate) struct ClaimRules<'a> {
    /// The issuer `iss` must equal (`None`: `iss` is not required, only checked when present).
    pub(crate) issuer: Option<&'a str>,
    /// The audience `aud` (a string or an array) must name.
    pub(crate) audience: &'a str,
    /// Claims that may hold the username, in order; the subject when none does.
    pub(crate) username_claims: &'a [&'a str],
    /// How far ahead of `now` `nbf` and `iat` may be.
    pub(crate) clock_skew: Duration,
    pub(crate) now: SystemTime,
}

/// A numeric date claim as a time; `Err` when present but not a non-negative number.
fn date(claims: &Map<String, Value>, name: &str) -> Result<Option<SystemTime>, TokenRejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => {
            let secs = v.as_u64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64));
            secs.and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s))).map(Some).ok_or(TokenRejection::Invalid)
        }
    }
}

/// The scopes of `scope` (space separated), `scp` (an array or a string) and `permissions`
/// (an array), together.
pub(crate) fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut all = BTreeSet::new();
    let mut words = |s: &str| all.extend(s.split_whitespace().map(str::to_owned));
    for name in ["scope", "scp", "permissions"] {
        match claims.get(name) {
            Some(Value::String(s)) => words(s),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut words),
            _ => {}
        }
    }
    all.into_iter().collect()
}

impl ClaimRules<'_> {
    /// The caller `claims` describe, if they satisfy the rules: `iss`, `aud`, no `cnf` (the
    /// token is not sender-constrained), `exp` (required, and in the future: the kit never
    /// serves a caller past its expiry), `nbf` and `iat` (within the skew), and a non-empty
    /// `sub`.
    pub(crate) fn caller(&self, mut claims: Map<String, Value>) -> Result<AccessToken, TokenRejection> {
        let iss = claims.get("iss").and_then(Value::as_str);
        if let Some(issuer) = self.issuer
            && iss != Some(issuer)
        {
            return Err(TokenRejection::Invalid);
        }
        let for_us = match claims.get("aud") {
            Some(Value::String(aud)) => aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(self.audience)),
            _ => false,
        };
        if !for_us {
            return Err(TokenRejection::WrongAudience);
        }
        // A token bound to a key (DPoP, RFC 9449 §6; mutual TLS, RFC 8705 §3) is only good
        // with proof of that key, which a bearer request does not carry: accepting it would
        // let whoever steals it use it as a plain bearer token.
        if claims.contains_key("cnf") {
            return Err(TokenRejection::Invalid);
        }
        let now = self.now;
        let expires_at = date(&claims, "exp")?.ok_or(TokenRejection::Invalid)?;
        let ahead = |t: SystemTime| t.duration_since(now).is_ok_and(|d| d > self.clock_skew);
        if expires_at <= now || date(&claims, "nbf")?.is_some_and(ahead) || date(&claims, "iat")?.is_some_and(ahead) {
            return Err(TokenRejection::Invalid);
        }
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(TokenRejection::Invalid),
        };
        let username = self.username_claims.iter().find_map(|c| claims.get(*c).and_then(Value::as_str));
        let username = username.unwrap_or(&subject).to_owned();
        let client_id = ["client_id", "azp"].iter().find_map(|c| claims.get(*c).and_then(Value::as_str));
        let client_id = client_id.unwrap_or_default().to_owned();
        let scopes = scopes(&claims);
        for name in READ_HERE {
            claims.remove(name);
        }
        Ok(AccessToken::builder(subject, expires_at)
            .username(username)
            .client_id(client_id)
            .scopes(scopes)
            .audience(self.audience)
            .claims(claims)
            .build())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const AUD: &str = "https://mcp.example.com/mcp";

    fn rules(now: u64) -> ClaimRules<'static> {
        ClaimRules {
            issuer: Some("https://idp.example.com"),
            audience: AUD,
            username_claims: &["preferred_username"],
            clock_skew: Duration::from_secs(60),
            now: UNIX_EPOCH + Duration::from_secs(now),
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({ "iss": "https://idp.example.com", "aud": AUD, "sub": "u-1", "exp": 2_000 });
        base.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        base.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn exp_is_exact_and_nbf_iat_get_the_skew() {
        assert!(rules(1_999).caller(claims(json!({}))).is_ok());
        assert!(rules(2_000).caller(claims(json!({}))).is_err(), "at exp");
        assert!(rules(1_000).caller(claims(json!({ "nbf": 1_060, "iat": 1_060 }))).is_ok(), "at the skew");
        assert!(rules(1_000).caller(claims(json!({ "nbf": 1_061 }))).is_err());
        assert!(rules(1_000).caller(claims(json!({ "iat": 1_061 }))).is_err());
        assert!(rules(1_000).caller(claims(json!({ "exp": "soon" }))).is_err());
        assert!(rules(1_000).caller(claims(json!({ "exp": -5 }))).is_err());
        assert!(rules(1_000).caller(claims(json!({ "exp": 1e300 }))).is_err(), "beyond any SystemTime");
    }

    #[test]
    fn audience_issuer_and_subject_are_required() {
        assert!(matches!(
            rules(1).caller(claims(json!({ "aud": "https://other/mcp" }))),
            Err(TokenRejection::WrongAudience)
        ));
        assert!(rules(1).caller(claims(json!({ "aud": ["https://other/mcp", AUD] }))).is_ok());
        assert!(rules(1).caller(claims(json!({ "iss": "https://evil.example.com" }))).is_err());
        assert!(rules(1).caller(claims(json!({ "sub": "" }))).is_err());
        assert!(rules(1).caller(claims(json!({ "sub": 7 }))).is_err());
    }

    #[test]
    fn sender_constrained_tokens_are_not_bearer_tokens() {
        for cnf in [
            json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }),
            json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }),
            json!({}),
        ] {
            assert!(matches!(rules(1).caller(claims(json!({ "cnf": cnf }))), Err(TokenRejection::Invalid)), "{cnf}");
        }
    }

    #[test]
    fn scopes_username_client_and_claims() {
        let caller = rules(1)
            .caller(claims(json!({
                "scope": "mcp notes:read",
                "scp": ["notes:write"],
                "permissions": ["admin", "mcp"],
                "preferred_username": "carol",
                "azp": "cli",
                "email": "carol@example.com",
                "groups": ["staff"],
            })))
            .expect("valid");
        assert_eq!(caller.scopes, ["admin", "mcp", "notes:read", "notes:write"]);
        assert_eq!((caller.username.as_str(), caller.client_id.as_str()), ("carol", "cli"));
        assert_eq!(caller.claim::<String>("email").expect("email"), "carol@example.com");
        assert!(caller.claims().get("exp").is_none() && caller.claims().get("scope").is_none());
        let anonymous = rules(1).caller(claims(json!({}))).expect("valid");
        assert_eq!(anonymous.username, "u-1", "the subject when no username claim");
    }
}
