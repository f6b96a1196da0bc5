//! The admin console (`/ui/admin`) over HTTP: who may open it, the dashboard, user actions
//! (disable, enable, admin role, reset second factors, delete with confirmation, never
//! oneself), clients (create with the secret shown once, redirect URIs, new secret, delete),
//! and the audit trail of those actions.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, browser, location, scrape, spawn_app, spawn_app_with};

/// A browser signed in as `login` with no application waiting.
async fn signed_in(app: &TestApp, login: &str) -> reqwest::Client {
    crate::helpers::page_signed_in(app, login).await
}

async fn get(b: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let resp = b.get(app.url(path)).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn admins_manage_users_and_clients_from_the_console() {
    let app = spawn_app().await;
    crate::admin::admin(&app).await;
    let zed = app.register_user("zed").await;
    app.register_user("yan").await;

    let plain = signed_in(&app, "yan").await;
    let (status, _) = get(&plain, &app, "/ui/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not for non-admins");

    let b = signed_in(&app, "root").await;
    let (status, html) = get(&b, &app, "/ui/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Successful sign-ins since start"), "{html}");
    // Within the hour: root through the API (the helper) and on the pages, yan on the pages.
    let at = html.find("Sign-ins in the last hour").unwrap();
    assert!(
        html[at..].starts_with("Sign-ins in the last hour</th><td>3</td>"),
        "{}",
        &html[at..at + 60]
    );
    let (status, html) = get(&b, &app, "/ui/admin/users?q=ZED").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-user=\"zed\"") && !html.contains("data-user=\"yan\""));
    let csrf = scrape(&html, "csrf");
    let act = |id: &str, action: &str, confirm: bool| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("id", id.to_string()),
            ("action", action.to_string()),
        ];
        if confirm {
            form.push(("confirm", "yes".into()));
        }
        b.post(app.url("/ui/admin/users/action")).form(&form).send()
    };

    let forged = b
        .post(app.url("/ui/admin/users/action"))
        .form(&[
            ("csrf", "x"),
            ("id", zed.id.as_str()),
            ("action", "disable"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.login("zed", PASSWORD).await.status(), StatusCode::OK);

    let disabled = act(&zed.id, "disable", false).await.unwrap();
    assert_eq!(location(&disabled), "/ui/admin/users?done=disabled");
    assert_eq!(
        app.login("zed", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&zed.refresh_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "signed out everywhere"
    );
    act(&zed.id, "enable", false).await.unwrap();
    assert_eq!(app.login("zed", PASSWORD).await.status(), StatusCode::OK);
    let granted = act(&zed.id, "grant-admin", false).await.unwrap();
    assert_eq!(location(&granted), "/ui/admin/users?done=roles");
    let (_, html) = get(&b, &app, "/ui/admin/users?q=zed").await;
    assert!(html.contains("Remove admin"));
    assert_eq!(
        location(&act(&zed.id, "reset-mfa", false).await.unwrap()),
        "/ui/admin/users?done=mfa-reset"
    );

    // Oneself: refused with the reason on the page.
    let root_id = app
        .services
        .accounts
        .find("root")
        .await
        .unwrap()
        .unwrap()
        .id;
    let own = act(&root_id, "disable", false).await.unwrap();
    assert_eq!(own.status(), StatusCode::BAD_REQUEST);
    assert!(
        own.text()
            .await
            .unwrap()
            .contains("cannot disable, demote or delete their own")
    );

    let unconfirmed = act(&zed.id, "delete", false).await.unwrap();
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.login("zed", PASSWORD).await.status(), StatusCode::OK);
    let deleted = act(&zed.id, "delete", true).await.unwrap();
    assert_eq!(location(&deleted), "/ui/admin/users?done=deleted");
    assert_eq!(
        app.login("zed", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Clients.
    let (_, html) = get(&b, &app, "/ui/admin/clients").await;
    let client_act = |fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf", csrf.clone())];
        form.extend(fields);
        b.post(app.url("/ui/admin/clients/action"))
            .form(&form)
            .send()
    };
    assert!(html.contains("New client"));
    let created = client_act(vec![
        ("action", "create".into()),
        ("name", "Console <app>".into()),
        ("redirect_uris", "https://app.example.test/cb\r\n".into()),
    ])
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let html = created.text().await.unwrap();
    let grab = |id: &str| {
        let marker = format!("id=\"{id}\">");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..start + html[start..].find('<').unwrap()].to_string()
    };
    let (client_id, secret) = (grab("client-id"), grab("client-secret"));
    assert!(secret.len() >= 32);
    let (_, html) = get(&b, &app, "/ui/admin/clients").await;
    assert!(html.contains("Console &#60;app&#62;") && html.contains(&client_id));
    let saved = client_act(vec![
        ("action", "redirects".into()),
        ("id", client_id.clone()),
        (
            "redirect_uris",
            "https://app.example.test/cb\nhttps://app.example.test/other".into(),
        ),
        ("allowed_origins", "https://app.example.test".into()),
        ("grant:authorization_code", "on".into()),
        ("grant:refresh_token", "on".into()),
        ("grant:client_credentials", "on".into()),
    ])
    .await
    .unwrap();
    assert_eq!(location(&saved), "/ui/admin/clients?done=redirects");
    let (_, html) = get(&b, &app, "/ui/admin/clients").await;
    assert!(html.contains("https://app.example.test/other"));
    assert!(
        html.contains(">https://app.example.test</textarea>"),
        "the origin"
    );
    let token = app
        .oauth_post(
            "token",
            &[("grant_type", "client_credentials")],
            Some((&client_id, &secret)),
        )
        .await;
    assert_eq!(token.status(), StatusCode::OK, "the grant was added");
    let no_grants = client_act(vec![
        ("action", "redirects".into()),
        ("id", client_id.clone()),
        ("redirect_uris", "https://app.example.test/cb".into()),
    ])
    .await
    .unwrap();
    assert_eq!(
        no_grants.status(),
        StatusCode::BAD_REQUEST,
        "at least one grant"
    );
    let bad = client_act(vec![
        ("action", "redirects".into()),
        ("id", client_id.clone()),
        ("redirect_uris", "not a uri".into()),
        ("grant:authorization_code", "on".into()),
    ])
    .await
    .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let rotated = client_act(vec![("action", "rotate".into()), ("id", client_id.clone())])
        .await
        .unwrap();
    assert!(rotated.text().await.unwrap().contains("client-secret"));
    let gone = client_act(vec![
        ("action", "delete".into()),
        ("id", client_id.clone()),
        ("confirm", "yes".into()),
    ])
    .await
    .unwrap();
    assert_eq!(location(&gone), "/ui/admin/clients?done=deleted");

    // All of it is in the audit trail.
    let (_, html) = get(&b, &app, "/ui/admin/events").await;
    for kind in [
        "user_disabled",
        "user_enabled",
        "roles_changed",
        "second_factors_reset",
        "user_deleted",
        "client_created",
        "client_deleted",
    ] {
        assert!(html.contains(kind), "{kind} in {html}");
    }
    let (_, filtered) = get(&b, &app, "/ui/admin/events?kind=user_deleted").await;
    assert!(!filtered.contains("client_created"));
}

#[tokio::test]
async fn under_an_admin_mfa_policy_the_console_needs_a_second_factor_session() {
    let app = spawn_app_with(|c| c.mfa = portcullis::config::MfaPolicy::RequiredForAdmins).await;
    let root = crate::admin::admin_token_with_totp(&app).await;
    let user = app.register_user("wil").await;
    // Signed in with a password only, then made an admin.
    let b = signed_in(&app, "wil").await;
    let made: Value = app
        .client
        .patch(app.url(&format!("/api/v1/admin/users/{}", user.id)))
        .bearer_auth(&root)
        .json(&serde_json::json!({"roles": ["admin"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(made["roles"].to_string().contains("admin"), "{made}");
    let (status, html) = get(&b, &app, "/ui/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("needs a sign-in with a second factor"));
}

#[tokio::test]
async fn the_first_run_link_creates_the_first_administrator_once() {
    // The real binary prints the link while there is no administrator.
    let child = crate::helpers::ChildServer::start(1024, &[]);
    assert!(
        child
            .startup_log
            .iter()
            .any(|l| l.contains("no administrator yet") && l.contains("/ui/setup?token=")),
        "{:?}",
        child.startup_log
    );
    child.kill_hard();

    let app = spawn_app().await;
    let token = app
        .services
        .admin
        .first_run_token()
        .await
        .unwrap()
        .expect("no admin yet");
    let b = browser();
    let (status, _) = get(&b, &app, "/ui/setup?token=forged").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, html) = get(&b, &app, &format!("/ui/setup?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    let post = |password: &'static str| {
        b.post(app.url("/ui/setup"))
            .form(&[
                ("csrf", scrape(&html, "csrf")),
                ("token", token.clone()),
                ("username", "boss".into()),
                ("email", "boss@example.test".into()),
                ("password", password.into()),
            ])
            .send()
    };
    let weak = post("password").await.unwrap();
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    assert!(weak.text().await.unwrap().contains("field-error"));
    let made = post(PASSWORD).await.unwrap();
    assert_eq!(
        made.status(),
        StatusCode::SEE_OTHER,
        "the link still worked"
    );
    assert_eq!(location(&made), "/ui/account");
    let (status, _) = get(&b, &app, "/ui/admin").await;
    assert_eq!(status, StatusCode::OK, "signed in as the new administrator");
    assert_eq!(
        post(PASSWORD).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "once"
    );
    assert!(
        app.services
            .admin
            .first_run_token()
            .await
            .unwrap()
            .is_none()
    );
}
