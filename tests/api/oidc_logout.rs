//! OpenID Connect Back-Channel Logout 1.0: ending a browser session POSTs a signed logout
//! token to each client that was issued a code in it, retried when the receiver fails.

use base64::Engine;
use poem::{EndpointExt, Route, handler, http::StatusCode as PoemStatus, post, web::Form};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::{PASSWORD, browser, browser_sign_in};
use crate::oidc_conformance::{REDIRECT, authorize_url, claims, op, param, redeem};

/// A relying party's back-channel logout receiver on loopback: answers the first POST with
/// 503 (to be retried) and later ones with 200, handing each `logout_token` to the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<String>) {
    #[derive(serde::Deserialize)]
    struct Body {
        logout_token: String,
    }
    #[handler]
    async fn receive(
        Form(body): Form<Body>,
        poem::web::Data(state): poem::web::Data<&(
            mpsc::UnboundedSender<String>,
            std::sync::Arc<std::sync::atomic::AtomicUsize>,
        )>,
    ) -> PoemStatus {
        let (tx, seen) = state;
        let _ = tx.send(body.logout_token);
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            PoemStatus::SERVICE_UNAVAILABLE
        } else {
            PoemStatus::OK
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Route::new().at("/backchannel", post(receive)).data((
        tx,
        std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    ));
    crate::helpers::serve(listener, app);
    (format!("http://127.0.0.1:{port}/backchannel"), rx)
}

fn jwt_part(jwt: &str, i: usize) -> Value {
    let part = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// A client with a Back-Channel Logout receiver at `uri` (and a post-logout URI), and a
/// browser in which carol signed in to it; returns the client, the browser and the tokens of
/// the code it got.
async fn signed_in_at_receiving_client(
    app: &crate::helpers::TestApp,
    uri: &str,
) -> ((String, String), reqwest::Client, Value) {
    let owner: Value = app.login("rpowner", PASSWORD).await.json().await.unwrap();
    let made: Value = app
        .create_client(
            owner["access_token"].as_str().unwrap(),
            &json!({"name": "BCL RP", "redirect_uris": [REDIRECT], "backchannel_logout_uri": uri, "post_logout_redirect_uris": ["https://rp.example.com/bye"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(made["backchannel_logout_uri"], uri);
    let client = (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    );
    let b = browser();
    let to = browser_sign_in(
        app,
        &b,
        &authorize_url(app, &client.0, &[]),
        "carol",
        PASSWORD,
    )
    .await;
    let tokens = redeem(app, &client, &param(&to, "code").unwrap()).await;
    (client, b, tokens)
}

#[tokio::test]
async fn ending_a_session_posts_a_signed_logout_token_to_each_client_of_it_with_retries() {
    let (app, _, _) = op().await;
    let (uri, mut tokens) = receiver().await;
    let (client, b, tokens_issued) = signed_in_at_receiving_client(&app, &uri).await;
    let id_token = tokens_issued["id_token"].as_str().unwrap().to_string();
    let sid = claims(&id_token)["sid"]
        .as_str()
        .expect("the id_token names its session")
        .to_string();

    // The RP logs the user out with its id_token: no confirmation, straight back.
    let out = b
        .get(app.url(&format!(
            "/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s1",
            url::form_urlencoded::byte_serialize(b"https://rp.example.com/bye").collect::<String>()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        crate::helpers::location(&out),
        "https://rp.example.com/bye?state=s1"
    );

    let wait = std::time::Duration::from_secs(20);
    let first = tokio::time::timeout(wait, tokens.recv())
        .await
        .expect("a logout token")
        .unwrap();
    // The receiver failed with 503: the same token comes again.
    let second = tokio::time::timeout(wait, tokens.recv())
        .await
        .expect("a retry")
        .unwrap();
    assert_eq!(first, second);

    // §2.4: what a logout token must and must not hold.
    let header = jwt_part(&first, 0);
    assert_eq!(header["typ"], "logout+jwt");
    let c = jwt_part(&first, 1);
    assert_eq!(c["iss"], crate::helpers::ISSUER);
    assert_eq!(c["aud"], client.0.as_str());
    assert_eq!(c["sub"], claims(&id_token)["sub"]);
    assert_eq!(c["sid"], sid.as_str());
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(c["jti"].is_string() && c["iat"].is_i64() && c["exp"].is_i64());
    assert!(
        c.get("nonce").is_none(),
        "§2.4: a logout token has no nonce"
    );
    // Signed by a published key.
    let jwks: Value = app.get_json("/oauth2/jwks").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("published");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let (message, signature) = first.rsplit_once('.').unwrap();
    assert!(
        jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key,
            jsonwebtoken::Algorithm::RS256
        )
        .unwrap()
    );

    let meta: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(meta["backchannel_logout_supported"], true);
}

#[tokio::test]
async fn a_backchannel_logout_uri_follows_the_redirect_uri_rules() {
    let (app, _, _) = op().await;
    let owner: Value = app.login("rpowner", PASSWORD).await.json().await.unwrap();
    for bad in [
        "http://rp.example.com/bc",
        "https://rp.example.com/bc#frag",
        "not a uri",
    ] {
        let resp = app
            .create_client(
                owner["access_token"].as_str().unwrap(),
                &json!({"name": "BCL RP", "redirect_uris": [REDIRECT], "backchannel_logout_uri": bad}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn a_password_change_ends_the_browser_sessions_too_and_tells_their_clients() {
    let (app, _, _) = op().await;
    let (uri, mut tokens) = receiver().await;
    let (client, b, issued) = signed_in_at_receiving_client(&app, &uri).await;
    let sid = claims(issued["id_token"].as_str().unwrap())["sid"].clone();

    // Carol changes her password from another device: every other session ends, the
    // browser session included.
    let api: Value = app.login("carol", PASSWORD).await.json().await.unwrap();
    let changed = app
        .change_password(
            api["access_token"].as_str().unwrap(),
            PASSWORD,
            "an entirely new passphrase 7",
        )
        .await;
    assert!(changed.status().is_success(), "{}", changed.status());
    let silent = b
        .get(authorize_url(&app, &client.0, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    let back = crate::helpers::location(&silent);
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("login_required"),
        "{back}"
    );

    let wait = std::time::Duration::from_secs(20);
    let first = tokio::time::timeout(wait, tokens.recv())
        .await
        .expect("a logout token")
        .unwrap();
    assert_eq!(jwt_part(&first, 1)["sid"], sid);
}
