//! rmcp's own client, signed in through the kit's OAuth flow (rmcp's OAuth client and the real
//! login form) as a platform does, in session mode, calling `roll_dice`.

use std::time::Duration;

use connect_with_client::rmcp::ServiceExt;
use connect_with_client::rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use connect_with_client::rmcp::transport::StreamableHttpClientTransport;
use connect_with_client::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use connect_with_client::{FormLogin, McpClient, authorize};
use serde_json::json;

use super::text_of;

/// How long a tool call may take before the test counts it as failed.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Sign `username` in at `base` (`http://HOST:PORT`) with rmcp's OAuth client, then open an MCP
/// session with rmcp's client in session mode on an HTTP client that opens a new connection per
/// request (behind a round-robin proxy, each request goes to the next instance).
pub(crate) async fn session_at(base: &str, username: &str, password: &str) -> McpClient {
    let mcp_url = format!("{base}/mcp");
    let oauth = authorize(&mcp_url, FormLogin::new(username, password)).await.expect("sign in");
    let token = oauth.access_token().await.expect("an access token");
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(0).timeout(CALL_TIMEOUT).build().expect("an HTTP client");
    let config = StreamableHttpClientTransportConfig::with_uri(mcp_url.as_str()).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let info =
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("mcp-server-example-test", "0.0.0"));
    info.serve(transport).await.expect("initialize")
}

/// `roll_dice` on the session; the text of the result, or why the call failed.
pub(crate) async fn roll(client: &McpClient) -> Result<String, String> {
    let args = json!({ "sides": 6 }).as_object().cloned().expect("an object");
    let call = client.call_tool(CallToolRequestParams::new("roll_dice").with_arguments(args));
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(result)) => Ok(text_of(&serde_json::to_value(result).expect("JSON"))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
    }
}

/// `calls` rolls on the session, each of which must succeed as `username`'s.
pub(crate) async fn rolls_as(client: &McpClient, username: &str, calls: usize) {
    for i in 0..calls {
        let text = roll(client).await.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert!(text.starts_with(&format!("{username} rolled a ")), "call {i}: {text}");
    }
}
