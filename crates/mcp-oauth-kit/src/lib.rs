//! # mcp-oauth-kit
//!
//! Turn an MCP server into its own OAuth 2.1 authorization server: a login page in front of
//! tools that know which user calls them. An MCP client (an AI platform's "Connect" button)
//! discovers the server, registers, sends the user to sign in and calls the tools with the
//! token it gets, all by itself:
//!
//! ```text
//! discover  GET  /.well-known/oauth-protected-resource/mcp   RFC 9728
//!           GET  /.well-known/oauth-authorization-server      RFC 8414
//! register  POST /register                                    RFC 7591
//! authorize GET  /authorize   (PKCE S256, resource)           RFC 6749, RFC 8707
//! sign in   GET/POST /login   (your UserStore, consent)
//! token     POST /token       (code + verifier, refresh)      RFC 6749
//! revoke    POST /revoke                                      RFC 7009
//! call      POST /mcp  Authorization: Bearer …                RFC 6750 → your tools
//! ```
//!
//! This page walks through a server from the dependency line to production. The
//! [repository's README](https://github.com/mcp-oauth-kit/mcp-oauth-kit#readme) covers the
//! rest: running the example, connecting a client, every environment variable.
//!
//! ## 1. Add it to your server
//! ```toml
//! [dependencies]
//! mcp-oauth-kit = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! serde = { version = "1", features = ["derive"] }
//!
//! # Sign-ins verify argon2id hashes, which an unoptimised build makes many times slower
//! # (hundreds of milliseconds each). Profile settings apply only in the workspace that
//! # builds, so the kit's own cannot help you: copy these two into yours.
//! [profile.dev.package.argon2]
//! opt-level = 3
//! [profile.dev.package.blake2]
//! opt-level = 3
//! ```
//!
//! Seven Cargo features are on by default: `sqlite` and `postgres` (the [`SqlStore`]
//! backends, which [`open_store`] opens from a URL), `cimd` (Client ID Metadata Documents:
//! clients whose id is an `https` URL, fetched over HTTPS), `jwt` and `introspection` (the
//! verifiers of tokens from another authorization server, section 7, and `jwt` also for
//! sign-in at an upstream provider), `metrics` (Prometheus metrics when `METRICS_ADDR` is set)
//! and `logging` ([`logging::init`]). `default-features = false` keeps the state in
//! [`MemoryStore`] or a [`Store`] of your own, refuses `https` client ids and compiles a much
//! smaller tree; turn back on what you use.
//!
//! ## 2. Say who may sign in
//! The login page asks a [`UserStore`]. [`StaticUserStore`] holds a fixed list (demos, tests,
//! a handful of accounts); your own user table needs a short implementation. An unknown
//! username must cost as much as a wrong password, or timing tells an attacker which accounts
//! exist: [`verify_password_or_dummy`] does both given the stored hash or `None`, and
//! [`hash_password`] makes the hashes. The README's `DbUsers` is the same over sqlx.
//!
//! ```
//! use std::collections::HashMap;
//!
//! use mcp_oauth_kit::users::{UserStoreError, verify_password_or_dummy};
//! use mcp_oauth_kit::{Password, User, UserStore, async_trait};
//!
//! /// Username → (user, argon2 PHC hash).
//! struct Accounts(HashMap<String, (User, String)>);
//!
//! #[async_trait]
//! impl UserStore for Accounts {
//!     async fn authenticate(&self, username: &str, password: &Password) -> Result<Option<User>, UserStoreError> {
//!         let account = self.0.get(username);
//!         let ok = verify_password_or_dummy(account.map(|(_, hash)| hash.clone()), password).await?;
//!         Ok(account.filter(|_| ok).map(|(user, _)| user.clone()))
//!     }
//!
//!     async fn find_by_id(&self, id: &str) -> Result<Option<User>, UserStoreError> {
//!         Ok(self.0.values().map(|(user, _)| user).find(|user| user.id == id).cloned())
//!     }
//! }
//! ```
//!
//! A [`User`] may carry extra claims (email, roles) that every token of theirs carries to the
//! tools; [`UserStore::may_sign_in`] lets you refuse disabled accounts at the next refresh.
//!
//! ## 3. Register tools
//! A tool is an `async fn` whose parameters say what it needs, as in axum: the application
//! [`State`] (given once to [`Tools::with_state`]), the caller's [`AccessToken`] (always), and
//! its arguments (any `Deserialize + JsonSchema` type, which becomes the input schema; leave
//! the parameter out for a tool without arguments). It returns a `String`, [`Json`] for
//! structured content, or a [`ToolOutput`] for both. `?` works on any error: it is logged and
//! the model reads a generic failure, while [`ToolError::message`] is a text the model should
//! read and act on.
//!
//! ```
//! use std::sync::Arc;
//!
//! use mcp_oauth_kit::rmcp::schemars::{self, JsonSchema};
//! use mcp_oauth_kit::{AccessToken, Json, State, ToolDef, ToolError, Tools};
//! use serde::{Deserialize, Serialize};
//!
//! struct Db; // a connection pool in a real server
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Lookup {
//!     /// The order number, as printed on the receipt.
//!     order: u64,
//! }
//!
//! #[derive(Serialize)]
//! struct Order {
//!     order: u64,
//!     owner: String,
//! }
//!
//! async fn order(State(_db): State<Arc<Db>>, caller: AccessToken, args: Lookup) -> Result<Json<Order>, ToolError> {
//!     if args.order == 0 {
//!         return Err(ToolError::message("order numbers start at 1"));
//!     }
//!     Ok(Json(Order { order: args.order, owner: caller.username.clone() }))
//! }
//!
//! async fn whoami(caller: AccessToken) -> Result<String, ToolError> {
//!     let email: Option<String> = caller.claim("email")?; // a claim your UserStore attached
//!     Ok(format!("{} <{}>", caller.username, email.unwrap_or_default()))
//! }
//!
//! let tools = Tools::with_state(Arc::new(Db))
//!     .tool(ToolDef::new("order", "Look one of your orders up").read_only().handler(order))
//!     .tool(ToolDef::new("whoami", "Say who is signed in").handler(whoami));
//! # mcp_oauth_kit::McpServer::builder(mcp_oauth_kit::Config::new("http://127.0.0.1:8000").unwrap())
//! #     .user_store(mcp_oauth_kit::StaticUserStore::new()).tools(tools).build().unwrap();
//! ```
//!
//! [`ToolDef::scope`] puts a tool behind an extra OAuth scope (declare it with
//! [`Config::with_scopes`]): a token without it gets 403 `insufficient_scope`, and the client
//! asks the user for more. Mistakes in the registry (a bad name, a name used twice, an
//! arguments type without an object schema) come out of [`McpServerBuilder::build`] as an
//! error, never as a panic. Already have an rmcp `ServerHandler`? Give it to
//! [`McpServerBuilder::rmcp_handler`] and read the caller with [`AccessToken::from_context`].
//!
//! ## 4. MCP Apps
//! An App is a tool whose result a host renders in a sandboxed view: give the tool an
//! [`AppTemplate`], a `ui://` URI and self-contained HTML (inline CSS and script). The view
//! renders from the tool's structured content. Tools that only the view calls back (a
//! "refresh" button) are [`ToolDef::app_only`]: hosts keep them out of the model's list.
//!
//! ```
//! use mcp_oauth_kit::{AccessToken, AppTemplate, Json, ToolDef, ToolError, Tools};
//!
//! async fn card(caller: AccessToken) -> Result<Json<serde_json::Value>, ToolError> {
//!     Ok(Json(serde_json::json!({ "username": caller.username })))
//! }
//!
//! // include_str!("card.html") in a real server.
//! let view = AppTemplate::new("ui://acme/card", "Card", "<!doctype html><div id=card></div>");
//! let tools = Tools::new()
//!     .tool(ToolDef::new("card", "Show your card").app(view.clone()).handler(card))
//!     .tool(ToolDef::new("card_data", "The card's data, for its view").app(view).app_only().handler(card));
//! # mcp_oauth_kit::McpServer::builder(mcp_oauth_kit::Config::new("http://127.0.0.1:8000").unwrap())
//! #     .user_store(mcp_oauth_kit::StaticUserStore::new()).tools(tools).build().unwrap();
//! ```
//!
//! ## 5. Storage and serving
//! The authorization server keeps clients, pending sign-ins, codes and tokens (as hashes),
//! sign-in sessions, consent and rate-limit counters in a [`Store`]. Without one it is a
//! [`MemoryStore`], and a restart signs everyone out. [`open_store`] opens what a URL names
//! (`memory`, `sqlite://…`, `postgres://…`, migrated on open); instances that share a
//! PostgreSQL database share all of that state.
//!
//! A server's `main` sets up the log ([`logging::init`]: `RUST_LOG`, `LOG_FORMAT`, to
//! stderr), runs the operator's command if the command line names one ([`cli`]: `backup
//! PATH`, `revoke-all`, `help`), and otherwise serves:
//!
//! ```no_run
//! use mcp_oauth_kit::cli::Command;
//! use mcp_oauth_kit::{Config, McpServer, StaticUserStore, Tools};
//!
//! # async fn run(users: StaticUserStore, tools: Tools) -> Result<(), Box<dyn std::error::Error>> {
//! mcp_oauth_kit::logging::init()?;
//! let mut config = Config::from_env()?; // PUBLIC_URL, PORT, DATABASE_URL, lifetimes, …
//! config.database_url.get_or_insert_with(|| "sqlite://oauth.db".into());
//! if let Some(command) = Command::from_args()? {
//!     return Ok(command.run(&config).await?);
//! }
//! let store = config.open_store().await?;
//! McpServer::builder(config).store(store).user_store(users).tools(tools).build()?.run().await?;
//! # Ok(()) }
//! ```
//!
//! The kit's store URL is `MCP_OAUTH_DATABASE_URL`, or `DATABASE_URL` when that is unset: an
//! application that keeps its own data in `DATABASE_URL` gives the kit its store with the
//! first. [`McpServer::run`] stops on SIGINT or SIGTERM after draining; [`McpServer::serve`]
//! takes your listener and shutdown future; [`McpServer::router`] is the whole HTTP surface
//! as a service to mount in your own hyper or axum server ([`http`]).
//!
//! ## 6. Production
//! Put the server behind TLS (a reverse proxy or a tunnel) and set `PUBLIC_URL` to the
//! `https` URL clients use. Every advertised URL, redirect, token audience and the allowed
//! `Host` come from it, never from request headers, so a wrong value breaks sign-in rather
//! than trusting an attacker's `Host`. To end a user's access at once ("delete my account",
//! "sign out everywhere"), call [`OAuthServer::revoke_user`] on the handle that
//! [`McpServer::authorization_server`] gives before the server starts:
//!
//! ```no_run
//! # async fn run(server: mcp_oauth_kit::McpServer) -> Result<(), Box<dyn std::error::Error>> {
//! let accounts = server.authorization_server().expect("built with a user store");
//! tokio::spawn(server.run());
//! // Later, when user u-42 deletes their account:
//! accounts.revoke_user("u-42").await?;
//! # Ok(()) }
//! ```
//!
//! For operators: `/healthz` and `/readyz` answer on the public port; set
//! [`Config::metrics_addr`] (`METRICS_ADDR`) for Prometheus metrics on a private listener, or
//! call [`McpServer::metrics`] to serve them from your own server ([`metrics`]
//! lists the series). Each response carries an `x-request-id`; wrap your log subscriber's
//! event format in [`logging::WithRequestId`] and every line of a request names it too.
//!
//! Lifetimes, rate limits, logs, shutdown and several instances: the README's
//! [production section](https://github.com/mcp-oauth-kit/mcp-oauth-kit#taking-it-to-production).
//!
//! ## 7. Another identity provider
//! If your users already have an OpenID Connect provider (Keycloak, Auth0, Entra ID, Google,
//! …), let them sign in there: give [`McpServerBuilder::upstream`] an
//! [`upstream::OidcProvider`], and the login page offers "Continue with …" (beside the
//! password form when there is a user store, alone otherwise). MCP clients still register,
//! authorize and get tokens here; your tools see the provider's user as the caller. Register
//! `{PUBLIC_URL}/oauth/callback` at the provider:
//!
//! ```no_run
//! # async fn run(tools: mcp_oauth_kit::Tools) -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_oauth_kit::upstream::OidcProvider;
//! use mcp_oauth_kit::{Config, McpServer};
//!
//! let sso = OidcProvider::discover("https://sso.example.com/realms/acme", "mcp-server", "secret").await?;
//! McpServer::builder(Config::from_env()?).upstream(sso).tools(tools).build()?.run().await?;
//! # Ok(()) }
//! ```
//!
//! When the provider mints the access tokens itself, the server can be a resource server only.
//! For JWT access tokens give [`McpServerBuilder::auth_provider`] a [`JwtVerifier`]; for
//! tokens checked by RFC 7662 introspection an [`IntrospectionVerifier`]. Otherwise
//! implement [`AuthProvider`] (verify a bearer token into an [`AccessToken`], name the issuer
//! to advertise) and give it to [`McpServerBuilder::auth_provider`] instead of a user store.
//! The kit then serves no login page and caches verified tokens for
//! [`Config::token_cache_ttl`]. The trait's page has a JWT example; the shape is:
//!
//! ```
//! use std::time::{Duration, SystemTime};
//!
//! use mcp_oauth_kit::auth::{AuthProvider, TokenRejection};
//! use mcp_oauth_kit::{AccessToken, async_trait};
//!
//! struct Idp;
//!
//! #[async_trait]
//! impl AuthProvider for Idp {
//!     async fn verify_token(&self, token: &str) -> Result<AccessToken, TokenRejection> {
//!         // Check the signature, issuer, audience and expiry with your JWT library here.
//!         let subject = token.strip_prefix("valid:").ok_or(TokenRejection::Invalid)?;
//!         let expires_at = SystemTime::now() + Duration::from_secs(300);
//!         Ok(AccessToken::builder(subject, expires_at).scopes(["mcp"]).build())
//!     }
//!
//!     fn authorization_servers(&self) -> Vec<String> {
//!         vec!["https://login.example.com".into()]
//!     }
//! }
//! ```
//!
//! ## Upstream tokens for tools
//! When users sign in at an upstream identity provider, the kit can keep their tokens there so
//! that tools call its API for them: set [`Config::upstream_token_key`] (`UPSTREAM_TOKEN_KEY`)
//! and [`Config::upstream_clients`], and a tool asks its caller with
//! [`AccessToken::upstream_token`]. They are sealed at rest, end with the user's grant, are
//! refreshed when they expire, and never reach the MCP client.
//!
//! ## Where things are
//! The crate root holds what every server names. Each public module is one extension point:
//! [`users`] (user stores and password helpers), [`tools`] (the traits behind the tool API
//! and the MCP Apps constants), [`auth`] (token verification and the built-in authorization
//! server's handle), [`store`] (storage backends), [`http`] (mounting in your own server),
//! [`claims`] (extra claims on a caller), [`upstream`] (sign-in at an OpenID provider),
//! [`clock`] (the time source, and a manual clock that makes expiry tests instant),
//! [`metrics`] (Prometheus metrics), [`logging`] (the process's log from the environment, each request's lines with its id) and
//! [`cli`] (the operator's commands). `docs/ARCHITECTURE.md` in the repository has the code map
//! and the invariants.
//!
//! [`MemoryStore`]: store::MemoryStore
//! [`SqlStore`]: store::SqlStore
//! [`Store`]: store::Store
//! [`open_store`]: store::open_store
//! [`verify_password_or_dummy`]: users::verify_password_or_dummy
//! [`hash_password`]: users::hash_password
//! [`AuthProvider`]: auth::AuthProvider
//! [`JwtVerifier`]: auth::JwtVerifier
//! [`IntrospectionVerifier`]: auth::IntrospectionVerifier
//! [`upstream::OidcProvider`]: upstream::OidcProvider
//! [`OAuthServer::revoke_user`]: auth::OAuthServer::revoke_user

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod authorization_server;
mod browser;
#[cfg(feature = "cimd")]
mod cimd;
pub mod claims;
pub mod cli;
mod client_address;
mod client_display;
pub mod clock;
mod config;
mod endpoints;
mod error;
mod escaped;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
pub mod http;
mod http_util;
mod json_depth;
#[cfg(feature = "logging")]
#[cfg_attr(docsrs, doc(cfg(feature = "logging")))]
pub mod logging;
mod mcp_handler;
mod mcp_session_sweep;
mod mcp_sessions;
pub mod metrics;
mod oauth_messages;
mod password;
mod provider;
mod rate_limit;
#[cfg(test)]
mod redaction_tests;
mod redirect_uri;
mod request_id;
mod router;
mod secret;
mod serve;
mod server;
mod session_bindings;
mod session_lookups;
mod state;
pub mod store;
pub mod tools;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod upstream;
mod upstream_tokens;
mod user_store;
pub mod users;
mod verified_cache;
#[cfg(any(feature = "jwt", feature = "introspection"))]
mod verifiers;

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
#[cfg(all(doctest, feature = "sqlite", feature = "jwt"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
