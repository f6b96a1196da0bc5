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

    /// Number of rows in each table, for `portcullis check`, `/metrics` and tests.
    pub fn table_counts(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        use redb::{ReadableTableMetadata, TableHandle};
        self.read(|txn| {
            let mut out = Vec::new();
            macro_rules! count {
                ($t:ident) => {
                    out.push((tables::$t.name(), txn.open_table(tables::$t)?.len()?));
                };
            }
            tables::every_table!(count);
            Ok(out)
        })
    }

    /// Copies every table, as of one consistent read, into a new database file at `dest`
    /// (which must not exist), calling `progress(table, rows)` after each table. The copy is
    /// also compact: it holds only live pages.
    pub fn backup_to(
        &self,
        dest: &Path,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<Vec<(&'static str, u64)>, BackupError> {
        use redb::TableHandle;
        if dest.exists() {
            return Err(BackupError::Exists(dest.display().to_string()));
        }
        let target = Database::create(dest).map_err(StoreError::from)?;
        let src = self.inner.db.begin_read().map_err(StoreError::from)?;
        let mut dst = target.begin_write().map_err(StoreError::from)?;
        dst.set_durability(Durability::Immediate)
            .map_err(StoreError::from)?;
        let mut copied = Vec::new();
        macro_rules! copy {
            ($t:ident) => {
                let rows = copy_table(&src, &dst, tables::$t)?;
                progress(tables::$t.name(), rows);
                copied.push((tables::$t.name(), rows));
            };
        }
        tables::every_table!(copy);
        dst.commit().map_err(StoreError::from)?;
        Ok(copied)
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
    macro_rules! create {
        ($t:ident) => {
            txn.open_table(tables::$t)?;
        };
    }
    tables::every_table!(create);
    Ok(())
}

/// Copies one table's rows; the types come from its definition.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        // A table this binary knows but the file never created: nothing to copy.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut to = dst.open_table(def)?;
    let mut rows = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        rows += 1;
    }
    Ok(rows)
}

/// The second halves of a `(first, second)`-keyed table's keys whose first half is `first`
/// (the owner's clients, a user's consents).
pub(crate) fn keys_under<V: redb::Value + 'static>(
    table: &impl ReadableTable<(&'static str, &'static str), V>,
    first: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for row in table.range((first, "")..)? {
        let (k, _) = row?;
        let (a, b) = k.value();
        if a != first {
            break;
        }
        out.push(b.to_string());
    }
    Ok(out)
}

/// How many tables the database has (for progress output).
pub fn tables_count() -> usize {
    let mut n = 0;
    macro_rules! one {
        ($t:ident) => {
            n += 1;
        };
    }
    tables::every_table!(one);
    n
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose a new file (a backup never overwrites)")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
