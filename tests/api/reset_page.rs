//! `/ui/reset-password`: the forgotten-password page, through a real SMTP conversation.

use reqwest::StatusCode;

use crate::{
    helpers::{PASSWORD, TestApp, browser, scrape, spawn_app_with},
    smtp::SmtpSink,
};

const NEW_PASSWORD: &str = "Quartz-Lantern-97-Meadow";

/// Posts the reset form from browser `b`.
async fn submit(app: &TestApp, b: &reqwest::Client, form: &[(&str, &str)]) -> reqwest::Response {
    b.post(app.url("/ui/reset-password"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_browser_resets_a_forgotten_password_with_the_mailed_code() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |c| c.smtp_url = Some(url)).await;
    // Registration needs a mailed code here too; the test plays that part through the service.
    let code = app
        .services
        .accounts
        .request_code(
            "kim@example.test",
            portcullis::service::codes::CodePurpose::Register,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let resp = app
        .register(&serde_json::json!({"username": "kim", "email": "kim@example.test", "password": PASSWORD, "email_code": code}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let b = browser();
    // The login page links here.
    let page = b.get(app.url("/ui/reset-password")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    let csrf = scrape(&html, "csrf");

    // Without the CSRF token nothing happens.
    let resp = submit(
        &app,
        &b,
        &[("step", "request"), ("email", "kim@example.test")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let resp = submit(
        &app,
        &b,
        &[
            ("step", "request"),
            ("csrf", &csrf),
            ("email", "kim@example.test"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("name=\"code\""), "the code form");
    assert!(
        !html.contains("dev-code"),
        "no code on the page outside dev mode"
    );
    let csrf = scrape(&html, "csrf");
    let mail = sink.wait_for("kim@example.test", "reset").await;
    let code = mail.reset_code();

    // A wrong code changes nothing.
    let resp = submit(
        &app,
        &b,
        &[
            ("step", "reset"),
            ("csrf", &csrf),
            ("email", "kim@example.test"),
            ("code", "WRONGCOD"),
            ("new_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let csrf = scrape(&resp.text().await.unwrap(), "csrf");
    assert_eq!(app.login("kim", PASSWORD).await.status(), StatusCode::OK);

    let resp = submit(
        &app,
        &b,
        &[
            ("step", "reset"),
            ("csrf", &csrf),
            ("email", "kim@example.test"),
            ("code", &code),
            ("new_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("Password changed"));
    assert_eq!(
        app.login("kim", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("kim", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_addresses_get_the_same_page() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |c| c.smtp_url = Some(url)).await;
    let b = browser();
    let html = b
        .get(app.url("/ui/reset-password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = scrape(&html, "csrf");
    let resp = submit(
        &app,
        &b,
        &[
            ("step", "request"),
            ("csrf", &csrf),
            ("email", "nobody@example.test"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("If nobody@example.test has an account")
    );
    let resp = submit(
        &app,
        &b,
        &[
            ("step", "request"),
            ("csrf", &csrf),
            ("email", "not an address"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
