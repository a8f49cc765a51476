//! MCP over Streamable HTTP from the client's side: the JSON-RPC reply in a response, whether
//! the server answered with JSON or with an SSE stream, and the text of a tool result.

use serde_json::Value;

/// The JSON-RPC reply (a message with an `id` and a `result` or an `error`) in a response
/// body of this `Content-Type`: the body itself for JSON, the last such `data:` message of an
/// SSE stream. `None` when there is none.
///
/// ```
/// let sse = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
/// let reply = mcp_test_support::rpc_reply("text/event-stream", sse).unwrap();
/// assert_eq!(reply["id"], 1);
/// let json = r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601}}"#;
/// assert_eq!(mcp_test_support::rpc_reply("application/json", json).unwrap()["id"], 2);
/// ```
pub fn rpc_reply(content_type: &str, body: &str) -> Option<Value> {
    if !content_type.starts_with("text/event-stream") {
        return serde_json::from_str(body).ok();
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .rfind(|m| m.get("id").is_some() && (m.get("result").is_some() || m.get("error").is_some()))
}

/// The `text` blocks of a tool result (a `CallToolResult`), joined with spaces.
///
/// ```
/// use serde_json::json;
///
/// let result = json!({ "content": [{ "type": "text", "text": "alice" }, { "type": "text", "text": "rolled" }] });
/// assert_eq!(mcp_test_support::text_of(&result), "alice rolled");
/// ```
pub fn text_of(result: &Value) -> String {
    result["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect::<Vec<_>>().join(" ")
}
