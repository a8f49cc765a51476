//! `IntrospectionVerifier` against a real OpenID provider's RFC 7662 endpoint (node-oidc-provider,
//! see `tests/oidc`): an active opaque token reaches the tool as its caller, a revoked or
//! unknown one gets 401, wrong credentials or the provider down give 503 (the token's validity
//! is unknown, so the client must keep it).

mod common;
mod oidc;

use std::time::Duration;

use common::TestServer;
use mcp_oauth_kit::Password;
use mcp_oauth_kit::auth::IntrospectionVerifier;
use oidc::{OTHER_RESOURCE, OidcProvider, assert_refused, call_caller};
use reqwest::StatusCode;
use serde_json::json;

/// A resource server that introspects tokens at the provider as its main client (with `secret`,
/// or the right secret), caching nothing.
async fn start(secret: Option<&str>) -> Option<(TestServer, OidcProvider)> {
    oidc::with_resource_server(
        |config| config.token_cache_ttl = Duration::ZERO,
        |config, provider| {
            let secret = secret.unwrap_or(&provider.config.client_secret);
            IntrospectionVerifier::builder(config, provider.issuer.clone(), provider.introspection_url())
                .client_credentials(provider.config.client_id.clone(), Password::new(secret))
                .build()
                .expect("a verifier")
        },
    )
    .await
}

/// An opaque access token of the provider's `-opaque` client for `resource`.
async fn opaque(provider: &OidcProvider, resource: &str) -> (String, String) {
    let client = format!("{}-opaque", provider.config.client_id);
    let token = provider.client_credentials(&client, resource, "mcp notes:read").await;
    (client, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_tokens_pass_and_revoked_ones_stop_at_once() {
    let Some((server, provider)) = start(None).await else { return };
    let (client, token) = opaque(&provider, &provider.config.resource).await;
    assert_eq!(token.split('.').count(), 1, "an opaque token, which only introspection can check");

    let (status, _, seen) = call_caller(&server, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["subject"], json!(client));
    assert_eq!(seen["client_id"], json!(client));
    assert_eq!(seen["scopes"], json!(["mcp", "notes:read"]));
    assert_eq!(seen["audience"], json!(server.url("/mcp")));

    provider.revoke(&client, &token).await;
    assert_refused(&server, &token, "revoked at the provider").await;
    assert_refused(&server, "an-unknown-opaque-token", "unknown to the provider").await;
    let (_, elsewhere) = opaque(&provider, OTHER_RESOURCE).await;
    assert_refused(&server, &elsewhere, "active, but for another resource").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_503_not_401() {
    let Some((server, mut provider)) = start(Some("not-the-secret")).await else { return };
    let (_, token) = opaque(&provider, &provider.config.resource).await;
    let (status, _, _) = call_caller(&server, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the provider refused our own credentials");
    provider.stop();
    let (status, _, _) = call_caller(&server, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the provider is down");
}
