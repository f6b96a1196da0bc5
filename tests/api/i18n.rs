//! Pages and mail in the reader's language (English, Simplified Chinese), chosen by the
//! visitor's pick with the language switch, then the relying party's `ui_locales`, then
//! `Accept-Language`, then `--default-locale`; and the operator's brand on every page and mail.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{PASSWORD, TestApp, browser, location, noisy_png, spawn_app, spawn_app_with},
    smtp::SmtpSink,
};

const REDIRECT: &str = "http://127.0.0.1:9999/callback";

/// A page as `browser` sees it with `accept_language`: (status, `<html lang>`, body).
async fn page(
    b: &reqwest::Client,
    url: &str,
    accept_language: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = b.get(url);
    if let Some(al) = accept_language {
        req = req.header("accept-language", al);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let html = resp.text().await.unwrap();
    let lang = html
        .split("<html lang=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no <html lang> in {html}"))
        .to_string();
    (status, lang, html)
}

/// A public client and an authorization URL for it with `extra` parameters.
async fn authorize_url(app: &TestApp, extra: &[(&str, &str)]) -> String {
    let dev = app.register_developer("owner").await;
    let client: serde_json::Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Notes", "redirect_uris": [REDIRECT], "confidential": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client["client_id"].as_str().unwrap()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    app.url(&format!("/oauth2/authorize?{q}"))
}

#[tokio::test]
async fn the_browsers_language_is_used_and_the_switch_overrides_it() {
    let app = spawn_app().await;
    let b = browser();
    let login = app.url("/ui/login");

    let (_, lang, html) = page(&b, &login, Some("zh-CN,zh;q=0.9,en;q=0.8")).await;
    assert_eq!(lang, "zh-CN");
    assert!(
        html.contains("登录你的账号") && html.contains("忘记密码？"),
        "{html}"
    );
    // Weights count, unknown languages are skipped, and with nothing we have: the default.
    let (_, lang, _) = page(&b, &login, Some("fr-CH, fr;q=0.9, en;q=0.5, zh;q=0.4")).await;
    assert_eq!(lang, "en");
    let (_, lang, html) = page(&b, &login, Some("de")).await;
    assert_eq!(lang, "en");
    assert!(html.contains("Sign in to your account"));
    // Traditional Chinese is not what we have.
    let (_, lang, _) = page(&b, &login, Some("zh-TW")).await;
    assert_eq!(lang, "en");

    // The switch on the page links back to the page itself.
    let (_, _, html) = page(&b, &login, Some("zh-CN")).await;
    assert!(
        html.contains("href=\"/ui/lang?to=en&#38;back=%2Fui%2Flogin\""),
        "{html}"
    );
    let switched = b
        .get(app.url("/ui/lang?to=en&back=%2Fui%2Flogin"))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&switched), "/ui/login");
    let cookie = switched
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("portcullis_lang=en;"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax") && cookie.contains("HttpOnly"));
    // The pick beats the browser's header from now on.
    let (_, lang, html) = page(&b, &login, Some("zh-CN")).await;
    assert_eq!(lang, "en");
    assert!(html.contains("aria-current=\"true\">English"));

    // The switch never sends the browser off this server, and refuses a language we lack.
    for back in ["//evil.test/x", "https://evil.test/", "/\\evil.test"] {
        let url = format!(
            "{}?to=zh-CN&back={}",
            app.url("/ui/lang"),
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        );
        let resp = b.get(url).send().await.unwrap();
        assert_eq!(location(&resp), "/", "back={back}");
    }
    let (status, lang, html) = page(&b, &app.url("/ui/lang?to=fr&back=/"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The error page itself is in the visitor's language (their pick is zh-CN now).
    assert_eq!(lang, "zh-CN");
    assert!(html.contains("不支持该语言"), "{html}");
}

#[tokio::test]
async fn ui_locales_chooses_the_language_of_an_authorization_requests_pages() {
    let app = spawn_app().await;
    app.register_user("alice").await;
    let url = authorize_url(&app, &[("ui_locales", "fr-CA zh-CN en")]).await;

    // A browser asking for English still gets the relying party's wish (OIDC Core §3.1.2.1).
    let b = browser();
    let to_login = b
        .get(&url)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let login = app.url(&location(&to_login));
    let (_, lang, html) = page(&b, &login, Some("en")).await;
    assert_eq!(lang, "zh-CN");
    assert!(html.contains("登录以继续使用 Notes"), "{html}");

    // A wrong password: the error next to the form is in the same language.
    let csrf = crate::helpers::scrape(&html, "csrf");
    let request = crate::helpers::scrape(&html, "request");
    let refused = b
        .post(app.url("/ui/login"))
        .header("accept-language", "en")
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("login", "alice"),
            ("password", "not-the-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let html = refused.text().await.unwrap();
    assert!(html.contains("用户名、邮箱或密码不正确"), "{html}");
    // The switch on a page answering a form goes back to the request's login page.
    assert!(html.contains(&format!(
        "back={}",
        url::form_urlencoded::byte_serialize(format!("/ui/login?request={request}").as_bytes())
            .collect::<String>()
    )));

    // Signed in, the consent page speaks Chinese too.
    let csrf = crate::helpers::scrape(&html, "csrf");
    let signed_in = b
        .post(app.url("/ui/login"))
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("login", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let consent = app.url(&location(&signed_in));
    let (_, lang, html) = page(&b, &consent, Some("en")).await;
    assert_eq!(lang, "zh-CN");
    assert!(
        html.contains("Notes 请求访问你的账号") && html.contains("允许"),
        "{html}"
    );

    // A visitor's own pick beats ui_locales.
    b.get(app.url("/ui/lang?to=en&back=/"))
        .send()
        .await
        .unwrap();
    let (_, lang, html) = page(&b, &consent, Some("zh-CN")).await;
    assert_eq!(lang, "en");
    assert!(html.contains("Notes wants to access your account"));
}

#[tokio::test]
async fn the_default_locale_applies_when_nothing_else_matches_error_pages_included() {
    let app = spawn_app_with(|c| c.default_locale = portcullis::i18n::Lang::ZhCn).await;
    let b = browser();
    let (_, lang, html) = page(&b, &app.url("/ui/login"), Some("fr, de;q=0.5")).await;
    assert_eq!(lang, "zh-CN");
    assert!(html.contains("登录你的账号"));
    let (_, lang, _) = page(&b, &app.url("/ui/login"), Some("en-GB")).await;
    assert_eq!(lang, "en");

    // A dead end is explained in the reader's language, with its status kept.
    let (status, lang, html) = page(&b, &app.url("/ui/login?request=gone"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(lang, "zh-CN");
    assert!(html.contains("此登录请求已过期或已被使用"), "{html}");
    let (status, lang, html) = page(
        &b,
        &app.url("/oauth2/authorize?client_id=nobody&response_type=code"),
        Some("en"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(lang, "en");
    assert!(html.contains("is not registered here"), "{html}");
}

#[tokio::test]
async fn mail_is_written_in_the_language_of_the_request_that_sent_it() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |c| {
        c.smtp_url = Some(url);
        c.email_verification = Some(portcullis::config::EmailVerification::Off);
    })
    .await;
    app.register(&json!({"username": "mei", "email": "mei@example.test", "password": PASSWORD}))
        .await;

    let asked = app
        .client
        .post(app.url("/api/v1/verification-codes"))
        .header("accept-language", "zh-CN,zh;q=0.9")
        .json(&json!({"email": "mei@example.test", "purpose": "reset_password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let mail = sink.wait_for("mei@example.test", "").await;
    assert_eq!(mail.decoded_subject(), "你的密码重置验证码");
    let text = mail.text_part();
    assert!(
        text.contains("你的密码重置验证码是") && text.contains("10 分钟"),
        "{text}"
    );
    assert!(
        text.contains("-- \nportcullis"),
        "signed with the product name: {text}"
    );

    // The same request without a language: the server's default, English.
    let asked = app
        .client
        .post(app.url("/api/v1/verification-codes"))
        .json(&json!({"email": "ann@example.test", "purpose": "register"}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let mail = sink.wait_for("ann@example.test", "").await;
    assert_eq!(mail.decoded_subject(), "Your verification code");
    assert!(mail.text_part().contains("It expires in 10 minutes"));
}

#[tokio::test]
async fn the_brand_from_configuration_is_on_every_page_and_mail() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    let logo_bytes = noisy_png(40, 20, [200, 30, 30]);
    std::fs::write(&logo, &logo_bytes).unwrap();
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |c| {
        c.brand_name = "Acme <ID>".into();
        c.brand_logo = Some(logo);
        c.brand_color = Some("#FFCC00".into());
        c.support_contact = Some("help@acme.test".into());
        c.smtp_url = Some(url);
        c.email_verification = Some(portcullis::config::EmailVerification::Off);
    })
    .await;
    let b = browser();
    for path in [
        "/ui/login",
        "/ui/register",
        "/ui/reset-password",
        "/ui/device",
    ] {
        let (status, _, html) = page(&b, &app.url(path), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            html.contains("· Acme &#60;ID&#62;</title>"),
            "{path}: {html}"
        );
        assert!(html.contains("<img src=\"/ui/logo\""), "{path}");
        assert!(
            html.contains("<a href=\"mailto:help@acme.test\">help@acme.test</a>"),
            "{path}"
        );
    }
    let (_, _, html) = page(&b, &app.url("/ui/login"), Some("zh-CN")).await;
    assert!(html.contains("需要帮助？"));

    let served = b.get(app.url("/ui/logo")).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/png");
    let policy = served.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("sandbox"));
    assert_eq!(
        served.bytes().await.unwrap().as_ref(),
        logo_bytes.as_slice()
    );

    // The accent colour, with dark text because yellow is light.
    let css = b
        .get(app.url("/ui/style.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        css.contains(":root { --accent: #ffcc00; --accent-text: #111; }"),
        "{css}"
    );

    // Mail is signed with the brand and says where to get help.
    app.register(&json!({"username": "kai", "email": "kai@example.test", "password": PASSWORD}))
        .await;
    app.request_code("kai@example.test", "reset_password").await;
    let mail = sink.wait_for("kai@example.test", "reset code").await;
    let text = mail.text_part();
    assert!(text.contains("-- \nAcme <ID>\n"), "{text}");
    assert!(text.contains("Questions? Contact help@acme.test"), "{text}");

    // Authenticator apps name the product.
    let user = app.register_user("tess").await;
    let setup: serde_json::Value = app
        .client
        .post(app.url("/api/v1/me/mfa/totp"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = setup["otpauth_uri"].as_str().unwrap_or_default();
    assert!(uri.contains("issuer=Acme"), "{setup}");
}

#[tokio::test]
async fn a_brand_that_cannot_work_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    type Adjust = Box<dyn Fn(&mut portcullis::ServeConfig)>;
    let cases: Vec<(Adjust, &str)> = vec![
        (
            Box::new(|c| c.brand_color = Some("red".into())),
            "--brand-color",
        ),
        (
            Box::new(|c| c.brand_color = Some("#fff;}body{display:none".into())),
            "--brand-color",
        ),
        (
            Box::new(|c| c.brand_logo = Some("/nonexistent/logo.png".into())),
            "--brand-logo",
        ),
        (
            Box::new(|c| c.brand_logo = Some("/etc/hostname".into())),
            "--brand-logo",
        ),
        (
            Box::new(|c| c.support_contact = Some("javascript:alert(1)".into())),
            "--support-contact",
        ),
        (Box::new(|c| c.brand_name = "  ".into()), "--brand-name"),
    ];
    for (adjust, flag) in cases {
        let mut config = crate::helpers::test_config(&dir);
        adjust(&mut config);
        let err = portcullis::Application::build(&config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{flag}: the server started"));
        assert!(err.to_string().contains(flag), "{flag}: {err}");
    }
}
