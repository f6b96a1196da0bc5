//! Pushed Authorization Requests (RFC 9126): the client posts its request first and sends
//! the browser with only the `request_uri` it got back, once, within its lifetime.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, browser, browser_sign_in, location};
use crate::oidc_conformance::{REDIRECT, op, param, redeem};

async fn push(
    app: &TestApp,
    client: &(String, String),
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "pushed-state"),
    ];
    form.extend_from_slice(extra);
    let resp = app
        .client
        .post(app.url("/oauth2/par"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

fn authorize_with(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", client_id), ("request_uri", request_uri)])
        .finish();
    app.url(&format!("/oauth2/authorize?{q}"))
}

#[tokio::test]
async fn a_pushed_request_is_used_by_its_request_uri_once() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    let (status, pushed) = push(&app, &client, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(pushed["expires_in"], 60);

    let url = authorize_with(&app, &client.0, request_uri);
    let to = browser_sign_in(&app, &browser(), &url, "carol", PASSWORD).await;
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(
        param(&to, "state").as_deref(),
        Some("pushed-state"),
        "the pushed state"
    );
    let tokens = redeem(&app, &client, &param(&to, "code").unwrap()).await;
    assert!(tokens["id_token"].is_string());

    // §4: one use only.
    let again = browser().get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
}

#[tokio::test]
async fn a_pushed_request_expires_and_belongs_to_its_client() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    let (_, pushed) = push(&app, &client, &[]).await;
    let request_uri = pushed["request_uri"].as_str().unwrap().to_string();
    // Another registered client cannot use it …
    let owner: Value = app.login("rpowner", PASSWORD).await.json().await.unwrap();
    let other: Value = app
        .create_client(
            owner["access_token"].as_str().unwrap(),
            &json!({"name": "other", "redirect_uris": [REDIRECT]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let resp = browser()
        .get(authorize_with(
            &app,
            other["client_id"].as_str().unwrap(),
            &request_uri,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // … and after 60 seconds its own client cannot either.
    let (_, pushed) = push(&app, &client, &[]).await;
    app.clock.advance(61);
    let resp = browser()
        .get(authorize_with(
            &app,
            &client.0,
            pushed["request_uri"].as_str().unwrap(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_pushed_request_is_checked_when_pushed_and_answers_json_errors() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    let resp = app
        .client
        .post(app.url("/oauth2/par"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("response_type", "token"), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "unsupported_response_type"
    );
    let resp = app
        .client
        .post(app.url("/oauth2/par"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let resp = app
        .client
        .post(app.url("/oauth2/par"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("response_type", "code"), ("request_uri", "urn:x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let resp = app
        .client
        .post(app.url("/oauth2/par"))
        .basic_auth(&client.0, Some("wrong secret here"))
        .form(&[("response_type", "code")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.table_count("pushed_requests").await, 0, "nothing kept");
}

#[tokio::test]
async fn a_client_that_requires_par_refuses_plain_authorization_requests() {
    let (app, _, _) = op().await;
    let owner: Value = app.login("rpowner", PASSWORD).await.json().await.unwrap();
    let made: Value = app
        .create_client(
            owner["access_token"].as_str().unwrap(),
            &json!({"name": "strict", "redirect_uris": [REDIRECT], "require_pushed_authorization_requests": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(made["require_pushed_authorization_requests"], true);
    let client = (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    );
    let plain = crate::oidc_conformance::authorize_url(&app, &client.0, &[]);
    let resp = browser().get(&plain).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("invalid_request"),
        "{to}"
    );

    let (_, pushed) = push(&app, &client, &[]).await;
    let url = authorize_with(&app, &client.0, pushed["request_uri"].as_str().unwrap());
    let to = browser_sign_in(&app, &browser(), &url, "carol", PASSWORD).await;
    assert!(param(&to, "code").is_some(), "{to}");

    let meta: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        meta["pushed_authorization_request_endpoint"],
        format!("{}/oauth2/par", crate::helpers::ISSUER)
    );
}
