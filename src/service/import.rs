//! Bulk import of accounts from another system (`portcullis import`): JSON Lines, one
//! account per line, written in batched transactions.
//!
//! Each line is checked by the same rules as a registration (username, email, display name,
//! uniqueness against the database and the earlier lines) except the password strength: the
//! password is not known, only its hash. Hashes are kept in their own format
//! ([`HashFormat`]) and replaced by scrypt at the user's next sign-in. A refused line writes
//! nothing and does not stop the import.

use std::io::BufRead;

use serde::Deserialize;

use super::passwords::{HashFormat, LEGACY_MD5_PREFIX, NO_PASSWORD};
use crate::{
    domain::{DisplayName, Email, Role, Username},
    store::{
        Store, StoreError,
        users::{CreateUserError, NewUser},
    },
};

/// One line of the import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportedAccount {
    username: String,
    email: String,
    #[serde(default)]
    display_name: Option<String>,
    /// A PHC string (`$scrypt$`, `$argon2id$`, `$pbkdf2-sha256$`) or a bcrypt hash (`$2b$`).
    #[serde(default)]
    password_hash: Option<String>,
    /// The account-API document's stored password: the hex MD5 digest of the password.
    #[serde(default)]
    password_md5: Option<String>,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    disabled: bool,
    /// Unix seconds.
    #[serde(default)]
    created_at: Option<i64>,
}

/// Checks one line and turns it into a user to insert, or says why it is refused.
fn prepare(line: &str) -> Result<NewUser, String> {
    let account: ImportedAccount =
        serde_json::from_str(line).map_err(|e| format!("not a valid account object: {e}"))?;
    // Existing accounts keep their names: the lookup rules apply, not the stricter rule for
    // names registered today (see `Username::parse_new`); look-alikes still collide.
    let username =
        Username::parse(&account.username).map_err(|e| format!("username {}", e.message))?;
    let email = Email::parse(&account.email).map_err(|e| format!("email {}", e.message))?;
    let display_name = account
        .display_name
        .filter(|d| !d.trim().is_empty())
        .map(|d| DisplayName::parse(&d).map(DisplayName::into_inner))
        .transpose()
        .map_err(|e| format!("display_name {}", e.message))?;
    let password_hash = match (account.password_hash, account.password_md5) {
        (Some(_), Some(_)) => {
            return Err("give password_hash or password_md5, not both".into());
        }
        (Some(hash), None) => hash,
        (None, Some(md5)) => format!("{LEGACY_MD5_PREFIX}{}", md5.to_ascii_lowercase()),
        (None, None) => NO_PASSWORD.to_string(),
    };
    HashFormat::check_imported(&password_hash)?;
    let mut roles = account.roles;
    roles.sort();
    roles.dedup();
    Ok(NewUser {
        id: uuid::Uuid::new_v4().to_string(),
        username_key: username.key(),
        username_skeleton: username.skeleton(),
        username: username.as_str().to_string(),
        email_key: email.key(),
        email: email.as_str().to_string(),
        display_name,
        password_hash,
        email_verified: account.email_verified,
        roles,
        api_key: None,
        disabled: account.disabled,
        created_at: account.created_at,
    })
}

/// How far an import has come (for a progress display).
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportProgress {
    /// Bytes of the input read so far.
    pub bytes_read: u64,
    /// Accounts written.
    pub imported: u64,
    /// Lines refused so far.
    pub refused: u64,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: u64,
    /// Refused lines: their number (from 1) and why, the first [`KEPT_REFUSALS`] of them.
    pub refusals: Vec<(u64, String)>,
    pub refused: u64,
}

/// How many refusals a report keeps with their reasons (the rest are counted).
pub const KEPT_REFUSALS: usize = 1000;

impl ImportReport {
    /// Counts a refused line, keeping its reason while fewer than [`KEPT_REFUSALS`] are kept
    /// (lines come in order, so the kept ones are the first).
    fn refuse(&mut self, line: u64, why: impl Into<String>) {
        self.refused += 1;
        if self.refusals.len() < KEPT_REFUSALS {
            self.refusals.push((line, why.into()));
        }
    }

    /// Adds what another part of the import (the writer's uniqueness refusals) did.
    fn merge(&mut self, other: ImportReport) {
        self.imported += other.imported;
        self.refused += other.refused;
        self.refusals.extend(other.refusals);
        self.refusals.sort_by_key(|(line, _)| *line);
        self.refusals.truncate(KEPT_REFUSALS);
    }
}

/// A batch on its way from the reader to the writer.
struct Batch {
    lines: Vec<u64>,
    users: Vec<NewUser>,
    bytes_read: u64,
    refused_before: u64,
}

impl Batch {
    fn new(capacity: usize) -> Self {
        Self {
            lines: Vec::with_capacity(capacity),
            users: Vec::with_capacity(capacity),
            bytes_read: 0,
            refused_before: 0,
        }
    }
}

/// Why an import stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the input failed at line {line}: {source}")]
    Read { line: u64, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports every line of `input` into `store`, `batch_size` accounts per transaction,
/// calling `progress` after each batch. Blocking: run it off the async workers. Reading and
/// checking the next batch overlaps with writing the previous one.
pub fn import_accounts(
    store: &Store,
    input: impl BufRead,
    batch_size: usize,
    mut progress: impl FnMut(ImportProgress) + Send,
) -> Result<ImportReport, ImportError> {
    let batch_size = batch_size.max(1);
    let mut report = ImportReport::default();
    std::thread::scope(|scope| {
        // One batch in flight and one ready: bounded memory, whatever the input's size.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(1);
        let writer = scope.spawn(move || -> Result<ImportReport, StoreError> {
            let mut written = ImportReport::default();
            for batch in rx {
                let outcomes = store.import_users(batch.users)?;
                for (line, outcome) in batch.lines.into_iter().zip(outcomes) {
                    match outcome {
                        Ok(()) => written.imported += 1,
                        Err(CreateUserError::UsernameTaken) => {
                            written.refuse(line, "username taken (or one that looks like it)")
                        }
                        Err(CreateUserError::EmailTaken) => written.refuse(line, "email taken"),
                        Err(CreateUserError::CodeGone | CreateUserError::IdentityTaken) => {
                            written.refuse(line, "refused by the store")
                        }
                    }
                }
                progress(ImportProgress {
                    bytes_read: batch.bytes_read,
                    imported: written.imported,
                    refused: batch.refused_before + written.refused,
                });
            }
            Ok(written)
        });
        let read = (|| -> Result<(), ImportError> {
            let mut batch = Batch::new(batch_size);
            let mut bytes_read = 0u64;
            let mut line = Vec::new();
            let mut number = 0u64;
            let mut input = input;
            loop {
                line.clear();
                let n = input
                    .read_until(b'\n', &mut line)
                    .map_err(|source| ImportError::Read {
                        line: number + 1,
                        source,
                    })?;
                if n == 0 {
                    break;
                }
                number += 1;
                bytes_read += n as u64;
                // A line that is not UTF-8 is refused like any other bad line.
                let Ok(text) = std::str::from_utf8(&line) else {
                    report.refuse(number, "not UTF-8 text");
                    continue;
                };
                // A byte-order mark (files saved by some editors) is not part of the first record.
                let text = text.trim().trim_start_matches('\u{feff}');
                if text.is_empty() {
                    continue;
                }
                match prepare(text) {
                    Ok(user) => {
                        batch.lines.push(number);
                        batch.users.push(user);
                    }
                    Err(why) => report.refuse(number, why),
                }
                if batch.users.len() >= batch_size {
                    let mut full = std::mem::replace(&mut batch, Batch::new(batch_size));
                    full.bytes_read = bytes_read;
                    full.refused_before = report.refused;
                    if tx.send(full).is_err() {
                        // The writer stopped on an error; it is reported below.
                        return Ok(());
                    }
                }
            }
            batch.bytes_read = bytes_read;
            batch.refused_before = report.refused;
            let _ = tx.send(batch);
            Ok(())
        })();
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| StoreError::Task("the import writer panicked".into()))?;
        read?;
        report.merge(written?);
        Ok(report)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_utf8_is_refused_and_the_import_goes_on() {
        let store = Store::open_in_memory(crate::clock::Clock::manual()).unwrap();
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"username\":\"first\",\"email\":\"first@example.test\"}\n");
        input.extend_from_slice(b"{\"username\":\"\xff\xfe\",\"email\":\"bad@example.test\"}\n");
        input.extend_from_slice(b"{\"username\":\"third\",\"email\":\"third@example.test\"}\n");
        let report = import_accounts(&store, input.as_slice(), 1, |_| {}).unwrap();
        assert_eq!((report.imported, report.refused), (2, 1));
        assert_eq!(report.refusals, vec![(2, "not UTF-8 text".to_string())]);
    }

    #[test]
    fn a_report_keeps_the_first_refusals_of_both_parts_in_line_order() {
        let (mut read, mut written) = (ImportReport::default(), ImportReport::default());
        for line in (1..=2 * KEPT_REFUSALS as u64).step_by(2) {
            read.refuse(line, "read");
            written.refuse(line + 1, "written");
        }
        read.merge(written);
        assert_eq!(read.refused, 2 * KEPT_REFUSALS as u64);
        assert_eq!(read.refusals.len(), KEPT_REFUSALS);
        let lines: Vec<u64> = read.refusals.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, (1..=KEPT_REFUSALS as u64).collect::<Vec<_>>());
    }

    #[test]
    fn a_line_is_checked_like_a_registration_except_the_password() {
        let ok = prepare(r#"{"username":"Ann","email":"Ann@Example.test","password_md5":"5F4DCC3B5AA765D61D8327DEB882CF99","roles":["admin","admin"]}"#)
            .unwrap();
        assert_eq!(ok.username_key, "ann");
        assert_eq!(ok.password_hash, "$md5$5f4dcc3b5aa765d61d8327deb882cf99");
        assert_eq!(ok.roles, vec![Role::Admin]);
        let no_password = prepare(r#"{"username":"bob","email":"bob@example.test"}"#).unwrap();
        assert_eq!(no_password.password_hash, NO_PASSWORD);
        for (line, why) in [
            ("{", "not a valid account object"),
            (r#"{"username":"a b","email":"a@example.test"}"#, "username"),
            (r#"{"username":"ab","email":"nope"}"#, "email"),
            (
                r#"{"username":"ab","email":"a@example.test","extra":1}"#,
                "unknown field",
            ),
            (
                r#"{"username":"ab","email":"a@example.test","password_hash":"plaintext"}"#,
                "unrecognised password hash format",
            ),
            (
                r#"{"username":"ab","email":"a@example.test","password_md5":"abc"}"#,
                "32 hexadecimal digits",
            ),
            (
                r#"{"username":"ab","email":"a@example.test","password_hash":"$2b$31$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"}"#,
                "bcrypt cost above",
            ),
        ] {
            let err = prepare(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }
}
