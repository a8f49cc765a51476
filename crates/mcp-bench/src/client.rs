//! One HTTP/1.1 keep-alive connection on raw hyper: what a load-generator task or an OAuth
//! flow drives. No pool, no redirects, no cookies: the caller does what a browser would.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("connect {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("HTTP handshake: {0}")]
    Handshake(hyper::Error),
    #[error("request failed: {0}")]
    Send(hyper::Error),
    #[error("reading the body: {0}")]
    Body(hyper::Error),
    #[error("building the request: {0}")]
    Build(#[from] http::Error),
}

/// `oauth.rs`'s flow helpers report their failures as text.
impl From<ClientError> for String {
    fn from(e: ClientError) -> Self {
        e.to_string()
    }
}

/// A response, fully read.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The start of the body, for an error message.
    pub(crate) fn excerpt(&self) -> String {
        self.text().chars().take(200).collect()
    }
}

/// One connection to the server under test.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    /// Connect (with `TCP_NODELAY`, as real clients do) and start HTTP/1.1 on the socket.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await.map_err(|source| ClientError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(ClientError::Handshake)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host = HeaderValue::from_str(&addr.to_string()).map_err(http::Error::from)?;
        Ok(Self { sender, host })
    }

    /// Whether the connection is gone (the server closed it or it failed).
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// A request builder with `Host` set.
    pub(crate) fn request(&self, method: Method, path_and_query: &str) -> http::request::Builder {
        Request::builder().method(method).uri(path_and_query).header(http::header::HOST, self.host.clone())
    }

    /// Send a request and read the whole response body.
    pub(crate) async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        self.sender.ready().await.map_err(ClientError::Send)?;
        let res = self.sender.send_request(req).await.map_err(ClientError::Send)?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(ClientError::Body)?.to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    pub(crate) async fn get(&mut self, path_and_query: &str, cookie: Option<&str>) -> Result<Reply, ClientError> {
        let mut b = self.request(Method::GET, path_and_query);
        if let Some(c) = cookie {
            b = b.header(http::header::COOKIE, c);
        }
        self.send(b.body(Full::new(Bytes::new()))?).await
    }

    /// `POST` a form; a browser's form also sends its cookie and its page's `Origin`.
    pub(crate) async fn post_form(
        &mut self,
        path: &str,
        pairs: &[(&str, &str)],
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let mut b =
            self.request(Method::POST, path).header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(http::header::COOKIE, c);
        }
        if let Some(o) = origin {
            b = b.header(http::header::ORIGIN, o);
        }
        self.send(b.body(Full::new(Bytes::from(body)))?).await
    }

    pub(crate) async fn post_json(&mut self, path: &str, body: String) -> Result<Reply, ClientError> {
        let req = self
            .request(Method::POST, path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        self.send(req).await
    }
}
