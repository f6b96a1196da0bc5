//! `account-api.md`: every request of the document replayed with its parameters, then each
//! documented code that can occur.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, noisy_png, spawn_app, spawn_app_with, status_json};

/// The document's own sample values.
const USERNAME: &str = "ascotbe";
const DOC_PASSWORD: &str = "Soryu Asuka Langley";
const EMAIL: &str = "medusa@ascotbe.com";
const SHOW_NAME: &str = "Rei Ayanami";
/// The document's new passwords ("XXXX…", "test") are too guessable for us; this one is not.
const NEW_PASSWORD: &str = "Quartz-Lantern-97-Meadow";
const FORGET_KEY: &str = "forget-key-for-tests";

fn assert_reply(body: &Value, code: i64, message: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["message"], message, "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "only message and code: {body}"
    );
}

async fn register(app: &TestApp) -> Value {
    let (key, answer) = app.solved_captcha().await;
    app.post_json(
        "/api/registered",
        &json!({
            "show_name": SHOW_NAME,
            "username": USERNAME,
            "passwd": DOC_PASSWORD,
            "email": EMAIL,
            "key": "XXXXXXXXm",
            "verification_code_key": key,
            "verification_code": answer,
        }),
    )
    .await
}

async fn login(app: &TestApp, password: &str) -> Value {
    let (key, answer) = app.solved_captcha().await;
    app.post_json(
        "/api/login",
        &json!({"username": USERNAME, "passwd": password, "verification_code_key": key, "verification_code": answer}),
    )
    .await
}

async fn user_info(app: &TestApp, token: &str) -> Value {
    app.post_json("/api/user_info/", &json!({"token": token}))
        .await
}

async fn upload(app: &TestApp, token: Option<&str>, bytes: Vec<u8>) -> Value {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("test.jpeg")
        .mime_str("image/jpeg")
        .unwrap();
    let mut req = app
        .client
        .post(app.url("/api/upload_avatar/"))
        .multipart(reqwest::multipart::Form::new().part("file", part));
    if let Some(t) = token {
        req = req.header("token", t);
    }
    let (status, body) = status_json(req.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    body
}

#[tokio::test]
async fn every_documented_request_works_as_written() {
    let app = spawn_app_with(|c| c.forget_password_key = Some(FORGET_KEY.into())).await;

    // The captcha the endpoints take: PNG body, key in a header.
    let resp = app
        .client
        .get(app.url("/api/get_verification_code/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let key = resp.headers()["VerificationCodeKey"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!key.is_empty());
    assert!(
        resp.headers().get("VerificationCodeAnswer").is_none(),
        "the answer only in dev mode"
    );
    let png = resp.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG image");

    assert_reply(&register(&app).await, 200, "注册成功");

    let body = login(&app, DOC_PASSWORD).await;
    assert_eq!(body["code"], 200);
    let token = body["message"].as_str().expect("the token is the message");
    assert!(!token.is_empty());
    // It is a portcullis access token: the native API accepts it too.
    let me = app.get_me(token).await;
    assert_eq!(me.status(), StatusCode::OK);

    let info = user_info(&app, token).await;
    assert_eq!(info["code"], 200);
    let user = &info["message"];
    assert_eq!(user["id"], 1, "the first user");
    assert!(user["id"].is_u64());
    assert_eq!(user["name"], USERNAME);
    assert_eq!(user["token"], token);
    assert_eq!(user["show_name"], SHOW_NAME);
    assert_eq!(user["email"], EMAIL);
    assert_eq!(user["avatar"], "", "no avatar yet");
    let api_key = user["key"].as_str().expect("key").to_string();
    assert!(api_key.starts_with("pcl_"), "a personal API key: {api_key}");
    let lookup = portcullis::store::users::UserLookup::UsernameKey(USERNAME.to_lowercase());
    let stored = app.services.store.find_user(&lookup).unwrap().unwrap();
    assert!(
        !serde_json::to_string(&stored).unwrap().contains(&api_key),
        "the key is stored encrypted, not in clear"
    );
    assert_eq!(
        app.get_me_with_api_key_header(&api_key).await.status(),
        StatusCode::OK,
        "the key shown is the working key"
    );

    let body = app
        .post_json(
            "/api/update_show_name/",
            &json!({"token": token, "new_show_name": "阿巴阿巴阿巴"}),
        )
        .await;
    assert_reply(&body, 200, "好诶！修改成功~");
    assert_eq!(
        user_info(&app, token).await["message"]["show_name"],
        "阿巴阿巴阿巴"
    );

    let body = app
        .post_json("/api/update_key/", &json!({"token": token}))
        .await;
    assert_reply(&body, 200, "呐呐呐呐！修改成功了呢~");
    let new_key = user_info(&app, token).await["message"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_key, api_key);
    assert_eq!(
        app.get_me_with_api_key_header(&api_key).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old key stopped working"
    );
    assert_eq!(
        app.get_me_with_api_key_header(&new_key).await.status(),
        StatusCode::OK
    );

    let body = upload(&app, Some(token), noisy_png(64, 64, [200, 30, 30])).await;
    assert_eq!(body["code"], 200, "{body}");
    let file = body["message"].as_str().unwrap().to_string();
    assert!(
        file.ends_with(".png"),
        "the stored avatar's file name: {file}"
    );
    assert_eq!(user_info(&app, token).await["message"]["avatar"], file);

    let (key, answer) = app.solved_captcha().await;
    let body = app
        .post_json(
            "/api/update_password/",
            &json!({"username": USERNAME, "old_passwd": DOC_PASSWORD, "new_passwd": NEW_PASSWORD,
                    "verification_code_key": key, "verification_code": answer}),
        )
        .await;
    assert_reply(&body, 200, "好耶！修改成功~");
    assert_reply(
        &user_info(&app, token).await,
        403,
        "小宝贝这是非法查询哦(๑•̀ㅂ•́)و✧",
    );
    assert_eq!(login(&app, NEW_PASSWORD).await["code"], 200);

    let (key, answer) = app.solved_captcha().await;
    let body = app
        .post_json(
            "/api/forget_password/",
            &json!({"key": FORGET_KEY, "name": USERNAME, "new_passwd": PASSWORD, "email": EMAIL,
                    "verification_code_key": key, "verification_code": answer}),
        )
        .await;
    assert_reply(&body, 200, "修改成功啦~建议去配置文件中关闭忘记密码功能哦~");
    assert_eq!(login(&app, NEW_PASSWORD).await["code"], 604);
    assert_eq!(login(&app, PASSWORD).await["code"], 200);
}

#[tokio::test]
async fn form_fields_work_like_json() {
    let app = spawn_app().await;
    assert_eq!(register(&app).await["code"], 200);
    let (key, answer) = app.solved_captcha().await;
    let body = app
        .post_form(
            "/api/login",
            &[
                ("username", USERNAME),
                ("passwd", DOC_PASSWORD),
                ("verification_code_key", &key),
                ("verification_code", &answer),
            ],
        )
        .await;
    assert_eq!(body["code"], 200, "{body}");
}

#[tokio::test]
async fn registration_codes() {
    let app = spawn_app().await;
    let body = |key: &str, answer: &str, username: &str, email: &str, passwd: &str| {
        json!({"show_name": "x", "username": username, "passwd": passwd, "email": email,
               "key": "k", "verification_code_key": key, "verification_code": answer})
    };
    // 666: no data.
    let (status, reply) = app
        .send_bare(reqwest::Method::POST, "/api/registered")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_reply(&reply, 666, "宝贝数据呢？");
    // 400: unreadable data.
    let reply = status_json(
        app.post_raw(
            "/api/registered",
            Some("application/json"),
            b"{\"username\":".to_vec(),
        )
        .await,
    )
    .await
    .1;
    assert_reply(&reply, 400, "位置错误");
    let reply = app
        .post_json("/api/registered", &json!({"username": 5, "passwd": "x"}))
        .await;
    assert_reply(&reply, 400, "位置错误");
    // 505: captcha fields empty.
    let reply = app
        .post_json(
            "/api/registered",
            &body("", "", "nia", "nia@example.test", PASSWORD),
        )
        .await;
    assert_reply(&reply, 505, "验证码或者验证码秘钥不能为空！");
    // 504: wrong captcha.
    let (key, _) = app.solved_captcha().await;
    let reply = app
        .post_json(
            "/api/registered",
            &body(&key, "wrong", "nia", "nia@example.test", PASSWORD),
        )
        .await;
    assert_reply(&reply, 504, "验证码错误或者过期！");
    // 603: a rule is broken (guessable password).
    let (key, answer) = app.solved_captcha().await;
    let reply = app
        .post_json(
            "/api/registered",
            &body(&key, &answer, "nia", "nia@example.test", "password"),
        )
        .await;
    assert_reply(&reply, 603, "注册失败");
    // 200, then 604 for the same name or the same address.
    let (key, answer) = app.solved_captcha().await;
    let reply = app
        .post_json(
            "/api/registered",
            &body(&key, &answer, "nia", "nia@example.test", PASSWORD),
        )
        .await;
    assert_reply(&reply, 200, "注册成功");
    for (name, email) in [("nia", "other@example.test"), ("other", "NIA@example.test")] {
        let (key, answer) = app.solved_captcha().await;
        let reply = app
            .post_json(
                "/api/registered",
                &body(&key, &answer, name, email, PASSWORD),
            )
            .await;
        assert_reply(&reply, 604, "用户名或邮箱已存在");
    }
    assert_eq!(app.table_count("users").await, 1, "refusals wrote nothing");
    // 500: not POST.
    let (status, reply) = app.send_bare(reqwest::Method::GET, "/api/registered").await;
    assert_eq!(status, StatusCode::OK);
    assert_reply(&reply, 500, "请使用Post请求");
}

#[tokio::test]
async fn registration_key_and_closed_registration() {
    use portcullis::config::RegistrationPolicy;
    let app = spawn_app_with(|c| {
        c.registration = RegistrationPolicy::Invite;
        c.registration_key = Some("let-me-in".into());
    })
    .await;
    let attempt = |key: &'static str| {
        let app = &app;
        async move {
            let (k, a) = app.solved_captcha().await;
            app.post_json(
                "/api/registered",
                &json!({"show_name": "x", "username": "ivy", "passwd": PASSWORD, "email": "ivy@example.test",
                        "key": key, "verification_code_key": k, "verification_code": a}),
            )
            .await
        }
    };
    assert_reply(
        &attempt("wrong").await,
        403,
        "小宝贝这是非法注册哦(๑•̀ㅂ•́)و✧",
    );
    assert_reply(&attempt("let-me-in").await, 200, "注册成功");

    let closed = spawn_app_with(|c| c.registration = RegistrationPolicy::Closed).await;
    let (k, a) = closed.solved_captcha().await;
    let reply = closed
        .post_json(
            "/api/registered",
            &json!({"show_name": "x", "username": "ivy", "passwd": PASSWORD, "email": "ivy@example.test",
                    "key": "", "verification_code_key": k, "verification_code": a}),
        )
        .await;
    assert_reply(&reply, 503, "小宝贝你没有开启注册功能哦！！");
}

#[tokio::test]
async fn login_codes() {
    let app = spawn_app().await;
    register(&app).await;
    let reply = app
        .post_json(
            "/api/login",
            &json!({"username": USERNAME, "passwd": DOC_PASSWORD}),
        )
        .await;
    assert_reply(&reply, 504, "验证码或者验证码秘钥不能为空！");
    let (key, _) = app.solved_captcha().await;
    let reply = app
        .post_json(
            "/api/login",
            &json!({"username": USERNAME, "passwd": DOC_PASSWORD, "verification_code_key": key, "verification_code": "nope"}),
        )
        .await;
    assert_reply(&reply, 503, "验证码错误或者过期！");
    // Wrong password and unknown user look the same.
    assert_reply(
        &login(&app, "not the password").await,
        604,
        "账号或密码错误",
    );
    let (key, answer) = app.solved_captcha().await;
    let reply = app
        .post_json(
            "/api/login",
            &json!({"username": "nobody", "passwd": DOC_PASSWORD, "verification_code_key": key, "verification_code": answer}),
        )
        .await;
    assert_reply(&reply, 604, "账号或密码错误");
    let (status, reply) = app.send_bare(reqwest::Method::PUT, "/api/login").await;
    assert_eq!(status, StatusCode::OK);
    assert_reply(&reply, 500, "请使用Post请求");
    // The same per-account throttle as every other login (not in the document: 429).
    for _ in 0..4 {
        assert_eq!(login(&app, "not the password").await["code"], 604);
    }
    let reply = login(&app, DOC_PASSWORD).await;
    assert_reply(&reply, 429, "尝试次数过多，请稍后再试");
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_anything_is_read() {
    let app = spawn_app().await;
    let huge = json!({"username": "x".repeat(70 * 1024)});
    let resp = app
        .client
        .post(app.url("/api/registered"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.table_count("users").await, 0);
}

#[tokio::test]
async fn token_endpoints_codes() {
    let app = spawn_app().await;
    register(&app).await;
    let token = login(&app, DOC_PASSWORD).await["message"]
        .as_str()
        .unwrap()
        .to_string();
    let illegal = "小宝贝这是非法查询哦(๑•̀ㅂ•́)و✧";
    // user_info: 403 bad token, 404 none.
    let reply = user_info(&app, "not-a-token").await;
    assert_eq!(reply["code"], 403);
    assert_eq!(reply["message"], illegal);
    let reply = app.post_json("/api/user_info/", &json!({})).await;
    assert_eq!(reply["code"], 404);
    assert_eq!(reply["message"], "搁着闹呢？");
    // update_show_name: 403 bad token, 404 missing or invalid name.
    let reply = app
        .post_json(
            "/api/update_show_name/",
            &json!({"token": "bad", "new_show_name": "x"}),
        )
        .await;
    assert_reply(&reply, 403, illegal);
    let reply = app
        .post_json("/api/update_show_name/", &json!({"token": token}))
        .await;
    assert_reply(&reply, 404, "输入信息有误重新输入");
    let long = "x".repeat(500);
    let reply = app
        .post_json(
            "/api/update_show_name/",
            &json!({"token": token, "new_show_name": long}),
        )
        .await;
    assert_reply(&reply, 404, "输入信息有误重新输入");
    assert_eq!(
        user_info(&app, &token).await["message"]["show_name"],
        SHOW_NAME,
        "nothing changed"
    );
    // update_key: 403 bad token, 404 none.
    let reply = app
        .post_json("/api/update_key/", &json!({"token": "bad"}))
        .await;
    assert_reply(&reply, 403, illegal);
    let reply = app.post_json("/api/update_key/", &json!({})).await;
    assert_reply(&reply, 404, "输入信息有误重新输入");
    for path in [
        "/api/user_info/",
        "/api/update_show_name/",
        "/api/update_key/",
        "/api/update_password/",
        "/api/forget_password/",
    ] {
        let (_, reply) = app.send_bare(reqwest::Method::GET, path).await;
        assert_reply(&reply, 500, "请使用Post请求");
    }
}

#[tokio::test]
async fn update_password_codes() {
    let app = spawn_app().await;
    register(&app).await;
    let send = |old: &'static str, new: &'static str, captcha: Option<(String, String)>| {
        let app = &app;
        async move {
            let (k, a) = captcha.unwrap_or_default();
            app.post_json(
                "/api/update_password/",
                &json!({"username": USERNAME, "old_passwd": old, "new_passwd": new,
                        "verification_code_key": k, "verification_code": a}),
            )
            .await
        }
    };
    assert_reply(
        &send(DOC_PASSWORD, NEW_PASSWORD, None).await,
        504,
        "验证码或者验证码秘钥不能为空！",
    );
    let (k, _) = app.solved_captcha().await;
    assert_reply(
        &send(DOC_PASSWORD, NEW_PASSWORD, Some((k, "wrong".into()))).await,
        503,
        "验证码错误或者过期！",
    );
    let c = app.solved_captcha().await;
    assert_reply(
        &send("wrong-old", NEW_PASSWORD, Some(c)).await,
        404,
        "输入信息有误重新输入",
    );
    let c = app.solved_captcha().await;
    assert_reply(
        &send(DOC_PASSWORD, "password1", Some(c)).await,
        404,
        "输入信息有误重新输入",
    );
    assert_eq!(login(&app, DOC_PASSWORD).await["code"], 200, "unchanged");
}

#[tokio::test]
async fn forget_password_codes() {
    let off = spawn_app().await;
    let reply = off
        .post_json("/api/forget_password/", &json!({"key": "x", "name": "y"}))
        .await;
    assert_reply(&reply, 403, "小宝贝你没有开启忘记密码功能哦(๑•̀ㅂ•́)و✧");

    let app = spawn_app_with(|c| c.forget_password_key = Some(FORGET_KEY.into())).await;
    register(&app).await;
    let send = |key: &'static str,
                name: &'static str,
                email: &'static str,
                captcha: Option<(String, String)>| {
        let app = &app;
        async move {
            let (k, a) = captcha.unwrap_or_default();
            app.post_json(
                "/api/forget_password/",
                &json!({"key": key, "name": name, "new_passwd": NEW_PASSWORD, "email": email,
                        "verification_code_key": k, "verification_code": a}),
            )
            .await
        }
    };
    assert_reply(
        &send(FORGET_KEY, USERNAME, EMAIL, None).await,
        504,
        "验证码或者验证码秘钥不能为空！",
    );
    let (k, _) = app.solved_captcha().await;
    assert_reply(
        &send(FORGET_KEY, USERNAME, EMAIL, Some((k, "no".into()))).await,
        503,
        "验证码错误或者过期！",
    );
    let c = app.solved_captcha().await;
    assert_reply(
        &send("wrong-key", USERNAME, EMAIL, Some(c)).await,
        404,
        "大黑阔别乱搞，莎莎好怕怕(*/ω＼*)",
    );
    let c = app.solved_captcha().await;
    assert_reply(
        &send(FORGET_KEY, USERNAME, "someone-else@example.test", Some(c)).await,
        501,
        "这个数据你是认真的嘛(。﹏。)",
    );
    assert_eq!(login(&app, DOC_PASSWORD).await["code"], 200, "unchanged");
}

#[tokio::test]
async fn upload_avatar_codes() {
    let app = spawn_app().await;
    register(&app).await;
    let token = login(&app, DOC_PASSWORD).await["message"]
        .as_str()
        .unwrap()
        .to_string();
    let big_enough = || noisy_png(64, 64, [0, 0, 0]);
    assert!(big_enough().len() >= 10 * 1024);
    let illegal = "小宝贝这是非法查询哦(๑•̀ㅂ•́)و✧";
    assert_reply(&upload(&app, None, big_enough()).await, 403, illegal);
    assert_reply(&upload(&app, Some("bad"), big_enough()).await, 403, illegal);
    let small = noisy_png(8, 8, [0, 0, 0]);
    assert!(small.len() < 10 * 1024);
    assert_reply(
        &upload(&app, Some(&token), small).await,
        603,
        "它实在是太小了，莎酱真的一点感觉都没有o(TヘTo)",
    );
    assert_reply(
        &upload(&app, Some(&token), vec![b'x'; 20 * 1024]).await,
        169,
        "你不对劲！为什么报错了？",
    );
    // Not multipart at all.
    let (status, reply) = status_json(
        app.client
            .post(app.url("/api/upload_avatar/"))
            .header("token", &token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_reply(&reply, 169, "你不对劲！为什么报错了？");
    assert_eq!(user_info(&app, &token).await["message"]["avatar"], "");
    let (_, reply) = app
        .send_bare(reqwest::Method::GET, "/api/upload_avatar/")
        .await;
    assert_reply(&reply, 500, "请使用Post请求");
}

#[tokio::test]
async fn dev_mode_hands_scripts_the_captcha_answer() {
    let app = spawn_app_with(|c| c.dev = true).await;
    let resp = app
        .client
        .get(app.url("/api/get_verification_code/"))
        .send()
        .await
        .unwrap();
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_string();
    let (key, answer) = (
        header("VerificationCodeKey"),
        header("VerificationCodeAnswer"),
    );
    let reply = app
        .post_form(
            "/api/registered",
            &[
                ("show_name", "Dev"),
                ("username", "dev"),
                ("passwd", PASSWORD),
                ("email", "dev@example.test"),
                ("key", ""),
                ("verification_code_key", &key),
                ("verification_code", &answer),
            ],
        )
        .await;
    assert_reply(&reply, 200, "注册成功");
}
