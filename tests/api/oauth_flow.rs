//! The authorization code flow through the real login and consent pages (cookie jar, CSRF
//! tokens scraped from the forms), PKCE, and the attacks on it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{PASSWORD, TestApp, browser, location, scrape, spawn_app};

const REDIRECT: &str = "https://app.example.com/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

struct Flow {
    app: TestApp,
    public: String,
    confidential: (String, String),
}

async fn flow() -> Flow {
    let app = spawn_app().await;
    let dev = app.register_developer("owner").await;
    app.register_user("alice").await;
    let public: Value = app
        .create_client(&dev.access_token, &json!({"name": "Notes <SPA>", "redirect_uris": [REDIRECT, "http://127.0.0.1:9999/cb"], "confidential": false}))
        .await
        .json()
        .await
        .unwrap();
    let conf: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Grafana", "redirect_uris": [REDIRECT]}),
        )
        .await
        .json()
        .await
        .unwrap();
    Flow {
        public: public["client_id"].as_str().unwrap().to_string(),
        confidential: (
            conf["client_id"].as_str().unwrap().to_string(),
            conf["client_secret"].as_str().unwrap().to_string(),
        ),
        app,
    }
}

impl Flow {
    fn authorize_url(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile"),
            ("state", "st-123"),
        ];
        params.extend_from_slice(extra);
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.app.url(&format!("/oauth2/authorize?{q}"))
    }

    fn pkce() -> [(&'static str, String); 2] {
        [
            ("code_challenge", challenge(VERIFIER)),
            ("code_challenge_method", "S256".into()),
        ]
    }

    /// Runs authorize → login → consent(allow) in `browser`; returns the final redirect.
    async fn sign_in(&self, browser: &reqwest::Client, url: &str) -> String {
        crate::helpers::browser_sign_in(&self.app, browser, url, "alice", PASSWORD).await
    }

    async fn code(&self, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(&str, &str)> = extra.to_vec();
        let pkce = Self::pkce();
        for (k, v) in &pkce {
            if !extra.iter().any(|(e, _)| e == k) {
                params.push((k, v.as_str()));
            }
        }
        let redirect = self
            .sign_in(&browser(), &self.authorize_url(&self.public, &params))
            .await;
        assert!(redirect.starts_with(REDIRECT), "{redirect}");
        query_param(&redirect, "code").expect("code")
    }

    /// Signs alice in through the public client with `extra` parameters and redeems the
    /// code with PKCE; the token response.
    async fn public_tokens(&self, extra: &[(&str, &str)]) -> Value {
        let code = self.code(extra).await;
        self.redeem(&code, &self.public, Some(VERIFIER), REDIRECT)
            .await
            .json()
            .await
            .unwrap()
    }

    async fn redeem(
        &self,
        code: &str,
        client_id: &str,
        verifier: Option<&str>,
        redirect: &str,
    ) -> Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.app.oauth_post("token", &form, None).await
    }

    /// Starts an authorization in `b` and returns the login page's HTML.
    async fn open_login(&self, b: &reqwest::Client, authorize_url: &str) -> String {
        let resp = b.get(authorize_url).send().await.unwrap();
        self.follow(b, &resp).await
    }

    /// Follows a same-site redirect in `b` and returns the page's HTML.
    async fn follow(&self, b: &reqwest::Client, resp: &Response) -> String {
        let page = b.get(self.app.url(&location(resp))).send().await.unwrap();
        page.text().await.unwrap()
    }

    /// Posts the login form scraped from `login_html` as alice with `password`.
    async fn submit_login(
        &self,
        b: &reqwest::Client,
        login_html: &str,
        password: &str,
    ) -> Response {
        b.post(self.app.url("/ui/login"))
            .form(&[
                ("request", scrape(login_html, "request").as_str()),
                ("csrf", scrape(login_html, "csrf").as_str()),
                ("login", "alice"),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    async fn introspect(&self, token: &str) -> Value {
        let basic = Some((self.confidential.0.as_str(), self.confidential.1.as_str()));
        self.app
            .oauth_post("introspect", &[("token", token)], basic)
            .await
            .json()
            .await
            .unwrap()
    }
}

async fn grant_error(resp: Response) -> String {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    resp.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn full_pkce_flow_then_refresh_introspect_and_revoke() {
    let f = flow().await;
    let b = browser();
    let url = f.authorize_url(
        &f.public,
        &[
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );

    // The login page: framing forbidden, client name escaped, CSRF in the form.
    let resp = b.get(&url).send().await.unwrap();
    let login_url = f.app.url(&location(&resp));
    let page = b.get(&login_url).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("Notes &#60;SPA&#62;") && !html.contains("Notes <SPA>"));

    let redirect = f.sign_in(&b, &url).await;
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("st-123"));
    assert_eq!(
        query_param(&redirect, "iss").as_deref(),
        Some("http://portcullis.localhost")
    );
    let code = query_param(&redirect, "code").unwrap();

    let resp = f.redeem(&code, &f.public, Some(VERIFIER), REDIRECT).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["scope"], "openid profile");
    let info = f.introspect(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice");
    assert_eq!(info["client_id"], f.public.as_str());

    let refreshed = f
        .app
        .oauth_post(
            "token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", &f.public),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    let revoke = f
        .app
        .oauth_post(
            "revoke",
            &[
                ("token", refreshed["refresh_token"].as_str().unwrap()),
                ("client_id", &f.public),
            ],
            None,
        )
        .await;
    assert_eq!(revoke.status(), StatusCode::OK);
    assert_eq!(
        f.introspect(refreshed["access_token"].as_str().unwrap())
            .await,
        json!({"active": false})
    );

    // Consent is remembered: the same browser goes straight back with a new code.
    let again = f.sign_in(&b, &url).await;
    assert!(query_param(&again, "code").is_some());
}

#[tokio::test]
async fn untrusted_client_or_redirect_uri_gets_our_page_never_a_redirect() {
    let f = flow().await;
    let b = browser();
    for uri in [
        "https://APP.example.com/callback",
        "https://app.example.com/callback/",
        "https://app.example.com/callback?x=1",
        "https://app.example.com/callback/../callback",
        "https://app.example.com@evil.example/callback",
        "http://app.example.com/callback",
        "https://evil.example/callback",
    ] {
        let url = f.authorize_url(&f.public, &[]).replace(
            &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>(),
        );
        let resp = b.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            resp.headers().get("location").is_none(),
            "{uri} must not redirect"
        );
        assert!(
            resp.text().await.unwrap().contains("not registered"),
            "{uri}"
        );
    }
    let resp = b
        .get(f.authorize_url("no-such-client", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test]
async fn errors_after_the_redirect_is_trusted_go_back_with_state() {
    let f = flow().await;
    let b = browser();
    let cases: Vec<(String, &str)> = vec![
        (
            f.authorize_url(&f.public, &[])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            f.authorize_url(
                &f.public,
                &[
                    ("code_challenge", &challenge(VERIFIER)),
                    ("code_challenge_method", "S256"),
                ],
            )
            .replace("scope=openid+profile", "scope=admin"),
            "invalid_scope",
        ),
        (f.authorize_url(&f.public, &[]), "invalid_request"),
        (
            f.authorize_url(
                &f.public,
                &[
                    ("code_challenge", VERIFIER),
                    ("code_challenge_method", "plain"),
                ],
            ),
            "invalid_request",
        ),
    ];
    for (url, error) in cases {
        let resp = b.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND, "{error}");
        let loc = location(&resp);
        assert!(loc.starts_with(REDIRECT), "{loc}");
        assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
        assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    }
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied() {
    let f = flow().await;
    let b = browser();
    let login = f
        .open_login(&b, &f.authorize_url(&f.confidential.0, &[]))
        .await;
    let request = scrape(&login, "request");
    let resp = f.submit_login(&b, &login, PASSWORD).await;
    let consent = f.follow(&b, &resp).await;
    let resp = b
        .post(f.app.url("/ui/consent"))
        .form(&[
            ("request", request.as_str()),
            ("csrf", scrape(&consent, "csrf").as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    let loc = location(&resp);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    assert!(query_param(&loc, "code").is_none());
}

#[tokio::test]
async fn csrf_missing_or_from_another_browser_is_refused() {
    let f = flow().await;
    let (a, b) = (browser(), browser());
    let url = f.authorize_url(&f.confidential.0, &[]);
    let login = f.open_login(&a, &url).await;
    let request = scrape(&login, "request");

    let missing = a
        .post(f.app.url("/ui/login"))
        .form(&[
            ("request", request.as_str()),
            ("login", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    // B (another cookie jar) replays A's token.
    let foreign = f.submit_login(&b, &login, PASSWORD).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);

    // A logs in properly; B, signed in as well, cannot submit A's consent token.
    let resp = f.submit_login(&a, &login, PASSWORD).await;
    let consent = f.follow(&a, &resp).await;
    f.sign_in(&b, &url).await;
    let cross = b
        .post(f.app.url("/ui/consent"))
        .form(&[
            ("request", request.as_str()),
            ("csrf", scrape(&consent, "csrf").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn wrong_password_on_the_login_page_is_a_generic_error() {
    let f = flow().await;
    let b = browser();
    let login = f
        .open_login(&b, &f.authorize_url(&f.confidential.0, &[]))
        .await;
    let resp = f.submit_login(&b, &login, "Wrong-password-1").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("username, email or password is incorrect")
    );
}

#[tokio::test]
async fn pkce_verifier_must_match_and_be_present_exactly_when_required() {
    let f = flow().await;
    let code = f.code(&[]).await;
    assert_eq!(
        grant_error(
            f.redeem(&code, &f.public, Some(&format!("{VERIFIER}x")), REDIRECT)
                .await
        )
        .await,
        "invalid_grant"
    );
    let code = f.code(&[]).await;
    assert_eq!(
        grant_error(f.redeem(&code, &f.public, None, REDIRECT).await).await,
        "invalid_grant"
    );

    // A confidential client without PKCE may not send a verifier for that code.
    let redirect = f
        .sign_in(&browser(), &f.authorize_url(&f.confidential.0, &[]))
        .await;
    let code = query_param(&redirect, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let resp = f
        .app
        .oauth_post("token", &form, Some((&f.confidential.0, &f.confidential.1)))
        .await;
    assert_eq!(grant_error(resp).await, "invalid_grant");
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let f = flow().await;
    let code = f.code(&[]).await;
    let tokens: Value = f
        .redeem(&code, &f.public, Some(VERIFIER), REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        grant_error(f.redeem(&code, &f.public, Some(VERIFIER), REDIRECT).await).await,
        "invalid_grant"
    );
    assert_eq!(
        f.introspect(tokens["access_token"].as_str().unwrap()).await,
        json!({"active": false})
    );
    assert_eq!(
        f.introspect(tokens["refresh_token"].as_str().unwrap())
            .await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn fifty_parallel_redemptions_of_one_code_yield_one_token() {
    let f = flow().await;
    let code = f.code(&[]).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, url, code, id) = (
                f.app.client.clone(),
                f.app.url("/oauth2/token"),
                code.clone(),
                f.public.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("client_id", &id),
                        ("code_verifier", VERIFIER),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn codes_are_bound_to_client_redirect_uri_and_time() {
    let f = flow().await;
    let code = f.code(&[]).await;
    let other_client = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let resp = f
        .app
        .oauth_post(
            "token",
            &other_client,
            Some((&f.confidential.0, &f.confidential.1)),
        )
        .await;
    assert_eq!(grant_error(resp).await, "invalid_grant");

    let code = f.code(&[]).await;
    assert_eq!(
        grant_error(
            f.redeem(&code, &f.public, Some(VERIFIER), "http://127.0.0.1:9999/cb")
                .await
        )
        .await,
        "invalid_grant"
    );

    let code = f.code(&[]).await;
    f.app.clock.advance(61);
    assert_eq!(
        grant_error(f.redeem(&code, &f.public, Some(VERIFIER), REDIRECT).await).await,
        "invalid_grant"
    );
}

// ---- OpenID Connect ----

/// Verifies an id_token against the published JWKS and returns its claims.
async fn verify_id_token(app: &TestApp, id_token: &str, audience: &str) -> (String, Value) {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwks = app.get_json("/oauth2/jwks").await;
    let kid = header.kid.clone().expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("key published");
    let key = match jwk["kty"].as_str().unwrap() {
        "RSA" => jsonwebtoken::DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap(),
        _ => jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap(),
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["http://portcullis.localhost"]);
    let data =
        jsonwebtoken::decode::<Value>(id_token, &key, &validation).expect("id_token verifies");
    (format!("{:?}", header.alg), data.claims)
}

#[tokio::test]
async fn openid_scope_yields_a_verifiable_id_token_with_nonce_and_claims_by_scope() {
    let f = flow().await;
    let code = f
        .code(&[("nonce", "n-42"), ("scope", "openid profile email")])
        .await;
    let tokens: Value = f
        .redeem(&code, &f.public, Some(VERIFIER), REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    let (alg, claims) = verify_id_token(
        &f.app,
        tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{tokens}")),
        &f.public,
    )
    .await;
    assert_eq!(alg, "RS256");
    assert_eq!(claims["nonce"], "n-42");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.test");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());

    let info = f
        .app
        .client
        .get(f.app.url("/oauth2/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["email"], "alice@example.test");

    // Without `email` in the scope, no email claims.
    let code = f.code(&[("scope", "openid")]).await;
    let tokens: Value = f
        .redeem(&code, &f.public, Some(VERIFIER), REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    let (_, claims) =
        verify_id_token(&f.app, tokens["id_token"].as_str().unwrap(), &f.public).await;
    assert!(claims.get("email").is_none() && claims.get("preferred_username").is_none());
    // Without `openid`, no id_token at all.
    let tokens = f.public_tokens(&[("scope", "profile")]).await;
    assert!(tokens.get("id_token").is_none());
}

#[tokio::test]
async fn clients_may_ask_for_eddsa_id_tokens_and_keys_survive_restarts() {
    let f = flow().await;
    let dev: Value = f.app.login("owner", PASSWORD).await.json().await.unwrap();
    let ed: Value = f
        .app
        .create_client(
            dev["access_token"].as_str().unwrap(),
            &json!({"name": "Ed", "redirect_uris": [REDIRECT], "confidential": false, "id_token_signed_response_alg": "EdDSA"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let ed_id = ed["client_id"].as_str().unwrap();
    let pkce = Flow::pkce();
    let url = f.authorize_url(
        ed_id,
        &[
            (pkce[0].0, pkce[0].1.as_str()),
            (pkce[1].0, pkce[1].1.as_str()),
        ],
    );
    let code = query_param(&f.sign_in(&browser(), &url).await, "code").unwrap();
    let tokens: Value = f
        .redeem(&code, ed_id, Some(VERIFIER), REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    let (alg, _) = verify_id_token(&f.app, tokens["id_token"].as_str().unwrap(), ed_id).await;
    assert_eq!(alg, "EdDSA");

    let before = f.app.get_json("/oauth2/jwks").await;
    let app = f.app.restart().await;
    assert_eq!(
        app.get_json("/oauth2/jwks").await,
        before,
        "keys are persisted"
    );
    assert_eq!(
        before["keys"].as_array().unwrap().len(),
        3,
        "RS256, EdDSA and Ed25519"
    );
}

#[tokio::test]
async fn userinfo_refuses_missing_bad_and_non_openid_tokens() {
    let f = flow().await;
    let none = f
        .app
        .client
        .get(f.app.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let bad = f
        .app
        .client
        .get(f.app.url("/oauth2/userinfo"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let tokens = f.public_tokens(&[("scope", "profile")]).await;
    let no_openid = f
        .app
        .client
        .post(f.app.url("/oauth2/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(no_openid.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn discovery_documents_list_exactly_what_is_enabled() {
    let f = flow().await;
    let oidc = f.app.get_json("/.well-known/openid-configuration").await;
    let oauth = f
        .app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(oidc, oauth);
    let base = "http://portcullis.localhost";
    assert_eq!(oidc["issuer"], base);
    for (field, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("jwks_uri", "/oauth2/jwks"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("end_session_endpoint", "/oauth2/logout"),
        ("paserk_uri", "/oauth2/paserk"),
    ] {
        assert_eq!(oidc[field], format!("{base}{path}"), "{field}");
    }
    assert_eq!(oidc["response_types_supported"], json!(["code"]));
    assert_eq!(
        oidc["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(oidc["backchannel_logout_supported"], true);
    assert_eq!(oidc["backchannel_logout_session_supported"], true);
    assert_eq!(oidc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["RS256", "EdDSA", "Ed25519"])
    );
    assert_eq!(
        oidc["scopes_supported"],
        json!(["openid", "profile", "email", "offline_access", "api"])
    );
    assert_eq!(
        oidc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(oidc["subject_types_supported"], json!(["public"]));
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn access_tokens_verify_offline_with_the_published_paserk_key() {
    use pasetors::{
        keys::AsymmetricPublicKey,
        token::UntrustedToken,
        version4::{PublicToken, V4},
    };
    let f = flow().await;
    let tokens = f.public_tokens(&[]).await;
    let access = tokens["access_token"].as_str().unwrap();

    let published = f.app.get_json("/oauth2/paserk").await;
    let key = &published["keys"][0];
    assert!(key["kid"].as_str().unwrap().starts_with("k4.pid."));
    let public = AsymmetricPublicKey::<V4>::try_from(key["paserk"].as_str().unwrap()).unwrap();
    let untrusted = UntrustedToken::<pasetors::token::Public, V4>::try_from(access).unwrap();
    let trusted = PublicToken::verify(
        &public,
        &untrusted,
        Some(untrusted.untrusted_footer()),
        None,
    )
    .expect("verifies offline");
    let claims: Value = serde_json::from_str(trusted.payload()).unwrap();
    assert_eq!(claims["iss"], "http://portcullis.localhost");
    assert_eq!(claims["aud"], f.public.as_str());
    assert!(
        String::from_utf8_lossy(untrusted.untrusted_footer())
            .contains(key["kid"].as_str().unwrap())
    );
}

#[tokio::test]
async fn rp_initiated_logout_without_a_hint_asks_first_and_a_forged_post_changes_nothing() {
    let f = flow().await;
    let b = browser();
    let url = f.authorize_url(&f.confidential.0, &[]);
    f.sign_in(&b, &url).await;
    let signed_in = |b: reqwest::Client| {
        let (app, url) = (&f.app, url.clone());
        async move {
            let resp = b.get(&url).send().await.unwrap();
            let login = b.get(app.url(&location(&resp))).send().await.unwrap();
            // Signed in: the login page forwards straight to consent.
            login.status() == StatusCode::SEE_OTHER
        }
    };
    assert!(signed_in(b.clone()).await);

    // Any page could link here: without an id_token_hint the user is asked first.
    let ask = b.get(f.app.url("/oauth2/logout")).send().await.unwrap();
    assert_eq!(ask.status(), StatusCode::OK);
    let html = ask.text().await.unwrap();
    assert!(html.contains("Sign out?"), "{html}");
    assert!(signed_in(b.clone()).await, "asking signed nobody out");
    // A cross-site form post without the page's CSRF token is asked again, not obeyed.
    let forged = b
        .post(f.app.url("/oauth2/logout"))
        .form(&[("confirm", "yes"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert!(forged.text().await.unwrap().contains("Sign out?"));
    assert!(
        signed_in(b.clone()).await,
        "a forged post signed nobody out"
    );

    let csrf = scrape(&html, "csrf");
    let out = b
        .post(f.app.url("/oauth2/logout"))
        .form(&[("confirm", "yes"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert!(out.text().await.unwrap().contains("You are signed out"));
    assert!(!signed_in(b.clone()).await, "the login form again");
}

/// `GET /oauth2/logout` with these parameters; the answer's `Location`, if it redirects.
async fn logout_target(f: &Flow, params: &[(&str, &str)]) -> Option<String> {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let out = browser()
        .get(f.app.url(&format!("/oauth2/logout?{q}")))
        .send()
        .await
        .unwrap();
    match out.status() {
        StatusCode::SEE_OTHER => Some(location(&out)),
        StatusCode::OK => None,
        other => panic!("logout answered {other}"),
    }
}

#[tokio::test]
async fn logout_redirects_only_to_registered_post_logout_uris_never_login_ones() {
    const AFTER: &str = "https://app.example.com/signed-out";
    let f = flow().await;
    // A login redirect URI is not a place to send a browser after logout: with it, any
    // developer's client made this endpoint an open redirector.
    let login_uri = [
        ("client_id", f.confidential.0.as_str()),
        ("post_logout_redirect_uri", REDIRECT),
    ];
    assert_eq!(logout_target(&f, &login_uri).await, None);
    assert_eq!(
        logout_target(
            &f,
            &[
                ("client_id", "x"),
                ("post_logout_redirect_uri", "https://evil.example/")
            ]
        )
        .await,
        None
    );

    // Registered as a post-logout URI of the public client: followed, with state.
    let dev = f
        .app
        .login("owner", PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let token = dev["access_token"].as_str().unwrap();
    let resp = f
        .app
        .clients_call(
            reqwest::Method::PATCH,
            token,
            &format!("/{}", f.public),
            Some(&json!({"post_logout_redirect_uris": [AFTER]})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["post_logout_redirect_uris"],
        json!([AFTER])
    );
    let by_client = [
        ("client_id", f.public.as_str()),
        ("post_logout_redirect_uri", AFTER),
        ("state", "bye"),
    ];
    assert_eq!(
        logout_target(&f, &by_client).await.as_deref(),
        Some(format!("{AFTER}?state=bye").as_str())
    );
    // Another client's post-logout URI is not this one's.
    let other = [
        ("client_id", f.confidential.0.as_str()),
        ("post_logout_redirect_uri", AFTER),
    ];
    assert_eq!(logout_target(&f, &other).await, None);

    // An id_token_hint names the client by itself (OIDC RP-Initiated Logout §2).
    let tokens = f.public_tokens(&[("scope", "openid")]).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let by_hint = [("id_token_hint", hint), ("post_logout_redirect_uri", AFTER)];
    assert_eq!(logout_target(&f, &by_hint).await.as_deref(), Some(AFTER));
    // Still valid once expired: it only identifies the session.
    f.app.clock.advance(7 * 24 * 3600);
    assert_eq!(logout_target(&f, &by_hint).await.as_deref(), Some(AFTER));
    // A hint for another client than client_id, or a forged one, is not followed.
    let mismatched = [
        ("id_token_hint", hint),
        ("client_id", f.confidential.0.as_str()),
        ("post_logout_redirect_uri", AFTER),
    ];
    assert_eq!(logout_target(&f, &mismatched).await, None);
    let (head, _) = hint.rsplit_once('.').unwrap();
    let forged = format!("{head}.AAAA");
    let forged = [
        ("id_token_hint", forged.as_str()),
        ("post_logout_redirect_uri", AFTER),
    ];
    assert_eq!(logout_target(&f, &forged).await, None);
}

#[tokio::test]
async fn swagger_ui_signs_in_here_and_its_token_works_on_the_native_api() {
    let f = flow().await;
    let spec = f.app.get_json("/openapi.json").await;
    let code_flow =
        &spec["components"]["securitySchemes"]["OAuth2Auth"]["flows"]["authorizationCode"];
    assert_eq!(code_flow["authorizationUrl"], "/oauth2/authorize");
    assert_eq!(code_flow["tokenUrl"], "/oauth2/token");
    let me_security = spec["paths"]["/api/v1/me"]["get"]["security"]
        .as_array()
        .unwrap();
    assert!(me_security.iter().any(|s| s.get("OAuth2Auth").is_some()));

    let html = f
        .app
        .client
        .get(f.app.url("/swagger"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(
            "initOAuth({clientId: \"portcullis-swagger\", usePkceWithAuthorizationCodeGrant: true"
        ),
        "Swagger UI is pre-configured"
    );
    // The receiver is the registered one, not derived from the page address (a deep link
    // such as /swagger#/Me/getMe would break it), and another host name moves to the public
    // URL first, keeping the deep link.
    assert!(
        html.contains(
            "oauth2RedirectUrl: \"http://portcullis.localhost/swagger/oauth-receiver.html\","
        ),
        "the registered receiver"
    );
    assert!(html.contains(
        "if (window.location.origin !== \"http://portcullis.localhost\") { window.location.replace(\"http://portcullis.localhost/swagger\" + window.location.hash); }"
    ));
    let receiver = f
        .app
        .client
        .get(f.app.url("/swagger/oauth-receiver.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(receiver.status(), StatusCode::OK);

    let redirect = "http://portcullis.localhost/swagger/oauth-receiver.html";
    let challenge = challenge(VERIFIER);
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", "portcullis-swagger"),
            ("redirect_uri", redirect),
            ("scope", "api"),
            ("state", "sw"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let back = f
        .sign_in(&browser(), &f.app.url(&format!("/oauth2/authorize?{q}")))
        .await;
    assert!(back.starts_with(redirect), "{back}");
    let code = query_param(&back, "code").unwrap();
    let tokens: Value = f
        .redeem(&code, "portcullis-swagger", Some(VERIFIER), redirect)
        .await
        .json()
        .await
        .unwrap();
    let me = f.app.get_me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "Try it out works with the Swagger sign-in token"
    );
    assert_eq!(me.json::<Value>().await.unwrap()["username"], "alice");
}

#[tokio::test]
async fn the_login_page_shows_and_checks_the_captcha_when_configured() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.dev = true;
        c.captcha = portcullis::config::CaptchaPolicy::Login;
    })
    .await;
    let dev = app.register_developer("owner").await;
    app.register_user("alice").await;
    let client: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Grafana", "redirect_uris": [REDIRECT]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let q = format!(
        "response_type=code&client_id={}&redirect_uri={}",
        client["client_id"].as_str().unwrap(),
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let b = browser();
    let resp = b
        .get(app.url(&format!("/oauth2/authorize?{q}")))
        .send()
        .await
        .unwrap();
    let login_url = app.url(&location(&resp));
    let html = b
        .get(&login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("data:image/png;base64,"),
        "the captcha image is on the page"
    );
    let form = |html: &str, answer: &str| {
        vec![
            ("request", scrape(html, "request")),
            ("csrf", scrape(html, "csrf")),
            ("captcha_id", scrape(html, "captcha_id")),
            ("captcha_answer", answer.to_string()),
            ("login", "alice".to_string()),
            ("password", PASSWORD.to_string()),
        ]
    };
    let wrong = b
        .post(app.url("/ui/login"))
        .form(&form(&html, "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("did not match"));
    let marker = "<code id=\"dev-captcha-answer\">";
    let start = html.find(marker).unwrap() + marker.len();
    let answer = html[start..start + html[start..].find('<').unwrap()].to_string();
    let ok = b
        .post(app.url("/ui/login"))
        .form(&form(&html, &answer))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert!(location(&ok).starts_with("/ui/consent"));
}
