//! The floor: a minimal hyper server (the kit's accept loop, `mcp_bench::serve_forever`) that
//! answers every authenticated POST with a fixed JSON-RPC tool result after looking the bearer
//! token up in a `HashMap`. No rmcp, no JSON parsing (the request id is
//! copied by a byte scan), no SSE. It is what HTTP/1.1 + tokio + the load generator cost; the
//! distance from here to the rmcp ceiling is rmcp's cost.
//!
//! Environment: `PORT` (default 8000), `FLOOR_TOKENS` (comma-separated accepted tokens),
//! `MCP_STATELESS`. `initialize` gets a result (and, unless stateless, an `Mcp-Session-Id`),
//! notifications get 202, `DELETE` gets 200, so that the same load generator drives it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};

fn response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res
}

fn json(body: String) -> Response<Full<Bytes>> {
    let mut res = response(StatusCode::OK, body);
    res.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    res
}

/// The number after the first `"id":` of a JSON-RPC request, or `null`.
fn request_id(body: &[u8]) -> &str {
    let Some(at) = body.windows(5).position(|w| w == b"\"id\":") else { return "null" };
    let rest = &body[at + 5..];
    let start = rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len());
    let len = rest[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 { "null" } else { std::str::from_utf8(&rest[start..start + len]).unwrap_or("null") }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn handle(
    tokens: Arc<HashMap<String, String>>,
    stateless: bool,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let user = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| tokens.get(t));
    let Some(user) = user.cloned() else {
        return Ok(response(StatusCode::UNAUTHORIZED, "authentication required\n"));
    };
    match *req.method() {
        Method::DELETE => return Ok(response(StatusCode::OK, "")),
        Method::POST => {}
        _ => return Ok(response(StatusCode::METHOD_NOT_ALLOWED, "")),
    }
    let body = req.into_body().collect().await?.to_bytes();
    if contains(&body, b"\"method\":\"notifications/") {
        return Ok(response(StatusCode::ACCEPTED, ""));
    }
    let id = request_id(&body);
    if contains(&body, b"\"method\":\"initialize\"") {
        let mut res = json(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2025-06-18","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"floor","version":"0"}}}}}}"#
        ));
        if !stateless {
            res.headers_mut().insert("mcp-session-id", http::HeaderValue::from_static("floor-session"));
        }
        return Ok(res);
    }
    Ok(json(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{user} rolled a 4 on a 6-sided die."}}],"isError":false}}}}"#
    )))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let tokens: HashMap<String, String> = std::env::var("FLOOR_TOKENS")
        .unwrap_or_default()
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| (t.to_owned(), "bench".to_owned()))
        .collect();
    let tokens = Arc::new(tokens);
    let stateless = mcp_bench::stateless();
    mcp_bench::serve_forever(hyper::service::service_fn(move |req| handle(tokens.clone(), stateless, req))).await
}
