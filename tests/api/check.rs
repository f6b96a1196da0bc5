//! `portcullis check`: every record of every table, redb's own integrity check, and a corrupt
//! record read by a request.

use std::process::Command;

use crate::helpers::spawn_app;

fn portcullis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn check_names_the_table_and_key_of_a_corrupt_record() {
    let app = spawn_app().await;
    let user = app.register_user("damaged").await;
    let id = user.id.clone();
    app.services
        .store
        .write(|txn| {
            txn.open_table(portcullis::store::tables::USERS)?
                .insert(id.as_str(), b"{\"id\": 7, garbage".as_slice())?;
            Ok(())
        })
        .unwrap();
    // (A request reading it is a logged 500: storage::a_corrupt_record_is_a_logged_generic_500_not_a_panic.)
    let (config, dir, _) = app.stop().await;

    let data_dir = config.data_dir.to_str().unwrap();
    let out = portcullis(&["check", "--data-dir", data_dir]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "table `users`, key {:?}: does not decode",
            user.id
        )),
        "{stderr}"
    );
    // Its username index still points at it: that entry is sound, so it is not reported.
    assert!(!stderr.contains("table `usernames`"), "{stderr}");
    drop(dir);
}

#[tokio::test]
async fn check_of_a_sound_database_passes_and_a_mistyped_dir_creates_nothing() {
    let app = spawn_app().await;
    app.register_user("sound").await;
    let (config, dir, _) = app.stop().await;
    let data_dir = config.data_dir.to_str().unwrap().to_string();
    let out = portcullis(&["check", "--data-dir", &data_dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok: page checksums and trees are sound"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: every record of every table decodes"),
        "{stdout}"
    );

    let typo = format!("{data_dir}/typo");
    for args in [
        vec!["check", "--data-dir", &typo],
        vec![
            "backup",
            "--out",
            "/tmp/never-written.redb",
            "--data-dir",
            &typo,
        ],
    ] {
        let out = portcullis(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("no database at"), "{stderr}");
    }
    assert!(!std::path::Path::new(&typo).exists(), "nothing was created");
    drop(dir);
}

#[tokio::test]
async fn check_reports_damaged_pages() {
    let app = spawn_app().await;
    for i in 0..40 {
        app.register_user(&format!("page{i}")).await;
    }
    let (config, dir, _) = app.stop().await;
    let path = config.database_path();
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip every byte of the pages after the header region: users, indexes, the lot.
    let len = bytes.len();
    for b in &mut bytes[len / 4..len * 3 / 4] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let out = portcullis(&["check", "--data-dir", config.data_dir.to_str().unwrap()]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("problem") || all.contains("restore"), "{all}");
    drop(dir);
}
