//! The OAuth endpoints' request budgets as deployed behind proxies and shared addresses:
//! `/token` counted per client as well as per address, apart from the other endpoints, and
//! the client address taken from `X-Forwarded-For` only as far as the trusted proxies vouch
//! for it (two hops: a CDN and nginx).

mod common;

use common::{REDIRECT_URI, TestServer, header};
use reqwest::StatusCode;
use serde_json::json;

/// The CDN's range and nginx's address, as `TRUSTED_PROXIES` would list them; nginx is the
/// TCP peer (127.0.0.1) in these tests.
const CDN: &str = "203.0.113.0/24";

/// `POST /token` (a refresh that fails: only its budget matters) for `client_id`, from the
/// address the proxies report.
async fn token_from(server: &TestServer, client_id: &str, forwarded_for: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", "not-a-token"), ("client_id", client_id)];
    let req = server.client.post(server.url("/token")).form(&form).header("x-forwarded-for", forwarded_for);
    req.send().await.expect("POST /token")
}

async fn assert_slow_down(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    assert!(header(&res, "retry-after").parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)), "{what}");
    assert_eq!(common::oauth_error(res).await.1, "slow_down", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_counts_per_client_as_well_as_per_address() {
    let (server, _frozen) = TestServer::start_on_clock(|mut c| {
        c.oauth_requests_per_minute = 1;
        c.token_requests_per_ip_per_minute = 5;
        c.token_requests_per_client_per_minute = 2;
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
        c
    })
    .await;
    // The address's budget at the other endpoints is spent; /token's is its own.
    server.register_public().await;
    let res = server.register_raw(&json!({ "redirect_uris": [REDIRECT_URI] })).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    for _ in 0..2 {
        assert_ne!(token_from(&server, "platform-a", "192.0.2.1").await.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    // The client's budget holds at every address, with its id in the form or in Basic.
    assert_slow_down(token_from(&server, "platform-a", "192.0.2.2").await, "platform-a, another address").await;
    let basic = server
        .client
        .post(server.url("/token"))
        .basic_auth("platform-a", Some("secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .header("x-forwarded-for", "192.0.2.3")
        .send()
        .await
        .expect("POST /token");
    assert_slow_down(basic, "platform-a in HTTP Basic").await;
    // Another client at the same address has its own budget, until the address's runs out:
    // two of platform-a's, two of platform-b's and one more make five.
    for client in ["platform-b", "platform-b", "made-up-id"] {
        assert_ne!(token_from(&server, client, "192.0.2.1").await.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_slow_down(token_from(&server, "platform-c", "192.0.2.1").await, "the address's budget").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_comes_through_trusted_proxies_only() {
    let server = TestServer::start_with(|mut c| {
        c.oauth_requests_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("nginx"), CDN.parse().expect("the CDN")];
        c
    })
    .await;
    let register = |forwarded_for: &'static str| {
        let body = json!({ "redirect_uris": [REDIRECT_URI] });
        let req = server.client.post(server.url("/register")).json(&body).header("x-forwarded-for", forwarded_for);
        async move { req.send().await.expect("POST /register").status() }
    };
    // Two hops: the CDN appended the client, nginx appended the CDN.
    assert_eq!(register("198.51.100.7, 203.0.113.9").await, StatusCode::CREATED);
    assert_eq!(register("198.51.100.7, 203.0.113.10").await, StatusCode::TOO_MANY_REQUESTS, "same client");
    // What the client wrote left of its address changes nothing.
    assert_eq!(register("192.0.2.99, 198.51.100.7, 203.0.113.9").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same CDN node is another address; one hop works too.
    assert_eq!(register("198.51.100.8, 203.0.113.9").await, StatusCode::CREATED);
    assert_eq!(register("2001:db8:1:2::5").await, StatusCode::CREATED);
    assert_eq!(register("[2001:db8:1:2::6]:443").await, StatusCode::TOO_MANY_REQUESTS, "the same /64");
    // A malformed entry where the client's should be: the nearest trusted hop counts.
    assert_eq!(register("198.51.100.9, not-an-address, 203.0.113.20").await, StatusCode::CREATED);
    assert_eq!(register("198.51.100.10, 203.0.113.20").await, StatusCode::CREATED, "a new client");
    assert_eq!(register("junk, 203.0.113.20").await, StatusCode::TOO_MANY_REQUESTS, "the CDN node again");
}
