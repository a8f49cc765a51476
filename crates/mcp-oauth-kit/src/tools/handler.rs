//! What makes a function a tool handler: the [`ToolHandler`] trait with one implementation per
//! argument list (the marker type `T` tells them apart, as in axum's `Handler<T, S>`), the
//! [`State`] argument, and [`IntoToolOutput`] for what a handler returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::model::JsonObject;
use rmcp::schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ToolError, ToolOutput};
use crate::provider::AccessToken;

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A handler with its arguments still JSON: what every [`ToolHandler`] becomes.
pub(super) type ToolFn<S> =
    Arc<dyn Fn(S, AccessToken, JsonObject) -> BoxFuture<Result<ToolOutput, ToolError>> + Send + Sync>;

/// The application state of a [`Tools`](super::Tools) registry, as a handler's first argument.
///
/// Give the state once with [`Tools::with_state`](super::Tools::with_state); each call gets a
/// clone, so a handler owns it and can move it into its future (no clone-outside,
/// clone-inside closures). Keep it cheap to clone: an `Arc`, a connection pool.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use mcp_oauth_kit::{AccessToken, State, ToolDef, ToolError, Tools};
///
/// #[derive(Clone, Default)]
/// struct Counter(Arc<Mutex<u64>>);
///
/// async fn bump(State(counter): State<Counter>, _caller: AccessToken) -> Result<String, ToolError> {
///     let mut n = counter.0.lock().map_err(|_| ToolError::message("the counter is unavailable"))?;
///     *n += 1;
///     Ok(format!("count: {n}"))
/// }
///
/// let tools = Tools::with_state(Counter::default()).tool(ToolDef::new("bump", "Count up").handler(bump));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<S>(pub S);

/// An async function (or closure) that can serve a tool: [`ToolDef::handler`](super::ToolDef::handler)
/// takes any of these argument lists, in this order:
///
/// | arguments | for |
/// |---|---|
/// | `(caller: AccessToken)` | a tool without arguments |
/// | `(caller: AccessToken, args: A)` | a tool with arguments |
/// | `(State(s): State<S>, caller: AccessToken)` | a stateful tool without arguments |
/// | `(State(s): State<S>, caller: AccessToken, args: A)` | a stateful tool with arguments |
///
/// `A` is the arguments type: `serde::Deserialize` and `schemars::JsonSchema`, with a JSON
/// object schema (a struct; `()` or a number is refused by
/// [`McpServerBuilder::build`](crate::McpServerBuilder::build)). A tool without arguments
/// declares the input schema `{"type":"object","properties":{},"additionalProperties":false}`,
/// which the MCP specification recommends for tools that take nothing; it accepts absent or
/// empty arguments and refuses any other with JSON-RPC `-32602` (invalid params).
///
/// The handler returns `Result<O, ToolError>` where `O` is [`IntoToolOutput`]: `String`,
/// `&'static str`, [`ToolOutput`] or [`Json`].
///
/// `T` is a marker that tells the argument lists apart; you never name it. Closures work
/// too, with their parameter types written out, because Rust does not infer a closure's
/// parameters from a trait it implements; the result and error types are inferred, `?`
/// included:
///
/// ```
/// use std::sync::Arc;
/// use mcp_oauth_kit::{AccessToken, State, ToolDef, Tools};
///
/// let tools = Tools::with_state(Arc::new(std::env::temp_dir()))
///     .tool(
///         ToolDef::new("whoami", "Say who is signed in")
///             .handler(|caller: AccessToken| async move { Ok(format!("You are {}", caller.username)) }),
///     )
///     .tool(ToolDef::new("motd", "The message of the day").handler(
///         |State(dir): State<Arc<std::path::PathBuf>>, _caller: AccessToken| async move {
///             Ok(std::fs::read_to_string(dir.join("motd"))?)
///         },
///     ));
/// ```
///
/// Without the types, Rust stops with "type annotations needed" (E0282); write them as above:
///
/// ```compile_fail,E0282
/// use mcp_oauth_kit::{ToolDef, Tools};
///
/// let tools = Tools::new().tool(
///     ToolDef::new("whoami", "Say who is signed in")
///         .handler(|caller| async move { Ok(format!("You are {}", caller.username)) }),
/// );
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tool handler",
    label = "not an async fn of (State<S>?, AccessToken, Args?) returning Result<impl IntoToolOutput, ToolError>",
    note = "a handler takes `(caller: AccessToken)`, `(caller: AccessToken, args: A)`, `(State(s): State<S>, caller: AccessToken)` or `(State(s): State<S>, caller: AccessToken, args: A)`",
    note = "closures need their parameter types written out: `|caller: AccessToken, args: MyArgs| async move {{ .. }}`",
    note = "`State<S>` must be the state given to `Tools::with_state` (none: `Tools::new`)"
)]
pub trait ToolHandler<T, S>: Send + Sync + Sized + 'static {
    /// The input schema, or why the arguments type cannot have one; and the handler, erased.
    #[doc(hidden)]
    fn into_tool_fn(self) -> (Result<JsonObject, String>, ToolFn<S>);
}

/// What a tool handler returns on success, turned into the tool's result.
///
/// | type | result |
/// |---|---|
/// | `String`, `&'static str` | one text block |
/// | [`ToolOutput`] | its content blocks and structured content |
/// | [`Json<T>`] | `structuredContent` and the same JSON as text |
///
/// Implement it for a type of your own to return that type from handlers:
///
/// ```
/// use mcp_oauth_kit::{AccessToken, ToolError, ToolOutput};
/// use mcp_oauth_kit::tools::IntoToolOutput;
///
/// struct Weather {
///     city: String,
///     celsius: f64,
/// }
///
/// impl IntoToolOutput for Weather {
///     fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
///         let text = format!("{}: {} °C", self.city, self.celsius);
///         Ok(ToolOutput::text(text).with_structured(serde_json::json!({ "city": self.city, "celsius": self.celsius })))
///     }
/// }
///
/// async fn weather(_caller: AccessToken) -> Result<Weather, ToolError> {
///     Ok(Weather { city: "Oslo".into(), celsius: -3.5 })
/// }
/// ```
pub trait IntoToolOutput {
    /// The result for the model (and for an MCP App's view).
    ///
    /// # Errors
    /// An internal [`ToolError`] when the value cannot be rendered (a [`Json`] value that
    /// does not serialize to a JSON object).
    fn into_tool_output(self) -> Result<ToolOutput, ToolError>;
}

impl IntoToolOutput for ToolOutput {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(self)
    }
}

impl IntoToolOutput for String {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text(self))
    }
}

impl IntoToolOutput for &'static str {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text(self))
    }
}

/// A serializable value as the tool's structured result: `structuredContent` is the value
/// (which hosts and MCP App views read) and a text block holds the same JSON (for clients
/// that read only text, as the MCP specification asks of tools with structured output).
///
/// `T` must serialize to a JSON object, because `structuredContent` is one: wrap a list in a
/// struct. Anything else fails the call as an internal error (logged, see [`ToolError`]).
///
/// ```
/// use mcp_oauth_kit::{AccessToken, Json, ToolDef, ToolError, Tools};
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Profile {
///     username: String,
///     scopes: Vec<String>,
/// }
///
/// async fn profile(caller: AccessToken) -> Result<Json<Profile>, ToolError> {
///     Ok(Json(Profile { username: caller.username.clone(), scopes: caller.scopes.clone() }))
/// }
///
/// let tools = Tools::new().tool(ToolDef::new("profile", "The caller's profile").handler(profile));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoToolOutput for Json<T> {
    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        match serde_json::to_value(&self.0)? {
            value @ Value::Object(_) => Ok(ToolOutput::text(value.to_string()).with_structured(value)),
            other => Err(ToolError::internal(format!(
                "Json output must serialize to a JSON object (structuredContent is one), not {}",
                json_kind(&other)
            ))),
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The input schema of a tool without arguments: an empty object and nothing else.
fn no_args_schema() -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), json!("object"));
    // Some clients refuse an object schema without `properties`.
    schema.insert("properties".into(), json!({}));
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// Refuse arguments given to a tool that takes none.
fn expect_no_args(args: &JsonObject) -> Result<(), ToolError> {
    match args.keys().next() {
        None => Ok(()),
        Some(name) => Err(ToolError::invalid_arguments(format!("this tool takes no arguments, got {name:?}"))),
    }
}

fn input_schema<A: JsonSchema + 'static>() -> Result<JsonObject, String> {
    rmcp::handler::server::tool::schema_for_input::<A>().map(|schema| schema.as_ref().clone())
}

fn parse_args<A: DeserializeOwned>(args: JsonObject) -> Result<A, ToolError> {
    serde_json::from_value(Value::Object(args)).map_err(|e| ToolError::invalid_arguments(e.to_string()))
}

async fn finish<O: IntoToolOutput>(fut: impl Future<Output = Result<O, ToolError>>) -> Result<ToolOutput, ToolError> {
    fut.await?.into_tool_output()
}

impl<F, Fut, O, S> ToolHandler<(AccessToken,), S> for F
where
    F: Fn(AccessToken) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: IntoToolOutput + 'static,
{
    fn into_tool_fn(self) -> (Result<JsonObject, String>, ToolFn<S>) {
        let f: ToolFn<S> = Arc::new(move |_state, caller, args| match expect_no_args(&args) {
            Ok(()) => Box::pin(finish(self(caller))),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        });
        (Ok(no_args_schema()), f)
    }
}

impl<F, Fut, O, S, A> ToolHandler<(AccessToken, A), S> for F
where
    F: Fn(AccessToken, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: IntoToolOutput + 'static,
    A: DeserializeOwned + JsonSchema + 'static,
{
    fn into_tool_fn(self) -> (Result<JsonObject, String>, ToolFn<S>) {
        let f: ToolFn<S> = Arc::new(move |_state, caller, args| match parse_args(args) {
            Ok(args) => Box::pin(finish(self(caller, args))),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        });
        (input_schema::<A>(), f)
    }
}

impl<F, Fut, O, S> ToolHandler<(State<S>, AccessToken), S> for F
where
    F: Fn(State<S>, AccessToken) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: IntoToolOutput + 'static,
{
    fn into_tool_fn(self) -> (Result<JsonObject, String>, ToolFn<S>) {
        let f: ToolFn<S> = Arc::new(move |state, caller, args| match expect_no_args(&args) {
            Ok(()) => Box::pin(finish(self(State(state), caller))),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        });
        (Ok(no_args_schema()), f)
    }
}

impl<F, Fut, O, S, A> ToolHandler<(State<S>, AccessToken, A), S> for F
where
    F: Fn(State<S>, AccessToken, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: IntoToolOutput + 'static,
    A: DeserializeOwned + JsonSchema + 'static,
{
    fn into_tool_fn(self) -> (Result<JsonObject, String>, ToolFn<S>) {
        let f: ToolFn<S> = Arc::new(move |state, caller, args| match parse_args(args) {
            Ok(args) => Box::pin(finish(self(State(state), caller, args))),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        });
        (input_schema::<A>(), f)
    }
}
