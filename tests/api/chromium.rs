//! Headless Chromium (Debian's `chromium` and `chromium-driver`) driven over WebDriver, with
//! DevTools commands through chromedriver (`goog/cdp/execute`) for what WebDriver lacks (the
//! virtual WebAuthn authenticator). A machine without the packages skips with the reason.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::helpers::required;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the browser may take for one step (start, a page, a fetch).
const STEP: Duration = Duration::from_secs(30);

/// A chromedriver process and one browser session in it.
pub struct Browser {
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
    pub async fn start() -> Option<Self> {
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
                     "--disable-quic", "--no-first-run", "--window-size=1100,1400", "--disable-background-networking",
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

    pub async fn call(&self, path: &str, body: Value) -> Value {
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

    pub async fn open(&self, url: &str) {
        self.call("url", json!({"url": url})).await;
    }

    pub async fn element(&self, css: &str) -> String {
        let found = self
            .call("element", json!({"using": "css selector", "value": css}))
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(&format!("element/{id}/value"), json!({"text": text}))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(&format!("element/{id}/click"), json!({})).await;
    }

    /// The page's `#result` once its script has written it.
    pub async fn result(&self) -> Value {
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

impl Browser {
    /// A DevTools command on the current page (through chromedriver).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call("goog/cdp/execute", json!({"cmd": cmd, "params": params}))
            .await
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call("execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// The text of the first element matching `css` (waiting for it).
    pub async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.read(&format!("element/{id}/text")).await
    }

    /// The page's URL.
    pub async fn url(&self) -> String {
        self.read("url").await
    }

    /// A WebDriver GET of the session's `path`: its string `value`.
    async fn read(&self, path: &str) -> String {
        let resp: Value = self
            .http
            .get(format!("{}/session/{}/{path}", self.base, self.session))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["value"].as_str().unwrap_or_default().to_string()
    }

    /// Waits until `css` matches an element; at the deadline, fails with the page's visible
    /// errors (its `.error` paragraphs) and its URL. (Errors are not a reason to stop early:
    /// the page before a navigation may still show its own.)
    pub async fn wait_for(&self, css: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let found = self
                .run(
                    "const el = document.querySelector(arguments[0]); if (el) return 'found'; \
                     const errs = [...document.querySelectorAll('.error')].filter(e => !e.hidden).map(e => e.textContent); \
                     return errs.join(' | ');",
                    json!([css]),
                )
                .await;
            if found.as_str() == Some("found") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never appeared at {}; the page says: {}",
                self.url().await,
                found.as_str().unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's URL contains `fragment` (a navigation has landed).
    pub async fn wait_for_url(&self, fragment: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let url = self.url().await;
            if url.contains(fragment) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never reached {fragment}; at {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot as `target/screenshots/<name>.png` (for review; not committed).
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(self.read("screenshot").await)
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}
