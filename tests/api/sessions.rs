//! Login, throttling, refresh rotation and reuse detection, logout.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn login_by_username_or_email_returns_a_working_pair() {
    let app = spawn_app().await;
    let user = app.register_user("dave").await;
    for login in ["dave", "DAVE", "dave@example.test", "Dave@Example.Test"] {
        let resp = app.login(login, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::OK, "{login}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["user"]["id"], user.id.as_str());
        assert_eq!(body["token_type"], "Bearer");
        let me = app.get_me(body["access_token"].as_str().unwrap()).await;
        assert_eq!(me.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn wrong_password_unknown_and_disabled_users_get_the_same_401() {
    let app = spawn_app().await;
    let user = app.register_user("erin").await;
    let disabled = app.register_user("frank").await;
    app.services
        .accounts
        .set_disabled(&disabled.id, true)
        .await
        .unwrap();

    let wrong = problem(
        app.login("erin", "Wrong-password-123!").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = problem(
        app.login("nobody", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown_email = problem(
        app.login("nobody@example.test", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let off = problem(app.login("frank", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong["code"], "invalid_credentials");
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, unknown_email);
    assert_eq!(wrong, off);

    // A disabled user's existing session stops working too.
    assert_eq!(
        app.get_me(&disabled.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_with_retry_after_then_it_recovers() {
    let app = spawn_app().await;
    app.register_user("gina").await;
    for _ in 0..5 {
        assert_eq!(
            app.login("gina", "Wrong-password-123!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused while locked, and the email form shares the lock.
    for login in ["gina", "gina@example.test"] {
        let resp = app.login(login, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0 && retry <= 900, "{retry}");
        let p = problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(p["code"], "rate_limited");
        assert_eq!(p["retry_after"], retry);
    }
    app.clock.advance(901);
    assert_eq!(app.login("gina", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_accounts_are_throttled_exactly_like_real_ones() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(
            app.login("ghost", "Wrong-password-123!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = app.login("ghost", "Wrong-password-123!").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let user = app.register_user("hank").await;

    let first: Value = app.refresh(&user.refresh_token).await.json().await.unwrap();
    let second_refresh = first["refresh_token"].as_str().unwrap().to_string();
    let second_access = first["access_token"].as_str().unwrap().to_string();
    assert_ne!(second_refresh, user.refresh_token);
    assert_eq!(app.get_me(&second_access).await.status(), StatusCode::OK);

    // Past the reuse grace, presenting the rotated token again is reuse: refused, and the
    // family dies.
    app.clock.advance(11);
    let reuse = problem(
        app.refresh(&user.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(reuse["code"], "invalid_refresh_token");
    assert_eq!(
        app.refresh(&second_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_me(&second_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Other sessions of the same user are untouched.
    let other: Value = app.login("hank", PASSWORD).await.json().await.unwrap();
    assert_eq!(
        app.get_me(other["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn garbage_refresh_token_is_401() {
    let app = spawn_app().await;
    let p = problem(app.refresh("not-a-token").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(p["code"], "invalid_refresh_token");
}

#[tokio::test]
async fn refresh_token_expires_after_idle_and_absolute_lifetimes() {
    let app = spawn_app().await;
    let user = app.register_user("iris").await;
    app.clock.advance(14 * 24 * 3600 + 1);
    assert_eq!(
        app.refresh(&user.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Refreshing every 13 days still ends at the 30-day absolute limit.
    let mut token = app
        .login("iris", PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        app.clock.advance(13 * 24 * 3600);
        let body: Value = app.refresh(&token).await.json().await.unwrap();
        token = body["refresh_token"].as_str().unwrap().to_string();
    }
    app.clock.advance(4 * 24 * 3600 + 1);
    assert_eq!(app.refresh(&token).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_revokes_refresh_and_access_tokens() {
    let app = spawn_app().await;
    let user = app.register_user("jack").await;
    assert_eq!(
        app.logout(&user.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.refresh(&user.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Logging out twice, or with an unknown token, is fine.
    assert_eq!(
        app.logout(&user.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.logout("unknown").await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn access_token_expires_after_its_ttl() {
    let app = spawn_app().await;
    let user = app.register_user("kate").await;
    app.clock.advance(899);
    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::OK
    );
    app.clock.advance(1);
    let p = problem(
        app.get_me(&user.access_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(p["code"], "invalid_token");
}

#[tokio::test]
async fn one_address_spraying_many_accounts_is_throttled() {
    let app = crate::helpers::spawn_app_with(|c| c.login_max_failures_per_ip = 3).await;
    app.register_user("real").await;
    for name in ["spray1", "spray2", "spray3"] {
        assert_eq!(
            app.login(name, "Wrong-password-123!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password for an untouched account is refused from this address now.
    let resp = app.login("real", PASSWORD).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        problem(resp, StatusCode::TOO_MANY_REQUESTS).await["code"],
        "rate_limited"
    );
    app.clock.advance(901);
    assert_eq!(app.login("real", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn forwarded_addresses_count_only_when_trusted() {
    let login_from =
        |app: &crate::helpers::TestApp, forwarded: &'static str, name: &'static str| {
            app.client
                .post(app.url("/api/v1/sessions"))
                .header("x-forwarded-for", forwarded)
                .json(&serde_json::json!({"login": name, "password": "Wrong-password-123!"}))
                .send()
        };
    let trusted = crate::helpers::spawn_app_with(|c| {
        c.login_max_failures_per_ip = 2;
        c.trust_forwarded_for = true;
    })
    .await;
    for name in ["p1", "p2"] {
        assert_eq!(
            login_from(&trusted, "127.0.0.2", name)
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&trusted, "127.0.0.2", "p3")
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&trusted, "127.0.0.3", "p3")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "another client"
    );

    // Untrusted (the default): the header is ignored, so changing it does not escape the limit.
    let untrusted = crate::helpers::spawn_app_with(|c| c.login_max_failures_per_ip = 2).await;
    assert_eq!(
        login_from(&untrusted, "127.0.0.2", "q1")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&untrusted, "127.0.0.3", "q2")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&untrusted, "127.0.0.4", "q3")
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_retried_refresh_within_the_grace_gets_a_fresh_successor_instead_of_a_sign_out() {
    let app = spawn_app().await;
    let user = app.register_user("retry").await;
    // The first answer is "lost": the client retries with the same token 3 s later.
    let lost: Value = app.refresh(&user.refresh_token).await.json().await.unwrap();
    app.clock.advance(3);
    let retried = app.refresh(&user.refresh_token).await;
    assert_eq!(retried.status(), StatusCode::OK, "within the 10 s grace");
    let retried: Value = retried.json().await.unwrap();
    assert_ne!(retried["refresh_token"], lost["refresh_token"]);
    // Both successors belong to the live session; the retried one carries on.
    let access = retried["access_token"].as_str().unwrap();
    assert_eq!(app.get_me(access).await.status(), StatusCode::OK);
    let next = app
        .refresh(retried["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(next.status(), StatusCode::OK);

    // After the grace the same old token is reuse again: the whole family is revoked.
    app.clock.advance(20);
    let reuse = app.refresh(&user.refresh_token).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let next: Value = next.json().await.unwrap();
    assert_eq!(
        app.refresh(next["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_zero_reuse_grace_revokes_on_the_first_retry() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = 0).await;
    let user = app.register_user("strict").await;
    let first: Value = app.refresh(&user.refresh_token).await.json().await.unwrap();
    app.clock.advance(1);
    assert_eq!(
        app.refresh(&user.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the family was revoked"
    );
}
