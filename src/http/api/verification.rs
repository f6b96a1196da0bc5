//! `/api/v1/verification-codes`, `/api/v1/password-resets`, `/api/v1/captchas`.

use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiTags,
    types::{CaptchaChallenge, CodePurpose, CodeRequest, CodeSent, PasswordResetRequest},
};
use crate::{
    http::error::Result,
    service::{Services, codes},
};

pub struct VerificationApi {
    pub services: Services,
}

#[derive(ApiResponse)]
enum Accepted {
    /// If the address can receive a code for this purpose, one is on its way. The answer is
    /// the same whether or not the address has an account.
    #[oai(status = 202)]
    Accepted(Json<CodeSent>),
}

#[derive(ApiResponse)]
enum PasswordReset {
    /// The password was changed and every session signed out. Log in with the new password.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
enum CaptchaCreated {
    /// A new single-use challenge.
    #[oai(status = 201)]
    Created(Json<CaptchaChallenge>),
}

#[OpenApi(tag = "ApiTags::Verification")]
impl VerificationApi {
    /// Email me a code
    ///
    /// Mails a 6-digit code (`register`) or an 8-character code (`reset_password`), valid for
    /// 10 minutes, single use, 5 wrong tries. A new code replaces the previous one; asking
    /// again within 60 s is 429 with `Retry-After`. When mail delivery is failing the answer
    /// is 503 `mail_unavailable`.
    #[oai(
        path = "/api/v1/verification-codes",
        method = "post",
        operation_id = "requestCode"
    )]
    async fn request_code(&self, req: &poem::Request, body: Json<CodeRequest>) -> Result<Accepted> {
        let purpose = match body.purpose {
            CodePurpose::Register => codes::CodePurpose::Register,
            CodePurpose::ResetPassword => codes::CodePurpose::ResetPassword,
        };
        let code = self
            .services
            .accounts
            .request_code(&body.email, purpose, crate::http::request_lang(req))
            .await?;
        Ok(Accepted::Accepted(Json(CodeSent::new(
            code,
            self.services.dev,
        ))))
    }

    /// Reset a forgotten password
    ///
    /// Takes the address, the code mailed for `reset_password` and a new password. Every
    /// session of the account ends and a notice is mailed; the caller is not signed in. Any
    /// problem with the code (wrong, expired, used, for another purpose or address) is the
    /// same 400 `invalid_code`.
    #[oai(
        path = "/api/v1/password-resets",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset_password(
        &self,
        req: &poem::Request,
        body: Json<PasswordResetRequest>,
    ) -> Result<PasswordReset> {
        self.services
            .accounts
            .reset_password(
                &body.email,
                &body.code,
                &body.new_password,
                &super::origin(&self.services, req),
            )
            .await?;
        Ok(PasswordReset::NoContent)
    }

    /// Get a captcha
    ///
    /// A PNG challenge for forms that require one (see `GET /api/v1/config`): send its
    /// `captcha_id` with the user's `captcha_answer` (case-insensitive). Valid for 5 minutes
    /// and consumed by the first attempt, right or wrong.
    #[oai(
        path = "/api/v1/captchas",
        method = "post",
        operation_id = "createCaptcha"
    )]
    async fn captcha(&self) -> Result<CaptchaCreated> {
        let c = self.services.captchas.create().await?;
        Ok(CaptchaCreated::Created(Json(CaptchaChallenge {
            captcha_id: c.id,
            image: c.image,
            expires_in: c.expires_in,
            dev_answer: self.services.dev.then_some(c.answer),
        })))
    }
}
