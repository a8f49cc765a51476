//! Defining one tool: [`ToolDef`] (name, description, annotations, scopes, an MCP App's
//! [`AppTemplate`]) finished by a handler into a [`RegisteredTool`].

use std::sync::Arc;

use rmcp::model::{JsonObject, MetaObject, ResourceContents, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::MCP_APP_MIME_TYPE;
use super::handler::{ToolFn, ToolHandler};

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
    /// optionally the [`State`](super::State) and the arguments (whose JSON schema becomes the tool's input
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

/// A tool with its handler, ready to add to [`Tools`](super::Tools). `S` is the state of the registry it
/// goes into; a handler that takes no [`State`](super::State) fits a registry of any state, so a module
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
    pub(super) tool: Tool,
    pub(super) scopes: Vec<String>,
    pub(super) app: Option<AppTemplate>,
    pub(super) handler: ToolFn<S>,
    /// What makes the tool unservable, reported by `McpServerBuilder::build`.
    pub(super) problem: Option<String>,
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
    pub(super) fn bind(self, state: S) -> RegisteredTool<()> {
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
