//! Storage faults: a full disk answers 503 and heals by itself once space returns.

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use portcullis::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ChildServer, PASSWORD, problem, required, start, test_config};

/// A size-limited tmpfs mounted on a fresh directory, unmounted on drop. Needs root (CI runs
/// as root); elsewhere the test says why it is skipped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("mount point");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            required(
                "tmpfs",
                "mounting a tmpfs needs root (run the tests as root)",
            );
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the filesystem is full.
fn fill(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0xa5u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

#[tokio::test]
async fn a_full_disk_answers_503_changes_nothing_and_recovers_without_a_restart() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let data = Arc::new(tempfile::tempdir_in(fs.path()).expect("data dir"));
    let config = test_config(&data);
    let app = start(config, data.clone(), Clock::manual()).await;
    let before = app.register_user("before").await;

    let filler = fs.path().join("filler");
    fill(&filler);

    // Keep writing until the store hits the full disk: every answer is a success or a 503,
    // never a 500, and a 503 wrote nothing.
    let mut refused = None;
    for i in 0..200 {
        let name = format!("during{i}");
        let resp = app
            .register(&json!({"username": name, "email": format!("{name}@example.test"), "password": PASSWORD}))
            .await;
        match resp.status() {
            StatusCode::CREATED => continue,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(resp.headers().contains_key("retry-after"));
                let p = problem(resp, StatusCode::SERVICE_UNAVAILABLE).await;
                assert_eq!(p["code"], "storage_unavailable");
                refused = Some(name);
                break;
            }
            other => panic!("write {i} on a full disk answered {other}"),
        }
    }
    let refused = refused.expect("a full disk must refuse writes");

    // Readiness tells the truth while the disk is full, and later writes are refused cleanly.
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let again = app.login("before", PASSWORD).await;
    assert_eq!(again.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Space comes back: the store reopens the file by itself and serves writes again. The
    // probe retries at most once a second, so readiness is polled for a bounded time.
    std::fs::remove_file(&filler).unwrap();
    let mut ready = false;
    for _ in 0..50 {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz recovers once the disk has room");
    let free: Value = app
        .username_availability(&refused)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        free["available"], true,
        "the refused registration kept nothing"
    );
    let after = app.register_user("after").await;
    // Committed data survived the reopen: the first user's session and password still work.
    assert_eq!(
        app.get_me(&before.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.login("before", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        app.refresh(&after.refresh_token).await.status(),
        StatusCode::OK
    );
    app.stop().await;
    drop(data);
}

/// Group commit loses nothing it acknowledged: concurrent refresh rotations against the real
/// binary on a real file, the process killed with SIGKILL in the middle of them, and after a
/// restart every rotation that was answered 200 still holds — its new refresh token works.
/// (A generous reuse grace makes a token that an unanswered rotation used up still
/// refreshable, so a failure here can only mean an acknowledged token was lost.)
#[tokio::test]
async fn killing_the_process_mid_batch_loses_no_acknowledged_rotation() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let args = [
        "--data-dir",
        data.as_str(),
        "--scrypt-log-n",
        "10",
        "--refresh-reuse-grace",
        "300",
    ];
    let server = ChildServer::start_on_disk(&args);
    let base = format!("http://127.0.0.1:{}", server.port);
    let http = crate::helpers::http_client_builder().build().unwrap();
    const CHAINS: usize = 16;
    let mut chains = Vec::new();
    for i in 0..CHAINS {
        let resp = http
            .post(format!("{base}/api/v1/users"))
            .json(&json!({"username": format!("chain{i}"), "email": format!("chain{i}@example.test"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        chains.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    // Each chain rotates as fast as it can; `latest` holds its last acknowledged token.
    let latest: Arc<Vec<std::sync::Mutex<String>>> =
        Arc::new(chains.into_iter().map(std::sync::Mutex::new).collect());
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for i in 0..CHAINS {
        let (http, base, latest, acknowledged) = (
            http.clone(),
            base.clone(),
            latest.clone(),
            acknowledged.clone(),
        );
        load.push(tokio::spawn(async move {
            loop {
                let token = latest[i].lock().unwrap().clone();
                let Ok(resp) = http
                    .post(format!("{base}/api/v1/sessions/refresh"))
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                else {
                    return;
                };
                if resp.status() != StatusCode::OK {
                    return;
                }
                let Ok(body) = resp.json::<Value>().await else {
                    return;
                };
                *latest[i].lock().unwrap() = body["refresh_token"].as_str().unwrap().to_string();
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Kill once the load is well under way (no sleeping: wait for the count).
    while acknowledged.load(Ordering::SeqCst) < 400 {
        tokio::task::yield_now().await;
    }
    server.kill_hard();
    for task in load {
        let _ = task.await;
    }
    let rotations = acknowledged.load(Ordering::SeqCst);

    let server = ChildServer::start_on_disk(&args);
    let base = format!("http://127.0.0.1:{}", server.port);
    for (i, token) in latest.iter().enumerate() {
        let token = token.lock().unwrap().clone();
        let resp = http
            .post(format!("{base}/api/v1/sessions/refresh"))
            .json(&json!({"refresh_token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "chain {i}: its last acknowledged rotation (of {rotations} in all) was lost"
        );
    }
}
