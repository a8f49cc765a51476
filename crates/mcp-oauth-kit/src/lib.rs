//! # mcp-oauth-kit
//!
//! Turn an MCP server into its own OAuth 2.1 authorization server, with a login page, and
//! tools that know which user calls them. An MCP client (an AI platform's "Connect" button)
//! drives the whole flow by itself:
//!
//! ```text
//! discover  GET  /.well-known/oauth-protected-resource/mcp   RFC 9728   metadata.rs
//!           GET  /.well-known/oauth-authorization-server      RFC 8414   metadata.rs
//! register  POST /register                                    RFC 7591   registration.rs
//! authorize GET  /authorize   (PKCE S256, resource)           RFC 6749   authorize.rs
//! sign in   GET/POST /login   (CSRF, consent, sign-in session)           login.rs
//! token     POST /token       (code + verifier, refresh)      RFC 6749   token.rs
//! revoke    POST /revoke                                      RFC 7009   token.rs
//! call      POST /mcp  Authorization: Bearer …                RFC 6750   guard.rs → rmcp
//! ```
//!
//! ## Adding it to your server
//! ```toml
//! [dependencies]
//! mcp-oauth-kit = "0.1"
//!
//! # Sign-ins verify argon2id hashes, which an unoptimised build makes many times slower
//! # (hundreds of milliseconds each). The kit's own profile settings do not reach your
//! # crate: copy these two into your workspace's Cargo.toml.
//! [profile.dev.package.argon2]
//! opt-level = 3
//! [profile.dev.package.blake2]
//! opt-level = 3
//! ```
//!
//! Cargo features, all on by default: `sqlite` and `postgres` (the [`SqlStore`] backends and
//! their URLs in [`open_store`]) and `cimd` (Client ID Metadata Documents: `https` client ids,
//! fetched with an HTTPS client). With `default-features = false` the kit keeps its state in
//! [`MemoryStore`] or a [`Store`](store::Store) of your own, refuses `https` client ids and compiles far less.
//!
//! ## A tour
//! 1. **Configuration** ([`Config`]): the public URL every advertised URL is built from
//!    (`PUBLIC_URL`), lifetimes and limits. [`Config::from_env`] reads the environment.
//! 2. **Users** ([`UserStore`]): who may sign in. [`StaticUserStore`] holds a fixed list with
//!    argon2id hashes; implement the trait over your own user database with the helpers of
//!    [`users`].
//! 3. **Tools** ([`Tools`], [`ToolDef`], [`AppTemplate`]): plain `async fn` handlers that
//!    receive the application [`State`], the caller's [`AccessToken`] and their parsed
//!    arguments, use `?` on any error ([`ToolError`]) and return text, [`Json`] or a
//!    [`ToolOutput`]; MCP Apps add a `ui://` template, and App-only tools serve their views.
//!    Already have an rmcp `ServerHandler`? Pass it to [`McpServerBuilder::rmcp_handler`] and
//!    read the caller with [`AccessToken::from_context`].
//! 4. **Serve** ([`McpServer`]): [`McpServer::run`] listens and stops on SIGINT/SIGTERM;
//!    [`McpServer::serve`] takes a bound listener and a shutdown future;
//!    [`McpServer::router`] gives the HTTP service to mount in your own hyper server.
//! 5. **Storage** ([`store`]): clients, pending sign-ins, codes and tokens (hashed), sign-in
//!    sessions (hashed), remembered consent and rate-limit counters. [`MemoryStore`] is the
//!    default; [`SqlStore`] (SQLite, PostgreSQL; [`open_store`] picks one from a URL) keeps
//!    them across restarts and shares them between instances.
//! 6. **Another identity provider** ([`auth::AuthProvider`]): with a user store the server is its
//!    own authorization server; to accept tokens issued elsewhere instead, implement
//!    `verify_token` and `authorization_servers` and give the provider to
//!    [`McpServerBuilder::auth_provider`]. The kit caches verified tokens either way.
//!
//! ```no_run
//! use mcp_oauth_kit::{AccessToken, Config, McpServer, StaticUserStore, ToolDef, ToolError, Tools};
//!
//! async fn whoami(caller: AccessToken) -> Result<String, ToolError> {
//!     Ok(format!("You are {}", caller.username))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let users = StaticUserStore::new().with_user_hash("u-1", "carol", "$argon2id$v=19$m=19456,t=2,p=1$…")?;
//! let tools = Tools::new().tool(ToolDef::new("whoami", "Say who is signed in").handler(whoami));
//! McpServer::builder(Config::from_env()?).user_store(users).tools(tools).build()?.run().await?;
//! # Ok(()) }
//! ```
//!
//! ## Where things are
//! The crate root holds what every server uses. The modules hold the extension points, each
//! for one job:
//! - [`users`]: the [`UserStore`] trait and the password helpers for a store of your own;
//! - [`tools`]: the whole tool-registration API, the root's tool types and the traits behind
//!   them ([`tools::ToolHandler`], [`tools::IntoToolOutput`]), and the MCP Apps constants;
//! - [`auth`]: token verification for tokens issued elsewhere ([`auth::AuthProvider`]) and the
//!   handle on the built-in authorization server ([`auth::OAuthServer`]);
//! - [`store`]: where the authorization server keeps its state, and the trait for a backend
//!   of your own;
//! - [`http`]: the kit as a plain HTTP service, to mount in your own hyper or axum server;
//! - [`claims`]: the extra claims a user store or verifier attaches to a caller;
//! - [`clock`]: where the kit reads the time, and a manual clock for tests.
//!
//! [`MemoryStore`]: store::MemoryStore
//! [`SqlStore`]: store::SqlStore
//! [`open_store`]: store::open_store
//!
//! `docs/ARCHITECTURE.md` in the repository has the code map and the invariants.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod authorization_server;
mod authorize;
mod browser;
#[cfg(feature = "cimd")]
mod cimd;
pub mod claims;
mod client_display;
pub mod clock;
mod config;
mod error;
mod escaped;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
pub mod http;
mod http_util;
mod json_depth;
mod login;
mod mcp_handler;
mod metadata;
mod oauth_messages;
mod password;
mod provider;
mod rate_limit;
#[cfg(test)]
mod redaction_tests;
mod redirect_uri;
mod registration;
mod router;
mod secret;
mod serve;
mod server;
pub mod store;
mod token;
pub mod tools;
mod user_store;
pub mod users;
mod verified_cache;

pub use config::Config;
pub use error::{ConfigError, Error};
pub use provider::AccessToken;
pub use secret::Password;
pub use server::{McpServer, McpServerBuilder};
pub use tools::{AppTemplate, Json, RegisteredTool, State, ToolDef, ToolError, ToolOutput, Tools};
pub use user_store::{StaticUserStore, User, UserStore};

/// The attribute macro the kit's async traits are written with, for your implementations.
pub use async_trait::async_trait;

/// The rmcp version the kit is built on, re-exported so that your handler and the kit agree.
pub use rmcp;

/// The README's code blocks, compiled (and the runnable ones run) as doc-tests, so that what a
/// new user copies first builds.
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
