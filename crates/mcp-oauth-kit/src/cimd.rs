//! Client ID Metadata Documents (MCP authorization 2025-11-25, draft-ietf-oauth-client-id-
//! metadata-document): a client whose `client_id` is an `https` URL publishes its metadata at
//! that URL instead of registering. We fetch it with SSRF guards, validate it, cache it by its
//! HTTP caching headers, and keep it as an ordinary public client record.
//!
//! SSRF guards: `https` only; no credentials, fragments or IP literals that are not public;
//! every address the name resolves to must be public (the check runs inside the resolver
//! reqwest connects with, so a DNS answer cannot change between check and connect); an IPv6
//! address that embeds an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by the IPv4
//! address; no proxy, whatever the environment says; no redirects; 5 s timeout; 64 KiB cap.
//! `Config::danger_allow_private_cimd_hosts` lifts the address checks (and allows loopback
//! `http`) for tests and private deployments.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::{Host, Url};

use crate::clock::{Clock, SystemClock, later};
use crate::escaped::Escaped;
use crate::json_depth::{MAX_JSON_DEPTH, within_depth};
use crate::redirect_uri::RedirectUri;
use crate::store::ClientRecord;

const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TTL: Duration = Duration::from_secs(300);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_CACHED: usize = 10_000;

/// Whether an address may be contacted: public unicast only. An IPv6 address that carries an
/// IPv4 address (see [`embedded_ipv4`]) is judged by that IPv4 address: a NAT64 gateway or a
/// 6to4 relay would deliver to it.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let [seg0, seg1, seg2, ..] = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link local
                || (seg0 == 0x64 && seg1 == 0xff9b && seg2 == 1) // local-use NAT64 (RFC 8215)
                || seg0 == 0x2001 && seg1 == 0x0db8) // documentation
        }
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`, RFC 6052) and 6to4
/// (`2002:aabb:ccdd::/48`, RFC 3056).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let ipv4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match v6.segments() {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(ipv4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(ipv4(hi, lo)),
        // Mapped and compatible; `::1` and `::` come out as 0.0.0.1 and 0.0.0.0, refused too.
        _ => v6.to_ipv4(),
    }
}

/// A DNS resolver that refuses names resolving to non-public addresses.
struct PublicOnlyResolver;

/// The resolver's refusal, typed so that the fetch can tell it from other failures and say so.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to a non-public address")]
struct NonPublicHost(String);

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 443)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(NonPublicHost(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What to tell the client about a failed fetch: the address check's refusal and a timeout by
/// name, anything else in general terms (the details go to the log).
fn fetch_failure(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(NonPublicHost(host)) = cause.downcast_ref::<NonPublicHost>() {
            return format!("the client metadata document's host {host} resolves to a non-public address");
        }
        source = cause.source();
    }
    if e.is_timeout() {
        return format!("the client metadata document did not arrive within {} s", FETCH_TIMEOUT.as_secs());
    }
    "the client metadata document could not be fetched".to_owned()
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
}

/// Fetches and caches metadata documents.
pub(crate) struct CimdResolver {
    /// Built on the first fetch, not at start: building it loads the system's root
    /// certificates, which most servers (clients that register) never need, and which would
    /// cost start-up time and resident memory on every start. A build error is kept and
    /// reported on each fetch.
    http: OnceLock<Result<reqwest::Client, String>>,
    allow_private: bool,
    /// Roots (DER) trusted besides the platform's (`Config::danger_cimd_root_certificates`).
    extra_roots: Vec<Vec<u8>>,
    /// Documents with when their HTTP freshness ends.
    cache: Mutex<HashMap<String, (ClientRecord, SystemTime)>>,
    /// Dates a fetched document's registration (`issued_at`) and its freshness.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for CimdResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolver")
            .field("allow_private", &self.allow_private)
            .field("extra_roots", &self.extra_roots.len())
            .finish_non_exhaustive()
    }
}

impl CimdResolver {
    pub(crate) fn new(allow_private: bool) -> Self {
        Self {
            http: OnceLock::new(),
            allow_private,
            extra_roots: Vec::new(),
            cache: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
        }
    }

    /// Read the time from `clock`.
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Also trust these root certificates (DER) for the document hosts' TLS.
    pub(crate) fn with_extra_roots(mut self, roots: Vec<Vec<u8>>) -> Self {
        self.extra_roots = roots;
        self
    }

    /// The HTTP client: no redirects, short timeouts, no proxy (a proxy would resolve the name
    /// itself, past the address check, so `HTTPS_PROXY` and the like are ignored), and unless
    /// private hosts are allowed, `https` only and a resolver that refuses non-public addresses.
    fn http(&self) -> Result<&reqwest::Client, String> {
        let built = self.http.get_or_init(|| {
            let mut builder = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(FETCH_TIMEOUT)
                .user_agent(concat!("mcp-oauth-kit/", env!("CARGO_PKG_VERSION")));
            if !self.allow_private {
                builder = builder.dns_resolver(Arc::new(PublicOnlyResolver)).https_only(true);
            }
            let roots: Result<Vec<_>, _> =
                self.extra_roots.iter().map(|der| reqwest::Certificate::from_der(der)).collect();
            builder.tls_certs_merge(roots.map_err(|e| e.to_string())?).build().map_err(|e| {
                tracing::error!(error = %e, "cannot build the HTTP client for client metadata documents");
                e.to_string()
            })
        });
        built.as_ref().map_err(|_| "client metadata documents cannot be fetched by this server".to_owned())
    }

    /// Check the URL's shape before any network access.
    fn validate_url(&self, client_id: &str) -> Result<Url, String> {
        let url = Url::parse(client_id).map_err(|_| "client_id is not a URL".to_owned())?;
        let loopback_http = self.allow_private && url.scheme() == "http";
        if url.scheme() != "https" && !loopback_http {
            return Err("a client_id URL must use https".into());
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err("a client_id URL must not contain a fragment or credentials".into());
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err("a client_id URL must have a path".into());
        }
        let literal = match url.host() {
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Some(IpAddr::from([127, 0, 0, 1])),
            Some(Host::Domain(_)) => None,
            None => return Err("a client_id URL needs a host".into()),
        };
        if let Some(ip) = literal
            && !self.allow_private
            && !is_public(ip)
        {
            return Err("a client_id URL must not point at a private or loopback address".into());
        }
        Ok(url)
    }

    /// The client record for a metadata-document `client_id`, from the cache (`false`) or
    /// freshly fetched (`true`). The error is a description safe to show.
    pub(crate) async fn resolve(&self, client_id: &str) -> Result<(ClientRecord, bool), String> {
        if let Some((record, expires)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(client_id)
            && *expires > self.clock.now()
        {
            return Ok((record.clone(), false));
        }
        let url = self.validate_url(client_id)?;
        let response = self.http()?.get(url).header("accept", "application/json").send().await.map_err(|e| {
            tracing::info!(client_id = %Escaped(client_id), error = %e, "client metadata document fetch failed");
            fetch_failure(&e)
        })?;
        if !response.status().is_success() {
            return Err(format!("the client metadata document answered HTTP {}", response.status().as_u16()));
        }
        let ttl = cache_ttl(response.headers());
        if response.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err("the client metadata document is too large".into());
        }
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|_| "reading the client metadata document failed")? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err("the client metadata document is too large".into());
            }
        }
        let record = self.validate_document(client_id, &body)?;
        if let Some(ttl) = ttl {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock.now();
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (_, e)| *e > now);
            }
            if cache.len() < MAX_CACHED {
                cache.insert(client_id.to_owned(), (record.clone(), later(now, ttl)));
            }
        }
        Ok((record, true))
    }

    pub(crate) fn validate_document(&self, client_id: &str, body: &[u8]) -> Result<ClientRecord, String> {
        if !within_depth(body, MAX_JSON_DEPTH) {
            return Err(format!("the client metadata document nests deeper than {MAX_JSON_DEPTH} levels"));
        }
        let doc: Document =
            serde_json::from_slice(body).map_err(|e| format!("the client metadata document is invalid: {e}"))?;
        if doc.client_id != client_id {
            return Err("the client metadata document's client_id differs from its URL".into());
        }
        if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > 10 {
            return Err("the client metadata document needs 1 to 10 redirect_uris".into());
        }
        for uri in &doc.redirect_uris {
            RedirectUri::parse(uri).map_err(|why| format!("redirect URI {uri:?} {why}"))?;
        }
        match doc.token_endpoint_auth_method.as_deref() {
            None | Some("none") => {}
            Some(other) => return Err(format!("token_endpoint_auth_method {other:?} is not supported here")),
        }
        let name = doc.client_name.map(|n| n.chars().filter(|c| !c.is_control()).take(100).collect());
        Ok(ClientRecord {
            client_id: client_id.to_owned(),
            secret_hash: None,
            auth_method: "none".into(),
            client_name: name,
            redirect_uris: doc.redirect_uris,
            grant_types: doc.grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
            scope: doc.scope,
            issued_at: self.clock.now(),
        })
    }
}

/// How long a document may be cached: `Cache-Control: max-age` (capped at a day), nothing
/// for `no-store`, five minutes otherwise.
fn cache_ttl(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let cc = headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if cc.contains("no-store") || cc.contains("no-cache") {
        return None;
    }
    let max_age = cc.split(',').filter_map(|d| d.trim().strip_prefix("max-age=")).find_map(|v| v.parse::<u64>().ok());
    Some(max_age.map(Duration::from_secs).unwrap_or(DEFAULT_TTL).min(MAX_TTL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn ipv6_forms_that_embed_an_ipv4_address_are_judged_by_it() {
        // (address, public?)
        let rows = [
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:1.1.1.1", true),
            ("::127.0.0.1", false),
            ("::169.254.169.254", false),
            ("::1.1.1.1", true),
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::10.1.2.3", false),
            ("64:ff9b::169.254.169.254", false),
            ("64:ff9b::100.64.0.1", false),
            ("64:ff9b::1.1.1.1", true),
            ("64:ff9b:1::1.1.1.1", false),
            ("2002:7f00:1::1", false),
            ("2002:a00:1::1", false),
            ("2002:c0a8:101::1", false),
            ("2002:101:101::1", true),
            ("2002:5db8:d822::1", true),
        ];
        for (ip, public) in rows {
            assert_eq!(is_public(ip.parse().expect("ip")), public, "{ip}");
        }
    }

    /// The resolver itself, on a name every host resolves to loopback: the check that
    /// `validate_url` spares it for literals and `localhost` still holds for any other name.
    #[tokio::test]
    async fn the_resolver_refuses_names_of_non_public_addresses() {
        use reqwest::dns::Resolve as _;
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let refused = PublicOnlyResolver.resolve(name).await.err().expect("localhost is refused");
        let refusal = refused.downcast_ref::<NonPublicHost>().expect("refused by the address check");
        assert_eq!(refusal.0, "localhost");
    }

    #[test]
    fn url_literals_that_embed_a_private_ipv4_are_refused() {
        let r = CimdResolver::new(false);
        for bad in
            ["https://[::ffff:7f00:1]/c.json", "https://[64:ff9b::7f00:1]/c.json", "https://[2002:a9fe:a9fe::]/c.json"]
        {
            assert!(r.validate_url(bad).is_err(), "{bad}");
        }
        assert!(r.validate_url("https://[64:ff9b::101:101]/c.json").is_ok());
    }

    /// The proxy variables a fetch must not follow, all pointing at `proxy`.
    fn proxy_variables(proxy: &str) -> [(&'static str, String); 6] {
        ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
            .map(|k| (k, proxy.to_owned()))
    }

    /// A fetch in a process whose environment names a proxy goes straight to the document's
    /// host. The environment is set on a child process (this test binary again, running only
    /// `fetch_with_proxy_variables_set`), so no other test sees it.
    #[test]
    fn proxy_variables_are_ignored() {
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        proxy.set_nonblocking(true).expect("nonblocking");
        let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
        let exe = std::env::current_exe().expect("the test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "cimd::tests::fetch_with_proxy_variables_set", "--ignored", "--test-threads=1"])
            .envs(proxy_variables(&proxy_url))
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .expect("run the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reached = proxy.accept();
        assert!(
            matches!(&reached, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the fetch went to the proxy: {reached:?}"
        );
    }

    #[tokio::test]
    #[ignore = "run by proxy_variables_are_ignored, in a child process with proxy variables set"]
    async fn fetch_with_proxy_variables_set() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        assert!(std::env::var_os("HTTPS_PROXY").is_some(), "run by proxy_variables_are_ignored");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client_id = format!("http://{}/client.json", listener.local_addr().expect("addr"));
        let doc =
            serde_json::json!({ "client_id": client_id, "redirect_uris": ["https://app.example.com/cb"] }).to_string();
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", doc.len());
            let _ = socket.write_all(format!("{head}{doc}").as_bytes()).await;
        });
        // Private hosts allowed: only the proxy question is left to decide where this goes.
        let resolved = CimdResolver::new(true).resolve(&client_id).await;
        assert!(resolved.is_ok(), "{resolved:?}");
    }

    #[test]
    fn url_shape_is_checked_before_fetching() {
        let r = CimdResolver::new(false);
        assert!(r.validate_url("https://app.example.com/oauth/client.json").is_ok());
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/c.json#x",
            "https://user@app.example.com/c.json",
            "https://127.0.0.1/c.json",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/c.json",
            "https://localhost/c.json",
        ] {
            assert!(r.validate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn documents_are_validated() {
        let r = CimdResolver::new(false);
        let id = "https://app.example.com/client.json";
        let good = br#"{"client_id":"https://app.example.com/client.json","client_name":"App","redirect_uris":["https://app.example.com/cb"]}"#;
        let rec = r.validate_document(id, good).expect("valid");
        assert_eq!(rec.client_name.as_deref(), Some("App"));
        assert_eq!(rec.auth_method, "none");
        let cases: [&[u8]; 5] = [
            br#"{"client_id":"https://evil.example/client.json","redirect_uris":["https://a.example/cb"]}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":[]}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["http://evil.example/cb"]}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            b"not json",
        ];
        for body in cases {
            assert!(r.validate_document(id, body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn deeply_nested_documents_are_refused() {
        let r = CimdResolver::new(false);
        let id = "https://app.example.com/client.json";
        let doc = |levels: usize| {
            format!(
                r#"{{"client_id":"{id}","redirect_uris":["https://app.example.com/cb"],"x":{}{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        // The document object is one level: an unknown field may nest 15 more.
        assert!(r.validate_document(id, doc(MAX_JSON_DEPTH - 1).as_bytes()).is_ok());
        let err = r.validate_document(id, doc(MAX_JSON_DEPTH).as_bytes()).expect_err("too deep");
        assert!(err.contains("nests deeper"), "{err}");
        assert!(r.validate_document(id, doc(10_000).as_bytes()).is_err());
    }

    #[test]
    fn cache_lifetime_follows_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(cache_ttl(&h), Some(DEFAULT_TTL));
        h.insert("cache-control", "public, max-age=60".parse().expect("header"));
        assert_eq!(cache_ttl(&h), Some(Duration::from_secs(60)));
        h.insert("cache-control", "max-age=99999999".parse().expect("header"));
        assert_eq!(cache_ttl(&h), Some(MAX_TTL));
        h.insert("cache-control", "no-store".parse().expect("header"));
        assert_eq!(cache_ttl(&h), None);
    }
}
