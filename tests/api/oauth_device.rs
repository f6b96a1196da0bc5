//! The Device Authorization Grant (RFC 8628), end to end: the device's requests, the
//! browser's device, login and consent pages, and every polling answer of §3.5.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, browser, location, scrape, spawn_app};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public "TV" client allowed the device grant, and a user.
async fn tv() -> (TestApp, String) {
    let app = spawn_app().await;
    let dev = app.register_developer("tvmaker").await;
    app.register_user("carol").await;
    let made: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Living-room TV", "grant_types": [DEVICE_GRANT, "refresh_token"], "token_endpoint_auth_method": "none"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(made["token_endpoint_auth_method"], "none");
    (app, made["client_id"].as_str().unwrap().to_string())
}

async fn authorize_device(app: &TestApp, client_id: &str) -> Value {
    let resp = app
        .client
        .post(app.url("/oauth2/device_authorization"))
        .form(&[
            ("client_id", client_id),
            ("scope", "openid profile offline_access"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// Types the user code on the device page, signs in as carol, and answers the consent page
/// with `decision`; returns where the browser ends.
pub(crate) async fn decide_in_browser(app: &TestApp, verification: &str, decision: &str) -> String {
    let b = browser();
    let page = b.get(verification).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let code = scrape(&html, "user_code");
    let entered = b
        .post(app.url("/ui/device"))
        .form(&[
            ("csrf", scrape(&html, "csrf").as_str()),
            ("user_code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(entered.status(), StatusCode::SEE_OTHER);
    let login_page = b.get(app.url(&location(&entered))).send().await.unwrap();
    let html = login_page.text().await.unwrap();
    assert!(
        html.contains("Living-room TV"),
        "the login page names the device's client"
    );
    let signed_in = b
        .post(app.url("/ui/login"))
        .form(&[
            ("request", scrape(&html, "request").as_str()),
            ("csrf", scrape(&html, "csrf").as_str()),
            ("login", "carol"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let consent = b.get(app.url(&location(&signed_in))).send().await.unwrap();
    let html = consent.text().await.unwrap();
    assert!(
        html.contains("A device is asking to sign in as you"),
        "{html}"
    );
    let decided = b
        .post(app.url("/ui/consent"))
        .form(&[
            ("request", scrape(&html, "request").as_str()),
            ("csrf", scrape(&html, "csrf").as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), StatusCode::SEE_OTHER);
    let done = location(&decided);
    let page = b
        .get(app.url(&done))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>"), "{page}");
    done
}

#[tokio::test]
async fn a_device_polls_while_the_user_approves_in_a_browser_then_gets_tokens_once() {
    let (app, client_id) = tv().await;
    let d = authorize_device(&app, &client_id).await;
    let user_code = d["user_code"].as_str().unwrap();
    assert!(
        user_code.len() == 9 && user_code.as_bytes()[4] == b'-',
        "{user_code}"
    );
    assert_eq!(
        d["verification_uri"],
        format!("{}/ui/device", crate::helpers::ISSUER)
    );
    assert_eq!(d["interval"], 5);
    assert_eq!(d["expires_in"], 600);
    let device_code = d["device_code"].as_str().unwrap();

    // §3.5: pending while the user has not decided; polling faster than the interval
    // is slow_down, after which the wait is 5 seconds longer.
    let (status, body) = poll(&app, &client_id, device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    let (_, body) = poll(&app, &client_id, device_code).await;
    assert_eq!(body["error"], "slow_down");
    app.clock.advance(6);
    let (_, body) = poll(&app, &client_id, device_code).await;
    assert_eq!(
        body["error"], "slow_down",
        "the interval was 10 s, and is now 15 s"
    );
    app.clock.advance(15);
    let (_, body) = poll(&app, &client_id, device_code).await;
    assert_eq!(body["error"], "authorization_pending");

    // The browser opens verification_uri_complete on our host.
    let complete = d["verification_uri_complete"].as_str().unwrap();
    let path = complete.strip_prefix(crate::helpers::ISSUER).unwrap();
    let done = decide_in_browser(&app, &app.url(path), "allow").await;
    assert_eq!(done, "/ui/device?done=approved");

    app.clock.advance(15);
    let (status, tokens) = poll(&app, &client_id, device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    let id_token = tokens["id_token"].as_str().expect("openid was asked");
    let claims = crate::oidc_conformance::claims(id_token);
    assert_eq!(claims["aud"], client_id.as_str());
    let me = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        me.json::<Value>().await.unwrap()["preferred_username"],
        "carol"
    );

    // Spent: a second poll gets nothing.
    app.clock.advance(15);
    let (status, body) = poll(&app, &client_id, device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // And the user code no longer opens anything.
    let b = browser();
    let html = b
        .get(app.url("/ui/device"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let again = b
        .post(app.url("/ui/device"))
        .form(&[
            ("csrf", scrape(&html, "csrf").as_str()),
            ("user_code", user_code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_refusal_is_access_denied_and_an_old_code_is_expired_token() {
    let (app, client_id) = tv().await;
    let d = authorize_device(&app, &client_id).await;
    let path = d["verification_uri_complete"]
        .as_str()
        .unwrap()
        .strip_prefix(crate::helpers::ISSUER)
        .unwrap()
        .to_string();
    assert_eq!(
        decide_in_browser(&app, &app.url(&path), "deny").await,
        "/ui/device?done=denied"
    );
    let (_, body) = poll(&app, &client_id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "access_denied");

    let late = authorize_device(&app, &client_id).await;
    app.clock.advance(601);
    let (_, body) = poll(&app, &client_id, late["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "expired_token");
}

#[tokio::test]
async fn device_codes_are_bound_to_their_client_and_grant() {
    let (app, client_id) = tv().await;
    let d = authorize_device(&app, &client_id).await;
    // Another client cannot redeem it.
    let dev: Value = app.login("tvmaker", PASSWORD).await.json().await.unwrap();
    let other: Value = app
        .create_client(
            dev["access_token"].as_str().unwrap(),
            &json!({"name": "Other TV", "grant_types": [DEVICE_GRANT], "token_endpoint_auth_method": "none"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let (_, body) = poll(
        &app,
        other["client_id"].as_str().unwrap(),
        d["device_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    // A client not allowed the grant cannot start it.
    let web: Value = app
        .create_client(
            dev["access_token"].as_str().unwrap(),
            &json!({"name": "Web", "redirect_uris": ["https://web.example/cb"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let resp = app
        .client
        .post(app.url("/oauth2/device_authorization"))
        .basic_auth(
            web["client_id"].as_str().unwrap(),
            web["client_secret"].as_str(),
        )
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    // Unknown clients are invalid_client.
    let resp = app
        .client
        .post(app.url("/oauth2/device_authorization"))
        .form(&[("client_id", "nobody")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let meta: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{}/oauth2/device_authorization", crate::helpers::ISSUER)
    );
}
