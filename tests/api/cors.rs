//! CORS for browser apps on other origins: public documents for anyone, token endpoints for
//! the origins clients registered, nothing for the rest.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const SPA: &str = "https://spa.example";

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

fn acao(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn discovery_jwks_and_paserk_answer_any_origin() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/oauth2/jwks",
        "/oauth2/paserk",
    ] {
        let pre = preflight(&app, path, "https://anyone.example", "GET").await;
        assert_eq!(pre.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(acao(&pre).as_deref(), Some("*"), "{path}");
        let get = app
            .client
            .get(app.url(path))
            .header("Origin", "https://anyone.example")
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::OK, "{path}");
        assert_eq!(acao(&get).as_deref(), Some("*"), "{path}");
    }
}

#[tokio::test]
async fn token_endpoints_answer_only_registered_origins() {
    let app = spawn_app().await;
    let dev = app.register_developer("spadev").await;
    let spa: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "SPA", "redirect_uris": [format!("{SPA}/callback")], "confidential": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        spa["allowed_origins"],
        json!([]),
        "none registered explicitly"
    );

    // A public client's redirect URI origin is allowed by default.
    for (path, method) in [
        ("/oauth2/token", "POST"),
        ("/oauth2/revoke", "POST"),
        ("/oauth2/userinfo", "GET"),
    ] {
        let pre = preflight(&app, path, SPA, method).await;
        assert_eq!(pre.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(acao(&pre).as_deref(), Some(SPA), "{path}");
        let allow = pre.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(allow.contains(method), "{path}: {allow}");
        let headers = pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap();
        assert!(headers.contains("authorization"), "{path}: {headers}");

        let evil = preflight(&app, path, "https://evil.example", method).await;
        assert!(acao(&evil).is_none(), "{path}: no CORS headers for others");
    }
    // The actual request (an error here, which the app must be able to read too).
    let resp = app
        .client
        .post(app.url("/oauth2/token"))
        .header("Origin", SPA)
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "no client named");
    assert_eq!(acao(&resp).as_deref(), Some(SPA));
    let resp = app
        .client
        .post(app.url("/oauth2/token"))
        .header("Origin", "https://evil.example")
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert!(acao(&resp).is_none());
    // Native API paths have no CORS at all.
    let me = preflight(&app, "/api/v1/me", SPA, "GET").await;
    assert!(acao(&me).is_none());
}

#[tokio::test]
async fn registered_origins_replace_the_default_and_are_validated() {
    let app = spawn_app().await;
    let dev = app.register_developer("origindev").await;
    let bad = app
        .create_client(
            &dev.access_token,
            &json!({"name": "x", "redirect_uris": ["https://a.example/cb"], "allowed_origins": ["https://a.example/path"]}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "invalid_origin");

    let client: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Backend-for-frontend", "redirect_uris": ["https://app.example/cb"], "allowed_origins": ["https://app.example:8443"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        client["allowed_origins"],
        json!(["https://app.example:8443"])
    );
    let origin = "https://app.example:8443";
    assert_eq!(
        acao(&preflight(&app, "/oauth2/token", origin, "POST").await).as_deref(),
        Some(origin)
    );
    // A confidential client gets no default from its redirect URIs.
    assert!(acao(&preflight(&app, "/oauth2/token", "https://app.example", "POST").await).is_none());
    // Removing the origin takes effect at once on this node.
    let id = client["client_id"].as_str().unwrap();
    let resp = app
        .clients_call(
            Method::PATCH,
            &dev.access_token,
            &format!("/{id}"),
            Some(&json!({"allowed_origins": []})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(acao(&preflight(&app, "/oauth2/token", origin, "POST").await).is_none());
}
