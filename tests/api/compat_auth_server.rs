//! `auth-server-api.md`: every request of the document replayed with its parameters (the
//! code read from a real SMTP conversation), the finished revocation, then the failures.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, TestApp, spawn_app_with, status_json},
    smtp::SmtpSink,
};

const CLIENT: &str = "watup";
/// The document's secret ("watup") is shorter than we accept; this one stands in for it.
const CLIENT_SECRET: &str = "watup-secret-0123456789";

fn assert_envelope(body: &Value, code: i64, message: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["message"], message, "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "message", "data"], "{body}");
}

async fn app_with_smtp() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |c| c.smtp_url = Some(url)).await;
    (app, sink)
}

/// The document's client: an ordinary confidential client with the password grant, as an
/// operator would create it with the CLI or a seed file.
async fn create_client(app: &TestApp, owner: &str) {
    let owner = app.services.accounts.find(owner).await.unwrap().unwrap();
    app.services
        .clients
        .create(
            &owner.id,
            portcullis::service::clients::NewClient {
                client_id: Some(CLIENT.into()),
                name: "watup".into(),
                grant_types: vec!["password".into(), "refresh_token".into()],
                confidential: true,
                secret: Some(CLIENT_SECRET.into()),
                scopes: vec!["all".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

async fn send_code(app: &TestApp, sink: &SmtpSink, email: &str) -> String {
    let body = app
        .post_json("/oauth/sendCode", &json!({"email": email}))
        .await;
    assert_envelope(&body, 200, "验证码发送成功");
    assert!(body["data"].is_null(), "never the code outside dev mode");
    sink.wait_for(email, "verification code")
        .await
        .registration_code()
}

async fn register_leon(app: &TestApp, sink: &SmtpSink) {
    let code = send_code(app, sink, "leondastur@163.com").await;
    let body = app
        .post_json(
            "/oauth/register",
            &json!({"id": "leon", "username": "dastur", "password": PASSWORD, "email": "leondastur@163.com", "code": code}),
        )
        .await;
    assert_envelope(&body, 200, "注册成功");
}

/// POSTs to a Spring-style endpoint; returns the real status and the body.
async fn spring(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    basic: bool,
) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url(path)).form(form);
    if basic {
        req = req.basic_auth(CLIENT, Some(CLIENT_SECRET));
    }
    status_json(req.send().await.unwrap()).await
}

/// `grant_type=password` for leon, the client in HTTP Basic.
async fn password_grant(app: &TestApp, password: &str) -> (StatusCode, Value) {
    spring(
        app,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "leon"),
            ("password", password),
        ],
        true,
    )
    .await
}

fn assert_spring_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    error: &str,
    description: &str,
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

fn assert_tokens(t: &Value) {
    assert!(
        t["access_token"].as_str().is_some_and(|s| !s.is_empty()),
        "{t}"
    );
    assert_eq!(t["token_type"], "bearer");
    assert!(
        t["refresh_token"].as_str().is_some_and(|s| !s.is_empty()),
        "{t}"
    );
    assert!(t["expires_in"].as_i64().is_some_and(|n| n > 0), "{t}");
    assert!(t["scope"].is_string());
    assert_eq!(t["id"], "leon");
    assert_eq!(t["email"], "leondastur@163.com");
    assert_eq!(t["username"], "dastur");
}

#[tokio::test]
async fn every_documented_request_works_as_written() {
    let (app, sink) = app_with_smtp().await;

    // 验证用户id, 发送邮箱验证码, 用户注册, and the id is then taken.
    let body = app
        .post_json("/oauth/checkUserId", &json!({"id": "leon"}))
        .await;
    assert_envelope(&body, 200, "用户id合法");
    assert!(body["data"].is_null());
    register_leon(&app, &sink).await;
    let body = app.post_form("/oauth/checkUserId", &[("id", "leon")]).await;
    assert_envelope(&body, 400, "用户id被占用");

    // 用户登录
    let body = app
        .post_json("/oauth/login", &json!({"id": "leon", "password": PASSWORD}))
        .await;
    assert_envelope(&body, 200, "成功");
    assert_tokens(&body["data"]);

    // 获取(刷新)token, credentials in the body and in HTTP Basic.
    create_client(&app, "leon").await;
    let (status, t) = spring(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "leon"),
            ("password", PASSWORD),
            ("client_id", CLIENT),
            ("client_secret", CLIENT_SECRET),
        ],
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_tokens(&t);
    assert_eq!(t["scope"], "all");
    let (status, t) = password_grant(&app, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let (status, refreshed) = spring(
        &app,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_tokens(&refreshed);
    assert_ne!(refreshed["refresh_token"], t["refresh_token"], "rotated");

    // 验证token
    let access = refreshed["access_token"].as_str().unwrap().to_string();
    let (status, checked) = spring(&app, "/oauth/check_token", &[("token", &access)], false).await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(checked["user_name"], "dastur");
    assert_eq!(checked["scope"], json!(["all"]));
    assert_eq!(checked["active"], true);
    assert_eq!(checked["id"], "leon");
    assert!(checked["exp"].as_i64().is_some_and(|e| e > 0));
    assert_eq!(checked["email"], "leondastur@163.com");
    assert_eq!(checked["client_id"], CLIENT);
    assert_eq!(checked["username"], "dastur");

    // 注销token (unfinished in the document): afterwards not recognised.
    let body = app
        .post_json("/oauth/revoke", &json!({"token": access}))
        .await;
    assert_envelope(&body, 200, "注销成功");
    let (status, body) = spring(&app, "/oauth/check_token", &[("token", &access)], false).await;
    assert_spring_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_token",
        "Token was not recognised",
    );
    // The session ended with it: its refresh token is spent too.
    let next = refreshed["refresh_token"].as_str().unwrap();
    let (status, _) = spring(
        &app,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", next)],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn registration_failures_use_the_documented_messages() {
    let (app, sink) = app_with_smtp().await;
    let code = send_code(&app, &sink, "amy@example.test").await;
    // A second request within the minute: the code is still valid.
    let body = app
        .post_json("/oauth/sendCode", &json!({"email": "amy@example.test"}))
        .await;
    assert_envelope(&body, 400, "验证码依然有效");
    let register = |code: &str, id: &str, email: &str| json!({"id": id, "username": "Amy", "password": PASSWORD, "email": email, "code": code});
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let body = app
        .post_json(
            "/oauth/register",
            &register(wrong, "amy", "amy@example.test"),
        )
        .await;
    assert_envelope(&body, 400, "验证码错误");
    let body = app
        .post_json("/oauth/register", &register("", "amy", "amy@example.test"))
        .await;
    assert_envelope(&body, 400, "验证码错误");
    // Ten minutes later the right code has expired.
    app.clock.advance(601);
    let body = app
        .post_json(
            "/oauth/register",
            &register(&code, "amy", "amy@example.test"),
        )
        .await;
    assert_envelope(&body, 400, "验证码过期");
    assert_eq!(app.table_count("users").await, 0, "nothing was created");

    register_leon(&app, &sink).await;
    // The code is checked first: without the right one nothing is said about who exists.
    let body = app
        .post_json(
            "/oauth/register",
            &register("123456", "leon", "new@example.test"),
        )
        .await;
    assert_envelope(&body, 400, "验证码错误");
    let code = send_code(&app, &sink, "new@example.test").await;
    let body = app
        .post_json(
            "/oauth/register",
            &register(&code, "leon", "new@example.test"),
        )
        .await;
    assert_envelope(&body, 400, "用户已存在");
    // The refused registration did not spend the code; an address taken meanwhile (by an
    // operator here, by a concurrent registration in life) is reported with it.
    app.services
        .accounts
        .create_user(
            portcullis::service::accounts::Registration {
                username: "operator-made".into(),
                email: "NEW@example.test".into(),
                password: PASSWORD.into(),
                ..Default::default()
            },
            Vec::new(),
            true,
            false,
        )
        .await
        .unwrap();
    let body = app
        .post_json(
            "/oauth/register",
            &register(&code, "leon2", "new@example.test"),
        )
        .await;
    assert_envelope(&body, 400, "该邮箱已被绑定");
    // An address that has an account is not revealed by sendCode: the owner gets a notice.
    let body = app
        .post_json("/oauth/sendCode", &json!({"email": "leondastur@163.com"}))
        .await;
    assert_envelope(&body, 200, "验证码发送成功");
    sink.wait_for("leondastur@163.com", "already").await;
    // Bad input.
    let body = app
        .post_json("/oauth/sendCode", &json!({"email": "not-an-address"}))
        .await;
    assert_eq!(body["code"], 400);
    let body = app
        .post_json("/oauth/checkUserId", &json!({"id": "has space"}))
        .await;
    assert_eq!(body["code"], 400);
    let body = app.post_json("/oauth/checkUserId", &json!({"id": 7})).await;
    assert_eq!(body["code"], 400);
    let (status, body) = status_json(
        app.post_raw("/oauth/register", Some("application/json"), b"[1,".to_vec())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["code"], 400);
}

#[tokio::test]
async fn login_and_token_failures() {
    let (app, sink) = app_with_smtp().await;
    register_leon(&app, &sink).await;
    create_client(&app, "leon").await;
    for body in [
        json!({"id": "leon", "password": "wrong-wrong"}),
        json!({"id": "nobody", "password": "wrong-wrong"}),
        json!({}),
    ] {
        let reply = app.post_json("/oauth/login", &body).await;
        assert_envelope(&reply, 400, "用户名或密码错误");
    }
    let (status, body) = password_grant(&app, "wrong-wrong").await;
    assert_spring_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "用户名或密码错误",
    );
    let (status, body) = spring(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "leon"),
            ("password", PASSWORD),
            ("client_id", CLIENT),
            ("client_secret", "wrong"),
        ],
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = spring(
        &app,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (status, body) = spring(
        &app,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // check_token: garbage, a refresh token, and an expired access token are not recognised.
    let (_, t) = password_grant(&app, PASSWORD).await;
    for token in ["garbage", t["refresh_token"].as_str().unwrap()] {
        let (status, body) = spring(&app, "/oauth/check_token", &[("token", token)], false).await;
        assert_spring_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token was not recognised",
        );
    }
    let access = t["access_token"].as_str().unwrap();
    app.clock.advance(901);
    let (status, body) = spring(&app, "/oauth/check_token", &[("token", access)], false).await;
    assert_spring_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_token",
        "Token was not recognised",
    );
    // revoke needs a token; unknown ones are fine (RFC 7009 §2.2).
    assert_eq!(
        app.post_json("/oauth/revoke", &json!({})).await["code"],
        400
    );
    assert_envelope(
        &app.post_json("/oauth/revoke", &json!({"token": "unknown"}))
            .await,
        200,
        "注销成功",
    );
}

#[tokio::test]
async fn dev_mode_returns_the_code_in_data() {
    let app = spawn_app_with(|c| c.dev = true).await;
    let body = app
        .post_json("/oauth/sendCode", &json!({"email": "dev@example.test"}))
        .await;
    assert_envelope(&body, 200, "验证码发送成功");
    let code = body["data"].as_str().expect("dev mode shows the code");
    assert_eq!(code.len(), 6);
    let body = app
        .post_json(
            "/oauth/register",
            &json!({"id": "devuser", "username": "Dev", "password": PASSWORD, "email": "dev@example.test", "code": code}),
        )
        .await;
    assert_envelope(&body, 200, "注册成功");
}

#[tokio::test]
async fn check_token_shows_only_what_the_token_was_granted() {
    let app = spawn_app_with(|_| {}).await;
    let owner = app.register_user("narrow").await;
    app.services
        .clients
        .create(
            &owner.id,
            portcullis::service::clients::NewClient {
                client_id: Some("narrow-app".into()),
                name: "narrow".into(),
                grant_types: vec!["password".into()],
                confidential: true,
                secret: Some(CLIENT_SECRET.into()),
                scopes: vec!["openid".into(), "email".into(), "profile".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token_for = |scope: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .oauth_post(
                    "token",
                    &[
                        ("grant_type", "password"),
                        ("username", "narrow"),
                        ("password", PASSWORD),
                        ("scope", scope),
                    ],
                    Some(("narrow-app", CLIENT_SECRET)),
                )
                .await;
            assert_eq!(resp.status(), StatusCode::OK, "{scope}");
            resp.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let check = |token: String| {
        let app = &app;
        async move {
            let (status, body) =
                spring(app, "/oauth/check_token", &[("token", &token)], false).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let only_openid = check(token_for("openid").await).await;
    for hidden in ["email", "id", "username", "user_name"] {
        assert!(only_openid.get(hidden).is_none(), "{hidden}: {only_openid}");
    }
    assert_eq!(only_openid["active"], true);
    let with_email = check(token_for("openid email").await).await;
    assert_eq!(with_email["email"], "narrow@example.test");
    assert!(with_email.get("id").is_none(), "{with_email}");
    let with_profile = check(token_for("openid profile").await).await;
    assert_eq!(with_profile["id"], "narrow");
    assert!(with_profile.get("email").is_none(), "{with_profile}");
}

#[tokio::test]
async fn credentials_in_the_query_string_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    app.register_user("qs").await;
    // The SSO login with the password in the URL: refused (bad parameters), no token.
    let body = app
        .post_json(
            "/login/?username=qs&password=Tr0ub4dor%263-lilac-orbit",
            &json!({}),
        )
        .await;
    assert_eq!(body["code"], 400, "{body}");
    assert!(body["data"].is_null(), "{body}");
    let body = app
        .post_json(
            "/oauth/login?id=qs&password=Tr0ub4dor%263-lilac-orbit",
            &json!({}),
        )
        .await;
    assert_eq!(body["code"], 400, "{body}");
    // The same fields in the body work.
    let body = app
        .post_json("/oauth/login", &json!({"id": "qs", "password": PASSWORD}))
        .await;
    assert_eq!(body["code"], 200, "{body}");
    let (status, body) = spring(
        &app,
        "/oauth/token?grant_type=password&username=qs&password=x",
        &[],
        true,
    )
    .await;
    assert!(status.is_client_error(), "{status} {body}");
}
