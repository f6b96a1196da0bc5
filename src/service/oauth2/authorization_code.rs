//! The authorization code grant's token request (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6).
//! Single use: a replay is refused and revokes what the first redemption issued (§4.1.2).

use super::{OAuth2, OAuthError, TokenRequest, TokenResponse, authorize::pkce_matches, redeemed};
use crate::{
    store::{
        authz::{NewSession, RedirectCheck},
        records::ClientRecord,
    },
    token::opaque,
};

pub(super) async fn grant(
    oauth: &OAuth2,
    client: &ClientRecord,
    request: &TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let code = request.required("code")?.to_string();
    let redirect_uri = request.param("redirect_uri").map(str::to_string);
    let verifier = request.param("code_verifier").map(str::to_string);
    let family_id = opaque::random_token(16);
    let refresh_token = opaque::random_token(32);
    let session = NewSession {
        family_id: family_id.clone(),
        refresh_hash: opaque::digest(&refresh_token),
        lifetimes: oauth.sessions.lifetimes(),
    };
    let (hash, client_id) = (opaque::digest(&code), client.client_id.clone());
    let public = !client.confidential;
    let redemption = oauth
        .store()
        .redeem_code(
            hash,
            client_id,
            RedirectCheck::Equals(redirect_uri),
            move |c| match (&c.code_challenge, &verifier) {
                (Some(ch), Some(v)) if pkce_matches(v, ch) => Ok(()),
                (Some(_), Some(_)) => Err("code_verifier does not match the code_challenge"),
                (Some(_), None) => Err("code_verifier is required"),
                (None, Some(_)) => {
                    Err("code_verifier sent for a code issued without code_challenge")
                }
                // A public client proves nothing but PKCE (RFC 9700 §2.1.1): a code
                // without a challenge is not its to redeem.
                (None, None) if public => Err("a public client's code must be bound to PKCE"),
                (None, None) => Ok(()),
            },
            Some(session),
        )
        .await
        .map_err(OAuthError::from)?;
    let code = redeemed(redemption, &client.client_id)?;
    let signed_in = super::SignIn {
        nonce: code.nonce.as_deref(),
        auth_time: code.auth_time,
        sid: code.sid.as_deref(),
        amr: &code.amr,
        idp: code.idp.as_deref(),
    };
    oauth
        .issue_for_new_session(
            client,
            &code.user_id,
            &code.scope,
            (family_id, refresh_token),
            signed_in,
        )
        .await
}
