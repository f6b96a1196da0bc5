//! JWT access tokens (RFC 9068) for clients that ask for them: verifiable with the JWKS by
//! an API gateway, and treated by this server exactly like its PASETO tokens.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};
use crate::oidc_conformance::{REDIRECT, op, tokens_for};

fn part(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// What an API gateway does: find the key in the JWKS and check the signature.
async fn gateway_verifies(app: &TestApp, jwt: &str) -> bool {
    let header = part(jwt, 0);
    let jwks: Value = app.get_json("/oauth2/jwks").await;
    let Some(jwk) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
    else {
        return false;
    };
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let (message, signature) = jwt.rsplit_once('.').unwrap();
    jsonwebtoken::crypto::verify(
        signature,
        message.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::RS256,
    )
    .unwrap_or(false)
}

async fn jwt_client(app: &TestApp) -> (String, String) {
    let owner: Value = app.login("rpowner", PASSWORD).await.json().await.unwrap();
    let made: Value = app
        .create_client(
            owner["access_token"].as_str().unwrap(),
            &json!({"name": "gateway app", "redirect_uris": [REDIRECT], "access_token_format": "jwt",
                    "grant_types": ["authorization_code", "refresh_token", "client_credentials"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(made["access_token_format"], "jwt");
    (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    )
}

async fn introspect(app: &TestApp, rs: &(String, String), token: &str) -> Value {
    app.oauth_post("introspect", &[("token", token)], Some((&rs.0, &rs.1)))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_jwt_client_gets_rfc_9068_access_tokens_that_a_gateway_verifies_and_we_honour() {
    let (app, rs_id, rs_secret) = op().await;
    let resource_server = (rs_id, rs_secret);
    let client = jwt_client(&app).await;

    let resp = app
        .oauth_post(
            "token",
            &[("grant_type", "client_credentials")],
            Some((&client.0, &client.1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token: Value = resp.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    let header = part(access, 0);
    assert_eq!(header["typ"], "at+jwt", "RFC 9068 §2.1");
    assert_eq!(header["alg"], "RS256");
    let c = part(access, 1);
    assert_eq!(c["iss"], crate::helpers::ISSUER);
    assert_eq!(c["sub"], client.0.as_str());
    assert_eq!(c["client_id"], client.0.as_str());
    assert!(c["aud"].is_string() && c["jti"].is_string() && c["scope"].is_string());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    assert!(gateway_verifies(&app, access).await);

    // Introspection and revocation treat it as any access token.
    assert_eq!(
        introspect(&app, &resource_server, access).await["active"],
        true
    );
    let resp = app
        .oauth_post("revoke", &[("token", access)], Some((&client.0, &client.1)))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        introspect(&app, &resource_server, access).await["active"],
        false
    );

    // A tampered one is not.
    let mut forged = c.clone();
    forged["sub"] = json!("someone-else");
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
    assert_eq!(
        introspect(&app, &resource_server, &tampered).await["active"],
        false
    );
}

#[tokio::test]
async fn a_users_jwt_access_token_opens_userinfo_and_an_id_token_does_not() {
    let (app, _, _) = op().await;
    let client = jwt_client(&app).await;
    let tokens = tokens_for(&app, &client, &[("scope", "openid profile")]).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(part(access, 0)["typ"], "at+jwt");
    assert!(part(access, 1)["sid"].is_string(), "bound to its session");
    let userinfo = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/oauth2/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = userinfo(access.to_string()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["preferred_username"],
        "carol"
    );
    // RFC 9068 §4: an id_token is not an access token, though signed by the same keys.
    let resp = userinfo(tokens["id_token"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // After a refresh, still a JWT.
    let resp = app
        .oauth_post(
            "token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
            Some((&client.0, &client.1)),
        )
        .await;
    let refreshed: Value = resp.json().await.unwrap();
    assert_eq!(
        part(refreshed["access_token"].as_str().unwrap(), 0)["typ"],
        "at+jwt"
    );
}
