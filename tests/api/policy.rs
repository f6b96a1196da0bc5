//! Registration policy and the public settings endpoint.

use portcullis::config::RegistrationPolicy;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn public_settings_describe_the_defaults() {
    let app = spawn_app().await;
    assert_eq!(
        app.get_config().await,
        json!({
            "registration": "open",
            "email_verification": "off",
            "captcha": {"register": false, "login": false},
            "password_min_length": 8,
            "password_max_length": 256,
            "username_max_length": 64,
            "avatar_max_bytes": 1048576,
            "mfa_policy": "optional",
            "mfa_methods": ["totp", "recovery_code", "webauthn"],
            "passkeys": true
        })
    );
}

#[tokio::test]
async fn closed_registration_is_403() {
    let app = spawn_app_with(|c| c.registration = RegistrationPolicy::Closed).await;
    assert_eq!(app.get_config().await["registration"], "closed");
    let p = problem(
        app.register(
            &json!({"username": "pam", "email": "pam@example.test", "password": PASSWORD}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(p["code"], "registration_closed");
    assert_eq!(app.table_count("users").await, 0);
}

#[tokio::test]
async fn invite_registration_needs_the_shared_key() {
    let app = spawn_app_with(|c| {
        c.registration = RegistrationPolicy::Invite;
        c.registration_key = Some("let-me-in-2026".into());
    })
    .await;
    assert_eq!(app.get_config().await["registration"], "invite");
    let body = |key: Option<&str>| {
        let mut b = json!({"username": "quin", "email": "quin@example.test", "password": PASSWORD});
        if let Some(k) = key {
            b["registration_key"] = json!(k);
        }
        b
    };
    for key in [None, Some("wrong"), Some("")] {
        let p = problem(app.register(&body(key)).await, StatusCode::FORBIDDEN).await;
        assert_eq!(p["code"], "invalid_registration_key", "{key:?}");
    }
    assert_eq!(
        app.register(&body(Some("let-me-in-2026"))).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn invite_without_a_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.registration = RegistrationPolicy::Invite;
    let err = portcullis::Application::build(&config)
        .await
        .err()
        .expect("must not start");
    assert!(err.to_string().contains("--registration-key"), "{err}");
}
