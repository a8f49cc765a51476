//! The issuer of the JWT server's access tokens (`mcp-jwt-server`): a test key that only this
//! benchmark uses, its public half as the server's static JWKS, and ES256 tokens shaped like
//! those of an identity provider (RFC 9068) for the server's resource.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::servers::Server;

/// The `iss` of every token, which the server is told to trust (no request ever goes there).
pub(crate) const ISSUER: &str = "https://issuer.mcp-bench.invalid";
/// The key's id in the JWKS and in every token's header.
const KID: &str = "mcp-bench-es256";
/// A P-256 private key made for this benchmark and used nowhere else (PKCS#8 DER, base64): it
/// signs tokens for throwaway servers on a loopback port, so it is no secret.
const PRIVATE_KEY_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpFmtqWXVIaC38y+7Qs5yYzO2LIaJrZLcf/WSnO4TRehRANCAARqdKg2ROKmG2uDqSmFCLNtVvp9KGfM1ZJSsbvh53ZPE4vTUrFdvcJyWCgcV1Mw9zUhzi1MGr4jmZOmmKRVjUz9";
/// Its public point, as the JWK's `x` and `y` (base64url).
const PUBLIC_X: &str = "anSoNkTiphtrg6kphQizbVb6fShnzNWSUrG74ed2TxM";
const PUBLIC_Y: &str = "i9NSsV29wnJYKBxXUzD3NSHOLUwaviOZk6aYpFWNTP0";
/// How long a token is valid: longer than any run, so that none expires under load.
const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The users the tokens name, as the example's sign-ins alternate alice and bob.
const USERS: [&str; 2] = ["alice", "bob"];

/// The public key set the server verifies with (`BENCH_JWKS`).
pub(crate) fn jwks() -> String {
    json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID, "x": PUBLIC_X, "y": PUBLIC_Y,
    }]})
    .to_string()
}

/// `n` access tokens for `server`'s MCP endpoint (alternating alice and bob), each with the
/// username its tool must name.
pub(crate) fn tokens(server: &Server, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let der = base64::engine::general_purpose::STANDARD.decode(PRIVATE_KEY_PKCS8).context("the bench's test key")?;
    let key = EncodingKey::from_ec_der(&der);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).context("the clock is before 1970")?.as_secs();
    (0..n)
        .map(|i| {
            let user = USERS[i % USERS.len()];
            let token = mint(&key, &format!("{}/mcp", server.base), user, now)?;
            Ok((token, user.to_owned()))
        })
        .collect()
}

/// One token for `audience`, naming `user`, issued at `now` (seconds since the epoch).
fn mint(key: &EncodingKey, audience: &str, user: &str, now: u64) -> anyhow::Result<String> {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KID.to_owned());
    header.typ = Some("at+jwt".to_owned());
    let claims = json!({
        "iss": ISSUER,
        "aud": audience,
        "sub": format!("bench-{user}"),
        "preferred_username": user,
        "client_id": "mcp-bench",
        "scope": "mcp",
        "iat": now,
        "exp": now + LIFETIME.as_secs(),
        // A different token for each call of `tokens`, as real sign-ins give.
        "jti": format!("{:032x}", rand::random::<u128>()),
    });
    jsonwebtoken::encode(&header, &claims, key).context("signing a token with the bench's test key")
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    use super::*;

    /// The public key in the JWKS is the private key's: a token it signs verifies with it,
    /// and carries what the JWT server checks.
    #[test]
    fn the_jwks_verifies_the_tokens_the_key_signs() {
        let der = base64::engine::general_purpose::STANDARD.decode(PRIVATE_KEY_PKCS8).expect("base64");
        let token = mint(&EncodingKey::from_ec_der(&der), "http://127.0.0.1:1/mcp", "bob", 1_000).expect("a token");
        let set: JwkSet = serde_json::from_str(&jwks()).expect("a JWKS");
        let header = jsonwebtoken::decode_header(&token).expect("a header");
        assert_eq!(
            (header.alg, header.kid.as_deref(), header.typ.as_deref()),
            (Algorithm::ES256, Some(KID), Some("at+jwt"))
        );
        let jwk = set.find(KID).expect("the key is in the set");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["http://127.0.0.1:1/mcp"]);
        validation.set_issuer(&[ISSUER]);
        // Issued at 1,000 s after the epoch: long expired, which is not what this test is about.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).expect("a key"), &validation)
            .expect("the token verifies with the JWKS");
        assert_eq!(data.claims["preferred_username"], "bob");
        assert_eq!(data.claims["exp"], 1_000 + LIFETIME.as_secs());
        assert_eq!(data.claims["scope"], "mcp");
    }
}
