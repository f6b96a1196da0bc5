//! Real relying-party libraries against the real server: the `openidconnect` crate drives
//! discovery, the code flow with PKCE through our HTML pages, id_token validation (RS256
//! and EdDSA), userinfo and refresh; the `oauth2` crate drives the device flow.

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata},
};
use serde_json::{Value, json};

use crate::helpers::{ISSUER, PASSWORD, TestApp, browser, browser_sign_in};
use crate::oidc_conformance::{REDIRECT, op, param};

/// The libraries' HTTP client: our reqwest client, with the issuer's host name (which only
/// this test knows how to reach) sent to the test server.
async fn send(
    base: String,
    client: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let url = req.uri().to_string().replacen(ISSUER, &base, 1);
    let mut call = client.request(req.method().clone(), url);
    for (name, value) in req.headers() {
        call = call.header(name, value);
    }
    let resp = call.body(req.body().clone()).send().await?;
    let mut out = openidconnect::http::Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        out = out.header(name, value);
    }
    Ok(out
        .body(resp.bytes().await?.to_vec())
        .expect("a response rebuilt from a response"))
}

fn http(
    app: &TestApp,
) -> impl Fn(
    openidconnect::HttpRequest,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>> + Send>,
> {
    let (base, client) = (app.base.clone(), app.client.clone());
    move |req| Box::pin(send(base.clone(), client.clone(), req))
}

/// A client registered with `alg` for its id_tokens.
async fn client_with_alg(app: &TestApp, alg: &str) -> (String, String) {
    let owner: Value = app.login("rpowner", PASSWORD).await.json().await.unwrap();
    let made: Value = app
        .create_client(
            owner["access_token"].as_str().unwrap(),
            &json!({"name": format!("{alg} RP"), "redirect_uris": [REDIRECT], "id_token_signed_response_alg": alg}),
        )
        .await
        .json()
        .await
        .unwrap();
    (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn the_openidconnect_crate_signs_in_validates_id_tokens_reads_userinfo_and_refreshes() {
    let (app, _, _) = op().await;
    let http = http(&app);
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(ISSUER.into()).unwrap(), &http)
            .await
            .expect("discovery and JWKS parse and the issuer matches");

    for (alg, expected) in [
        ("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
    ] {
        let (id, secret) = client_with_alg(&app, alg).await;
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(id.clone()),
            Some(ClientSecret::new(secret)),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("offline_access".into()))
            .set_pkce_challenge(challenge)
            .url();
        // Through our login and consent pages, as a person would.
        let url = url.as_str().replacen(ISSUER, &app.base, 1);
        let back = browser_sign_in(&app, &browser(), &url, "carol", PASSWORD).await;
        assert_eq!(
            param(&back, "state").as_deref(),
            Some(csrf.secret().as_str())
        );
        assert_eq!(param(&back, "iss").as_deref(), Some(ISSUER), "RFC 9207");
        let code = AuthorizationCode::new(param(&back, "code").unwrap());

        let tokens = client
            .exchange_code(code)
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("the token request");
        let id_token = tokens.id_token().expect("an id_token");
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(vec![expected.clone()]);
        let claims = id_token
            .claims(&verifier, &nonce)
            .unwrap_or_else(|e| panic!("{alg}: the id_token validates: {e}"));
        assert_eq!(id_token.signing_alg().unwrap(), &expected);
        assert_eq!(claims.issuer().as_str(), ISSUER);
        assert_eq!(claims.preferred_username().unwrap().as_str(), "carol");

        let info: openidconnect::core::CoreUserInfoClaims = client
            .user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .unwrap()
            .request_async(&http)
            .await
            .expect("userinfo");
        assert_eq!(info.subject(), claims.subject());

        let refreshed = client
            .exchange_refresh_token(tokens.refresh_token().expect("offline_access"))
            .unwrap()
            .request_async(&http)
            .await
            .expect("refresh");
        assert_ne!(
            refreshed.access_token().secret(),
            tokens.access_token().secret()
        );
    }
}

#[tokio::test]
async fn the_oauth2_crate_completes_the_device_flow() {
    use oauth2::{
        AuthUrl, ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse,
        TokenResponse, TokenUrl, basic::BasicClient,
    };
    let app = crate::helpers::spawn_app().await;
    let dev = app.register_developer("tvmaker").await;
    app.register_user("carol").await;
    let made: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Living-room TV", "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "token_endpoint_auth_method": "none"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let client = BasicClient::new(ClientId::new(made["client_id"].as_str().unwrap().into()))
        .set_auth_uri(AuthUrl::new(format!("{ISSUER}/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{ISSUER}/oauth2/token")).unwrap())
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{ISSUER}/oauth2/device_authorization")).unwrap(),
        );
    let http = http(&app);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .replacen(ISSUER, &app.base, 1);

    // The library waits between polls with this: time moves on the server's clock, and the
    // first wait lasts until the user has approved in the browser.
    let (approved_tx, approved_rx) = tokio::sync::watch::channel(false);
    let clock = app.clock.clone();
    let sleep = move |d: std::time::Duration| {
        let (clock, mut approved) = (clock.clone(), approved_rx.clone());
        async move {
            clock.advance(d.as_secs() as i64);
            let _ = approved.wait_for(|a| *a).await;
        }
    };
    let polling = client
        .exchange_device_access_token(&details)
        .request_async(&http, sleep, None);
    let approving = async {
        let done = crate::oauth_device::decide_in_browser(&app, &complete, "allow").await;
        assert_eq!(done, "/ui/device?done=approved");
        approved_tx.send(true).unwrap();
    };
    let (tokens, ()) = tokio::join!(polling, approving);
    let tokens = tokens.expect("the device gets its tokens");
    assert_eq!(tokens.scopes().unwrap()[0].as_str(), "profile");
    // A resource server sees a live token of carol's, issued to the device's client.
    let resource_server: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "API", "grant_types": ["client_credentials"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let info: Value = app
        .oauth_post(
            "introspect",
            &[("token", tokens.access_token().secret().as_str())],
            Some((
                resource_server["client_id"].as_str().unwrap(),
                resource_server["client_secret"].as_str().unwrap(),
            )),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "carol");
    assert_eq!(info["client_id"], made["client_id"]);
}
