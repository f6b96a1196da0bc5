//! Response headers every client relies on: no caching of tokens and codes, HSTS over https,
//! and frame protection with a content security policy on every HTML answer.

use reqwest::Response;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};

fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn every_compatible_answer_that_carries_a_token_or_code_is_no_store() {
    let app = spawn_app().await;
    app.register_user("cache").await;
    let cases: Vec<(&str, serde_json::Value)> = vec![
        (
            "/register/",
            json!({"username": "cache2", "email": "cache2@example.test", "password": PASSWORD}),
        ),
        (
            "/login/",
            json!({"username": "cache", "password": PASSWORD}),
        ),
        ("/oauth/login", json!({"id": "cache", "password": PASSWORD})),
        ("/oauth/check_token", json!({"token": "nonsense"})),
        (
            "/api/login",
            json!({"username": "cache", "password": PASSWORD}),
        ),
    ];
    for (path, body) in cases {
        let resp = app
            .client
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(!resp.status().is_server_error(), "{path}");
        assert_eq!(header(&resp, "cache-control"), "no-store", "{path}");
    }
    // Public documents stay cacheable.
    let discovery = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_ne!(header(&discovery, "cache-control"), "no-store");
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_public_url_is_https() {
    let plain = spawn_app().await;
    let resp = plain
        .client
        .get(plain.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());

    let tls = spawn_app_with(|c| c.public_url = Some("https://auth.example.test".into())).await;
    let resp = tls.client.get(tls.url("/healthz")).send().await.unwrap();
    assert_eq!(
        header(&resp, "strict-transport-security"),
        "max-age=31536000"
    );
}

#[tokio::test]
async fn every_html_answer_is_never_framed_and_has_a_content_security_policy() {
    let app = spawn_app().await;
    for path in [
        "/swagger",
        "/ui/login",
        "/ui/reset-password",
        // The compatible sign-in start with an unknown client: its error page.
        "/oauth/?secret_id=nobody&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert!(
            header(&resp, "content-type").starts_with("text/html"),
            "{path}: {}",
            header(&resp, "content-type")
        );
        assert_eq!(header(&resp, "x-frame-options"), "DENY", "{path}");
        let csp = header(&resp, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains('*'), "{path}: nothing from anywhere: {csp}");
    }
}

#[tokio::test]
async fn every_405_says_which_methods_are_allowed() {
    let app = spawn_app().await;
    for (method, path, allowed) in [
        (reqwest::Method::GET, "/oauth2/token", vec!["POST"]),
        (reqwest::Method::DELETE, "/api/v1/me", vec!["GET", "PATCH"]),
        (
            reqwest::Method::PUT,
            "/api/v1/users/some-id/avatar",
            vec!["GET", "HEAD"],
        ),
        (reqwest::Method::TRACE, "/healthz", vec!["GET"]),
    ] {
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            reqwest::StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let allow = header(&resp, "allow").to_string();
        for m in allowed {
            assert!(
                allow.split(", ").any(|a| a == m),
                "{method} {path}: Allow {allow:?} lacks {m}"
            );
        }
        assert!(
            !allow.split(", ").any(|a| a == method.as_str()),
            "{method} {path}: Allow {allow:?}"
        );
    }
}
