//! The bearer guard in front of the MCP endpoint (RFC 6750, MCP authorization): no token or a
//! bad one gets 401 with a `WWW-Authenticate` challenge that points at the protected-resource
//! metadata; a token without a tool's scope gets 403 `insufficient_scope`; a session opened by
//! one user cannot be driven with another user's token.
//!
//! Tokens are verified through the cache ([`crate::verified_cache`]) first, whoever issues
//! them, and through the provider only on a miss.
//!
//! Invariant: handlers never see the raw token, only the verified [`AccessToken`], which the
//! guard puts into the request's extensions.

use std::sync::Arc;

use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::config::Config;
use crate::endpoints::metadata::protected_resource_url;
use crate::escaped::Escaped;
use crate::http_util::{HttpResponse, RequestBody, STORE_RETRY_AFTER, read_body, set_retry_after, text};
use crate::mcp_sessions::{Found, SessionCall};
use crate::provider::{AccessToken, TokenRejection};
use crate::secret::TokenHash;
use crate::session_bindings::Binding;
use crate::session_lookups::BUDGET_WINDOW;
use crate::state::AppState;
use crate::store::McpSessionRecord;

/// A `HeaderName` constant, not a `&str`: looking up a `&str` parses and validates the name
/// on every request.
const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

/// Whether `b` is a byte of RFC 6750's `b64token`: letters, digits and `-._~+/=`. Comparisons
/// without branches, so that the check of a whole token (a JWT is hundreds of bytes, checked
/// on every MCP request) compiles to vector instructions.
#[inline]
fn is_b64token_byte(b: u8) -> bool {
    // `| 0x20` folds A–Z onto a–z and moves no other byte into a–z.
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter | digit | (b == b'-') | (b == b'.') | (b == b'_') | (b == b'~') | (b == b'+') | (b == b'/') | (b == b'=')
}

/// The `Bearer` token of the `Authorization` header. `Err` for a header that is present but
/// not a well-formed bearer credential (RFC 6750 §2.1 `b64token`).
///
/// One pass over the bytes: `b64token` admits only ASCII, so the token needs no
/// separate visible-ASCII check (`HeaderValue::to_str`) or Unicode trim on the hot path.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else { return Ok(None) };
    let bytes = value.as_bytes();
    let space = bytes.iter().position(|&b| b == b' ').ok_or(())?;
    if !bytes[..space].eq_ignore_ascii_case(b"bearer") {
        return Err(());
    }
    let token = bytes[space + 1..].trim_ascii();
    // A fold rather than `all`: no early exit, so the loop vectorizes.
    let ok = !token.is_empty() && token.len() <= 4096 && token.iter().fold(true, |ok, &b| ok & is_b64token_byte(b));
    if !ok {
        return Err(());
    }
    // Cannot fail: every byte `b64token` admits is ASCII.
    std::str::from_utf8(token).map(Some).map_err(|_| ())
}

fn challenge(config: &Config, error: Option<(&str, &str)>, scope: &str) -> String {
    let mut c = format!("Bearer resource_metadata=\"{}\", scope=\"{scope}\"", protected_resource_url(config));
    if let Some((code, description)) = error {
        c.push_str(&format!(", error=\"{code}\", error_description=\"{description}\""));
    }
    c
}

fn with_challenge(status: StatusCode, value: String, body: &'static str) -> HttpResponse {
    let mut res = text(status, body);
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

/// 401 for a request without a usable token.
pub(crate) fn unauthorized(config: &Config, error: Option<(&str, &str)>) -> HttpResponse {
    let scope = config.default_scopes.join(" ");
    with_challenge(StatusCode::UNAUTHORIZED, challenge(config, error, &scope), "authentication required\n")
}

/// The subset of a JSON-RPC message the scope check reads.
#[derive(Debug, PartialEq, Deserialize)]
struct RpcPeek {
    method: Option<String>,
    params: Option<RpcPeekParams>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct RpcPeekParams {
    /// The tool of a `tools/call`.
    name: Option<String>,
    /// The resource of a `resources/read`.
    uri: Option<String>,
}

/// The messages of `body` (a JSON-RPC message or batch), as the scope check sees them.
fn peek_messages(body: &[u8]) -> Vec<RpcPeek> {
    // The common case, one message with each key once, parses straight into the peek: the
    // rest of the message is skipped without building a `Value` tree for it. The derive
    // refuses a known key given twice (and a field of another type), and those bodies take
    // the tree path below, whose map keeps the last of duplicate keys: both paths give the
    // same answer for every body (`the_fast_path_agrees_with_the_tree`). A body that starts
    // with `[` is a batch; the derive would read an array as a struct's fields in order.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[')
        && let Ok(message) = serde_json::from_slice::<RpcPeek>(body)
    {
        return vec![message];
    }
    peek_messages_from_tree(body)
}

/// [`peek_messages`] through a whole `serde_json::Value`: batches, and what the derive refuses.
fn peek_messages_from_tree(body: &[u8]) -> Vec<RpcPeek> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) => {
            items.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect()
        }
        Ok(v) => serde_json::from_value(v).ok().into_iter().collect(),
        // Malformed JSON is rmcp's to answer (with a JSON-RPC parse error).
        Err(_) => Vec::new(),
    }
}

/// Scopes that `body` (a JSON-RPC message or batch) needs and `token` lacks.
fn missing_scopes(state: &AppState, token: &AccessToken, body: &[u8]) -> Vec<String> {
    let mut missing = Vec::new();
    for m in peek_messages(body) {
        let target = match (m.method.as_deref(), m.params) {
            (Some("tools/call"), Some(p)) => p.name,
            // An MCP App's template is part of its tool: reading it takes the tool's scopes.
            (Some("resources/read"), Some(p)) => p.uri,
            _ => None,
        };
        let Some(target) = target else { continue };
        for scope in state.tools_scopes(&target) {
            if !token.has_scope(scope) && !missing.contains(scope) {
                missing.push(scope.clone());
            }
        }
    }
    missing
}

/// The caller `token` names: from the cache without waiting when it holds a current answer
/// (no boxed future on the hot path), otherwise from the provider, whose answer is cached
/// unless a revocation came in meanwhile. An answer past its expiry is refused either way.
async fn verify(state: &AppState, token: &str) -> Result<AccessToken, TokenRejection> {
    let cache = &state.verified;
    let hash = cache.enabled().then(|| TokenHash::of(token));
    let now = state.config.clock.now();
    if let Some(hit) = hash.as_ref().and_then(|h| cache.get(h, now)) {
        return Ok(hit);
    }
    let generation = cache.generation();
    let access = state.authority.verify_token(token).await?;
    if access.expires_at <= now {
        return Err(TokenRejection::Invalid);
    }
    if let Some(hash) = hash {
        cache.put(hash, access.clone(), generation, now);
    }
    Ok(access)
}

/// Authenticate an MCP request and pass it to rmcp.
pub(crate) async fn guard(state: &AppState, req: Request<RequestBody>) -> HttpResponse {
    let config = &state.config;
    let token = match bearer_token(req.headers()) {
        Ok(Some(t)) => t,
        Ok(None) => return unauthorized(config, None),
        Err(()) => return unauthorized(config, Some(("invalid_token", "malformed Authorization header"))),
    };
    let access = match verify(state, token).await {
        Ok(a) => a,
        Err(TokenRejection::Backend(e)) => {
            tracing::error!(error = %e, "token store failed");
            // Not 401: that would tell the client to drop a token that may be fine.
            return store_unavailable("token verification is unavailable\n");
        }
        Err(TokenRejection::WrongAudience) => {
            return unauthorized(config, Some(("invalid_token", "the token was issued for another resource")));
        }
        Err(TokenRejection::Invalid) => {
            return unauthorized(config, Some(("invalid_token", "the token is invalid, expired or revoked")));
        }
    };
    // A `HeaderValue` clone shares the request's bytes: no allocation on the hot path.
    let session = req.headers().get(&SESSION_HEADER).cloned();
    let mut call = None;
    if let Some(id) = session.as_ref().and_then(|v| v.to_str().ok()) {
        match state.sessions.check(id, &access) {
            Binding::Same => {}
            Binding::Foreign => return foreign_session(&access),
            Binding::Unknown => match restore(state, id, &access).await {
                Ok(record) => call = Some(Arc::new(SessionCall::Restoring(record))),
                Err(response) => return response,
            },
        }
    } else if !config.stateless {
        call = Some(SessionCall::opening(access.clone()));
    }
    let (mut parts, body) = req.into_parts();
    // Handlers never see the raw token: only the verified identity goes on.
    parts.headers.remove(http::header::AUTHORIZATION);
    let body = if state.any_scoped_tools() && parts.method == http::Method::POST {
        // Look inside only when some tool needs a scope; the body is bounded like rmcp bounds it.
        let bytes = match read_body(body, config.max_mcp_body_bytes).await {
            Ok(b) => b,
            Err(e) => return e.response(),
        };
        let missing = missing_scopes(state, &access, &bytes);
        if !missing.is_empty() {
            let mut scope = access.scopes.clone();
            scope.extend(missing);
            let value = challenge(
                config,
                Some(("insufficient_scope", "the token lacks a scope this tool requires")),
                &scope.join(" "),
            );
            return with_challenge(StatusCode::FORBIDDEN, value, "insufficient scope\n");
        }
        full_request_body(bytes)
    } else {
        body
    };
    let is_delete = parts.method == http::Method::DELETE;
    parts.extensions.insert(access.clone());
    let request = Request::from_parts(parts, body);
    let mut response = match &call {
        Some(call) => call.clone().scope(state.mcp.call(request)).await,
        None => state.mcp.call(request).await,
    };
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // rmcp stopped reading mid-body; see `BodyError::response`.
        response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    // A stateless server issues no sessions: nothing to bind, and no header lookup to pay.
    if config.stateless {
        return response;
    }
    let session = session.as_ref().and_then(|v| v.to_str().ok());
    match (session, response.headers().get(&SESSION_HEADER).and_then(|v| v.to_str().ok())) {
        (None, Some(new_id)) => {
            if !call.is_some_and(|c| c.opened_session_stored()) {
                // rmcp only logs a failed write; a session no other instance could continue
                // would fail later and less clearly.
                tracing::error!("an MCP session could not be stored; initialize refused");
                return store_unavailable("MCP sessions are unavailable\n");
            }
            state.sessions.bind(new_id.to_owned(), &access);
        }
        (Some(id), _) if is_delete && response.status().is_success() => state.sessions.unbind(id),
        _ => {}
    }
    response
}

fn foreign_session(access: &AccessToken) -> HttpResponse {
    tracing::warn!(subject = %Escaped(&access.subject), "token used on another user's MCP session");
    text(StatusCode::FORBIDDEN, "this MCP session belongs to another user\n")
}

/// 503 with `Retry-After`: the store failed, and the request may succeed later.
fn store_unavailable(body: &'static str) -> HttpResponse {
    let mut res = text(StatusCode::SERVICE_UNAVAILABLE, body);
    set_retry_after(&mut res, STORE_RETRY_AFTER);
    res
}

/// A session this process does not know (opened on another instance or before a restart),
/// or known with another grant: the store's record decides, and becomes the binding here. The
/// caller has a verified token, and its reads are bounded ([`crate::session_lookups`]).
async fn restore(state: &AppState, id: &str, access: &AccessToken) -> Result<McpSessionRecord, HttpResponse> {
    let unknown = || text(StatusCode::NOT_FOUND, "unknown or expired MCP session\n");
    if state.config.stateless {
        // No session is ever issued: nothing to look up.
        return Err(unknown());
    }
    match state.stored_sessions.find(id, access).await {
        Ok(Found::Stored(record)) if record.subject == access.subject => {
            state.sessions.bind(id.to_owned(), access);
            Ok(record)
        }
        Ok(Found::Stored(_)) => Err(foreign_session(access)),
        // Ended, swept as idle, revoked with its grant, or never ours: the client starts a new
        // session (MCP Streamable HTTP: 404 means exactly that).
        Ok(Found::Unknown) => Err(unknown()),
        // Not 404: the session may exist, and the client would drop it.
        Ok(Found::OverBudget) => {
            let mut res = text(StatusCode::TOO_MANY_REQUESTS, "too many unknown MCP sessions; retry later\n");
            set_retry_after(&mut res, BUDGET_WINDOW);
            Err(res)
        }
        Err(e) => {
            tracing::error!(error = %e, "MCP session store failed");
            Err(store_unavailable("MCP sessions are unavailable\n"))
        }
    }
}

fn full_request_body(bytes: Bytes) -> RequestBody {
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static(value));
        h
    }

    /// Every body gives the same messages on the fast path as through the `Value` tree:
    /// duplicate keys (the last one wins in both), other types, batches, nesting, escapes,
    /// trailing bytes and malformed JSON.
    #[test]
    fn the_fast_path_agrees_with_the_tree() {
        let call = |name: &str| RpcPeek {
            method: Some("tools/call".to_owned()),
            params: Some(RpcPeekParams { name: Some(name.to_owned()), uri: None }),
        };
        let read = |uri: &str| RpcPeek {
            method: Some("resources/read".to_owned()),
            params: Some(RpcPeekParams { name: None, uri: Some(uri.to_owned()) }),
        };
        let cases: &[(&str, Vec<RpcPeek>)] = &[
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":[1,{"y":null}]}}}"#,
                vec![call("a")],
            ),
            (r#" {"method":"tools/call","params":{"name":"\u0061dmin"}} "#, vec![call("admin")]),
            (r#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#, vec![call("b")]),
            (r#"{"method":"tools/list","method":"tools/call","params":{"name":"a"}}"#, vec![call("a")]),
            (r#"{"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}"#, vec![call("b")]),
            (r#"{"id":1,"id":2,"method":"tools/call","params":{"name":"a"}}"#, vec![call("a")]),
            (r#"{"method":"tools/list"}"#, vec![RpcPeek { method: Some("tools/list".to_owned()), params: None }]),
            (r#"{"method":5,"params":{"name":"a"}}"#, vec![]),
            (r#"{"method":"tools/call","params":{"name":7}}"#, vec![]),
            (r#"{"method":"tools/call","params":[1,2]}"#, vec![]),
            // A batch of a string and an object with no `method`: nothing is called.
            (r#"["tools/call",{"name":"a"}]"#, vec![RpcPeek { method: None, params: None }]),
            (
                r#" [{"method":"tools/call","params":{"name":"a"}},5,{"method":"tools/call","params":{"name":"b","name":"c"}}]"#,
                vec![call("a"), call("c")],
            ),
            (r#"{"method":"tools/call","params":{"name":"a"}} {}"#, vec![]),
            (r#"{"method":"tools/call","params":{"name":"a""#, vec![]),
            ("", vec![]),
            ("null", vec![]),
            (r#"{"method":"resources/read","params":{"uri":"ui://a/x"}}"#, vec![read("ui://a/x")]),
            (r#"{"method":"resources/read","params":{"uri":"ui://a/x","uri":"ui://b/y"}}"#, vec![read("ui://b/y")]),
            (r#"[{"method":"resources/read","params":{"uri":"ui://a/x"}}]"#, vec![read("ui://a/x")]),
        ];
        for (body, expected) in cases {
            let tree = peek_messages_from_tree(body.as_bytes());
            assert_eq!(&tree, expected, "tree path: {body}");
            assert_eq!(peek_messages(body.as_bytes()), tree, "fast path: {body}");
        }
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
        assert_eq!(bearer_token(&headers("Bearer abc.DEF-_~+/=")), Ok(Some("abc.DEF-_~+/=")));
        assert_eq!(bearer_token(&headers("bearer abc")), Ok(Some("abc")));
        assert_eq!(bearer_token(&headers("BEARER  abc\t")), Ok(Some("abc")), "surrounding blanks are not the token");
        for bad in
            ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "Bearer a\"b", "Token abc", "Bearer\tabc", "Bearerx abc"]
        {
            assert_eq!(bearer_token(&headers(bad)), Err(()), "{bad}");
        }
        // Bytes outside visible ASCII (obs-text) are not a b64token, wherever they are.
        for bad in [&b"Bearer ab\xffc"[..], b"Bear\xe9r abc"] {
            let mut h = HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, HeaderValue::from_bytes(bad).expect("valid header bytes"));
            assert_eq!(bearer_token(&h), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn the_b64token_bytes_are_the_rfc_alphabet() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
            assert_eq!(is_b64token_byte(b), expected, "byte {b}");
        }
    }

    #[test]
    fn challenges_name_the_metadata_and_the_error() {
        let config = Config::new("https://mcp.example.com").expect("valid");
        let c = challenge(&config, Some(("invalid_token", "expired")), "mcp");
        assert!(c.starts_with(
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        ));
        assert!(c.contains("error=\"invalid_token\""));
        assert!(c.contains("scope=\"mcp\""));
    }
}
