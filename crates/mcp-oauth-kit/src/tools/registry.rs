//! The registry: [`Tools`], the set of registered tools with the state their handlers share,
//! which the kit's rmcp handler lists and calls.

use std::collections::BTreeMap;

use rmcp::model::{CallToolResult, ContentBlock, EmbeddedResource, JsonObject, Tool};

use super::definition::{AppTemplate, RegisteredTool};
use super::output::{ErrorChain, INTERNAL_ERROR_TEXT, ToolCallError, ToolError, ToolErrorKind};
use crate::error::ConfigError;
use crate::provider::AccessToken;

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
    /// No tools yet, and no state: handlers take no [`State`](super::State).
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
    /// No tools yet; handlers that take [`State<S>`](super::State) get a clone of `state` on each
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
        self.tools.iter().filter(|(_, t)| t.app.as_ref().is_some_and(|a| a.uri() == app.uri())).find_map(|(name, t)| {
            if t.app.as_ref() != Some(app) {
                Some(format!("its App template {:?} differs from the one tool {name:?} has at that URI", app.uri()))
            } else if scopes(t) != scopes(tool) {
                Some(format!(
                    "it shares its App template {:?} with tool {name:?}, which requires other scopes",
                    app.uri()
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
        self.tools.values().filter_map(|t| t.app.as_ref()).filter(move |t| seen.insert(t.uri()))
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
