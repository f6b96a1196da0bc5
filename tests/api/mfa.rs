//! Second factors and passkeys (issue 11): TOTP with codes computed here, recovery codes,
//! passkeys through the webauthn-rs project's software authenticator, the authorize flow with
//! `amr`/`acr`, step-up by `acr_values`, the progressive throttle and its unlock mail, audit
//! events, and what surfaces without a second step do.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::{WebauthnAuthenticator, softtoken::SoftToken};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::helpers::{
    PASSWORD, TestApp, browser, location, scrape, spawn_app, spawn_app_with, status_json,
};

async fn post(app: &TestApp, token: Option<&str>, path: &str, body: &Value) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url(path)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    if resp.status() == StatusCode::NO_CONTENT {
        return (StatusCode::NO_CONTENT, Value::Null);
    }
    status_json(resp).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    status_json(
        app.client
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The TOTP code of `secret` (base32) for the app clock's time plus `offset` seconds.
pub(crate) fn totp_code(app: &TestApp, secret: &str, offset: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new()
        .with_secret(bytes.as_ref().to_vec())
        .build()
        .unwrap();
    totp.generate((app.clock.now() + offset) as u64).to_string()
}

/// Enrols TOTP for `token`'s user; returns the secret and the recovery codes.
async fn enrol_totp(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let (status, setup) = post(app, Some(token), "/api/v1/me/mfa/totp", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = setup["secret"].as_str().unwrap().to_string();
    let (status, wrong) = post(
        app,
        Some(token),
        "/api/v1/me/mfa/totp/confirm",
        &json!({"enrolment_token": setup["enrolment_token"], "code": "000000"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    let (status, done) = post(
        app,
        Some(token),
        "/api/v1/me/mfa/totp/confirm",
        &json!({"enrolment_token": setup["enrolment_token"], "code": totp_code(app, &secret, 0)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn event_kinds(app: &TestApp, token: &str) -> Vec<String> {
    let (status, events) = get(app, token, "/api/v1/me/events?limit=200").await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn totp_login_needs_the_second_step_refuses_a_replayed_code_and_takes_recovery_codes_once() {
    let app = spawn_app().await;
    let user = app.register_user("tina").await;
    let (secret, codes) = enrol_totp(&app, &user.access_token).await;

    let resp = app.login("tina", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let challenge: Value = resp.json().await.unwrap();
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["methods"], json!(["totp", "recovery_code"]));
    assert!(challenge.get("access_token").is_none());
    let mfa = |answer: Value| {
        let mut body = answer;
        body["mfa_token"] = challenge["mfa_token"].clone();
        body
    };
    // The code that confirmed enrolment was for this very step: spent (RFC 6238 §5.2).
    let (status, refused) = post(
        &app,
        None,
        "/api/v1/sessions/mfa",
        &mfa(json!({"totp": totp_code(&app, &secret, 0)})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["code"], "invalid_second_factor");
    let (status, _) = post(
        &app,
        None,
        "/api/v1/sessions/mfa",
        &mfa(json!({"totp": "1", "recovery_code": "2"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Something that is not a WebAuthn assertion is a 400 and costs the sign-in nothing.
    let (status, refused) = post(
        &app,
        None,
        "/api/v1/sessions/mfa",
        &mfa(json!({"webauthn": {"not": "an assertion"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["code"], "passkey_refused");
    app.clock.advance(30);
    let (status, pair) = post(
        &app,
        None,
        "/api/v1/sessions/mfa",
        &mfa(json!({"totp": totp_code(&app, &secret, 0)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert!(
        pair["access_token"]
            .as_str()
            .unwrap()
            .starts_with("v4.public.")
    );
    // The challenge is single use.
    let (status, gone) = post(
        &app,
        None,
        "/api/v1/sessions/mfa",
        &mfa(json!({"totp": "123456"})),
    )
    .await;
    assert_eq!(
        (status, gone["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_mfa_token"))
    );

    // A recovery code works once, typed in any case and spacing.
    for attempt in 0..2 {
        let challenge: Value = app.login("tina", PASSWORD).await.json().await.unwrap();
        let (status, _) = post(
            &app,
            None,
            "/api/v1/sessions/mfa",
            &json!({"mfa_token": challenge["mfa_token"], "recovery_code": codes[0].to_uppercase()}),
        )
        .await;
        let expected = if attempt == 0 {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "attempt {attempt}");
    }
    let (_, status) = get(&app, &user.access_token, "/api/v1/me/mfa").await;
    assert_eq!(status["recovery_codes_left"], 9);
    let kinds = event_kinds(&app, &user.access_token).await;
    for k in [
        "totp_enrolled",
        "recovery_codes_generated",
        "second_factor_required",
        "second_factor_failed",
        "recovery_code_used",
        "login_succeeded",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }

    // Removing it needs the password.
    let (status, _) = post(
        &app,
        Some(&user.access_token),
        "/api/v1/me/mfa/totp/remove",
        &json!({"password": "wrong"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &app,
        Some(&user.access_token),
        "/api/v1/me/mfa/totp/remove",
        &json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.login("tina", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn passkeys_register_answer_the_second_step_sign_in_without_a_password_and_a_clone_is_refused()
 {
    // WebAuthn wants https, or http on exactly `localhost`.
    let app = spawn_app_with(|c| c.public_url = Some("http://localhost".into())).await;
    let user = app.register_user("pia").await;
    let origin = Url::parse("http://localhost").unwrap();
    let (mut key, _) = SoftToken::new(true).unwrap();

    let (status, begun) = post(
        &app,
        Some(&user.access_token),
        "/api/v1/me/passkeys/begin",
        &json!({"name": "laptop"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    assert_eq!(
        begun["options"]["publicKey"]["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    let ccr: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).unwrap();
    let credential = key.do_registration(origin.clone(), ccr).unwrap();
    let (status, added) = post(
        &app,
        Some(&user.access_token),
        "/api/v1/me/passkeys/finish",
        &json!({"ceremony_token": begun["ceremony_token"], "credential": credential}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(added["passkey"]["name"], "laptop");
    assert_eq!(added["recovery_codes"].as_array().unwrap().len(), 10);
    let passkey_id = added["passkey"]["id"].as_str().unwrap().to_string();

    // As a second factor after the password.
    let challenge: Value = app.login("pia", PASSWORD).await.json().await.unwrap();
    assert!(
        challenge["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("webauthn"))
    );
    let rcr: RequestChallengeResponse =
        serde_json::from_value(challenge["webauthn"].clone()).unwrap();
    // A key cloned now: it will answer with the counter the original has already passed.
    let mut clone = SoftToken::from_cbor(&key.to_cbor().unwrap()).unwrap();
    let assertion = key.do_authentication(origin.clone(), rcr).unwrap();
    let (status, pair) = post(
        &app,
        None,
        "/api/v1/sessions/mfa",
        &json!({"mfa_token": challenge["mfa_token"], "webauthn": assertion}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");

    // Passwordless, usernameless: the options name no credential; the authenticator answers
    // with the user handle a discoverable credential stores (the software key keeps none, so
    // the test supplies it, as a resident key would).
    let passwordless = |mut assertion: Value| {
        assertion["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(uuid_bytes(&user.id)));
        assertion
    };
    let (status, begun) = post(&app, None, "/api/v1/sessions/passkey/begin", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    assert_eq!(begun["options"]["publicKey"]["allowCredentials"], json!([]));
    let mut rcr: RequestChallengeResponse =
        serde_json::from_value(begun["options"].clone()).unwrap();
    rcr.public_key.allow_credentials =
        serde_json::from_value(json!([{"type": "public-key", "id": credential.id}])).unwrap();
    let assertion =
        serde_json::to_value(key.do_authentication(origin.clone(), rcr.clone()).unwrap()).unwrap();
    let (status, pair) = post(
        &app,
        None,
        "/api/v1/sessions/passkey/finish",
        &json!({"ceremony_token": begun["ceremony_token"], "credential": passwordless(assertion)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(pair["user"]["id"], user.id.as_str());

    // The clone's counter is behind: refused, and recorded.
    let (_, begun) = post(&app, None, "/api/v1/sessions/passkey/begin", &json!({})).await;
    let mut rcr: RequestChallengeResponse =
        serde_json::from_value(begun["options"].clone()).unwrap();
    rcr.public_key.allow_credentials =
        serde_json::from_value(json!([{"type": "public-key", "id": credential.id}])).unwrap();
    let cloned =
        serde_json::to_value(clone.do_authentication(origin.clone(), rcr).unwrap()).unwrap();
    let (status, refused) = post(
        &app,
        None,
        "/api/v1/sessions/passkey/finish",
        &json!({"ceremony_token": begun["ceremony_token"], "credential": passwordless(cloned)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["code"], "passkey_refused");
    assert!(
        event_kinds(&app, &user.access_token)
            .await
            .contains(&"passkey_possibly_cloned".to_string())
    );

    // Rename, then remove with the password.
    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/me/passkeys/{passkey_id}")))
        .bearer_auth(&user.access_token)
        .json(&json!({"name": "work laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, factors) = get(&app, &user.access_token, "/api/v1/me/mfa").await;
    assert_eq!(factors["passkeys"][0]["name"], "work laptop");
    let (status, _) = post(
        &app,
        Some(&user.access_token),
        &format!("/api/v1/me/passkeys/{passkey_id}/remove"),
        &json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, factors) = get(&app, &user.access_token, "/api/v1/me/mfa").await;
    assert_eq!(factors["passkeys"], json!([]));
    assert_eq!(
        factors["recovery_codes_left"], 0,
        "recovery codes go with the last factor"
    );
    let kinds = event_kinds(&app, &user.access_token).await;
    for k in ["passkey_added", "passkey_renamed", "passkey_removed"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

fn uuid_bytes(id: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec()
}

/// Runs an authorization request through our pages with `browser`, answering a second-step
/// page with a TOTP code when one is shown; returns the id_token's claims.
async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &Value,
    extra: &str,
    secret: Option<&str>,
) -> Value {
    let verifier = "v".repeat(50);
    let challenge =
        URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let url = app.url(&format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid&code_challenge={challenge}&code_challenge_method=S256{extra}",
        client["client_id"].as_str().unwrap()
    ));
    let mut next = location(&browser.get(url).send().await.unwrap());
    // A page a form answered with directly (the second step after the password).
    let mut shown: Option<String> = None;
    let code = loop {
        if !next.starts_with('/') {
            break crate::oidc_conformance::param(&next, "code").expect("a code");
        }
        let html = match shown.take() {
            Some(html) => html,
            None => {
                let resp = browser.get(app.url(&next)).send().await.unwrap();
                if resp.status() == StatusCode::SEE_OTHER {
                    next = location(&resp);
                    continue;
                }
                resp.text().await.unwrap()
            }
        };
        let (request, csrf) = (scrape(&html, "request"), scrape(&html, "csrf"));
        let resp = if html.contains("name=\"mfa_token\"") {
            app.clock.advance(30);
            let code = totp_code(app, secret.expect("a second step was asked for"), 0);
            browser
                .post(app.url("/ui/login/mfa"))
                .form(&[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("mfa_token", scrape(&html, "mfa_token").as_str()),
                    ("code", code.as_str()),
                ])
                .send()
                .await
                .unwrap()
        } else if html.contains("name=\"password\"") {
            browser
                .post(app.url("/ui/login"))
                .form(&[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("login", "alma"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap()
        } else {
            browser
                .post(app.url("/ui/consent"))
                .form(&[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("decision", "allow"),
                ])
                .send()
                .await
                .unwrap()
        };
        if resp.status() == StatusCode::OK {
            shown = Some(resp.text().await.unwrap());
            continue;
        }
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{html}");
        next = location(&resp);
    };
    let resp = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, tokens) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    crate::oidc_conformance::claims(tokens["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn id_tokens_say_how_the_user_signed_in_and_acr_values_steps_a_password_session_up() {
    let app = spawn_app().await;
    let dev = app.register_developer("devon").await;
    let (status, client) = status_json(
        app.create_client(
            &dev.access_token,
            &json!({
                "name": "spa", "confidential": false, "redirect_uris": ["http://127.0.0.1:9/cb"],
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let user = app.register_user("alma").await;
    let browser = browser();

    // Password only.
    let claims = authorize(&app, &browser, &client, "", None).await;
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["acr"], "urn:portcullis:acr:sf");

    // The user enrols TOTP; a client demanding MFA steps the same browser session up: the
    // second factor alone is asked for, not the password.
    let (secret, _) = enrol_totp(&app, &user.access_token).await;
    let claims = authorize(
        &app,
        &browser,
        &client,
        "&acr_values=urn%3Aportcullis%3Aacr%3Amfa",
        Some(&secret),
    )
    .await;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "urn:portcullis:acr:mfa");

    // A new browser signs in with both factors from the start.
    let claims = authorize(&app, &crate::helpers::browser(), &client, "", Some(&secret)).await;
    assert_eq!(claims["acr"], "urn:portcullis:acr:mfa");
    let discovery: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        discovery["acr_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:portcullis:acr:mfa"))
    );
}

#[tokio::test]
async fn surfaces_without_a_second_step_refuse_a_user_with_one_like_a_wrong_password() {
    let app = spawn_app().await;
    let user = app.register_user("cato").await;
    let before = app
        .post_json(
            "/login/?secret_id=&redirect_uri=",
            &json!({"username": "cato", "password": PASSWORD}),
        )
        .await;
    assert!(
        before["data"]["token"].is_string(),
        "the same login works before a factor is enrolled: {before}"
    );
    enrol_totp(&app, &user.access_token).await;
    // The SSO document's login: the answer to a wrong password, in its envelope.
    let wrong = app
        .post_json(
            "/login/?secret_id=&redirect_uri=",
            &json!({"username": "cato", "password": "not the password"}),
        )
        .await;
    let body = app
        .post_json(
            "/login/?secret_id=&redirect_uri=",
            &json!({"username": "cato", "password": PASSWORD}),
        )
        .await;
    assert_eq!(body["code"], wrong["code"], "{body}");
    assert_eq!(body["message"], wrong["message"]);
    assert!(body["data"]["token"].is_null(), "{body}");
    let kinds = event_kinds(&app, &user.access_token).await;
    assert!(kinds.contains(&"login_failed".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn failed_passwords_slow_down_and_the_mailed_link_lets_the_owner_past_the_delay() {
    let (app, sink) = crate::smtp::app_with_mail().await;
    app.register_user("olga").await;
    for _ in 0..5 {
        assert_eq!(
            app.login("olga", "wrong password!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = app.login("olga", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "30");
    let mail = sink
        .wait_for("olga@example.test", "Someone tried to sign in as you")
        .await;
    // The plain-text part, undone from quoted-printable line folding.
    let text = mail
        .data
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = text.find("unlock?token=").expect("the link") + "unlock?token=".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{text}");
    let resp = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"login": "olga", "password": PASSWORD, "unlock_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the link lets the owner in during the delay"
    );
    // Once.
    let resp = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"login": "olga", "password": "wrong again", "unlock_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The delay runs out by itself too.
    app.clock.advance(1000);
    let signed_in = app.login("olga", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let signed_in: Value = signed_in.json().await.unwrap();
    let kinds = event_kinds(&app, signed_in["access_token"].as_str().unwrap()).await;
    for k in ["login_failed", "login_throttled", "account_unlocked"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

#[tokio::test]
async fn admins_see_events_and_reset_a_users_second_factors() {
    let app = spawn_app().await;
    let root = crate::admin::admin(&app).await;
    let user = app.register_user("ivy").await;
    enrol_totp(&app, &user.access_token).await;
    assert_eq!(
        app.login("ivy", PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );
    let (status, _) = post(
        &app,
        Some(&user.access_token),
        &format!("/api/v1/admin/users/{}/mfa/reset", user.id),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not for non-admins");
    let (status, _) = post(
        &app,
        Some(&root),
        &format!("/api/v1/admin/users/{}/mfa/reset", user.id),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.login("ivy", PASSWORD).await.status(), StatusCode::OK);
    let (status, page) = get(
        &app,
        &root,
        &format!(
            "/api/v1/admin/events?user_id={}&kind=second_factors_reset",
            user.id
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["subject"], user.id.as_str());
    let (status, page) = get(&app, &root, "/api/v1/admin/events?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let (status, more) = get(
        &app,
        &root,
        &format!("/api/v1/admin/events?limit=200&before={next}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!more["events"].as_array().unwrap().is_empty());
    let (status, _) = get(&app, &root, "/api/v1/admin/events?before=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_second_step_page_offers_the_code_again_after_a_wrong_one_until_the_last_try() {
    use crate::oidc_conformance::{authorize_url, op};
    let (app, client, _) = op().await;
    let carol: Value = app.login("carol", PASSWORD).await.json().await.unwrap();
    enrol_totp(&app, carol["access_token"].as_str().unwrap()).await;
    let b = browser();
    let login = location(
        &b.get(authorize_url(&app, &client, &[]))
            .send()
            .await
            .unwrap(),
    );
    let html = b
        .get(app.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (request, csrf) = (scrape(&html, "request"), scrape(&html, "csrf"));
    let resp = b
        .post(app.url("/ui/login"))
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("login", "carol"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut html = resp.text().await.unwrap();
    for attempt in 1..=portcullis::service::mfa::SECOND_FACTOR_ATTEMPTS {
        let form = [
            ("request", request.clone()),
            ("csrf", scrape(&html, "csrf")),
            ("mfa_token", scrape(&html, "mfa_token")),
            ("code", "000000".to_string()),
        ];
        let resp = b
            .post(app.url("/ui/login/mfa"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        html = resp.text().await.unwrap();
        if attempt < portcullis::service::mfa::SECOND_FACTOR_ATTEMPTS {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
            assert!(html.contains("That did not work"), "{html}");
            assert!(
                html.contains("name=\"mfa_token\""),
                "the form again: {html}"
            );
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(html.contains("last try"), "{html}");
        }
    }
}

#[tokio::test]
async fn guessing_the_password_to_remove_a_factor_is_throttled_like_a_sign_in() {
    let app = spawn_app().await;
    let user = app.register_user("gus").await;
    enrol_totp(&app, &user.access_token).await;
    for _ in 0..5 {
        let (status, _) = post(
            &app,
            Some(&user.access_token),
            "/api/v1/me/mfa/totp/remove",
            &json!({"password": "a guess"}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = post(
        &app,
        Some(&user.access_token),
        "/api/v1/me/mfa/totp/remove",
        &json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (_, factors) = get(&app, &user.access_token, "/api/v1/me/mfa").await;
    assert_eq!(factors["totp"], true, "nothing removed while throttled");
}

#[tokio::test]
async fn password_changes_refresh_token_reuse_and_client_changes_are_audited() {
    let app = spawn_app().await;
    let root = crate::admin::admin(&app).await;
    let dev = app.register_developer("quinn").await;

    // A refresh token presented twice: the second is reuse, recorded against its owner.
    assert_eq!(
        app.refresh(&dev.refresh_token).await.status(),
        StatusCode::OK
    );
    app.clock.advance(11); // past the grace for a client's retry
    assert_eq!(
        app.refresh(&dev.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let fresh: Value = app.login("quinn", PASSWORD).await.json().await.unwrap();
    let token = fresh["access_token"].as_str().unwrap();
    let new_password = "a different correct horse 42";
    assert_eq!(
        app.change_password(token, PASSWORD, new_password)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    let made: Value = app
        .create_client(
            token,
            &json!({"name": "Audited", "redirect_uris": ["https://app.example.test/cb"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let client_id = made["client_id"].as_str().unwrap();
    let path = format!("/api/v1/clients/{client_id}");
    let changed = app
        .client
        .patch(app.url(&path))
        .bearer_auth(token)
        .json(&json!({"name": "Audited, renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let (status, _) = post(&app, Some(token), &format!("{path}/secret"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let (status, mine) = get(
        &app,
        &root,
        &format!("/api/v1/admin/events?user_id={}", dev.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let kinds: Vec<&str> = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"refresh_token_reuse"), "{kinds:?}");
    assert!(kinds.contains(&"password_changed"), "{kinds:?}");
    let reuse = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "refresh_token_reuse")
        .unwrap();
    assert!(
        reuse["actor"].is_null(),
        "the presenter is not known: {reuse}"
    );
    assert!(
        reuse["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("127.")),
        "{reuse}"
    );

    let (status, about_client) = get(
        &app,
        &root,
        &format!("/api/v1/admin/events?user_id={client_id}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let client_events: Vec<(&str, &str)> = about_client["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    // Newest first.
    assert_eq!(
        client_events,
        [
            ("client_deleted", "api"),
            ("client_changed", "secret_rotated"),
            ("client_changed", "metadata"),
            ("client_created", "api"),
        ]
    );
    assert!(
        about_client["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == dev.id.as_str())
    );
}

#[tokio::test]
async fn a_key_rotation_from_the_cli_is_an_audit_event() {
    let app = spawn_app().await;
    crate::admin::admin(&app).await;
    let app = app
        .restart_with(|config| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(["keys", "rotate"])
                .args(crate::helpers::store_args(config))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await;
    let root: Value = app.login("root", PASSWORD).await.json().await.unwrap();
    let (status, page) = get(
        &app,
        root["access_token"].as_str().unwrap(),
        "/api/v1/admin/events?kind=key_rotated",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let event = &page["events"][0];
    assert_eq!(event["surface"], "cli", "{page}");
    assert!(event["detail"].as_str().unwrap().contains("signing now"));
}
