//! `/api/v1/users`, `/api/v1/usernames/{name}`.

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};

use super::{
    ApiTags,
    types::{RegisterRequest, TokenPair, UsernameAvailability},
};
use crate::{
    domain::Username,
    http::error::{ApiError, Result},
    service::{Services, accounts::Registration},
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

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// Register an account
    ///
    /// Creates a user and signs them in, answering with a token pair. Usernames and emails are
    /// unique ignoring case; guessable passwords are refused with a reason (`weak_password`).
    #[oai(path = "/api/v1/users", method = "post", operation_id = "register")]
    async fn register(&self, body: Json<RegisterRequest>) -> Result<Registered> {
        let body = body.0;
        let session = self
            .services
            .accounts
            .register(Registration {
                username: body.username.into(),
                email: body.email.into(),
                password: body.password.into(),
                display_name: body.display_name.map(String::from),
            })
            .await?;
        Ok(Registered::Created(Json(session.into())))
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
            let mut e = crate::http::error::Problem::new(
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
}
