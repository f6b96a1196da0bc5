//! Registration and username availability.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, problem, spawn_app};

#[tokio::test]
async fn register_returns_201_with_user_and_token_pair() {
    let app = spawn_app().await;
    let resp = app
        .register(&json!({
            "username": "小明",
            "email": "17371438227@122.com",
            "password": PASSWORD,
            "display_name": "Xiao Ming"
        }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("v4.public.")
    );
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
    let user = &body["user"];
    assert_eq!(user["username"], "小明");
    assert_eq!(user["email"], "17371438227@122.com");
    assert_eq!(user["display_name"], "Xiao Ming");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["roles"], json!([]));
    assert!(user["id"].as_str().unwrap().len() >= 32);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());

    // The new access token works straight away.
    let me = app.get_me(body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn duplicate_username_or_email_is_409_ignoring_case() {
    let app = spawn_app().await;
    app.register_user("alice").await;

    let same_name = app
        .register(
            &json!({"username": "ALICE", "email": "other@example.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        problem(same_name, StatusCode::CONFLICT).await["code"],
        "username_taken"
    );

    let same_email = app
        .register(
            &json!({"username": "alice2", "email": "Alice@Example.TEST", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        problem(same_email, StatusCode::CONFLICT).await["code"],
        "email_taken"
    );
    assert_eq!(app.table_count("users").await, 1);
}

#[tokio::test]
async fn invalid_fields_get_422_naming_the_rule_and_store_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "a b", "email": "a@example.test", "password": PASSWORD}),
            "invalid_username",
            "username",
        ),
        (
            json!({"username": "zero\u{200B}width", "email": "a@example.test", "password": PASSWORD}),
            "invalid_username",
            "username",
        ),
        (
            json!({"username": "x".repeat(65), "email": "a@example.test", "password": PASSWORD}),
            "invalid_username",
            "username",
        ),
        (
            json!({"username": "bob", "email": "not-an-email", "password": PASSWORD}),
            "invalid_email",
            "email",
        ),
        (
            json!({"username": "bob", "email": "b@example.test", "password": "short"}),
            "invalid_password",
            "password",
        ),
        (
            json!({"username": "bob", "email": "b@example.test", "password": "x".repeat(257)}),
            "invalid_password",
            "password",
        ),
        (
            json!({"username": "bob", "email": "b@example.test", "password": "password123"}),
            "weak_password",
            "password",
        ),
        (
            json!({"username": "bob", "email": "b@example.test", "password": "bobbobbob1"}),
            "weak_password",
            "password",
        ),
        (
            json!({"username": "bob", "email": "b@example.test", "password": PASSWORD, "display_name": "bad\u{202E}name"}),
            "invalid_display_name",
            "display_name",
        ),
    ];
    for (body, code, field) in cases {
        let p = problem(app.register(&body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["code"], code, "{body}");
        assert_eq!(p["field"], field, "{body}");
    }
    assert_eq!(app.table_count("users").await, 0);
    assert_eq!(app.table_count("usernames").await, 0);
}

#[tokio::test]
async fn weak_password_reason_is_given() {
    let app = spawn_app().await;
    let p = problem(
        app.register(
            &json!({"username": "carol", "email": "c@example.test", "password": "qwertyuiop"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("password is too weak: "),
        "{p}"
    );
}

#[tokio::test]
async fn fifty_concurrent_registrations_of_one_username_make_one_user() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = app.client.clone();
        let url = app.url("/api/v1/users");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"username": "race", "email": format!("race{i}@example.test"), "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, conflicts), (1, 49));
    assert_eq!(app.table_count("users").await, 1);
    assert_eq!(app.table_count("emails").await, 1);
}

#[tokio::test]
async fn fifty_concurrent_registrations_of_one_email_make_one_user() {
    let app = spawn_app().await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/api/v1/users");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"username": format!("mail{i}"), "email": "same@example.test", "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        49
    );
    assert_eq!(app.table_count("users").await, 1);
}

#[tokio::test]
async fn username_availability_follows_registrations_ignoring_case() {
    let app = spawn_app().await;
    let free: Value = app
        .username_availability("Alice")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(free, json!({"username": "Alice", "available": true}));

    app.register_user("alice").await;
    for name in ["alice", "ALICE", "%EF%BD%81lice"] {
        let resp = app.username_availability(name).await;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["available"], false, "{name}");
    }
}

#[tokio::test]
async fn invalid_username_query_is_400_with_the_rule() {
    let app = spawn_app().await;
    let p = problem(
        app.username_availability("a%20b").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(p["code"], "invalid_username");
    assert!(p["detail"].as_str().unwrap().contains("whitespace"), "{p}");
}
