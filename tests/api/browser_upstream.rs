//! The upstream sign-in in a real browser (headless Chromium): from an application's
//! authorization request, the login page's "Sign in with Corp" button, the upstream's own
//! login and consent, back through our callback and consent to the application.

use serde_json::{Value, json};

use crate::{browser_pages::app_page, chromium::Browser, helpers::PASSWORD, upstream::federation};

#[tokio::test]
async fn the_upstream_button_signs_a_person_in_and_lands_at_the_apps_redirect_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let f = federation("create").await;
    let us = &f.us;
    let redirect = app_page().await;
    let owner = us.register_developer("notes-owner").await;
    let client: Value = us
        .create_client(
            &owner.access_token,
            &json!({"name": "Notes", "redirect_uris": [redirect]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let authorize = format!(
        "{}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        us.base,
        client["client_id"].as_str().unwrap(),
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    browser.open(&authorize).await;
    browser.wait_for("a.upstream").await;
    assert_eq!(browser.text("a.upstream").await, "Sign in with Corp");
    browser.screenshot("login-with-upstream").await;
    browser.click("a.upstream").await;

    // The upstream's own pages.
    browser.wait_for_url(&f.idp.base).await;
    browser.wait_for("#login").await;
    browser.type_into("#login", "ursula").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for("button[value=allow]").await;
    browser.click("button[value=allow]").await;

    // Back here: a new person names their account, then lets Notes in.
    browser.wait_for("#create-form").await;
    browser.screenshot("upstream-account").await;
    browser.click("#create-form button[type=submit]").await;
    browser.wait_for("button[value=allow]").await;
    assert!(browser.url().await.starts_with(&us.base));
    browser.click("button[value=allow]").await;
    browser.wait_for("#app").await;
    let landed = browser.url().await;
    assert!(
        landed.starts_with(&redirect) && landed.contains("code="),
        "{landed}"
    );
}
