//! Signing in through another identity provider, with real parts: a second portcullis is
//! the upstream OpenID provider, and a small in-test OAuth 2.0 server with a GitHub-shaped
//! userinfo covers the claim mapping. Every step goes through our pages over HTTP.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    PASSWORD, TestApp, browser, browser_sign_in, location, scrape, spawn_app_with,
};

/// Our own relying party's PKCE verifier.
const VERIFIER: &str = "upstream-test-verifier-with-enough-entropy-0123456789";
const APP_REDIRECT: &str = "http://127.0.0.1:9/app/callback";

/// Us, and an upstream OpenID provider (another portcullis) we trust as `corp`.
pub(crate) struct Federation {
    pub us: TestApp,
    pub idp: TestApp,
    admin: String,
}

/// Both servers on their real addresses (the upstream's issuer must be reachable), the
/// upstream with `ursula` and a client for us, and `corp` configured with `accounts`.
pub(crate) async fn federation(accounts: &str) -> Federation {
    let idp = spawn_app_with(|c| c.public_url = None).await;
    let us = spawn_app_with(|c| c.public_url = None).await;
    idp.register_user("ursula").await;
    let owner = idp.register_developer("idp-owner").await;
    let client: Value = idp
        .create_client(
            &owner.access_token,
            &json!({"name": "Our portcullis", "redirect_uris": [us.url("/ui/upstream/corp/callback")]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let admin = crate::admin::admin(&us).await;
    let put = put_upstream(
        &us,
        &admin,
        "corp",
        json!({
            "name": "Corp",
            "issuer": idp.base,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "accounts": accounts,
        }),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    let shown: Value = put.json().await.unwrap();
    assert_eq!(shown["redirect_uri"], us.url("/ui/upstream/corp/callback"));
    assert!(
        shown.get("client_secret").is_none(),
        "the secret is never shown"
    );
    Federation { us, idp, admin }
}

impl Federation {
    /// Follows our start link `start` to the upstream and signs in there as `login`; returns
    /// the upstream's answer (our callback URL). `ours` and `theirs` are one browser's
    /// cookies at each host.
    async fn through_idp(
        &self,
        ours: &reqwest::Client,
        theirs: &reqwest::Client,
        start: &str,
        login: &str,
    ) -> String {
        let resp = ours.get(self.us.url(start)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "start redirects");
        let to_idp = location(&resp);
        assert!(to_idp.starts_with(&self.idp.base), "{to_idp}");
        for param in [
            "code_challenge_method=S256",
            "code_challenge=",
            "nonce=",
            "state=",
        ] {
            assert!(to_idp.contains(param), "{param} in {to_idp}");
        }
        let back = browser_sign_in(&self.idp, theirs, &to_idp, login, PASSWORD).await;
        assert!(
            back.starts_with(&self.us.url("/ui/upstream/corp/callback?")),
            "{back}"
        );
        back
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        let page: Value = self
            .us
            .client
            .get(self.us.url(&format!("/api/v1/admin/events?kind={kind}")))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["events"].as_array().cloned().unwrap_or_default()
    }
}

/// `PUT /api/v1/admin/upstreams/{id}` with `token`.
async fn put_upstream(us: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    us.client
        .put(us.url(&format!("/api/v1/admin/upstreams/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A GET that must answer 303; returns where to (relative ones made absolute).
async fn follow(app: &TestApp, b: &reqwest::Client, url: &str) -> String {
    let resp = b.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{url}");
    let to = location(&resp);
    if to.starts_with('/') {
        app.url(&to)
    } else {
        to
    }
}

async fn html(b: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let resp = b.get(url).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Posts the choice page's form `action` with `fields`.
async fn choose(
    app: &TestApp,
    b: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("csrf", scrape(page, "csrf")),
        ("token", scrape(page, "token")),
        ("action", action.to_string()),
    ];
    form.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
    b.post(app.url("/ui/upstream/account"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The application Notes (public, PKCE) at `us`.
async fn notes(us: &TestApp) -> String {
    let owner = us.register_developer("notes-owner").await;
    let notes: Value = us
        .create_client(
            &owner.access_token,
            &json!({"name": "Notes", "redirect_uris": [APP_REDIRECT], "confidential": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    notes["client_id"].as_str().unwrap().to_string()
}

/// Notes asks `b` to sign in; returns the pending request's id (the login page's).
async fn notes_asks(us: &TestApp, b: &reqwest::Client, client_id: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", APP_REDIRECT),
            ("scope", "openid profile email"),
            ("state", "app-state"),
            ("nonce", "app-nonce"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let login = follow(us, b, &us.url(&format!("/oauth2/authorize?{q}"))).await;
    login.split("request=").nth(1).unwrap().to_string()
}

/// Allows Notes on the consent page at `consent` and redeems the code: the id_token's claims.
async fn notes_id_token(
    us: &TestApp,
    b: &reqwest::Client,
    consent: &str,
    client_id: &str,
) -> Value {
    let (_, page) = html(b, consent).await;
    let allowed = b
        .post(us.url("/ui/consent"))
        .form(&[
            ("request", scrape(&page, "request").as_str()),
            ("csrf", scrape(&page, "csrf").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let to_app = location(&allowed);
    assert!(to_app.starts_with(APP_REDIRECT) && to_app.contains("state=app-state"));
    let code = url::Url::parse(&to_app)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let tokens: Value = us
        .oauth_post(
            "token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_REDIRECT),
                ("client_id", client_id),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    claims_of(
        tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{tokens}")),
    )
}

#[tokio::test]
async fn a_new_person_signs_in_through_an_oidc_upstream_just_in_time_and_the_app_gets_its_code() {
    let f = federation("create").await;
    let us = &f.us;
    let client_id = notes(us).await;
    let (ours, theirs) = (browser(), browser());
    let request = notes_asks(us, &ours, &client_id).await;
    let (_, page) = html(&ours, &us.url(&format!("/ui/login?request={request}"))).await;
    let start = format!("/ui/upstream/corp/start?request={request}");
    assert!(page.contains(&format!("href=\"{start}\"")), "{page}");
    assert!(page.contains("Sign in with Corp"));

    let callback = f.through_idp(&ours, &theirs, &start, "ursula").await;
    // No account is linked: the person names a new one (the upstream's name suggested).
    let choice = follow(us, &ours, &callback).await;
    assert!(choice.contains("/ui/upstream/account?token="), "{choice}");
    let (status, page) = html(&ours, &choice).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Continue with Corp") && page.contains("id=\"create-form\""));
    assert!(
        page.contains("name=\"username\" value=\"ursula\""),
        "{page}"
    );
    let created = choose(us, &ours, &page, "create", &[("username", "ursula")]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    // The pending authorization goes on: consent, then the app's code.
    let consent = us.url(&location(&created));
    assert!(consent.contains(&format!("/ui/consent?request={request}")));
    let id_token = notes_id_token(us, &ours, &consent, &client_id).await;
    // Our id_token says how: through an upstream (`fed`), which one (`idp`).
    assert_eq!(id_token["amr"], json!(["fed"]));
    assert_eq!(id_token["idp"], "corp");
    assert_eq!(id_token["nonce"], "app-nonce");
    assert_eq!(id_token["email"], "ursula@example.test");

    // The new account has no password: it signs in through Corp (or sets one by reset).
    assert_eq!(
        us.login("ursula", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(f.events("upstream_sign_in").await.len(), 1);
    assert_eq!(f.events("identity_linked").await.len(), 1);

    // Next time, from a fresh browser: straight in, no questions.
    let (ours, theirs) = (browser(), browser());
    let callback = f
        .through_idp(&ours, &theirs, "/ui/upstream/corp/start", "ursula")
        .await;
    let landed = follow(us, &ours, &callback).await;
    assert_eq!(landed, us.url("/ui/account"));
    let (_, page) = html(&ours, &landed).await;
    assert!(page.contains("id=\"linked-identities\"") && page.contains("Corp"));
    assert_eq!(f.events("upstream_sign_in").await.len(), 2);
}

#[tokio::test]
async fn a_matching_address_links_only_with_the_accounts_password_and_the_link_can_be_undone() {
    let f = federation("create").await;
    let us = &f.us;
    // Someone here already uses the address the upstream will name.
    us.register_user("ursula").await;
    let (ours, theirs) = (browser(), browser());
    let callback = f
        .through_idp(&ours, &theirs, "/ui/upstream/corp/start", "ursula")
        .await;
    let choice = follow(us, &ours, &callback).await;
    let (_, page) = html(&ours, &choice).await;
    assert!(page.contains("already uses this address"), "{page}");
    assert!(
        !page.contains("id=\"create-form\""),
        "no second account for the address"
    );

    // A new account with the same address is refused, and writes nothing.
    let refused = choose(us, &ours, &page, "create", &[("username", "ursula2")]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let availability: Value = us
        .username_availability("ursula2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(availability["available"], true);

    // The wrong password links nothing.
    let wrong = choose(
        us,
        &ours,
        &page,
        "link",
        &[("login", "ursula"), ("password", "not her password")],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("is incorrect"));
    assert!(f.events("identity_linked").await.is_empty());

    let linked = choose(
        us,
        &ours,
        &page,
        "link",
        &[("login", "ursula"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(linked.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&linked), "/ui/account");
    let (_, account) = html(&ours, &us.url("/ui/account")).await;
    assert!(account.contains("data-upstream=\"corp\""), "{account}");
    assert_eq!(f.events("identity_linked").await.len(), 1);

    // The native API lists it too.
    let token: Value = us.login("ursula", PASSWORD).await.json().await.unwrap();
    let listed: Value = us
        .get_json_as(
            token["access_token"].as_str().unwrap(),
            "/api/v1/me/identities",
        )
        .await;
    assert_eq!(listed[0]["upstream"], "corp");
    assert_eq!(listed[0]["name"], "Corp");

    // She has a password, so the link may go.
    let unlinked = ours
        .post(us.url("/ui/account/identities/unlink"))
        .form(&[
            ("csrf", scrape(&account, "csrf").as_str()),
            ("upstream", "corp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&unlinked), "/ui/account?done=identity-unlinked");
    let (_, account) = html(&ours, &us.url("/ui/account?done=identity-unlinked")).await;
    assert!(!account.contains("data-upstream=\"corp\""));
    assert!(
        account.contains("data-link-upstream=\"corp\""),
        "linking again is offered"
    );
    assert_eq!(f.events("identity_unlinked").await.len(), 1);
}

#[tokio::test]
async fn tampered_foreign_and_replayed_answers_are_refused_and_link_only_creates_nothing() {
    let f = federation("link-only").await;
    let us = &f.us;
    let (ours, theirs) = (browser(), browser());
    let callback = f
        .through_idp(&ours, &theirs, "/ui/upstream/corp/start", "ursula")
        .await;
    let tampered = callback.replace("state=", "state=x");
    let (status, page) = html(&ours, &tampered).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("expired or was started in another browser"),
        "{page}"
    );
    // The real answer, in a browser that did not start it (no binding cookie): refused, and
    // the attempt is spent, so it cannot be tried again anywhere.
    let (status, _) = html(&browser(), &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = html(&ours, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Under link-only, the person may only link an existing account.
    let (ours, theirs) = (browser(), browser());
    let callback = f
        .through_idp(&ours, &theirs, "/ui/upstream/corp/start", "ursula")
        .await;
    let choice = follow(us, &ours, &callback).await;
    let (_, page) = html(&ours, &choice).await;
    assert!(!page.contains("id=\"create-form\"") && page.contains("cannot create new accounts"));
    let refused = choose(us, &ours, &page, "create", &[("username", "ursula")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(us.table_count("users").await, 1, "only the admin exists");
    // The answer of a cancelled sign-in at the upstream is a clear page with a way back.
    let (ours, _) = (browser(), browser());
    let to_idp = location(
        &ours
            .get(us.url("/ui/upstream/corp/start"))
            .send()
            .await
            .unwrap(),
    );
    let state = url::Url::parse(&to_idp)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let (status, page) = html(
        &ours,
        &us.url(&format!(
            "/ui/upstream/corp/callback?error=access_denied&state={state}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("did not sign you in") && page.contains("href=\"/ui/account\""));
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_gets_a_clear_page_in_bounded_time() {
    let silent = crate::smtp::silent_server().await;
    let us = spawn_app_with(|c| c.public_url = None).await;
    let admin = crate::admin::admin(&us).await;
    let put = put_upstream(
        &us,
        &admin,
        "slow",
        json!({"issuer": format!("http://{silent}"), "client_id": "c", "client_secret": "s"}),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let (status, page) = html(&browser(), &us.url("/ui/upstream/slow/start")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(page.contains("could not be reached"), "{page}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn only_admins_configure_upstreams_and_bad_settings_are_refused() {
    let us = spawn_app_with(|c| c.public_url = None).await;
    let admin = crate::admin::admin(&us).await;
    let user = us.register_user("mallory").await;
    let put = |token: String, id: &'static str, body: Value| {
        let us = &us;
        async move { put_upstream(us, &token, id, body).await.status() }
    };
    let github = json!({"preset": "github", "client_id": "Iv1.abc", "client_secret": "shh"});
    assert_eq!(
        put(user.access_token.clone(), "github", github.clone()).await,
        StatusCode::FORBIDDEN
    );
    for (id, body) in [
        (
            "plain-http",
            json!({"issuer": "http://idp.example.test", "client_id": "c", "client_secret": "s"}),
        ),
        ("no-secret", json!({"preset": "google", "client_id": "c"})),
        (
            "Bad_Id",
            json!({"preset": "google", "client_id": "c", "client_secret": "s"}),
        ),
        (
            "nope",
            json!({"preset": "myspace", "client_id": "c", "client_secret": "s"}),
        ),
        (
            "oauth",
            json!({"protocol": "oauth2", "client_id": "c", "client_secret": "s"}),
        ),
    ] {
        assert_eq!(
            put(admin.clone(), id, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{id}"
        );
    }
    assert_eq!(put(admin.clone(), "github", github).await, StatusCode::OK);
    let listed: Value = us.get_json_as(&admin, "/api/v1/admin/upstreams").await;
    assert_eq!(listed[0]["name"], "GitHub");
    assert_eq!(listed[0]["protocol"], "oauth2");
    assert_eq!(
        listed[0]["userinfo_endpoint"],
        "https://api.github.com/user"
    );
    assert!(
        !listed.to_string().contains("shh"),
        "the secret is never shown"
    );
    let (_, login) = html(&browser(), &us.url("/ui/login")).await;
    assert!(login.contains("Sign in with GitHub"));
    let deleted = us
        .client
        .delete(us.url("/api/v1/admin/upstreams/github"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (_, login) = html(&browser(), &us.url("/ui/login")).await;
    assert!(!login.contains("Sign in with GitHub"));
}

/// A GitHub-shaped OAuth 2.0 server (no OpenID Connect): it checks the client's secret and
/// PKCE, and its userinfo is `/user` with a numeric `id` and a `login`.
async fn github_like() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // code → its PKCE challenge.
    let codes: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let authorize = {
        let codes = codes.clone();
        poem::endpoint::make_sync(move |req: poem::Request| {
            let q: HashMap<String, String> =
                url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let code = format!("code-{}", q.len());
            codes
                .lock()
                .unwrap()
                .insert(code.clone(), q["code_challenge"].clone());
            let back = format!(
                "{}?code={code}&state={}",
                q["redirect_uri"],
                url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
            );
            poem::Response::builder()
                .status(poem::http::StatusCode::FOUND)
                .header("location", back)
                .finish()
        })
    };
    let token = {
        let codes = codes.clone();
        poem::endpoint::make(move |mut req: poem::Request| {
            let codes = codes.clone();
            async move {
                let body = req.take_body().into_string().await.unwrap_or_default();
                let f: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
                let challenge = codes.lock().unwrap().remove(&f["code"]);
                let pkce = URL_SAFE_NO_PAD.encode(Sha256::digest(f["code_verifier"].as_bytes()));
                let ok = f["client_id"] == "gh-client"
                    && f["client_secret"] == "gh-secret"
                    && challenge == Some(pkce);
                let answer = if ok {
                    json!({"access_token": "gho_test", "token_type": "bearer"})
                } else {
                    json!({"error": "bad_verification_code"})
                };
                poem::web::Json(answer)
            }
        })
    };
    let picture = format!("{base}/a.png");
    let user = poem::endpoint::make_sync(move |req: poem::Request| {
        if req.header("authorization") == Some("Bearer gho_test") {
            poem::web::Json(json!({
                "id": 583231, "login": "octocat", "name": "The Octocat",
                "email": "octo@example.test", "avatar_url": picture
            }))
            .into_response()
        } else {
            poem::Response::builder()
                .status(poem::http::StatusCode::UNAUTHORIZED)
                .finish()
        }
    });
    use poem::IntoResponse;
    let routes = poem::Route::new()
        .at("/login/oauth/authorize", poem::get(authorize))
        .at("/login/oauth/access_token", poem::post(token))
        .at("/user", poem::get(user))
        .at(
            "/a.png",
            poem::get(poem::endpoint::make_sync(|_| {
                poem::Response::builder()
                    .content_type("image/png")
                    .body(crate::helpers::noisy_png(48, 48, [40, 90, 200]))
            })),
        );
    crate::helpers::serve(listener, routes);
    base
}

#[tokio::test]
async fn an_oauth2_upstream_with_a_github_shaped_userinfo_maps_its_claims() {
    let gh = github_like().await;
    let us = spawn_app_with(|c| c.public_url = None).await;
    let admin = crate::admin::admin(&us).await;
    let put = put_upstream(
        &us,
        &admin,
        "github",
        json!({
            "preset": "github",
            "authorization_endpoint": format!("{gh}/login/oauth/authorize"),
            "token_endpoint": format!("{gh}/login/oauth/access_token"),
            "userinfo_endpoint": format!("{gh}/user"),
            "client_id": "gh-client",
            "client_secret": "gh-secret",
            "accounts": "create",
        }),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    let b = browser();
    let to_gh = follow(&us, &b, &us.url("/ui/upstream/github/start")).await;
    assert!(
        to_gh.starts_with(&gh) && !to_gh.contains("nonce="),
        "no nonce without OIDC"
    );
    let resp = b.get(&to_gh).send().await.unwrap();
    let callback = location(&resp);
    let choice = follow(&us, &b, &callback).await;
    let (_, page) = html(&b, &choice).await;
    assert!(page.contains("Continue with GitHub"));
    assert!(
        page.contains("name=\"username\" value=\"octocat\""),
        "{page}"
    );
    assert!(page.contains("octo@example.test"));
    let created = choose(&us, &b, &page, "create", &[("username", "octocat")]).await;
    assert_eq!(location(&created), "/ui/account");
    let user = us
        .services
        .accounts
        .find("octocat")
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(user.email, "octo@example.test");
    assert_eq!(user.display_name.as_deref(), Some("The Octocat"));
    // GitHub's public address is not a verified one.
    assert!(!user.email_verified);
    // The picture came along (a provider on this machine may name this machine).
    assert!(
        user.avatar_etag.is_some(),
        "the upstream's picture is the avatar"
    );
    let identities = us.services.upstreams.identities(&user.id).await.unwrap();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].0.subject, "583231");

    // Unlinking the only way an account without a password signs in is refused.
    let (_, account) = html(&b, &us.url("/ui/account")).await;
    let refused = b
        .post(us.url("/ui/account/identities/unlink"))
        .form(&[
            ("csrf", scrape(&account, "csrf").as_str()),
            ("upstream", "github"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("only way to sign in")
    );
}

/// How the in-test OpenID provider spoils its id_token.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spoil {
    Nothing,
    Nonce,
    Audience,
    Issuer,
    Expired,
    Signature,
    AlgNone,
    /// Two audiences and an `azp` that is another client.
    Azp,
}

/// A minimal OpenID provider: discovery, JWKS, an authorization endpoint that answers at
/// once, and a token endpoint whose id_token is spoiled as `spoil` says.
async fn oidc_provider(spoil: Arc<Mutex<Spoil>>) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let key = portcullis::token::jwt::generate("EdDSA").unwrap();
    let other = portcullis::token::jwt::generate("EdDSA").unwrap();
    let der = |k: &portcullis::token::jwt::JwtKeyMaterial| {
        EncodingKey::from_ed_der(&URL_SAFE_NO_PAD.decode(&k.private_der).unwrap())
    };
    let (signing, wrong) = (der(&key), der(&other));
    // code → nonce.
    let nonces: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let discovery = {
        let base = base.clone();
        poem::endpoint::make_sync(move |_| {
            poem::web::Json(json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "jwks_uri": format!("{base}/jwks"),
            }))
        })
    };
    let jwks = {
        let jwk = key.jwk.clone();
        poem::endpoint::make_sync(move |_| poem::web::Json(json!({"keys": [jwk]})))
    };
    let authorize = {
        let nonces = nonces.clone();
        poem::endpoint::make_sync(move |req: poem::Request| {
            let q: HashMap<String, String> =
                url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let code = format!("code-{}", nonces.lock().unwrap().len());
            nonces
                .lock()
                .unwrap()
                .insert(code.clone(), q["nonce"].clone());
            poem::Response::builder()
                .status(poem::http::StatusCode::FOUND)
                .header(
                    "location",
                    format!(
                        "{}?code={code}&state={}",
                        q["redirect_uri"],
                        url::form_urlencoded::byte_serialize(q["state"].as_bytes())
                            .collect::<String>()
                    ),
                )
                .finish()
        })
    };
    let token = {
        let base = base.clone();
        poem::endpoint::make(move |mut req: poem::Request| {
            let (nonces, spoil, base) = (nonces.clone(), spoil.clone(), base.clone());
            let (signing, wrong, kid) = (signing.clone(), wrong.clone(), key.kid.clone());
            async move {
                let body = req.take_body().into_string().await.unwrap_or_default();
                let f: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
                let nonce = nonces
                    .lock()
                    .unwrap()
                    .remove(&f["code"])
                    .unwrap_or_default();
                let spoil = *spoil.lock().unwrap();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                let mut claims = json!({
                    "iss": base, "sub": "ada-1", "aud": "our-client",
                    "iat": now, "exp": now + 300, "nonce": nonce,
                    "email": "ada@example.test", "email_verified": true,
                    "preferred_username": "ada", "name": "Ada",
                    // The provider's own second factor (RFC 8176).
                    "amr": ["pwd", "otp", "mfa"],
                });
                match spoil {
                    Spoil::Nonce => claims["nonce"] = json!("another"),
                    Spoil::Audience => claims["aud"] = json!("someone-else"),
                    Spoil::Issuer => claims["iss"] = json!("https://evil.example.test"),
                    Spoil::Expired => {
                        claims["iat"] = json!(now - 7200);
                        claims["exp"] = json!(now - 3600);
                    }
                    Spoil::Azp => {
                        claims["aud"] = json!(["our-client", "someone-else"]);
                        claims["azp"] = json!("someone-else");
                    }
                    Spoil::Nothing | Spoil::Signature | Spoil::AlgNone => {}
                }
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(kid);
                let key = if spoil == Spoil::Signature {
                    &wrong
                } else {
                    &signing
                };
                let mut id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
                if spoil == Spoil::AlgNone {
                    let payload = id_token.split('.').nth(1).unwrap().to_string();
                    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"x"}"#);
                    id_token = format!("{none}.{payload}.");
                }
                poem::web::Json(
                    json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token}),
                )
            }
        })
    };
    let routes = poem::Route::new()
        .at("/.well-known/openid-configuration", poem::get(discovery))
        .at("/jwks", poem::get(jwks))
        .at("/authorize", poem::get(authorize))
        .at("/token", poem::post(token));
    crate::helpers::serve(listener, routes);
    base
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_audience_issuer_signature_or_expiry_sign_no_one_in() {
    let spoil = Arc::new(Mutex::new(Spoil::Nothing));
    let idp = oidc_provider(spoil.clone()).await;
    // Our clock is the real one here: the provider signs with the wall clock.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = crate::helpers::test_config(&dir);
    config.public_url = None;
    let us = crate::helpers::start(config, dir, portcullis::clock::Clock::system()).await;
    let admin = crate::admin::admin(&us).await;
    let put = put_upstream(
        &us,
        &admin,
        "ada",
        json!({"issuer": idp, "client_id": "our-client", "client_secret": "s", "accounts": "create", "trust_email": true, "trust_mfa": true}),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    let attempt = |b: reqwest::Client| {
        let us = &us;
        async move {
            let to_idp = follow(us, &b, &us.url("/ui/upstream/ada/start")).await;
            let back = location(&b.get(&to_idp).send().await.unwrap());
            b.get(&back).send().await.unwrap()
        }
    };
    for bad in [
        Spoil::Nonce,
        Spoil::Audience,
        Spoil::Issuer,
        Spoil::Expired,
        Spoil::Signature,
        Spoil::AlgNone,
        Spoil::Azp,
    ] {
        *spoil.lock().unwrap() = bad;
        let resp = attempt(browser()).await;
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY, "{bad:?}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("could not be trusted"), "{bad:?}: {page}");
    }
    assert_eq!(us.table_count("users").await, 1, "no account came of them");

    // The same provider, behaving: the person gets in, the verified address trusted.
    *spoil.lock().unwrap() = Spoil::Nothing;
    let b = browser();
    let resp = attempt(b.clone()).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, page) = html(&b, &us.url(&location(&resp))).await;
    let created = choose(&us, &b, &page, "create", &[("username", "ada")]).await;
    assert_eq!(location(&created), "/ui/account");
    let ada = us.services.accounts.find("ada").await.unwrap().unwrap();
    assert!(ada.email_verified, "a trusted upstream's verified address");
    // The trusted provider vouched for its second factor: the sign-in counts as two.
    let events: Value = us
        .get_json_as(&admin, "/api/v1/admin/events?kind=login_succeeded")
        .await;
    let ada_login = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subject"] == ada.id.as_str())
        .expect("ada's sign-in is audited");
    assert_eq!(ada_login["method"], "fed mfa");
}

#[tokio::test]
async fn the_second_factor_policy_applies_to_upstream_sign_ins_and_the_id_token_keeps_the_idp() {
    let f = federation("create").await;
    let us = &f.us;
    let client_id = notes(us).await;
    // Ursula has an account here with an authenticator app.
    us.register_user("ursula").await;
    let view = us.services.accounts.find("ursula").await.unwrap().unwrap();
    let enrolment = us.services.mfa.begin_totp(&view).await.unwrap();
    let origin = portcullis::service::audit::Origin::internal("test");
    let code = crate::mfa::totp_code(us, &enrolment.secret, 0);
    us.services
        .mfa
        .confirm_totp(&view, &enrolment.enrolment_token, &code, &origin)
        .await
        .unwrap();

    // Her password alone does not link an account that has a second factor.
    let (ours, theirs) = (browser(), browser());
    let callback = f
        .through_idp(&ours, &theirs, "/ui/upstream/corp/start", "ursula")
        .await;
    let choice = follow(us, &ours, &callback).await;
    let (_, page) = html(&ours, &choice).await;
    let refused = choose(
        us,
        &ours,
        &page,
        "link",
        &[("login", "ursula"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("link the provider from your account page")
    );

    // Signed in fully (password and code), she links Corp from her account page. (Each
    // code works once: the clock moves to the next one.)
    us.clock.advance(30);
    let (ours, theirs) = (browser(), browser());
    let second = crate::helpers::sign_in_page(us, &ours, "ursula", PASSWORD).await;
    let page = second.text().await.unwrap();
    let done = ours
        .post(us.url("/ui/login/mfa"))
        .form(&[
            ("request", ""),
            ("csrf", scrape(&page, "csrf").as_str()),
            ("mfa_token", scrape(&page, "mfa_token").as_str()),
            (
                "code",
                crate::mfa::totp_code(us, &enrolment.secret, 0).as_str(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&done), "/ui/account");
    let (_, account) = html(&ours, &us.url("/ui/account")).await;
    let to_idp = ours
        .post(us.url("/ui/account/identities/link"))
        .form(&[
            ("csrf", scrape(&account, "csrf").as_str()),
            ("upstream", "corp"),
        ])
        .send()
        .await
        .unwrap();
    let back = browser_sign_in(&f.idp, &theirs, &location(&to_idp), "ursula", PASSWORD).await;
    assert_eq!(
        follow(us, &ours, &back).await,
        us.url("/ui/account?done=identity-linked")
    );

    // Signed in through Corp for Notes: the second step, then the code; the id_token names
    // both the upstream and the factor.
    us.clock.advance(30);
    let (ours, theirs) = (browser(), browser());
    let request = notes_asks(us, &ours, &client_id).await;
    let callback = f
        .through_idp(
            &ours,
            &theirs,
            &format!("/ui/upstream/corp/start?request={request}"),
            "ursula",
        )
        .await;
    let second = ours.get(&callback).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::OK, "the second step is asked");
    let page = second.text().await.unwrap();
    assert!(page.contains("name=\"mfa_token\""), "{page}");
    let answered = ours
        .post(us.url("/ui/login/mfa"))
        .form(&[
            ("request", scrape(&page, "request").as_str()),
            ("csrf", scrape(&page, "csrf").as_str()),
            ("mfa_token", scrape(&page, "mfa_token").as_str()),
            (
                "code",
                crate::mfa::totp_code(us, &enrolment.secret, 0).as_str(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::SEE_OTHER);
    let id_token = notes_id_token(us, &ours, &us.url(&location(&answered)), &client_id).await;
    assert_eq!(id_token["idp"], "corp");
    let amr: Vec<&str> = id_token["amr"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        amr.contains(&"fed") && amr.contains(&"otp") && amr.contains(&"mfa"),
        "{amr:?}"
    );
    assert_eq!(id_token["acr"], "urn:portcullis:acr:mfa");
}

#[tokio::test]
async fn admins_manage_providers_in_the_console_and_see_who_is_linked() {
    let f = federation("create").await;
    let us = &f.us;
    let (ours, theirs) = (browser(), browser());
    let callback = f
        .through_idp(&ours, &theirs, "/ui/upstream/corp/start", "ursula")
        .await;
    let choice = follow(us, &ours, &callback).await;
    let (_, page) = html(&ours, &choice).await;
    choose(us, &ours, &page, "create", &[("username", "ursula")]).await;

    let admin = crate::helpers::page_signed_in(us, "root").await;
    let (_, users) = html(&admin, &us.url("/ui/admin/users")).await;
    assert!(users.contains("Linked: Corp"), "{users}");
    let (_, console) = html(&admin, &us.url("/ui/admin/upstreams")).await;
    assert!(console.contains("data-upstream=\"corp\""));
    assert!(console.contains(&us.url("/ui/upstream/corp/callback")));

    let action = |fields: Vec<(&'static str, &'static str)>, csrf: String| {
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf)];
        form.extend(fields.into_iter().map(|(k, v)| (k, v.to_string())));
        admin
            .post(us.url("/ui/admin/upstreams/action"))
            .form(&form)
            .send()
    };
    let toggled = action(
        vec![("action", "toggle"), ("id", "corp")],
        scrape(&console, "csrf"),
    )
    .await
    .unwrap();
    assert_eq!(
        location(&toggled),
        "/ui/admin/upstreams?done=upstream-saved"
    );
    let (_, login) = html(&browser(), &us.url("/ui/login")).await;
    assert!(
        !login.contains("Sign in with Corp"),
        "a disabled provider has no button"
    );
    let (status, _) = html(&browser(), &us.url("/ui/upstream/corp/start")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let saved = action(
        vec![
            ("action", "save"),
            ("id", "github"),
            ("preset", "github"),
            ("client_id", "Iv1.console"),
            ("client_secret", "console-secret"),
            ("accounts", "link-only"),
        ],
        scrape(&console, "csrf"),
    )
    .await
    .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, console) = html(&admin, &us.url("/ui/admin/upstreams")).await;
    assert!(console.contains("data-upstream=\"github\"") && console.contains("link-only"));
    assert!(!console.contains("console-secret"));
    assert!(f.events("upstream_changed").await.len() >= 3);
}

#[tokio::test]
async fn one_toml_block_or_one_flag_adds_a_provider_and_its_button() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        r#"
[[upstreams]]
id = "github"
preset = "github"
client_id = "Iv1.seeded"
client_secret = "seeded-secret"
accounts = "link-only"
"#,
    )
    .unwrap();
    let us = spawn_app_with(move |c| c.seed = Some(seed)).await;
    let (_, login) = html(&browser(), &us.url("/ui/login")).await;
    assert!(login.contains("Sign in with GitHub"), "{login}");
    // Loading it again at the next start changes nothing.
    let us = us.restart().await;
    let (_, login) = html(&browser(), &us.url("/ui/login")).await;
    assert_eq!(login.matches("Sign in with GitHub").count(), 1);

    // The same from the command line or the environment (`--upstream`,
    // `PORTCULLIS_UPSTREAMS`), and a spec that cannot work stops the start.
    let us = us
        .restart_with(|c| {
            c.upstreams = vec![
                "id=gitlab,preset=gitlab,client-id=gl,client-secret=gl-secret,name=Our GitLab"
                    .into(),
            ]
        })
        .await;
    let (_, login) = html(&browser(), &us.url("/ui/login")).await;
    assert!(login.contains("Sign in with Our GitLab") && login.contains("Sign in with GitHub"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&dir);
    config.upstreams = vec!["id=x,preset=gitlab,client-id=c,colour=red".into()];
    let err = portcullis::Application::build(&config)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--upstream"), "{err}");
}
