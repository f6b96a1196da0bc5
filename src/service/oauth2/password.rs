//! The resource owner password credentials grant (RFC 6749 §4.3). Deprecated by RFC 9700
//! §2.4 and off unless a client enables it; the legacy documents need it. Failures count in
//! the same per-account limits as the login page. The grant has no second step: users with a
//! second factor are refused like a wrong password (`invalid_grant`).

use super::{OAuth2, OAuthError, TokenRequest, TokenResponse, grant_scope};
use crate::{service::sessions::SessionGrant, store::records::ClientRecord};

pub(super) async fn grant(
    oauth: &OAuth2,
    client: &ClientRecord,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let username = request.required("username")?;
    let password = request.required("password")?;
    let scope = grant_scope(client, request.param("scope"), false)?;
    let user = oauth
        .accounts
        .authenticate_password_only(username, password, &request.origin)
        .await?;
    let session = oauth
        .sessions
        .start_with(
            user,
            SessionGrant {
                client_id: Some(client.client_id.clone()),
                scope: scope.to_string(),
            },
        )
        .await?;
    // The session family exists either way (it is what revocation and introspection check);
    // the refresh token is handed out only to clients allowed to use it.
    let refresh = client.grant_types.iter().any(|g| g == "refresh_token");
    Ok(TokenResponse {
        access_token: session.access_token,
        access_claims: session.access_claims,
        expires_in: session.expires_in,
        refresh_token: refresh.then_some(session.refresh_token),
        scope: session.scope,
        id_token: None,
        user: Some(session.user),
    })
}
