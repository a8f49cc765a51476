//! The tools: each user's own notes. `add_note` and `delete_note` need the `notes:write`
//! scope; `list_notes` is an MCP App whose view renders the list.

use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
use mcp_oauth_kit::{AccessToken, AppTemplate, Json, State, ToolDef, ToolError, Tools};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

/// The scope a client asks for to change notes.
pub(crate) const WRITE_SCOPE: &str = "notes:write";

const LIST_TEMPLATE: &str = include_str!("../assets/notes_list.html");
const MAX_NOTE_CHARS: usize = 1000;

/// What every tool call gets: the application database.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) pool: SqlitePool,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct NewNote {
    /// The note's text, 1 to 1000 characters.
    text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct NoteId {
    /// The id of one of your notes, as `list_notes` shows it.
    id: i64,
}

#[derive(Debug, Serialize)]
struct Note {
    id: i64,
    text: String,
}

/// `list_notes`' structured content, which the App's view renders.
#[derive(Debug, Serialize)]
struct NoteList {
    owner: String,
    notes: Vec<Note>,
}

/// The caller's row id. Tokens come from our own `UserStore`, whose subjects are row ids.
fn user_id(caller: &AccessToken) -> Result<i64, ToolError> {
    Ok(caller.subject.parse()?)
}

async fn add_note(State(app): State<AppState>, caller: AccessToken, args: NewNote) -> Result<String, ToolError> {
    let text = args.text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(ToolError::message(format!("a note has 1 to {MAX_NOTE_CHARS} characters")));
    }
    let id: i64 = sqlx::query_scalar("INSERT INTO notes (user_id, text) VALUES (?, ?) RETURNING id")
        .bind(user_id(&caller)?)
        .bind(text)
        .fetch_one(&app.pool)
        .await?;
    Ok(format!("Saved note {id}."))
}

async fn list_notes(State(app): State<AppState>, caller: AccessToken) -> Result<Json<NoteList>, ToolError> {
    let owner: String = caller.claim("email")?;
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, text FROM notes WHERE user_id = ? ORDER BY id")
        .bind(user_id(&caller)?)
        .fetch_all(&app.pool)
        .await?;
    Ok(Json(NoteList { owner, notes: rows.into_iter().map(|(id, text)| Note { id, text }).collect() }))
}

async fn delete_note(State(app): State<AppState>, caller: AccessToken, args: NoteId) -> Result<String, ToolError> {
    let done = sqlx::query("DELETE FROM notes WHERE id = ? AND user_id = ?")
        .bind(args.id)
        .bind(user_id(&caller)?)
        .execute(&app.pool)
        .await?;
    // Another user's note answers as a missing one: ids say nothing about others' notes.
    if done.rows_affected() == 0 {
        return Err(ToolError::message(format!("you have no note {}", args.id)));
    }
    Ok(format!("Deleted note {}.", args.id))
}

pub(crate) fn tools(pool: SqlitePool) -> Tools<AppState> {
    Tools::with_state(AppState { pool })
        .instructions("The user's notes: list_notes shows them, add_note and delete_note change them.")
        .tool(ToolDef::new("add_note", "Save a note for the signed-in user.").scope(WRITE_SCOPE).handler(add_note))
        .tool(
            ToolDef::new("list_notes", "Show the signed-in user's notes.")
                .title("My notes")
                .read_only()
                .app(AppTemplate::new("ui://notes/list", "Notes", LIST_TEMPLATE))
                .handler(list_notes),
        )
        .tool(
            ToolDef::new("delete_note", "Delete one of the signed-in user's notes by id.")
                .scope(WRITE_SCOPE)
                .handler(delete_note),
        )
}
