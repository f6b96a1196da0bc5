//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700
//! §4.14.2): bound to its client, and unable to widen the original scope.

use super::{OAuth2, OAuthError, TokenRequest, TokenResponse};
use crate::{domain::Scope, store::records::ClientRecord};

pub(super) async fn grant(
    oauth: &OAuth2,
    client: &ClientRecord,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let token = request.required("refresh_token")?;
    let scope = request
        .param("scope")
        .map(Scope::parse)
        .transpose()
        .map_err(|e| OAuthError::InvalidScope(e.message))?;
    let session = oauth
        .sessions
        .refresh_for(
            token,
            Some(&client.client_id),
            scope.as_ref(),
            &request.origin,
        )
        .await?;
    Ok(TokenResponse {
        access_token: session.access_token,
        access_claims: session.access_claims,
        expires_in: session.expires_in,
        refresh_token: Some(session.refresh_token),
        scope: session.scope,
        id_token: None,
        user: Some(session.user),
    })
}
