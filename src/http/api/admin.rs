//! `/api/v1/admin/users`: user administration for admins.

use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};

use super::{ApiTags, me::principal, text::Text, types::User};
use crate::{
    domain::{Invalid, Role},
    http::{error::Result, security::Auth},
    service::views::UserView,
    service::{
        ServiceError, Services,
        admin::{UserChanges, UserPage},
    },
};

pub struct AdminApi {
    pub services: Services,
}

/// A user as an admin sees it.
#[derive(Object, Debug, Clone)]
pub struct AdminUser {
    #[oai(flatten)]
    pub user: User,
    /// Disabled users cannot sign in and have no sessions.
    pub disabled: bool,
    /// Registration order: 1 for the first account.
    pub number: u64,
}

impl AdminUser {
    fn of(u: &UserView, base: &str) -> Self {
        Self {
            user: User::of(u, base),
            disabled: u.disabled,
            number: u.number,
        }
    }
}

/// One page of users.
#[derive(Object, Debug)]
pub struct UserList {
    pub users: Vec<AdminUser>,
    /// Users matching the search, on all pages.
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// Changes to a user; absent (or `null`) fields stay as they are.
#[derive(Object, Debug)]
pub struct AdminUserUpdate {
    /// `true` disables the account and ends its sessions; `false` enables it.
    #[oai(nullable)]
    pub disabled: Option<bool>,
    /// The complete new set of roles: `admin`, `developer`.
    #[oai(nullable)]
    pub roles: Option<Vec<Text>>,
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted, with their sessions, API key, avatar, consents and OAuth clients.
    #[oai(status = 204)]
    NoContent,
}

/// What an initial access token allows.
#[derive(Object, Debug)]
pub struct InitialAccessTokenRequest {
    /// Seconds it stays valid: 60 to 2592000 (30 days). Absent or null: 86400.
    #[oai(nullable, validator(minimum(value = "60"), maximum(value = "2592000")))]
    pub expires_in: Option<i64>,
    /// How many clients it may register. Absent or null: 1.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "10000")))]
    pub uses: Option<u32>,
}

/// An initial access token for Dynamic Client Registration (RFC 7591 §3).
#[derive(Object, Debug)]
pub struct InitialAccessToken {
    /// Send as `Authorization: Bearer` to `POST /oauth2/register`. Shown only here.
    pub token: String,
    pub expires_at: String,
    pub uses: u32,
}

#[derive(ApiResponse)]
enum IssuedToken {
    /// Issued. The token is shown only here; clients it registers are owned by you.
    #[oai(status = 201)]
    Created(Json<InitialAccessToken>),
}

#[derive(ApiResponse)]
enum Snapshot {
    /// The database file (redb) as of one moment. Restore it by stopping the server and
    /// putting it in a data directory as `portcullis.redb`.
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(
        Binary<poem::Body>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Download a backup
    ///
    /// A consistent copy of the whole database, made while the server keeps serving (writes
    /// go on; the copy is as of the moment it began), streamed as a redb file. The server
    /// writes it next to its database first, so that disk needs the database's size free
    /// (503 `storage_unavailable` otherwise). Admins only (403 `admin_role_required`).
    #[oai(
        path = "/api/v1/admin/backup",
        method = "get",
        operation_id = "adminBackup"
    )]
    async fn backup(&self, auth: Auth) -> Result<Snapshot> {
        let p = principal(&self.services, auth).await?;
        let (file, taken_at) = self.services.admin.snapshot(&p).await?;
        let name = format!(
            "attachment; filename=\"portcullis-{}.redb\"",
            crate::clock::rfc3339(taken_at).replace(':', "-")
        );
        let body = poem::Body::from_async_read(tokio::fs::File::from_std(file));
        Ok(Snapshot::Ok(Binary(body), name, "no-store".into()))
    }

    /// List every OAuth client
    ///
    /// All clients of every developer (the admin console's list). A client's own operations
    /// (`/api/v1/clients/{client_id}`: change, new secret, delete) accept admins too. Admins
    /// only (403 `admin_role_required` otherwise).
    #[oai(
        path = "/api/v1/admin/clients",
        method = "get",
        operation_id = "adminListClients"
    )]
    async fn clients(&self, auth: Auth) -> Result<Json<Vec<super::clients::Client>>> {
        let p = principal(&self.services, auth).await?;
        let clients = self.services.clients.list_all(&p).await?;
        Ok(Json(
            clients
                .iter()
                .map(|c| super::clients::Client::of(c, None))
                .collect(),
        ))
    }

    /// List users
    ///
    /// Users whose username, email or display name contains `q` (ignoring case), in
    /// registration order, 50 per page. Admins only (403 `admin_role_required` otherwise).
    #[oai(
        path = "/api/v1/admin/users",
        method = "get",
        operation_id = "adminListUsers"
    )]
    async fn list(
        &self,
        auth: Auth,
        /// Search text.
        q: Query<Option<String>>,
        /// Page, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<u32>>,
    ) -> Result<Json<UserList>> {
        let p = principal(&self.services, auth).await?;
        let UserPage {
            users,
            total,
            page,
            per_page,
        } = self
            .services
            .admin
            .list(&p, q.0.as_deref(), page.0.unwrap_or(1) as usize)
            .await?;
        Ok(Json(UserList {
            users: users
                .iter()
                .map(|u| AdminUser::of(u, &self.services.public_url))
                .collect(),
            total: total as u64,
            page: page as u64,
            per_page: per_page as u64,
        }))
    }

    /// Change a user
    ///
    /// Disable or enable the account, or set its roles. An admin cannot disable or demote
    /// themselves (403 `own_account`).
    #[oai(
        path = "/api/v1/admin/users/:id",
        method = "patch",
        operation_id = "adminUpdateUser"
    )]
    async fn update(
        &self,
        req: &poem::Request,
        auth: Auth,
        id: Path<String>,
        body: Json<AdminUserUpdate>,
    ) -> Result<Json<AdminUser>> {
        let p = principal(&self.services, auth).await?;
        let roles = body
            .0
            .roles
            .map(|roles| {
                roles
                    .iter()
                    .map(|r| {
                        Role::parse(r).ok_or_else(|| {
                            ServiceError::from(Invalid::new(
                                "invalid_role",
                                "roles",
                                "may contain only `admin` and `developer`",
                            ))
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .transpose()?;
        let user = self
            .services
            .admin
            .update(
                &p,
                &id,
                UserChanges {
                    disabled: body.0.disabled,
                    roles,
                    admin: None,
                },
                &crate::http::origin(req, self.services.trust_forwarded_for, "admin"),
            )
            .await?;
        Ok(Json(AdminUser::of(&user, &self.services.public_url)))
    }

    /// Delete a user
    ///
    /// Removes the account and everything that is theirs: sessions (their tokens stop
    /// working), API key, avatar, consents and the OAuth clients they own. An admin cannot
    /// delete themselves (403 `own_account`).
    #[oai(
        path = "/api/v1/admin/users/:id",
        method = "delete",
        operation_id = "adminDeleteUser"
    )]
    async fn delete(&self, req: &poem::Request, auth: Auth, id: Path<String>) -> Result<Deleted> {
        let p = principal(&self.services, auth).await?;
        let origin = crate::http::origin(req, self.services.trust_forwarded_for, "admin");
        self.services.admin.delete(&p, &id, &origin).await?;
        Ok(Deleted::NoContent)
    }

    /// Reset a user's second factors
    ///
    /// Removes their authenticator app, passkeys and recovery codes (a user who lost them
    /// all); they sign in with the password again. Audited.
    #[oai(
        path = "/api/v1/admin/users/:id/mfa/reset",
        method = "post",
        operation_id = "adminResetSecondFactors"
    )]
    async fn reset_factors(
        &self,
        req: &poem::Request,
        auth: Auth,
        id: Path<String>,
    ) -> Result<Deleted> {
        let p = principal(&self.services, auth).await?;
        let origin = crate::http::origin(req, self.services.trust_forwarded_for, "admin");
        self.services.admin.reset_factors(&p, &id, &origin).await?;
        Ok(Deleted::NoContent)
    }

    /// List security events
    ///
    /// The audit trail, newest first: sign-ins and failures (with surface and method),
    /// second-factor changes, password changes and resets, throttling, refresh-token reuse,
    /// admin actions, client changes, key rotation. Kept for `--audit-retention-days`.
    #[oai(
        path = "/api/v1/admin/events",
        method = "get",
        operation_id = "adminListEvents"
    )]
    async fn events(
        &self,
        auth: Auth,
        /// Only events about this user id.
        user_id: Query<Option<String>>,
        /// Only this kind (`login_failed`, …).
        kind: Query<Option<String>>,
        /// The `next` of the previous page.
        before: Query<Option<String>>,
        /// 1–200; default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<super::mfa::EventList>> {
        let p = principal(&self.services, auth).await?;
        let query = super::mfa::event_query(
            user_id.0.filter(|u| !u.is_empty()),
            kind.0,
            before.0,
            limit.0,
        )
        .ok_or_else(super::mfa::bad_cursor)?;
        let page = self.services.admin.events(&p, query).await?;
        Ok(Json(super::mfa::EventList::of(page)))
    }

    /// Issue an initial access token
    ///
    /// Lets its holder register OAuth clients at `POST /oauth2/register` (Dynamic Client
    /// Registration, RFC 7591) without an account: up to `uses` clients until it expires,
    /// each owned by you. Admins only (403 `admin_role_required` otherwise).
    #[oai(
        path = "/api/v1/admin/initial-access-tokens",
        method = "post",
        operation_id = "adminIssueInitialAccessToken"
    )]
    async fn issue_initial_access_token(
        &self,
        auth: Auth,
        body: Json<InitialAccessTokenRequest>,
    ) -> Result<IssuedToken> {
        let p = principal(&self.services, auth).await?;
        let (ttl, uses) = (body.0.expires_in.unwrap_or(86400), body.0.uses.unwrap_or(1));
        let (token, expires_at) = self
            .services
            .clients
            .issue_initial_access_token(&p, ttl, uses)
            .await?;
        Ok(IssuedToken::Created(Json(InitialAccessToken {
            token,
            expires_at: crate::clock::rfc3339(expires_at),
            uses,
        })))
    }
}
