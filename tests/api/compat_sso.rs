//! `sso-api.md`: every request of the document replayed with its parameters, the code flows
//! it describes, then the failures.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, browser, browser_sign_in, location, spawn_app, status_json,
};

/// The document's sample user.
const DOC_USERNAME: &str = "小明";
const DOC_EMAIL: &str = "17371438227@122.com";
const REDIRECT: &str = "https://example.com/callback";

fn assert_envelope(body: &Value, code: i64, message: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["message"], message, "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "message", "data"], "{body}");
}

/// Asserts `data` has exactly these string fields.
fn assert_strings(data: &Value, fields: &[&str]) {
    let obj = data
        .as_object()
        .unwrap_or_else(|| panic!("data is an object: {data}"));
    assert_eq!(obj.len(), fields.len(), "{data}");
    for f in fields {
        assert!(obj[*f].is_string(), "{f} is a string in {data}");
    }
}

async fn register(app: &TestApp, name: &str) -> Value {
    app.post_json(
        "/register/",
        &json!({"username": name, "email": format!("{name}@122.com"), "password": PASSWORD}),
    )
    .await
}

async fn auth(
    app: &TestApp,
    method: reqwest::Method,
    authorization: &str,
    form: Option<&[(&str, &str)]>,
) -> Value {
    let mut req = app
        .client
        .request(method, app.url("/auth/"))
        .header("Authorization", authorization);
    if let Some(f) = form {
        req = req.form(f);
    }
    let (status, body) = status_json(req.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    body
}

/// Registers `dev`, makes them a developer with `REDIRECT` registered; returns the secrets.
async fn developer(app: &TestApp) -> (String, String) {
    let token = register(app, "dev").await["data"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = auth(
        app,
        reqwest::Method::PATCH,
        &token,
        Some(&[("is_developer", "true"), ("redirect_uris", REDIRECT)]),
    )
    .await;
    assert_envelope(&body, 200, "获取成功");
    (
        body["data"]["secret_id"].as_str().unwrap().to_string(),
        body["data"]["secret_value"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn every_documented_request_works_as_written() {
    let app = spawn_app().await;

    // 一、用户注册
    let body = app
        .post_json(
            "/register/",
            &json!({"username": DOC_USERNAME, "email": DOC_EMAIL, "password": PASSWORD}),
        )
        .await;
    assert_envelope(&body, 200, "注册成功");
    assert_strings(&body["data"], &["token", "username", "email"]);
    assert_eq!(body["data"]["username"], DOC_USERNAME);
    assert_eq!(body["data"]["email"], DOC_EMAIL);

    // 二、用户登录, by username and by email, without a client: empty code and URI.
    for login in [
        json!({"username": DOC_USERNAME, "password": PASSWORD}),
        json!({"email": DOC_EMAIL, "password": PASSWORD}),
    ] {
        let body = app
            .post_json("/login/?secret_id=&redirect_uri=", &login)
            .await;
        assert_envelope(&body, 200, "登录成功");
        let data = &body["data"];
        assert_strings(
            data,
            &[
                "token",
                "redirect_uri",
                "authorization_code",
                "username",
                "email",
            ],
        );
        assert_eq!(data["redirect_uri"], "");
        assert_eq!(data["authorization_code"], "");
        assert_eq!(data["username"], DOC_USERNAME);
    }
    let token = app
        .post_json(
            "/login/",
            &json!({"username": DOC_USERNAME, "password": PASSWORD}),
        )
        .await["data"]["token"]
        .as_str()
        .unwrap()
        .to_string();

    // 三、1 获取个人信息, the token with or without `Bearer `.
    for authorization in [token.clone(), format!("Bearer {token}")] {
        let body = auth(&app, reqwest::Method::GET, &authorization, None).await;
        assert_envelope(&body, 200, "获取成功");
        assert_strings(
            &body["data"],
            &["username", "email", "secret_id", "secret_value"],
        );
        assert_eq!(body["data"]["secret_id"], "", "not a developer yet");
    }

    // 三、2 更改为开发者 (JSON here; the helper below uses a form).
    let body = auth(&app, reqwest::Method::PATCH, &token, None).await;
    assert_eq!(body["code"], 400, "is_developer is required: {body}");
    let resp = app
        .client
        .patch(app.url("/auth/"))
        .header("Authorization", &token)
        .json(&json!({"is_developer": true, "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    let body = status_json(resp).await.1;
    assert_envelope(&body, 200, "获取成功");
    assert_strings(
        &body["data"],
        &["username", "email", "secret_id", "secret_value"],
    );
    let secret_id = body["data"]["secret_id"].as_str().unwrap().to_string();
    let secret_value = body["data"]["secret_value"].as_str().unwrap().to_string();
    assert!(!secret_id.is_empty() && secret_value.len() >= 32);
    // Shown again by GET, and stored only sealed and hashed.
    let again = auth(&app, reqwest::Method::GET, &token, None).await;
    assert_eq!(again["data"]["secret_id"], secret_id.as_str());
    assert_eq!(again["data"]["secret_value"], secret_value.as_str());
    let id = secret_id.clone();
    let record = app
        .services
        .store
        .run(move |s| s.get_client(&id))
        .await
        .unwrap()
        .expect("client stored");
    let stored = serde_json::to_string(&record).unwrap();
    assert!(
        !stored.contains(&secret_value),
        "the secret is not stored in clear"
    );
    assert!(record.secret_sealed.is_some());

    // 四、1 用户授权页面: the browser flow ends at the redirect URI with a code.
    register(&app, "reader").await;
    let url = app.url(&format!(
        "/oauth/?secret_id={secret_id}&redirect_uri={}",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    ));
    let b = browser();
    let first = b.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::FOUND);
    assert!(
        location(&first).starts_with("/ui/login?request="),
        "to the login page"
    );
    let landed = browser_sign_in(&app, &b, &url, "reader", PASSWORD).await;
    assert!(landed.starts_with(&format!("{REDIRECT}?code=")), "{landed}");
    let code = url::Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();

    // 四、2 客户端后端调用: the code names the user, once.
    let exchange =
        json!({"secret_id": secret_id, "secret_value": secret_value, "authorization_code": code});
    let body = app.post_json("/oauth/", &exchange).await;
    assert_envelope(&body, 200, "获取授权成功");
    assert_strings(&body["data"], &["username", "email"]);
    assert_eq!(body["data"]["username"], "reader");
    assert_eq!(body["data"]["email"], "reader@122.com");
    let body = app.post_json("/oauth/", &exchange).await;
    assert_eq!(body["code"], 400, "single use: {body}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn login_with_a_client_returns_a_code_for_the_backend() {
    let app = spawn_app().await;
    let (secret_id, secret_value) = developer(&app).await;
    register(&app, "xiaoming").await;
    let path = format!(
        "/login/?secret_id={secret_id}&redirect_uri={}",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let body = app
        .post_form(&path, &[("username", "xiaoming"), ("password", PASSWORD)])
        .await;
    assert_envelope(&body, 200, "登录成功");
    assert_eq!(body["data"]["redirect_uri"], REDIRECT);
    let code = body["data"]["authorization_code"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!code.is_empty());

    // A wrong secret is refused and does not spend the code.
    let wrong = app
        .post_json(
            "/oauth/",
            &json!({"secret_id": secret_id, "secret_value": "guess", "authorization_code": code}),
        )
        .await;
    assert_eq!(wrong["code"], 401, "{wrong}");
    let body = app
        .post_form(
            "/oauth/",
            &[
                ("secret_id", &secret_id),
                ("secret_value", &secret_value),
                ("authorization_code", &code),
            ],
        )
        .await;
    assert_eq!(body["data"]["username"], "xiaoming");

    // An unregistered redirect URI or unknown client: signed in, but no code.
    for query in [
        format!("/login/?secret_id={secret_id}&redirect_uri=https%3A%2F%2Fevil.example%2F"),
        "/login/?secret_id=nope&redirect_uri=https%3A%2F%2Fexample.com%2Fcallback".to_string(),
    ] {
        let body = app
            .post_json(
                &query,
                &json!({"username": "xiaoming", "password": PASSWORD}),
            )
            .await;
        assert_eq!(body["code"], 200);
        assert_eq!(body["data"]["authorization_code"], "");
        assert_eq!(body["data"]["redirect_uri"], "");
    }
}

#[tokio::test]
async fn failures_are_enveloped_with_null_data_and_change_nothing() {
    let app = spawn_app().await;
    register(&app, "xiaoming").await;
    let check = |body: Value, code: i64| {
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["data"].is_null(), "{body}");
    };
    // Taken name, invalid fields, guessable password.
    check(register(&app, "xiaoming").await, 409);
    check(
        app.post_json(
            "/register/",
            &json!({"username": "a b", "email": "x@122.com", "password": PASSWORD}),
        )
        .await,
        400,
    );
    check(
        app.post_json(
            "/register/",
            &json!({"username": "weak", "email": "w@122.com", "password": "password"}),
        )
        .await,
        400,
    );
    check(
        app.post_json("/register/", &json!({"username": 5})).await,
        400,
    );
    let (status, body) = status_json(
        app.post_raw("/register/", Some("application/json"), b"{".to_vec())
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    check(body, 400);
    let (status, body) = status_json(
        app.post_raw("/register/", Some("application/json"), vec![0xff, 0xfe])
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    check(body, 400);
    assert_eq!(app.table_count("users").await, 1);
    // Wrong password and unknown user look the same.
    let wrong = app
        .post_json(
            "/login/",
            &json!({"username": "xiaoming", "password": "nope-nope-nope"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/login/",
            &json!({"username": "nobody", "password": "nope-nope-nope"}),
        )
        .await;
    assert_eq!(wrong, unknown);
    check(wrong, 401);
    check(
        app.post_json("/login/", &json!({"username": "xiaoming"}))
            .await,
        400,
    );
    // Bad tokens.
    check(auth(&app, reqwest::Method::GET, "garbage", None).await, 401);
    check(
        auth(
            &app,
            reqwest::Method::PATCH,
            "Bearer garbage",
            Some(&[("is_developer", "true")]),
        )
        .await,
        401,
    );
    // Code exchange without a client or with an unknown code.
    check(
        app.post_json(
            "/oauth/",
            &json!({"secret_id": "x", "secret_value": "y", "authorization_code": "z"}),
        )
        .await,
        401,
    );
    check(app.post_json("/oauth/", &json!({})).await, 400);
    // The browser flow refuses unknown clients and unregistered URIs on our page.
    let resp = app
        .client
        .get(app.url("/oauth/?secret_id=nope&redirect_uri=https%3A%2F%2Fexample.com%2Fcallback"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.headers().get("location").is_none(),
        "never an open redirect"
    );
}

#[tokio::test]
async fn becoming_a_developer_twice_keeps_one_client() {
    let app = spawn_app().await;
    let (id, secret) = developer(&app).await;
    let token = app
        .post_json("/login/", &json!({"username": "dev", "password": PASSWORD}))
        .await["data"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let again = auth(
        &app,
        reqwest::Method::PATCH,
        &token,
        Some(&[("is_developer", "true")]),
    )
    .await;
    assert_eq!(again["data"]["secret_id"], id.as_str());
    assert_eq!(again["data"]["secret_value"], secret.as_str());
    assert_eq!(
        app.table_count("clients").await,
        2,
        "the Swagger client and this one"
    );
    // A secret rotated through the native API is the one /auth/ shows from then on.
    let resp = app
        .clients_call(
            reqwest::Method::POST,
            &token,
            &format!("/{id}/secret"),
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rotated: Value = resp.json().await.unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let shown = auth(&app, reqwest::Method::GET, &token, None).await;
    assert_eq!(shown["data"]["secret_value"], new_secret);
}

#[tokio::test]
async fn becoming_a_developer_without_redirect_uris_is_refused_whole() {
    let app = spawn_app().await;
    let user = app.register_user("halfway").await;
    let token = app
        .post_json(
            "/login/",
            &json!({"username": "halfway", "password": PASSWORD}),
        )
        .await["data"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = auth(
        &app,
        reqwest::Method::PATCH,
        &token,
        Some(&[("is_developer", "true")]),
    )
    .await;
    assert_eq!(body["code"], 400, "a client needs a redirect URI: {body}");
    // Nothing happened: no role, no client.
    let me: Value = app.get_me(&user.access_token).await.json().await.unwrap();
    assert_eq!(me["roles"], json!([]), "the role was not granted");
    assert_eq!(
        app.table_count("clients").await,
        1,
        "only the Swagger client"
    );
    let body = auth(&app, reqwest::Method::GET, &token, None).await;
    assert_eq!(body["data"]["secret_id"], "");
}

#[tokio::test]
async fn public_clients_get_no_code_from_the_sso_login_and_cannot_redeem_one_without_pkce() {
    let app = spawn_app().await;
    let dev = app.register_developer("pubdev").await;
    let resp = app
        .create_client(
            &dev.access_token,
            &json!({"name": "spa", "redirect_uris": [REDIRECT], "confidential": false}),
        )
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    let client_id = resp.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The SSO login names the public client: the sign-in stands, but no code is issued.
    let body = app
        .post_json(
            &format!(
                "/login/?secret_id={client_id}&redirect_uri={}",
                url_escape(REDIRECT)
            ),
            &json!({"username": "pubdev", "password": PASSWORD}),
        )
        .await;
    assert_eq!(body["code"], 200, "{body}");
    assert_eq!(body["data"]["authorization_code"], "", "{body}");

    // Defence in depth: a code without a PKCE challenge, however it came to exist, is not a
    // public client's to redeem at the token endpoint.
    let code = "a-code-issued-without-pkce";
    let record = portcullis::store::authz::AuthCodeRecord {
        client_id: client_id.clone(),
        redirect_uri: REDIRECT.into(),
        user_id: dev.id.clone(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: None,
        auth_time: app.clock.now(),
        expires_at: app.clock.now() + 60,
        redeemed_family: None,
        sid: None,
        amr: Vec::new(),
        idp: None,
    };
    let hash = portcullis::token::opaque::digest(code);
    app.services
        .store
        .run(move |s| s.put_auth_code(hash, &record))
        .await
        .unwrap();
    let resp = app
        .oauth_post(
            "token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
