//! Each class of bad input gets its own precise 4xx problem and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with};

fn register_body() -> Vec<u8> {
    serde_json::to_vec(
        &json!({"username": "sam", "email": "sam@example.test", "password": PASSWORD}),
    )
    .unwrap()
}

#[tokio::test]
async fn malformed_json_is_400_malformed_json() {
    let app = spawn_app().await;
    for body in [
        &b"{\"username\": \"sam\","[..],
        b"not json",
        b"{'single': 'quotes'}",
        b"   ",
    ] {
        let p = problem(
            app.post_raw("/api/v1/users", Some("application/json"), body.to_vec())
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            p["code"],
            "malformed_json",
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(app.table_count("users").await, 0);
}

#[tokio::test]
async fn invalid_utf8_is_400_invalid_utf8() {
    let app = spawn_app().await;
    let body =
        b"{\"username\": \"s\xffm\", \"email\": \"s@example.test\", \"password\": \"x\"}".to_vec();
    let p = problem(
        app.post_raw("/api/v1/users", Some("application/json"), body)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(p["code"], "invalid_utf8");
    assert_eq!(app.table_count("users").await, 0);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422_invalid_body() {
    let app = spawn_app().await;
    for body in [
        json!({"username": 5, "email": "s@example.test", "password": PASSWORD}),
        json!({"username": "sam", "email": ["s@example.test"], "password": PASSWORD}),
        json!({"username": "sam", "password": PASSWORD}),
        json!(["username", "sam"]),
        json!("sam"),
    ] {
        let p = problem(app.register(&body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["code"], "invalid_body", "{body}");
    }
    assert_eq!(app.table_count("users").await, 0);
}

#[tokio::test]
async fn oversized_body_is_413_before_anything_happens() {
    let app = spawn_app().await;
    let mut big = json!({"username": "sam", "email": "sam@example.test", "password": PASSWORD});
    big["padding"] = json!("x".repeat(70 * 1024));
    let p = problem(app.register(&big).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(p["code"], "payload_too_large");
    assert_eq!(app.table_count("users").await, 0);
}

#[tokio::test]
async fn body_limit_is_configurable() {
    let app = spawn_app_with(|c| c.max_json_body = 64).await;
    let p = problem(
        app.post_raw("/api/v1/users", Some("application/json"), register_body())
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("64 bytes"));
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let app = spawn_app().await;
    for ct in [Some("text/plain"), None] {
        let p = problem(
            app.post_raw("/api/v1/users", ct, register_body()).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
        assert_eq!(p["code"], "unsupported_media_type", "{ct:?}");
    }
    assert_eq!(app.table_count("users").await, 0);
}

#[tokio::test]
async fn missing_and_invalid_credentials_are_distinct_401s() {
    let app = spawn_app().await;
    let user = app.register_user("tess").await;

    let resp = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        problem(resp, StatusCode::UNAUTHORIZED).await["code"],
        "missing_credentials"
    );

    let mut tampered = user.access_token.clone().into_bytes();
    let i = tampered.len() - 120;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    for token in [
        "garbage".to_string(),
        tampered,
        user.access_token.replace("v4.public.", "v4.local."),
        user.refresh_token.clone(),
        "pcl_not-a-real-key".to_string(),
    ] {
        let p = problem(app.get_me(&token).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(p["code"], "invalid_token", "{token}");
    }
}

#[tokio::test]
async fn token_from_another_server_or_issuer_is_rejected() {
    let app = spawn_app().await;
    let other = spawn_app_with(|c| c.public_url = Some("http://elsewhere.localhost".into())).await;
    let foreign = other.register_user("uma").await;
    app.register_user("uma").await;
    let p = problem(
        app.get_me(&foreign.access_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(p["code"], "invalid_token");
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405_as_problems() {
    let app = spawn_app().await;
    let p = problem(
        app.client
            .get(app.url("/api/v1/nope"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(p["code"], "not_found");
    let p = problem(
        app.client
            .delete(app.url("/api/v1/users"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    assert_eq!(p["code"], "method_not_allowed");
}

#[tokio::test]
async fn bad_input_on_authenticated_endpoints_changes_nothing() {
    let app = spawn_app().await;
    let user = app.register_user("vera").await;
    let resp = app
        .client
        .put(app.url("/api/v1/me/password"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body(r#"{"current_password": 1, "new_password": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "invalid_body"
    );
    assert_eq!(app.login("vera", PASSWORD).await.status(), StatusCode::OK);
}
