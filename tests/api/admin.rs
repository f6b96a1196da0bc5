//! `/api/v1/admin/users`: listing, disabling, roles and deletion, for admins only.

use portcullis::{domain::Role, service::accounts::Registration};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, noisy_png, problem, spawn_app};

/// An admin made the way the CLI makes one; returns their access token.
pub(crate) async fn admin(app: &TestApp) -> String {
    create_root(app).await;
    let body: Value = app.login("root", PASSWORD).await.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// The admin `root` (password [`PASSWORD`]), created directly through the service.
async fn create_root(app: &TestApp) {
    app.services
        .accounts
        .create_user(
            Registration {
                username: "root".into(),
                email: "root@example.test".into(),
                password: PASSWORD.into(),
                ..Registration::default()
            },
            vec![Role::Admin],
            true,
            false,
        )
        .await
        .unwrap();
}

/// Like [`admin`], under an MFA policy that covers admins: `root` enrols an authenticator
/// app inside the sign-in, and the token comes after its first code.
pub(crate) async fn admin_token_with_totp(app: &TestApp) -> String {
    create_root(app).await;
    let offer: Value = app.login("root", PASSWORD).await.json().await.unwrap();
    let secret = offer["totp_enrolment"]["secret"].as_str().unwrap();
    let code = crate::mfa::totp_code(app, secret, 0);
    let done: Value = app
        .client
        .post(app.url("/api/v1/sessions/mfa"))
        .json(&serde_json::json!({"mfa_token": offer["mfa_token"], "totp": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    done["access_token"].as_str().unwrap().to_string()
}

async fn call(
    app: &TestApp,
    method: Method,
    token: &str,
    suffix: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/v1/admin/users{suffix}")))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn admins_list_and_search_users_page_by_page() {
    let app = spawn_app().await;
    let root = admin(&app).await;
    for name in ["ann", "bob", "annika"] {
        app.register_user(name).await;
    }
    let resp = call(&app, Method::GET, &root, "", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list["total"], 4);
    assert_eq!(list["page"], 1);
    assert_eq!(list["per_page"], 50);
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["root", "ann", "bob", "annika"],
        "registration order"
    );
    assert_eq!(list["users"][1]["disabled"], false);
    assert_eq!(list["users"][1]["number"], 2);

    let found: Value = call(&app, Method::GET, &root, "?q=ANN", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 2);
    let empty: Value = call(&app, Method::GET, &root, "?page=2", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["users"].as_array().unwrap().len(), 0);
    assert_eq!(empty["total"], 4);
    let resp = call(&app, Method::GET, &root, "?page=0", None).await;
    assert_eq!(
        problem(resp, StatusCode::BAD_REQUEST).await["code"],
        "invalid_parameter"
    );
}

#[tokio::test]
async fn only_admins_may_administer() {
    let app = spawn_app().await;
    let user = app.register_user("eve").await;
    let resp = call(&app, Method::GET, &user.access_token, "", None).await;
    assert_eq!(
        problem(resp, StatusCode::FORBIDDEN).await["code"],
        "admin_role_required"
    );
    let resp = call(
        &app,
        Method::DELETE,
        &user.access_token,
        &format!("/{}", user.id),
        None,
    )
    .await;
    assert_eq!(
        problem(resp, StatusCode::FORBIDDEN).await["code"],
        "admin_role_required"
    );
    let resp = app
        .client
        .get(app.url("/api/v1/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::OK,
        "eve is untouched"
    );
}

#[tokio::test]
async fn disabling_ends_sessions_and_roles_are_set_exactly() {
    let app = spawn_app().await;
    let root = admin(&app).await;
    let bob = app.register_user("bob").await;
    let resp = call(
        &app,
        Method::PATCH,
        &root,
        &format!("/{}", bob.id),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["disabled"], true);
    assert_eq!(
        app.get_me(&bob.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&bob.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("bob", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let body: Value = call(
        &app,
        Method::PATCH,
        &root,
        &format!("/{}", bob.id),
        Some(json!({"disabled": false, "roles": ["developer", "developer"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["disabled"], false);
    assert_eq!(body["roles"], json!(["developer"]));
    assert_eq!(app.login("bob", PASSWORD).await.status(), StatusCode::OK);

    let resp = call(
        &app,
        Method::PATCH,
        &root,
        &format!("/{}", bob.id),
        Some(json!({"roles": ["owner"]})),
    )
    .await;
    assert_eq!(
        problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "invalid_role"
    );
    let resp = call(
        &app,
        Method::PATCH,
        &root,
        "/no-such-user",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(
        problem(resp, StatusCode::NOT_FOUND).await["code"],
        "not_found"
    );
}

#[tokio::test]
async fn an_admin_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let root = admin(&app).await;
    let me: Value = app.get_me(&root).await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();
    for body in [json!({"disabled": true}), json!({"roles": ["developer"]})] {
        let resp = call(&app, Method::PATCH, &root, &format!("/{id}"), Some(body)).await;
        assert_eq!(
            problem(resp, StatusCode::FORBIDDEN).await["code"],
            "own_account"
        );
    }
    let resp = call(&app, Method::DELETE, &root, &format!("/{id}"), None).await;
    assert_eq!(
        problem(resp, StatusCode::FORBIDDEN).await["code"],
        "own_account"
    );
    assert_eq!(app.get_me(&root).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleting_removes_the_user_and_everything_theirs() {
    let app = spawn_app().await;
    let root = admin(&app).await;
    let bob = app.register_developer("bob").await;
    assert_eq!(
        app.upload_avatar(
            &bob.access_token,
            "a.png",
            "image/png",
            noisy_png(32, 32, [0, 0, 0])
        )
        .await
        .status(),
        StatusCode::OK
    );
    let resp = app
        .create_client(
            &bob.access_token,
            &json!({"name": "Bob's app", "redirect_uris": ["https://bob.example/cb"]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let clients_before = app.table_count("clients").await;

    let resp = call(&app, Method::DELETE, &root, &format!("/{}", bob.id), None).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_me(&bob.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&bob.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("bob", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_avatar(&bob.id, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.table_count("clients").await,
        clients_before - 1,
        "bob's client went with him"
    );
    assert_eq!(app.table_count("users").await, 1);
    // The name and address are free again.
    app.register_user("bob").await;

    let resp = call(&app, Method::DELETE, &root, &format!("/{}", bob.id), None).await;
    assert_eq!(
        problem(resp, StatusCode::NOT_FOUND).await["code"],
        "not_found"
    );
}

#[tokio::test]
async fn an_admin_downloads_a_consistent_backup_while_the_server_keeps_serving() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let user = app.register_user("kept").await;
    let backup = |token: Option<String>| {
        let mut req = app.client.get(app.url("/api/v1/admin/backup"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(
        backup(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let refused = backup(Some(user.access_token.clone())).await.unwrap();
    problem(refused, StatusCode::FORBIDDEN).await;

    let resp = backup(Some(token)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"portcullis-")
            && disposition.ends_with(".redb\""),
        "{disposition}"
    );
    let bytes = resp.bytes().await.unwrap();
    // The server kept serving: a write after the snapshot succeeds and is not in it.
    let later = app.register_user("later").await;

    // No copy is left behind in the data directory.
    let leftovers: Vec<_> = std::fs::read_dir(&app.config.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snapshot"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The download is a database that opens, decodes and holds the users of that moment.
    let dir = tempfile::tempdir().unwrap();
    let restored = dir.path().join("portcullis.redb");
    std::fs::write(&restored, &bytes).unwrap();
    let store = portcullis::store::Store::open(&restored, portcullis::clock::Clock::system())
        .expect("the backup opens");
    assert!(store.verify().unwrap().is_empty());
    assert!(store.get_user(&user.id).unwrap().is_some());
    assert!(store.get_user(&later.id).unwrap().is_none());
}

#[tokio::test]
async fn admins_list_every_client_and_others_may_not() {
    let app = spawn_app().await;
    let root = admin(&app).await;
    let dev = app.register_developer("lister").await;
    let made: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Listed", "redirect_uris": ["https://app.example.test/cb"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let list = |token: String| {
        app.client
            .get(app.url("/api/v1/admin/clients"))
            .bearer_auth(token)
            .send()
    };
    let refused = list(dev.access_token.clone()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let all: Value = list(root).await.unwrap().json().await.unwrap();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == made["client_id"] && c["name"] == "Listed"),
        "{all}"
    );
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("client_secret").is_none()),
        "no secrets in the listing"
    );
}
