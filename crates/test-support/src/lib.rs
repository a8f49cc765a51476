//! Test helpers shared by the kit's integration tests, the example's tests, the attack suite,
//! the benchmark and `connect-with-client`'s form login: the parts of an MCP client and its
//! user's browser that every one of them plays by hand.
//!
//! Everything works at the HTTP level, on what a server sent (`http::HeaderMap`, HTML, JSON),
//! so that any HTTP client can drive it and nothing here depends on `mcp-oauth-kit`:
//!
//! - [`pkce`]: a PKCE verifier and its S256 challenge ([`Pkce`]), and [`unique`] values;
//! - [`html`]: the forms of a page as a browser submits them ([`find_forms`], [`HtmlForm`],
//!   [`hidden_input`]);
//! - [`redirect`]: a redirect's [`location`], a URL's query [`param`], a [`set_cookie`] pair;
//! - [`login`]: the sign-in form of a login page ([`LoginForm`]) and the authorization
//!   response that comes back to the client ([`AuthorizationResponse`]);
//! - [`jsonrpc`]: the JSON-RPC reply in a Streamable HTTP response ([`rpc_reply`]) and the
//!   text of a tool result ([`text_of`]);
//! - [`temp_dir`]: a [`TempDir`] removed when dropped;
//! - [`oidc_provider`]: node-oidc-provider, the real OpenID provider of the upstream sign-in
//!   tests, installed and started.
//!
//! ```
//! use mcp_test_support::{Pkce, param};
//! use url::Url;
//!
//! let pkce = Pkce::new();
//! assert_eq!(pkce.challenge, mcp_test_support::s256(&pkce.verifier));
//! let callback = Url::parse("http://127.0.0.1:9999/callback?code=c1&state=s").unwrap();
//! assert_eq!(param(&callback, "code").as_deref(), Some("c1"));
//! ```

pub mod html;
pub mod jsonrpc;
pub mod login;
pub mod oidc_provider;
pub mod pkce;
pub mod redirect;
pub mod temp_dir;

pub use html::{HtmlForm, find_forms, hidden_input};
pub use jsonrpc::{rpc_reply, text_of};
pub use login::{AuthorizationResponse, CallbackError, LoginForm};
pub use pkce::{Pkce, s256, unique};
pub use redirect::{location, param, set_cookie};
pub use temp_dir::TempDir;
