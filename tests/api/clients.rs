//! OAuth client management.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app, spawn_app_with};

fn web_client() -> Value {
    json!({"name": "Grafana", "redirect_uris": ["https://grafana.example.com/login/generic_oauth"]})
}

#[tokio::test]
async fn developers_register_confidential_clients_with_a_secret_shown_once() {
    let app = spawn_app().await;
    let dev = app.register_developer("ada").await;
    let resp = app.create_client(&dev.access_token, &web_client()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let client: Value = resp.json().await.unwrap();
    assert_eq!(client["name"], "Grafana");
    assert_eq!(client["confidential"], true);
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        client["scopes"],
        json!(["email", "offline_access", "openid", "profile"])
    );
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256-bit secret");

    let fetched: Value = app
        .clients_call(Method::GET, &dev.access_token, &format!("/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(fetched.get("client_secret").is_none(), "never shown again");
    let list: Value = app
        .clients_call(Method::GET, &dev.access_token, "", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Only the hash is stored.
    let bytes = app.stored_bytes().await;
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[tokio::test]
async fn public_clients_get_no_secret_and_cannot_use_client_credentials() {
    let app = spawn_app().await;
    let dev = app.register_developer("bea").await;
    let mut body = json!({"name": "CLI", "redirect_uris": ["http://127.0.0.1:8765/callback"], "confidential": false});
    let client: Value = app
        .create_client(&dev.access_token, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(client["confidential"], false);
    assert!(client.get("client_secret").is_none());

    body["grant_types"] = json!(["client_credentials"]);
    let p = problem(
        app.create_client(&dev.access_token, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["code"], "invalid_grant_type");
}

#[tokio::test]
async fn redirect_uris_are_validated_on_registration_and_update() {
    let app = spawn_app().await;
    let dev = app.register_developer("cid").await;
    for bad in [
        "https://app.example.com/cb#x",
        "https://*.example.com/cb",
        "https://user@app.example.com/cb",
        "http://app.example.com/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "/relative",
    ] {
        let p = problem(
            app.create_client(
                &dev.access_token,
                &json!({"name": "x", "redirect_uris": [bad]}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["code"], "invalid_redirect_uri", "{bad}");
    }
    let missing = app
        .create_client(&dev.access_token, &json!({"name": "x"}))
        .await;
    assert_eq!(
        problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "invalid_redirect_uri"
    );

    let client: Value = app
        .create_client(&dev.access_token, &web_client())
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/{}", client["client_id"].as_str().unwrap());
    let bad = app
        .clients_call(
            Method::PATCH,
            &dev.access_token,
            &path,
            Some(&json!({"redirect_uris": ["http://evil.example/cb"]})),
        )
        .await;
    assert_eq!(
        problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "invalid_redirect_uri"
    );
    let ok: Value = app
        .clients_call(
            Method::PATCH,
            &dev.access_token,
            &path,
            Some(&json!({"name": "Grafana 2", "redirect_uris": ["https://g2.example.com/cb"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ok["name"], "Grafana 2");
    assert_eq!(ok["redirect_uris"], json!(["https://g2.example.com/cb"]));
}

#[tokio::test]
async fn only_developers_manage_clients_and_only_their_own() {
    let app = spawn_app().await;
    let plain = app.register_user("dot").await;
    let p = problem(
        app.create_client(&plain.access_token, &web_client()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(p["code"], "developer_role_required");
    assert_eq!(
        app.clients_call(Method::GET, &plain.access_token, "", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let owner = app.register_developer("eli").await;
    let other = app.register_developer("fox").await;
    let client: Value = app
        .create_client(&owner.access_token, &web_client())
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/{}", client["client_id"].as_str().unwrap());
    for method in [Method::GET, Method::DELETE] {
        let resp = app
            .clients_call(method.clone(), &other.access_token, &path, None)
            .await;
        assert_eq!(
            problem(resp, StatusCode::NOT_FOUND).await["code"],
            "not_found",
            "{method}"
        );
    }
    let resp = app
        .clients_call(
            Method::POST,
            &other.access_token,
            &format!("{path}/secret"),
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let list: Value = app
        .clients_call(Method::GET, &other.access_token, "", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn secret_rotation_and_deletion() {
    let app = spawn_app().await;
    let dev = app.register_developer("gil").await;
    let client: Value = app
        .create_client(&dev.access_token, &web_client())
        .await
        .json()
        .await
        .unwrap();
    let id = client["client_id"].as_str().unwrap().to_string();
    let first = client["client_secret"].as_str().unwrap().to_string();

    let rotated: Value = app
        .clients_call(
            Method::POST,
            &dev.access_token,
            &format!("/{id}/secret"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let second = rotated["client_secret"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let clients = &app.services.clients;
    assert!(
        clients
            .authenticate(&id, Some(&first))
            .await
            .unwrap()
            .is_none(),
        "old secret stops working"
    );
    assert!(
        clients
            .authenticate(&id, Some(&second))
            .await
            .unwrap()
            .is_some()
    );
    assert!(clients.authenticate(&id, None).await.unwrap().is_none());
    assert!(
        clients
            .authenticate("nope", Some(&second))
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        app.clients_call(Method::DELETE, &dev.access_token, &format!("/{id}"), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.clients_call(Method::GET, &dev.access_token, &format!("/{id}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        clients
            .authenticate(&id, Some(&second))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn seed_file_clients_are_created_once_with_their_secret() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        r#"
[[users]]
username = "alice"
email = "alice@example.test"
password = "correct horse battery staple"
roles = ["admin", "developer"]

[[clients]]
client_id = "demo"
client_secret = "demo-secret-change-me"
owner = "alice"
name = "Demo app"
redirect_uris = ["http://127.0.0.1:9999/callback"]
grant_types = ["authorization_code", "refresh_token", "client_credentials", "password"]
scopes = ["openid", "profile", "email", "offline_access"]

[[clients]]
client_id = "spa"
owner = "alice"
name = "Single-page app"
redirect_uris = ["http://localhost:5173/callback"]
"#,
    )
    .unwrap();
    let path = seed.clone();
    let app = spawn_app_with(move |c| c.seed = Some(path)).await;
    let demo = app
        .services
        .clients
        .authenticate("demo", Some("demo-secret-change-me"))
        .await
        .unwrap()
        .expect("seeded");
    assert_eq!(demo.grant_types.len(), 4);
    let spa = app
        .services
        .clients
        .authenticate("spa", None)
        .await
        .unwrap()
        .expect("public client");
    assert!(!spa.confidential);
    // The two seeded clients plus the built-in Swagger UI client; loading again adds none.
    let before = app.table_count("clients").await;
    assert_eq!(before, 3);
    let app = app.restart().await;
    assert_eq!(app.table_count("clients").await, before);
}

#[tokio::test]
async fn token_endpoint_auth_method_decides_public_or_confidential() {
    let app = spawn_app().await;
    let dev = app.register_developer("authmethod").await;
    let create = |extra: Value| {
        let mut body = json!({"name": "m", "redirect_uris": ["https://m.example/cb"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (app, token) = (&app, dev.access_token.clone());
        async move { app.create_client(&token, &body).await }
    };
    let public: Value = create(json!({"token_endpoint_auth_method": "none"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        public["confidential"], false,
        "none asks for a public client"
    );
    assert!(public.get("client_secret").is_none());
    let post: Value = create(json!({"token_endpoint_auth_method": "client_secret_post"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["confidential"], true);
    assert!(post["client_secret"].is_string());
    for bad in [
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        json!({"token_endpoint_auth_method": "none", "confidential": true}),
    ] {
        let resp = create(bad.clone()).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "invalid_client_metadata", "{bad}");
    }
}
