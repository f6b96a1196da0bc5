//! `account-api.md`: `/api/registered`, `/api/login`, `/api/user_info/`,
//! `/api/update_password/`, `/api/update_show_name/`, `/api/update_key/`,
//! `/api/forget_password/`, `/api/upload_avatar/`, and the captcha they take
//! (`GET /api/get_verification_code/`).
//!
//! Every answer is HTTP 200 with `{"message", "code"}`; the codes and messages are the
//! document's. Its captcha (`verification_code_key` + `verification_code`) is always required
//! where the document lists it, whatever `--captcha` says.

use poem::Request;
use poem_openapi::{
    ApiResponse, Multipart, Object, OpenApi, Union,
    param::Header,
    payload::{Binary, Json},
    types::multipart::Upload,
};
use serde::Deserialize;

use super::{Params, ParamsError, given, principal};
use crate::service::{
    Principal, ServiceError, Services,
    accounts::{CaptchaAnswer, Registration},
};

/// The answer to any method but POST (`GET /api/get_verification_code/` excepted).
pub const POST_ONLY: &str = "请使用Post请求";
/// `/api/upload_avatar/`'s catch-all.
pub const UPLOAD_FAILED: &str = "你不对劲！为什么报错了？";
const CAPTCHA_EMPTY: &str = "验证码或者验证码秘钥不能为空！";
const CAPTCHA_WRONG: &str = "验证码错误或者过期！";
const ILLEGAL_QUERY: &str = "小宝贝这是非法查询哦(๑•̀ㅂ•́)و✧";
const INPUT_WRONG: &str = "输入信息有误重新输入";
/// Not in the document (its server had no login throttling).
const THROTTLED: &str = "尝试次数过多，请稍后再试";
/// Too many sign-ins waiting for the password hasher (not in the document: a 503 that asks
/// the client to retry, like the storage fault).
const BUSY: &str = "服务器繁忙，请稍后再试";
/// Uploads smaller than this were refused by the original server (603); the rule is kept.
pub const MIN_AVATAR_BYTES: usize = 10 * 1024;

pub struct AccountApi {
    pub services: Services,
}

/// The document's reply: `{"message": "…", "code": …}`, always HTTP 200.
#[derive(Debug, Object)]
pub struct AccountReply {
    /// The document's message, verbatim (for `/api/login`, the token).
    pub message: String,
    /// The document's in-body status code.
    pub code: i32,
}

impl AccountReply {
    pub fn text(code: i32, message: &str) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }
}

/// `/api/user_info/`'s user.
#[derive(Debug, Object)]
pub struct UserInfo {
    /// Which user this is: 1 for the first account, 2 for the second, ….
    pub id: u64,
    /// The user's personal API key (`/api/update_key/` replaces it); empty if none.
    pub key: String,
    /// Login name.
    pub name: String,
    /// The token this request was made with.
    pub token: String,
    pub show_name: String,
    pub email: String,
    /// File name of the avatar; empty if none.
    pub avatar: String,
}

/// The user on success, the document's message otherwise.
#[derive(Debug, Union)]
pub enum UserInfoMessage {
    User(UserInfo),
    Text(String),
}

/// `/api/user_info/`'s reply: `message` is the user object on success.
#[derive(Debug, Object)]
pub struct UserInfoReply {
    pub message: UserInfoMessage,
    pub code: i32,
}

#[derive(Debug, Object, Deserialize)]
pub struct RegisteredParams {
    /// Display name (need not be unique).
    pub show_name: Option<String>,
    /// Login name (unique).
    pub username: Option<String>,
    /// Password (stored with scrypt).
    pub passwd: Option<String>,
    /// Email address (unique).
    pub email: Option<String>,
    /// The server's registration key (`--registration-key`), when registration is by
    /// invitation.
    pub key: Option<String>,
    /// The captcha's key (the `VerificationCodeKey` header of `/api/get_verification_code/`).
    pub verification_code_key: Option<String>,
    /// The captcha's text.
    pub verification_code: Option<String>,
    /// Not in the document: the mailed code, needed only when the server requires verified
    /// addresses.
    pub email_code: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct AccountLoginParams {
    /// Login name (or email).
    pub username: Option<String>,
    pub passwd: Option<String>,
    pub verification_code_key: Option<String>,
    pub verification_code: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct AccountTokenParams {
    /// The token `/api/login` returned.
    pub token: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct UpdatePasswordParams {
    pub username: Option<String>,
    pub old_passwd: Option<String>,
    pub new_passwd: Option<String>,
    pub verification_code_key: Option<String>,
    pub verification_code: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct UpdateShowNameParams {
    pub token: Option<String>,
    pub new_show_name: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct ForgetPasswordParams {
    /// The server's `--forget-password-key`.
    pub key: Option<String>,
    /// Login name.
    pub name: Option<String>,
    pub new_passwd: Option<String>,
    pub email: Option<String>,
    pub verification_code_key: Option<String>,
    pub verification_code: Option<String>,
}

#[derive(Debug, Multipart)]
pub struct AvatarUpload {
    /// The image (PNG, JPEG, GIF or WebP), at least 10 KiB.
    pub file: Option<Upload>,
}

#[derive(ApiResponse)]
enum CaptchaImage {
    /// The captcha as a PNG; its key is in the `VerificationCodeKey` header.
    #[oai(status = 200, content_type = "image/png")]
    Png(
        Binary<Vec<u8>>,
        #[oai(header = "VerificationCodeKey")] String,
        #[oai(header = "Cache-Control")] String,
        /// Dev mode only: the answer, so scripted clients can get through.
        #[oai(header = "VerificationCodeAnswer")]
        Option<String>,
    ),
}

fn reply(code: i32, message: &str) -> Json<AccountReply> {
    Json(AccountReply::text(code, message))
}

/// The captcha fields, or the document's "may not be empty" code.
fn captcha(
    key: &Option<String>,
    code: &Option<String>,
    empty_code: i32,
) -> Result<CaptchaAnswer, Json<AccountReply>> {
    match (given(key), given(code)) {
        (Some(k), Some(c)) => Ok(CaptchaAnswer {
            id: Some(k.to_string()),
            answer: Some(c.to_string()),
        }),
        _ => Err(reply(empty_code, CAPTCHA_EMPTY)),
    }
}

/// Unexpected failures are logged; the caller gets the document's generic code.
fn internal(e: &ServiceError, code: i32, message: &str) -> Json<AccountReply> {
    tracing::error!(error = %e, "account API failure");
    reply(code, message)
}

impl AccountApi {
    async fn check_captcha(
        &self,
        answer: &CaptchaAnswer,
        wrong_code: i32,
    ) -> Result<(), Json<AccountReply>> {
        match self
            .services
            .captchas
            .verify(answer.id.as_deref(), answer.answer.as_deref())
            .await
        {
            Ok(()) => Ok(()),
            Err(ServiceError::CaptchaRequired | ServiceError::CaptchaInvalid) => {
                Err(reply(wrong_code, CAPTCHA_WRONG))
            }
            Err(e) => Err(internal(&e, 404, "报错")),
        }
    }

    /// The principal for a `token` field; `None` when it is missing, `Some(Err(403 reply))`
    /// when it is not live.
    async fn by_token(
        &self,
        token: &Option<String>,
    ) -> Option<Result<(Principal, String), Json<AccountReply>>> {
        let token = given(token)?;
        Some(match principal(&self.services, token).await {
            Some(p) => Ok((p, token.to_string())),
            None => Err(reply(403, ILLEGAL_QUERY)),
        })
    }
}

#[OpenApi(tag = "crate::http::api::ApiTags::CompatibleAccount")]
impl AccountApi {
    /// Register (account API)
    ///
    /// Codes: 200 注册成功 · 403 the registration key is wrong (`--registration invite`) ·
    /// 404 unexpected error · 500 not POST · 503 registration closed (`--registration closed`)
    /// · 504 captcha wrong or expired · 505 captcha fields empty · 603 registration refused
    /// (a field breaks a rule, the password is too guessable, or the server requires a mailed
    /// code and `email_code` is missing or wrong) · 604 username or email taken · 666 no data.
    /// The account gets an API key at once (`key` in `/api/user_info/`).
    #[oai(
        path = "/api/registered",
        method = "post",
        operation_id = "compatAccountRegister"
    )]
    async fn registered(&self, params: Params<RegisteredParams>) -> Json<AccountReply> {
        let p = match params.into_inner() {
            Ok(p) => p,
            Err(ParamsError::Missing) => return reply(666, "宝贝数据呢？"),
            Err(ParamsError::Malformed(_)) => return reply(400, "位置错误"),
        };
        let (Some(username), Some(password), Some(email)) =
            (given(&p.username), given(&p.passwd), given(&p.email))
        else {
            return reply(666, "宝贝数据呢？");
        };
        let answer = match captcha(&p.verification_code_key, &p.verification_code, 505) {
            Ok(a) => a,
            Err(r) => return r,
        };
        let registration = Registration {
            username: username.into(),
            email: email.into(),
            password: password.into(),
            display_name: p.show_name.clone(),
            email_code: p.email_code.clone(),
            captcha: answer,
            registration_key: p.key.clone(),
            always_verify_email: false,
            always_check_captcha: true,
            issue_api_key: true,
            // Registration here starts no session: nothing to record.
            origin: Default::default(),
        };
        match self.services.accounts.register_user(registration).await {
            // The document's accounts always have a key; it is issued with the account.
            Ok(_) => reply(200, "注册成功"),
            Err(e) => match e {
                ServiceError::RegistrationClosed => reply(503, "小宝贝你没有开启注册功能哦！！"),
                ServiceError::InvalidRegistrationKey => reply(403, "小宝贝这是非法注册哦(๑•̀ㅂ•́)و✧"),
                ServiceError::CaptchaRequired | ServiceError::CaptchaInvalid => {
                    reply(504, CAPTCHA_WRONG)
                }
                ServiceError::UsernameTaken | ServiceError::EmailTaken => {
                    reply(604, "用户名或邮箱已存在")
                }
                ServiceError::Invalid(_)
                | ServiceError::WeakPassword(_)
                | ServiceError::EmailCodeRequired
                | ServiceError::InvalidCode
                | ServiceError::CodeExpired => reply(603, "注册失败"),
                other => internal(&other, 404, "报错"),
            },
        }
    }

    /// Log in (account API)
    ///
    /// On success `message` is the access token (as in the document). Codes: 200 · 500 not
    /// POST · 503 captcha wrong or expired · 504 captcha fields empty · 604 wrong name or
    /// password · 429 too many failed attempts (not in the document).
    #[oai(
        path = "/api/login",
        method = "post",
        operation_id = "compatAccountLogin"
    )]
    async fn login(&self, req: &Request, params: Params<AccountLoginParams>) -> Json<AccountReply> {
        let Ok(p) = params.into_inner() else {
            return reply(604, "账号或密码错误");
        };
        let answer = match captcha(&p.verification_code_key, &p.verification_code, 504) {
            Ok(a) => a,
            Err(r) => return r,
        };
        if let Err(r) = self.check_captcha(&answer, 503).await {
            return r;
        }
        let (Some(login), Some(password)) = (given(&p.username), given(&p.passwd)) else {
            return reply(604, "账号或密码错误");
        };
        let origin = super::origin(&self.services, req, "compat-account");
        let user = match self
            .services
            .accounts
            .authenticate_password_only(login, password, &origin)
            .await
        {
            Ok(u) => u,
            Err(ServiceError::InvalidCredentials) => return reply(604, "账号或密码错误"),
            Err(ServiceError::RateLimited { .. }) => return reply(429, THROTTLED),
            Err(ServiceError::Overloaded { .. }) => return reply(503, BUSY),
            Err(e) => return internal(&e, 604, "账号或密码错误"),
        };
        match self.services.sessions.start(user, &origin).await {
            Ok(session) => Json(AccountReply {
                message: session.access_token,
                code: 200,
            }),
            Err(e) => internal(&e, 604, "账号或密码错误"),
        }
    }

    /// The signed-in user (account API)
    ///
    /// On success `message` is the user. Codes: 200 · 403 the token is invalid, expired or
    /// revoked · 404 no token · 500 not POST.
    #[oai(
        path = "/api/user_info/",
        method = "post",
        operation_id = "compatAccountUserInfo"
    )]
    async fn user_info(&self, params: Params<AccountTokenParams>) -> Json<UserInfoReply> {
        let text = |code, message: &str| {
            Json(UserInfoReply {
                message: UserInfoMessage::Text(message.into()),
                code,
            })
        };
        let token = params.into_inner().ok().and_then(|p| p.token);
        let (p, token) = match self.by_token(&token).await {
            Some(Ok(found)) => found,
            Some(Err(_)) => return text(403, ILLEGAL_QUERY),
            None => return text(404, "搁着闹呢？"),
        };
        let key = match self.services.accounts.revealed_api_key(&p.user.id).await {
            Ok(k) => k.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "account API failure");
                return text(404, "搁着闹呢？");
            }
        };
        let u = p.user;
        Json(UserInfoReply {
            message: UserInfoMessage::User(UserInfo {
                id: u.number,
                key,
                show_name: u.shown_name(),
                avatar: u
                    .avatar_etag
                    .as_ref()
                    .map(|e| format!("{e}.png"))
                    .unwrap_or_default(),
                name: u.username,
                token,
                email: u.email,
            }),
            code: 200,
        })
    }

    /// Change the password (account API)
    ///
    /// Checks the current password like a login (and counts failures like one); every
    /// session of the user ends. Codes: 200 好耶！修改成功~ · 404 wrong name or password, or
    /// the new password breaks a rule · 500 not POST · 503 captcha wrong or expired · 504
    /// captcha fields empty · 429 too many failed attempts (not in the document).
    #[oai(
        path = "/api/update_password/",
        method = "post",
        operation_id = "compatAccountUpdatePassword"
    )]
    async fn update_password(
        &self,
        req: &Request,
        params: Params<UpdatePasswordParams>,
    ) -> Json<AccountReply> {
        let Ok(p) = params.into_inner() else {
            return reply(404, INPUT_WRONG);
        };
        let answer = match captcha(&p.verification_code_key, &p.verification_code, 504) {
            Ok(a) => a,
            Err(r) => return r,
        };
        if let Err(r) = self.check_captcha(&answer, 503).await {
            return r;
        }
        let (Some(login), Some(old), Some(new)) = (
            given(&p.username),
            given(&p.old_passwd),
            given(&p.new_passwd),
        ) else {
            return reply(404, INPUT_WRONG);
        };
        let origin = super::origin(&self.services, req, "compat-account");
        match self
            .services
            .accounts
            .change_password_by_login(login, old, new, &origin)
            .await
        {
            Ok(()) => reply(200, "好耶！修改成功~"),
            Err(ServiceError::RateLimited { .. }) => reply(429, THROTTLED),
            Err(ServiceError::Overloaded { .. }) => reply(503, BUSY),
            Err(
                ServiceError::InvalidCredentials
                | ServiceError::Invalid(_)
                | ServiceError::WeakPassword(_),
            ) => reply(404, INPUT_WRONG),
            Err(e) => internal(&e, 404, INPUT_WRONG),
        }
    }

    /// Change the display name (account API)
    ///
    /// Codes: 200 好诶！修改成功~ · 403 the token is invalid · 404 missing token or name, or
    /// the name breaks a rule · 500 not POST.
    #[oai(
        path = "/api/update_show_name/",
        method = "post",
        operation_id = "compatAccountUpdateShowName"
    )]
    async fn update_show_name(&self, params: Params<UpdateShowNameParams>) -> Json<AccountReply> {
        let Ok(p) = params.into_inner() else {
            return reply(404, INPUT_WRONG);
        };
        let Some(name) = given(&p.new_show_name) else {
            return reply(404, INPUT_WRONG);
        };
        let principal = match self.by_token(&p.token).await {
            Some(Ok((principal, _))) => principal,
            Some(Err(r)) => return r,
            None => return reply(404, INPUT_WRONG),
        };
        match self
            .services
            .accounts
            .update_display_name(&principal, Some(name))
            .await
        {
            Ok(_) => reply(200, "好诶！修改成功~"),
            Err(ServiceError::Invalid(_)) => reply(404, INPUT_WRONG),
            Err(ServiceError::InvalidToken) => reply(403, ILLEGAL_QUERY),
            Err(e) => internal(&e, 404, INPUT_WRONG),
        }
    }

    /// Replace the API key (account API)
    ///
    /// The old key stops working at once; `/api/user_info/` shows the new one. Codes: 200
    /// 呐呐呐呐！修改成功了呢~ · 403 the token is invalid · 404 no token · 500 not POST.
    #[oai(
        path = "/api/update_key/",
        method = "post",
        operation_id = "compatAccountUpdateKey"
    )]
    async fn update_key(&self, params: Params<AccountTokenParams>) -> Json<AccountReply> {
        let token = params.into_inner().ok().and_then(|p| p.token);
        let principal = match self.by_token(&token).await {
            Some(Ok((principal, _))) => principal,
            Some(Err(r)) => return r,
            None => return reply(404, INPUT_WRONG),
        };
        match self.services.accounts.rotate_api_key(&principal).await {
            Ok(_) => reply(200, "呐呐呐呐！修改成功了呢~"),
            Err(ServiceError::InvalidToken) => reply(403, ILLEGAL_QUERY),
            Err(e) => internal(&e, 404, INPUT_WRONG),
        }
    }

    /// Set a forgotten password with the server key (account API)
    ///
    /// Anyone holding `--forget-password-key` can set the password of the user with this
    /// `name` and `email`; every session of the user ends and a notice is mailed. Off unless
    /// the key is configured. Codes: 200 · 403 not enabled · 404 the key is wrong · 500 not
    /// POST · 501 no user with that name and email, or the new password breaks a rule · 503
    /// captcha wrong or expired · 504 captcha fields empty.
    #[oai(
        path = "/api/forget_password/",
        method = "post",
        operation_id = "compatAccountForgetPassword"
    )]
    async fn forget_password(
        &self,
        req: &poem::Request,
        params: Params<ForgetPasswordParams>,
    ) -> Json<AccountReply> {
        const NOT_ENABLED: &str = "小宝贝你没有开启忘记密码功能哦(๑•̀ㅂ•́)و✧";
        const BAD_DATA: &str = "这个数据你是认真的嘛(。﹏。)";
        if self
            .services
            .accounts
            .policy()
            .forget_password_key
            .as_deref()
            .is_none_or(str::is_empty)
        {
            return reply(403, NOT_ENABLED);
        }
        let Ok(p) = params.into_inner() else {
            return reply(501, BAD_DATA);
        };
        let answer = match captcha(&p.verification_code_key, &p.verification_code, 504) {
            Ok(a) => a,
            Err(r) => return r,
        };
        if let Err(r) = self.check_captcha(&answer, 503).await {
            return r;
        }
        let (Some(name), Some(email), Some(new)) =
            (given(&p.name), given(&p.email), given(&p.new_passwd))
        else {
            return reply(501, BAD_DATA);
        };
        match self
            .services
            .accounts
            .reset_password_by_key(
                p.key.as_deref().unwrap_or_default(),
                name,
                email,
                new,
                &super::origin(&self.services, req, "compat-account"),
            )
            .await
        {
            Ok(()) => reply(200, "修改成功啦~建议去配置文件中关闭忘记密码功能哦~"),
            Err(ServiceError::ResetByKeyDisabled) => reply(403, NOT_ENABLED),
            Err(ServiceError::InvalidResetKey) => reply(404, "大黑阔别乱搞，莎莎好怕怕(*/ω＼*)"),
            Err(
                ServiceError::NotFound(_)
                | ServiceError::Invalid(_)
                | ServiceError::WeakPassword(_),
            ) => reply(501, BAD_DATA),
            Err(e) => internal(&e, 501, BAD_DATA),
        }
    }

    /// Upload an avatar (account API)
    ///
    /// Multipart with the image in `file` and the token in the `token` header. The image is
    /// re-encoded as a PNG (at most 512×512); `message` is its file name. Codes: 200 · 169
    /// the upload is not a readable PNG, JPEG, GIF or WebP image (or not multipart) · 403 the
    /// token is missing or invalid · 500 not POST · 603 the file is under 10 KiB. A token of a
    /// deleted user is just invalid (403), so the document's 404 does not occur.
    #[oai(
        path = "/api/upload_avatar/",
        method = "post",
        operation_id = "compatAccountUploadAvatar"
    )]
    async fn upload_avatar(
        &self,
        #[oai(name = "token")] token: Header<Option<String>>,
        upload: AvatarUpload,
    ) -> Json<AccountReply> {
        let principal = match self.by_token(&token.0).await {
            Some(Ok((principal, _))) => principal,
            Some(Err(r)) => return r,
            None => return reply(403, ILLEGAL_QUERY),
        };
        let Some(file) = upload.file else {
            return reply(169, UPLOAD_FAILED);
        };
        let bytes = match file.into_vec().await {
            Ok(b) => b,
            Err(_) => return reply(169, UPLOAD_FAILED),
        };
        if bytes.len() < MIN_AVATAR_BYTES {
            return reply(603, "它实在是太小了，莎酱真的一点感觉都没有o(TヘTo)");
        }
        match self.services.avatars.set(&principal, bytes).await {
            Ok(user) => Json(AccountReply {
                message: user
                    .avatar_etag
                    .map(|e| format!("{e}.png"))
                    .unwrap_or_default(),
                code: 200,
            }),
            Err(ServiceError::InvalidToken) => reply(403, ILLEGAL_QUERY),
            Err(
                ServiceError::UnsupportedImage
                | ServiceError::InvalidImage(_)
                | ServiceError::TooLarge { .. },
            ) => reply(169, UPLOAD_FAILED),
            Err(e) => internal(&e, 169, UPLOAD_FAILED),
        }
    }

    /// A captcha for the account API
    ///
    /// The image is the body (PNG); the key to send back as `verification_code_key` is in the
    /// `VerificationCodeKey` header. Single use, 5 minutes.
    #[oai(
        path = "/api/get_verification_code/",
        method = "get",
        operation_id = "compatAccountCaptcha"
    )]
    async fn verification_code(&self) -> crate::http::error::Result<CaptchaImage> {
        let challenge = self.services.captchas.create().await?;
        Ok(CaptchaImage::Png(
            Binary(challenge.png),
            challenge.id,
            "no-store".into(),
            self.services.dev.then_some(challenge.answer),
        ))
    }
}
