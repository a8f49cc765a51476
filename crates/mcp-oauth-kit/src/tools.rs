//! The tool-registration API: typed tools whose handler receives the application state, the
//! caller's [`AccessToken`](crate::AccessToken) and its parsed arguments, and MCP Apps (a tool plus its `ui://`
//! HTML template, the `io.modelcontextprotocol/ui` extension).
//!
//! The types every server names ([`Tools`], [`ToolDef`], [`RegisteredTool`], [`State`],
//! [`Json`], [`ToolOutput`], [`ToolError`], [`AppTemplate`]) are also at the crate root. Reach
//! for this module for what stands behind them: [`IntoToolOutput`] to return a type of your
//! own from handlers, [`ToolHandler`] to name a handler's bound in generic code, and the MCP
//! Apps identifiers ([`MCP_APP_MIME_TYPE`], [`MCP_APPS_EXTENSION`]) for code that speaks the
//! extension itself.
//!
//! Handlers are plain `async fn`s, as in axum: the arguments say what they need
//! ([`State`], the caller, the arguments), `?` works on ordinary errors, and the result is
//! anything [`IntoToolOutput`]:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//!
//! use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
//! use mcp_oauth_kit::{AccessToken, State, ToolDef, ToolError, Tools};
//! use serde::Deserialize;
//!
//! /// Notes per user id; a database pool in a real server.
//! #[derive(Clone, Default)]
//! struct Notes(Arc<Mutex<HashMap<String, Vec<String>>>>);
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct AddNote {
//!     /// The note's text.
//!     text: String,
//! }
//!
//! async fn add_note(State(notes): State<Notes>, caller: AccessToken, args: AddNote) -> Result<String, ToolError> {
//!     if args.text.trim().is_empty() {
//!         return Err(ToolError::message("a note needs some text"));
//!     }
//!     let mut notes = notes.0.lock().map_err(|_| ToolError::message("the notes are unavailable, try again"))?;
//!     let mine = notes.entry(caller.subject.clone()).or_default();
//!     mine.push(args.text);
//!     Ok(format!("{} has {} notes", caller.username, mine.len()))
//! }
//!
//! async fn uptime(_caller: AccessToken) -> Result<String, ToolError> {
//!     // `?` on an io::Error: logged, and the model reads a generic failure.
//!     let uptime = std::fs::read_to_string("/proc/uptime")?;
//!     Ok(format!("up {}", uptime.split(' ').next().unwrap_or("?")))
//! }
//!
//! let tools = Tools::with_state(Notes::default())
//!     .tool(ToolDef::new("add_note", "Save a note for the signed-in user").handler(add_note))
//!     .tool(ToolDef::new("uptime", "How long the server has been up").handler(uptime));
//! ```

mod definition;
mod handler;
mod output;
mod registry;

pub use self::definition::{AppTemplate, RegisteredTool, ToolDef};
pub use self::handler::{IntoToolOutput, Json, State, ToolHandler};
pub(crate) use self::output::ToolCallError;
pub use self::output::{ToolError, ToolOutput};
pub use self::registry::Tools;

/// The mime type of MCP App templates.
pub const MCP_APP_MIME_TYPE: &str = "text/html;profile=mcp-app";

/// The capability key of the MCP Apps extension.
pub const MCP_APPS_EXTENSION: &str = "io.modelcontextprotocol/ui";
