//! Client ID Metadata Documents end to end: an `https`-style `client_id` that names its own
//! metadata (served here over loopback `http`, which only `danger_allow_private_cimd_hosts`
//! permits) is fetched, validated, shown on the consent page with its host, and usable at
//! `/token`; a document that lies about its `client_id` is refused; private hosts are refused
//! by default. Over real `https` (a test CA the server is told to trust): error statuses,
//! oversize bodies, redirects and a silent host are refused with the error page, documents are
//! cached as their headers say, and the resolver's address check refuses a name that resolves
//! to a private address.

mod common;
mod https_documents;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Pkce, REDIRECT_URI, TestServer, header, location, param, serve_document};
use https_documents::{DocumentHost, Reply, TestCa, machine_host_name};
use mcp_oauth_kit::clock::ManualClock;
use reqwest::StatusCode;

fn document(client_id: &str) -> String {
    serde_json::json!({
        "client_id": client_id,
        "client_name": "Doc Client",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_client_signs_in_without_registering() {
    let server = TestServer::start_with(|mut c| {
        c.danger_allow_private_cimd_hosts = true;
        c
    })
    .await;
    let client_id = serve_document("/oauth/client.json", document).await;
    let Pkce { verifier, challenge } = Pkce::new();
    let res = server.get(&server.authorize_url(&client_id, &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let login = location(&res);
    assert!(login.path().ends_with("/login"), "{login}");
    let page = server.get(login.as_str()).await.text().await.expect("page");
    assert!(page.contains("Doc Client (127.0.0.1)"), "the consent page names the document's host");

    let auth = server.authorize_url(&client_id, &challenge, "st", &[]);
    let callback = server.login(&auth, "alice", "password123").await.expect("a code");
    let code = param(&callback, "code").expect("a code");
    let token = server.exchange(&client_id, &code, &verifier).await;
    assert_eq!(token.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_that_lie_or_live_on_private_hosts_are_refused() {
    // A document whose client_id names another URL.
    let lenient = TestServer::start_with(|mut c| {
        c.danger_allow_private_cimd_hosts = true;
        c
    })
    .await;
    let liar = serve_document("/c.json", |_| document("https://other.example/c.json")).await;
    let challenge = Pkce::new().challenge;
    let res = lenient.get(&lenient.authorize_url(&liar, &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());

    // By default: no private or loopback hosts, no plain http.
    let strict = TestServer::start().await;
    let honest = serve_document("/c.json", document).await;
    let res = strict.get(&strict.authorize_url(&honest, &challenge, "st", &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
}

// ---- fetching over https, from a host whose certificate a test CA signed -------------------

/// A server that trusts `ca` for document hosts, with private hosts allowed or not.
async fn server_trusting(ca: &TestCa, allow_private: bool) -> TestServer {
    server_trusting_on(ca, allow_private, ManualClock::starting_now()).await
}

/// [`server_trusting`], reading the time from `clock`.
async fn server_trusting_on(ca: &TestCa, allow_private: bool, clock: ManualClock) -> TestServer {
    let root = ca.root_der.clone();
    TestServer::start_with(move |mut c| {
        c.danger_allow_private_cimd_hosts = allow_private;
        c.danger_cimd_root_certificates = vec![root];
        c.clock = Arc::new(clock);
        c
    })
    .await
}

/// A document host on 127.0.0.1, named `localhost`, answering `reply`.
async fn local_host(ca: &TestCa, reply: Reply) -> DocumentHost {
    DocumentHost::start(ca, IpAddr::from([127, 0, 0, 1]), "localhost", "/client.json", reply, document).await
}

/// `/authorize` of the document's client, as a browser sends it.
async fn authorize(server: &TestServer, client_id: &str) -> reqwest::Response {
    let challenge = Pkce::new().challenge;
    server.get(&server.authorize_url(client_id, &challenge, "st", &[])).await
}

/// The answer to an unusable document: the error page (400, `invalid_request`, never a
/// redirect to the client), saying `why`.
async fn assert_refused(res: reqwest::Response, why: &str) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none(), "an unusable document must not redirect");
    assert!(header(&res, "content-type").starts_with("text/html"), "the error page");
    let page = res.text().await.expect("the page");
    assert!(page.contains("<code>invalid_request</code>"), "{page}");
    assert!(page.contains(why), "the page should say {why:?}: {page}");
}

/// The sign-in goes on to the login page.
fn assert_accepted(res: &reqwest::Response) {
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(location(res).path().ends_with("/login"), "{}", location(res));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_document_is_fetched_when_its_ca_is_trusted() {
    let ca = TestCa::new();
    let host = local_host(&ca, Reply::Document { cache_control: None }).await;
    let trusting = server_trusting(&ca, true).await;
    assert_accepted(&authorize(&trusting, &host.url).await);
    assert_eq!(host.served(), 1);

    // The same host, to a server that does not trust the test CA: the TLS handshake fails.
    let untrusting = TestServer::start_with(|mut c| {
        c.danger_allow_private_cimd_hosts = true;
        c
    })
    .await;
    assert_refused(authorize(&untrusting, &host.url).await, "could not be fetched").await;
    assert_eq!(host.served(), 1, "nothing is served over a refused handshake");
}

/// Replies other than success, and bodies over the cap (announced by `Content-Length` or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_and_oversize_documents_are_refused() {
    let ca = TestCa::new();
    let server = server_trusting(&ca, true).await;
    let rows = [
        (Reply::Status(404), "answered HTTP 404"),
        (Reply::Status(410), "answered HTTP 410"),
        (Reply::Status(500), "answered HTTP 500"),
        (Reply::Status(503), "answered HTTP 503"),
        (Reply::Oversize { declared: true }, "too large"),
        (Reply::Oversize { declared: false }, "too large"),
    ];
    for (reply, why) in rows {
        let host = local_host(&ca, reply.clone()).await;
        assert_refused(authorize(&server, &host.url).await, why).await;
        assert_eq!(host.served(), 1, "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let ca = TestCa::new();
    let server = server_trusting(&ca, true).await;
    let elsewhere = local_host(&ca, Reply::Document { cache_control: None }).await;
    let host = local_host(&ca, Reply::Redirect(elsewhere.url.clone())).await;
    assert_refused(authorize(&server, &host.url).await, "answered HTTP 302").await;
    assert_eq!(host.served(), 1);
    assert_eq!(elsewhere.served(), 0, "the redirect's target was fetched");
}

/// The kit gives a document host 5 s; the test allows it 15 before calling it a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_answers_times_out() {
    let ca = TestCa::new();
    let server = server_trusting(&ca, true).await;
    let host = local_host(&ca, Reply::Silent).await;
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(15), authorize(&server, &host.url))
        .await
        .expect("the fetch gives up within 15 s");
    let waited = started.elapsed();
    assert_refused(res, "did not arrive within 5 s").await;
    assert_eq!(host.served(), 1, "the request was sent");
    assert!(waited >= Duration::from_secs(4), "gave up after {waited:?}, before the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_cached_for_their_max_age_and_not_with_no_store() {
    let ca = TestCa::new();
    let clock = ManualClock::starting_now();
    let server = server_trusting_on(&ca, true, clock.clone()).await;

    let cached = local_host(&ca, Reply::Document { cache_control: Some("max-age=600") }).await;
    assert_accepted(&authorize(&server, &cached.url).await);
    assert_accepted(&authorize(&server, &cached.url).await);
    assert_eq!(cached.served(), 1, "a second use within max-age comes from the cache");
    let short = local_host(&ca, Reply::Document { cache_control: Some("max-age=1") }).await;
    assert_accepted(&authorize(&server, &short.url).await);
    clock.advance(Duration::from_millis(999));
    assert_accepted(&authorize(&server, &short.url).await);
    assert_eq!(short.served(), 1, "within max-age the document comes from the cache");
    clock.advance(Duration::from_millis(1));
    assert_accepted(&authorize(&server, &short.url).await);
    assert_eq!(short.served(), 2, "at max-age the document is fetched again");

    let uncached = local_host(&ca, Reply::Document { cache_control: Some("no-store") }).await;
    assert_accepted(&authorize(&server, &uncached.url).await);
    assert_accepted(&authorize(&server, &uncached.url).await);
    assert_eq!(uncached.served(), 2, "no-store: every use fetches");
}

/// A host name (not an IP literal, not `localhost`, which the URL check refuses before any
/// fetch) that resolves to a private address gets as far as the resolver, whose address check
/// refuses it, although https and the certificate are in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_resolve_to_private_addresses_are_refused_by_the_address_check() {
    let name = machine_host_name();
    let addrs: Vec<IpAddr> =
        tokio::net::lookup_host((name.as_str(), 443)).await.expect("the host name resolves").map(|a| a.ip()).collect();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|ip| ip.is_loopback() || is_private_v4(*ip)),
        "this test needs the machine's host name {name:?} to resolve to private addresses only, not {addrs:?}"
    );
    let ca = TestCa::new();
    let host =
        DocumentHost::start(&ca, addrs[0], &name, "/client.json", Reply::Document { cache_control: None }, document)
            .await;

    // Private hosts allowed: the document is fetched, so TLS and the name are in order.
    let lenient = server_trusting(&ca, true).await;
    assert_accepted(&authorize(&lenient, &host.url).await);
    assert_eq!(host.served(), 1);

    let strict = server_trusting(&ca, false).await;
    assert_refused(authorize(&strict, &host.url).await, &format!("host {name} resolves to a non-public address")).await;
    assert_eq!(host.served(), 1, "nothing was fetched");
}

fn is_private_v4(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_private() || v4.is_link_local())
}
