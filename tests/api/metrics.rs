//! `GET /metrics`: Prometheus text that moves with what the server does.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn scrape(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    resp.text().await.unwrap()
}

/// The value of one sample line, e.g. `portcullis_logins_total{outcome="failure"}`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn counters_follow_requests_logins_and_rows() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    assert_eq!(
        sample(&before, "portcullis_logins_total{outcome=\"failure\"}"),
        0.0
    );
    assert_eq!(
        sample(&before, "portcullis_table_rows{table=\"users\"}"),
        0.0
    );

    app.register_user("mia").await;
    assert_eq!(
        app.login("mia", "wrong-password-1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login("mia", PASSWORD).await.status(), StatusCode::OK);
    // The compatible APIs count too: they check passwords through the same service.
    app.post_json(
        "/oauth/login",
        &serde_json::json!({"id": "mia", "password": "nope-nope"}),
    )
    .await;

    let after = scrape(&app).await;
    assert_eq!(
        sample(&after, "portcullis_logins_total{outcome=\"failure\"}"),
        2.0
    );
    assert_eq!(
        sample(&after, "portcullis_logins_total{outcome=\"success\"}"),
        1.0
    );
    assert_eq!(
        sample(&after, "portcullis_table_rows{table=\"users\"}"),
        1.0
    );
    assert!(
        sample(&after, "portcullis_http_responses_total{class=\"4xx\"}") >= 1.0,
        "the refused login"
    );
    let count = sample(&after, "portcullis_http_request_duration_seconds_count");
    let inf = sample(
        &after,
        "portcullis_http_request_duration_seconds_bucket{le=\"+Inf\"}",
    );
    assert_eq!(count, inf);
    assert!(count >= 5.0, "every answered request is counted: {count}");
}
