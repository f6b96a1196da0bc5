//! A real browser: headless Chromium (Debian's `chromium` and `chromium-driver`), driven over
//! WebDriver, runs a single-page app on another loopback origin that signs in with PKCE
//! through our pages and calls the token and userinfo endpoints with `fetch` — the CORS
//! preflights and answers as a browser enforces them. A page on an unregistered origin is
//! refused by the browser itself.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use poem::{EndpointExt, Route, get, handler, web::Html};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, required, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the browser may take for one step (start, a page, a fetch).
const STEP: Duration = Duration::from_secs(30);

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

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or `None` (with the skip line) when the
    /// packages are missing.
    async fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            required(
                "chromium",
                "install chromium chromium-driver (Debian) for the browser test",
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = crate::helpers::http_client_builder().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + STEP;
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && r.json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.path().display())]}}}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_string();
        let browser = Self {
            driver,
            base,
            session,
            http,
            _profile: profile,
        };
        // Finding an element waits for it (the page after a navigation).
        browser
            .call(
                "timeouts",
                json!({"implicit": STEP.as_millis() as u64, "pageLoad": STEP.as_millis() as u64}),
            )
            .await;
        Some(browser)
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        let resp: Value = self
            .http
            .post(format!("{}/session/{}/{path}", self.base, self.session))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(resp["value"]["error"].is_null(), "WebDriver {path}: {resp}");
        resp["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call("url", json!({"url": url})).await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call("element", json!({"using": "css selector", "value": css}))
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(&format!("element/{id}/value"), json!({"text": text}))
            .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(&format!("element/{id}/click"), json!({})).await;
    }

    /// The page's `#result` once its script has written it.
    async fn result(&self) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let text = self
                .call(
                    "execute/sync",
                    json!({"script": "const r = document.getElementById('result'); return r ? r.textContent : '';", "args": []}),
                )
                .await;
            if let Some(t) = text.as_str().filter(|t| !t.is_empty()) {
                return serde_json::from_str(t).unwrap();
            }
            assert!(Instant::now() < deadline, "the page wrote no result");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

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
    tokio::spawn(async move {
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let _ = poem::Server::new_with_acceptor(acceptor).run(routes).await;
    });

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
