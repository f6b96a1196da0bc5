//! `/api/v1/me`: the signed-in user's own account.

use poem_openapi::{ApiResponse, OpenApi, payload::Json, types::MaybeUndefined};

use super::{
    ApiTags,
    types::{ApiKeyCreated, ChangePasswordRequest, UpdateProfileRequest, User},
};
use crate::{
    http::{error::Result, security::Auth},
    service::{Principal, Services},
};

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
