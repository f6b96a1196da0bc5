//! The client credentials grant (RFC 6749 §4.4): a confidential client gets a token for
//! itself. No refresh token (§4.4.3), and no user scopes: there is no user.

use super::{OAuth2, OAuthError, TokenRequest, TokenResponse, grant_scope};
use crate::store::records::ClientRecord;

pub(super) async fn grant(
    oauth: &OAuth2,
    client: &ClientRecord,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::UnauthorizedClient(
            "client_credentials needs a confidential client".into(),
        ));
    }
    let scope = grant_scope(client, request.param("scope"), true)?;
    let (access_token, access_claims, expires_in) = oauth
        .sessions
        .issue_for_client(&client.client_id, &scope.to_string())?;
    Ok(TokenResponse {
        access_token,
        access_claims,
        expires_in,
        refresh_token: None,
        scope: scope.to_string(),
        id_token: None,
        user: None,
    })
}
