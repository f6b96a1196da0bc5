//! `/api/v1/sessions`: first-party login, refresh and logout.

use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiTags,
    accounts::opt,
    types::{LoginRequest, RefreshRequest, TokenPair},
};
use crate::{
    http::error::Result,
    service::{Services, accounts::CaptchaAnswer},
};

pub struct SessionsApi {
    pub services: Services,
}

#[derive(ApiResponse)]
enum LoggedOut {
    /// The session is over; its refresh and access tokens no longer work.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Log in
    ///
    /// Exchanges a username or email and password for a token pair. Unknown accounts, wrong
    /// passwords and disabled accounts get the same 401. After 5 failures within 15 minutes an
    /// account is answered 429 with `Retry-After`. When the captcha policy covers login,
    /// `captcha_id` and `captcha_answer` are required.
    #[oai(path = "/api/v1/sessions", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &poem::Request,
        body: Json<LoginRequest>,
    ) -> Result<Json<TokenPair>> {
        let from = crate::http::client_ip(req, self.services.trust_forwarded_for);
        let body = body.0;
        let captcha = CaptchaAnswer {
            id: opt(body.captcha_id),
            answer: opt(body.captcha_answer),
        };
        let session = self
            .services
            .accounts
            .login(&body.login, &body.password, &captcha, from)
            .await?;
        Ok(Json(TokenPair::of(session, &self.services.public_url)))
    }

    /// Refresh tokens
    ///
    /// Exchanges a refresh token for a new pair. Each refresh token works once; presenting a
    /// used one again revokes the whole session (reuse detection).
    #[oai(
        path = "/api/v1/sessions/refresh",
        method = "post",
        operation_id = "refreshSession"
    )]
    async fn refresh(&self, body: Json<RefreshRequest>) -> Result<Json<TokenPair>> {
        let session = self.services.sessions.refresh(&body.refresh_token).await?;
        Ok(Json(TokenPair::of(session, &self.services.public_url)))
    }

    /// Log out
    ///
    /// Revokes the session the refresh token belongs to. Unknown tokens are accepted too.
    #[oai(
        path = "/api/v1/sessions/logout",
        method = "post",
        operation_id = "logout"
    )]
    async fn logout(&self, body: Json<RefreshRequest>) -> Result<LoggedOut> {
        self.services.sessions.logout(&body.refresh_token).await?;
        Ok(LoggedOut::NoContent)
    }
}
