//! The tool-registration API: typed tools whose handler receives the application state, the
//! caller's [`AccessToken`] and its parsed arguments, and MCP Apps (a tool plus its `ui://`
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

mod handler;

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolResult, ContentBlock, EmbeddedResource, JsonObject, MetaObject, ResourceContents, Tool, ToolAnnotations,
};
use serde_json::{Value, json};

use self::handler::ToolFn;
pub use self::handler::{IntoToolOutput, Json, State, ToolHandler};
use crate::error::ConfigError;
use crate::provider::AccessToken;

/// The mime type of MCP App templates.
pub const MCP_APP_MIME_TYPE: &str = "text/html;profile=mcp-app";

/// The capability key of the MCP Apps extension.
pub const MCP_APPS_EXTENSION: &str = "io.modelcontextprotocol/ui";

/// What a tool returns: content blocks for the model and, optionally, structured content.
/// For text alone return a `String`, for structured content alone [`Json`]; `ToolOutput` is
/// for both, or for other content blocks.
///
/// ```
/// use mcp_oauth_kit::{AccessToken, ToolError, ToolOutput};
/// use serde_json::json;
///
/// async fn card(caller: AccessToken) -> Result<ToolOutput, ToolError> {
///     Ok(ToolOutput::text(format!("A card for {}", caller.username))
///         .with_structured(json!({ "username": caller.username })))
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ToolOutput {
    content: Vec<ContentBlock>,
    structured: Option<Value>,
}

impl ToolOutput {
    /// A text result.
    ///
    /// ```
    /// use mcp_oauth_kit::{AccessToken, ToolError, ToolOutput};
    ///
    /// async fn greet(caller: AccessToken) -> Result<ToolOutput, ToolError> {
    ///     Ok(ToolOutput::text(format!("Hello, {}", caller.username)))
    /// }
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        Self { content: vec![ContentBlock::text(text)], structured: None }
    }

    /// Add structured content (`structuredContent`), which MCP Apps render from.
    ///
    /// ```
    /// use mcp_oauth_kit::ToolOutput;
    ///
    /// let roll = 4;
    /// let output = ToolOutput::text(format!("You rolled {roll}")).with_structured(serde_json::json!({ "roll": roll }));
    /// ```
    pub fn with_structured(mut self, value: Value) -> Self {
        self.structured = Some(value);
        self
    }

    /// Add a content block (an image, a resource link, …).
    ///
    /// ```
    /// use mcp_oauth_kit::ToolOutput;
    /// use mcp_oauth_kit::rmcp::model::ContentBlock;
    ///
    /// # let png_base64 = String::new();
    /// let output = ToolOutput::text("Your chart").with_content(ContentBlock::image(png_base64, "image/png"));
    /// ```
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

/// What the model reads when a tool fails with an internal error; the details go to the log.
pub(crate) const INTERNAL_ERROR_TEXT: &str = "The tool failed because of an internal error on the server.";

/// Why a tool call failed. Two kinds, which reach the model differently:
///
/// - **A message for the model**, [`ToolError::message`]: the text is returned as the tool's
///   result with `isError: true`, so the model can read it and correct its call ("a die needs
///   2 to 1000 sides").
/// - **An internal error**: any `std::error::Error` converts with `?` (a database or I/O
///   error), or [`ToolError::internal`]. It is logged with `tracing::error!` and the tool's
///   name (never its arguments), and the model gets a generic `isError` text, because the
///   error's own text may describe the server's insides.
///
/// ```
/// use mcp_oauth_kit::{AccessToken, ToolError};
///
/// async fn read_motd(_caller: AccessToken) -> Result<String, ToolError> {
///     // An internal error: logged, the model sees a generic text.
///     let text = std::fs::read_to_string("/etc/motd")?;
///     if text.trim().is_empty() {
///         // A message for the model, returned as it is.
///         return Err(ToolError::message("there is no message of the day"));
///     }
///     Ok(text)
/// }
/// ```
///
/// `ToolError` does not implement `std::error::Error` itself (as with `anyhow::Error`): that
/// is what lets every error type convert into it.
pub struct ToolError {
    kind: ToolErrorKind,
}

enum ToolErrorKind {
    /// For the model, verbatim.
    Message(String),
    /// For the log only.
    Internal(Box<dyn std::error::Error + Send + Sync>),
    /// The arguments do not fit the tool's input schema: a JSON-RPC invalid-params error.
    InvalidArguments(String),
}

impl ToolError {
    /// A failure the model should read: returned as the tool's result with `isError: true`
    /// and `text` as its content. Say what was wrong and how to call the tool instead.
    ///
    /// ```
    /// use mcp_oauth_kit::ToolError;
    ///
    /// fn check_sides(sides: u32) -> Result<u32, ToolError> {
    ///     if !(2..=1000).contains(&sides) {
    ///         return Err(ToolError::message(format!("a die needs 2 to 1000 sides, not {sides}")));
    ///     }
    ///     Ok(sides)
    /// }
    /// assert_eq!(check_sides(0).unwrap_err().to_string(), "a die needs 2 to 1000 sides, not 0");
    /// ```
    pub fn message(text: impl Into<String>) -> Self {
        Self { kind: ToolErrorKind::Message(text.into()) }
    }

    /// An internal failure from an error that is not a `std::error::Error` (an
    /// `anyhow::Error`, a `String`): logged, and the model gets a generic text. Errors that
    /// are `std::error::Error` convert with `?` by themselves.
    ///
    /// ```
    /// use mcp_oauth_kit::ToolError;
    ///
    /// // A backend that reports failures as strings:
    /// fn fetch_quota(user: &str) -> Result<u32, String> {
    ///     Err(format!("quota service unreachable for {user}"))
    /// }
    /// let err = fetch_quota("carol").map_err(ToolError::internal).unwrap_err();
    /// // The log gets this; the model gets a generic text.
    /// assert_eq!(err.to_string(), "internal error: quota service unreachable for carol");
    /// ```
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { kind: ToolErrorKind::Internal(error.into()) }
    }

    pub(crate) fn invalid_arguments(why: String) -> Self {
        Self { kind: ToolErrorKind::InvalidArguments(why) }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ToolError {
    fn from(error: E) -> Self {
        Self::internal(error)
    }
}

impl std::fmt::Debug for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ToolErrorKind::Message(text) => f.debug_tuple("ToolError::Message").field(text).finish(),
            ToolErrorKind::Internal(e) => f.debug_tuple("ToolError::Internal").field(e).finish(),
            ToolErrorKind::InvalidArguments(why) => f.debug_tuple("ToolError::InvalidArguments").field(why).finish(),
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ToolErrorKind::Message(text) => f.write_str(text),
            ToolErrorKind::Internal(e) => write!(f, "internal error: {}", ErrorChain(e.as_ref())),
            ToolErrorKind::InvalidArguments(why) => write!(f, "invalid arguments: {why}"),
        }
    }
}

/// An error and its sources, `outer: inner: innermost`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// Why a call did not reach the tool's code.
#[derive(Debug)]
pub(crate) enum ToolCallError {
    /// The arguments do not fit the tool's input schema: a JSON-RPC invalid-params error.
    InvalidArguments(String),
}

/// An MCP App's HTML template, served at a `ui://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTemplate {
    uri: String,
    name: String,
    html: Arc<str>,
    prefers_border: Option<bool>,
}

impl AppTemplate {
    /// A template at `uri` (a `ui://` URI such as `ui://acme/card`) with a display name and
    /// its HTML. The HTML should be self-contained: hosts sandbox it without network access.
    ///
    /// A `uri` that is not a `ui://` URI makes [`McpServerBuilder::build`](crate::McpServerBuilder::build)
    /// fail with [`Error::Config`](crate::Error::Config) naming the tool.
    ///
    /// ```
    /// use mcp_oauth_kit::AppTemplate;
    /// let card = AppTemplate::new("ui://acme/card", "Card", "<!doctype html><p>Hello</p>").prefers_border(false);
    /// assert_eq!(card.uri(), "ui://acme/card");
    /// ```
    pub fn new(uri: impl Into<String>, name: impl Into<String>, html: impl Into<Arc<str>>) -> Self {
        Self { uri: uri.into(), name: name.into(), html: html.into(), prefers_border: None }
    }

    /// Ask the host to draw (or not) a border around the app (`_meta.ui.prefersBorder`);
    /// without it the host decides.
    ///
    /// ```
    /// use mcp_oauth_kit::AppTemplate;
    ///
    /// // A card that draws its own frame.
    /// let card = AppTemplate::new("ui://acme/card", "Card", "<!doctype html><div class=frame>…</div>").prefers_border(false);
    /// ```
    pub fn prefers_border(mut self, yes: bool) -> Self {
        self.prefers_border = Some(yes);
        self
    }

    /// The template's `ui://` URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Why the URI is not a `ui://` URI, if it is not.
    fn uri_problem(&self) -> Option<String> {
        let ok = match url::Url::parse(&self.uri) {
            Ok(url) => url.scheme() == "ui" && url.host_str().is_some_and(|h| !h.is_empty()),
            Err(_) => false,
        };
        (!ok).then(|| format!("its App template URI {:?} is not a ui:// URI such as \"ui://app/view\"", self.uri))
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
///
/// ```
/// use mcp_oauth_kit::{AccessToken, AppTemplate, ToolDef, ToolError, ToolOutput, Tools};
///
/// async fn card(caller: AccessToken) -> Result<ToolOutput, ToolError> {
///     Ok(ToolOutput::text(format!("a card for {}", caller.username))
///         .with_structured(serde_json::json!({ "username": caller.username })))
/// }
///
/// let tools = Tools::new().tool(
///     ToolDef::new("card", "Show the caller's card")
///         .title("Card")
///         .read_only()
///         .scope("cards")
///         .app(AppTemplate::new("ui://acme/card", "Card", "<!doctype html><p>card</p>"))
///         .handler(card),
/// );
/// ```
#[derive(Debug, Clone)]
pub struct ToolDef {
    name: String,
    description: String,
    title: Option<String>,
    annotations: Option<ToolAnnotations>,
    scopes: Vec<String>,
    app: Option<AppTemplate>,
    app_only: bool,
}

impl ToolDef {
    /// A tool named `name` with a description for the model. Names are 1 to 128 of the
    /// letters `A-Z` and `a-z`, digits, `_`, `-` and `.` (the MCP specification's tool names);
    /// another name makes [`McpServerBuilder::build`](crate::McpServerBuilder::build) fail.
    ///
    /// ```
    /// # use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    /// # async fn whoami(caller: AccessToken) -> Result<String, ToolError> { Ok(caller.username.clone()) }
    /// let tools = Tools::new().tool(ToolDef::new("whoami", "Say which user is signed in").handler(whoami));
    /// ```
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            title: None,
            annotations: None,
            scopes: Vec::new(),
            app: None,
            app_only: false,
        }
    }

    /// A human-readable title, which hosts show instead of the name.
    ///
    /// ```
    /// # use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    /// # async fn whoami(caller: AccessToken) -> Result<String, ToolError> { Ok(caller.username.clone()) }
    /// let tools = Tools::new().tool(ToolDef::new("whoami", "Say which user is signed in").title("Who am I?").handler(whoami));
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Mark the tool as read-only (it changes nothing): the `readOnlyHint` annotation, which
    /// hosts may use to skip asking the user before a call.
    ///
    /// ```
    /// # use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    /// # async fn whoami(caller: AccessToken) -> Result<String, ToolError> { Ok(caller.username.clone()) }
    /// let tools = Tools::new().tool(ToolDef::new("whoami", "Say which user is signed in").read_only().handler(whoami));
    /// ```
    pub fn read_only(mut self) -> Self {
        self.annotations = Some(self.annotations.unwrap_or_default().read_only(true));
        self
    }

    /// Require an OAuth scope to call the tool (besides the token being valid). A caller
    /// without it gets HTTP 403 `insufficient_scope` naming the scope, so the client can ask
    /// the user for more. An MCP App's template is part of its tool: `resources/read` of it
    /// takes the same scopes.
    ///
    /// ```
    /// use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
    /// use mcp_oauth_kit::{AccessToken, Config, ToolDef, ToolError, Tools};
    ///
    /// #[derive(serde::Deserialize, JsonSchema)]
    /// struct NewNote {
    ///     text: String,
    /// }
    ///
    /// async fn add_note(caller: AccessToken, note: NewNote) -> Result<String, ToolError> {
    ///     Ok(format!("saved {} characters for {}", note.text.len(), caller.username))
    /// }
    ///
    /// // The scope must be one the configuration supports.
    /// let config = Config::new("https://notes.example.com")?.with_scopes(&["notes", "notes:write"], &["notes"]);
    /// let tools = Tools::new().tool(ToolDef::new("add_note", "Save a note").scope("notes:write").handler(add_note));
    /// # let server = mcp_oauth_kit::McpServer::builder(config).user_store(mcp_oauth_kit::StaticUserStore::new());
    /// # server.tools(tools).build().unwrap();
    /// # Ok::<(), mcp_oauth_kit::ConfigError>(())
    /// ```
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Make the tool an MCP App: hosts render `template` with the tool's result. Tools may
    /// share a template (an App and the [`app_only`](ToolDef::app_only) tools its view
    /// calls): it is listed once, and they must have the same template and the same scopes,
    /// since reading it takes them.
    ///
    /// ```
    /// use mcp_oauth_kit::{AccessToken, AppTemplate, Json, ToolDef, ToolError, Tools};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Card {
    ///     username: String,
    /// }
    ///
    /// // The view renders from the structured content, which `Json` returns.
    /// async fn card(caller: AccessToken) -> Result<Json<Card>, ToolError> {
    ///     Ok(Json(Card { username: caller.username.clone() }))
    /// }
    ///
    /// let view = AppTemplate::new("ui://acme/card", "Card", "<!doctype html><div id=card></div>");
    /// let tools = Tools::new().tool(ToolDef::new("card", "Show the caller's card").app(view).handler(card));
    /// ```
    pub fn app(mut self, template: AppTemplate) -> Self {
        self.app = Some(template);
        self
    }

    /// Offer the tool to MCP App views only, not to the model: its `tools/list` entry says
    /// `"_meta": {"ui": {"visibility": ["app"]}}` (the MCP Apps extension, SEP-1865). Hosts
    /// that support MCP Apps leave it out of the model's tool list and let a view of this
    /// server call it (`tools/call` from the view, such as a button that refreshes the
    /// view's data). Without this, a tool is visible to both (the extension's default,
    /// `["model", "app"]`, which the kit leaves implicit).
    ///
    /// # Security
    /// Visibility is advice to the host, not access control: hosts without MCP Apps list the
    /// tool like any other, and any client with a valid token can call it. Protect what needs
    /// protecting with [`ToolDef::scope`] and checks on the caller.
    ///
    /// ```
    /// use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    ///
    /// async fn refresh_card(caller: AccessToken) -> Result<String, ToolError> {
    ///     Ok(format!("fresh data for {}", caller.username))
    /// }
    ///
    /// let tools = Tools::new()
    ///     .tool(ToolDef::new("refresh_card", "Reload the card's data").app_only().handler(refresh_card));
    /// ```
    pub fn app_only(mut self) -> Self {
        self.app_only = true;
        self
    }

    /// Finish the definition with its handler: an `async fn` (or closure) of the caller, and
    /// optionally the [`State`] and the arguments (whose JSON schema becomes the tool's input
    /// schema). [`ToolHandler`] lists the argument lists it takes.
    ///
    /// ```
    /// use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
    /// use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    ///
    /// #[derive(serde::Deserialize, JsonSchema)]
    /// struct Roll {
    ///     /// How many sides the die has.
    ///     sides: u32,
    /// }
    ///
    /// async fn roll(_caller: AccessToken, args: Roll) -> Result<String, ToolError> {
    ///     Ok(format!("a d{} rolled", args.sides))
    /// }
    ///
    /// let tools = Tools::new()
    ///     .tool(ToolDef::new("roll", "Roll a die").handler(roll))
    ///     // A closure with its parameter types written out works too.
    ///     .tool(ToolDef::new("ping", "Check the server answers").handler(|_caller: AccessToken| async { Ok("pong") }));
    /// ```
    pub fn handler<T, S, H: ToolHandler<T, S>>(self, handler: H) -> RegisteredTool<S> {
        let (schema, handler) = handler.into_tool_fn();
        let mut problem = name_problem(&self.name);
        let schema = schema.unwrap_or_else(|why| {
            problem.get_or_insert(format!("its arguments type has no JSON object schema: {why}"));
            JsonObject::new()
        });
        if let Some(why) = self.app.as_ref().and_then(AppTemplate::uri_problem) {
            problem.get_or_insert(why);
        }
        let mut tool = Tool::new(self.name, self.description, schema);
        if let Some(t) = self.title {
            tool = tool.with_title(t);
        }
        if let Some(a) = self.annotations {
            tool = tool.with_annotations(a);
        }
        let mut ui = serde_json::Map::new();
        if let Some(app) = &self.app {
            ui.insert("resourceUri".to_owned(), json!(app.uri));
        }
        if self.app_only {
            ui.insert("visibility".to_owned(), json!(["app"]));
        }
        if !ui.is_empty() {
            let mut meta = serde_json::Map::from_iter([("ui".to_owned(), Value::Object(ui))]);
            if let Some(app) = &self.app {
                // The flat key of earlier MCP Apps drafts, for older hosts.
                meta.insert("ui/resourceUri".to_owned(), json!(app.uri));
            }
            tool = tool.with_meta(MetaObject(meta));
        }
        RegisteredTool { tool, scopes: self.scopes, app: self.app, handler, problem }
    }
}

/// Why `name` is not an MCP tool name, if it is not.
fn name_problem(name: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 128 || !name.chars().all(allowed) {
        Some("tool names are 1 to 128 of the characters A-Z, a-z, 0-9, _, - and .".to_owned())
    } else {
        None
    }
}

/// A tool with its handler, ready to add to [`Tools`]. `S` is the state of the registry it
/// goes into; a handler that takes no [`State`] fits a registry of any state, so a module
/// that defines such a tool can leave `S` open:
///
/// ```
/// use mcp_oauth_kit::{AccessToken, RegisteredTool, ToolDef, ToolError, Tools};
///
/// async fn ping(_caller: AccessToken) -> Result<&'static str, ToolError> {
///     Ok("pong")
/// }
///
/// pub fn ping_tool<S: Clone + Send + Sync + 'static>() -> RegisteredTool<S> {
///     ToolDef::new("ping", "Answer pong").handler(ping)
/// }
///
/// let stateless = Tools::new().tool(ping_tool());
/// let with_state = Tools::with_state(std::sync::Arc::new(42_u32)).tool(ping_tool());
/// ```
pub struct RegisteredTool<S = ()> {
    tool: Tool,
    scopes: Vec<String>,
    app: Option<AppTemplate>,
    handler: ToolFn<S>,
    /// What makes the tool unservable, reported by `McpServerBuilder::build`.
    problem: Option<String>,
}

impl<S> Clone for RegisteredTool<S> {
    fn clone(&self) -> Self {
        Self {
            tool: self.tool.clone(),
            scopes: self.scopes.clone(),
            app: self.app.clone(),
            handler: self.handler.clone(),
            problem: self.problem.clone(),
        }
    }
}

impl<S> std::fmt::Debug for RegisteredTool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredTool").field("name", &self.tool.name).field("scopes", &self.scopes).finish()
    }
}

impl<S: Clone + Send + Sync + 'static> RegisteredTool<S> {
    /// The same tool with `state` bound into its handler.
    fn bind(self, state: S) -> RegisteredTool<()> {
        let handler = self.handler;
        RegisteredTool {
            tool: self.tool,
            scopes: self.scopes,
            app: self.app,
            handler: Arc::new(move |(), caller, args| handler(state.clone(), caller, args)),
            problem: self.problem,
        }
    }
}

/// The set of tools (and MCP App templates) the server offers, with the application state
/// `S` their handlers share (`()` for none). Give it to
/// [`McpServerBuilder::tools`](crate::McpServerBuilder::tools).
///
/// Mistakes in the registry (an invalid or repeated tool name, an arguments type without an
/// object schema, a template URI that is not `ui://`, one URI with two templates or two sets
/// of scopes) are reported by
/// [`McpServerBuilder::build`](crate::McpServerBuilder::build) as
/// [`Error::Config`](crate::Error::Config) naming the tool; nothing here panics.
///
/// ```
/// use std::sync::Arc;
/// use mcp_oauth_kit::{AccessToken, Json, State, ToolDef, ToolError, Tools};
///
/// struct Db; // a connection pool in a real server
/// impl Db {
///     async fn count_notes(&self, _user: &str) -> std::io::Result<u64> { Ok(3) }
/// }
///
/// async fn count(State(db): State<Arc<Db>>, caller: AccessToken) -> Result<Json<serde_json::Value>, ToolError> {
///     let notes = db.count_notes(&caller.subject).await?; // io::Error -> logged internal error
///     Ok(Json(serde_json::json!({ "notes": notes })))
/// }
///
/// let tools = Tools::with_state(Arc::new(Db))
///     .instructions("Count the user's notes with count_notes.")
///     .tool(ToolDef::new("count_notes", "How many notes the user has").read_only().handler(count));
/// ```
pub struct Tools<S = ()> {
    state: S,
    tools: BTreeMap<String, RegisteredTool<S>>,
    instructions: Option<String>,
    /// The first mistake found, reported by `McpServerBuilder::build`.
    problem: Option<ConfigError>,
}

impl<S: Clone> Clone for Tools<S> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            tools: self.tools.clone(),
            instructions: self.instructions.clone(),
            problem: self.problem.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Tools<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools").field("tools", &self.tools.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl Default for Tools {
    fn default() -> Self {
        Self::new()
    }
}

impl Tools {
    /// No tools yet, and no state: handlers take no [`State`].
    ///
    /// ```
    /// # use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    /// # async fn whoami(caller: AccessToken) -> Result<String, ToolError> { Ok(caller.username.clone()) }
    /// let tools = Tools::new().tool(ToolDef::new("whoami", "Say which user is signed in").handler(whoami));
    /// ```
    pub fn new() -> Self {
        Self::with_state(())
    }
}

impl<S: Clone + Send + Sync + 'static> Tools<S> {
    /// No tools yet; handlers that take [`State<S>`](State) get a clone of `state` on each
    /// call (keep it cheap to clone: an `Arc`, a pool). Handlers without state fit too.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mcp_oauth_kit::{AccessToken, State, ToolDef, ToolError, Tools};
    ///
    /// struct App {
    ///     greeting: String,
    /// }
    ///
    /// async fn greet(State(app): State<Arc<App>>, caller: AccessToken) -> Result<String, ToolError> {
    ///     Ok(format!("{}, {}", app.greeting, caller.username))
    /// }
    ///
    /// let tools = Tools::with_state(Arc::new(App { greeting: "Hello".into() }))
    ///     .tool(ToolDef::new("greet", "Greet the signed-in user").handler(greet));
    /// ```
    pub fn with_state(state: S) -> Self {
        Self { state, tools: BTreeMap::new(), instructions: None, problem: None }
    }

    /// Add a tool. A name used twice is reported by
    /// [`McpServerBuilder::build`](crate::McpServerBuilder::build).
    ///
    /// ```
    /// # use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    /// # async fn whoami(caller: AccessToken) -> Result<String, ToolError> { Ok(caller.username.clone()) }
    /// # async fn whoareyou(_caller: AccessToken) -> Result<String, ToolError> { Ok("a server".into()) }
    /// let tools = Tools::new()
    ///     .tool(ToolDef::new("whoami", "Say which user is signed in").handler(whoami))
    ///     .tool(ToolDef::new("whoareyou", "Say what this server is").handler(whoareyou));
    /// ```
    pub fn tool(mut self, tool: RegisteredTool<S>) -> Self {
        let name = tool.tool.name.to_string();
        let problem = match &tool.problem {
            Some(why) => Some(why.clone()),
            None if self.tools.contains_key(&name) => Some("it is registered twice".to_owned()),
            None => self.template_conflict(&tool),
        };
        if let Some(why) = problem {
            self.problem.get_or_insert_with(|| ConfigError::new("tools", format!("tool {name:?}: {why}")));
        } else {
            self.tools.insert(name, tool);
        }
        self
    }

    /// Instructions for the model about how to use the tools (sent at initialization).
    ///
    /// ```
    /// # use mcp_oauth_kit::{AccessToken, ToolDef, ToolError, Tools};
    /// # async fn whoami(caller: AccessToken) -> Result<String, ToolError> { Ok(caller.username.clone()) }
    /// let tools = Tools::new()
    ///     .instructions("Call whoami before acting on the user's behalf.")
    ///     .tool(ToolDef::new("whoami", "Say which user is signed in").handler(whoami));
    /// ```
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    /// Why `tool`'s template cannot be served beside another tool's of the same URI: the URI
    /// names one resource, with one content and one set of scopes to read it.
    fn template_conflict(&self, tool: &RegisteredTool<S>) -> Option<String> {
        let app = tool.app.as_ref()?;
        let scopes = |t: &RegisteredTool<S>| std::collections::BTreeSet::from_iter(t.scopes.clone());
        self.tools.iter().filter(|(_, t)| t.app.as_ref().is_some_and(|a| a.uri == app.uri)).find_map(|(name, t)| {
            if t.app.as_ref() != Some(app) {
                Some(format!("its App template {:?} differs from the one tool {name:?} has at that URI", app.uri))
            } else if scopes(t) != scopes(tool) {
                Some(format!(
                    "it shares its App template {:?} with tool {name:?}, which requires other scopes",
                    app.uri
                ))
            } else {
                None
            }
        })
    }

    /// The registry with the state bound into each handler, and the first mistake, if any.
    pub(crate) fn into_stateless(self) -> Result<Tools, ConfigError> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        let state = self.state;
        let tools = self.tools.into_iter().map(|(name, tool)| (name, tool.bind(state.clone()))).collect();
        Ok(Tools { state: (), tools, instructions: self.instructions, problem: None })
    }
}

impl Tools {
    pub(crate) fn get_instructions(&self) -> Option<&str> {
        self.instructions.as_deref()
    }

    pub(crate) fn list(&self) -> Vec<Tool> {
        self.tools.values().map(|t| t.tool.clone()).collect()
    }

    /// Each App template once (tools may share one).
    pub(crate) fn templates(&self) -> impl Iterator<Item = &AppTemplate> {
        let mut seen = std::collections::HashSet::new();
        self.tools.values().filter_map(|t| t.app.as_ref()).filter(move |t| seen.insert(t.uri.as_str()))
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
        let outcome = (tool.handler)((), caller, args).await;
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
            Err(ToolError { kind: ToolErrorKind::Message(text) }) => {
                Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
            }
            Err(ToolError { kind: ToolErrorKind::Internal(e) }) => {
                // The arguments stay out of the log: they may hold what the user typed.
                tracing::error!(tool = name, error = %ErrorChain(e.as_ref()), "tool failed");
                Ok(CallToolResult::error(vec![ContentBlock::text(INTERNAL_ERROR_TEXT)]))
            }
            Err(ToolError { kind: ToolErrorKind::InvalidArguments(why) }) => Err(ToolCallError::InvalidArguments(why)),
        })
    }
}
