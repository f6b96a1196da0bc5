//! `/api/v1/users`, `/api/v1/usernames/{name}`, `/api/v1/config`.

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};

use super::{
    ApiTags,
    text::Text,
    types::{CaptchaSettings, PublicConfig, RegisterRequest, TokenPair, UsernameAvailability},
};
use crate::{
    config::{EmailVerification, RegistrationPolicy},
    domain::{Password, Username},
    http::error::{ApiError, Problem, Result},
    service::{
        Services,
        accounts::{CaptchaAnswer, Registration},
    },
};

pub struct AccountsApi {
    pub services: Services,
}

#[derive(ApiResponse)]
enum Registered {
    /// The account was created and signed in.
    #[oai(status = 201)]
    Created(Json<TokenPair>),
}

/// `Option<Text>` → `Option<String>`.
pub fn opt(t: Option<Text>) -> Option<String> {
    t.map(String::from)
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// Register an account
    ///
    /// Creates a user and signs them in, answering with a token pair. Usernames and emails are
    /// unique ignoring case; guessable passwords are refused with a reason (`weak_password`).
    /// Depending on `GET /api/v1/config`, also needs `email_code` (from
    /// `POST /api/v1/verification-codes`), a captcha, or a `registration_key`.
    #[oai(path = "/api/v1/users", method = "post", operation_id = "register")]
    async fn register(
        &self,
        req: &poem::Request,
        body: Json<RegisterRequest>,
    ) -> Result<Registered> {
        let body = body.0;
        let origin = super::origin(&self.services, req);
        let session = self
            .services
            .accounts
            .register(Registration {
                username: body.username.into(),
                email: body.email.into(),
                password: body.password.into(),
                display_name: opt(body.display_name),
                email_code: opt(body.email_code),
                captcha: CaptchaAnswer {
                    id: opt(body.captcha_id),
                    answer: opt(body.captcha_answer),
                },
                registration_key: opt(body.registration_key),
                always_verify_email: false,
                always_check_captcha: false,
                issue_api_key: false,
                origin,
            })
            .await?;
        Ok(Registered::Created(Json(TokenPair::of(
            session,
            &self.services.public_url,
        ))))
    }

    /// Check a username
    ///
    /// Says whether a username is free. A name that breaks the rules is answered with 400 and
    /// the rule it breaks.
    #[oai(
        path = "/api/v1/usernames/:name",
        method = "get",
        operation_id = "checkUsername"
    )]
    async fn username(&self, name: Path<String>) -> Result<Json<UsernameAvailability>> {
        let parsed = Username::parse(&name.0).map_err(|inv| {
            let mut e = Problem::new(
                StatusCode::BAD_REQUEST,
                inv.code,
                format!("username {}", inv.message),
            );
            e.field = Some("name".into());
            ApiError::from_problem(e)
        })?;
        let available = self
            .services
            .accounts
            .username_available(parsed.as_str())
            .await?;
        Ok(Json(UsernameAvailability {
            username: parsed.as_str().to_string(),
            available,
        }))
    }

    /// Public settings
    ///
    /// The registration policy, whether registration needs an emailed code, where captchas
    /// are required, and the input limits — what a front end needs to render its forms.
    #[oai(path = "/api/v1/config", method = "get", operation_id = "getConfig")]
    async fn config(&self) -> Json<PublicConfig> {
        let policy = self.services.accounts.policy();
        Json(PublicConfig {
            registration: match policy.registration {
                RegistrationPolicy::Open => "open",
                RegistrationPolicy::Invite => "invite",
                RegistrationPolicy::Closed => "closed",
            }
            .into(),
            email_verification: match policy.email_verification {
                EmailVerification::Required => "required",
                EmailVerification::Off => "off",
            }
            .into(),
            captcha: CaptchaSettings {
                register: policy.captcha.on_register(),
                login: policy.captcha.on_login(),
            },
            password_min_length: Password::MIN_CHARS as u32,
            password_max_length: Password::MAX_CHARS as u32,
            username_max_length: Username::MAX_CHARS as u32,
            avatar_max_bytes: self.services.avatars.max_bytes() as u64,
            mfa_policy: self.services.mfa.policy().as_str().into(),
            mfa_methods: self
                .services
                .mfa
                .methods()
                .into_iter()
                .map(str::to_string)
                .collect(),
            passkeys: self.services.mfa.passkeys_available(),
        })
    }
}
