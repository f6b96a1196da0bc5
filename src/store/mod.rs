//! The embedded database: one redb file, opened once per process.
//!
//! redb is synchronous, so nothing here is `async`: async callers go through
//! [`Store::run`], which moves the work onto tokio's blocking pool. Every write commits with
//! `Durability::Immediate`, so an acknowledged write survives a crash.

pub mod authz;
pub mod avatars;
pub mod clients;
pub mod codec;
pub mod codes;
pub mod expiry;
pub mod keys;
pub mod records;
pub mod sessions;
pub mod tables;
pub mod users;

use std::{path::Path, sync::Arc};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction,
};

use crate::clock::Clock;

/// The schema version this binary writes. Bump it (and add a migration in [`Store::open`])
/// whenever a table or record layout changes incompatibly.
pub const SCHEMA_VERSION: u64 = 1;
const SCHEMA_KEY: &str = "schema_version";

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    #[error("corrupt record in table `{table}`: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error("could not encode record: {0}")]
    Encode(String),
    #[error("background task failed: {0}")]
    Task(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Database(e.into()) }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Why the database could not be opened; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the data file {path} is already in use by another portcullis process; stop it or choose another --data-dir"
    )]
    AlreadyOpen { path: String },
    #[error(
        "the data file {path} has schema version {found}, newer than this binary supports ({supported}); upgrade portcullis"
    )]
    NewerSchema {
        path: String,
        found: u64,
        supported: u64,
    },
    #[error("could not create the data directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("could not open the data file {path}: {source}")]
    Open { path: String, source: StoreError },
}

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    clock: Clock,
}

impl Store {
    /// Opens (creating if needed) the database file at `path`, checking its schema version.
    /// Fails fast if another process holds the file.
    pub fn open(path: &Path, clock: Clock) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(OpenError::AlreadyOpen { path: shown });
            }
            Err(e) => {
                return Err(OpenError::Open {
                    path: shown,
                    source: e.into(),
                });
            }
        };
        Self::init(db, clock, shown)
    }

    /// An in-memory database (dev mode, spec export). Nothing is written to disk.
    pub fn open_in_memory(clock: Clock) -> Result<Self, OpenError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| OpenError::Open {
                path: ":memory:".into(),
                source: e.into(),
            })?;
        Self::init(db, clock, ":memory:".into())
    }

    fn init(db: Database, clock: Clock, shown: String) -> Result<Self, OpenError> {
        let store = Self {
            inner: Arc::new(Inner { db, clock }),
        };
        let found = store
            .write(|txn| {
                let mut meta = txn.open_table(tables::META)?;
                let found = meta.get(SCHEMA_KEY)?.map(|v| v.value());
                if found.is_none() {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
                }
                drop(meta);
                // Create every table up front so read transactions never meet a missing one.
                create_all_tables(txn)?;
                Ok(found)
            })
            .map_err(|source| OpenError::Open {
                path: shown.clone(),
                source,
            })?;
        match found {
            Some(v) if v > SCHEMA_VERSION => Err(OpenError::NewerSchema {
                path: shown,
                found: v,
                supported: SCHEMA_VERSION,
            }),
            _ => Ok(store),
        }
    }

    /// The clock records are timed against.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Runs `f` in a write transaction and commits it durably if `f` succeeds; on error the
    /// transaction is dropped, so nothing it wrote is kept.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut txn = self.inner.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.inner.db.begin_read()?;
        f(&txn)
    }

    /// Runs blocking store work on tokio's blocking pool, so no redb transaction ever runs on
    /// an async worker thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Cheap liveness probe for `/readyz`: a read transaction on the meta table.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|txn| {
            let meta = txn.open_table(tables::META)?;
            meta.get(SCHEMA_KEY)?;
            Ok(())
        })
    }

    /// Number of rows in each table, for `portcullis check` and tests.
    pub fn table_counts(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        use redb::ReadableTableMetadata;
        self.read(|txn| {
            Ok(vec![
                ("users", txn.open_table(tables::USERS)?.len()?),
                ("usernames", txn.open_table(tables::USERNAMES)?.len()?),
                ("emails", txn.open_table(tables::EMAILS)?.len()?),
                ("api_keys", txn.open_table(tables::API_KEYS)?.len()?),
                (
                    "refresh_tokens",
                    txn.open_table(tables::REFRESH_TOKENS)?.len()?,
                ),
                (
                    "session_families",
                    txn.open_table(tables::SESSION_FAMILIES)?.len()?,
                ),
                (
                    "user_sessions",
                    txn.open_table(tables::USER_SESSIONS)?.len()?,
                ),
                ("signing_keys", txn.open_table(tables::SIGNING_KEYS)?.len()?),
                ("email_codes", txn.open_table(tables::EMAIL_CODES)?.len()?),
                ("captchas", txn.open_table(tables::CAPTCHAS)?.len()?),
                ("avatars", txn.open_table(tables::AVATARS)?.len()?),
                ("clients", txn.open_table(tables::CLIENTS)?.len()?),
                (
                    "revoked_tokens",
                    txn.open_table(tables::REVOKED_TOKENS)?.len()?,
                ),
                ("expiry", txn.open_table(tables::EXPIRY)?.len()?),
            ])
        })
    }

    /// Decodes every record, returning the problems found (empty when the file is sound).
    pub fn verify(&self) -> Result<Vec<String>, StoreError> {
        use redb::ReadableTable;
        self.read(|txn| {
            let mut problems = Vec::new();
            let users = txn.open_table(tables::USERS)?;
            for row in users.iter()? {
                let (k, v) = row?;
                if let Err(e) = codec::decode::<records::UserRecord>("users", v.value()) {
                    problems.push(format!("user {}: {e}", k.value()));
                }
            }
            for (name, def) in [
                ("refresh_tokens", tables::REFRESH_TOKENS),
                ("session_families", tables::SESSION_FAMILIES),
                ("email_codes", tables::EMAIL_CODES),
                ("captchas", tables::CAPTCHAS),
            ] {
                let table = txn.open_table(def)?;
                for row in table.iter()? {
                    let (_, v) = row?;
                    if let Err(e) = codec::decode::<expiry::Expiring>(name, v.value()) {
                        problems.push(e.to_string());
                    }
                }
            }
            Ok(problems)
        })
    }
}

fn create_all_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(tables::USERS)?;
    txn.open_table(tables::USERNAMES)?;
    txn.open_table(tables::EMAILS)?;
    txn.open_table(tables::API_KEYS)?;
    txn.open_table(tables::REFRESH_TOKENS)?;
    txn.open_table(tables::SESSION_FAMILIES)?;
    txn.open_table(tables::USER_SESSIONS)?;
    txn.open_table(tables::SIGNING_KEYS)?;
    txn.open_table(tables::EMAIL_CODES)?;
    txn.open_table(tables::CAPTCHAS)?;
    txn.open_table(tables::AVATARS)?;
    txn.open_table(tables::SECRETS)?;
    txn.open_table(tables::CLIENTS)?;
    txn.open_table(tables::CLIENTS_BY_OWNER)?;
    txn.open_table(tables::REVOKED_TOKENS)?;
    txn.open_table(tables::AUTH_REQUESTS)?;
    txn.open_table(tables::AUTH_CODES)?;
    txn.open_table(tables::BROWSER_SESSIONS)?;
    txn.open_table(tables::CONSENTS)?;
    txn.open_table(tables::JWT_KEYS)?;
    txn.open_table(tables::EXPIRY)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_the_same_file_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        let _first = Store::open(&path, Clock::system()).unwrap();
        let err = Store::open(&path, Clock::system()).err().unwrap();
        assert!(matches!(err, OpenError::AlreadyOpen { .. }), "{err}");
        assert!(err.to_string().contains("already in use"));
    }

    #[test]
    fn newer_schema_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        {
            let store = Store::open(&path, Clock::system()).unwrap();
            store
                .write(|txn| {
                    txn.open_table(tables::META)?
                        .insert(SCHEMA_KEY, SCHEMA_VERSION + 1)?;
                    Ok(())
                })
                .unwrap();
        }
        let err = Store::open(&path, Clock::system()).err().unwrap();
        assert!(matches!(err, OpenError::NewerSchema { .. }), "{err}");
        assert!(err.to_string().contains("upgrade portcullis"));
    }

    #[test]
    fn failed_write_closure_keeps_nothing() {
        let store = Store::open_in_memory(Clock::system()).unwrap();
        let result: Result<(), StoreError> = store.write(|txn| {
            txn.open_table(tables::USERNAMES)?.insert("ghost", "id")?;
            Err(StoreError::Encode("abort".into()))
        });
        assert!(result.is_err());
        let found = store
            .read(|txn| Ok(txn.open_table(tables::USERNAMES)?.get("ghost")?.is_some()))
            .unwrap();
        assert!(!found);
    }
}
