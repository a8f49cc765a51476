//! A local `https` host for client metadata documents: a test CA (made fresh by each test with
//! `rcgen`), a leaf for `localhost`, `127.0.0.1` and the machine's host name, and a small
//! HTTP/1.1 server over `tokio-rustls` that answers each request as the test says (a document,
//! another status, a redirect, an oversize body, or nothing at all) and counts what it served.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Largest document the kit accepts; the oversize replies send one byte more.
pub(crate) const DOCUMENT_CAP: usize = 64 * 1024;

/// Connections one host serves before it stops accepting (each test needs a handful).
const MAX_CONNECTIONS: usize = 50;

/// The machine's host name, as `/etc/hosts` or DNS resolves it for the server.
pub(crate) fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the host name (Linux)").trim().to_owned()
}

/// A test CA and the TLS configuration of a host whose certificate it signed.
pub(crate) struct TestCa {
    /// The CA's certificate (DER), for `Config::danger_cimd_root_certificates`.
    pub(crate) root_der: Vec<u8>,
    acceptor: TlsAcceptor,
}

impl TestCa {
    /// A new CA, and a leaf for `localhost`, `127.0.0.1` and [`machine_host_name`].
    pub(crate) fn new() -> Self {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "mcp-oauth-kit test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root = ca.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca, ca_key);

        let leaf_key = KeyPair::generate().expect("a leaf key");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), machine_host_name()];
        let mut leaf = CertificateParams::new(names).expect("leaf parameters");
        leaf.distinguished_name.push(DnType::CommonName, "document host");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("the leaf certificate");

        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let chain = vec![CertificateDer::from(leaf_cert.der().to_vec())];
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self { root_der: root.der().to_vec(), acceptor: TlsAcceptor::from(Arc::new(config)) }
    }
}

/// How the host answers every request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// 200 with the document, and `Cache-Control` if given.
    Document { cache_control: Option<&'static str> },
    /// This status, with a small body.
    Status(u16),
    /// 302 to this URL.
    Redirect(String),
    /// A body one byte over the cap: chunked (`declared: false`), or announced by
    /// `Content-Length` and cut short after a few bytes (`true`), which a client that reads
    /// before it checks the length reports as a broken body, not as too large.
    Oversize { declared: bool },
    /// Read the request and never answer (the connection stays open until the test ends).
    Silent,
}

/// A running document host.
pub(crate) struct DocumentHost {
    /// `https://{host}:{port}{path}`: the client id.
    pub(crate) url: String,
    served: Arc<AtomicUsize>,
}

impl DocumentHost {
    /// Serve `reply` over TLS on `ip` (a port the system picks), as `host`, at `path`; a
    /// document is made from its URL by `document`.
    pub(crate) async fn start(
        ca: &TestCa,
        ip: IpAddr,
        host: &str,
        path: &str,
        reply: Reply,
        document: impl Fn(&str) -> String,
    ) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind the document host");
        let port = listener.local_addr().expect("its address").port();
        let url = format!("https://{host}:{port}{path}");
        let body = document(&url);
        let served = Arc::new(AtomicUsize::new(0));
        let acceptor = ca.acceptor.clone();
        let count = served.clone();
        tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((socket, _)) = listener.accept().await else { return };
                let (acceptor, reply, body, count) = (acceptor.clone(), reply.clone(), body.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    if !read_request_head(&mut tls).await {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let response = match reply {
                        Reply::Silent => {
                            // Hold the connection until the client gives up.
                            let mut rest = [0u8; 64];
                            let _ = tls.read(&mut rest).await;
                            return;
                        }
                        reply => response_bytes(&reply, &body),
                    };
                    let _ = tls.write_all(&response).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self { url, served }
    }

    /// How many requests it has answered (or, when silent, read).
    pub(crate) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// Read up to the end of the request head; `false` if the client left or sent too much.
async fn read_request_head(tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while head.len() < 16 * 1024 {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return true;
        }
    }
    false
}

fn response_bytes(reply: &Reply, document: &str) -> Vec<u8> {
    let head = |status: &str, headers: &str, len: usize| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {len}\r\nconnection: close\r\n\r\n"
        )
    };
    match reply {
        Reply::Document { cache_control } => {
            let cc = cache_control.map(|c| format!("cache-control: {c}\r\n")).unwrap_or_default();
            format!("{}{document}", head("200 OK", &cc, document.len())).into_bytes()
        }
        Reply::Status(code) => {
            let body = "{}";
            format!("{}{body}", head(&format!("{code} Test"), "", body.len())).into_bytes()
        }
        Reply::Redirect(to) => head("302 Found", &format!("location: {to}\r\n"), 0).into_bytes(),
        // The length alone must be enough to refuse: what follows is too short to be the body.
        Reply::Oversize { declared: true } => {
            let body = oversize_body();
            let mut out = head("200 OK", "", body.len()).into_bytes();
            out.extend_from_slice(&body.as_bytes()[..16]);
            out
        }
        Reply::Oversize { declared: false } => {
            let body = oversize_body();
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
            for chunk in body.as_bytes().chunks(8 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        Reply::Silent => Vec::new(),
    }
}

/// A JSON value one byte longer than the cap.
fn oversize_body() -> String {
    let filler = DOCUMENT_CAP + 1 - r#"{"x":""}"#.len();
    format!(r#"{{"x":"{}"}}"#, "a".repeat(filler))
}
