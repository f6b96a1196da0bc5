//! Load benchmark over loopback against the real release binary.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- [SECONDS] [CONCURRENCY]
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
//! `/healthz` latency while logins flood the hashing pool. Client and server share the
//! machine, so absolute numbers are a lower bound; compare them with each other.

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

async fn start_server(client: &reqwest::Client) -> (Server, Duration) {
    let bin =
        std::env::var("PORTCULLIS_BIN").unwrap_or_else(|_| "target/release/portcullis".into());
    let dir = tempfile::tempdir().expect("temp dir");
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
        .arg(dir.path())
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
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32);
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
    let mut access = Vec::new();
    let mut refresh = Vec::new();
    for i in 0..concurrency {
        let body: Value = client
            .post(format!("{base}/api/v1/users"))
            .json(&json!({"username": format!("bench{i}"), "email": format!("bench{i}@example.test"), "password": PASSWORD}))
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
    let access = Arc::new(access);
    let refresh = Arc::new(refresh);

    // A developer's confidential client for the OAuth scenarios.
    let developer = access[0].clone();
    client
        .post(format!("{base}/api/v1/me/developer"))
        .bearer_auth(&developer)
        .send()
        .await
        .expect("developer role");
    let oauth_client: Value = client
        .post(format!("{base}/api/v1/clients"))
        .bearer_auth(&developer)
        .json(&json!({"name": "bench", "grant_types": ["client_credentials"], "scopes": ["bench"]}))
        .send()
        .await
        .expect("client")
        .json()
        .await
        .expect("json");
    let client_id = oauth_client["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    let client_secret = oauth_client["client_secret"]
        .as_str()
        .expect("secret")
        .to_string();
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

    let (c, b, a) = (client.clone(), base.clone(), access.clone());
    load(concurrency, seconds, move |w| {
        let (c, b, token) = (c.clone(), b.clone(), a[w].clone());
        async move {
            c.get(format!("{b}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
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

    let (c, b, id, secret, a) = (
        client.clone(),
        base.clone(),
        client_id.clone(),
        client_secret.clone(),
        access.clone(),
    );
    load(concurrency, seconds, move |w| {
        let (c, b, id, secret, token) = (
            c.clone(),
            b.clone(),
            id.clone(),
            secret.clone(),
            a[w].clone(),
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
    let (c, b, r) = (client.clone(), base.clone(), refresh.clone());
    load(concurrency, seconds, move |w| {
        let (c, b, r) = (c.clone(), b.clone(), r.clone());
        async move {
            let mut token = r[w].lock().await;
            let Ok(resp) = c
                .post(format!("{b}/api/v1/sessions/refresh"))
                .json(&json!({"refresh_token": *token}))
                .send()
                .await
            else {
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
    .print("POST /api/v1/sessions/refresh", floor);
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

    // p99 of a cheap endpoint while the hashing pool is saturated by logins.
    let flood = {
        let (c, b) = (client.clone(), base.clone());
        tokio::spawn(load(concurrency, seconds, move |w| {
            let (c, b) = (c.clone(), b.clone());
            async move {
                c.post(format!("{b}/api/v1/sessions"))
                    .json(&json!({"login": format!("bench{w}"), "password": PASSWORD}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        }))
    };
    let (c, b, a) = (client.clone(), base.clone(), access.clone());
    load(4, seconds, move |w| {
        let (c, b, token) = (c.clone(), b.clone(), a[w % a.len()].clone());
        async move {
            c.get(format!("{b}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
    .print("GET /api/v1/me during login flood", floor);
    flood
        .await
        .expect("flood")
        .print("  (the login flood itself)", floor);
    // After every scenario (tens of thousands of durable writes): RSS stays within redb's
    // page cache (--cache-size, 64 MiB by default) plus the process's own overhead.
    if let Some(kib) = rss_kib(server.child.id()) {
        println!(
            "memory after the run (RSS)          {:.1} MiB (page cache limit 64 MiB)",
            kib as f64 / 1024.0
        );
    }
    drop(server);
}
