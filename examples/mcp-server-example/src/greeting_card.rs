//! `greeting_card`: an MCP App. The tool's result carries text for the model, structured
//! content `{username, message}` for the view, and the HTML template (embedded, and readable
//! at `ui://acme/greeting-card`).

use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
use mcp_oauth_kit::{AccessToken, AppTemplate, RegisteredTool, ToolDef, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::json;

const TEMPLATE: &str = include_str!("../assets/greeting_card.html");

#[derive(Debug, Deserialize, JsonSchema)]
struct CardArgs {
    /// The message on the card (at most 280 characters). Default: a friendly hello.
    #[serde(default)]
    message: Option<String>,
}

async fn greet(caller: AccessToken, args: CardArgs) -> Result<ToolOutput, ToolError> {
    let message = args.message.unwrap_or_else(|| "Have a wonderful day!".to_owned());
    if message.chars().count() > 280 {
        return Err(ToolError::message("the message is longer than 280 characters"));
    }
    let text = format!("A greeting card for {}: {message}", caller.username);
    Ok(ToolOutput::text(text).with_structured(json!({ "username": caller.username, "message": message })))
}

pub(crate) fn tool() -> RegisteredTool {
    ToolDef::new("greeting_card", "Show a personal greeting card for the signed-in user, with an optional message.")
        .title("Greeting card")
        .read_only()
        .app(AppTemplate::new("ui://acme/greeting-card", "Greeting card", TEMPLATE).prefers_border(false))
        .handler(greet)
}
