//! Captcha challenges and the captcha policy.

use base64::Engine;
use portcullis::config::CaptchaPolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app, spawn_app_with};

async fn challenge(app: &TestApp) -> (String, String) {
    let body: Value = app.create_captcha().await.json().await.unwrap();
    (
        body["captcha_id"].as_str().unwrap().to_string(),
        body["dev_answer"]
            .as_str()
            .expect("dev mode shows the answer")
            .to_string(),
    )
}

fn flip_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

#[tokio::test]
async fn a_challenge_is_a_png_data_url_without_the_answer() {
    let app = spawn_app().await;
    let resp = app.create_captcha().await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 300);
    assert!(body["captcha_id"].as_str().unwrap().len() >= 16);
    assert!(body.get("dev_answer").is_none());
    let data = body["image"]
        .as_str()
        .unwrap()
        .strip_prefix("data:image/png;base64,")
        .expect("PNG data URL");
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        app.table_count("captchas").await,
        1,
        "stored until answered or expired"
    );
}

#[tokio::test]
async fn registration_captcha_is_required_checked_ignoring_case_and_single_use() {
    let app = spawn_app_with(|c| {
        c.dev = true;
        c.captcha = CaptchaPolicy::Register;
    })
    .await;
    assert_eq!(
        app.get_config().await["captcha"],
        json!({"register": true, "login": false})
    );
    let body = |id: &str, answer: &str| json!({"username": "nia", "email": "nia@example.test", "password": PASSWORD, "captcha_id": id, "captcha_answer": answer});

    let missing = app
        .register(&json!({"username": "nia", "email": "nia@example.test", "password": PASSWORD}))
        .await;
    assert_eq!(
        problem(missing, StatusCode::BAD_REQUEST).await["code"],
        "captcha_required"
    );

    // A wrong answer consumes the challenge: the right answer afterwards fails too.
    let (id, answer) = challenge(&app).await;
    assert_eq!(
        problem(
            app.register(&body(&id, "wrong")).await,
            StatusCode::BAD_REQUEST
        )
        .await["code"],
        "captcha_invalid"
    );
    assert_eq!(
        problem(
            app.register(&body(&id, &answer)).await,
            StatusCode::BAD_REQUEST
        )
        .await["code"],
        "captcha_invalid"
    );
    assert_eq!(app.table_count("users").await, 0);

    let (id, answer) = challenge(&app).await;
    assert_eq!(
        app.register(&body(&id, &flip_case(&answer))).await.status(),
        StatusCode::CREATED
    );
    // Used up by the successful registration too.
    let again = json!({"username": "nia2", "email": "nia2@example.test", "password": PASSWORD, "captcha_id": id, "captcha_answer": answer});
    assert_eq!(
        problem(app.register(&again).await, StatusCode::BAD_REQUEST).await["code"],
        "captcha_invalid"
    );
    // Login is not covered by this policy.
    assert_eq!(app.login("nia", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_captcha_is_required_and_expires() {
    let app = spawn_app_with(|c| {
        c.dev = true;
        c.captcha = CaptchaPolicy::Login;
    })
    .await;
    app.register_user("otto").await;
    let login = |id: &str, answer: &str| {
        app.client
            .post(app.url("/api/v1/sessions"))
            .json(&json!({"login": "otto", "password": PASSWORD, "captcha_id": id, "captcha_answer": answer}))
            .send()
    };
    assert_eq!(
        problem(app.login("otto", PASSWORD).await, StatusCode::BAD_REQUEST).await["code"],
        "captcha_required"
    );

    let (id, answer) = challenge(&app).await;
    app.clock.advance(301);
    assert_eq!(
        problem(login(&id, &answer).await.unwrap(), StatusCode::BAD_REQUEST).await["code"],
        "captcha_invalid"
    );

    let (id, answer) = challenge(&app).await;
    assert_eq!(login(&id, &answer).await.unwrap().status(), StatusCode::OK);
}
