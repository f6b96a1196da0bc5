//! Load benchmark over loopback against the real release binary.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- [SECONDS] [CONCURRENCY] [--users N]
//! ```
//!
//! First measures the floor: a bare poem handler (`GET /healthz` answering `ok`, no
//! middleware) built into this binary, started as its own process the same way. Then starts
//! `target/release/portcullis serve` (override with `PORTCULLIS_BIN`) on a free port with a
//! temporary data dir and the production scrypt cost, and measures, each for SECONDS
//! (default 5) with CONCURRENCY (default 32) client tasks, printing each as req/s, latency
//! percentiles and the ratio to the floor. With two or more cores the servers are pinned to
//! core 0 and the load generator to core 1, so they do not compete for one core.
//! Scenarios:
//! start-up time to the first 200, idle memory (RSS), `/healthz` (the floor: poem plus our
//! middleware), authenticated `GET /api/v1/me`, `client_credentials` issuance and
//! introspection, the auth-server document's `/oauth/check_token`, token refresh, login
//! (scrypt-bound), and
//! `/api/v1/me` latency, idle and while logins flood the hashing threads (at 4 and at
//! CONCURRENCY connections), and refresh rotation on both the native and the OAuth endpoint.
//! With `--postgres URL` (an empty database, created beforehand): instead of the above, the
//! same release binary on PostgreSQL, first one node and then three nodes on one database
//! (every node pinned to core 0 with the others, PostgreSQL unpinned), each measuring
//! `GET /api/v1/me`, refresh rotation and registration with requests spread over the nodes.
//! With `--users N`: N accounts imported with `portcullis import` against 1,000, the import
//! time, bytes per user, start-up time, and sign-in, `/me` and introspection latency at each.
//! Client and server share the machine, so absolute numbers are a lower bound; compare them
//! with each other.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const PASSWORD: &str = "Tr0ub4dor&3-lilac-orbit";

/// Set (to a port) in the environment of the floor server: this binary re-executed.
const FLOOR_ENV: &str = "PORTCULLIS_BENCH_FLOOR";

/// The floor: poem with one handler and nothing else.
fn run_floor(port: u16) {
    use poem::{Route, get, handler};
    #[handler]
    fn ok() -> &'static str {
        "ok"
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let app = Route::new().at("/healthz", get(ok));
            poem::Server::new(poem::listener::TcpListener::bind(format!(
                "127.0.0.1:{port}"
            )))
            .run(app)
            .await
            .expect("the floor server runs");
        });
}

/// The machine's cores, read before this process pins itself (which narrows what
/// `available_parallelism` reports).
static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Whether there are cores enough to keep servers and load apart.
fn can_pin() -> bool {
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) >= 2
}

/// Restricts the calling thread (and threads it starts later) to one core.
fn pin_to(core: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A server command pinned to core 0 when the machine has two cores or more.
fn server_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    if can_pin() {
        use std::os::unix::process::CommandExt;
        // SAFETY: sched_setaffinity is async-signal-safe; it runs in the child before exec.
        unsafe {
            cmd.pre_exec(|| pin_to(0));
        }
    }
    cmd
}

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn release_binary() -> String {
    std::env::var("PORTCULLIS_BIN").unwrap_or_else(|_| "target/release/portcullis".into())
}

async fn start_server(client: &reqwest::Client) -> (Server, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_path_buf();
    start_server_on(client, dir, &data).await
}

/// Starts the release binary on `data` (kept alive by `dir`); returns it with the time from
/// spawning to the first 200 on `/healthz`.
async fn start_server_on(
    client: &reqwest::Client,
    dir: tempfile::TempDir,
    data: &std::path::Path,
) -> (Server, Duration) {
    let bin = release_binary();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let child = server_command(&bin)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} ({e}); run `cargo build --release` first"));
    let server = Server {
        child,
        base,
        _dir: dir,
    };
    loop {
        if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
            && r.status().is_success()
        {
            return (server, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What one request came to.
enum Attempt {
    Ok,
    Error,
    /// Refused with 503 and `Retry-After`: a well-behaved client waits that long.
    Shed(Duration),
}

impl From<bool> for Attempt {
    fn from(ok: bool) -> Self {
        if ok { Attempt::Ok } else { Attempt::Error }
    }
}

/// A login's outcome, honouring `Retry-After` on a 503 (capped at 2 s for the bench).
async fn login_attempt(c: &reqwest::Client, base: &str, login: String) -> Attempt {
    match c
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"login": login, "password": PASSWORD}))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Attempt::Ok,
        Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
            let secs = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(1);
            Attempt::Shed(Duration::from_secs(secs.min(2)))
        }
        _ => Attempt::Error,
    }
}

struct Stats {
    requests: usize,
    errors: usize,
    /// Refused at once with 503 (not in the latencies).
    shed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// One line: req/s, percentiles, and the ratio to `floor` req/s.
    fn print(&self, name: &str, floor: f64) {
        println!(
            "{name:<40} {:>9.0} req/s  {:>5.3}× floor   p50 {:>7.2} ms   p90 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} errors, {} shed)",
            self.rate(),
            self.rate() / floor,
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.requests,
            self.errors,
            self.shed
        );
    }
}

/// Runs `make_request` from `concurrency` tasks for `seconds`, collecting latencies.
async fn load<F, Fut, O>(concurrency: usize, seconds: u64, make_request: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = O> + Send,
    O: Into<Attempt>,
{
    let make_request = Arc::new(make_request);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let make_request = make_request.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut errors, mut shed) = (0, 0);
            while Instant::now() < deadline {
                let t = Instant::now();
                match make_request(worker).await.into() {
                    Attempt::Ok => lat.push(t.elapsed()),
                    Attempt::Error => {
                        errors += 1;
                        lat.push(t.elapsed());
                    }
                    Attempt::Shed(wait) => {
                        shed += 1;
                        let left = deadline.saturating_duration_since(Instant::now());
                        tokio::time::sleep(wait.min(left)).await;
                    }
                }
            }
            (lat, errors, shed)
        }));
    }
    let mut latencies = Vec::new();
    let (mut errors, mut shed) = (0, 0);
    for t in tasks {
        let (l, e, s) = t.await.expect("worker");
        latencies.extend(l);
        errors += e;
        shed += s;
    }
    latencies.sort();
    Stats {
        requests: latencies.len(),
        errors,
        shed,
        elapsed: started.elapsed(),
        latencies,
    }
}

/// Where the bench's OAuth client is sent back to (nothing listens: the code is read from the
/// redirect itself).
const BENCH_REDIRECT: &str = "http://127.0.0.1:9/cb";

/// The value of a hidden form field in one of our pages.
fn scrape(html: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} in the page"))
        + marker.len();
    html[start..start + html[start..].find('"').expect("closing quote")].to_string()
}

/// Runs the authorization-code flow with PKCE as a browser would (authorize, login page,
/// consent page) for `login`, and redeems the code: the token response.
async fn authorization_code_tokens(
    base: &str,
    client_id: &str,
    secret: &str,
    login: &str,
) -> Value {
    use base64::Engine as _;
    use sha2::Digest as _;
    let browser = portcullis::outbound::client_builder()
        .expect("TLS set-up")
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let verifier = "bench-pkce-verifier-0123456789-0123456789-0123456789";
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", BENCH_REDIRECT),
            ("scope", "openid"),
            ("state", "bench"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let location = |r: &reqwest::Response| -> String {
        r.headers()["location"].to_str().expect("ASCII").to_string()
    };
    let absolute = |loc: String| {
        if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc
        }
    };
    let mut next = format!("{base}/oauth2/authorize?{query}");
    let redirect = loop {
        let resp = browser.get(&next).send().await.expect("authorize");
        if resp.status().is_redirection() {
            next = absolute(location(&resp));
        } else {
            let html = resp.text().await.expect("page");
            let (request, csrf) = (scrape(&html, "request"), scrape(&html, "csrf"));
            let post = if next.contains("/ui/login") {
                browser.post(format!("{base}/ui/login")).form(&[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("login", login),
                    ("password", PASSWORD),
                ])
            } else {
                browser.post(format!("{base}/ui/consent")).form(&[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("decision", "allow"),
                ])
            };
            next = absolute(location(&post.send().await.expect("form")));
        }
        if next.starts_with(BENCH_REDIRECT) {
            break next;
        }
    };
    let code = url::Url::parse(&redirect)
        .expect("redirect")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code in {redirect}"))
        .1
        .into_owned();
    browser
        .post(format!("{base}/oauth2/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", BENCH_REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json")
}

/// Makes `bench{i}` a developer and creates a confidential client for every OAuth scenario:
/// `(client_id, client_secret)`.
async fn bench_client(client: &reqwest::Client, base: &str, developer: &str) -> (String, String) {
    client
        .post(format!("{base}/api/v1/me/developer"))
        .bearer_auth(developer)
        .send()
        .await
        .expect("developer role");
    let created: Value = client
        .post(format!("{base}/api/v1/clients"))
        .bearer_auth(developer)
        .json(&json!({"name": "bench", "redirect_uris": [BENCH_REDIRECT],
                      "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                      "scopes": ["openid", "bench"]}))
        .send()
        .await
        .expect("client")
        .json()
        .await
        .expect("json");
    (
        created["client_id"]
            .as_str()
            .expect("client_id")
            .to_string(),
        created["client_secret"]
            .as_str()
            .expect("secret")
            .to_string(),
    )
}

/// Refresh-token rotation: each worker keeps its own token family and replaces its token
/// with the one each answer carries.
async fn refresh_load(
    concurrency: usize,
    seconds: u64,
    tokens: Arc<Vec<tokio::sync::Mutex<String>>>,
    send: impl Fn(String) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Stats {
    let send = Arc::new(send);
    load(concurrency, seconds, move |w| {
        let (tokens, send) = (tokens.clone(), send.clone());
        async move {
            let mut token = tokens[w].lock().await;
            let Ok(resp) = send(token.clone()).send().await else {
                return false;
            };
            match resp.json::<Value>().await {
                Ok(v) if v["refresh_token"].is_string() => {
                    *token = v["refresh_token"].as_str().unwrap_or_default().to_string();
                    true
                }
                _ => false,
            }
        }
    })
    .await
}

/// `GET /api/v1/me` from `concurrency` clients with the given tokens.
/// Starts the release binary with `args` after `serve --listen <free port>`; waits for its
/// first 200.
async fn start_node(client: &reqwest::Client, args: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = server_command(&release_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the release binary starts; run `cargo build --release` first");
    let server = Server {
        child,
        base,
        _dir: dir,
    };
    let started = Instant::now();
    while !client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a node did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server
}

/// Registers `n` users named `<prefix><i>`, spread over `bases`: their access tokens and
/// (lockable, for rotation) refresh tokens.
async fn register_users(
    client: &reqwest::Client,
    bases: &[String],
    prefix: &str,
    n: usize,
) -> (Arc<Vec<String>>, Arc<Vec<tokio::sync::Mutex<String>>>) {
    let mut access = Vec::new();
    let mut refresh = Vec::new();
    for i in 0..n {
        let body: Value = client
            .post(format!("{}/api/v1/users", bases[i % bases.len()]))
            .json(&json!({"username": format!("{prefix}{i}"), "email": format!("{prefix}{i}@example.test"), "password": PASSWORD}))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("json");
        access.push(body["access_token"].as_str().expect("token").to_string());
        refresh.push(tokio::sync::Mutex::new(
            body["refresh_token"].as_str().expect("token").to_string(),
        ));
    }
    (Arc::new(access), Arc::new(refresh))
}

/// `nodes` servers on the PostgreSQL database `url`, requests spread round-robin over them.
async fn bench_postgres(
    client: &reqwest::Client,
    url: &str,
    nodes: usize,
    concurrency: usize,
    seconds: u64,
    floor: f64,
) {
    println!("\nPostgreSQL, {nodes} node(s) on one database:");
    let mut servers = Vec::new();
    for _ in 0..nodes {
        // Registration cost is not what is measured here: a cheaper hash.
        servers.push(start_node(client, &["--database-url", url, "--scrypt-log-n", "12"]).await);
    }
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let (access, refresh) =
        register_users(client, &bases, &format!("pg{nodes}n"), concurrency).await;
    let (c, b, a) = (client.clone(), bases.clone(), access.clone());
    load(concurrency, seconds, move |w| {
        let (c, base, token) = (c.clone(), b[w % b.len()].clone(), a[w].clone());
        async move {
            c.get(format!("{base}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
    .print(&format!("  GET /api/v1/me ({nodes} node(s))"), floor);
    let (c, b) = (client.clone(), bases.clone());
    let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    refresh_load(concurrency, seconds, refresh, move |token| {
        let i = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.post(format!("{}/api/v1/sessions/refresh", b[i % b.len()]))
            .json(&json!({"refresh_token": token}))
    })
    .await
    .print(
        &format!("  POST /api/v1/sessions/refresh ({nodes} node(s))"),
        floor,
    );
    let (c, b) = (client.clone(), bases.clone());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    load(concurrency, seconds, move |_| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (c, base) = (c.clone(), b[n % b.len()].clone());
        async move {
            c.post(format!("{base}/api/v1/users"))
                .json(&json!({"username": format!("r{nodes}x{n}"), "email": format!("r{nodes}x{n}@example.test"), "password": PASSWORD}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
    .print(&format!("  POST /api/v1/users, hash 2^12 ({nodes} node(s))"), floor);
    drop(servers);
}

async fn me_load(
    client: &reqwest::Client,
    base: &str,
    tokens: Arc<Vec<String>>,
    concurrency: usize,
    seconds: u64,
) -> Stats {
    let (c, b) = (client.clone(), base.to_string());
    load(concurrency, seconds, move |w| {
        let (c, b, token) = (c.clone(), b.clone(), tokens[w % tokens.len()].clone());
        async move {
            c.get(format!("{b}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
}

/// `POST /oauth2/introspect` of the given tokens by the bench client.
async fn introspect_load(
    client: &reqwest::Client,
    base: &str,
    (id, secret): (String, String),
    tokens: Arc<Vec<String>>,
    concurrency: usize,
    seconds: u64,
) -> Stats {
    let (c, b) = (client.clone(), base.to_string());
    load(concurrency, seconds, move |w| {
        let (c, b, id, secret, token) = (
            c.clone(),
            b.clone(),
            id.clone(),
            secret.clone(),
            tokens[w % tokens.len()].clone(),
        );
        async move {
            c.post(format!("{b}/oauth2/introspect"))
                .basic_auth(id, Some(secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
}

/// What one population size measured.
struct Population {
    users: u64,
    import: Duration,
    bytes_per_user: f64,
    startup: Duration,
    login: Stats,
    me: Stats,
    introspect: Stats,
}

/// Imports `users` accounts (one production-cost scrypt hash shared by all: import cost does
/// not depend on it) with `portcullis import`, starts the server on them and measures
/// start-up, sign-in latency (one at a time), `/me` and introspection.
async fn population(
    client: &reqwest::Client,
    users: u64,
    phc: &str,
    seconds: u64,
    concurrency: usize,
) -> Population {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("users.jsonl");
    let data = dir.path().join("data");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("file"));
        for i in 0..users {
            writeln!(
                out,
                "{}",
                json!({"username": format!("user{i}"), "email": format!("user{i}@example.test"),
                       "display_name": format!("User {i}"), "password_hash": phc,
                       "email_verified": true})
            )
            .expect("write");
        }
        out.flush().expect("flush");
    }
    println!("importing {users} users…");
    let started = Instant::now();
    let status = Command::new(release_binary())
        .args(["import", "--file"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .status()
        .expect("portcullis import runs");
    assert!(status.success(), "the import failed");
    let import = started.elapsed();
    std::fs::remove_file(&file).expect("remove the input");
    let bytes = std::fs::metadata(data.join("portcullis.redb"))
        .expect("the database")
        .len();
    let (server, startup) = start_server_on(client, dir, &data).await;
    let base = server.base.clone();
    // Sign-in latency one at a time, spread over the whole population.
    let mut login_latencies = Vec::new();
    let mut tokens = Vec::new();
    for k in 0..8u64 {
        let login = format!("user{}", k * (users / 8));
        let t = Instant::now();
        let body: Value = client
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"login": login, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        login_latencies.push(t.elapsed());
        tokens.push(body["access_token"].as_str().expect("a token").to_string());
    }
    login_latencies.sort();
    let login = Stats {
        requests: login_latencies.len(),
        errors: 0,
        shed: 0,
        elapsed: login_latencies.iter().sum(),
        latencies: login_latencies,
    };
    let bench_client = bench_client(client, &base, &tokens[0]).await;
    let tokens = Arc::new(tokens);
    let me = me_load(client, &base, tokens.clone(), concurrency, seconds).await;
    let introspect =
        introspect_load(client, &base, bench_client, tokens, concurrency, seconds).await;
    drop(server);
    Population {
        users,
        import,
        bytes_per_user: bytes as f64 / users as f64,
        startup,
        login,
        me,
        introspect,
    }
}

/// The scale figures: `users` accounts against 1,000, in the same run.
async fn scale(client: &reqwest::Client, users: u64, seconds: u64, concurrency: usize) {
    use scrypt::password_hash::{PasswordHasher as _, SaltString};
    println!("\nscale: {users} users against 1000, same settings");
    let salt = SaltString::encode_b64(b"bench-salt-16byt").expect("salt");
    let phc = scrypt::Scrypt
        .hash_password_customized(
            PASSWORD.as_bytes(),
            None,
            None,
            scrypt::Params::new(17, 8, 1, 32).expect("params"),
            &salt,
        )
        .expect("hash")
        .to_string();
    let small = population(client, 1000, &phc, seconds, concurrency).await;
    let large = population(client, users, &phc, seconds, concurrency).await;
    for p in [&small, &large] {
        println!(
            "{:>8} users: imported in {:>6.1} s ({:>7.0}/s), {:>6.0} bytes/user, start to first 200 {:>5.1} ms",
            p.users,
            p.import.as_secs_f64(),
            p.users as f64 / p.import.as_secs_f64(),
            p.bytes_per_user,
            p.startup.as_secs_f64() * 1000.0
        );
    }
    for (name, a, b) in [
        ("login (one at a time)", &small.login, &large.login),
        ("GET /api/v1/me", &small.me, &large.me),
        (
            "POST /oauth2/introspect",
            &small.introspect,
            &large.introspect,
        ),
    ] {
        println!(
            "{name:<26} p50 {:>7.2} → {:>7.2} ms ({:.2}×)   p99 {:>7.2} → {:>7.2} ms ({:.2}×)",
            a.pct(0.5),
            b.pct(0.5),
            b.pct(0.5) / a.pct(0.5),
            a.pct(0.99),
            b.pct(0.99),
            b.pct(0.99) / a.pct(0.99),
        );
    }
}

fn main() {
    if let Some(port) = std::env::var(FLOOR_ENV).ok().and_then(|p| p.parse().ok()) {
        return run_floor(port);
    }
    // The load generator on core 1 (its runtime's threads inherit it), the servers on core 0.
    if can_pin()
        && let Err(e) = pin_to(1)
    {
        eprintln!("could not pin the load generator ({e}); running unpinned");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench());
}

/// The store's write and durable-commit counters from `/metrics`.
async fn store_counters(client: &reqwest::Client, base: &str) -> (u64, u64) {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let read = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        read("portcullis_store_commits_total "),
        read("portcullis_store_durable_commits_total "),
    )
}

/// Starts the floor server and measures `GET /healthz` on it; returns req/s.
async fn measure_floor(client: &reqwest::Client, concurrency: usize, seconds: u64) -> f64 {
    let port = free_port();
    let exe = std::env::current_exe().expect("this binary");
    let mut child = server_command(exe.to_str().expect("a UTF-8 path"))
        .env(FLOOR_ENV, port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("the floor server starts");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let started = Instant::now();
    while !client
        .get(&url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the floor server did not start"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (c, u) = (client.clone(), url.clone());
    let stats = load(concurrency, seconds, move |_| {
        let (c, u) = (c.clone(), u.clone());
        async move { c.get(u).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let floor = stats.rate();
    stats.print("floor: bare poem GET /healthz", floor);
    floor
}

async fn bench() {
    let mut positional = Vec::new();
    let mut users: Option<u64> = None;
    let mut postgres: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--users" => users = args.next().and_then(|n| n.parse().ok()),
            "--postgres" => postgres = args.next(),
            _ => positional.push(arg),
        }
    }
    let seconds: u64 = positional.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = positional.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let client = portcullis::outbound::client_builder()
        .expect("TLS set-up")
        .pool_max_idle_per_host(concurrency * 2)
        .build()
        .expect("client");

    println!(
        "cores: {}; servers {}",
        CORES.get().copied().unwrap_or(1),
        if can_pin() {
            "pinned to core 0, load generator to core 1"
        } else {
            "and load generator unpinned"
        }
    );
    let floor = measure_floor(&client, concurrency, seconds).await;
    if let Some(url) = postgres {
        for nodes in [1, 3] {
            bench_postgres(&client, &url, nodes, concurrency, seconds, floor).await;
        }
        return;
    }
    println!("starting the server…");
    let (server, startup) = start_server(&client).await;
    let base = server.base.clone();
    // Idle: after the start-up work (the first password hash warms scrypt's 128 MiB, then
    // frees it; the id_token keys are made in the background).
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "start to first 200 on /healthz      {:.1} ms",
        startup.as_secs_f64() * 1000.0
    );
    if let Some(kib) = rss_kib(server.child.id()) {
        println!(
            "idle memory (RSS)                   {:.1} MiB",
            kib as f64 / 1024.0
        );
    }

    println!("registering {concurrency} users (production scrypt cost)…");
    let (access, refresh) =
        register_users(&client, std::slice::from_ref(&base), "bench", concurrency).await;

    // A developer's confidential client for the OAuth scenarios, and a token family per
    // worker from the authorization-code flow, for refresh rotation on `/oauth2/token`.
    let (client_id, client_secret) = bench_client(&client, &base, &access[0]).await;
    println!("signing {concurrency} users in through the authorization-code flow…");
    let mut oauth_refresh = Vec::new();
    for i in 0..concurrency {
        let tokens =
            authorization_code_tokens(&base, &client_id, &client_secret, &format!("bench{i}"))
                .await;
        oauth_refresh.push(tokio::sync::Mutex::new(
            tokens["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_string(),
        ));
    }
    let oauth_refresh = Arc::new(oauth_refresh);
    println!("running each scenario for {seconds} s with {concurrency} concurrent clients\n");

    let (c, b) = (client.clone(), base.clone());
    load(concurrency, seconds, move |_| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            c.get(format!("{b}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
    .print("GET /healthz (portcullis: our middleware)", floor);

    me_load(&client, &base, access.clone(), concurrency, seconds)
        .await
        .print("GET /api/v1/me (token verify)", floor);

    let (c, b, id, secret) = (
        client.clone(),
        base.clone(),
        client_id.clone(),
        client_secret.clone(),
    );
    load(concurrency, seconds, move |_| {
        let (c, b, id, secret) = (c.clone(), b.clone(), id.clone(), secret.clone());
        async move {
            c.post(format!("{b}/oauth2/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
    .print("POST /oauth2/token client_credentials", floor);

    introspect_load(
        &client,
        &base,
        (client_id.clone(), client_secret.clone()),
        access.clone(),
        concurrency,
        seconds,
    )
    .await
    .print("POST /oauth2/introspect", floor);

    // The Spring-style check of the auth-server document: same lookup, no client auth.
    let (c, b, a) = (client.clone(), base.clone(), access.clone());
    load(concurrency, seconds, move |w| {
        let (c, b, token) = (c.clone(), b.clone(), a[w].clone());
        async move {
            c.post(format!("{b}/oauth/check_token"))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
    .print("POST /oauth/check_token (compatible API)", floor);

    let commits_before = store_counters(&client, &base).await;
    let (c, b) = (client.clone(), base.clone());
    refresh_load(concurrency, seconds, refresh.clone(), move |token| {
        c.post(format!("{b}/api/v1/sessions/refresh"))
            .json(&json!({"refresh_token": token}))
    })
    .await
    .print("POST /api/v1/sessions/refresh", floor);
    let (c, b, id, secret) = (
        client.clone(),
        base.clone(),
        client_id.clone(),
        client_secret.clone(),
    );
    refresh_load(concurrency, seconds, oauth_refresh, move |token| {
        c.post(format!("{b}/oauth2/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
    })
    .await
    .print("POST /oauth2/token refresh_token", floor);
    let commits_after = store_counters(&client, &base).await;
    let (writes, fsyncs) = (
        commits_after.0 - commits_before.0,
        (commits_after.1 - commits_before.1).max(1),
    );
    println!(
        "  group commit: {writes} writes in {fsyncs} durable commits ({:.1} writes per fsync)",
        writes as f64 / fsyncs as f64
    );

    let (c, b) = (client.clone(), base.clone());
    load(concurrency, seconds, move |w| {
        let (c, b) = (c.clone(), b.clone());
        async move { login_attempt(&c, &b, format!("bench{w}")).await }
    })
    .await
    .print("POST /api/v1/sessions (login)", floor);

    // `/me` p99 idle and while logins saturate the hashing threads, at 4 and at
    // CONCURRENCY connections.
    for me_connections in [4, concurrency] {
        let idle = me_load(&client, &base, access.clone(), me_connections, seconds).await;
        let flood = {
            let (c, b) = (client.clone(), base.clone());
            tokio::spawn(load(concurrency, seconds, move |w| {
                let (c, b) = (c.clone(), b.clone());
                async move { login_attempt(&c, &b, format!("bench{w}")).await }
            }))
        };
        let busy = me_load(&client, &base, access.clone(), me_connections, seconds).await;
        let flood = flood.await.expect("flood");
        idle.print(
            &format!("GET /api/v1/me idle, {me_connections} conns"),
            floor,
        );
        busy.print(
            &format!("  … during a login flood, {me_connections} conns"),
            floor,
        );
        flood.print("  (the login flood itself)", floor);
        println!(
            "  /me p99 during the flood ÷ idle p99: {:.2}×",
            busy.pct(0.99) / idle.pct(0.99)
        );
    }
    // After every scenario (tens of thousands of durable writes): RSS stays within redb's
    // page cache (--cache-size, 64 MiB by default) plus the process's own overhead.
    if let Some(kib) = rss_kib(server.child.id()) {
        println!(
            "memory after the run (RSS)          {:.1} MiB (page cache limit 64 MiB)",
            kib as f64 / 1024.0
        );
    }
    drop(server);
    if let Some(users) = users {
        scale(&client, users, seconds, concurrency).await;
    }
}
