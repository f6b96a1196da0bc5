//! Durability across restarts, the expiry sweeper, and probes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn sessions_and_keys_survive_a_restart() {
    let app = spawn_app().await;
    let user = app.register_user("wes").await;
    let key = app
        .rotate_api_key(&user.access_token)
        .await
        .json::<Value>()
        .await
        .unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();

    let app = app.restart().await;

    // The old access token still verifies: the signing key was persisted.
    let me = app.get_me(&user.access_token).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["username"], "wes");
    // The old refresh token still rotates, the API key still works, the password still logs in.
    assert_eq!(
        app.refresh(&user.refresh_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.get_me(&key).await.status(), StatusCode::OK);
    assert_eq!(app.login("wes", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn changing_the_public_url_invalidates_old_access_tokens() {
    let app = spawn_app().await;
    let user = app.register_user("ivan").await;
    let app = app
        .restart_with(|c| c.public_url = Some("https://auth.example.test".into()))
        .await;
    // Same signing key, other issuer: the token is refused, but a fresh login works.
    let p = problem(
        app.get_me(&user.access_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(p["code"], "invalid_token");
    let body: Value = app.login("ivan", PASSWORD).await.json().await.unwrap();
    assert_eq!(
        app.get_me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_is_rehashed_on_login_when_the_cost_changes() {
    let app = spawn_app().await;
    let user = app.register_user("judy").await;
    let hash_of = |app: &crate::helpers::TestApp| {
        let (store, id) = (app.services.store.clone(), user.id.clone());
        async move {
            store
                .run(move |s| s.get_user(&id))
                .await
                .unwrap()
                .unwrap()
                .password_hash
        }
    };
    assert!(hash_of(&app).await.starts_with("$scrypt$ln=10,r=8,p=1$"));

    let app = app.restart_with(|c| c.scrypt_log_n = Some(11)).await;
    assert_eq!(app.login("judy", PASSWORD).await.status(), StatusCode::OK);
    assert!(hash_of(&app).await.starts_with("$scrypt$ln=11,r=8,p=1$"));
    assert_eq!(app.login("judy", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_corrupt_record_is_a_logged_generic_500_not_a_panic() {
    let app = spawn_app().await;
    let user = app.register_user("kurt").await;
    let id = user.id.clone();
    app.services
        .store
        .run(move |s| {
            s.write(|txn| {
                txn.open_table(portcullis::store::tables::USERS)?
                    .insert(id.as_str(), &b"\xff\x00not json"[..])?;
                Ok(())
            })
        })
        .await
        .unwrap();
    let p = problem(
        app.get_me(&user.access_token).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert_eq!(p["code"], "internal_error");
    assert!(
        !p["detail"].as_str().unwrap().contains("users"),
        "no internals leak: {p}"
    );
    // The server is still up and other requests are fine.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let problems = app.services.store.run(|s| s.verify()).await.unwrap();
    assert_eq!(
        problems.len(),
        1,
        "`portcullis check` would report it: {problems:?}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_fails_fast() {
    let app = spawn_app().await;
    let err = portcullis::Application::build(&app.config)
        .await
        .err()
        .expect("must not start");
    assert!(
        err.to_string()
            .contains("already in use by another portcullis process"),
        "{err}"
    );
}

#[tokio::test]
async fn sweeper_deletes_expired_records_and_keeps_live_ones() {
    let app = spawn_app().await;
    let old = app.register_user("xena").await;
    app.refresh(&old.refresh_token).await; // a rotated token and its successor
    assert_eq!(app.table_count("refresh_tokens").await, 2);
    assert_eq!(app.table_count("session_families").await, 1);

    app.clock.advance(31 * 24 * 3600);
    let fresh = app.register_user("yuri").await;

    let store = app.services.store.clone();
    let report = tokio::task::spawn_blocking(move || store.sweep_expired(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report.records_deleted, 4,
        "two tokens and one family of the old session, and the first-run setup link"
    );
    assert!(
        report.batches >= 3,
        "batch size 1 means one transaction per record"
    );

    assert_eq!(app.table_count("refresh_tokens").await, 1);
    assert_eq!(app.table_count("session_families").await, 1);
    assert_eq!(app.table_count("user_sessions").await, 1);
    assert_eq!(app.table_count("expiry").await, 2);
    assert_eq!(
        app.refresh(&fresh.refresh_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn background_sweeper_runs_on_its_interval() {
    let app = spawn_app_with(|c| c.sweep_interval = 1).await;
    app.register_user("zoe").await;
    assert_eq!(app.table_count("refresh_tokens").await, 1);
    app.clock.advance(31 * 24 * 3600);
    // Wait for the background task (not a fixed sleep: poll until done, with a deadline).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.table_count("refresh_tokens").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sweeper did not run within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.table_count("session_families").await, 0);
    assert_eq!(app.table_count("expiry").await, 0);
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = spawn_app().await;
    let health: Value = app.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
}

fn footer_kid(token: &str) -> String {
    use base64::Engine;
    let footer = token.rsplit('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(footer)
        .unwrap();
    serde_json::from_slice::<Value>(&json).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn rotated_keys_keep_verifying_until_their_tokens_expire() {
    let app = spawn_app().await;
    let user = app.register_user("rosa").await;
    let (config, dir, clock) = app.stop().await;
    {
        // What `portcullis keys rotate` does, with the server stopped.
        let store = portcullis::store::Store::open(&config.database_path(), clock.clone()).unwrap();
        store
            .rotate_keys(
                0,
                portcullis::service::keys::new_access_token_key,
                &portcullis::token::jwt::ID_TOKEN_ALGS,
                portcullis::service::keys::new_id_token_key,
            )
            .unwrap();
    }
    let app = crate::helpers::start(config, dir, clock).await;

    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::OK,
        "old key still verifies"
    );
    let fresh: Value = app.login("rosa", PASSWORD).await.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap().to_string();
    assert_ne!(
        footer_kid(&fresh),
        footer_kid(&user.access_token),
        "new tokens use the new key"
    );

    let keys: Value = app.get_json("/oauth2/paserk").await;
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the retired key stays published");
    assert_eq!(keys.iter().filter(|k| k["active"] == true).count(), 1);

    // Once every token of the old key has expired, a restart drops it.
    app.clock.advance(901);
    let app = app.restart().await;
    let keys: Value = app.get_json("/oauth2/paserk").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_backup_is_a_verified_copy_that_a_server_can_run_on() {
    let app = crate::helpers::spawn_app().await;
    let user = app.register_user("bea").await;
    let (config, _dir, clock) = app.stop().await;

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("nested").join("portcullis.redb");
    portcullis::cli::backup(&out, config.clone())
        .await
        .expect("backup succeeds");
    // Never overwrites.
    let again = portcullis::cli::backup(&out, config.clone()).await;
    assert!(again.unwrap_err().to_string().contains("already exists"));

    // Restoring is copying the file into a data directory.
    let mut restored = config.clone();
    restored.data_dir = out.parent().unwrap().to_path_buf();
    let app = crate::helpers::start(restored, std::sync::Arc::new(out_dir), clock).await;
    assert_eq!(
        app.login("bea", crate::helpers::PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_me(&user.access_token).await.status(),
        StatusCode::OK,
        "the signing key came along: old tokens still verify"
    );
}

/// A database written by schema v1 (before username skeletons): `alice`, its Cyrillic
/// look-alike `аlice` (allowed then) and `小明`, password "correct horse battery staple".
const SCHEMA_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema-v1.redb");

#[tokio::test]
async fn a_schema_v1_file_is_migrated_and_keeps_every_account() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = crate::helpers::test_config(&dir);
    std::fs::copy(SCHEMA_V1, config.database_path()).unwrap();
    let app = crate::helpers::start(config, dir, portcullis::clock::Clock::manual()).await;

    for name in ["alice", "\u{430}lice", "小明"] {
        let resp = app.login(name, "correct horse battery staple").await;
        assert_eq!(resp.status(), StatusCode::OK, "{name} still signs in");
    }
    // The migration indexed the skeletons: look-alikes of existing names are taken now.
    // `ALICE` by its key; `a1ice` only by its skeleton (a digit one reads as an l).
    for taken in ["ALICE", "a1ice"] {
        let body: Value = app.username_availability(taken).await.json().await.unwrap();
        assert_eq!(body["available"], false, "{taken}: {body}");
    }
    assert_eq!(
        app.table_count("username_skeletons").await,
        2,
        "alice and 小明"
    );
    let (config, dir, _) = app.stop().await;
    // The migrated file passes every check, and reopening it migrates nothing twice.
    let store =
        portcullis::store::Store::open(&config.database_path(), portcullis::clock::Clock::system())
            .unwrap();
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    drop(store);
    drop(dir);
}

const SCHEMA_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema-v2.redb");

/// A file written by the schema-v2 server (a user `fixture` with one browser session) gains
/// the v3 index of browser sessions per user, built from the records it holds.
#[tokio::test]
async fn a_schema_v2_file_is_migrated_and_indexes_its_browser_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.redb");
    std::fs::copy(SCHEMA_V2, &path).unwrap();
    let opened = path.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let store =
            portcullis::store::Store::open(&opened, portcullis::clock::Clock::system()).unwrap();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        store.table_counts().unwrap()
    })
    .await
    .unwrap();
    let count = |t: &str| counts.iter().find(|(n, _)| *n == t).unwrap().1;
    assert_eq!(count("browser_sessions"), 1);
    assert_eq!(
        count("user_browser_sessions"),
        1,
        "the migration indexed it"
    );
    assert_eq!(count("users"), 1);

    // And the server runs on it: the account still signs in.
    let dir = std::sync::Arc::new(dir);
    let config = crate::helpers::test_config(&dir);
    let app = crate::helpers::start(config, dir, portcullis::clock::Clock::manual()).await;
    let resp = app
        .login("fixture", "correct horse battery staple 42")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

const SCHEMA_V3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema-v3.redb");

/// A file of schema v3, written by the server and `portcullis import`: `fixture` (a developer
/// with an OAuth client and a session) and `legacy` (imported with the account document's MD5
/// of "123456"). It is migrated to v4 (the second-factor and audit tables) on open.
#[tokio::test]
async fn a_schema_v3_file_opens_decodes_and_signs_its_users_in() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = crate::helpers::test_config(&dir);
    let counts = open_fixture(SCHEMA_V3, &config).await;
    let count = |t: &str| counts.iter().find(|(n, _)| *n == t).unwrap().1;
    assert_eq!((count("users"), count("clients_by_owner")), (2, 1));
    assert_eq!(count("jwt_keys"), 3, "RS256, EdDSA and Ed25519");

    let app = crate::helpers::start(config, dir, portcullis::clock::Clock::system()).await;
    let fixture = app
        .login("fixture", "correct horse battery staple 43")
        .await;
    assert_eq!(fixture.status(), StatusCode::OK);
    let token = fixture.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let clients: Value = app
        .client
        .get(app.url("/api/v1/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clients[0]["name"], "Fixture app", "{clients}");
    assert_eq!(app.login("legacy", "123456").await.status(), StatusCode::OK);
}

/// Copies the committed file `fixture` into `config`'s data directory and opens it there
/// (migrating it), checks that every record decodes, and returns its rows per table.
async fn open_fixture(fixture: &str, config: &portcullis::ServeConfig) -> Vec<(&'static str, u64)> {
    std::fs::copy(fixture, config.database_path()).unwrap();
    let path = config.database_path();
    tokio::task::spawn_blocking(move || {
        let store =
            portcullis::store::Store::open(&path, portcullis::clock::Clock::system()).unwrap();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        store.table_counts().unwrap()
    })
    .await
    .unwrap()
}

const SCHEMA_V4: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema-v4.redb");
/// The TOTP secret `fixture4` enrolled in the v4 file, and one of its recovery codes.
const V4_TOTP_SECRET: &str = "C4NPFITRIDUVW7P5EJPYGPWPDMH6YTSE";
const V4_RECOVERY_CODE: &str = "x9wec-zte66";

/// A file of today's schema (v4), written by the server: `fixture4` (password "correct horse
/// battery staple 44") enrolled TOTP through the API, which left its factor and the audit
/// events of the sign-in and the enrolment. The next schema's migration starts from this file.
#[tokio::test]
async fn a_schema_v4_file_opens_and_its_user_still_needs_the_enrolled_second_factor() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = crate::helpers::test_config(&dir);
    let counts = open_fixture(SCHEMA_V4, &config).await;
    let count = |t: &str| counts.iter().find(|(n, _)| *n == t).unwrap().1;
    assert_eq!((count("users"), count("mfa_factors")), (1, 1));
    assert!(count("events") >= 2, "the sign-in and the enrolment");

    let app = crate::helpers::start(config, dir, portcullis::clock::Clock::system()).await;
    let first = app
        .login("fixture4", "correct horse battery staple 44")
        .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED, "a second step");
    let first: Value = first.json().await.unwrap();
    let secret = totp_rs::Secret::try_from_base32(V4_TOTP_SECRET).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = totp_rs::Builder::new()
        .with_secret(secret.as_ref().to_vec())
        .build()
        .unwrap()
        .generate(now)
        .to_string();
    // `post_json` insists on a 2xx.
    let done = app
        .post_json(
            "/api/v1/sessions/mfa",
            &serde_json::json!({"mfa_token": first["mfa_token"], "totp": code}),
        )
        .await;
    assert!(
        done["access_token"].is_string(),
        "the sealed secret still opens"
    );
    let second: Value = app
        .login("fixture4", "correct horse battery staple 44")
        .await
        .json()
        .await
        .unwrap();
    let done = app
        .post_json(
            "/api/v1/sessions/mfa",
            &serde_json::json!({"mfa_token": second["mfa_token"], "recovery_code": V4_RECOVERY_CODE}),
        )
        .await;
    assert!(
        done["access_token"].is_string(),
        "and so do its recovery codes"
    );
}

const SCHEMA_V5: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema-v5.redb");
const SCHEMA_V6: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema-v6.redb");

/// Files of schema v5 and of today's v6, each written by its server: `fixture5` / `fixture6`
/// (password "correct horse battery staple 55" / "… 66") registered and failed one sign-in.
/// v6 added the `login_failures` table; the v6 file is where the next migration starts.
#[tokio::test]
async fn schema_v5_and_v6_files_open_migrated_and_their_users_sign_in() {
    for (file, user, password) in [
        (SCHEMA_V5, "fixture5", "correct horse battery staple 55"),
        (SCHEMA_V6, "fixture6", "correct horse battery staple 66"),
    ] {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let mut config = crate::helpers::test_config(&dir);
        config.database_url = None;
        let counts = open_fixture(file, &config).await;
        let count = |t: &str| counts.iter().find(|(n, _)| *n == t).unwrap().1;
        assert_eq!(count("users"), 1, "{file}");
        let app = crate::helpers::start(config, dir, portcullis::clock::Clock::system()).await;
        assert_eq!(
            app.login(user, password).await.status(),
            StatusCode::OK,
            "{file}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn look_alike_and_mixed_script_usernames_are_refused() {
    let app = spawn_app().await;
    app.register_user("paypal").await;
    for (name, code) in [
        // Cyrillic а inside Latin: mixed scripts.
        ("p\u{430}ypal", "invalid_username"),
        // All Latin, but it reads as "paypal" once confusables are folded.
        ("paypaI", "username_taken"),
    ] {
        let resp = app
            .register(&serde_json::json!({"username": name, "email": format!("{}@example.test", name.len()), "password": PASSWORD}))
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_client_error(), "{name}: {status} {body}");
        assert_eq!(body["code"], code, "{name}: {body}");
    }
}
