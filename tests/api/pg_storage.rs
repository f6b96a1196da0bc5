//! PostgreSQL as the store: versioned migrations and their refusal of a newer database, and
//! `portcullis migrate` between a data directory and a database, both ways.

use std::{process::Command, sync::Arc};

use portcullis::{
    clock::Clock,
    store::{OpenError, SCHEMA_VERSION, Store, tables},
};
use reqwest::StatusCode;

use crate::{helpers::test_config, pg};

const SCHEMA_V5: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema-v5.redb");

fn migrate(from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["migrate", "--from", from, "--to", to])
        .output()
        .expect("portcullis migrate runs")
}

/// A file of schema v5, written by the v5 server (`fixture5`, password "correct horse battery
/// staple 55", one failed sign-in), is migrated into PostgreSQL, served from there, and
/// migrated back out into a new data directory with every record.
#[tokio::test]
async fn a_schema_v5_file_moves_into_postgres_and_back_with_every_record() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = pg::fresh_database(cluster);
    let source = tempfile::tempdir().unwrap();
    std::fs::copy(SCHEMA_V5, source.path().join("portcullis.redb")).unwrap();
    let from = source.path().to_str().unwrap().to_string();

    let out = migrate(&from, &url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("every table's rows and records verified"),
        "{stdout}"
    );
    let tables = portcullis::store::tables_count();
    assert!(
        stderr.contains(&format!("{tables}/{tables}")),
        "a progress line for every table: {stderr}"
    );
    assert!(
        cluster.psql(&url_db(&url), "select count(*) from users") == "1",
        "the user is a row of PostgreSQL's users table"
    );

    // Migrating again into the same database is refused: it is no longer empty.
    let again = migrate(&from, &url);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The server on PostgreSQL serves the migrated account.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(&dir);
    config.database_url = Some(url.clone());
    let app = crate::helpers::start(config, dir, Clock::system()).await;
    assert_eq!(
        app.login("fixture5", "correct horse battery staple 55")
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;

    // And back out into a new data directory: the same records.
    let back = tempfile::tempdir().unwrap();
    let to = back.path().join("restored");
    let out = migrate(&url, to.to_str().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (pg_url, file) = (url.clone(), to.join("portcullis.redb"));
    let (a, b) = tokio::task::spawn_blocking(move || {
        let on_pg = Store::open_postgres(&pg_url, Clock::system(), 2).unwrap();
        let on_file = Store::open(&file, Clock::system()).unwrap();
        (
            on_pg.table_digests().unwrap(),
            on_file.table_digests().unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|(t, rows, _)| *t == "users" && *rows == 1));
}

/// The database name of a test URL.
fn url_db(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused_with_a_clear_message() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = pg::fresh_database(cluster);
    let opened = url.clone();
    let err = tokio::task::spawn_blocking(move || {
        let store = Store::open_postgres(&opened, Clock::system(), 2).unwrap();
        store
            .write(|txn| {
                txn.open_table(tables::META)?
                    .insert("schema_version", SCHEMA_VERSION + 1)?;
                Ok(())
            })
            .unwrap();
        drop(store);
        Store::open_postgres(&opened, Clock::system(), 2).err()
    })
    .await
    .unwrap()
    .expect("refused");
    assert!(matches!(err, OpenError::NewerSchema { .. }), "{err}");
    assert!(err.to_string().contains("upgrade portcullis"), "{err}");
    assert!(!err.to_string().contains("password"), "{err}");
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_with_its_address_and_no_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://portcullis:s3cret@127.0.0.1:{port}/nowhere");
    let err =
        tokio::task::spawn_blocking(move || Store::open_postgres(&url, Clock::system(), 2).err())
            .await
            .unwrap()
            .expect("refused");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// The database goes away under a running server (a crash, a failover): every answer is a
/// 503 with `Retry-After` (never a 500, never a hang), `/readyz` says so, and once the
/// database is back the pool reconnects by itself and nothing committed was lost.
#[tokio::test]
async fn a_database_outage_is_a_503_and_the_server_heals_when_it_returns() {
    // A cluster of this test's own: it is stopped and started again.
    let Some(cluster) = pg::PgCluster::start() else {
        return;
    };
    let url = pg::fresh_database(&cluster);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(&dir);
    config.database_url = Some(url);
    let app = crate::helpers::start(config, dir, Clock::manual()).await;
    let user = app.register_user("survivor").await;

    let stopping = tokio::task::spawn_blocking(move || {
        cluster.stop_server();
        cluster
    });
    let cluster = stopping.await.unwrap();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    for resp in [
        app.login("survivor", crate::helpers::PASSWORD).await,
        app.get_me(&user.access_token).await,
        app.refresh(&user.refresh_token).await,
    ] {
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key("retry-after"));
    }

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_server();
        cluster
    })
    .await
    .unwrap();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "the pool reconnected");
    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh(&user.refresh_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("survivor", crate::helpers::PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
    drop(cluster);
}

/// TLS to the database is negotiated as the URL's `sslmode` says: the test cluster has no
/// TLS, so `prefer` (the default) connects in the clear and `require` is refused, clearly.
#[tokio::test]
async fn sslmode_require_is_refused_by_a_server_without_tls_and_prefer_connects() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = pg::fresh_database(cluster);
    let (prefer, require) = (
        format!("{url}?sslmode=prefer"),
        format!("{url}?sslmode=require"),
    );
    let (preferred, required) = tokio::task::spawn_blocking(move || {
        (
            Store::open_postgres(&prefer, Clock::system(), 2).map(|_| ()),
            Store::open_postgres(&require, Clock::system(), 2).err(),
        )
    })
    .await
    .unwrap();
    assert!(
        preferred.is_ok(),
        "{:?}",
        preferred.err().map(|e| e.to_string())
    );
    let err = required.expect("refused").to_string();
    assert!(
        err.contains("could not use the PostgreSQL database"),
        "{err}"
    );
}

/// The tools take `--database-url` as `serve` does: `check` decodes every record of a
/// PostgreSQL database, and `backup` copies it into a file that opens.
#[tokio::test]
async fn check_and_backup_work_on_a_postgres_database() {
    let Some(cluster) = pg::shared() else {
        return;
    };
    let url = pg::fresh_database(cluster);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(&dir);
    config.database_url = Some(url.clone());
    let app = crate::helpers::start(config, dir, Clock::system()).await;
    app.register_user("checked").await;
    app.stop().await;

    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .args(["--database-url", &url])
            .env("NO_COLOR", "1")
            .output()
            .expect("the binary runs")
    };
    let out = run(&["check"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("every record of every table decodes"),
        "{stdout}"
    );
    assert!(stderr.contains("checking postgres://"), "{stderr}");

    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("copy.redb");
    let out = run(&["backup", "--out", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = tokio::task::spawn_blocking(move || {
        let copy = Store::open(&file, Clock::system()).unwrap();
        copy.table_counts().unwrap()
    })
    .await
    .unwrap();
    assert!(
        users.iter().any(|(t, n)| *t == "users" && *n == 1),
        "{users:?}"
    );
}
