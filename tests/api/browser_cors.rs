//! A real browser: headless Chromium (Debian's `chromium` and `chromium-driver`), driven over
//! WebDriver, runs a single-page app on another loopback origin that signs in with PKCE
//! through our pages and calls the token and userinfo endpoints with `fetch` — the CORS
//! preflights and answers as a browser enforces them. A page on an unregistered origin is
//! refused by the browser itself.

use poem::{EndpointExt, Route, get, handler, web::Html};
use serde_json::{Value, json};

use crate::{
    chromium::Browser,
    helpers::{PASSWORD, spawn_app},
};

/// The single-page app: on `/` it starts a PKCE sign-in at the authorization server `AS`;
/// on `/cb` it redeems the code and reads userinfo, from JavaScript. `/blocked` tries the
/// token endpoint from wherever it is served.
const SPA: &str = r#"<!doctype html><html><body><pre id="result"></pre><script>
const AS = "%AS%", CLIENT = "%CLIENT%", REDIRECT = "%REDIRECT%";
const show = v => document.getElementById('result').textContent = JSON.stringify(v);
const b64url = b => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g,'-').replace(/\//g,'_').replace(/=+$/,'');
async function start() {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem('verifier', verifier);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  location.href = AS + '/oauth2/authorize?' + new URLSearchParams({response_type: 'code', client_id: CLIENT,
    redirect_uri: REDIRECT, scope: 'openid profile', state: 'spa', code_challenge: challenge, code_challenge_method: 'S256'});
}
async function finish(params) {
  try {
    const token = await fetch(AS + '/oauth2/token', {method: 'POST',
      headers: {'Content-Type': 'application/x-www-form-urlencoded'},
      body: new URLSearchParams({grant_type: 'authorization_code', code: params.get('code'), redirect_uri: REDIRECT,
        client_id: CLIENT, code_verifier: sessionStorage.getItem('verifier')})}).then(r => r.json());
    const info = await fetch(AS + '/oauth2/userinfo', {headers: {Authorization: 'Bearer ' + token.access_token}}).then(r => r.json());
    show({ok: true, state: params.get('state'), user: info.preferred_username});
  } catch (e) { show({ok: false, error: String(e)}); }
}
async function blocked() {
  try {
    await fetch(AS + '/oauth2/token', {method: 'POST', body: new URLSearchParams({grant_type: 'client_credentials'})});
    show({blocked: false});
  } catch (e) { show({blocked: true, error: String(e)}); }
}
if (location.pathname === '/cb') finish(new URLSearchParams(location.search));
else if (location.pathname === '/blocked') blocked();
else start();
</script></body></html>"#;

#[handler]
fn spa_page(poem::web::Data(page): poem::web::Data<&String>) -> Html<String> {
    Html(page.clone())
}

#[tokio::test]
async fn a_spa_on_another_origin_signs_in_with_pkce_and_calls_userinfo_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    let dev = app.register_developer("spa-dev").await;
    app.register_user("carol").await;

    // The app's own server, on another origin (localhost vs 127.0.0.1, another port).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spa_port = listener.local_addr().unwrap().port();
    let spa_origin = format!("http://localhost:{spa_port}");
    let redirect = format!("{spa_origin}/cb");
    let made: Value = app
        .create_client(
            &dev.access_token,
            &json!({"name": "Browser SPA", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let page = SPA
        .replace("%AS%", &app.base)
        .replace("%CLIENT%", made["client_id"].as_str().unwrap())
        .replace("%REDIRECT%", &redirect);
    let routes = Route::new()
        .at("/", get(spa_page))
        .at("/cb", get(spa_page))
        .at("/blocked", get(spa_page))
        .data(page);
    crate::helpers::serve(listener, routes);

    // The app sends the browser to our login page; a person signs in and allows.
    browser.open(&format!("{spa_origin}/")).await;
    browser.type_into("#login", "carol").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.click("button[value=allow]").await;
    let result = browser.result().await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["state"], "spa");
    assert_eq!(
        result["user"], "carol",
        "the SPA read userinfo across origins"
    );

    // The same page served from an origin no client registered: the browser blocks it.
    browser
        .open(&format!("http://127.0.0.1:{spa_port}/blocked"))
        .await;
    let result = browser.result().await;
    assert_eq!(result["blocked"], true, "{result}");
}
