//! Discovery documents: RFC 9728 protected-resource metadata and RFC 8414 authorization
//! server metadata. Every URL in them is built from the configured public URL.

use serde_json::{Value, json};

use crate::config::Config;

/// RFC 9728 §2: what a client learns about the MCP endpoint, whose tokens come from
/// `authorization_servers`.
pub(crate) fn protected_resource(config: &Config, authorization_servers: &[String]) -> Value {
    json!({
        "resource": config.resource(),
        "authorization_servers": authorization_servers,
        "scopes_supported": config.scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": config.server_name,
    })
}

/// The URL of the protected-resource metadata, as sent in `WWW-Authenticate`.
pub(crate) fn protected_resource_url(config: &Config) -> String {
    config.url(&format!("/.well-known/oauth-protected-resource{}", config.mcp_path))
}

/// RFC 8414 §2: the authorization server's endpoints and capabilities.
pub(crate) fn authorization_server(config: &Config) -> Value {
    let auth_methods = ["none", "client_secret_post", "client_secret_basic"];
    json!({
        "issuer": config.issuer(),
        "authorization_endpoint": config.url("/authorize"),
        "token_endpoint": config.url("/token"),
        "registration_endpoint": config.url("/register"),
        "revocation_endpoint": config.url("/revoke"),
        "introspection_endpoint": config.url("/introspect"),
        "scopes_supported": config.scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": config.client_id_metadata_documents && cfg!(feature = "cimd"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_comes_from_the_public_url() {
        let config = Config::new("https://mcp.example.com").expect("valid");
        let prm = protected_resource(&config, &[config.issuer()]);
        assert_eq!(prm["resource"], "https://mcp.example.com/mcp");
        assert_eq!(prm["authorization_servers"][0], "https://mcp.example.com");
        let asm = authorization_server(&config);
        assert_eq!(asm["issuer"], "https://mcp.example.com");
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "registration_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
        ] {
            assert!(asm[key].as_str().is_some_and(|u| u.starts_with("https://mcp.example.com/")), "{key}");
        }
        assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(protected_resource_url(&config), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    }
}
