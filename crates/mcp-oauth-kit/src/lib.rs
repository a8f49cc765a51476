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
//! [`MemoryStore`] or a [`Store`] of your own, refuses `https` client ids and compiles far less.
//!
//! ## A tour
//! 1. **Configuration** ([`Config`]): the public URL every advertised URL is built from
//!    (`PUBLIC_URL`), lifetimes and limits. [`Config::from_env`] reads the environment.
//! 2. **Users** ([`UserStore`]): who may sign in. [`StaticUserStore`] holds a fixed list with
//!    argon2id hashes; implement the trait over your own user database.
//! 3. **Tools** ([`Tools`], [`ToolDef`], [`AppTemplate`]): typed handlers that receive the
//!    caller's [`AccessToken`] and their parsed arguments; MCP Apps add a `ui://` template.
//!    Already have an rmcp `ServerHandler`? Pass it to [`McpServerBuilder::rmcp_handler`] and
//!    read the caller with [`AccessToken::from_context`].
//! 4. **Serve** ([`McpServer`]): [`McpServer::run`] listens and stops on SIGINT/SIGTERM;
//!    [`McpServer::serve`] takes a bound listener and a shutdown future;
//!    [`McpServer::router`] gives the HTTP service to mount in your own hyper server.
//! 5. **Storage** ([`Store`]): clients, pending sign-ins, codes and tokens (hashed), sign-in
//!    sessions (hashed), remembered consent and rate-limit counters. [`MemoryStore`] is the
//!    default; [`SqlStore`] (SQLite, PostgreSQL; [`open_store`] picks one from a URL) keeps
//!    them across restarts and shares them between instances.
//! 6. **Other identity providers** ([`AuthProvider`]): the built-in [`OAuthServer`] is one;
//!    a provider that only verifies tokens issued elsewhere implements `verify_token`.
//!
//! ```no_run
//! use mcp_oauth_kit::{AccessToken, Config, McpServer, StaticUserStore, ToolDef, ToolError, ToolOutput, Tools};
//!
//! async fn whoami(caller: AccessToken, _args: serde_json::Map<String, serde_json::Value>) -> Result<ToolOutput, ToolError> {
//!     Ok(ToolOutput::text(format!("You are {}", caller.username)))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let users = StaticUserStore::new().with_user_hash("u-1", "carol", "$argon2id$v=19$m=19456,t=2,p=1$…")?;
//! let tools = Tools::new().tool(ToolDef::new("whoami", "Say who is signed in").handler(whoami));
//! McpServer::builder(Config::from_env()?).user_store(users).tools(tools).build()?.run().await?;
//! # Ok(()) }
//! ```
//!
//! `docs/ARCHITECTURE.md` in the repository has the code map and the invariants.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod authorization_server;
mod authorize;
mod browser;
#[cfg(feature = "cimd")]
mod cimd;
mod client_display;
mod config;
mod error;
mod escaped;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod http_util;
mod json_depth;
mod login;
mod mcp_handler;
mod metadata;
mod password;
mod provider;
mod rate_limit;
mod redirect_uri;
mod registration;
mod router;
mod secret;
mod serve;
mod server;
mod store;
mod token;
mod tools;
mod user_store;

pub use authorization_server::OAuthServer;
pub use config::Config;
pub use error::{ConfigError, Error, OAuthError, OAuthErrorCode, StoreError, UserStoreError};
pub use http_util::{BoxError, HttpResponse, RequestBody, ResponseBody};
pub use password::{hash_password, verify_password, verify_password_async};
pub use provider::{
    AccessToken, AuthProvider, AuthorizationRequest, AuthorizeError, ClientCredentials, ClientMetadata, LoginContext,
    RegisteredClient, TokenClaims, TokenRejection, TokenResponse,
};
pub use router::Router;
pub use secret::{Password, TokenHash};
pub use server::{McpServer, McpServerBuilder};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use store::SqlStore;
pub use store::open_store;
pub use store::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, MemoryStore,
    Millis, PendingAuthorization, RateLimitWindow, RefreshRotation, RefreshTokenRecord, RevokedToken, SessionRecord,
    Store, now_millis,
};
pub use tools::{
    AppTemplate, MCP_APP_MIME_TYPE, MCP_APPS_EXTENSION, RegisteredTool, ToolDef, ToolError, ToolOutput, Tools,
};
pub use user_store::{StaticUserStore, User, UserStore};

/// The attribute macro the kit's async traits are written with, for your implementations.
pub use async_trait::async_trait;

/// The rmcp version the kit is built on, re-exported so that your handler and the kit agree.
pub use rmcp;
