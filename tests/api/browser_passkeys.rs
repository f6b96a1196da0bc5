//! Passkeys in a real browser: headless Chromium with Chrome's virtual WebAuthn authenticator
//! (DevTools `WebAuthn.addVirtualAuthenticator`: CTAP2, resident keys, user verification)
//! registers a passkey on the account page and signs in with it on the login page — our
//! `webauthn.js` against the server's webauthn-rs ceremonies, as a person would use them.

use serde_json::json;

use crate::{
    chromium::Browser,
    helpers::{PASSWORD, spawn_app},
};

#[tokio::test]
async fn a_passkey_registered_on_the_account_page_signs_in_without_a_password_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    app.register_user("pia").await;
    // The test server's public URL is http://portcullis.localhost, a WebAuthn origin; the
    // browser reaches it there (Chromium resolves *.localhost to the loopback), on our port.
    let base = format!("http://portcullis.localhost:{}", app.local_addr().port());

    // Sign in with the password: with no application waiting, the account page follows.
    browser.open(&format!("{base}/")).await;
    browser.type_into("#login", "pia").await;
    browser.type_into("#password", PASSWORD).await;
    browser
        .click("form[action='/ui/login'] button[type=submit]")
        .await;
    browser.wait_for("#passkey-register").await;
    assert_eq!(browser.text("h1").await, "Your account");
    browser.screenshot("account").await;

    // A platform authenticator that keeps discoverable credentials and verifies the user.
    browser
        .cdp("WebAuthn.enable", json!({"enableUI": false}))
        .await;
    let authenticator = browser
        .cdp(
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {"protocol": "ctap2", "transport": "internal",
                "hasResidentKey": true, "hasUserVerification": true, "isUserVerified": true,
                "automaticPresenceSimulation": true}}),
        )
        .await;
    let authenticator_id = authenticator["authenticatorId"]
        .as_str()
        .unwrap()
        .to_string();

    browser
        .run(
            "document.getElementById('passkey-name').value = arguments[0];",
            json!(["Laptop"]),
        )
        .await;
    browser.click("#passkey-add").await;
    // The first factor of the account: its recovery codes, shown once, then onwards.
    browser.wait_for("#recovery-codes").await;
    let codes = browser.text("#recovery-codes").await;
    assert_eq!(codes.lines().count(), 10, "{codes}");
    browser.screenshot("recovery-codes").await;
    browser.click("#continue").await;
    browser.wait_for("#passkeys").await;
    let names = browser
        .run(
            "return [...document.querySelectorAll('#passkeys input[name=name]')].map(i => i.value);",
            json!([]),
        )
        .await;
    assert_eq!(names, json!(["Laptop"]));
    assert_eq!(browser.text(".notice").await, "The passkey was added.");
    let stored = browser
        .cdp(
            "WebAuthn.getCredentials",
            json!({"authenticatorId": authenticator_id}),
        )
        .await;
    let credentials = stored["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{stored}");
    assert_eq!(
        credentials[0]["isResidentCredential"], true,
        "discoverable, so it can sign in without a username"
    );
    browser.screenshot("account-with-passkey").await;

    // Sign out, then back in with the passkey alone: no username, no password. The login
    // page asks for a passkey with conditional mediation (autofill) as it loads; the virtual
    // authenticator, simulating the user's touch, answers it at once, so the page signs in
    // without a click.
    browser.click("#sign-out").await;
    browser.wait_for("a[href='/ui/login']").await;
    browser.open(&format!("{base}/ui/login")).await;
    browser.wait_for("#passkey-register").await;
    assert!(browser.url().await.ends_with("/ui/account"));
    assert!(browser.text("nav.top").await.contains("pia"));
    let activity = browser.text("#activity").await;
    assert!(
        activity.contains("Signed in with a passkey"),
        "the passkey sign-in is in the history: {activity}"
    );
    let after = browser
        .cdp(
            "WebAuthn.getCredentials",
            json!({"authenticatorId": authenticator_id}),
        )
        .await;
    assert!(
        after["credentials"][0]["signCount"].as_u64().unwrap()
            > credentials[0]["signCount"].as_u64().unwrap(),
        "the authenticator signed: {after}"
    );
}
