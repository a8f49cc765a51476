//! The registration role: RFC 7591 dynamic client registration, and the lookup of a client
//! by its `client_id`, registered or (with the `cimd` feature) described by a Client ID
//! Metadata Document that is then kept like a registration.

use super::OAuthServer;
use crate::client_display::{clean as clean_client_name, is_metadata_url};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::escaped::Escaped;
use crate::oauth_messages::{AuthorizeError, ClientMetadata, RegisteredClient};
use crate::redirect_uri::RedirectUri;
use crate::secret::NewSecret;
use crate::store::ClientRecord;

impl OAuthServer {
    /// The client record for `client_id`: registered, or (for an `https` URL) from its
    /// Client ID Metadata Document, which is then kept like a registration.
    /// Without the `cimd` feature, or with [`Config::client_id_metadata_documents`](crate::Config::client_id_metadata_documents) off, such a
    /// `client_id` is refused as an invalid request, as the metadata's
    /// `client_id_metadata_document_supported: false` announces.
    pub(super) async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>, AuthorizeError> {
        if !is_metadata_url(client_id) {
            return self.store.client(client_id).await.map_err(|e| AuthorizeError::Page(e.into()));
        }
        #[cfg(feature = "cimd")]
        if let Some(cimd) = &self.cimd {
            return match cimd.resolve(client_id).await {
                Ok((record, fresh)) => {
                    if fresh {
                        self.store.insert_client(record.clone()).await.map_err(|e| AuthorizeError::Page(e.into()))?;
                    }
                    Ok(Some(record))
                }
                Err(why) => Err(AuthorizeError::Page(OAuthError::invalid_request(why))),
            };
        }
        Err(AuthorizeError::Page(OAuthError::invalid_request(
            "this server does not accept client ID metadata documents: register the client",
        )))
    }

    /// RFC 7591: register a client.
    ///
    /// # Errors
    /// `invalid_redirect_uri` / `invalid_client_metadata` for bad metadata.
    pub(crate) async fn register_client(&self, metadata: ClientMetadata) -> Result<RegisteredClient, OAuthError> {
        let bad_meta = |d: String| OAuthError::new(OAuthErrorCode::InvalidClientMetadata, d);
        let uris = metadata.redirect_uris.unwrap_or_default();
        if uris.is_empty() {
            return Err(OAuthError::new(OAuthErrorCode::InvalidRedirectUri, "redirect_uris is required"));
        }
        if uris.len() > 10 {
            return Err(OAuthError::new(OAuthErrorCode::InvalidRedirectUri, "at most 10 redirect_uris"));
        }
        for uri in &uris {
            RedirectUri::parse(uri).map_err(|why| {
                OAuthError::new(OAuthErrorCode::InvalidRedirectUri, format!("redirect URI {uri:?}: {why}"))
            })?;
        }
        let auth_method = metadata.token_endpoint_auth_method.unwrap_or_else(|| "client_secret_basic".into());
        if !matches!(auth_method.as_str(), "none" | "client_secret_post" | "client_secret_basic") {
            return Err(bad_meta(format!("token_endpoint_auth_method {auth_method:?} is not supported")));
        }
        // MCP clients expect to refresh; a client that wants no refresh tokens says so.
        let grant_types =
            metadata.grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
        if let Some(g) = grant_types.iter().find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token")) {
            return Err(bad_meta(format!("grant type {g:?} is not supported")));
        }
        if let Some(r) = metadata.response_types.iter().flatten().find(|r| r.as_str() != "code") {
            return Err(bad_meta(format!("response type {r:?} is not supported")));
        }
        if let Some(scope) = metadata.scope.as_deref() {
            self.parse_scopes(Some(scope)).map_err(|e| bad_meta(e.description.into_owned()))?;
        }
        let name = metadata.client_name.as_deref().map(clean_client_name);
        let secret = (auth_method != "none").then(|| NewSecret::generate("mcp_cs_"));
        let record = ClientRecord {
            client_id: NewSecret::generate("mcp_client_").into_string(),
            secret_hash: secret.as_ref().map(NewSecret::hash),
            auth_method,
            client_name: name,
            redirect_uris: uris,
            grant_types,
            scope: metadata.scope,
            issued_at: self.now(),
        };
        self.store.insert_client(record.clone()).await?;
        tracing::info!(client_id = %Escaped(&record.client_id), "client registered");
        Ok(RegisteredClient { record, client_secret: secret.map(NewSecret::into_string) })
    }
}
