//! The pages in a real browser (headless Chromium): a person signs up, lands on the account
//! page, changes the password, lets an application in and revokes it, signs out an API
//! session; an administrator disables them from the console. Each step asserts what the page
//! shows; screenshots of each page go to `target/screenshots/` for review.

use serde_json::{Value, json};

use crate::{
    chromium::Browser,
    helpers::{PASSWORD, spawn_app},
};

/// The application's own page on the loopback (the browser never leaves 127.0.0.1).
pub(crate) async fn app_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let routes = poem::Route::new().at(
        "/cb",
        poem::get(poem::endpoint::make_sync(|_| {
            poem::web::Html("<p id=\"app\">back at the app</p>")
        })),
    );
    crate::helpers::serve(listener, routes);
    format!("http://127.0.0.1:{port}/cb")
}

#[tokio::test]
async fn a_person_signs_up_manages_their_account_and_an_admin_disables_them_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    crate::admin::admin(&app).await;
    let dev = app.register_developer("pages-dev").await;
    let redirect = app_page().await;
    let client: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Notes", "redirect_uris": [redirect]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let client_id = client["client_id"].as_str().unwrap();
    let base = &app.base;

    // Sign up from the login page's link.
    browser.open(&format!("{base}/")).await;
    browser.screenshot("login").await;
    browser.click("#register-link").await;
    browser.wait_for("#username").await;
    browser.type_into("#email", "rita@example.test").await;
    browser.type_into("#username", "rita").await;
    browser.type_into("#password", "password").await;
    browser.click("form button[type=submit]").await;
    browser.wait_for(".field-error").await;
    assert!(browser.text(".field-error").await.contains("password"));
    browser.screenshot("register-refused").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for("#change-password").await;
    assert_eq!(browser.text("h1").await, "Your account");
    browser.screenshot("account").await;

    // Change the password.
    browser.type_into("#current_password", PASSWORD).await;
    browser
        .type_into("#new_password", "another fine horse staple 9")
        .await;
    browser.click("#change-password").await;
    browser.wait_for_url("done=password-changed").await;
    assert!(
        browser
            .text(".notice")
            .await
            .contains("Your password was changed")
    );
    assert_eq!(
        app.login("rita", "another fine horse staple 9")
            .await
            .status(),
        reqwest::StatusCode::OK
    );

    // Let an application in: the consent page, then the app's redirect.
    let authorize = format!(
        "{base}/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    browser.open(&authorize).await;
    browser.wait_for("button[value=allow]").await;
    browser.screenshot("consent").await;
    browser.click("button[value=allow]").await;
    browser.wait_for("#app").await;
    assert!(
        browser.url().await.starts_with(&redirect),
        "back at the app with a code"
    );

    // The account page lists the app and the API session made above; revoke both.
    browser.open(&format!("{base}/ui/account")).await;
    browser.wait_for("#consents").await;
    assert!(browser.text("#consents").await.contains("Notes"));
    assert!(
        browser
            .text("#sessions")
            .await
            .contains("This server's API")
    );
    browser.screenshot("account-apps").await;
    browser.click("#consents button").await;
    browser.wait_for_url("done=consent-revoked").await;
    assert!(browser.text(".notice").await.contains("access was revoked"));
    browser.click("#sessions button").await;
    browser.wait_for_url("done=session-ended").await;
    assert_eq!(
        browser.text(".notice").await,
        "That session was signed out."
    );

    // An administrator disables the account from the console.
    browser.click("#sign-out").await;
    // The signed-out page, before going on (the sign-out must land first).
    browser.wait_for("a[href='/ui/login']").await;
    browser.open(&format!("{base}/ui/login")).await;
    browser.type_into("#login", "root").await;
    browser.type_into("#password", PASSWORD).await;
    browser
        .click("form[action='/ui/login'] button[type=submit]")
        .await;
    browser.wait_for("#change-password").await;
    browser.open(&format!("{base}/ui/admin/users?q=rita")).await;
    browser.wait_for("tr[data-user=rita]").await;
    browser.screenshot("admin-users").await;
    browser
        .click("tr[data-user=rita] button[value=disable]")
        .await;
    browser.wait_for(".notice").await;
    assert!(
        browser
            .text("tr[data-user=rita]")
            .await
            .contains("disabled")
    );
    assert_eq!(
        app.login("rita", "another fine horse staple 9")
            .await
            .status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    browser.open(&format!("{base}/ui/admin")).await;
    browser.wait_for("#dashboard").await;
    browser.screenshot("admin-dashboard").await;
}

/// The language switch in a real browser: the login page turns Chinese, the pick holds for
/// the account page after signing in, and switching back restores English.
#[tokio::test]
async fn the_language_switch_turns_the_pages_chinese_and_back_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    app.register_user("lin").await;
    let base = &app.base;

    browser.open(&format!("{base}/ui/login")).await;
    browser.wait_for("html[lang=en]").await;
    browser.click("footer a[lang=zh-CN]").await;
    browser.wait_for("html[lang=zh-CN]").await;
    assert_eq!(browser.text("h1").await, "登录你的账号");
    assert!(browser.url().await.ends_with("/ui/login"));
    browser.screenshot("login-zh-CN").await;

    browser.type_into("#login", "lin").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for("#change-password").await;
    assert_eq!(browser.text("h1").await, "我的账号");
    assert_eq!(browser.text("#change-password").await, "修改密码");
    browser.screenshot("account-zh-CN").await;

    browser.click("footer a[lang=en]").await;
    browser.wait_for("html[lang=en]").await;
    assert_eq!(browser.text("h1").await, "Your account");
}
