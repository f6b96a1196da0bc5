//! The SSO document's code exchange: a user who signs in with `secret_id` and a registered
//! `redirect_uri` gets an authorization code at once, and the client's backend trades it,
//! with its secret, for who the user is (`POST /oauth/`) rather than for tokens. The code is
//! an ordinary authorization code (60 s, single use, bound to its client); what differs is
//! that the exchange does not carry `redirect_uri` (exact matching happened at issue).

use super::{OAuth2, OAuthError, PresentedClient, authorize::CODE_TTL, redeemed};
use crate::{
    service::ServiceError,
    store::authz::{AuthCodeRecord, RedirectCheck},
    token::opaque,
};

impl OAuth2 {
    /// Issues a code to `client_id` for a user who has just signed in, if the client exists,
    /// is confidential (the exchange authenticates with its secret; a public client has none,
    /// and this code carries no PKCE), may use the authorization code grant and registered
    /// `redirect_uri` exactly (RFC 6749 §3.1.2.3). `None` otherwise: the sign-in itself still
    /// stands.
    pub async fn issue_code_after_login(
        &self,
        client_id: &str,
        redirect_uri: &str,
        user: &crate::service::views::UserView,
    ) -> Result<Option<String>, ServiceError> {
        let id = client_id.to_string();
        let Some(client) = self.store().run(move |s| s.get_client(&id)).await? else {
            return Ok(None);
        };
        let registered = client.redirect_uris.iter().any(|u| u == redirect_uri);
        let allowed = client.grant_types.iter().any(|g| g == "authorization_code");
        if !registered || !allowed || !client.confidential {
            return Ok(None);
        }
        let code = opaque::random_token(32);
        let now = self.store().clock().now();
        let record = AuthCodeRecord {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            user_id: user.id.clone(),
            scope: client.scopes.join(" "),
            nonce: None,
            code_challenge: None,
            auth_time: now,
            expires_at: now + CODE_TTL,
            redeemed_family: None,
            sid: None,
            amr: vec![crate::service::mfa::amr::PASSWORD.to_string()],
            idp: None,
        };
        let hash = opaque::digest(&code);
        self.store()
            .run(move |s| s.put_auth_code(hash, &record))
            .await?;
        Ok(Some(code))
    }

    /// Trades a code for the user it was issued for. The client must authenticate with its
    /// secret; the code must be its own, live and unused (a second use is refused).
    pub async fn redeem_for_identity(
        &self,
        presented: &PresentedClient,
        code: &str,
    ) -> Result<crate::service::views::UserView, OAuthError> {
        let client = self.authenticate_confidential_client(presented).await?;
        let (hash, client_id) = (opaque::digest(code), client.client_id.clone());
        let redemption = self
            .store()
            .redeem_code(
                hash,
                client_id,
                RedirectCheck::NotCarried,
                // A PKCE-bound code needs its verifier, which this exchange cannot carry.
                |c| match c.code_challenge {
                    Some(_) => {
                        Err("this code was issued with PKCE; redeem it at the token endpoint")
                    }
                    None => Ok(()),
                },
                None,
            )
            .await
            .map_err(OAuthError::from)?;
        let code = redeemed(redemption, &client.client_id)?;
        self.active_user(code.user_id).await
    }
}
