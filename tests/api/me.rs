//! The signed-in user's own account: profile, password, API key, developer role.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, problem, spawn_app};

const NEW_PASSWORD: &str = "Quartz-Lantern-97-Meadow";

#[tokio::test]
async fn get_me_returns_the_profile() {
    let app = spawn_app().await;
    let user = app.register_user("liam").await;
    let resp = app.get_me(&user.access_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["username"], "liam");
    assert_eq!(me["email"], "liam@example.test");
}

#[tokio::test]
async fn patch_me_sets_keeps_and_clears_display_name() {
    let app = spawn_app().await;
    let user = app.register_user("mia").await;
    let set: Value = app
        .patch_me(&user.access_token, &json!({"display_name": "  阿巴阿巴 "}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(set["display_name"], "阿巴阿巴");

    let kept: Value = app
        .patch_me(&user.access_token, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["display_name"], "阿巴阿巴");

    let bad = app
        .patch_me(&user.access_token, &json!({"display_name": "a\nb"}))
        .await;
    assert_eq!(
        problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "invalid_display_name"
    );
    let unchanged: Value = app.get_me(&user.access_token).await.json().await.unwrap();
    assert_eq!(unchanged["display_name"], "阿巴阿巴");

    let cleared: Value = app
        .patch_me(&user.access_token, &json!({"display_name": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["display_name"], Value::Null);
}

#[tokio::test]
async fn change_password_keeps_this_session_and_ends_the_others() {
    let app = spawn_app().await;
    let a = app.register_user("noah").await;
    let b: Value = app.login("noah", PASSWORD).await.json().await.unwrap();
    let b_access = b["access_token"].as_str().unwrap();
    let b_refresh = b["refresh_token"].as_str().unwrap();

    let resp = app
        .change_password(&a.access_token, PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    assert_eq!(app.get_me(&a.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&a.refresh_token).await.status(), StatusCode::OK);
    assert_eq!(
        app.get_me(b_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(b_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        app.login("noah", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("noah", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn wrong_current_password_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let user = app.register_user("olga").await;
    let other: Value = app.login("olga", PASSWORD).await.json().await.unwrap();

    let p = problem(
        app.change_password(&user.access_token, "Not-the-password-1", NEW_PASSWORD)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(p["code"], "wrong_password");
    assert_eq!(app.login("olga", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        app.get_me(other["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn weak_new_password_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let user = app.register_user("pete").await;
    let p = problem(
        app.change_password(&user.access_token, PASSWORD, "password1")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["code"], "weak_password");
    assert_eq!(app.login("pete", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn api_key_authenticates_and_rotation_disables_the_old_one() {
    let app = spawn_app().await;
    let user = app.register_user("quinn").await;

    let resp = app.rotate_api_key(&user.access_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let first = resp.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first.starts_with("pcl_"));

    for resp in [
        app.get_me(&first).await,
        app.get_me_with_api_key_header(&first).await,
    ] {
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<Value>().await.unwrap()["id"], user.id.as_str());
    }

    // Rotating with the key itself works, and the old key dies at once.
    let second = app
        .rotate_api_key(&first)
        .await
        .json::<Value>()
        .await
        .unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    let p = problem(app.get_me(&first).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(p["code"], "invalid_token");
    assert_eq!(
        app.get_me_with_api_key_header(&first).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get_me(&second).await.status(), StatusCode::OK);

    // Only a hash is stored: the key's text is nowhere in the database file.
    let bytes = app.stored_bytes().await;
    let needle = second.as_bytes();
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
}

#[tokio::test]
async fn become_developer_grants_the_role_once() {
    let app = spawn_app().await;
    let user = app.register_user("rosa").await;
    for _ in 0..2 {
        let resp = app.become_developer(&user.access_token).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["roles"], json!(["developer"]));
    }
    let me: Value = app.get_me(&user.access_token).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["developer"]));
}
