//! The id_token of an upstream sign-in, validated as OpenID Connect Core 1.0 §3.1.3.7 says:
//! the signature with a key of the provider's JWKS, under an algorithm the provider advertises
//! and the key allows (never `none` or HMAC); `iss` the issuer; `aud` naming the kit's client
//! id, with `azp` the client id when there are several audiences (or whenever it is present);
//! `exp` not passed and `iat` not ahead (both within a small skew); `nonce` the one this
//! sign-in sent; a non-empty `sub`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::escaped::Escaped;
use crate::secret::ct_eq_str;
use crate::verifiers::jwks::{KeyMiss, RemoteKeys};

/// Beyond this an id_token is not even parsed.
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;
/// How far the provider's clock may be from ours, for `exp` and `iat`.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// OpenID Connect Core §2: `sub` is at most 255 ASCII characters.
pub(crate) const MAX_SUB_LEN: usize = 255;

/// Why an id_token was refused. The message is safe to show and log: it holds no token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum IdTokenError {
    /// Malformed, unsigned, signed under an algorithm not allowed, or the signature is wrong.
    #[error("the id_token's signature is invalid: {0}")]
    Signature(&'static str),
    /// A claim does not hold what it must.
    #[error("the id_token's {0} is wrong")]
    Claim(&'static str),
    /// The provider's keys could not be fetched: the answer is unknown.
    #[error("the provider's signing keys are unavailable")]
    KeysUnavailable,
}

/// What an id_token must satisfy.
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) algorithms: &'a [Algorithm],
    pub(crate) now: SystemTime,
}

/// A numeric date claim.
fn date(claims: &Map<String, Value>, name: &'static str) -> Result<SystemTime, IdTokenError> {
    claims
        .get(name)
        .and_then(Value::as_u64)
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .ok_or(IdTokenError::Claim(name))
}

/// Verify `token`'s signature with `keys` and its claims against `expected`; the claims.
pub(crate) async fn validate(
    token: &str,
    keys: &RemoteKeys,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_BYTES || token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(IdTokenError::Signature("not a signed JWT"));
    }
    // `none` and unknown algorithms fail here: jsonwebtoken has no such `Algorithm`.
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Signature("unreadable header"))?;
    if !expected.algorithms.contains(&header.alg) {
        return Err(IdTokenError::Signature("an algorithm the provider does not advertise"));
    }
    let key = match keys.key(header.kid.as_deref()).await {
        Ok(key) => key,
        Err(KeyMiss::Unknown) => return Err(IdTokenError::Signature("an unknown key")),
        Err(KeyMiss::Unavailable(_)) => return Err(IdTokenError::KeysUnavailable),
    };
    if key.alg.is_some_and(|alg| alg != header.alg) || key.key.family() != header.alg.family() {
        return Err(IdTokenError::Signature("an algorithm its key does not allow"));
    }
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
        .map_err(|e| {
            tracing::debug!(error = %Escaped(&e.to_string()), "id_token refused");
            IdTokenError::Signature("it does not verify")
        })?
        .claims;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// The claim checks, on the kit's clock.
fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), IdTokenError> {
    if claims.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
        return Err(IdTokenError::Claim("iss"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(IdTokenError::Claim("aud"));
    }
    let azp = claims.get("azp").map(|v| v.as_str());
    if (audiences.len() > 1 || azp.is_some()) && azp != Some(Some(expected.client_id)) {
        return Err(IdTokenError::Claim("azp"));
    }
    if date(claims, "exp")? + CLOCK_SKEW <= expected.now {
        return Err(IdTokenError::Claim("exp"));
    }
    if date(claims, "iat")? > expected.now + CLOCK_SKEW {
        return Err(IdTokenError::Claim("iat"));
    }
    let nonce = claims.get("nonce").and_then(Value::as_str);
    if !nonce.is_some_and(|n| ct_eq_str(n, expected.nonce)) {
        return Err(IdTokenError::Claim("nonce"));
    }
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    if sub.is_empty() || sub.len() > MAX_SUB_LEN || sub.chars().any(char::is_control) {
        return Err(IdTokenError::Claim("sub"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn expected(now: SystemTime) -> Expected<'static> {
        Expected { issuer: "https://idp", client_id: "kit", nonce: "n-1", algorithms: &[Algorithm::RS256], now }
    }

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn each_claim_rule_refuses_on_its_own() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let good = json!({"iss":"https://idp","aud":"kit","exp":1_000_300,"iat":1_000_000,"nonce":"n-1","sub":"u"});
        assert_eq!(check_claims(&claims(good.clone()), &expected(now)), Ok(()));
        let rows: &[(&str, Value, &str)] = &[
            ("iss", json!("https://other"), "iss"),
            ("aud", json!("someone-else"), "aud"),
            ("aud", json!(["kit", "other"]), "azp"),
            ("azp", json!("other"), "azp"),
            ("exp", json!(1_000_000 - 61), "exp"),
            ("exp", Value::Null, "exp"),
            ("iat", json!(1_000_000 + 61), "iat"),
            ("nonce", json!("n-2"), "nonce"),
            ("nonce", Value::Null, "nonce"),
            ("sub", json!(""), "sub"),
            ("sub", json!("a\nb"), "sub"),
        ];
        for (name, value, refused) in rows {
            let mut c = claims(good.clone());
            if value.is_null() {
                c.remove(*name);
            } else {
                c.insert((*name).to_owned(), value.clone());
            }
            assert_eq!(check_claims(&c, &expected(now)), Err(IdTokenError::Claim(refused)), "{name}={value}");
        }
        let mut several = claims(good.clone());
        several.insert("aud".into(), json!(["kit", "other"]));
        several.insert("azp".into(), json!("kit"));
        assert_eq!(check_claims(&several, &expected(now)), Ok(()), "several audiences with azp = the client");
        let mut late = claims(good);
        late.insert("exp".into(), json!(1_000_000 - 30));
        assert_eq!(check_claims(&late, &expected(now)), Ok(()), "within the skew");
    }
}
