//! A throwaway PostgreSQL cluster for tests: `initdb` in a temp dir from the Debian
//! `postgresql` package's binaries, a server on a free loopback port, stopped and deleted on
//! drop. Never a shared server, never a mock. As root (CI), the cluster runs as the package's
//! `postgres` user, since PostgreSQL refuses to run as root.
//!
//! One file for both test kinds: the store's unit tests (`store::testing`) and the
//! integration suite (`tests/api/pg.rs`, through `#[path]`). Std, libc and tempfile only.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Says a test needs `what` and skips it, unless `PORTCULLIS_TEST_REQUIRE` (set by CI) names
/// it: then the missing package is a failure.
pub fn required(what: &str, why: &str) {
    let demanded = std::env::var("PORTCULLIS_TEST_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .any(|w| w.trim() == what);
    assert!(!demanded, "PORTCULLIS_TEST_REQUIRE demands {what}: {why}");
    eprintln!("skipped: {why}");
}

/// The cluster the `postgres::` copy of the suite runs on: started once per test process, a
/// new database per server (see [`fresh_database`]), stopped by a watcher process when the
/// test process ends (a static is never dropped). `None` when PostgreSQL is not installed.
pub fn shared() -> Option<&'static PgCluster> {
    static SHARED: std::sync::OnceLock<Option<PgCluster>> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            let cluster = PgCluster::start()?;
            cluster.stop_when_this_process_ends();
            Some(cluster)
        })
        .as_ref()
}

/// A new, empty database on the shared cluster; its URL.
pub fn fresh_database(cluster: &PgCluster) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!("suite_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    cluster.psql("postgres", &format!("CREATE DATABASE {name}"));
    cluster.url(&name)
}

/// The database role the tests connect as (trust authentication on loopback only).
pub const ROLE: &str = "portcullis";

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// Whom the server processes run as (`postgres` when the tests run as root).
    run_as: Option<String>,
}

/// The newest installed PostgreSQL's binaries (`/usr/lib/postgresql/<version>/bin`).
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PgCluster {
    /// Starts a new cluster, or reports (`required`) that PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = binaries() else {
            required(
                "postgresql",
                "install postgresql (Debian package) for the PostgreSQL tests",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        // SAFETY: geteuid has no preconditions.
        let run_as = (unsafe { libc::geteuid() } == 0).then(|| "postgres".to_string());
        if run_as.is_some() {
            let (uid, gid) = postgres_ids().expect("the postgresql package's `postgres` user");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let cluster = Self {
            bin,
            port: free_port(),
            run_as,
            dir,
        };
        let data = cluster.data_dir();
        cluster.run_ok(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                ROLE,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        cluster.start_server();
        Some(cluster)
    }

    /// Starts the server of the cluster (again, after [`PgCluster::stop_server`]), on the same
    /// port, and waits until it accepts connections.
    pub fn start_server(&self) {
        let data = self.data_dir();
        // No fsync makes the suite's many small commits cheap; commits still wait for their
        // WAL to reach the OS, so a stopped server (a crash of PostgreSQL, not of the
        // machine) loses nothing committed, as the outage test checks.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=400",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server at once (as a crash or an outage would), dropping every connection.
    pub fn stop_server(&self) {
        let data = self.data_dir();
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts a watcher that stops the cluster and deletes its directory once this process
    /// has exited, however it ends.
    fn stop_when_this_process_ends(&self) {
        let as_owner = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- "),
            None => String::new(),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {as_owner}{ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            ctl = self.bin.join("pg_ctl").display(),
            data = self.data_dir().display(),
            dir = self.dir.path().display(),
        );
        // Never waited for: it is to outlive this process.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the cluster's watcher starts");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the cluster's binaries (as the cluster's user), returning its output.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"))
    }

    fn run_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A `postgres://` URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL with `psql` against database `db`; its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.run_ok(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                ROLE,
                "-d",
                db,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}

/// The uid and gid of the `postgres` user the Debian package creates.
fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(Path::new("/etc/passwd")).ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let mut fields = line.split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}
