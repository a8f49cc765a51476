//! `JwtVerifier` against a real OpenID provider (node-oidc-provider, see `tests/oidc`): the
//! JWT access tokens it mints for our resource reach the tools as their caller; tokens with a
//! wrong issuer, audience, expiry, algorithm or key are refused with 401; key rotation is
//! followed with one refetch; the provider being down is a 503 for a token whose key is
//! unknown, while verified and locally verifiable tokens keep working.

mod common;
mod oidc;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::TestServer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_oauth_kit::auth::JwtVerifier;
use oidc::{OTHER_RESOURCE, OidcProvider, assert_refused, call_caller};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A resource server whose `JwtVerifier` trusts the provider, refetching its keys at most
/// once per `min_refetch`, with verified tokens cached for `cache_ttl`.
async fn start(min_refetch: Duration, cache_ttl: Duration) -> Option<(TestServer, OidcProvider)> {
    oidc::with_resource_server(
        |config| config.token_cache_ttl = cache_ttl,
        |config, provider| {
            JwtVerifier::builder(config, provider.issuer.clone())
                .jwks_url(provider.jwks_url())
                .min_refetch_interval(min_refetch)
                .build()
                .expect("a verifier")
        },
    )
    .await
}

/// A fresh access token of the provider for our resource.
async fn mint(provider: &OidcProvider) -> String {
    provider.client_credentials(&provider.config.client_id, &provider.config.resource, "mcp notes:read").await
}

/// The claims of a JWT, unverified (to forge variants of a real token).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

/// `claims` signed with the provider's own current ES256 key, under `kid` (default: its own).
fn forge(provider: &OidcProvider, claims: &Value, kid: Option<&str>) -> String {
    let (own_kid, der) = provider.es256_key();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.unwrap_or(&own_kid).to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&der)).expect("sign")
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_token_reaches_the_tool_as_its_caller() {
    let Some((server, provider)) = start(Duration::from_secs(30), Duration::from_secs(1)).await else { return };
    let token = mint(&provider).await;

    let (status, _, seen) = call_caller(&server, &token).await;
    assert_eq!(status, StatusCode::OK);
    // A client-credentials token: its subject is the client, its claims the service account's.
    assert_eq!(seen["subject"], json!(provider.config.client_id));
    assert_eq!(seen["client_id"], json!(provider.config.client_id));
    assert_eq!(seen["username"], "reporting-bot", "from preferred_username");
    assert_eq!(seen["scopes"], json!(["mcp", "notes:read"]));
    assert_eq!(seen["audience"], json!(server.url("/mcp")));
    assert_eq!(seen["claims"]["name"], "Reporting Bot");
    assert_eq!(seen["claims"]["email"], "reporting-bot@example.com");
    assert_eq!(seen["claims"]["groups"], json!(["robots"]));
    assert!(seen["claims"].get("iss").is_none() && seen["claims"].get("exp").is_none(), "registered claims stay out");

    // The protected-resource metadata sends clients to the provider.
    let prm: Value =
        server.get(&server.url("/.well-known/oauth-protected-resource/mcp")).await.json().await.expect("JSON");
    assert_eq!(prm["authorization_servers"], json!([provider.issuer]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_issuer_audience_expiry_algorithm_or_key_gets_401() {
    let Some((server, provider)) = start(Duration::from_secs(30), Duration::from_secs(1)).await else { return };
    let real = claims_of(&mint(&provider).await);
    let with = |name: &str, value: Value| {
        let mut c = real.clone();
        c[name] = value;
        c
    };

    // The forgery itself is sound: the same claims under the provider's key are accepted.
    assert_eq!(call_caller(&server, &forge(&provider, &real, None)).await.0, StatusCode::OK, "control");

    let other_aud = provider.client_credentials(&provider.config.client_id, OTHER_RESOURCE, "mcp notes:read").await;
    assert_refused(&server, &other_aud, "a token the provider minted for another resource").await;
    let now = now_secs();
    let cases = [
        ("another issuer", with("iss", json!("https://evil.example.com"))),
        ("an audience list without us", with("aud", json!([OTHER_RESOURCE]))),
        ("expired", with("exp", json!(now - 1))),
        ("no exp", {
            let mut c = real.clone();
            c.as_object_mut().expect("claims").remove("exp");
            c
        }),
        ("not yet valid beyond the skew", with("nbf", json!(now + 300))),
        ("issued in the future beyond the skew", with("iat", json!(now + 300))),
        ("no subject", with("sub", json!(""))),
    ];
    for (why, claims) in cases {
        assert_refused(&server, &forge(&provider, &claims, None), why).await;
    }
    // Within the skew, nbf and iat pass.
    assert_eq!(call_caller(&server, &forge(&provider, &with("nbf", json!(now + 30)), None)).await.0, StatusCode::OK);

    let (kid, _) = provider.es256_key();
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!("{}.{}.", encode(&json!({"alg": "none", "typ": "JWT", "kid": kid})), encode(&real));
    assert_refused(&server, &unsigned, "alg none").await;
    // HS256 "signed" with the provider's public key as the shared secret.
    let jwks = server.get(&provider.jwks_url()).await.text().await.expect("the JWKS");
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let hmac =
        jsonwebtoken::encode(&hs, &real, &EncodingKey::from_secret(jwks.as_bytes()).expect("a key")).expect("sign");
    assert_refused(&server, &hmac, "HS256 with the public key").await;
    // The header's typ: access tokens and generic JWTs pass, the issuer's other JWTs do not.
    let (own_kid, der) = provider.es256_key();
    let typed = |typ: &str| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(own_kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, &real, &EncodingKey::from_ec_der(&der)).expect("sign")
    };
    for ok in ["at+jwt", "application/at+jwt", "JWT"] {
        assert_eq!(call_caller(&server, &typed(ok)).await.0, StatusCode::OK, "typ {ok}");
    }
    for other in ["logout+jwt", "secevent+jwt", "dpop+jwt"] {
        assert_refused(&server, &typed(other), other).await;
    }
    let mut tampered = forge(&provider, &real, None);
    tampered.truncate(tampered.len() - 4);
    tampered.push_str("AAAA");
    assert_refused(&server, &tampered, "a bad signature").await;
    for garbage in ["garbage", "a.b.c", "..", &"x".repeat(20_000)] {
        assert_refused(&server, garbage, "not a JWT").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_is_followed_and_unknown_keys_are_rate_limited() {
    let interval = Duration::from_secs(5);
    let Some((server, mut provider)) = start(interval, Duration::from_secs(1)).await else { return };
    assert_eq!(call_caller(&server, &mint(&provider).await).await.0, StatusCode::OK, "key-1, first fetch");

    tokio::time::sleep(interval + Duration::from_millis(200)).await;
    provider.restart("key-2").await;
    let rotated = mint(&provider).await;
    assert_eq!(call_caller(&server, &rotated).await.0, StatusCode::OK, "key-2: one refetch, then accepted");
    let refetched = Instant::now();

    // Another rotation right away: inside the interval the verifier does not ask again.
    provider.restart("key-3").await;
    let newest = mint(&provider).await;
    assert_refused(&server, &newest, "an unknown kid inside the refetch interval").await;
    assert!(
        refetched.elapsed() < interval,
        "the restart took longer than the interval: the check above proved nothing"
    );
    // The key of the rotation before is still in the fetched set.
    assert_eq!(call_caller(&server, &rotated).await.0, StatusCode::OK);

    tokio::time::sleep(interval.saturating_sub(refetched.elapsed()) + Duration::from_millis(200)).await;
    assert_eq!(call_caller(&server, &newest).await.0, StatusCode::OK, "after the interval, key-3 is fetched");
    let forged = forge(&provider, &claims_of(&newest), Some("key-never"));
    assert_refused(&server, &forged, "a kid the provider never had").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_down_is_503_for_unknown_keys_only() {
    let Some((server, mut provider)) = start(Duration::ZERO, Duration::from_secs(60)).await else { return };
    let used = mint(&provider).await;
    let unused = mint(&provider).await;
    assert_eq!(call_caller(&server, &used).await.0, StatusCode::OK);
    let unknown_kid = forge(&provider, &claims_of(&unused), Some("key-9"));

    provider.stop();
    assert_eq!(call_caller(&server, &used).await.0, StatusCode::OK, "a verified token stays cached");
    assert_eq!(
        call_caller(&server, &unused).await.0,
        StatusCode::OK,
        "a token of a known key verifies without the provider"
    );
    let (status, _, _) = call_caller(&server, &unknown_kid).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "an unknown key while the JWKS cannot be fetched");
}
