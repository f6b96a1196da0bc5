//! `/oauth2/token`, `/oauth2/introspect`, `/oauth2/revoke`.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser, spawn_app};

struct Fixture {
    app: TestApp,
    user: TestUser,
    /// Confidential: client_credentials, password, refresh_token.
    legacy: (String, String),
    /// Confidential resource server that only introspects.
    api: (String, String),
    /// Confidential, authorization_code + refresh_token only.
    web: (String, String),
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let dev = app.register_developer("owner").await;
    let user = app.register_user("alice").await;
    let make = async |name: &str, grants: Value, scopes: Value| {
        let body = json!({"name": name, "redirect_uris": ["https://app.example.com/cb"], "grant_types": grants, "scopes": scopes});
        let c: Value = app
            .create_client(&dev.access_token, &body)
            .await
            .json()
            .await
            .unwrap();
        (
            c["client_id"].as_str().unwrap().to_string(),
            c["client_secret"].as_str().unwrap().to_string(),
        )
    };
    let legacy = make(
        "legacy",
        json!(["client_credentials", "password", "refresh_token"]),
        json!(["openid", "profile", "all", "reports:read"]),
    )
    .await;
    let api = make("resource server", json!(["client_credentials"]), json!([])).await;
    let web = make(
        "web",
        json!(["authorization_code", "refresh_token"]),
        json!([]),
    )
    .await;
    Fixture {
        app,
        user,
        legacy,
        api,
        web,
    }
}

async fn oauth_error(resp: Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"].is_string() && body["error_description"].is_string(),
        "{body}"
    );
    body
}

impl Fixture {
    fn basic(c: &(String, String)) -> Option<(&str, &str)> {
        Some((c.0.as_str(), c.1.as_str()))
    }

    async fn password_grant(&self, extra: &[(&str, &str)]) -> Response {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ];
        form.extend_from_slice(extra);
        self.app
            .oauth_post("token", &form, Self::basic(&self.legacy))
            .await
    }

    async fn introspect(&self, token: &str) -> Value {
        let resp = self
            .app
            .oauth_post("introspect", &[("token", token)], Self::basic(&self.api))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }
}

#[tokio::test]
async fn client_credentials_issues_a_token_without_refresh_or_user_scopes() {
    let f = fixture().await;
    let resp = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "client_credentials")],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "all reports:read");
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3");

    let info = f.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], f.legacy.0.as_str());
    assert_eq!(info["sub"], f.legacy.0.as_str());
    assert_eq!(info["token_type"], "Bearer");
    assert!(info.get("username").is_none());

    let narrowed: Value = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "reports:read"),
            ],
            Fixture::basic(&f.legacy),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrowed["scope"], "reports:read");
    let wide = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "client_credentials"), ("scope", "openid")],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(
        oauth_error(wide, StatusCode::BAD_REQUEST).await["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn client_authentication_basic_post_and_their_failures() {
    let f = fixture().await;
    let (id, secret) = (f.legacy.0.as_str(), f.legacy.1.as_str());
    let post = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
            None,
        )
        .await;
    assert_eq!(post.status(), StatusCode::OK, "client_secret_post");

    let wrong = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "client_credentials")],
            Some((id, "wrong")),
        )
        .await;
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Basic realm=\"portcullis\""
    );
    assert_eq!(
        oauth_error(wrong, StatusCode::UNAUTHORIZED).await["error"],
        "invalid_client"
    );
    let unknown = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nope"),
                ("client_secret", "x"),
            ],
            None,
        )
        .await;
    assert_eq!(
        oauth_error(unknown, StatusCode::UNAUTHORIZED).await["error"],
        "invalid_client"
    );
    let none = f
        .app
        .oauth_post("token", &[("grant_type", "client_credentials")], None)
        .await;
    assert_eq!(
        oauth_error(none, StatusCode::UNAUTHORIZED).await["error"],
        "invalid_client"
    );
    let both = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", secret),
            ],
            Some((id, secret)),
        )
        .await;
    assert_eq!(
        oauth_error(both, StatusCode::BAD_REQUEST).await["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn malformed_token_requests_get_the_rfc_error_codes() {
    let f = fixture().await;
    let basic = Fixture::basic(&f.legacy);
    let missing = f.app.oauth_post("token", &[("scope", "all")], basic).await;
    assert_eq!(
        oauth_error(missing, StatusCode::BAD_REQUEST).await["error"],
        "invalid_request"
    );
    let unknown = f
        .app
        .oauth_post("token", &[("grant_type", "implicit")], basic)
        .await;
    assert_eq!(
        oauth_error(unknown, StatusCode::BAD_REQUEST).await["error"],
        "unsupported_grant_type"
    );
    let not_allowed = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "client_credentials")],
            Fixture::basic(&f.web),
        )
        .await;
    assert_eq!(
        oauth_error(not_allowed, StatusCode::BAD_REQUEST).await["error"],
        "unauthorized_client"
    );

    let dup = f
        .app
        .client
        .post(f.app.url("/oauth2/token"))
        .basic_auth(&f.legacy.0, Some(&f.legacy.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(dup, StatusCode::BAD_REQUEST).await["error"],
        "invalid_request"
    );
    let json_body = f
        .app
        .client
        .post(f.app.url("/oauth2/token"))
        .basic_auth(&f.legacy.0, Some(&f.legacy.1))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(json_body, StatusCode::BAD_REQUEST).await["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn password_grant_only_where_enabled_and_throttled_with_the_login_page() {
    let f = fixture().await;
    let resp = f.password_grant(&[("scope", "openid all")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "all openid");
    assert!(body["refresh_token"].is_string());
    let info = f.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["username"], "alice");
    assert_eq!(info["sub"], f.user.id.as_str());

    let web = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            Fixture::basic(&f.web),
        )
        .await;
    assert_eq!(
        oauth_error(web, StatusCode::BAD_REQUEST).await["error"],
        "unauthorized_client"
    );

    let bad = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "Wrong-password-1"),
    ];
    for _ in 0..5 {
        let r = f
            .app
            .oauth_post("token", &bad, Fixture::basic(&f.legacy))
            .await;
        assert_eq!(
            oauth_error(r, StatusCode::BAD_REQUEST).await["error"],
            "invalid_grant"
        );
    }
    let locked = f.password_grant(&[]).await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(
        oauth_error(locked, StatusCode::BAD_REQUEST).await["error"],
        "invalid_grant"
    );
    // The same account is locked on the login page too.
    assert_eq!(
        f.app.login("alice", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn refresh_rotates_cannot_widen_and_is_bound_to_its_client() {
    let f = fixture().await;
    let first: Value = f
        .password_grant(&[("scope", "openid all")])
        .await
        .json()
        .await
        .unwrap();
    let r1 = first["refresh_token"].as_str().unwrap();

    let wide = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r1),
                ("scope", "openid all profile"),
            ],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(
        oauth_error(wide, StatusCode::BAD_REQUEST).await["error"],
        "invalid_scope"
    );

    // Another client cannot use it, and trying does not revoke it.
    let stolen = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "refresh_token"), ("refresh_token", r1)],
            Fixture::basic(&f.web),
        )
        .await;
    assert_eq!(
        oauth_error(stolen, StatusCode::BAD_REQUEST).await["error"],
        "invalid_grant"
    );
    // Nor the first-party endpoint.
    assert_eq!(f.app.refresh(r1).await.status(), StatusCode::UNAUTHORIZED);

    let narrowed: Value = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", r1),
                ("scope", "all"),
            ],
            Fixture::basic(&f.legacy),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrowed["scope"], "all");
    let r2 = narrowed["refresh_token"].as_str().unwrap();
    let a2 = narrowed["access_token"].as_str().unwrap();

    // Reuse of r1 after the grace revokes the family: r2 and its access token die too.
    f.app.clock.advance(11);
    let reuse = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "refresh_token"), ("refresh_token", r1)],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(
        oauth_error(reuse, StatusCode::BAD_REQUEST).await["error"],
        "invalid_grant"
    );
    let r2_again = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "refresh_token"), ("refresh_token", r2)],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(
        oauth_error(r2_again, StatusCode::BAD_REQUEST).await["error"],
        "invalid_grant"
    );
    assert_eq!(f.introspect(a2).await, json!({"active": false}));
}

#[tokio::test]
async fn oauth_tokens_do_not_open_the_native_api_and_first_party_refresh_tokens_stay_first_party() {
    let f = fixture().await;
    let body: Value = f.password_grant(&[]).await.json().await.unwrap();
    assert_eq!(
        f.app
            .get_me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let first_party = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &f.user.refresh_token),
            ],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(
        oauth_error(first_party, StatusCode::BAD_REQUEST).await["error"],
        "invalid_grant"
    );
    assert_eq!(
        f.app.refresh(&f.user.refresh_token).await.status(),
        StatusCode::OK,
        "untouched by the attempt"
    );
}

#[tokio::test]
async fn introspection_needs_a_confidential_client_and_says_only_active_false_otherwise() {
    let f = fixture().await;
    let body: Value = f.password_grant(&[]).await.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();

    let anonymous = f
        .app
        .oauth_post("introspect", &[("token", access)], None)
        .await;
    assert_eq!(
        oauth_error(anonymous, StatusCode::UNAUTHORIZED).await["error"],
        "invalid_client"
    );

    let info = f.introspect(refresh).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["client_id"], f.legacy.0.as_str());

    let mut tampered = access.to_string().into_bytes();
    let i = tampered.len() - 120;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    for token in [
        "garbage".to_string(),
        String::from_utf8(tampered).unwrap(),
        f.user.access_token.replace("v4.public", "v4.local"),
    ] {
        assert_eq!(
            f.introspect(&token).await,
            json!({"active": false}),
            "{token}"
        );
    }
    f.app.clock.advance(901);
    assert_eq!(
        f.introspect(access).await,
        json!({"active": false}),
        "expired"
    );
}

#[tokio::test]
async fn revocation_of_refresh_and_access_tokens() {
    let f = fixture().await;
    let body: Value = f.password_grant(&[]).await.json().await.unwrap();
    let (access, refresh) = (
        body["access_token"].as_str().unwrap(),
        body["refresh_token"].as_str().unwrap(),
    );

    // Another client's revocation is accepted but changes nothing.
    let other = f
        .app
        .oauth_post("revoke", &[("token", access)], Fixture::basic(&f.api))
        .await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(f.introspect(access).await["active"], true);

    let resp = f
        .app
        .oauth_post(
            "revoke",
            &[("token", access), ("token_type_hint", "access_token")],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(f.introspect(access).await, json!({"active": false}));
    assert_eq!(
        f.app.table_count("revoked_tokens").await,
        1,
        "kept until the token would expire"
    );
    assert_eq!(
        f.introspect(refresh).await["active"],
        true,
        "revoking the access token leaves the session"
    );

    assert_eq!(
        f.app
            .oauth_post("revoke", &[("token", refresh)], Fixture::basic(&f.legacy))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(f.introspect(refresh).await, json!({"active": false}));
    let again = f
        .app
        .oauth_post(
            "token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Fixture::basic(&f.legacy),
        )
        .await;
    assert_eq!(
        oauth_error(again, StatusCode::BAD_REQUEST).await["error"],
        "invalid_grant"
    );

    assert_eq!(
        f.app
            .oauth_post("revoke", &[("token", "unknown")], Fixture::basic(&f.legacy))
            .await
            .status(),
        StatusCode::OK
    );
    let missing = f
        .app
        .oauth_post("revoke", &[], Fixture::basic(&f.legacy))
        .await;
    assert_eq!(
        oauth_error(missing, StatusCode::BAD_REQUEST).await["error"],
        "invalid_request"
    );

    // The revocation list entry goes once the token would have expired anyway.
    f.app.clock.advance(901);
    f.app
        .services
        .store
        .run(|s| s.sweep_expired(100))
        .await
        .unwrap();
    assert_eq!(f.app.table_count("revoked_tokens").await, 0);
}
