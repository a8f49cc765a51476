//! Parameter floods at the endpoints that parse forms (`/authorize`, `/login`, `/token`,
//! `/revoke`): more parameters than the cap get 400 `invalid_request` saying so, and a 64 KiB
//! body of 16,000 distinct keys is refused for its count (`mcp-bench form-flood` times it).

mod common;

use common::{TestServer, oauth_error};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

/// What the kit says above the cap.
const TOO_MANY: &str = "too many parameters: at most 64 are accepted";

/// `n` distinct parameters of the form `kN=v`.
fn parameters(n: usize) -> String {
    (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&")
}

/// 16,000 distinct three-letter keys without values: 64,000 bytes, within the body limit.
fn flood() -> String {
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let n = letters.len();
    let flood: String =
        (0..16_000).map(|i| format!("{}{}{}&", letters[i / (n * n)], letters[(i / n) % n], letters[i % n])).collect();
    assert!(flood.len() <= 64 * 1024, "the flood fits the body limit: {}", flood.len());
    flood
}

async fn post_form(server: &TestServer, path: &str, body: String) -> reqwest::Response {
    let req = server.client.post(server.url(path)).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    req.body(body).send().await.expect("POST")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_parameters_than_the_cap_are_refused_everywhere() {
    let server = TestServer::start().await;
    for body in [parameters(65), flood()] {
        for path in ["/token", "/revoke"] {
            let res = post_form(&server, path, body.clone()).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
            let json: serde_json::Value = res.json().await.expect("JSON");
            assert_eq!(json["error"], "invalid_request", "{path}");
            assert_eq!(json["error_description"], TOO_MANY, "{path}");
        }
        let res = post_form(&server, "/login", body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "/login");
        assert!(res.text().await.expect("page").contains(TOO_MANY), "/login names the cause");
    }
    let res = server.get(&server.url(&format!("/authorize?{}", parameters(65)))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "/authorize");
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.expect("page").contains(TOO_MANY), "/authorize names the cause");
    // At the cap, the parameters are read, and judged for what they say.
    let res = post_form(&server, "/token", format!("{}&grant_type=unknown", parameters(63))).await;
    assert_eq!(oauth_error(res).await, (StatusCode::BAD_REQUEST, "unsupported_grant_type".to_owned()));
}
