//! `roll_dice`: an ordinary tool that answers with text naming the caller.

use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
use mcp_oauth_kit::{AccessToken, RegisteredTool, ToolDef, ToolError};
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
struct RollArgs {
    /// Number of sides of the die (2 to 1000). Default 6.
    #[serde(default = "six")]
    #[schemars(range(min = 2, max = 1000))]
    sides: u32,
}

fn six() -> u32 {
    6
}

async fn roll(caller: AccessToken, args: RollArgs) -> Result<String, ToolError> {
    if !(2..=1000).contains(&args.sides) {
        // For the model, verbatim, so that it can call again with a valid die.
        return Err(ToolError::message(format!("a die needs 2 to 1000 sides, not {}", args.sides)));
    }
    let value = rand::random_range(1..=args.sides);
    Ok(format!("{} rolled a {value} on a {}-sided die.", caller.username, args.sides))
}

pub(crate) fn tool() -> RegisteredTool {
    ToolDef::new("roll_dice", "Roll a die with the given number of sides and say who rolled what.")
        .title("Roll dice")
        .read_only()
        .handler(roll)
}
