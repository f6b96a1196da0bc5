//! id_token keys: every algorithm published from the first start, a staged rotation that
//! publishes the next keys before they sign, and the fully specified `Ed25519` (RFC 9864).

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::oidc_conformance::{REDIRECT, claims, op, tokens_for};

fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn published_kids(app: &TestApp, alg: &str) -> Vec<String> {
    let jwks: Value = app.get_json("/oauth2/jwks").await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Rotates the keys of a stopped server's data file, as `portcullis keys rotate` does.
async fn rotate_while_stopped(app: TestApp, stage: i64) -> TestApp {
    let (config, dir, clock) = app.stop().await;
    let opening = config.clone();
    let rotation_clock = clock.clone();
    tokio::task::spawn_blocking(move || {
        let store = opening
            .open_store(rotation_clock, portcullis::store::OpenMode::MustExist)
            .unwrap();
        store
            .rotate_keys(
                stage,
                portcullis::service::keys::new_access_token_key,
                &portcullis::token::jwt::ID_TOKEN_ALGS,
                portcullis::service::keys::new_id_token_key,
            )
            .unwrap();
    })
    .await
    .unwrap();
    crate::helpers::start(config, dir, clock).await
}

#[tokio::test]
async fn a_staged_rotation_publishes_the_next_keys_at_once_and_signs_with_them_after_the_delay() {
    let (app, id, secret) = op().await;
    let client = (id, secret);
    let first = tokens_for(&app, &client, &[]).await;
    let first_id_token = first["id_token"].as_str().unwrap().to_string();
    let old_kid = header(&first_id_token)["kid"].as_str().unwrap().to_string();
    assert_eq!(published_kids(&app, "RS256").await, vec![old_kid.clone()]);

    let app = rotate_while_stopped(app, 600).await;
    // Published at once, beside the current key …
    let kids = published_kids(&app, "RS256").await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    let new_kid = kids.iter().find(|k| **k != old_kid).unwrap().clone();
    // … but the current key still signs until the stage is over.
    let during = tokens_for(&app, &client, &[]).await;
    assert_eq!(header(during["id_token"].as_str().unwrap())["kid"], old_kid);

    app.clock.advance(600);
    let after = tokens_for(&app, &client, &[]).await;
    let id_token = after["id_token"].as_str().unwrap();
    assert_eq!(header(id_token)["kid"], new_kid.as_str());
    assert_eq!(claims(id_token)["aud"], client.0.as_str());
    // The access token moved to the new PASETO key too, and still works.
    let userinfo = app
        .client
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(after["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    // The retired key stays published while its tokens may live, and still verifies a hint.
    assert!(published_kids(&app, "RS256").await.contains(&old_kid));
    let resp = app
        .client
        .get(app.url(&format!(
            "/oauth2/logout?id_token_hint={first_id_token}&post_logout_redirect_uri={}",
            url::form_urlencoded::byte_serialize(b"https://rp.example.com/after-logout")
                .collect::<String>()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_immediate_rotation_signs_with_new_keys_for_every_algorithm_after_restart() {
    let (app, _, _) = op().await;
    let before: Vec<(String, Vec<String>)> = {
        let mut v = Vec::new();
        for alg in ["RS256", "EdDSA", "Ed25519"] {
            v.push((alg.to_string(), published_kids(&app, alg).await));
        }
        v
    };
    for (alg, kids) in &before {
        assert_eq!(kids.len(), 1, "one {alg} key from the first start");
    }
    let app = rotate_while_stopped(app, 0).await;
    for (alg, old) in &before {
        let kids = published_kids(&app, alg).await;
        assert_eq!(kids.len(), 2, "{alg}: the new key and the retired one");
        assert!(kids.contains(&old[0]));
    }
}

#[tokio::test]
async fn a_client_may_ask_for_the_fully_specified_ed25519_algorithm() {
    let app = crate::helpers::spawn_app().await;
    let dev = app.register_developer("edowner").await;
    app.register_user("carol").await;
    let made: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Ed RP", "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "Ed25519"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let client = (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    );
    let tokens = tokens_for(&app, &client, &[]).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let h = header(id_token);
    assert_eq!(h["alg"], "Ed25519");
    // Verify it with the published JWK, as a relying party would.
    let jwks: Value = app.get_json("/oauth2/jwks").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == h["kid"])
        .expect("the signing key is published")
        .clone();
    assert_eq!(jwk["alg"], "Ed25519");
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let (message, signature) = id_token.rsplit_once('.').unwrap();
    assert!(
        jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key,
            jsonwebtoken::Algorithm::EdDSA
        )
        .unwrap()
    );
    let meta: Value = app.get_json("/.well-known/openid-configuration").await;
    assert!(
        meta["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("Ed25519"))
    );
}
