//! A user's own sessions, connected applications and account deletion: the native API
//! (`/api/v1/me/sessions`, `/api/v1/me/consents`, `/api/v1/me/delete`) and the same service
//! calls on the account page.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, location, scrape, spawn_app},
    oidc_conformance::{authorize_url, first_hop, op, tokens_for},
};

/// The kinds of the caller's own audit events, newest first.
async fn kinds_of(app: &crate::helpers::TestApp, token: &str) -> Vec<String> {
    let events: Value = app
        .client
        .get(app.url("/api/v1/me/events?limit=200"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_user_lists_and_ends_their_sessions_and_no_one_elses() {
    let app = spawn_app().await;
    let first = app.register_user("ida").await;
    let other_user = app.register_user("jon").await;
    let second: Value = app
        .client
        .post(app.url("/api/v1/sessions"))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
        )
        .json(&json!({"login": "ida", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = second["access_token"].as_str().unwrap();
    let listed: Value = app
        .client
        .get(app.url("/api/v1/me/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current["ip"], "127.0.0.1", "{current}");
    assert!(
        current["user_agent"]
            .as_str()
            .unwrap()
            .contains("Firefox/130.0")
    );
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    let end = |id: String, bearer: String| {
        app.client
            .delete(app.url(&format!("/api/v1/me/sessions/{id}")))
            .bearer_auth(bearer)
            .send()
    };
    // Jon cannot end Ida's session.
    let theirs = end(
        other["id"].as_str().unwrap().into(),
        other_user.access_token.clone(),
    )
    .await
    .unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.refresh(&first.refresh_token).await.status(),
        StatusCode::OK
    );
    let ended = end(other["id"].as_str().unwrap().into(), token.into())
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let again = end(other["id"].as_str().unwrap().into(), token.into())
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_me(&first.access_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "its access token died with it"
    );
}

#[tokio::test]
async fn revoking_an_applications_access_ends_its_tokens_and_it_must_ask_again() {
    let (app, id, secret) = op().await;
    let client = (id.clone(), secret);
    let tokens = tokens_for(&app, &client, &[("scope", "openid profile")]).await;
    let refresh = |token: String| {
        let app = &app;
        let client = &client;
        async move {
            app.oauth_post(
                "token",
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                Some((&client.0, &client.1)),
            )
            .await
        }
    };
    // The app's refresh works while it has consent.
    let before = refresh(tokens["refresh_token"].as_str().unwrap().into()).await;
    assert_eq!(before.status(), StatusCode::OK);
    let before: Value = before.json().await.unwrap();
    let mine: Value = app.login("carol", PASSWORD).await.json().await.unwrap();
    let me = mine["access_token"].as_str().unwrap();
    let consents: Value = app
        .client
        .get(app.url("/api/v1/me/consents"))
        .bearer_auth(me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(consents[0]["client_name"], "conformance RP", "{consents}");
    assert!(consents[0]["scope"].as_str().unwrap().contains("profile"));
    let revoke = || {
        app.client
            .delete(app.url(&format!("/api/v1/me/consents/{id}")))
            .bearer_auth(me)
            .send()
    };
    assert_eq!(revoke().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(revoke().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(
        kinds_of(&app, me)
            .await
            .contains(&"consent_revoked".to_string())
    );
    let refreshed = refresh(before["refresh_token"].as_str().unwrap().into()).await;
    assert_eq!(
        refreshed.status(),
        StatusCode::BAD_REQUEST,
        "the app's session ended"
    );
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(refreshed["error"], "invalid_grant");
    // A signed-in browser is asked for consent again (before, it went straight back).
    let b = crate::helpers::page_signed_in(&app, "carol").await;
    let asked = first_hop(&b, &authorize_url(&app, &id, &[])).await;
    let login_page = b.get(app.url(&location(&asked))).send().await.unwrap();
    assert_eq!(
        login_page.status(),
        StatusCode::SEE_OTHER,
        "already signed in"
    );
    let consent = b.get(app.url(&location(&login_page))).send().await.unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    assert!(
        consent
            .text()
            .await
            .unwrap()
            .contains("wants to access your account")
    );
}

#[tokio::test]
async fn deleting_ones_own_account_needs_the_password_and_removes_everything() {
    let app = spawn_app().await;
    let user = app.register_user("kim").await;
    let delete = |body: Value| {
        app.client
            .post(app.url("/api/v1/me/delete"))
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
    };
    let wrong = delete(json!({"password": "nope nope nope"})).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.login("kim", PASSWORD).await.status(), StatusCode::OK);
    let done = delete(json!({"password": PASSWORD})).await.unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login("kim", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.table_count("users").await, 0);
    // The name is free again.
    app.register_user("kim").await;
}

#[tokio::test]
async fn the_account_page_lists_apps_revokes_them_and_deletes_the_account() {
    let (app, id, secret) = op().await;
    tokens_for(&app, &(id.clone(), secret), &[]).await;
    let b = crate::helpers::page_signed_in(&app, "carol").await;
    let html = b
        .get(app.url("/ui/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"consents\"") && html.contains("conformance RP"));
    assert!(
        html.contains("id=\"sessions\""),
        "the app's session is listed"
    );
    let csrf = scrape(&html, "csrf");
    let revoked = b
        .post(app.url("/ui/account/consents/revoke"))
        .form(&[("csrf", csrf.as_str()), ("client_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&revoked), "/ui/account?done=consent-revoked");
    let html = b
        .get(app.url("/ui/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("id=\"consents\""));

    let refused = b
        .post(app.url("/ui/account/delete"))
        .form(&[("csrf", csrf.as_str()), ("password", "wrong wrong wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let deleted = b
        .post(app.url("/ui/account/delete"))
        .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(
        deleted
            .text()
            .await
            .unwrap()
            .contains("Your account was deleted")
    );
    assert_eq!(
        app.login("carol", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_email_change_is_proven_by_a_code_to_the_new_address_and_told_to_the_old() {
    let (app, sink) = crate::smtp::app_with_mail().await;
    let user = app.register_user("lea").await;
    app.register_user("max").await;
    let post = |path: &'static str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
    };
    // An address with an account of its own: the same answer, and its owner is told.
    let taken = post("/api/v1/me/email", json!({"new_email": "max@example.test"}))
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::ACCEPTED);
    sink.wait_for("max@example.test", "already in use").await;

    let asked = post(
        "/api/v1/me/email",
        json!({"new_email": "lea.new@example.test"}),
    )
    .await
    .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let code = sink
        .wait_for("lea.new@example.test", "Confirm your new email")
        .await
        .code_after("confirm this address is", 6, |c| c.is_ascii_digit());
    let confirm = |code: &str, password: &str| {
        post(
            "/api/v1/me/email/confirm",
            json!({"new_email": "lea.new@example.test", "code": code, "password": password}),
        )
    };
    let wrong_code = confirm("000000", PASSWORD).await.unwrap();
    assert_eq!(wrong_code.status(), StatusCode::BAD_REQUEST);
    let wrong_password = confirm(&code, "not the password").await.unwrap();
    assert_eq!(wrong_password.status(), StatusCode::FORBIDDEN);
    let done = confirm(&code, PASSWORD).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["email"], "lea.new@example.test");
    assert_eq!(done["email_verified"], true);
    sink.wait_for("lea@example.test", "email address was changed")
        .await;
    assert_eq!(
        app.login("lea.new@example.test", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("lea@example.test", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old address no longer names the account"
    );
    // The old address is free for someone else.
    assert_eq!(
        app.register(
            &json!({"username": "neo", "email": "lea@example.test", "password": PASSWORD})
        )
        .await
        .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_session_shows_when_a_refresh_last_used_it_to_the_hour() {
    let app = spawn_app().await;
    let user = app.register_user("pam").await;
    let listed = |token: String| {
        let app = &app;
        async move {
            let v: Value = app
                .client
                .get(app.url("/api/v1/me/sessions"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v[0].clone()
        }
    };
    let fresh = listed(user.access_token.clone()).await;
    assert_eq!(fresh["last_used_at"], fresh["created_at"], "{fresh}");
    app.clock.advance(2 * 3600);
    let refreshed: Value = app.refresh(&user.refresh_token).await.json().await.unwrap();
    let used = listed(refreshed["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(used["created_at"], fresh["created_at"]);
    assert_ne!(used["last_used_at"], fresh["created_at"], "{used}");
    // Within the hour, another refresh does not rewrite it.
    app.clock.advance(60);
    let again: Value = app
        .refresh(refreshed["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let same = listed(again["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(same["last_used_at"], used["last_used_at"]);
}
