//! Dynamic Client Registration (RFC 7591) and management (RFC 7592): open to developers with
//! their access token and to holders of an admin-issued initial access token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn register(app: &TestApp, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url("/oauth2/register")).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn manage(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let path = uri.strip_prefix(crate::helpers::ISSUER).unwrap();
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_developer_registers_reads_replaces_and_deletes_a_client() {
    let app = spawn_app().await;
    let dev = app.register_developer("spa-dev").await;
    let metadata = json!({
        "client_name": "My SPA",
        "redirect_uris": ["https://spa.example/cb"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile",
        "post_logout_redirect_uris": ["https://spa.example/bye"],
        "backchannel_logout_uri": "https://spa.example/bcl",
        "id_token_signed_response_alg": "EdDSA",
        "allowed_origins": ["https://spa.example"],
        "access_token_format": "jwt",
        "logo_uri": "https://spa.example/logo.png",
    });
    let (status, made) = register(&app, Some(&dev.access_token), &metadata).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    // §3.2.1: what was registered, as registered (unknown `logo_uri` ignored).
    for field in [
        "client_name",
        "redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "scope",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "id_token_signed_response_alg",
        "allowed_origins",
        "access_token_format",
    ] {
        assert_eq!(made[field], metadata[field], "{field}");
    }
    assert!(
        made.get("client_secret").is_none(),
        "a public client has no secret"
    );
    assert!(made.get("logo_uri").is_none());
    let client_id = made["client_id"].as_str().unwrap();
    let token = made["registration_access_token"].as_str().unwrap();
    let uri = made["registration_client_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("{}/oauth2/register/{client_id}", crate::helpers::ISSUER)
    );
    // The developer sees it among their clients too.
    let mine: Value = app
        .clients_call(Method::GET, &dev.access_token, "", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == client_id)
    );

    // RFC 7592 §2.1: read with the registration access token, and only with it.
    let (status, read) = manage(&app, Method::GET, uri, token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["redirect_uris"], metadata["redirect_uris"]);
    assert!(read.get("registration_access_token").is_none());
    for wrong in ["nope", dev.access_token.as_str()] {
        let (status, body) = manage(&app, Method::GET, uri, wrong, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }

    // §2.2: replace.
    let mut changed = metadata.clone();
    changed["client_id"] = json!(client_id);
    changed["redirect_uris"] = json!(["https://spa.example/callback"]);
    let (status, replaced) = manage(&app, Method::PUT, uri, token, Some(&changed)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        replaced["redirect_uris"],
        json!(["https://spa.example/callback"])
    );
    let mut switch = changed.clone();
    switch["token_endpoint_auth_method"] = json!("client_secret_basic");
    let (status, body) = manage(&app, Method::PUT, uri, token, Some(&switch)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata"))
    );
    let (status, _) = manage(&app, Method::PUT, uri, token, Some(&metadata)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a PUT must name the client"
    );

    // §2.3: delete; the token dies with it.
    let (status, _) = manage(&app, Method::DELETE, uri, token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = manage(&app, Method::GET, uri, token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_metadata_gets_the_rfc_7591_error_and_registers_nothing() {
    let app = spawn_app().await;
    let dev = app.register_developer("careful").await;
    let before = app.table_count("clients").await;
    for (body, error) in [
        (
            json!({"redirect_uris": ["http://spa.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://spa.example/cb#f"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "access_token_format": "macaroon"}),
            "invalid_client_metadata",
        ),
    ] {
        let (status, answer) = register(&app, Some(&dev.access_token), &body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{body}"
        );
    }
    let resp = app
        .client
        .post(app.url("/oauth2/register"))
        .bearer_auth(&dev.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // No token, or a user who is not a developer.
    let (status, _) = register(&app, None, &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let user = app.register_user("plain").await;
    let (status, answer) = register(
        &app,
        Some(&user.access_token),
        &json!({"redirect_uris": ["https://a.example/cb"]}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert_eq!(app.table_count("clients").await, before);
}

#[tokio::test]
async fn an_initial_access_token_registers_as_many_clients_as_it_allows_until_it_expires() {
    let app = spawn_app().await;
    let admin = crate::admin::admin(&app).await;
    let user = app.register_user("nobody").await;
    let issue = |token: String, body: Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/admin/initial-access-tokens"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = issue(user.access_token.clone(), json!({})).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = issue(admin.clone(), json!({"uses": 2, "expires_in": 3600})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let iat = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let body = json!({"client_name": "backend", "grant_types": ["client_credentials"]});
    let (status, first) = register(&app, Some(&iat), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["token_endpoint_auth_method"], "client_secret_basic");
    let secret = first["client_secret"]
        .as_str()
        .expect("a confidential client's secret");
    // It works at the token endpoint at once.
    let resp = app
        .oauth_post(
            "token",
            &[("grant_type", "client_credentials")],
            Some((first["client_id"].as_str().unwrap(), secret)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The admin owns it.
    let owned: Value = app
        .clients_call(
            Method::GET,
            &admin,
            &format!("/{}", first["client_id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(owned["name"], "backend");

    let (status, _) = register(&app, Some(&iat), &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = register(&app, Some(&iat), &body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token")),
        "used up"
    );

    let resp = issue(admin.clone(), json!({"expires_in": 60})).await;
    let short = resp.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.clock.advance(61);
    let (status, _) = register(&app, Some(&short), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");

    let meta: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        meta["registration_endpoint"],
        format!("{}/oauth2/register", crate::helpers::ISSUER)
    );
}
