//! The layers stay apart: the HTTP layer asks services and never reaches the store or its
//! records (a user record carries the password hash), and the token code knows no store.
//! Checked on the source, so a shortcut fails here rather than in a review.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every line under `src/<layer>` that mentions one of `forbidden`, as `file:line: text`.
fn offending_lines(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if forbidden.iter().any(|f| line.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_http_layer_never_touches_the_store_or_its_records() {
    let found = offending_lines(
        "http",
        &[
            "crate::store",
            "store::",
            "services.store",
            "UserRecord",
            "ClientRecord",
            "BrowserSessionRecord",
            "StoreError",
        ],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_token_code_does_not_import_the_store() {
    let found = offending_lines("token", &["crate::store", "store::"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
