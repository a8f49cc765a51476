//! The rmcp `ServerHandler` that serves a [`Tools`] registry: `tools/list`, `tools/call` with
//! the caller's identity, and the MCP App templates through `resources/list` and
//! `resources/read`.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ExtensionCapabilities, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;

use crate::metrics::{ToolCalls, ToolOutcome};
use crate::provider::AccessToken;
use crate::tools::{MCP_APP_MIME_TYPE, MCP_APPS_EXTENSION, ToolCallError, Tools};

/// Serves a [`Tools`] registry over MCP. Cheap to clone: the factory makes one per session.
#[derive(Clone)]
pub(crate) struct ToolsHandler {
    tools: Arc<Tools>,
    info: Arc<ServerConfig>,
    calls: Arc<ToolCalls>,
}

impl ToolsHandler {
    pub(crate) fn new(tools: Arc<Tools>, server_name: &str) -> Self {
        let mut capabilities = ServerCapabilities::builder().enable_tools().enable_resources().build();
        if tools.has_apps() {
            let mut extensions = ExtensionCapabilities::new();
            let settings = json!({ "mimeTypes": [MCP_APP_MIME_TYPE] });
            if let serde_json::Value::Object(settings) = settings {
                extensions.insert(MCP_APPS_EXTENSION.to_owned(), settings);
            }
            capabilities.extensions = Some(extensions);
        }
        let mut info = ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(server_name, env!("CARGO_PKG_VERSION")));
        if let Some(text) = tools.get_instructions() {
            info = info.with_instructions(text);
        }
        let calls = Arc::new(ToolCalls::new(tools.list().iter().map(|t| t.name.as_ref())));
        Self { tools, info: Arc::new(info), calls }
    }
}

impl ServerHandler for ToolsHandler {
    fn get_info(&self) -> ServerConfig {
        (*self.info).clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.list()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The guard put the verified token there; its absence means the handler is served
        // outside the kit's router, which must not happen.
        let Some(caller) = AccessToken::from_context(&context).cloned() else {
            return Err(ErrorData::internal_error("no authenticated caller", None));
        };
        let name = request.name.as_ref();
        // The guard already answered 403 for a missing scope; this is defence in depth for
        // requests that reach the handler by another path.
        if let Some(missing) = self.tools.required_scopes(name).iter().find(|s| !caller.has_scope(s)) {
            self.calls.record(name, ToolOutcome::Denied);
            return Err(ErrorData::invalid_request(format!("this tool requires the scope {missing:?}"), None));
        }
        let args = request.arguments.unwrap_or_default();
        match self.tools.call(name, caller, args).await {
            Some(Ok(result)) => {
                let outcome = if result.is_error == Some(true) { ToolOutcome::Error } else { ToolOutcome::Ok };
                self.calls.record(name, outcome);
                Ok(result.into())
            }
            Some(Err(ToolCallError::InvalidArguments(why))) => {
                self.calls.record(name, ToolOutcome::InvalidArguments);
                Err(ErrorData::invalid_params(format!("invalid arguments for {name}: {why}"), None))
            }
            None => {
                // Counted as `unknown`: a name the client made up is not a label.
                self.calls.record(name, ToolOutcome::UnknownTool);
                Err(ErrorData::invalid_params(format!("unknown tool {name:?}"), None))
            }
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(self.tools.templates().map(|t| t.resource()).collect()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match self.tools.templates().find(|t| t.uri() == request.uri) {
            Some(t) => Ok(ReadResourceResult::new(vec![t.contents()]).into()),
            None => Err(ErrorData::resource_not_found(format!("no resource {:?}", request.uri), None)),
        }
    }
}
