//! The sign-up page (`/ui/register`) over HTTP: each registration policy, errors next to
//! their field, email verification with a real SMTP conversation, and the new account
//! continuing where it came from (the account page, or an application's consent).

use portcullis::config::RegistrationPolicy;
use reqwest::StatusCode;

use crate::{
    helpers::{PASSWORD, TestApp, browser, location, scrape, spawn_app, spawn_app_with},
    oidc_conformance::{authorize_url, op},
    smtp::SmtpSink,
};

/// Posts the sign-up form of `html` with `fields`.
async fn submit(
    app: &TestApp,
    b: &reqwest::Client,
    html: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("request".to_string(), scrape(html, "request")),
        ("csrf".to_string(), scrape(html, "csrf")),
        ("step".to_string(), scrape(html, "step")),
    ];
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    b.post(app.url("/ui/register"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn page(b: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let resp = b.get(url).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn open_sign_up_shows_errors_by_their_field_then_signs_the_new_account_in() {
    let app = spawn_app().await;
    app.register_user("taken").await;
    let b = browser();
    let (_, login) = page(&b, &app.url("/ui/login")).await;
    assert!(login.contains("href=\"/ui/register\""), "{login}");
    let (status, html) = page(&b, &app.url("/ui/register")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("At least 8 characters"),
        "the rules, before submitting"
    );

    let weak = submit(
        &app,
        &b,
        &html,
        &[
            ("email", "nia@example.test"),
            ("username", "nia"),
            ("password", "password"),
        ],
    )
    .await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let html = weak.text().await.unwrap();
    let at = html.find("id=\"password-rules\"").unwrap();
    assert!(
        html[at..].find("field-error").unwrap() < html[at..].find("</form>").unwrap(),
        "the error sits by the password field"
    );
    assert!(html.contains("value=\"nia\""), "the username is kept");
    assert!(!html.contains("value=\"password\""), "the password is not");

    let taken = submit(
        &app,
        &b,
        &html,
        &[
            ("email", "nia@example.test"),
            ("username", "taken"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let html = taken.text().await.unwrap();
    assert!(html.contains("That username is taken"));

    let made = submit(
        &app,
        &b,
        &html,
        &[
            ("email", "nia@example.test"),
            ("username", "nia"),
            ("display_name", "Nia <b>N</b>"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&made), "/ui/account");
    let (status, account) = page(&b, &app.url("/ui/account")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(account.contains("nia@example.test"));
    assert_eq!(app.login("nia", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_new_account_made_during_an_authorization_request_goes_on_to_consent() {
    let (app, client_id, _) = op().await;
    let b = browser();
    let start = b
        .get(authorize_url(&app, &client_id, &[]))
        .send()
        .await
        .unwrap();
    let login_url = app.url(&location(&start));
    let (_, login) = page(&b, &login_url).await;
    let request = scrape(&login, "request");
    let href = format!("/ui/register?request={request}");
    assert!(login.contains(&href), "{login}");
    let (_, html) = page(&b, &app.url(&href)).await;
    assert!(html.contains("to continue to conformance RP"));
    let made = submit(
        &app,
        &b,
        &html,
        &[
            ("email", "oli@example.test"),
            ("username", "oli"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&made), format!("/ui/consent?request={request}"));
}

#[tokio::test]
async fn with_email_verification_the_mailed_code_comes_first() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |c| c.smtp_url = Some(url)).await;
    let b = browser();
    let (_, html) = page(&b, &app.url("/ui/register")).await;
    assert!(html.contains("Send code") && !html.contains("id=\"password\""));
    let mailed = submit(&app, &b, &html, &[("email", "pat@example.test")]).await;
    assert_eq!(mailed.status(), StatusCode::OK);
    let html = mailed.text().await.unwrap();
    assert!(html.contains("We mailed a code to pat@example.test"));
    let code = sink
        .wait_for("pat@example.test", "verification code")
        .await
        .registration_code();

    fn fields(code: &str) -> [(&str, &str); 4] {
        [
            ("email", "pat@example.test"),
            ("email_code", code),
            ("username", "pat"),
            ("password", PASSWORD),
        ]
    }
    let wrong = submit(&app, &b, &html, &fields("000000")).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("The code is wrong"));
    let made = submit(&app, &b, &html, &fields(&code)).await;
    assert_eq!(
        made.status(),
        StatusCode::SEE_OTHER,
        "{}",
        made.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn closed_and_invitation_policies_are_kept_on_the_page() {
    let closed = spawn_app_with(|c| c.registration = RegistrationPolicy::Closed).await;
    let b = browser();
    let (_, login) = page(&b, &closed.url("/ui/login")).await;
    assert!(!login.contains("/ui/register"), "no link to a closed door");
    let (status, html) = page(&b, &closed.url("/ui/register")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("does not take new accounts"));

    let invite = spawn_app_with(|c| {
        c.registration = RegistrationPolicy::Invite;
        c.registration_key = Some("let-me-in-2026".into());
    })
    .await;
    let b = browser();
    let (_, html) = page(&b, &invite.url("/ui/register")).await;
    assert!(html.contains("Invitation key"));
    let fields = |key: &'static str| {
        vec![
            ("email", "quin@example.test"),
            ("username", "quin"),
            ("password", PASSWORD),
            ("registration_key", key),
        ]
    };
    let refused = submit(&invite, &b, &html, &fields("wrong")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let html = refused.text().await.unwrap();
    assert!(html.contains("That invitation key is not right"));
    let made = submit(&invite, &b, &html, &fields("let-me-in-2026")).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
}
