//! The account page (`/ui/account`) over HTTP, as a browser without JavaScript uses it:
//! sign-in without an application, the authenticator app (enrol, a wrong first code, remove
//! with a proof), CSRF, sign-out; and enrolment inside the sign-in under `--mfa required`,
//! on the pages and the native API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, TestApp, browser, location, scrape, spawn_app, spawn_app_with},
    mfa::totp_code,
};

/// The text of `<code id="totp-secret">` on an enrolment page.
fn shown_secret(html: &str) -> String {
    let marker = "id=\"totp-secret\">";
    let start = html.find(marker).expect("the key is shown") + marker.len();
    html[start..start + html[start..].find('<').unwrap()].to_string()
}

/// Signs `login` in on `/ui/login` with no application waiting; returns the answer.
async fn sign_in(app: &TestApp, b: &reqwest::Client, login: &str) -> reqwest::Response {
    crate::helpers::sign_in_page(app, b, login, PASSWORD).await
}

async fn account(app: &TestApp, b: &reqwest::Client) -> String {
    let resp = b.get(app.url("/ui/account")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn a_browser_signs_in_to_its_account_page_and_sets_up_and_removes_an_authenticator_app() {
    let app = spawn_app().await;
    app.register_user("ada").await;
    let b = browser();

    let home = b.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&home), "/ui/login");
    let signed_in = sign_in(&app, &b, "ada").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/ui/account");
    let home = b.get(app.url("/")).send().await.unwrap();
    assert_eq!(location(&home), "/ui/account");

    let html = account(&app, &b).await;
    assert!(html.contains("Your account") && html.contains("ada@example.test"));
    let csrf = scrape(&html, "csrf");

    // A form from elsewhere (no valid token) changes nothing.
    let forged = b
        .post(app.url("/ui/account/totp/begin"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let begun = b
        .post(app.url("/ui/account/totp/begin"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(begun.status(), StatusCode::OK);
    let html = begun.text().await.unwrap();
    assert!(html.contains("data:image/svg+xml;base64,"), "the QR code");
    let (token, secret) = (scrape(&html, "enrolment_token"), shown_secret(&html));
    let confirm = |code: String| {
        b.post(app.url("/ui/account/totp/confirm"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("enrolment_token", token.as_str()),
                ("code", code.as_str()),
            ])
            .send()
    };
    let wrong = confirm("000000".into()).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("did not match"));
    assert_eq!(shown_secret(&html), secret, "the same app to add, again");
    let done = confirm(totp_code(&app, &secret, 0)).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.unwrap();
    assert!(html.contains("Keep these recovery codes"));
    assert!(html.contains("/ui/account?done=totp-added"));

    let html = account(&app, &b).await;
    assert!(html.contains("An authenticator app is set up"), "{html}");
    assert!(html.contains("10 recovery codes left"));
    assert!(html.contains("Authenticator app added"), "in the activity");

    let remove = |password: &'static str| {
        b.post(app.url("/ui/account/totp/remove"))
            .form(&[("csrf", csrf.as_str()), ("password", password)])
            .send()
    };
    let refused = remove("not the password").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Nothing was changed"));
    assert!(html.contains("An authenticator app is set up"));
    let removed = remove(PASSWORD).await.unwrap();
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&removed), "/ui/account?done=totp-removed");
    let html = b
        .get(app.url(&location(&removed)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("The authenticator app was removed."));
    assert!(html.contains("Add an authenticator app"));
    assert!(
        html.contains("Authenticator app removed"),
        "in the activity"
    );

    let out = b
        .post(app.url("/ui/account/signout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    let gone = b.get(app.url("/ui/account")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&gone), "/ui/login");
}

#[tokio::test]
async fn under_the_required_policy_a_user_without_a_factor_enrols_it_inside_the_sign_in() {
    let app = spawn_app_with(|c| c.mfa = portcullis::config::MfaPolicy::Required).await;
    app.register_user("bo").await;
    app.register_user("cy").await;

    // The native API: a 202 that offers the app to enrol; its first code signs in.
    let first = app.login("bo", PASSWORD).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let secret = first["totp_enrolment"]["secret"].as_str().unwrap();
    assert!(
        first["totp_enrolment"]["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert_eq!(first["methods"], json!(["totp"]));
    let answer = |code: String| {
        app.client
            .post(app.url("/api/v1/sessions/mfa"))
            .json(&json!({"mfa_token": first["mfa_token"], "totp": code}))
            .send()
    };
    let wrong = answer("000000".into()).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["code"], "invalid_second_factor");
    let done = answer(totp_code(&app, secret, 0)).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let done: Value = done.json().await.unwrap();
    assert!(done["access_token"].is_string());
    assert_eq!(done["recovery_codes"].as_array().unwrap().len(), 10);
    // From now on it is an ordinary second step.
    let next: Value = app.login("bo", PASSWORD).await.json().await.unwrap();
    assert!(next["totp_enrolment"].is_null(), "{next}");
    assert!(next["methods"].as_array().unwrap().contains(&json!("totp")));

    // The pages: the enrolment follows the password, a wrong code shows it again, the right
    // one shows the recovery codes and signs the browser in.
    let b = browser();
    let after_password = sign_in(&app, &b, "cy").await;
    assert_eq!(after_password.status(), StatusCode::OK);
    let html = after_password.text().await.unwrap();
    assert!(html.contains("Add an authenticator app"), "{html}");
    let secret = shown_secret(&html);
    let (csrf, token) = (scrape(&html, "csrf"), scrape(&html, "mfa_token"));
    let post = |code: String| {
        b.post(app.url("/ui/login/mfa"))
            .form(&[
                ("request", ""),
                ("csrf", csrf.as_str()),
                ("mfa_token", token.as_str()),
                ("code", code.as_str()),
            ])
            .send()
    };
    let wrong = post("123456".into()).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(shown_secret(&wrong.text().await.unwrap()), secret);
    assert_eq!(
        b.get(app.url("/ui/account")).send().await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "not signed in yet"
    );
    let done = post(totp_code(&app, &secret, 0)).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.unwrap();
    assert!(html.contains("Keep these recovery codes"), "{html}");
    let html = account(&app, &b).await;
    assert!(html.contains("An authenticator app is set up"));
}

#[tokio::test]
async fn the_account_page_edits_the_profile_picture_password_api_key_and_other_sessions() {
    let app = spawn_app().await;
    let elsewhere = app.register_user("eve").await;
    let b = browser();
    assert_eq!(
        sign_in(&app, &b, "eve").await.status(),
        StatusCode::SEE_OTHER
    );
    let html = account(&app, &b).await;
    let csrf = scrape(&html, "csrf");
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf", csrf.clone())];
        form.extend(fields);
        b.post(app.url(path)).form(&form).send()
    };
    let follow = |resp: reqwest::Response| {
        let to = location(&resp);
        let b = b.clone();
        let url = app.url(&to);
        async move { b.get(url).send().await.unwrap().text().await.unwrap() }
    };

    let saved = post(
        "/ui/account/profile",
        vec![("display_name", "Eve <i>E</i>".into())],
    )
    .await
    .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let html = follow(saved).await;
    assert!(html.contains("Your profile was saved."));
    assert!(
        html.contains("value=\"Eve &#60;i&#62;E&#60;/i&#62;\""),
        "escaped"
    );

    // The picture: a multipart form with the CSRF token.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(crate::avatars::png(40, 40, [200, 30, 30]))
                .file_name("me.png"),
        );
    let uploaded = b
        .post(app.url("/ui/account/avatar"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::SEE_OTHER);
    let html = follow(uploaded).await;
    assert!(
        html.contains("id=\"avatar-current\""),
        "the new picture is shown"
    );
    let junk = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"not an image".to_vec()),
        );
    let refused = b
        .post(app.url("/ui/account/avatar"))
        .multipart(junk)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // The password: a wrong current one is refused by its field; the right one changes it,
    // ends the API sessions and keeps this browser.
    let wrong = post(
        "/ui/account/password",
        vec![
            ("current_password", "not it at all".into()),
            ("new_password", "a brand new horse staple 7".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let html = wrong.text().await.unwrap();
    let at = html.find("id=\"current_password\"").unwrap();
    assert!(html[at..].find("field-error").unwrap() < html[at..].find("new_password").unwrap());
    let changed = post(
        "/ui/account/password",
        vec![
            ("current_password", PASSWORD.into()),
            ("new_password", "a brand new horse staple 7".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.refresh(&elsewhere.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "the API session ended"
    );
    assert_eq!(
        app.login("eve", "a brand new horse staple 7")
            .await
            .status(),
        StatusCode::OK
    );
    assert!(follow(changed).await.contains("Your password was changed"));

    // A personal API key, shown once, that works.
    let key_page = post("/ui/account/api-key", vec![]).await.unwrap();
    assert_eq!(key_page.status(), StatusCode::OK);
    let html = key_page.text().await.unwrap();
    let marker = "id=\"api-key-value\">";
    let start = html.find(marker).unwrap() + marker.len();
    let key = &html[start..start + html[start..].find('<').unwrap()];
    assert_eq!(app.get_me(key).await.status(), StatusCode::OK);

    // Every other session ends; this browser stays.
    let other: Value = app
        .login("eve", "a brand new horse staple 7")
        .await
        .json()
        .await
        .unwrap();
    let out = post("/ui/account/sessions/revoke-others", vec![])
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.refresh(other["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        follow(out)
            .await
            .contains("Every other session was signed out.")
    );
}

#[tokio::test]
async fn the_account_page_moves_the_account_to_a_new_address_with_the_mailed_code() {
    let (app, sink) = crate::smtp::app_with_mail().await;
    app.register_user("ola").await;
    let b = browser();
    sign_in(&app, &b, "ola").await;
    let csrf = scrape(&account(&app, &b).await, "csrf");
    let asked = b
        .post(app.url("/ui/account/email"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("new_email", "ola.two@example.test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(
        asked
            .text()
            .await
            .unwrap()
            .contains("Confirm your new address")
    );
    let code = sink
        .wait_for("ola.two@example.test", "Confirm your new email")
        .await
        .code_after("confirm this address is", 6, |c| c.is_ascii_digit());
    let confirm = |code: String| {
        b.post(app.url("/ui/account/email/confirm"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("new_email", "ola.two@example.test"),
                ("email_code", code.as_str()),
                ("password", PASSWORD),
            ])
            .send()
    };
    let wrong = confirm("111111".into()).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.text().await.unwrap().contains("The code is wrong"));
    let done = confirm(code).await.unwrap();
    assert_eq!(location(&done), "/ui/account?done=email-changed");
    assert!(account(&app, &b).await.contains("ola.two@example.test"));
}

/// Every class of bad input on the account, admin, sign-up and setup forms: not a form
/// (400), a form that is not UTF-8 once decoded (400, where a lossy decode would have stored
/// replacement characters), a body over the limit (413); nothing changes.
#[tokio::test]
async fn bad_input_on_the_new_forms_is_a_4xx_page_and_changes_nothing() {
    let app = spawn_app().await;
    crate::admin::admin(&app).await;
    app.register_user("una").await;
    let b = crate::helpers::page_signed_in(&app, "root").await;
    let csrf = scrape(&account(&app, &b).await, "csrf");
    let forms = [
        "/ui/account/password",
        "/ui/account/profile",
        "/ui/account/delete",
        "/ui/account/email/confirm",
        "/ui/account/passkeys/rename",
        "/ui/account/avatar",
        "/ui/admin/users/action",
        "/ui/admin/clients/action",
        "/ui/register",
        "/ui/setup",
    ];
    for path in forms {
        // Not a form at all.
        let json = b
            .post(app.url(path))
            .header("content-type", "application/json")
            .body("{\"csrf\": 1}")
            .send()
            .await
            .unwrap();
        // Bad UTF-8 in a form.
        let bytes = b
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&display_name=%FF%FE&action=delete&id=x").into_bytes())
            .send()
            .await
            .unwrap();
        // Far too large.
        let huge = b
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&name={}", "a".repeat(2 << 20)))
            .send()
            .await
            .unwrap();
        assert_eq!(json.status(), StatusCode::BAD_REQUEST, "{path}: not a form");
        assert_eq!(bytes.status(), StatusCode::BAD_REQUEST, "{path}: not UTF-8");
        assert_eq!(
            huge.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: too large"
        );
    }
    // Nothing changed: everyone is still there and signs in as before.
    assert_eq!(app.login("una", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.login("root", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.table_count("users").await, 2);
}
