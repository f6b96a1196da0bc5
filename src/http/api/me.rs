//! `/api/v1/me`: the signed-in user's own account.

use poem_openapi::{
    ApiResponse, Object, OpenApi, param::Path, payload::Json, types::MaybeUndefined,
};

use super::{
    ApiTags,
    mfa::AccountProof,
    types::{ApiKeyCreated, ChangePasswordRequest, UpdateProfileRequest, User},
};
use crate::{
    clock::rfc3339,
    http::{error::Result, security::Auth},
    service::{Principal, Services},
};

/// One of my sessions: a sign-in through the API or an application.
#[derive(Object, Debug)]
pub struct SessionInfo {
    /// Give to `DELETE /api/v1/me/sessions/{id}` to end it.
    pub id: String,
    /// The application it was issued to; absent for this server's own API sign-ins.
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    pub scope: String,
    pub created_at: String,
    pub expires_at: String,
    /// The session of the token making this request.
    pub current: bool,
    /// Where a sign-in to this server came from: the client address and user agent.
    #[oai(skip_serializing_if_is_none)]
    pub ip: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// When a refresh last used it, to the hour (or when it began).
    pub last_used_at: String,
}

/// An application I let access my account.
#[derive(Object, Debug)]
pub struct ConsentInfo {
    pub client_id: String,
    pub client_name: String,
    /// What I granted (space-separated scopes).
    pub scope: String,
}

/// An identity at an upstream provider linked to my account.
#[derive(Object, Debug)]
pub struct LinkedIdentity {
    /// The provider's id (as in `/ui/upstream/{id}/start`).
    pub upstream: String,
    /// The provider's name.
    pub name: String,
    /// What the provider called me when linked.
    pub display: Option<String>,
    pub linked_at: i64,
    pub last_used_at: Option<i64>,
}

/// A new address for my account.
#[derive(Object)]
pub struct EmailChangeRequest {
    pub new_email: super::text::Text,
}

/// The new address, its mailed code, and a proof that the account is mine.
#[derive(Object)]
pub struct EmailChangeConfirm {
    pub new_email: super::text::Text,
    #[oai(write_only)]
    pub code: super::text::Text,
    /// The account's password (or give `totp_code`).
    #[oai(nullable, write_only)]
    pub password: Option<super::text::Text>,
    /// A current second-factor or recovery code, instead of the password.
    #[oai(nullable, write_only)]
    pub totp_code: Option<super::text::Text>,
}

#[derive(ApiResponse)]
enum EmailCodeSent {
    /// A code is on its way to the new address (the answer is the same when the address
    /// already has an account; its owner is told instead).
    #[oai(status = 202)]
    Accepted(Json<super::types::CodeSent>),
}

#[derive(ApiResponse)]
enum Ended {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

pub struct MeApi {
    pub services: Services,
}

#[derive(ApiResponse)]
enum PasswordChanged {
    /// Changed; every other session has been signed out.
    #[oai(status = 204)]
    NoContent,
}

/// Resolves an operation's credential to the user it acts as.
pub async fn principal(services: &Services, auth: Auth) -> Result<Principal> {
    Ok(services.sessions.authenticate(auth.credential()).await?)
}

impl MeApi {
    async fn principal(&self, auth: Auth) -> Result<Principal> {
        principal(&self.services, auth).await
    }
}

#[OpenApi(tag = "ApiTags::Me")]
impl MeApi {
    /// Get my profile
    #[oai(path = "/api/v1/me", method = "get", operation_id = "getMe")]
    async fn get(&self, auth: Auth) -> Result<Json<User>> {
        let p = self.principal(auth).await?;
        Ok(Json(User::of(&p.user, &self.services.public_url)))
    }

    /// Update my profile
    ///
    /// Sets `display_name`; `null` clears it, an absent field leaves it unchanged.
    #[oai(path = "/api/v1/me", method = "patch", operation_id = "updateMe")]
    async fn update(&self, auth: Auth, body: Json<UpdateProfileRequest>) -> Result<Json<User>> {
        let p = self.principal(auth).await?;
        let user = match &body.display_name {
            MaybeUndefined::Undefined => p.user,
            MaybeUndefined::Null => self.services.accounts.update_display_name(&p, None).await?,
            MaybeUndefined::Value(v) => {
                self.services
                    .accounts
                    .update_display_name(&p, Some(v))
                    .await?
            }
        };
        Ok(Json(User::of(&user, &self.services.public_url)))
    }

    /// Change my password
    ///
    /// Needs the current password (a wrong one is 403 and changes nothing). On success every
    /// other session is signed out; the one making the call stays signed in.
    #[oai(
        path = "/api/v1/me/password",
        method = "put",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<ChangePasswordRequest>,
    ) -> Result<PasswordChanged> {
        let p = self.principal(auth).await?;
        self.services
            .accounts
            .change_password(
                &p,
                &body.current_password,
                &body.new_password,
                &super::origin(&self.services, req),
            )
            .await?;
        Ok(PasswordChanged::NoContent)
    }

    /// Rotate my API key
    ///
    /// Issues a new personal API key, shown only in this answer, and disables the previous
    /// one at once. Use it as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
    #[oai(
        path = "/api/v1/me/api-key",
        method = "post",
        operation_id = "rotateApiKey"
    )]
    async fn rotate_api_key(&self, auth: Auth) -> Result<Json<ApiKeyCreated>> {
        let p = self.principal(auth).await?;
        let api_key = self.services.accounts.rotate_api_key(&p).await?;
        Ok(Json(ApiKeyCreated { api_key }))
    }

    /// List my sessions
    ///
    /// My live sign-ins through the API and applications (refresh-token sessions), newest
    /// first. Browser sign-ins to these pages are not listed.
    #[oai(
        path = "/api/v1/me/sessions",
        method = "get",
        operation_id = "listMySessions"
    )]
    async fn sessions(&self, auth: Auth) -> Result<Json<Vec<SessionInfo>>> {
        let p = self.principal(auth).await?;
        let sessions = self.services.sessions.list_own(&p).await?;
        Ok(Json(
            sessions
                .into_iter()
                .map(|s| SessionInfo {
                    id: s.id,
                    client_id: s.client_id,
                    scope: s.scope,
                    created_at: rfc3339(s.created_at),
                    expires_at: rfc3339(s.expires_at),
                    current: s.current,
                    ip: s.ip,
                    user_agent: s.user_agent,
                    last_used_at: rfc3339(s.last_used_at),
                })
                .collect(),
        ))
    }

    /// End one of my sessions
    ///
    /// Its refresh token and access tokens stop working. 404 `not_found` for a session that
    /// is not mine or already ended.
    #[oai(
        path = "/api/v1/me/sessions/:id",
        method = "delete",
        operation_id = "endMySession"
    )]
    async fn end_session(
        &self,
        req: &poem::Request,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Ended> {
        let p = self.principal(auth).await?;
        let origin = super::origin(&self.services, req);
        self.services.sessions.revoke_own(&p, &id, &origin).await?;
        Ok(Ended::NoContent)
    }

    /// List the applications I let in
    #[oai(
        path = "/api/v1/me/consents",
        method = "get",
        operation_id = "listMyConsents"
    )]
    async fn consents(&self, auth: Auth) -> Result<Json<Vec<ConsentInfo>>> {
        let p = self.principal(auth).await?;
        let consents = self.services.oauth2.consents(&p.user.id).await?;
        Ok(Json(
            consents
                .into_iter()
                .map(|c| ConsentInfo {
                    client_id: c.client_id,
                    client_name: c.client_name,
                    scope: c.scope,
                })
                .collect(),
        ))
    }

    /// Revoke an application's access
    ///
    /// Withdraws my consent and ends the sessions the application holds for me; its next
    /// sign-in asks again. 404 `not_found` when it had no consent.
    #[oai(
        path = "/api/v1/me/consents/:client_id",
        method = "delete",
        operation_id = "revokeMyConsent"
    )]
    async fn revoke_consent(
        &self,
        req: &poem::Request,
        auth: Auth,
        client_id: Path<String>,
    ) -> Result<Ended> {
        let p = self.principal(auth).await?;
        let origin = super::origin(&self.services, req);
        self.services
            .oauth2
            .revoke_consent(&p.user.id, &client_id, &origin)
            .await?;
        Ok(Ended::NoContent)
    }

    /// List the sign-in providers linked to my account
    ///
    /// Identities at upstream identity providers I sign in with (linked on the pages).
    #[oai(
        path = "/api/v1/me/identities",
        method = "get",
        operation_id = "listMyIdentities"
    )]
    async fn identities(&self, auth: Auth) -> Result<Json<Vec<LinkedIdentity>>> {
        let p = self.principal(auth).await?;
        let linked = self.services.upstreams.identities(&p.user.id).await?;
        Ok(Json(
            linked
                .into_iter()
                .map(|(i, name)| LinkedIdentity {
                    upstream: i.upstream_id,
                    name,
                    display: i.display,
                    linked_at: i.linked_at,
                    last_used_at: i.last_used_at,
                })
                .collect(),
        ))
    }

    /// Unlink a sign-in provider
    ///
    /// 409 `last_sign_in` when it is my only way to sign in (no password, no passkey, no
    /// other provider); 404 `not_found` when none is linked there. Audited.
    #[oai(
        path = "/api/v1/me/identities/:upstream",
        method = "delete",
        operation_id = "unlinkMyIdentity"
    )]
    async fn unlink_identity(
        &self,
        req: &poem::Request,
        auth: Auth,
        upstream: Path<String>,
    ) -> Result<Ended> {
        let p = self.principal(auth).await?;
        let origin = super::origin(&self.services, req);
        self.services
            .upstreams
            .unlink(&p, &upstream, &origin)
            .await?;
        Ok(Ended::NoContent)
    }

    /// Change my email address, step 1
    ///
    /// Mails a 6-digit code to `new_email`. 429 `resend_too_soon` within a minute of the
    /// last code to that address.
    #[oai(
        path = "/api/v1/me/email",
        method = "post",
        operation_id = "requestEmailChange"
    )]
    async fn request_email_change(
        &self,
        auth: Auth,
        req: &poem::Request,
        body: Json<EmailChangeRequest>,
    ) -> Result<EmailCodeSent> {
        let p = self.principal(auth).await?;
        let code = self
            .services
            .accounts
            .request_email_change(&p, &body.0.new_email, crate::http::request_lang(req))
            .await?;
        Ok(EmailCodeSent::Accepted(Json(super::types::CodeSent::new(
            code,
            self.services.dev,
        ))))
    }

    /// Change my email address, step 2
    ///
    /// With the mailed code and the password (or a second-factor code), the account moves
    /// to the new address, marked verified; the old address is told. 400 `invalid_code`,
    /// 403 `wrong_password`, 409 `email_taken`.
    #[oai(
        path = "/api/v1/me/email/confirm",
        method = "post",
        operation_id = "confirmEmailChange"
    )]
    async fn confirm_email_change(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<EmailChangeConfirm>,
    ) -> Result<Json<User>> {
        let p = self.principal(auth).await?;
        let body = body.0;
        let proof = crate::service::mfa::Proof {
            password: body.password.map(|t| t.0),
            code: body.totp_code.map(|t| t.0),
        };
        let user = self
            .services
            .accounts
            .change_email(
                &p,
                &body.new_email,
                &body.code,
                &proof,
                &super::origin(&self.services, req),
            )
            .await?;
        Ok(Json(User::of(&user, &self.services.public_url)))
    }

    /// Delete my account
    ///
    /// Needs the password or a current second-factor code (a token alone is not enough).
    /// Everything goes: sessions, API key, picture, second factors, consents and OAuth
    /// clients. A wrong proof is 403 `wrong_password` and counts as a failed sign-in.
    #[oai(
        path = "/api/v1/me/delete",
        method = "post",
        operation_id = "deleteMyAccount"
    )]
    async fn delete_account(
        &self,
        req: &poem::Request,
        auth: Auth,
        body: Json<AccountProof>,
    ) -> Result<Ended> {
        let p = self.principal(auth).await?;
        let origin = super::origin(&self.services, req);
        self.services
            .accounts
            .delete_own_account(&p, &body.0.proof(), &origin)
            .await?;
        Ok(Ended::NoContent)
    }

    /// Become a developer
    ///
    /// Grants the developer role, which allows registering OAuth clients. Idempotent.
    #[oai(
        path = "/api/v1/me/developer",
        method = "post",
        operation_id = "becomeDeveloper"
    )]
    async fn become_developer(&self, auth: Auth) -> Result<Json<User>> {
        let p = self.principal(auth).await?;
        let user = self.services.accounts.become_developer(&p).await?;
        Ok(Json(User::of(&user, &self.services.public_url)))
    }
}
