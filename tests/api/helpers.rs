//! `spawn_app()` and `TestApp`: one method per API call, so tests read like what a client does.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use portcullis::{Application, ServeConfig, clock::Clock, service::Services};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};

/// Fixed issuer, so tokens stay valid across a restart on another port.
pub const ISSUER: &str = "http://portcullis.localhost";
/// A password zxcvbn rates strong.
pub const PASSWORD: &str = "Tr0ub4dor&3-lilac-orbit";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub services: Services,
    pub config: ServeConfig,
    data_dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// A registered user and their first session.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// The flags that point a CLI command at `config`'s database: its data directory, or its
/// PostgreSQL database on the `postgres::` copy of the suite.
pub fn store_args(config: &ServeConfig) -> Vec<std::ffi::OsString> {
    match &config.database_url {
        Some(url) => vec!["--database-url".into(), url.into()],
        None => vec![
            "--data-dir".into(),
            config.data_dir.clone().into_os_string(),
        ],
    }
}

/// Whether the running test is one of the suite's `postgres::` copies (see `main.rs`): libtest
/// runs each test on a thread named after it, so the copy is told by its path.
pub fn on_postgres() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("postgres::"))
}

pub fn test_config(dir: &TempDir) -> ServeConfig {
    let mut config = ServeConfig::defaults();
    if on_postgres()
        && let Some(cluster) = crate::pg::shared()
    {
        config.database_url = Some(crate::pg::fresh_database(cluster));
    }
    config.listen = "127.0.0.1:0".parse().expect("valid address");
    config.data_dir = dir.path().to_path_buf();
    config.public_url = Some(ISSUER.into());
    // Cheap hashing keeps the suite fast; the production default (17) is tested in units.
    config.scrypt_log_n = Some(10);
    // Tests run many at once on a loaded machine: a hash can take long there, and the shedding
    // of sign-ins (tested by its unit test) must not decide what other tests see.
    config.hash_queue_max_wait = 600_000;
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = test_config(&dir);
    adjust(&mut config);
    start(config, dir, Clock::manual()).await
}

pub async fn start(config: ServeConfig, data_dir: Arc<TempDir>, clock: Clock) -> TestApp {
    let app = Application::build_with_clock(&config, clock.clone())
        .await
        .expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let services = app.services().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    let client = http_client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds");
    TestApp {
        base,
        client,
        clock,
        services,
        config,
        data_dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// The server's socket address, for raw TCP tests.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .expect("base is http://<addr>")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and waits until the database is closed.
    pub async fn stop(mut self) -> (ServeConfig, Arc<TempDir>, Clock) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends cleanly");
        }
        (
            self.config.clone(),
            self.data_dir.clone(),
            self.clock.clone(),
        )
    }

    /// Stops and starts again on the same data directory and clock.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Stops and starts again on the same data directory and clock, with changed settings.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let (mut config, dir, clock) = self.stop().await;
        // `self.services` held a store handle; it was dropped with `self`, closing the file.
        adjust(&mut config);
        start(config, dir, clock).await
    }

    /// Stops the server and returns every byte it stored: the database file, or for
    /// PostgreSQL a copy of every table in a file (so "this secret is nowhere in the
    /// database" is checked on both backends).
    pub async fn stored_bytes(self) -> Vec<u8> {
        let store = self.services.store.clone();
        let (config, dir, _) = self.stop().await;
        if config.database_url.is_none() {
            drop(store);
            return std::fs::read(dir.path().join("portcullis.redb")).expect("the data file");
        }
        let copy = tempfile::tempdir().expect("temp dir");
        let path = copy.path().join("copy.redb");
        let read = path.clone();
        tokio::task::spawn_blocking(move || store.backup_to(&path, |_, _| {}))
            .await
            .expect("backup task")
            .expect("backup");
        std::fs::read(read).expect("the copy")
    }

    pub async fn table_count(&self, table: &str) -> u64 {
        let counts = self
            .services
            .store
            .run(|s| s.table_counts())
            .await
            .expect("counts");
        counts
            .into_iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| n)
            .unwrap_or_else(|| panic!("no table {table}"))
    }

    pub async fn register(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/v1/users"))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers `name` (email `<name>@example.test`) and returns the session.
    pub async fn register_user(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.test");
        let resp = self
            .register(&json!({"username": name, "email": email, "password": PASSWORD}))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "registering {name}");
        let body: Value = resp.json().await.expect("json");
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_string(),
            access_token: body["access_token"].as_str().expect("access").to_string(),
            refresh_token: body["refresh_token"].as_str().expect("refresh").to_string(),
        }
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/sessions"))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .expect("request")
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/api/v1/sessions/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .expect("request")
    }

    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/api/v1/sessions/logout"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_me(&self, token: &str) -> Response {
        self.client
            .get(self.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_me_with_api_key_header(&self, key: &str) -> Response {
        self.client
            .get(self.url("/api/v1/me"))
            .header("X-Api-Key", key)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_me(&self, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url("/api/v1/me"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Response {
        self.client
            .put(self.url("/api/v1/me/password"))
            .bearer_auth(token)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
            .await
            .expect("request")
    }

    pub async fn rotate_api_key(&self, token: &str) -> Response {
        self.client
            .post(self.url("/api/v1/me/api-key"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn become_developer(&self, token: &str) -> Response {
        self.client
            .post(self.url("/api/v1/me/developer"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn username_availability(&self, name: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/usernames/{name}")))
            .send()
            .await
            .expect("request")
    }

    pub async fn request_code(&self, email: &str, purpose: &str) -> Response {
        self.client
            .post(self.url("/api/v1/verification-codes"))
            .json(&json!({"email": email, "purpose": purpose}))
            .send()
            .await
            .expect("request")
    }

    pub async fn reset_password(&self, email: &str, code: &str, new_password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/password-resets"))
            .json(&json!({"email": email, "code": code, "new_password": new_password}))
            .send()
            .await
            .expect("request")
    }

    pub async fn create_captcha(&self) -> Response {
        self.client
            .post(self.url("/api/v1/captchas"))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_config(&self) -> Value {
        self.client
            .get(self.url("/api/v1/config"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    pub async fn upload_avatar(
        &self,
        token: &str,
        file_name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Response {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str(mime)
            .expect("mime");
        self.client
            .put(self.url("/api/v1/me/avatar"))
            .bearer_auth(token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_avatar(&self, token: &str) -> Response {
        self.client
            .delete(self.url("/api/v1/me/avatar"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_avatar(&self, user_id: &str, if_none_match: Option<&str>) -> Response {
        let mut req = self
            .client
            .get(self.url(&format!("/api/v1/users/{user_id}/avatar")));
        if let Some(tag) = if_none_match {
            req = req.header("If-None-Match", tag);
        }
        req.send().await.expect("request")
    }

    /// Registers `name` and gives them the developer role.
    pub async fn register_developer(&self, name: &str) -> TestUser {
        let user = self.register_user(name).await;
        assert_eq!(
            self.become_developer(&user.access_token).await.status(),
            StatusCode::OK
        );
        user
    }

    pub async fn create_client(&self, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url("/api/v1/clients"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Sends `method` to `/api/v1/clients{suffix}` with an optional JSON body.
    pub async fn clients_call(
        &self,
        method: reqwest::Method,
        token: &str,
        suffix: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self
            .client
            .request(method, self.url(&format!("/api/v1/clients{suffix}")))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("request")
    }

    /// POSTs a form to an `/oauth2/...` endpoint, with optional HTTP Basic client credentials.
    pub async fn oauth_post(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Response {
        let mut req = self
            .client
            .post(self.url(&format!("/oauth2/{endpoint}")))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.expect("request")
    }

    /// POSTs raw bytes with a given content type (for malformed-input tests).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.expect("request")
    }
}

/// Reads a problem+json answer, checking the media type and that `status` matches.
pub async fn problem(resp: Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        ct.starts_with("application/problem+json"),
        "content type was {ct:?}"
    );
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
    body
}

/// A PNG of random pixels (so it does not compress), tinted by `rgb`.
pub fn noisy_png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        let noise: [u8; 3] = rand::random();
        image::Rgb([rgb[0] ^ noise[0], rgb[1] ^ noise[1], rgb[2] ^ noise[2]])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encodes");
    out.into_inner()
}

/// Sends `req`; the answer must be HTTP 200 with a JSON body, which is returned.
async fn expect_ok(path: &str, req: reqwest::RequestBuilder) -> Value {
    let (status, body) = status_json(req.send().await.expect("request")).await;
    assert_eq!(status, StatusCode::OK, "{path} answered {body}");
    body
}

/// Reads a JSON answer of a compatible API, returning the HTTP status with it.
pub async fn status_json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
    (status, body)
}

impl TestApp {
    /// POSTs a JSON body to `path`; the answer must be HTTP 200 (the compatible APIs put
    /// their codes in the body).
    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        let req = self.client.post(self.url(path)).json(body);
        expect_ok(path, req).await
    }

    /// POSTs form fields to `path`; the answer must be HTTP 200.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let req = self.client.post(self.url(path)).form(form);
        expect_ok(path, req).await
    }

    /// GETs `path`; the answer must be 200 with a JSON body, which is returned.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.expect("JSON body")
    }

    /// `GET path` with `token` as the bearer; insists on a 200 and returns the JSON answer.
    pub async fn get_json_as(&self, token: &str, path: &str) -> Value {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.expect("JSON body")
    }

    /// Sends `method` to `path` with no body; returns the status and the JSON answer.
    pub async fn send_bare(&self, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .request(method, self.url(path))
            .send()
            .await
            .expect("request");
        status_json(resp).await
    }

    /// A captcha challenge and its answer, straight from the service: the test plays the
    /// human who reads the image.
    pub async fn solved_captcha(&self) -> (String, String) {
        let c = self.services.captchas.create().await.expect("captcha");
        (c.id, c.answer)
    }
}

/// Serves `routes` on `listener` in the background: the small in-test servers (an
/// application's page, an upstream provider).
pub fn serve<E>(listener: tokio::net::TcpListener, routes: E)
where
    E: poem::IntoEndpoint + Send + 'static,
    E::Endpoint: 'static,
{
    tokio::spawn(async move {
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("a bound listener");
        let _ = poem::Server::new_with_acceptor(acceptor).run(routes).await;
    });
}

/// A browser: cookies kept, redirects not followed.
/// A reqwest builder with the TLS set-up the crate uses (reqwest has no default provider).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    portcullis::outbound::client_builder().expect("TLS set-up")
}

pub fn browser() -> reqwest::Client {
    http_client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// The `Location` of a redirect.
pub fn location(resp: &Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {}", resp.status()))
        .to_str()
        .expect("ASCII location")
        .to_string()
}

/// The value of a hidden form field in a page.
pub fn scrape(html: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').expect("closing quote")].to_string()
}

/// Signs `login` in on `/ui/login` with no application waiting (the account flow); returns
/// the answer to the form.
pub async fn sign_in_page(
    app: &TestApp,
    browser: &reqwest::Client,
    login: &str,
    password: &str,
) -> Response {
    let page = browser.get(app.url("/ui/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    browser
        .post(app.url("/ui/login"))
        .form(&[
            ("request", ""),
            ("csrf", &scrape(&html, "csrf")),
            ("login", login),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// A cookie-keeping client signed in as `login` (password [`PASSWORD`]) on the pages.
pub async fn page_signed_in(app: &TestApp, login: &str) -> reqwest::Client {
    let b = browser();
    let done = sign_in_page(app, &b, login, PASSWORD).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "{login} signs in");
    b
}

/// Opens `url` (an authorization request) in `browser`, signs in on the login page as
/// `login`, allows on the consent page, and returns where the browser is finally sent.
pub async fn browser_sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    url: &str,
    login: &str,
    password: &str,
) -> String {
    let resp = browser.get(url).send().await.expect("request");
    assert!(
        resp.status().is_redirection(),
        "the authorization request redirects, got {}",
        resp.status()
    );
    let mut next = app.url(&location(&resp));
    loop {
        let resp = browser.get(&next).send().await.expect("request");
        if resp.status() == StatusCode::SEE_OTHER {
            let loc = location(&resp);
            if loc.starts_with('/') {
                next = app.url(&loc);
                continue;
            }
            return loc;
        }
        assert_eq!(resp.status(), StatusCode::OK);
        let path = next.clone();
        let html = resp.text().await.expect("page");
        let (request, csrf) = (scrape(&html, "request"), scrape(&html, "csrf"));
        let post = if path.contains("/ui/login") {
            browser.post(app.url("/ui/login")).form(&[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("login", login),
                ("password", password),
            ])
        } else {
            browser.post(app.url("/ui/consent")).form(&[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
            ])
        };
        let resp = post.send().await.expect("request");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "form answers are 303");
        let loc = location(&resp);
        if !loc.starts_with('/') {
            return loc;
        }
        next = app.url(&loc);
    }
}

/// Signs in on the login page at `login_path` (`/ui/login?request=…`) and stops where the
/// browser is sent next (the consent page), without consenting.
pub async fn browser_login_only(
    app: &TestApp,
    browser: &reqwest::Client,
    login_path: &str,
    login: &str,
    password: &str,
) -> String {
    let html = browser
        .get(app.url(login_path))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("page");
    let (request, csrf) = (scrape(&html, "request"), scrape(&html, "csrf"));
    let resp = browser
        .post(app.url("/ui/login"))
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("login", login),
            ("password", password),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    location(&resp)
}

/// Reports a test that cannot run on this machine: a printed `skipped: …` line on a developer's
/// machine, a failure where `PORTCULLIS_TEST_REQUIRE` (set by `.ci/run`) names `what`.
pub use crate::pg::required;

/// The real binary in a child process (`serve --dev` on a free port) with an open-file limit.
pub struct ChildServer {
    child: Child,
    pub port: u16,
    /// What it logged up to and including its "listening" line.
    pub startup_log: Vec<String>,
}

impl ChildServer {
    /// `serve --dev` (in memory) with `args`.
    pub fn start(nofile: u64, args: &[&str]) -> Self {
        Self::launch(nofile, &["--dev"], args)
    }

    /// `serve` on a real data file (pass `--data-dir`), as in production, with `args`.
    pub fn start_on_disk(args: &[&str]) -> Self {
        Self::launch(1024, &[], args)
    }

    /// Kills the process at once (SIGKILL): no shutdown, no flush.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn launch(nofile: u64, mode: &[&str], args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(mode)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("the server binary starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut startup_log = Vec::new();
        let port = loop {
            let line = lines
                .next()
                .expect("the server logs its address")
                .expect("readable log");
            startup_log.push(line.clone());
            assert!(
                !line.contains('\u{1b}'),
                "no colour codes when stderr is not a terminal: {line:?}"
            );
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                break digits.parse().expect("a port");
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            port,
            startup_log,
        }
    }

    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which is in parentheses): utime is the 14th field.
        let after = stat.rsplit_once(") ").unwrap().1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    pub async fn healthz(&self, within: Duration) -> Option<String> {
        self.get("/healthz", within).await
    }

    /// `GET path` on a fresh connection; the raw answer, if it comes `within`.
    pub async fn get(&self, path: &str, within: Duration) -> Option<String> {
        let get = async {
            let mut s = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
            let head = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
            s.write_all(head.as_bytes()).await.ok()?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.ok()?;
            Some(String::from_utf8_lossy(&out).into_owned())
        };
        tokio::time::timeout(within, get).await.ok().flatten()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
