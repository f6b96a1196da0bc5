//! Dev / ephemeral mode and seed files.

use portcullis::config::EmailVerification;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};

const SEED: &str = r#"
[[users]]
username = "alice"
email = "alice@example.test"
password = "correct horse battery staple"
roles = ["admin", "developer"]

[[users]]
username = "bob"
email = "bob@example.test"
password = "bob-password-1"
"#;

#[tokio::test]
async fn dev_mode_returns_codes_and_keeps_an_outbox_in_memory() {
    let app = spawn_app_with(|c| {
        c.dev = true;
        c.email_verification = Some(EmailVerification::Required);
    })
    .await;
    let body: Value = app
        .request_code("yan@example.test", "register")
        .await
        .json()
        .await
        .unwrap();
    let code = body["dev_code"]
        .as_str()
        .expect("dev_code in dev mode")
        .to_string();
    assert_eq!(code.len(), 6);

    let outbox: Value = app.get_json("/dev/outbox").await;
    let messages = outbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["to"], "yan@example.test");
    assert!(messages[0]["text"].as_str().unwrap().contains(&code));

    let resp = app
        .register(&json!({"username": "yan", "email": "yan@example.test", "password": PASSWORD, "email_code": code}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let captcha: Value = app.create_captcha().await.json().await.unwrap();
    assert!(captcha["dev_answer"].is_string());
    // Nothing was written to the data directory: the store lives in memory.
    assert!(!app.config.database_path().exists());
}

#[tokio::test]
async fn dev_outbox_does_not_exist_outside_dev_mode() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/dev/outbox"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let body: Value = app
        .request_code("zed@example.test", "register")
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("dev_code").is_none());
}

#[tokio::test]
async fn seed_file_creates_users_with_roles_and_loads_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(&seed, SEED).unwrap();
    let path = seed.clone();
    let app = spawn_app_with(move |c| c.seed = Some(path)).await;

    let body: Value = app
        .login("alice", "correct horse battery staple")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["user"]["roles"], json!(["admin", "developer"]));
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(
        app.login("bob@example.test", "bob-password-1")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.table_count("users").await, 2);

    let app = app.restart().await;
    assert_eq!(
        app.table_count("users").await,
        2,
        "loading the seed again adds nothing"
    );
    assert_eq!(
        app.login("alice", "correct horse battery staple")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_bad_seed_file_stops_the_start_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        "[[users]]\nusername = \"a b\"\nemail = \"x@example.test\"\npassword = \"long-enough-1\"\n",
    )
    .unwrap();
    let mut config = crate::helpers::test_config(&dir);
    config.seed = Some(seed);
    let err = portcullis::Application::build(&config)
        .await
        .err()
        .expect("must not start")
        .to_string();
    assert!(
        err.contains("users[0]") && err.contains("username"),
        "{err}"
    );
}

/// The auth-server document's client, as its deployments have it: secret `watup`.
const LEGACY_SEED: &str = r#"
[[users]]
username = "leon"
email = "leondastur@163.com"
password = "correct horse battery staple"

[[clients]]
client_id = "watup"
client_secret = "watup"
owner = "leon"
name = "watup"
grant_types = ["password", "refresh_token"]
scopes = ["all"]
"#;

#[tokio::test]
async fn a_legacy_short_secret_is_imported_only_when_asked_and_warned_about_at_every_start() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(&seed, LEGACY_SEED).unwrap();
    let mut config = crate::helpers::test_config(&dir);
    config.seed = Some(seed.clone());
    let err = portcullis::Application::build(&config)
        .await
        .err()
        .expect("a short secret is refused without the flag")
        .to_string();
    assert!(err.contains("legacy_short_secret"), "{err}");

    let flagged = LEGACY_SEED.replace(
        "client_secret = \"watup\"",
        "client_secret = \"watup\"\nlegacy_short_secret = true",
    );
    std::fs::write(&seed, flagged).unwrap();
    let server = crate::helpers::ChildServer::start(
        1024,
        &["--seed", seed.to_str().unwrap(), "--compat", "auth-server"],
    );
    assert!(
        server
            .startup_log
            .iter()
            .any(|l| l.contains("WARN") && l.contains("client `watup` uses a short legacy secret")),
        "{:#?}",
        server.startup_log
    );
    // It works as the document's clients use it.
    let resp = crate::helpers::http_client_builder()
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{}/oauth/token", server.port))
        .basic_auth("watup", Some("watup"))
        .form(&[
            ("grant_type", "password"),
            ("username", "leon"),
            ("password", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let token: Value = resp.json().await.unwrap();
    assert_eq!(token["scope"], "all");
}
