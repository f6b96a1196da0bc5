//! One set of accounts behind every API: a user registered through one document logs in
//! through the others, the native API and the OAuth pages, and a token from any login is
//! accepted by `/oauth/check_token`, `/api/user_info/` and `/auth/` alike.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, browser, browser_sign_in, spawn_app_with, status_json};

const REDIRECT: &str = "https://app.example.com/callback";

/// Logs `login` in through every login there is; returns the access token of each.
async fn log_in_everywhere(app: &TestApp, login: &str, email: &str) -> Vec<(&'static str, String)> {
    let mut tokens = Vec::new();
    let body = app
        .post_json("/login/", &json!({"username": login, "password": PASSWORD}))
        .await;
    assert_eq!(body["code"], 200, "sso /login/: {body}");
    tokens.push((
        "sso /login/",
        body["data"]["token"].as_str().unwrap().to_string(),
    ));
    let body = app
        .post_json("/login/", &json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(body["code"], 200, "sso /login/ by email: {body}");

    let (key, answer) = app.solved_captcha().await;
    let body = app
        .post_json(
            "/api/login",
            &json!({"username": login, "passwd": PASSWORD, "verification_code_key": key, "verification_code": answer}),
        )
        .await;
    assert_eq!(body["code"], 200, "account /api/login: {body}");
    tokens.push((
        "account /api/login",
        body["message"].as_str().unwrap().to_string(),
    ));

    let body = app
        .post_json("/oauth/login", &json!({"id": login, "password": PASSWORD}))
        .await;
    assert_eq!(body["code"], 200, "auth-server /oauth/login: {body}");
    tokens.push((
        "auth-server /oauth/login",
        body["data"]["access_token"].as_str().unwrap().to_string(),
    ));

    let resp = app.login(login, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK, "native login");
    let body: Value = resp.json().await.unwrap();
    tokens.push((
        "native /api/v1/sessions",
        body["access_token"].as_str().unwrap().to_string(),
    ));
    tokens
}

/// The OAuth pages: sign in to a third-party client and trade the code for tokens.
async fn log_in_with_oauth_pages(app: &TestApp, login: &str, client: &(String, String)) -> Value {
    let url = app.url(&format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile",
        client.0,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    ));
    let landed = browser_sign_in(app, &browser(), &url, login, PASSWORD).await;
    let code = url::Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code in {landed}"))
        .1
        .into_owned();
    let resp = app
        .oauth_post(
            "token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
            Some((&client.0, &client.1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn assert_accepted_everywhere(app: &TestApp, from: &str, token: &str, login: &str) {
    let (status, checked) = status_json(
        app.client
            .post(app.url("/oauth/check_token"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "check_token refused the token of {from}: {checked}"
    );
    assert_eq!(checked["id"], login);

    let info = app
        .post_json("/api/user_info/", &json!({"token": token}))
        .await;
    assert_eq!(
        info["code"], 200,
        "user_info refused the token of {from}: {info}"
    );
    assert_eq!(info["message"]["name"], login);

    let (status, profile) = status_json(
        app.client
            .get(app.url("/auth/"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        profile["code"], 200,
        "/auth/ refused the token of {from}: {profile}"
    );
    assert_eq!(profile["data"]["username"], login);
}

#[tokio::test]
async fn one_account_behind_every_api() {
    let app = spawn_app_with(|c| c.dev = true).await;
    // A developer's client for the OAuth pages, through the SSO document.
    let dev = app
        .post_json(
            "/register/",
            &json!({"username": "dev", "email": "dev@example.test", "password": PASSWORD}),
        )
        .await;
    let dev_token = dev["data"]["token"].as_str().unwrap().to_string();
    let resp = app
        .client
        .patch(app.url("/auth/"))
        .header("Authorization", &dev_token)
        .json(&json!({"is_developer": true, "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    let (_, body) = status_json(resp).await;
    let client = (
        body["data"]["secret_id"].as_str().unwrap().to_string(),
        body["data"]["secret_value"].as_str().unwrap().to_string(),
    );

    // Registered through the account document…
    let (key, answer) = app.solved_captcha().await;
    let body = app
        .post_json(
            "/api/registered",
            &json!({"show_name": "Acc", "username": "acc", "passwd": PASSWORD, "email": "acc@example.test",
                    "key": "", "verification_code_key": key, "verification_code": answer}),
        )
        .await;
    assert_eq!(body["code"], 200, "{body}");
    // …through the auth-server document…
    let code = app
        .post_json("/oauth/sendCode", &json!({"email": "auth@example.test"}))
        .await["data"]
        .as_str()
        .unwrap()
        .to_string();
    let body = app
        .post_json(
            "/oauth/register",
            &json!({"id": "auth", "username": "Auth", "password": PASSWORD, "email": "auth@example.test", "code": code}),
        )
        .await;
    assert_eq!(body["code"], 200, "{body}");
    // …through the SSO document and the native API.
    let body = app
        .post_json(
            "/register/",
            &json!({"username": "sso", "email": "sso@example.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(body["code"], 200, "{body}");
    app.register_user("native").await;

    for login in ["acc", "auth", "sso", "native"] {
        let email = format!("{login}@example.test");
        for (from, token) in log_in_everywhere(&app, login, &email).await {
            assert_accepted_everywhere(&app, from, &token, login).await;
        }
        let tokens = log_in_with_oauth_pages(&app, login, &client).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert!(tokens["id_token"].is_string(), "OIDC sign-in for {login}");
        // A client's token names its client at check_token.
        let (status, checked) = status_json(
            app.client
                .post(app.url("/oauth/check_token"))
                .form(&[("token", tokens["access_token"].as_str().unwrap())])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(checked["client_id"], client.0.as_str());
    }
}
