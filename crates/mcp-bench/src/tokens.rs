//! Bearer tokens for the MCP load: real sign-ins on the example, JWTs minted by the bench for
//! the JWT server, random ones that the baselines accept without checking (the ceiling) or
//! look up (the floor).

use anyhow::anyhow;

use crate::client::Conn;
use crate::servers::{Kind, Server};
use crate::{jwt, oauth};

/// `n` tokens for a server of the kit, each with the user its tool names: sign-ins on the
/// example, minted JWTs for the JWT server; `None` for a baseline, whose tokens come before
/// it starts (the floor is told them).
pub(crate) async fn for_kit(server: &Server, n: usize) -> anyhow::Result<Option<Vec<(String, String)>>> {
    match server.kind {
        Kind::Example => sign_in(server, n).await.map(Some),
        Kind::Jwt => jwt::tokens(server, n).map(Some),
        Kind::Ceiling | Kind::Floor => Ok(None),
    }
}

/// Sign in `n` times through the real flow (alternating alice and bob); returns each access
/// token with the user it names.
pub(crate) async fn sign_in(server: &Server, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let mut conn = Conn::connect(server.addr).await?;
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let user = oauth::USERS[i % oauth::USERS.len()];
        let t =
            oauth::sign_in(&mut conn, &server.base, user).await.map_err(|e| anyhow!("sign-in as {}: {e}", user.0))?;
        tokens.push((t.access, t.username));
    }
    Ok(tokens)
}

/// A token shaped like the kit's, for the baselines; their tool names the caller `bench`.
pub(crate) fn random() -> (String, String) {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    (format!("mcp_at_{token}"), "bench".to_owned())
}
