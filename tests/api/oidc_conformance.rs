//! One test per OpenID Foundation conformance module (Basic OP plan) covered so far, named
//! after it, asserting what the module checks (OpenID Connect Core 1.0, RFC 9207). The suite
//! itself cannot run here; these drive the same requests through our real pages.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, browser, browser_sign_in, location, spawn_app};

pub(crate) const REDIRECT: &str = "https://rp.example.com/cb";
pub(crate) const AFTER_LOGOUT: &str = "https://rp.example.com/after-logout";

/// A confidential client (so PKCE is optional, as for the conformance suite's RP) and a user.
pub(crate) async fn op() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let dev = app.register_developer("rpowner").await;
    app.register_user("carol").await;
    let client: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "conformance RP", "redirect_uris": [REDIRECT], "post_logout_redirect_uris": [AFTER_LOGOUT]}),
        )
        .await
        .json()
        .await
        .unwrap();
    (
        app,
        client["client_id"].as_str().unwrap().to_string(),
        client["client_secret"].as_str().unwrap().to_string(),
    )
}

pub(crate) fn authorize_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "xyz"),
    ];
    params.extend_from_slice(extra);
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    app.url(&format!("/oauth2/authorize?{q}"))
}

pub(crate) fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A browser in which carol has signed in and consented once.
pub(crate) async fn signed_in_browser(app: &TestApp, client: &str) -> reqwest::Client {
    let b = browser();
    browser_sign_in(app, &b, &authorize_url(app, client, &[]), "carol", PASSWORD).await;
    b
}

/// The first answer of the authorization endpoint, not followed.
pub(crate) async fn first_hop(b: &reqwest::Client, url: &str) -> reqwest::Response {
    b.get(url).send().await.unwrap()
}

/// Presents a code at the token endpoint with the client's Basic credentials.
pub(crate) async fn redeem_raw(
    app: &TestApp,
    client: &(String, String),
    code: &str,
) -> reqwest::Response {
    app.oauth_post(
        "token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
        Some((&client.0, &client.1)),
    )
    .await
}

/// Redeems a code; returns the token response.
pub(crate) async fn redeem(app: &TestApp, client: &(String, String), code: &str) -> Value {
    let resp = redeem_raw(app, client, code).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

pub(crate) fn claims(id_token: &str) -> Value {
    use base64::Engine;
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let (app, client, _) = op().await;
    let resp = first_hop(
        &browser(),
        &authorize_url(&app, &client, &[("prompt", "none")]),
    )
    .await;
    // Straight back to the client, no login page (OIDC Core §3.1.2.6).
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&to, "state").as_deref(), Some("xyz"));
    assert_eq!(param(&to, "iss").as_deref(), Some(crate::helpers::ISSUER));
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let (app, client, secret) = op().await;
    let b = signed_in_browser(&app, &client).await;
    let resp = first_hop(&b, &authorize_url(&app, &client, &[("prompt", "none")])).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    let code = param(&to, "code").unwrap_or_else(|| panic!("a code at once: {to}"));
    assert_eq!(param(&to, "iss").as_deref(), Some(crate::helpers::ISSUER));
    let tokens = redeem(&app, &(client, secret), &code).await;
    assert!(tokens["id_token"].is_string());
}

#[tokio::test]
async fn prompt_none_without_consent_is_consent_required() {
    let (app, client, _) = op().await;
    let b = browser();
    // Signed in (through another client's flow would do; here: log in, then deny).
    let resp = first_hop(&b, &authorize_url(&app, &client, &[])).await;
    assert!(resp.status().is_redirection());
    crate::helpers::browser_login_only(&app, &b, &location(&resp), "carol", PASSWORD).await;
    let resp = first_hop(&b, &authorize_url(&app, &client, &[("prompt", "none")])).await;
    let to = location(&resp);
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("consent_required"),
        "{to}"
    );
}

#[tokio::test]
async fn oidcc_prompt_login() {
    let (app, client, secret) = op().await;
    let b = browser();
    let first = browser_sign_in(
        &app,
        &b,
        &authorize_url(&app, &client, &[]),
        "carol",
        PASSWORD,
    )
    .await;
    let first_auth_time = claims(
        redeem(
            &app,
            &(client.clone(), secret.clone()),
            &param(&first, "code").unwrap(),
        )
        .await["id_token"]
            .as_str()
            .unwrap(),
    )["auth_time"]
        .as_i64()
        .unwrap();
    app.clock.advance(5);
    // prompt=login: signed in or not, the login form comes back (no code directly).
    let resp = first_hop(&b, &authorize_url(&app, &client, &[("prompt", "login")])).await;
    let login = b.get(app.url(&location(&resp))).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK, "the login form, not a code");
    let again = browser_sign_in(
        &app,
        &b,
        &authorize_url(&app, &client, &[("prompt", "login")]),
        "carol",
        PASSWORD,
    )
    .await;
    let tokens = redeem(&app, &(client, secret), &param(&again, "code").unwrap()).await;
    let auth_time = claims(tokens["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    assert!(
        auth_time > first_auth_time,
        "a new authentication: {auth_time} > {first_auth_time}"
    );
}

#[tokio::test]
async fn oidcc_max_age_1() {
    let (app, client, _) = op().await;
    let b = signed_in_browser(&app, &client).await;
    app.clock.advance(2);
    let resp = first_hop(&b, &authorize_url(&app, &client, &[("max_age", "1")])).await;
    let login = b.get(app.url(&location(&resp))).send().await.unwrap();
    assert_eq!(
        login.status(),
        StatusCode::OK,
        "older than max_age: sign in again"
    );
    // The consent page, reached directly, sends the browser back to sign in too.
    let request = location(&resp);
    let consent = b
        .get(app.url(&request.replace("/ui/login", "/ui/consent")))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::SEE_OTHER);
    assert!(location(&consent).starts_with("/ui/login"));
}

#[tokio::test]
async fn oidcc_max_age_10000() {
    let (app, client, _) = op().await;
    let b = signed_in_browser(&app, &client).await;
    app.clock.advance(60);
    let resp = first_hop(&b, &authorize_url(&app, &client, &[("max_age", "10000")])).await;
    let next = b.get(app.url(&location(&resp))).send().await.unwrap();
    assert_eq!(
        next.status(),
        StatusCode::SEE_OTHER,
        "recent enough: no login form"
    );
    assert!(location(&next).starts_with("/ui/consent"));
}

#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let (app, client, _) = op().await;
    let discovery: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["request_parameter_supported"], false);
    assert_eq!(discovery["request_uri_parameter_supported"], false);
    for (param_name, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let value = if param_name == "request" {
            "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."
        } else {
            "https://rp.example.com/request.jwt"
        };
        let resp = first_hop(
            &browser(),
            &authorize_url(&app, &client, &[(param_name, value)]),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        let to = location(&resp);
        assert_eq!(param(&to, "error").as_deref(), Some(error), "{to}");
        assert_eq!(param(&to, "iss").as_deref(), Some(crate::helpers::ISSUER));
    }
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let (app, client, _) = op().await;
    let url = authorize_url(&app, &client, &[]).replace("response_type=code&", "");
    let resp = first_hop(&browser(), &url).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert!(param(&to, "error").is_some(), "{to}");
    // RFC 9207: error responses carry iss too.
    assert_eq!(param(&to, "iss").as_deref(), Some(crate::helpers::ISSUER));
    assert_eq!(param(&to, "state").as_deref(), Some("xyz"));
}

#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let (app, client, _) = op().await;
    let to = browser_sign_in(
        &app,
        &browser(),
        &authorize_url(
            &app,
            &client,
            &[
                ("extra", "foobar"),
                ("display", "page"),
                ("ui_locales", "zh-CN"),
                ("acr_values", "1 2"),
            ],
        ),
        "carol",
        PASSWORD,
    )
    .await;
    assert!(param(&to, "code").is_some(), "{to}");
}

#[tokio::test]
async fn oidcc_login_hint() {
    let (app, client, _) = op().await;
    let b = browser();
    let resp = first_hop(
        &b,
        &authorize_url(&app, &client, &[("login_hint", "carol")]),
    )
    .await;
    let page = b.get(app.url(&location(&resp))).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("value=\"carol\""),
        "the login field is prefilled"
    );
}

#[tokio::test]
async fn authorization_requests_may_be_posted() {
    let (app, client, _) = op().await;
    let resp = browser()
        .post(app.url("/oauth2/authorize"))
        .form(&[
            ("response_type", "code"),
            ("client_id", client.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "posted"),
            ("prompt", "none"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert_eq!(param(&to, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&to, "state").as_deref(), Some("posted"));
}

/// Signs carol in for `client` with `scope` and redeems the code.
pub(crate) async fn tokens_for(
    app: &TestApp,
    client: &(String, String),
    extra: &[(&str, &str)],
) -> Value {
    let to = browser_sign_in(
        app,
        &browser(),
        &authorize_url(app, &client.0, extra),
        "carol",
        PASSWORD,
    )
    .await;
    redeem(app, client, &param(&to, "code").expect("a code")).await
}

#[tokio::test]
async fn oidcc_userinfo_get_post_header_and_post_body() {
    let (app, id, secret) = op().await;
    let tokens = tokens_for(&app, &(id, secret), &[("scope", "openid profile")]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let sub = claims(tokens["id_token"].as_str().unwrap())["sub"].clone();
    let get = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let post_header = app
        .client
        .post(app.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let post_body = app
        .client
        .post(app.url("/oauth2/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    for resp in [get, post_header, post_body] {
        assert_eq!(resp.status(), StatusCode::OK);
        let info: Value = resp.json().await.unwrap();
        // OIDC Core §5.3.2: sub equals the id_token's.
        assert_eq!(info["sub"], sub);
        assert_eq!(info["preferred_username"], "carol");
    }
}

#[tokio::test]
async fn oidcc_scope_profile_and_oidcc_scope_email() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    let profile = tokens_for(&app, &client, &[("scope", "openid profile")]).await;
    let email = tokens_for(&app, &client, &[("scope", "openid email")]).await;
    let info = |t: &Value| {
        let token = t["access_token"].as_str().unwrap().to_string();
        let app = &app;
        async move {
            app.client
                .get(app.url("/oauth2/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let p = info(&profile).await;
    assert_eq!(p["preferred_username"], "carol");
    assert!(p.get("email").is_none(), "{p}");
    let e = info(&email).await;
    assert_eq!(e["email"], "carol@example.test");
    assert!(e.get("email_verified").is_some());
    assert!(e.get("preferred_username").is_none(), "{e}");
}

#[tokio::test]
async fn oidcc_ensure_other_scope_order_succeeds() {
    let (app, id, secret) = op().await;
    let tokens = tokens_for(&app, &(id, secret), &[("scope", "email openid")]).await;
    assert!(
        tokens["id_token"].is_string(),
        "openid anywhere in the list counts"
    );
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let (app, id, secret) = op().await;
    let tokens = tokens_for(&app, &(id, secret), &[]).await;
    assert!(
        claims(tokens["id_token"].as_str().unwrap())
            .get("nonce")
            .is_none()
    );
}

#[tokio::test]
async fn oidcc_codereuse_and_oidcc_codereuse_30seconds() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    for wait in [0, 30] {
        let to = browser_sign_in(
            &app,
            &browser(),
            &authorize_url(&app, &client.0, &[]),
            "carol",
            PASSWORD,
        )
        .await;
        let code = param(&to, "code").unwrap();
        let tokens = redeem(&app, &client, &code).await;
        app.clock.advance(wait);
        let again = redeem_raw(&app, &client, &code).await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            again.json::<Value>().await.unwrap()["error"],
            "invalid_grant"
        );
        // RFC 6749 §4.1.2: what the first redemption issued is revoked.
        let info = app
            .client
            .get(app.url("/oauth2/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(info.status(), StatusCode::UNAUTHORIZED, "after {wait} s");
    }
}

#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let (app, id, _) = op().await;
    let url = authorize_url(&app, &id, &[]).replace(
        &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        &url::form_urlencoded::byte_serialize(b"https://rp.example.com/other").collect::<String>(),
    );
    let resp = first_hop(&browser(), &url).await;
    // An error page of ours, never a redirect to the unregistered URI.
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    let tokens = tokens_for(&app, &client, &[("scope", "openid offline_access")]).await;
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let resp = app
        .oauth_post(
            "token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Some((&client.0, &client.1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: Value = resp.json().await.unwrap();
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    // OIDC Core §12.2: a refresh may omit the id_token (ours does); the new access token
    // names the same user at userinfo.
    assert!(refreshed.get("id_token").is_none(), "{refreshed}");
    let info: Value = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["sub"],
        claims(tokens["id_token"].as_str().unwrap())["sub"]
    );
}

#[tokio::test]
async fn oidcc_server_client_secret_post() {
    let (app, id, secret) = op().await;
    let to = browser_sign_in(
        &app,
        &browser(),
        &authorize_url(&app, &id, &[]),
        "carol",
        PASSWORD,
    )
    .await;
    let resp = app
        .oauth_post(
            "token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &param(&to, "code").unwrap()),
                ("redirect_uri", REDIRECT),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    let c = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(c["iss"], crate::helpers::ISSUER);
    assert_eq!(c["aud"], json!(id));
}

#[tokio::test]
async fn oidcc_id_token_hint() {
    let (app, id, secret) = op().await;
    let b = browser();
    let to = browser_sign_in(&app, &b, &authorize_url(&app, &id, &[]), "carol", PASSWORD).await;
    let tokens = redeem(&app, &(id.clone(), secret), &param(&to, "code").unwrap()).await;
    let hint = tokens["id_token"].as_str().unwrap();
    // Re-authentication without interaction, naming the signed-in user: a code.
    let resp = first_hop(
        &b,
        &authorize_url(&app, &id, &[("prompt", "none"), ("id_token_hint", hint)]),
    )
    .await;
    let to = location(&resp);
    assert!(param(&to, "code").is_some(), "{to}");
    // Another browser, where nobody is signed in: login_required.
    let resp = first_hop(
        &browser(),
        &authorize_url(&app, &id, &[("prompt", "none"), ("id_token_hint", hint)]),
    )
    .await;
    assert_eq!(
        param(&location(&resp), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn oidcc_display_page_popup_ui_locales_claims_locales_acr_values() {
    let (app, id, _) = op().await;
    for extra in [
        ("display", "page"),
        ("display", "popup"),
        ("ui_locales", "se"),
        ("claims_locales", "se"),
        ("acr_values", "1 2"),
    ] {
        let to = browser_sign_in(
            &app,
            &browser(),
            &authorize_url(&app, &id, &[extra]),
            "carol",
            PASSWORD,
        )
        .await;
        assert!(param(&to, "code").is_some(), "{extra:?}: {to}");
    }
}

#[tokio::test]
async fn jwks_publishes_every_id_token_key_before_use_and_serving_it_writes_nothing() {
    let app = spawn_app().await;
    // Before any id_token exists, a key for every algorithm is published.
    let jwks: Value = app.get_json("/oauth2/jwks").await;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert!(
        algs.contains(&"RS256") && algs.contains(&"EdDSA") && algs.contains(&"Ed25519"),
        "{algs:?}"
    );
    let before = app.services.store.commits();
    for _ in 0..5 {
        let again: Value = app.get_json("/oauth2/jwks").await;
        assert_eq!(again, jwks);
    }
    assert_eq!(
        app.services.store.commits(),
        before,
        "GET /oauth2/jwks wrote"
    );
}

#[tokio::test]
async fn oidcc_scope_address_oidcc_scope_phone_and_oidcc_scope_all() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    for scope in [
        "openid address",
        "openid phone",
        "openid profile email address phone",
    ] {
        let tokens = tokens_for(&app, &client, &[("scope", scope)]).await;
        // Granted without the claims we keep no data for (RFC 6749 §3.3: the answer names
        // the scope granted).
        let granted = tokens["scope"].as_str().unwrap();
        assert!(granted.contains("openid"), "{scope}: {granted}");
        assert!(
            !granted.contains("address") && !granted.contains("phone"),
            "{granted}"
        );
        let info: Value = app
            .client
            .get(app.url("/oauth2/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(info["sub"].is_string(), "{info}");
        assert!(info.get("address").is_none() && info.get("phone_number").is_none());
    }
}

#[tokio::test]
async fn oidcc_claims_essential() {
    let (app, id, secret) = op().await;
    // The claims parameter is not supported (discovery says so) and is ignored, not refused.
    let discovery: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(discovery["claims_parameter_supported"], false);
    let claims_param = r#"{"userinfo":{"name":{"essential":true}}}"#;
    let tokens = tokens_for(
        &app,
        &(id, secret),
        &[("scope", "openid profile"), ("claims", claims_param)],
    )
    .await;
    assert!(tokens["id_token"].is_string());
}

#[tokio::test]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    // A request object alongside a registered redirect_uri: refused as unsupported, and the
    // refusal goes back to that redirect URI with state and iss (OIDC Core §6.1, §3.1.2.6).
    let (app, client, _) = op().await;
    let request_object =
        "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL3JwLmV4YW1wbGUuY29tL2NiIn0.";
    let resp = first_hop(
        &browser(),
        &authorize_url(&app, &client, &[("request", request_object)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("request_not_supported")
    );
    assert_eq!(param(&to, "state").as_deref(), Some("xyz"));
}

#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    use base64::Engine;
    use sha2::Digest;
    let (app, id, secret) = op().await;
    let client = (id, secret);
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let to = browser_sign_in(
        &app,
        &browser(),
        &authorize_url(
            &app,
            &client.0,
            &[
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        ),
        "carol",
        PASSWORD,
    )
    .await;
    let code = param(&to, "code").unwrap();
    let resp = app
        .oauth_post(
            "token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
            Some((&client.0, &client.1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    assert!(tokens["id_token"].is_string());
}

/// The Config OP plan: discovery at the well-known path, its `issuer` equal to the issuer
/// the id_tokens carry and to the URL it was fetched under, every endpoint under it, the
/// JWKS reachable with usable signing keys, and the required fields present.
#[tokio::test]
async fn oidcc_server_config_op_discovery_and_jwks() {
    let (app, id, secret) = op().await;
    let meta: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(meta["issuer"], crate::helpers::ISSUER);
    // OIDC Discovery §3: the required fields.
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(!meta[field].is_null(), "{field}");
    }
    assert!(
        meta["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256")),
        "RS256 is required"
    );
    for (field, value) in meta.as_object().unwrap() {
        if field.ends_with("_endpoint") || field.ends_with("_uri") {
            assert!(
                value.as_str().unwrap().starts_with(crate::helpers::ISSUER),
                "{field}: {value}"
            );
        }
    }
    let jwks: Value = app.get_json("/oauth2/jwks").await;
    for key in jwks["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].is_string() && key["alg"].is_string());
        assert!(key.get("d").is_none(), "no private part is published");
    }
    let tokens = tokens_for(&app, &(id, secret), &[]).await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["iss"],
        meta["issuer"],
        "the id_token's iss is the discovery issuer"
    );
}
