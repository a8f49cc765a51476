//! The tool-registration API as a user meets it, through HTTP with signed-in tokens: state
//! shared by handlers, `?` on ordinary errors (logged, a generic text for the model), messages
//! for the model, tools without arguments, `Json` output, App-only tools in `tools/list`, and
//! every registry mistake refused by `build()` instead of a panic.
//! A binary of its own, because the log subscriber it installs is process-wide.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::log_capture::captured;
use common::{TestServer, text_of};
use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
use mcp_oauth_kit::{
    AccessToken, AppTemplate, Config, Error, Json, McpServer, State, StaticUserStore, ToolDef, ToolError, ToolOutput,
    Tools,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the model reads when a tool fails with an internal error.
const INTERNAL_ERROR_TEXT: &str = "The tool failed because of an internal error on the server.";

// ---- a notes app: the state and its tools -------------------------------------------------

/// Notes per user (the token's subject), shared by every call and session.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<HashMap<String, Vec<String>>>>);

#[derive(Deserialize, JsonSchema)]
struct AddNote {
    /// The note's text.
    text: String,
}

async fn add_note(State(notes): State<Notes>, caller: AccessToken, args: AddNote) -> Result<String, ToolError> {
    if args.text.is_empty() {
        return Err(ToolError::message("a note needs some text"));
    }
    let mut notes = notes.0.lock().map_err(|_| ToolError::message("the notes are unavailable"))?;
    let mine = notes.entry(caller.subject.clone()).or_default();
    mine.push(args.text);
    Ok(format!("{} has {} notes", caller.username, mine.len()))
}

#[derive(Serialize)]
struct NoteList {
    notes: Vec<String>,
}

/// A stateful tool without arguments, as a closure: its parameter types are written out.
fn list_notes() -> mcp_oauth_kit::RegisteredTool<Notes> {
    ToolDef::new("list_notes", "The caller's notes").read_only().handler(
        |State(notes): State<Notes>, caller: AccessToken| async move {
            let notes = notes.0.lock().map_err(|_| ToolError::message("the notes are unavailable"))?;
            Ok(Json(NoteList { notes: notes.get(&caller.subject).cloned().unwrap_or_default() }))
        },
    )
}

#[derive(Deserialize, JsonSchema)]
struct ReadFile {
    /// A file name.
    name: String,
}

/// Fails with an `io::Error` through `?`: the file never exists.
async fn read_file(caller: AccessToken, args: ReadFile) -> Result<String, ToolError> {
    let path = std::env::temp_dir().join(format!("mcp-oauth-kit-no-such-dir-{}", std::process::id())).join(args.name);
    let text = std::fs::read_to_string(path)?;
    Ok(format!("{} read {text}", caller.username))
}

async fn list_as_json(_caller: AccessToken) -> Result<Json<Vec<u32>>, ToolError> {
    Ok(Json(vec![1, 2, 3]))
}

async fn ping(caller: AccessToken) -> Result<&'static str, ToolError> {
    Ok(if caller.username.is_empty() { "pong to nobody" } else { "pong" })
}

fn notes_tools(notes: Notes) -> Tools<Notes> {
    Tools::with_state(notes)
        .tool(ToolDef::new("add_note", "Save a note").handler(add_note))
        .tool(list_notes())
        .tool(ToolDef::new("read_file", "Read a file").handler(read_file))
        .tool(ToolDef::new("list_as_json", "A list where an object belongs").handler(list_as_json))
        .tool(ToolDef::new("ping", "Answer pong").handler(ping))
}

// ---- helpers ----------------------------------------------------------------------------------

/// `tools/call` of `name` with `params` merged in (`arguments`, or none).
async fn call(server: &TestServer, token: &str, session: &str, name: &str, arguments: Option<Value>) -> Value {
    let mut params = json!({ "name": name });
    if let Some(args) = arguments {
        params["arguments"] = args;
    }
    server.rpc(token, session, 9, "tools/call", params).await
}

/// The `tools/list` entry of `name`.
async fn listed(server: &TestServer, token: &str, session: &str, name: &str) -> Value {
    let list = server.rpc(token, session, 8, "tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().expect("tools").clone();
    tools.into_iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("{name} is listed: {list}"))
}

/// A successful text-only result: exactly one text block, `isError` false.
fn assert_text_result(reply: &Value, text: &str) {
    assert_eq!(reply["result"]["content"], json!([{ "type": "text", "text": text }]), "{reply}");
    assert_eq!(reply["result"]["isError"], json!(false), "{reply}");
}

/// An `isError` result with exactly `text`.
fn assert_tool_error(reply: &Value, text: &str) {
    assert_eq!(reply["result"]["content"], json!([{ "type": "text", "text": text }]), "{reply}");
    assert_eq!(reply["result"]["isError"], json!(true), "{reply}");
    assert!(reply.get("error").is_none(), "{reply}");
}

// ---- the tests ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_shared_across_calls_and_sessions_and_kept_per_user() {
    let notes = Notes::default();
    let server = TestServer::start_with_tools(notes_tools(notes.clone())).await;
    let alice = server.sign_in("alice", "password123", &[]).await;
    let first = server.initialize(&alice.access).await;
    let reply = call(&server, &alice.access, &first, "add_note", Some(json!({ "text": "buy milk" }))).await;
    assert_text_result(&reply, "alice has 1 notes");

    // Another sign-in and another session see the same state.
    let again = server.sign_in("alice", "password123", &[]).await;
    let second = server.initialize(&again.access).await;
    assert_ne!(first, second);
    let reply = call(&server, &again.access, &second, "add_note", Some(json!({ "text": "call bob" }))).await;
    assert_text_result(&reply, "alice has 2 notes");
    let reply = call(&server, &alice.access, &first, "list_notes", None).await;
    assert_eq!(reply["result"]["structuredContent"], json!({ "notes": ["buy milk", "call bob"] }), "{reply}");

    // Bob's notes are his own.
    let bob = server.sign_in("bob", "hunter2", &[]).await;
    let session = server.initialize(&bob.access).await;
    let reply = call(&server, &bob.access, &session, "list_notes", Some(json!({}))).await;
    assert_eq!(reply["result"]["structuredContent"], json!({ "notes": [] }), "{reply}");

    // The application holds the same state.
    let held = notes.0.lock().expect("the notes").get("user-alice").cloned();
    assert_eq!(held, Some(vec!["buy milk".to_owned(), "call bob".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_is_logged_with_the_tool_and_the_model_gets_a_generic_text() {
    let captured = captured();
    let server = TestServer::start_with_tools(notes_tools(Notes::default())).await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let secret_argument = "arg-6f1d2c-do-not-log";
    let reply = call(&server, &t.access, &session, "read_file", Some(json!({ "name": secret_argument }))).await;
    assert_tool_error(&reply, INTERNAL_ERROR_TEXT);

    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("tool failed") && l.contains("read_file"))
        .unwrap_or_else(|| panic!("a log line names the tool: {log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("No such file or directory (os error 2)"), "the log has the detail: {line}");
    assert!(!log.contains(secret_argument), "the arguments stay out of the log: {log}");
    assert!(!text_of(&reply["result"]).contains("os error"), "the detail stays out of the result: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_that_is_not_an_object_is_an_internal_error() {
    let captured = captured();
    let server = TestServer::start_with_tools(notes_tools(Notes::default())).await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let reply = call(&server, &t.access, &session, "list_as_json", None).await;
    assert_tool_error(&reply, INTERNAL_ERROR_TEXT);
    let log = captured.text();
    let line = log.lines().find(|l| l.contains("list_as_json")).unwrap_or_else(|| panic!("logged: {log}"));
    assert!(
        line.contains("Json output must serialize to a JSON object (structuredContent is one), not an array"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_error_reaches_the_model_verbatim() {
    let server = TestServer::start_with_tools(notes_tools(Notes::default())).await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let reply = call(&server, &t.access, &session, "add_note", Some(json!({ "text": "" }))).await;
    assert_tool_error(&reply, "a note needs some text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_without_arguments_takes_none() {
    let server = TestServer::start_with_tools(notes_tools(Notes::default())).await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let entry = listed(&server, &t.access, &session, "ping").await;
    assert_eq!(entry["inputSchema"], json!({ "type": "object", "properties": {}, "additionalProperties": false }));

    for arguments in [None, Some(json!({}))] {
        let reply = call(&server, &t.access, &session, "ping", arguments.clone()).await;
        assert_text_result(&reply, "pong");
        assert!(reply["result"].get("structuredContent").is_none(), "{reply}");
    }
    let reply = call(&server, &t.access, &session, "ping", Some(json!({ "loud": true }))).await;
    assert_eq!(reply["error"]["code"], json!(-32602), "{reply}");
    assert_eq!(
        reply["error"]["message"],
        json!("invalid arguments for ping: this tool takes no arguments, got \"loud\""),
        "{reply}"
    );
    assert!(reply.get("result").is_none(), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_structured_content_and_the_same_json_as_text() {
    let server = TestServer::start_with_tools(notes_tools(Notes::default())).await;
    let t = server.sign_in("bob", "hunter2", &[]).await;
    let session = server.initialize(&t.access).await;
    call(&server, &t.access, &session, "add_note", Some(json!({ "text": "a \"quoted\" note" }))).await;
    let reply = call(&server, &t.access, &session, "list_notes", None).await;
    assert_eq!(
        reply["result"],
        json!({
            "content": [{ "type": "text", "text": "{\"notes\":[\"a \\\"quoted\\\" note\"]}" }],
            "structuredContent": { "notes": ["a \"quoted\" note"] },
            "isError": false,
        }),
        "{reply}"
    );
}

async fn refresh_card(caller: AccessToken) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(format!("fresh card of {}", caller.username)))
}

const CARD_URI: &str = "ui://test/card";
const CARD_HTML: &str = "<!doctype html><p>card</p>";

/// `tools/list` carries `_meta.ui.visibility: ["app"]` for App-only tools (with or without a
/// template of their own) and leaves the default (model and app) implicit; App-only tools
/// are called like any other, and a template two tools share is listed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_tools_are_listed_with_their_visibility() {
    let card = AppTemplate::new(CARD_URI, "Card", CARD_HTML);
    let tools = Tools::new()
        .tool(ToolDef::new("show_card", "Show the card").app(card.clone()).handler(refresh_card))
        .tool(ToolDef::new("refresh_card", "Reload the card").app_only().handler(refresh_card))
        .tool(ToolDef::new("card_view_data", "The card's data").app(card).app_only().handler(refresh_card))
        .tool(ToolDef::new("plain", "A plain tool").handler(refresh_card));
    let server = TestServer::start_with_tools(tools).await;
    let t = server.sign_in("alice", "password123", &[]).await;
    let session = server.initialize(&t.access).await;
    let no_args = json!({ "type": "object", "properties": {}, "additionalProperties": false });

    assert_eq!(
        listed(&server, &t.access, &session, "refresh_card").await,
        json!({
            "name": "refresh_card",
            "description": "Reload the card",
            "inputSchema": no_args,
            "_meta": { "ui": { "visibility": ["app"] } },
        })
    );
    assert_eq!(
        listed(&server, &t.access, &session, "card_view_data").await,
        json!({
            "name": "card_view_data",
            "description": "The card's data",
            "inputSchema": no_args,
            "_meta": { "ui": { "resourceUri": CARD_URI, "visibility": ["app"] }, "ui/resourceUri": CARD_URI },
        })
    );
    assert_eq!(
        listed(&server, &t.access, &session, "show_card").await,
        json!({
            "name": "show_card",
            "description": "Show the card",
            "inputSchema": no_args,
            "_meta": { "ui": { "resourceUri": CARD_URI }, "ui/resourceUri": CARD_URI },
        })
    );
    assert_eq!(
        listed(&server, &t.access, &session, "plain").await,
        json!({ "name": "plain", "description": "A plain tool", "inputSchema": no_args })
    );

    let reply = call(&server, &t.access, &session, "refresh_card", None).await;
    assert_text_result(&reply, "fresh card of alice");
    let resources = server.rpc(&t.access, &session, 4, "resources/list", json!({})).await;
    let uris: Vec<&Value> =
        resources["result"]["resources"].as_array().expect("resources").iter().map(|r| &r["uri"]).collect();
    assert_eq!(uris, [CARD_URI], "{resources}");
}

// ---- build() refuses what cannot be served ------------------------------------------------

/// The `Error::Config` that building a server with `tools` gives.
fn build_error<S: Clone + Send + Sync + 'static>(tools: Tools<S>) -> (String, String) {
    build_error_with(Config::new("http://127.0.0.1:18430").expect("a valid public URL"), tools)
}

/// The `Error::Config` that building a server of `config` with `tools` gives.
fn build_error_with<S: Clone + Send + Sync + 'static>(config: Config, tools: Tools<S>) -> (String, String) {
    match McpServer::builder(config).user_store(StaticUserStore::new()).tools(tools).build() {
        Err(Error::Config(e)) => (e.setting, e.reason),
        Err(other) => panic!("expected Error::Config, got {other:?}"),
        Ok(_) => panic!("the server built"),
    }
}

async fn unit_args(_caller: AccessToken, _args: ()) -> Result<String, ToolError> {
    Ok("unit".into())
}

async fn number_args(_caller: AccessToken, _args: u32) -> Result<String, ToolError> {
    Ok("number".into())
}

#[derive(Deserialize, JsonSchema)]
enum Color {
    Red,
    Green,
}

async fn enum_args(_caller: AccessToken, _args: Color) -> Result<String, ToolError> {
    Ok("enum".into())
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only its schema matters")]
enum Either {
    Id { id: u32 },
    Name { name: String },
}

async fn untagged_args(_caller: AccessToken, _args: Either) -> Result<String, ToolError> {
    Ok("either".into())
}

#[tokio::test]
async fn arguments_without_an_object_schema_fail_the_build() {
    let cases: [(Tools, &str); 4] = [
        (
            Tools::new().tool(ToolDef::new("unit", "").handler(unit_args)),
            "tool \"unit\": its arguments type has no JSON object schema: MCP specification requires tool inputSchema to have root type 'object', but found 'null'.",
        ),
        (
            Tools::new().tool(ToolDef::new("number", "").handler(number_args)),
            "tool \"number\": its arguments type has no JSON object schema: MCP specification requires tool inputSchema to have root type 'object', but found 'integer'.",
        ),
        (
            Tools::new().tool(ToolDef::new("color", "").handler(enum_args)),
            "tool \"color\": its arguments type has no JSON object schema: MCP specification requires tool inputSchema to have root type 'object', but found 'string'.",
        ),
        (
            Tools::new().tool(ToolDef::new("either", "").handler(untagged_args)),
            "tool \"either\": its arguments type has no JSON object schema: Schema is missing 'type' field. MCP specification requires inputSchema to have root type 'object'.",
        ),
    ];
    for (tools, reason) in cases {
        assert_eq!(build_error(tools), ("tools".to_owned(), reason.to_owned()));
    }
}

#[tokio::test]
async fn bad_template_uris_fail_the_build() {
    for uri in ["https://acme.example/card", "ui:card", "ui://", "card.html", ""] {
        let tools = Tools::new().tool(ToolDef::new("card", "").app(AppTemplate::new(uri, "Card", "<p>")).handler(ping));
        let reason =
            format!("tool \"card\": its App template URI {uri:?} is not a ui:// URI such as \"ui://app/view\"");
        assert_eq!(build_error(tools), ("tools".to_owned(), reason), "{uri}");
    }
}

#[tokio::test]
async fn invalid_and_repeated_tool_names_fail_the_build() {
    let rule = "tool names are 1 to 128 of the characters A-Z, a-z, 0-9, _, - and .";
    let long = "n".repeat(129);
    for name in ["", "two words", "naïve", "a/b", "semi;colon", long.as_str()] {
        let tools = Tools::new().tool(ToolDef::new(name, "").handler(ping));
        assert_eq!(build_error(tools), ("tools".to_owned(), format!("tool {name:?}: {rule}")), "{name:?}");
    }
    // The longest and the most varied valid names build.
    let tools = Tools::new()
        .tool(ToolDef::new("n".repeat(128), "").handler(ping))
        .tool(ToolDef::new("Az09_-.", "").handler(ping));
    let config = Config::new("http://127.0.0.1:18430").expect("a valid public URL");
    assert!(McpServer::builder(config).user_store(StaticUserStore::new()).tools(tools).build().is_ok());

    let twice =
        Tools::new().tool(ToolDef::new("ping", "").handler(ping)).tool(ToolDef::new("ping", "again").handler(ping));
    assert_eq!(build_error(twice), ("tools".to_owned(), "tool \"ping\": it is registered twice".to_owned()));
}

#[tokio::test]
async fn one_uri_with_two_templates_fails_the_build() {
    let tools = Tools::new()
        .tool(ToolDef::new("a", "").app(AppTemplate::new(CARD_URI, "Card", CARD_HTML)).handler(ping))
        .tool(ToolDef::new("b", "").app(AppTemplate::new(CARD_URI, "Card", "<p>other</p>")).handler(ping));
    let reason = format!("tool \"b\": its App template {CARD_URI:?} differs from the one tool \"a\" has at that URI");
    assert_eq!(build_error(tools), ("tools".to_owned(), reason));
}

/// A template's scopes are its tool's: tools that share one must require the same scopes, or
/// reading it would depend on which tool the guard looked at.
#[tokio::test]
async fn tools_sharing_a_template_need_the_same_scopes() {
    let card = || AppTemplate::new(CARD_URI, "Card", CARD_HTML);
    let config =
        || Config::new("http://127.0.0.1:18430").expect("a valid public URL").with_scopes(&["mcp", "admin"], &["mcp"]);
    let with = |def: ToolDef, scopes: &[&str]| scopes.iter().fold(def, |def, s| def.scope(*s));
    let cases: [(&[&str], &[&str]); 3] = [(&["admin"], &[]), (&["admin"], &["mcp"]), (&[], &["admin"])];
    for (a, b) in cases {
        let tools = Tools::new()
            .tool(with(ToolDef::new("a", "").app(card()), a).handler(ping))
            .tool(with(ToolDef::new("b", "").app(card()).app_only(), b).handler(ping));
        let reason =
            format!("tool \"b\": it shares its App template {CARD_URI:?} with tool \"a\", which requires other scopes");
        assert_eq!(build_error_with(config(), tools), ("tools".to_owned(), reason), "{a:?} {b:?}");
    }
    // The same scopes, in any order, are fine.
    let tools = Tools::new()
        .tool(ToolDef::new("a", "").app(card()).scope("admin").scope("mcp").handler(ping))
        .tool(ToolDef::new("b", "").app(card()).app_only().scope("mcp").scope("admin").handler(ping));
    assert!(McpServer::builder(config()).user_store(StaticUserStore::new()).tools(tools).build().is_ok());
}
