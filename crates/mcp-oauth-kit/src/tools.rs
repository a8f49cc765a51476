//! The tool-registration API: typed tools whose handler receives the caller's
//! [`AccessToken`] and its parsed arguments, and MCP Apps (a tool plus its `ui://` HTML
//! template, the `io.modelcontextprotocol/ui` extension).
//!
//! ```
//! use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, ToolOutput, Tools};
//! use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct EchoArgs {
//!     /// What to say back.
//!     text: String,
//! }
//!
//! async fn echo(caller: AccessToken, args: EchoArgs) -> Result<ToolOutput, ToolError> {
//!     Ok(ToolOutput::text(format!("{} said: {}", caller.username, args.text)))
//! }
//!
//! let tools = Tools::new().tool(ToolDef::new("echo", "Repeat the text back").handler(echo));
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::model::{
    CallToolResult, ContentBlock, EmbeddedResource, JsonObject, MetaObject, ResourceContents, Tool, ToolAnnotations,
};
use rmcp::schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::provider::AccessToken;

/// The mime type of MCP App templates.
pub const MCP_APP_MIME_TYPE: &str = "text/html;profile=mcp-app";

/// The capability key of the MCP Apps extension.
pub const MCP_APPS_EXTENSION: &str = "io.modelcontextprotocol/ui";

/// What a tool returns: content blocks for the model and, optionally, structured content.
#[derive(Debug, Clone, Default)]
pub struct ToolOutput {
    content: Vec<ContentBlock>,
    structured: Option<Value>,
}

impl ToolOutput {
    /// A text result.
    pub fn text(text: impl Into<String>) -> Self {
        Self { content: vec![ContentBlock::text(text)], structured: None }
    }

    /// Add structured content (`structuredContent`), which MCP Apps render from.
    pub fn with_structured(mut self, value: Value) -> Self {
        self.structured = Some(value);
        self
    }

    /// Add a content block (an image, a resource link, …).
    pub fn with_content(mut self, block: ContentBlock) -> Self {
        self.content.push(block);
        self
    }

    fn into_result(self) -> CallToolResult {
        let mut result = CallToolResult::success(self.content);
        result.structured_content = self.structured;
        result
    }
}

/// A tool failure the caller should see (returned as a result with `isError: true`, so the
/// message reaches the user; see rmcp's `CallToolResult::error`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// A failure with a message for the caller.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = Arc<dyn Fn(AccessToken, JsonObject) -> BoxFuture<Result<ToolOutput, ToolCallError>> + Send + Sync>;

/// Why a call did not reach the tool's code or failed in it.
#[derive(Debug)]
pub(crate) enum ToolCallError {
    /// The arguments do not fit the tool's input schema: a JSON-RPC invalid-params error.
    InvalidArguments(String),
    /// The tool failed: an `isError` result.
    Tool(ToolError),
}

/// An MCP App's HTML template, served at a `ui://` URI.
#[derive(Debug, Clone)]
pub struct AppTemplate {
    uri: String,
    name: String,
    html: Arc<str>,
    prefers_border: Option<bool>,
}

impl AppTemplate {
    /// A template at `uri` (which must start with `ui://`) with a display name and its HTML.
    /// The HTML should be self-contained: hosts sandbox it without network access.
    ///
    /// # Panics
    /// If `uri` does not start with `ui://`: that is a programming error found at start-up.
    pub fn new(uri: impl Into<String>, name: impl Into<String>, html: impl Into<Arc<str>>) -> Self {
        let uri = uri.into();
        assert!(uri.starts_with("ui://"), "MCP App template URIs start with ui://, got {uri:?}");
        Self { uri, name: name.into(), html: html.into(), prefers_border: None }
    }

    /// Ask the host to draw (or not) a border around the app.
    pub fn prefers_border(mut self, yes: bool) -> Self {
        self.prefers_border = Some(yes);
        self
    }

    /// The template's `ui://` URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub(crate) fn ui_meta(&self) -> Option<MetaObject> {
        let mut ui = serde_json::Map::new();
        if let Some(b) = self.prefers_border {
            ui.insert("prefersBorder".into(), json!(b));
        }
        (!ui.is_empty()).then(|| MetaObject(serde_json::Map::from_iter([("ui".to_owned(), Value::Object(ui))])))
    }

    pub(crate) fn contents(&self) -> ResourceContents {
        let contents =
            ResourceContents::text(self.html.to_string(), self.uri.clone()).with_mime_type(MCP_APP_MIME_TYPE);
        match self.ui_meta() {
            Some(meta) => contents.with_meta(meta),
            None => contents,
        }
    }

    pub(crate) fn resource(&self) -> rmcp::model::Resource {
        let r = rmcp::model::Resource::new(self.uri.clone(), self.name.clone()).with_mime_type(MCP_APP_MIME_TYPE);
        match self.ui_meta() {
            Some(meta) => r.with_meta(meta),
            None => r,
        }
    }
}

/// A tool being defined: name, description, annotations, required scopes, optional app.
/// Finish it with [`ToolDef::handler`].
#[derive(Debug, Clone)]
pub struct ToolDef {
    name: String,
    description: String,
    title: Option<String>,
    annotations: Option<ToolAnnotations>,
    scopes: Vec<String>,
    app: Option<AppTemplate>,
}

impl ToolDef {
    /// A tool named `name` (letters, digits, `_`, `-`, `.`) with a description for the model.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            title: None,
            annotations: None,
            scopes: Vec::new(),
            app: None,
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Mark the tool as read-only (it changes nothing).
    pub fn read_only(mut self) -> Self {
        self.annotations = Some(self.annotations.unwrap_or_default().read_only(true));
        self
    }

    /// Require an OAuth scope to call the tool (besides the token being valid). A caller
    /// without it gets HTTP 403 `insufficient_scope` naming the scope, so the client can ask
    /// the user for more. An MCP App's template is part of its tool: `resources/read` of it
    /// takes the same scopes.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Make the tool an MCP App: hosts render `template` with the tool's result.
    pub fn app(mut self, template: AppTemplate) -> Self {
        self.app = Some(template);
        self
    }

    /// Finish the definition with its handler: an async function of the caller and the
    /// arguments, parsed from JSON into `A` (whose JSON schema becomes the input schema).
    pub fn handler<A, F, Fut>(self, f: F) -> RegisteredTool
    where
        A: DeserializeOwned + JsonSchema + 'static,
        F: Fn(AccessToken, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |caller, args| {
            let f = f.clone();
            Box::pin(async move {
                let args: A = serde_json::from_value(Value::Object(args))
                    .map_err(|e| ToolCallError::InvalidArguments(e.to_string()))?;
                f(caller, args).await.map_err(ToolCallError::Tool)
            })
        });
        let mut tool = Tool::new(self.name, self.description, JsonObject::new()).with_input_schema::<A>();
        if let Some(t) = self.title {
            tool = tool.with_title(t);
        }
        if let Some(a) = self.annotations {
            tool = tool.with_annotations(a);
        }
        if let Some(app) = &self.app {
            // The current key and the flat key of earlier MCP Apps drafts, for older hosts.
            tool = tool.with_meta(MetaObject(serde_json::Map::from_iter([
                ("ui".to_owned(), json!({ "resourceUri": app.uri })),
                ("ui/resourceUri".to_owned(), json!(app.uri)),
            ])));
        }
        RegisteredTool { tool, scopes: self.scopes, app: self.app, handler }
    }
}

/// A tool with its handler, ready to add to [`Tools`].
#[derive(Clone)]
pub struct RegisteredTool {
    tool: Tool,
    scopes: Vec<String>,
    app: Option<AppTemplate>,
    handler: Handler,
}

impl std::fmt::Debug for RegisteredTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredTool").field("name", &self.tool.name).field("scopes", &self.scopes).finish()
    }
}

/// The set of tools (and MCP App templates) the server offers.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    tools: BTreeMap<String, RegisteredTool>,
    instructions: Option<String>,
}

impl Tools {
    /// No tools yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a tool.
    ///
    /// # Panics
    /// If a tool of that name was added already (a programming error found at start-up).
    pub fn tool(mut self, tool: RegisteredTool) -> Self {
        let name = tool.tool.name.to_string();
        assert!(!self.tools.contains_key(&name), "tool {name:?} registered twice");
        self.tools.insert(name, tool);
        self
    }

    /// Instructions for the model about how to use the tools (sent at initialization).
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    pub(crate) fn get_instructions(&self) -> Option<&str> {
        self.instructions.as_deref()
    }

    pub(crate) fn list(&self) -> Vec<Tool> {
        self.tools.values().map(|t| t.tool.clone()).collect()
    }

    pub(crate) fn templates(&self) -> impl Iterator<Item = &AppTemplate> {
        self.tools.values().filter_map(|t| t.app.as_ref())
    }

    pub(crate) fn has_apps(&self) -> bool {
        self.templates().next().is_some()
    }

    /// Each MCP App template whose tool requires scopes: its URI and those scopes.
    pub(crate) fn scoped_templates(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.tools
            .values()
            .filter(|t| !t.scopes.is_empty())
            .filter_map(|t| Some((t.app.as_ref()?.uri(), &t.scopes[..])))
    }

    /// The scopes a tool requires beyond a valid token (empty for unknown tools).
    pub(crate) fn required_scopes(&self, name: &str) -> &[String] {
        self.tools.get(name).map(|t| t.scopes.as_slice()).unwrap_or(&[])
    }

    /// Run a tool for `caller`. `None` when no tool has that name.
    pub(crate) async fn call(
        &self,
        name: &str,
        caller: AccessToken,
        args: JsonObject,
    ) -> Option<Result<CallToolResult, ToolCallError>> {
        let tool = self.tools.get(name)?;
        let outcome = (tool.handler)(caller, args).await;
        Some(match outcome {
            Ok(output) => {
                let mut result = output.into_result();
                if let Some(app) = &tool.app {
                    // Hosts that render the embedded HTML (Connext does) need it in the
                    // result; hosts that fetch the template by URI find it through resources/read.
                    result.content.push(ContentBlock::Resource(EmbeddedResource::new(app.contents())));
                }
                Ok(result)
            }
            Err(ToolCallError::Tool(e)) => Ok(CallToolResult::error(vec![ContentBlock::text(e.0)])),
            Err(e) => Err(e),
        })
    }
}
