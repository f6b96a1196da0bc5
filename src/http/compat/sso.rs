//! `sso-api.md`: `POST /register/`, `POST /login/`, `GET|PATCH /auth/`, `GET|POST /oauth/`.
//!
//! Answers are HTTP 200 envelopes `{code, message, data}`. The document shows only successes;
//! failures carry HTTP-like in-body codes (see [`super::undocumented`]) and `data: null`.
//! The browser flow (`GET /oauth/`) is the ordinary authorization code flow: our login page,
//! then consent, then the redirect URI with `code` (and `iss`).

use poem::Request;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Query},
    payload::{Html, Json},
};
use serde::Deserialize;

use super::{BAD_PARAMS, Envelope, Params, ParamsError, failed, given, principal};
use crate::service::{
    Principal, ServiceError, Services,
    accounts::{CaptchaAnswer, Registration},
    oauth2::{
        OAuthError, PresentedClient,
        authorize::{AuthorizeError, AuthorizeParams},
    },
};

pub struct SsoApi {
    pub services: Services,
}

#[derive(Debug, Object, Deserialize)]
pub struct SsoRegisterParams {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    /// Not in the document: the mailed code, when the server requires verified addresses.
    pub email_code: Option<String>,
    /// Not in the document: a captcha, when the server requires one (`--captcha`).
    pub captcha_id: Option<String>,
    pub captcha_answer: Option<String>,
    /// Not in the document: the registration key, when registration is by invitation.
    pub registration_key: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct SsoLoginParams {
    /// Username; send this or `email`.
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    /// Also accepted in the body; the document puts it in the query.
    pub secret_id: Option<String>,
    pub redirect_uri: Option<String>,
    /// Not in the document: a captcha, when the server requires one at login.
    pub captcha_id: Option<String>,
    pub captcha_answer: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
pub struct DeveloperParams {
    /// Must be `true`.
    #[serde(default, deserialize_with = "super::flag")]
    pub is_developer: Option<bool>,
    /// Not in the document: the redirect URIs of the client (list, or one text with spaces
    /// or commas). Needed for the `/oauth/` and `/login/` code flows; replaces the current
    /// ones when given.
    #[serde(default, deserialize_with = "super::string_list")]
    pub redirect_uris: Option<Vec<String>>,
}

#[derive(Debug, Object, Deserialize)]
pub struct ExchangeParams {
    pub secret_id: Option<String>,
    pub secret_value: Option<String>,
    pub authorization_code: Option<String>,
}

/// `/register/`'s data.
#[derive(Debug, Object)]
pub struct SsoRegistered {
    /// Access token (send it as `Authorization` to `/auth/`).
    pub token: String,
    pub username: String,
    pub email: String,
}

/// `/login/`'s data.
#[derive(Debug, Object)]
pub struct LoggedIn {
    pub token: String,
    /// The `redirect_uri` sent, when a code was issued; otherwise empty.
    pub redirect_uri: String,
    /// A single-use code (60 s) for `POST /oauth/`, when `secret_id` names a client and
    /// `redirect_uri` is registered for it exactly; otherwise empty.
    pub authorization_code: String,
    pub username: String,
    pub email: String,
}

/// `/auth/`'s data.
#[derive(Debug, Object)]
pub struct SsoProfile {
    pub username: String,
    pub email: String,
    /// The developer's client id; empty until `PATCH /auth/` with `is_developer=true`.
    pub secret_id: String,
    /// The developer's client secret (stored encrypted); empty likewise.
    pub secret_value: String,
}

/// `POST /oauth/`'s data: who signed in.
#[derive(Debug, Object)]
pub struct SsoIdentity {
    pub username: String,
    pub email: String,
}

#[derive(ApiResponse)]
enum ToLogin {
    /// To the login page (then consent, then the redirect URI with `code`), or to the
    /// redirect URI with an `error` once the client and URI are trusted.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
    /// `secret_id` or `redirect_uri` is missing, unknown or not registered: an HTML page, never
    /// a redirect (RFC 6749 §4.1.2.1).
    #[oai(status = 400)]
    Refused(Html<String>),
}

fn bad_params<T: poem_openapi::types::ParseFromJSON + poem_openapi::types::ToJSON + Send + Sync>(
    _: ParamsError,
) -> Json<Envelope<T>> {
    Json(Envelope::error(400, BAD_PARAMS))
}

impl SsoApi {
    async fn profile(&self, principal: &Principal) -> Result<SsoProfile, ServiceError> {
        let client = self.services.clients.revealable_client(principal).await?;
        let (secret_id, secret_value) = client.map(|(c, s)| (c.client_id, s)).unwrap_or_default();
        Ok(SsoProfile {
            username: principal.user.username.clone(),
            email: principal.user.email.clone(),
            secret_id,
            secret_value,
        })
    }
}

#[OpenApi(tag = "crate::http::api::ApiTags::CompatibleSso")]
impl SsoApi {
    /// Register (SSO API)
    ///
    /// Creates the account and signs it in. Failures: 400 (missing or invalid fields, weak
    /// password, email code needed or wrong), 403 (registration closed or key wrong), 409
    /// (username or email taken).
    #[oai(
        path = "/register/",
        method = "post",
        operation_id = "compatSsoRegister"
    )]
    async fn register(
        &self,
        req: &poem::Request,
        params: Params<SsoRegisterParams>,
    ) -> Json<Envelope<SsoRegistered>> {
        let p = match params.into_inner() {
            Ok(p) => p,
            Err(e) => return bad_params(e),
        };
        let registration = Registration {
            username: p.username.unwrap_or_default(),
            email: p.email.unwrap_or_default(),
            password: p.password.unwrap_or_default(),
            display_name: None,
            email_code: p.email_code,
            captcha: CaptchaAnswer {
                id: p.captcha_id,
                answer: p.captcha_answer,
            },
            registration_key: p.registration_key,
            always_verify_email: false,
            always_check_captcha: false,
            issue_api_key: false,
            origin: super::origin(&self.services, req, "compat-sso"),
        };
        match self.services.accounts.register(registration).await {
            Ok(s) => Json(Envelope::ok(
                "注册成功",
                SsoRegistered {
                    token: s.access_token,
                    username: s.user.username,
                    email: s.user.email,
                },
            )),
            Err(e) => failed(&e),
        }
    }

    /// Log in (SSO API)
    ///
    /// With `username` or `email` and `password`. With `secret_id` (a client id) and a
    /// `redirect_uri` registered for it, the answer also carries a single-use
    /// `authorization_code` for `POST /oauth/`. Failures: 400 (missing fields), 401 (wrong
    /// login or password), 429 (too many failures).
    #[oai(path = "/login/", method = "post", operation_id = "compatSsoLogin")]
    async fn login(
        &self,
        req: &Request,
        params: Params<SsoLoginParams>,
    ) -> Json<Envelope<LoggedIn>> {
        let p = match params.into_inner() {
            Ok(p) => p,
            Err(e) => return bad_params(e),
        };
        let (Some(login), Some(password)) =
            (given(&p.username).or(given(&p.email)), given(&p.password))
        else {
            return Json(Envelope::error(400, BAD_PARAMS));
        };
        let captcha = CaptchaAnswer {
            id: p.captcha_id.clone(),
            answer: p.captcha_answer.clone(),
        };
        let origin = super::origin(&self.services, req, "compat-sso");
        let session = match self
            .services
            .accounts
            .login_password_only(login, password, &captcha, &origin)
            .await
        {
            Ok(s) => s,
            Err(e) => return failed(&e),
        };
        let code = match (given(&p.secret_id), given(&p.redirect_uri)) {
            (Some(client_id), Some(uri)) => match self
                .services
                .oauth2
                .issue_code_after_login(client_id, uri, &session.user)
                .await
            {
                Ok(code) => code.map(|c| (c, uri.to_string())),
                Err(e) => return failed(&e),
            },
            _ => None,
        };
        let (authorization_code, redirect_uri) = code.unwrap_or_default();
        Json(Envelope::ok(
            "登录成功",
            LoggedIn {
                token: session.access_token,
                redirect_uri,
                authorization_code,
                username: session.user.username,
                email: session.user.email,
            },
        ))
    }

    /// The signed-in user (SSO API)
    ///
    /// `Authorization` carries the token, with or without `Bearer `. `secret_id` and
    /// `secret_value` are the developer's client (empty strings for other users). Failure: 401.
    #[oai(path = "/auth/", method = "get", operation_id = "compatSsoProfile")]
    async fn profile_get(
        &self,
        #[oai(name = "Authorization")] authorization: Header<Option<String>>,
    ) -> Json<Envelope<SsoProfile>> {
        let Some(p) = principal(
            &self.services,
            authorization.0.as_deref().unwrap_or_default(),
        )
        .await
        else {
            return failed(&ServiceError::InvalidToken);
        };
        match self.profile(&p).await {
            Ok(profile) => Json(Envelope::ok("获取成功", profile)),
            Err(e) => failed(&e),
        }
    }

    /// Become a developer (SSO API)
    ///
    /// With `is_developer=true`: grants the developer role and creates the user's client
    /// (confidential, authorization code grant, scopes `openid profile email`) the first time;
    /// answers with its `secret_id` and `secret_value`. Failures: 400 (`is_developer` not
    /// true, invalid redirect URIs), 401 (token).
    #[oai(
        path = "/auth/",
        method = "patch",
        operation_id = "compatSsoBecomeDeveloper"
    )]
    async fn profile_patch(
        &self,
        req: &poem::Request,
        #[oai(name = "Authorization")] authorization: Header<Option<String>>,
        params: Params<DeveloperParams>,
    ) -> Json<Envelope<SsoProfile>> {
        let Some(p) = principal(
            &self.services,
            authorization.0.as_deref().unwrap_or_default(),
        )
        .await
        else {
            return failed(&ServiceError::InvalidToken);
        };
        let params = match params.into_inner() {
            Ok(params) if params.is_developer == Some(true) => params,
            _ => return Json(Envelope::error(400, "参数错误: is_developer 必须为 true")),
        };
        match self
            .services
            .clients
            .ensure_revealable_client(
                &p,
                params.redirect_uris,
                &super::origin(&self.services, req, "compat-sso"),
            )
            .await
        {
            Ok((user, client, secret)) => Json(Envelope::ok(
                "获取成功",
                SsoProfile {
                    username: user.username,
                    email: user.email,
                    secret_id: client.client_id,
                    secret_value: secret,
                },
            )),
            Err(e) => failed(&e),
        }
    }

    /// Start the browser sign-in (SSO API)
    ///
    /// Redirects to the login page for the client `secret_id`; after login and consent the
    /// browser goes to `redirect_uri` (which must be registered exactly) with `code`, which
    /// the client's backend exchanges at `POST /oauth/`.
    #[oai(path = "/oauth/", method = "get", operation_id = "compatSsoAuthorize")]
    async fn authorize(
        &self,
        req: &poem::Request,
        secret_id: Query<Option<String>>,
        redirect_uri: Query<Option<String>>,
    ) -> ToLogin {
        let params = AuthorizeParams {
            response_type: Some("code".into()),
            client_id: secret_id.0,
            redirect_uri: redirect_uri.0,
            ..AuthorizeParams::default()
        };
        match self.services.oauth2.begin_authorization(params).await {
            Ok(p) => ToLogin::Found(crate::http::pages::login_location(&p)),
            Err(AuthorizeError::Redirect(url)) => ToLogin::Found(url),
            Err(AuthorizeError::Page(msg)) => {
                let ui = crate::http::pages::Ui::new(&self.services, req);
                ToLogin::Refused(Html(crate::http::pages::templates::error(&ui, &msg)))
            }
        }
    }

    /// Exchange a code for the user (SSO API)
    ///
    /// The client's backend sends its `secret_id`, `secret_value` and the code from `/login/`
    /// or the browser flow; the answer says who signed in. A code works once, for 60 s, and
    /// only for the client it was issued to. Failures: 400 (missing fields; code unknown,
    /// expired, used or another client's), 401 (client id or secret wrong).
    #[oai(path = "/oauth/", method = "post", operation_id = "compatSsoExchange")]
    async fn exchange(&self, params: Params<ExchangeParams>) -> Json<Envelope<SsoIdentity>> {
        let p = match params.into_inner() {
            Ok(p) => p,
            Err(e) => return bad_params(e),
        };
        let Some(code) = given(&p.authorization_code) else {
            return Json(Envelope::error(400, BAD_PARAMS));
        };
        let presented = PresentedClient {
            client_id: p.secret_id.clone(),
            client_secret: p.secret_value.clone(),
            via_basic: false,
        };
        match self
            .services
            .oauth2
            .redeem_for_identity(&presented, code)
            .await
        {
            Ok(user) => Json(Envelope::ok(
                "获取授权成功",
                SsoIdentity {
                    username: user.username,
                    email: user.email,
                },
            )),
            Err(OAuthError::InvalidClient { .. }) => {
                Json(Envelope::error(401, "secret_id或secret_value错误"))
            }
            Err(OAuthError::InvalidGrant(_)) => {
                Json(Envelope::error(400, "授权码无效、已过期或已使用"))
            }
            Err(e) => {
                tracing::error!(error = %e, "code exchange failed");
                Json(Envelope::error(500, "服务器内部错误"))
            }
        }
    }
}
