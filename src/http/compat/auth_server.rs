//! `auth-server-api.md`: `/oauth/sendCode`, `/oauth/checkUserId`, `/oauth/register`,
//! `/oauth/login` (HTTP 200 envelopes), the Spring Security OAuth style `/oauth/token` and
//! `/oauth/check_token` (real 400/401 with `{error, error_description}`), and `/oauth/revoke`,
//! which the document lists as unfinished.
//!
//! The document's `id` is our username (the login name); its `username` is the display name.
//! Its client (`watup`) is an ordinary client with the password grant enabled, created with
//! the CLI or a seed file; there is no built-in one.

use std::collections::HashMap;

use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{BAD_PARAMS, Envelope, Nothing, Params, failed, given};
use crate::{
    http::oauth2::presented_client,
    service::views::UserView,
    service::{
        ServiceError, Services,
        accounts::{CaptchaAnswer, Registration},
        codes::CodePurpose,
        oauth2::{OAuthError, TokenRequest},
    },
};

pub struct AuthServerApi {
    pub services: Services,
}

/// Spring's answer for a token it does not know (also expired or revoked ones).
const NOT_RECOGNISED: &str = "Token was not recognised";

#[derive(Debug, Object, Deserialize)]
pub struct SendCodeParams {
    /// The address to verify.
    pub email: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct CheckUserIdParams {
    /// The login name to check.
    pub id: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct AuthRegisterParams {
    /// Login name.
    pub id: Option<String>,
    /// Display name.
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    /// The code `/oauth/sendCode` mailed.
    pub code: Option<String>,
    /// Not in the document: a captcha, when the server requires one (`--captcha`).
    pub captcha_id: Option<String>,
    pub captcha_answer: Option<String>,
    /// Not in the document: the registration key, when registration is by invitation.
    pub registration_key: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct AuthLoginParams {
    /// Login name (or email).
    pub id: Option<String>,
    pub password: Option<String>,
    /// Not in the document: a captcha, when the server requires one at login.
    pub captcha_id: Option<String>,
    pub captcha_answer: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct AuthTokenParams {
    /// `password` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The login name (the document's `id`).
    pub username: Option<String>,
    pub password: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// Or HTTP Basic.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct TokenOnly {
    pub token: Option<String>,
}

/// AuthTokens and who they are for (`/oauth/login`'s data, `/oauth/token`'s body).
#[derive(Debug, Object)]
pub struct AuthTokens {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Empty when the client may not use the `refresh_token` grant.
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    pub scope: String,
    /// Login name.
    pub id: String,
    pub email: String,
    /// Display name.
    pub username: String,
}

/// `/oauth/check_token`'s answer (Spring's, with the document's extra claims).
#[derive(Debug, Object)]
pub struct CheckedToken {
    /// Display name, as in the document.
    #[oai(skip_serializing_if_is_none)]
    pub user_name: Option<String>,
    pub scope: Vec<String>,
    pub active: bool,
    /// Login name.
    #[oai(skip_serializing_if_is_none)]
    pub id: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    /// The client the token was issued to; absent for first-party tokens (from the login
    /// endpoints).
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    /// Display name.
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<String>,
}

/// Spring Security OAuth's error body.
#[derive(Debug, Object)]
pub struct SpringError {
    pub error: String,
    pub error_description: String,
}

#[derive(ApiResponse)]
enum TokenReply {
    #[oai(status = 200)]
    Ok(Json<AuthTokens>, #[oai(header = "Cache-Control")] String),
    /// RFC 6749 §5.2 errors; a wrong username or password is `invalid_grant` 用户名或密码错误.
    #[oai(status = 400)]
    BadRequest(Json<SpringError>),
    /// The client id or secret is wrong.
    #[oai(status = 401)]
    Unauthorized(
        Json<SpringError>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    #[oai(status = 500)]
    Failed(Json<SpringError>),
}

#[derive(ApiResponse)]
enum CheckReply {
    #[oai(status = 200)]
    Ok(Json<CheckedToken>),
    /// `invalid_token` / `Token was not recognised`: unknown, expired or revoked.
    #[oai(status = 400)]
    BadRequest(Json<SpringError>),
    #[oai(status = 500)]
    Failed(Json<SpringError>),
}

fn spring(error: &str, description: &str) -> Json<SpringError> {
    Json(SpringError {
        error: error.into(),
        error_description: description.into(),
    })
}

fn tokens(
    access_token: String,
    refresh_token: Option<String>,
    expires_in: i64,
    scope: String,
    user: UserView,
) -> AuthTokens {
    AuthTokens {
        access_token,
        token_type: "bearer".into(),
        refresh_token: refresh_token.unwrap_or_default(),
        expires_in,
        scope,
        username: user.shown_name(),
        id: user.username,
        email: user.email,
    }
}

#[OpenApi(tag = "crate::http::api::ApiTags::CompatibleAuthServer")]
impl AuthServerApi {
    /// Mail a registration code (auth-server API)
    ///
    /// Always `验证码发送成功` for a valid address: an address that already has an account
    /// gets a "you already have an account" mail instead of a code, so the answer does not
    /// reveal who is registered (the document's `该邮箱已被绑定` comes from `/oauth/register`).
    /// `data` is the code only in dev mode, else `null`. Failures: 400 `验证码依然有效` (a code
    /// was sent less than a minute ago), 400 invalid address, 503 mail failing.
    #[oai(
        path = "/oauth/sendCode",
        method = "post",
        operation_id = "compatAuthSendCode"
    )]
    async fn send_code(
        &self,
        req: &Request,
        params: Params<SendCodeParams>,
    ) -> Json<Envelope<String>> {
        let Some(email) = params.into_inner().ok().and_then(|p| p.email) else {
            return Json(Envelope::error(400, BAD_PARAMS));
        };
        match self
            .services
            .accounts
            .request_code(
                &email,
                CodePurpose::Register,
                crate::http::request_lang(req),
            )
            .await
        {
            Ok(code) => Json(Envelope {
                code: 200,
                message: "验证码发送成功".into(),
                data: code.filter(|_| self.services.dev),
            }),
            Err(e) => failed(&e),
        }
    }

    /// Check a login name (auth-server API)
    ///
    /// 200 `用户id合法` when free; 400 `用户id被占用` when taken; 400 with the rule when the name
    /// is not a valid username.
    #[oai(
        path = "/oauth/checkUserId",
        method = "post",
        operation_id = "compatAuthCheckUserId"
    )]
    async fn check_user_id(&self, params: Params<CheckUserIdParams>) -> Json<Envelope<Nothing>> {
        let Some(id) = params.into_inner().ok().and_then(|p| p.id) else {
            return Json(Envelope::error(400, BAD_PARAMS));
        };
        match self.services.accounts.username_available(&id).await {
            Ok(true) => Json(Envelope::done("用户id合法")),
            Ok(false) => Json(Envelope::error(400, "用户id被占用")),
            Err(e) => failed(&e),
        }
    }

    /// Register (auth-server API)
    ///
    /// Always needs the mailed `code`. Failures (all 400): `验证码错误` (wrong, missing or
    /// used), `验证码过期`, `用户已存在` (login name taken), `该邮箱已被绑定`, and invalid fields
    /// or a guessable password with the rule.
    #[oai(
        path = "/oauth/register",
        method = "post",
        operation_id = "compatAuthRegister"
    )]
    async fn register(&self, params: Params<AuthRegisterParams>) -> Json<Envelope<Nothing>> {
        let Ok(p) = params.into_inner() else {
            return Json(Envelope::error(400, BAD_PARAMS));
        };
        let registration = Registration {
            username: p.id.unwrap_or_default(),
            email: p.email.unwrap_or_default(),
            password: p.password.unwrap_or_default(),
            display_name: p.username,
            email_code: p.code,
            captcha: CaptchaAnswer {
                id: p.captcha_id,
                answer: p.captcha_answer,
            },
            registration_key: p.registration_key,
            always_verify_email: true,
            always_check_captcha: false,
            issue_api_key: false,
            // Registration here starts no session: nothing to record.
            origin: Default::default(),
        };
        match self.services.accounts.register_user(registration).await {
            Ok(_) => Json(Envelope::done("注册成功")),
            Err(ServiceError::InvalidCode | ServiceError::EmailCodeRequired) => {
                Json(Envelope::error(400, "验证码错误"))
            }
            Err(ServiceError::CodeExpired) => Json(Envelope::error(400, "验证码过期")),
            Err(ServiceError::UsernameTaken) => Json(Envelope::error(400, "用户已存在")),
            Err(ServiceError::EmailTaken) => Json(Envelope::error(400, "该邮箱已被绑定")),
            Err(e) => {
                let (code, message) = super::undocumented(&e);
                // The document answers every refusal with 400.
                Json(Envelope::error(
                    if code == 500 { 500 } else { 400 },
                    message,
                ))
            }
        }
    }

    /// Log in (auth-server API)
    ///
    /// First-party tokens: the access token works on every API of this server; refresh it
    /// with `POST /api/v1/sessions/refresh`. Failure: 400 `用户名或密码错误` (also while the
    /// account is throttled, with the wait in the message).
    #[oai(
        path = "/oauth/login",
        method = "post",
        operation_id = "compatAuthLogin"
    )]
    async fn login(
        &self,
        req: &Request,
        params: Params<AuthLoginParams>,
    ) -> Json<Envelope<AuthTokens>> {
        let wrong = || Json(Envelope::error(400, "用户名或密码错误"));
        let Ok(p) = params.into_inner() else {
            return wrong();
        };
        let (Some(id), Some(password)) = (given(&p.id), given(&p.password)) else {
            return wrong();
        };
        let captcha = CaptchaAnswer {
            id: p.captcha_id.clone(),
            answer: p.captcha_answer.clone(),
        };
        let origin = super::origin(&self.services, req, "compat-auth-server");
        match self
            .services
            .accounts
            .login_password_only(id, password, &captcha, &origin)
            .await
        {
            Ok(s) => Json(Envelope::ok(
                "成功",
                tokens(
                    s.access_token,
                    Some(s.refresh_token),
                    s.expires_in,
                    s.scope,
                    s.user,
                ),
            )),
            Err(ServiceError::InvalidCredentials) => wrong(),
            Err(ServiceError::RateLimited { retry_after }) => Json(Envelope::error(
                400,
                format!("用户名或密码错误次数过多，请{retry_after}秒后再试"),
            )),
            Err(e) => {
                let (code, message) = super::undocumented(&e);
                Json(Envelope::error(
                    if code == 500 { 500 } else { 400 },
                    message,
                ))
            }
        }
    }

    /// Get or refresh tokens (auth-server API, Spring style)
    ///
    /// `grant_type=password` (`username` is the login name) or `refresh_token`, with the
    /// client's credentials in the body or HTTP Basic. The client must allow the grant. Answers
    /// like Spring Security OAuth: 200 with the tokens, 400/401 with `error` and
    /// `error_description` (RFC 6749 §5.2).
    #[oai(
        path = "/oauth/token",
        method = "post",
        operation_id = "compatAuthToken"
    )]
    async fn token(&self, req: &Request, params: Params<AuthTokenParams>) -> TokenReply {
        let p = match params.into_inner() {
            Ok(p) => p,
            Err(_) => {
                return TokenReply::BadRequest(spring(
                    "invalid_request",
                    "the parameters could not be read",
                ));
            }
        };
        let grant_type = p.grant_type.clone().unwrap_or_default();
        if grant_type != "password" && grant_type != "refresh_token" {
            return TokenReply::BadRequest(spring(
                "unsupported_grant_type",
                &format!("Unsupported grant type: {grant_type}"),
            ));
        }
        let mut fields: HashMap<String, String> = [
            ("grant_type", p.grant_type),
            ("username", p.username),
            ("password", p.password),
            ("refresh_token", p.refresh_token),
            ("scope", p.scope),
            ("client_id", p.client_id),
            ("client_secret", p.client_secret),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
        let result = match presented_client(req, &mut fields) {
            Ok(client) => {
                self.services
                    .oauth2
                    .token(TokenRequest {
                        params: fields,
                        client,
                        origin: super::origin(&self.services, req, "compat-auth-server"),
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(t) => match t.user {
                Some(user) => TokenReply::Ok(
                    Json(tokens(
                        t.access_token,
                        t.refresh_token,
                        t.expires_in,
                        t.scope,
                        user,
                    )),
                    "no-store".into(),
                ),
                None => TokenReply::Failed(spring("server_error", "no user for the tokens")),
            },
            Err(e @ OAuthError::InvalidClient { basic }) => TokenReply::Unauthorized(
                spring(e.code(), "Bad client credentials"),
                basic.then(|| "Basic realm=\"portcullis\"".to_string()),
            ),
            Err(OAuthError::BadCredentials) => {
                TokenReply::BadRequest(spring("invalid_grant", "用户名或密码错误"))
            }
            Err(OAuthError::ServerError(cause)) => {
                tracing::error!(error = %cause, "token endpoint failure");
                TokenReply::Failed(spring("server_error", "an unexpected error occurred"))
            }
            Err(e) => TokenReply::BadRequest(spring(e.code(), &e.to_string())),
        }
    }

    /// Check a token (auth-server API, Spring style)
    ///
    /// For any live access token of this server (first-party or a client's). The answer
    /// holds only what the token was granted: `email` with the `email` scope, the names
    /// (`id`, `username`, `user_name`) with `profile` (`api` and `all` grant both). Unknown,
    /// expired and revoked tokens — and refresh tokens — get 400 `invalid_token`
    /// `Token was not recognised`.
    #[oai(
        path = "/oauth/check_token",
        method = "post",
        operation_id = "compatAuthCheckToken"
    )]
    async fn check_token(&self, params: Params<TokenOnly>) -> CheckReply {
        let not_recognised = || CheckReply::BadRequest(spring("invalid_token", NOT_RECOGNISED));
        let Some(token) = params.into_inner().ok().and_then(|p| p.token) else {
            return CheckReply::BadRequest(spring(
                "invalid_request",
                "the `token` parameter is required",
            ));
        };
        let info = match self.services.sessions.introspect(token.trim()).await {
            Ok(Some(info)) if info.token_type == "Bearer" => info,
            Ok(_) => return not_recognised(),
            Err(e) => {
                tracing::error!(error = %e, "check_token failure");
                return CheckReply::Failed(spring("server_error", "an unexpected error occurred"));
            }
        };
        // Only what the token was granted: the address with `email`, the names with
        // `profile`. `api` (first-party sessions) and the document's own `all` are the
        // account's full access and show both.
        let scope: Vec<String> = info.scope.split_whitespace().map(str::to_string).collect();
        let granted = |wanted: &str| {
            scope
                .iter()
                .any(|s| s == wanted || s == "api" || s == "all")
        };
        let user = info.user.as_ref();
        let names = user.filter(|_| granted("profile"));
        CheckReply::Ok(Json(CheckedToken {
            user_name: names.map(UserView::shown_name),
            active: true,
            id: names.map(|u| u.username.clone()),
            exp: info.exp,
            email: user.filter(|_| granted("email")).map(|u| u.email.clone()),
            client_id: info.client_id.clone(),
            username: names.map(UserView::shown_name),
            scope,
        }))
    }

    /// Revoke a token (auth-server API; unfinished in the document)
    ///
    /// Ends the session of an access or refresh token, as a logout does; afterwards
    /// `/oauth/check_token` no longer recognises it. Always 200 `注销成功` for a `token`
    /// (unknown tokens included, as RFC 7009 §2.2 answers); 400 when there is none.
    #[oai(
        path = "/oauth/revoke",
        method = "post",
        operation_id = "compatAuthRevoke"
    )]
    async fn revoke(&self, params: Params<TokenOnly>) -> Json<Envelope<Nothing>> {
        let Some(token) = params
            .into_inner()
            .ok()
            .and_then(|p| p.token)
            .filter(|t| !t.trim().is_empty())
        else {
            return Json(Envelope::error(400, BAD_PARAMS));
        };
        match self.services.sessions.revoke_presented(token.trim()).await {
            Ok(()) => Json(Envelope::done("注销成功")),
            Err(e) => failed(&e),
        }
    }
}
