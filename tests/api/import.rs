//! `portcullis import`: accounts from another system, with their existing password hashes,
//! sign in and are moved to scrypt at their first sign-in.

use std::{process::Command, sync::Arc};

use md5::Digest as _;
use portcullis::{clock::Clock, store::users::UserLookup};
use reqwest::StatusCode;
use scrypt::password_hash::{PasswordHasher as _, SaltString};
use serde_json::{Value, json};

use crate::helpers::{start, test_config};

const SALT: &[u8] = b"sixteen byte slt";

fn hashes(password: &str) -> [(&'static str, String); 4] {
    let salt = SaltString::encode_b64(SALT).unwrap();
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(64, 1, 1, None).unwrap(),
    )
    .hash_password(password.as_bytes(), &salt)
    .unwrap()
    .to_string();
    let pbkdf2 = pbkdf2::Pbkdf2
        .hash_password_customized(
            password.as_bytes(),
            None,
            None,
            pbkdf2::Params {
                rounds: 1000,
                output_length: 32,
            },
            &salt,
        )
        .unwrap()
        .to_string();
    let scrypt = scrypt::Scrypt
        .hash_password_customized(
            password.as_bytes(),
            None,
            None,
            scrypt::Params::new(4, 8, 1, 32).unwrap(),
            &salt,
        )
        .unwrap()
        .to_string();
    let bcrypt = bcrypt::hash_with_salt(password, 4, *b"sixteen byte slt")
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    [
        ("argon2", argon),
        ("pbkdf2", pbkdf2),
        ("scrypt", scrypt),
        ("bcrypt", bcrypt),
    ]
}

fn md5_hex(password: &str) -> String {
    md5::Md5::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn import(config: &portcullis::ServeConfig, file: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["import", "--batch-size", "3", "--file"])
        .arg(file)
        .args(crate::helpers::store_args(config))
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn imported_hashes_of_every_format_sign_in_and_are_moved_to_scrypt() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = test_config(&dir);
    // Short passwords, as older systems allowed: they are not re-checked against today's rules.
    let password = "legacy-pw";
    let mut lines: Vec<Value> = hashes(password)
        .into_iter()
        .map(|(name, hash)| {
            json!({"username": format!("{name}-user"), "email": format!("{name}@example.test"),
                   "password_hash": hash, "email_verified": true})
        })
        .collect();
    lines.push(json!({"username": "medusa", "email": "medusa@example.test",
                      "password_md5": md5_hex("123456"), "display_name": "Rei Ayanami",
                      "roles": ["admin"], "created_at": 1_600_000_000}));
    lines.push(json!({"username": "nopass", "email": "nopass@example.test"}));
    lines.push(json!({"username": "gone", "email": "gone@example.test",
                      "password_md5": md5_hex(password), "disabled": true}));
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // Refused lines: each says why, by its line number, and stops nothing.
    text.push_str("{\"username\": \"broken\"\n"); // 8: malformed
    text.push_str(&format!(
        "{}\n",
        json!({"username": "ARGON2-USER", "email": "x@example.test"})
    )); // 9: the name, case-insensitively
    text.push_str(&format!(
        "{}\n",
        json!({"username": "fresh", "email": "MEDUSA@example.test"})
    )); // 10: the email
    text.push_str(&format!(
        "{}\n",
        json!({"username": "plain", "email": "plain@example.test", "password_hash": "hunter2"})
    )); // 11: not a hash
    text.push('\n'); // 12: blank lines are skipped
    text.push_str(&format!(
        "{}\n",
        json!({"username": "last", "email": "last@example.test", "password_md5": md5_hex(password)})
    )); // 13: after the refusals, still imported
    let file = dir.path().join("users.jsonl");
    // Saved with a byte-order mark, as some editors do: the first account still imports.
    std::fs::write(&file, format!("\u{feff}{text}")).unwrap();

    let (ok, stdout, stderr) = import(&config, &file);
    assert!(!ok, "refused lines make the exit status a failure");
    assert!(
        stdout.contains("imported 8 accounts") && stdout.contains("4 lines refused"),
        "{stdout}"
    );
    for (line, why) in [
        (8, "not a valid account object"),
        (9, "username taken"),
        (10, "email taken"),
        (11, "unrecognised password hash format"),
    ] {
        assert!(
            stderr.contains(&format!("line {line}: {why}")),
            "line {line}: {stderr}"
        );
    }

    let app = start(config, dir.clone(), Clock::system()).await;
    for name in ["argon2", "pbkdf2", "scrypt", "bcrypt"] {
        let login = format!("{name}-user");
        assert_eq!(
            app.login(&login, "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        let resp = app.login(&login, password).await;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
    }
    let resp = app.login("medusa", "123456").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me: Value = app.get_me(&token).await.json().await.unwrap();
    assert_eq!(me["display_name"], "Rei Ayanami");
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(
        app.login("nopass", "").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("gone", password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.login("last", password).await.status(), StatusCode::OK);

    // Every account that signed in now holds a scrypt hash with the configured cost, and
    // still signs in with the same password.
    let store = app.services.store.clone();
    for login in [
        "argon2-user",
        "pbkdf2-user",
        "scrypt-user",
        "bcrypt-user",
        "medusa",
    ] {
        let lookup = UserLookup::UsernameKey(login.into());
        let user = store.find_user(&lookup).unwrap().unwrap();
        assert!(
            user.password_hash.starts_with("$scrypt$ln=10,"),
            "{login}: {}",
            user.password_hash
        );
    }
    let medusa = store
        .find_user(&UserLookup::UsernameKey("medusa".into()))
        .unwrap()
        .unwrap();
    assert_eq!(medusa.created_at, 1_600_000_000);
    assert_eq!(
        app.login("bcrypt-user", password).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.login("medusa", "123456").await.status(), StatusCode::OK);
    drop(store);
    let (config, dir, _) = app.stop().await;

    // Importing the same file again refuses every account already there and writes nothing.
    let (ok, stdout, _) = import(&config, &file);
    assert!(!ok);
    assert!(
        stdout.contains("imported 0 accounts") && stdout.contains("12 lines refused"),
        "{stdout}"
    );
    drop(dir);
}

#[test]
fn import_of_a_missing_file_says_so_and_creates_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = portcullis::ServeConfig::defaults();
    config.data_dir = data.clone();
    let (ok, _, stderr) = import(&config, &dir.path().join("nope.jsonl"));
    assert!(!ok);
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(!data.exists(), "no data directory was created");
}
