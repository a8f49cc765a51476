//! What a tool call gives back: [`ToolOutput`] for the model (and the App's view), and
//! [`ToolError`], a message for the model or an internal error that only the log sees.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

/// What a tool returns: content blocks for the model and, optionally, structured content.
/// For text alone return a `String`, for structured content alone [`Json`](super::Json); `ToolOutput` is
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

    pub(super) fn into_result(self) -> CallToolResult {
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
    pub(super) kind: ToolErrorKind,
}

pub(super) enum ToolErrorKind {
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
pub(super) struct ErrorChain<'a>(pub(super) &'a (dyn std::error::Error + 'static));

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
