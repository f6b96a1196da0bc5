//! The embedded database: one redb file, opened once per process.
//!
//! redb is synchronous, so nothing here is `async`: async callers go through
//! [`Store::run`], which moves the work onto tokio's blocking pool. Every write commits with
//! `Durability::Immediate`, so an acknowledged write survives a crash.

pub mod authz;
pub mod avatars;
mod batch;
mod checks;
pub mod clients;
pub mod codec;
pub mod codes;
pub mod device;
pub mod events;
pub mod expiry;
pub mod keys;
pub mod kv;
pub mod limits;
pub mod mfa;
mod migrations;
mod pg;
#[cfg(test)]
mod pg_cluster;
pub mod records;
pub mod registration;
pub mod sessions;
pub mod tables;
#[cfg(test)]
pub(crate) mod testing;
pub mod upstreams;
pub mod users;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redb::{Database, Durability, ReadableDatabase};

use kv::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::clock::Clock;

/// The schema version this binary writes. Bump it and add a `migrate_to_vN` step to
/// [`migrations`] whenever a table or a record's meaning changes; a file of every released
/// version is opened by a test (`tests/data/schema-v*.redb`).
pub const SCHEMA_VERSION: u64 = 6;
const SCHEMA_KEY: &str = "schema_version";
/// A meta key the recovery probe writes, so "the store can write again" is proven by a commit.
const WRITE_PROBE_KEY: &str = "write_probe";

/// The default page-cache size: redb's own default (1 GiB) lets RSS grow far past what an
/// auth server needs.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How often, at most, a store that lost its ability to write tries to reopen the file.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// A database URL as shown in logs and messages: its password replaced.
pub fn redacted_url(url: &str) -> String {
    pg::redacted(url)
}

/// One table's name, rows and SHA-256 over its records (see [`Store::table_digests`]).
pub type TableDigest = (&'static str, u64, [u8; 32]);

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
    /// The file cannot be written (disk full, I/O error) until the store has reopened it;
    /// nothing of the failed operation was kept.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// PostgreSQL refused a statement (a fault of ours, not of the database's availability).
    #[error("PostgreSQL error {0}")]
    Postgres(String),
}

impl StoreError {
    /// Whether this is an I/O fault of the file (as opposed to a logic or data error): after
    /// one, redb refuses every later operation until the database is reopened.
    fn is_io(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
            )
        )
    }
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
    redb::SetDurabilityError,
    redb::CompactionError
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
    #[error(
        "the data file {path} is empty (0 bytes), not a portcullis database; restore it from a backup, or delete it to start a new, empty server"
    )]
    Empty { path: String },
    #[error(
        "the data file {path} is not a readable portcullis database ({detail}); it may be truncated or damaged: restore it from a backup"
    )]
    Damaged { path: String, detail: String },
    #[error("no database at {path}; check --data-dir (nothing was created)")]
    Missing { path: String },
    #[error("could not create the data directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("could not open the data file {path}: {source}")]
    Open { path: String, source: StoreError },
    #[error("could not use the PostgreSQL database {url}: {detail}")]
    Postgres { url: String, detail: String },
}

/// How [`Store::open`] treats the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Open it, creating a new database when there is no file (`serve`).
    CreateIfMissing,
    /// Open it only if it exists (`check`, `backup` and other tools that must not create).
    MustExist,
}

/// Options for opening the file.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub mode: OpenMode,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            mode: OpenMode::CreateIfMissing,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while a reopen failed: every operation answers `Unavailable` until a
    /// later attempt succeeds. Transactions hold the read lock for their whole life, so a
    /// reopen (write lock) never closes the file under one.
    db: RwLock<Option<Database>>,
    /// Where to reopen from after an I/O fault; `None` for the in-memory store.
    file: Option<(PathBuf, usize)>,
    clock: Clock,
    /// False from an I/O fault until a reopen and a probe write have succeeded.
    writable: AtomicBool,
    /// Write transactions committed by this process.
    commits: AtomicU64,
    /// Group commit: writes commit without an fsync, then wait for one durable commit that
    /// covers them (see [`Store::write`]).
    group: GroupCommit,
    /// Set while [`Store::deferring_durability`] runs: writes do not wait for a durable commit.
    deferred: AtomicBool,
    /// The queue to the batching writer thread (see [`batch`]).
    batcher: batch::Batcher,
    /// The PostgreSQL backend; `None` for redb (then `db` is the database).
    pg: Option<Arc<pg::PgBackend>>,
    /// When recovery was last tried; held while trying, so only one thread reopens.
    last_recovery: Mutex<Option<Instant>>,
}

/// The state of group commit (see [`Store::write`]).
#[derive(Default)]
struct GroupCommit {
    state: Mutex<GroupState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct GroupState {
    /// Writes committed (not yet necessarily durable), numbered from 1.
    written: u64,
    /// Writes begun and not yet committed or failed: a leader about to make a durable commit
    /// waits a moment for them, so one fsync covers them too.
    in_flight: u64,
    /// Every write up to this number is durable.
    durable: u64,
    /// A thread is making a durable commit.
    leading: bool,
    /// Writes up to this number were lost with a failed durable commit or a reopen, and why.
    failed: Option<(u64, String)>,
    durable_commits: u64,
}

/// A write under way (see [`GroupCommit::begin`]).
struct InFlight<'a>(&'a GroupCommit);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        let wake = s.leading && s.in_flight == 0;
        drop(s);
        if wake {
            self.0.changed.notify_all();
        }
    }
}

/// The longest a durable commit waits for writes under way to join it: bounds the latency
/// group commit adds to a write.
const GATHER: Duration = Duration::from_millis(2);

/// What a writer waiting for durability is to do.
enum Claim {
    Durable,
    Failed(String),
    /// Make the durable commit.
    Lead,
}

impl GroupCommit {
    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A write begins; it counts as under way until the guard drops (committed, failed or
    /// panicked alike).
    fn begin(&self) -> InFlight<'_> {
        self.lock().in_flight += 1;
        InFlight(self)
    }

    /// Numbers a write that just committed.
    fn committed(&self) -> u64 {
        let mut s = self.lock();
        s.written += 1;
        s.written
    }

    /// The leader, before its durable commit: waits until the writes under way have
    /// committed (so its fsync covers them), at most [`GATHER`].
    fn gather(&self) {
        let deadline = Instant::now() + GATHER;
        let mut s = self.lock();
        while s.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn written(&self) -> u64 {
        self.lock().written
    }

    fn durable_commits(&self) -> u64 {
        self.lock().durable_commits
    }

    /// Blocks until write `seq` is durable or lost, or this thread is to lead.
    fn claim(&self, seq: u64) -> Claim {
        let mut s = self.lock();
        loop {
            if s.durable >= seq {
                return Claim::Durable;
            }
            if let Some((through, why)) = &s.failed
                && *through >= seq
            {
                return Claim::Failed(why.clone());
            }
            if !s.leading {
                s.leading = true;
                return Claim::Lead;
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The file was reopened after a fault: writes numbered so far that were not durable
    /// are gone with the old handle. (Numbering happens under the handle's read lock and a
    /// reopen takes its write lock, so every write committed before the reopen is numbered.)
    fn reopened(&self) {
        let mut s = self.lock();
        if s.written > s.durable {
            s.failed = Some((
                s.written,
                "the database was reopened before this write was durable".into(),
            ));
        }
        drop(s);
        self.changed.notify_all();
    }

    /// A durable commit made outside the leader protocol (the batching writer's) covered every
    /// write numbered up to `through`.
    fn covered(&self, through: u64) {
        let mut s = self.lock();
        s.durable = s.durable.max(through);
        s.durable_commits += 1;
        drop(s);
        self.changed.notify_all();
    }

    /// The leader's durable commit is done: everything through the number is durable, or
    /// lost with the error.
    fn finish(&self, outcome: Result<u64, (u64, String)>) {
        let mut s = self.lock();
        s.leading = false;
        match outcome {
            Ok(through) => {
                s.durable = s.durable.max(through);
                s.durable_commits += 1;
            }
            Err((through, why)) => {
                if through > s.durable {
                    s.failed = Some((through, why));
                }
            }
        }
        drop(s);
        self.changed.notify_all();
    }
}

impl Store {
    /// Opens the database file at `path` (see [`OpenMode`]), checking its schema version.
    /// Fails fast if another process holds the file, and refuses an empty or unreadable file
    /// instead of starting a new server on top of it.
    pub fn open(path: &Path, clock: Clock) -> Result<Self, OpenError> {
        Self::open_with(path, clock, OpenOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(path: &Path, clock: Clock, options: OpenOptions) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        let exists = match std::fs::metadata(path) {
            Ok(meta) if meta.len() == 0 => return Err(OpenError::Empty { path: shown }),
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(OpenError::Open {
                    path: shown,
                    source: StoreError::Database(redb::Error::Io(e)),
                });
            }
        };
        if !exists {
            if options.mode == OpenMode::MustExist {
                return Err(OpenError::Missing { path: shown });
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            tracing::info!(path = %shown, "no database yet: creating a new one");
        }
        let db = open_file(path, options.cache_bytes, exists).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen {
                path: shown.clone(),
            },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                OpenError::Damaged {
                    path: shown.clone(),
                    detail,
                }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                OpenError::Damaged {
                    path: shown.clone(),
                    detail: "the file ends early".into(),
                }
            }
            e => OpenError::Open {
                path: shown.clone(),
                source: e.into(),
            },
        })?;
        Self::init(
            Some(db),
            None,
            Some((path.to_path_buf(), options.cache_bytes)),
            clock,
            shown,
        )
    }

    /// An in-memory database (dev mode, spec export). Nothing is written to disk.
    pub fn open_in_memory(clock: Clock) -> Result<Self, OpenError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| OpenError::Open {
                path: ":memory:".into(),
                source: e.into(),
            })?;
        Self::init(Some(db), None, None, clock, ":memory:".into())
    }

    /// Opens the PostgreSQL database at `url` (`--database-url`), creating its tables and
    /// migrating them as [`Store::open`] does a file. Several processes may open one database:
    /// they serve as one (see [`pg`]).
    pub fn open_postgres(
        url: &str,
        clock: Clock,
        max_connections: usize,
    ) -> Result<Self, OpenError> {
        let backend =
            pg::PgBackend::connect(url, max_connections).map_err(|detail| OpenError::Postgres {
                url: pg::redacted(url),
                detail,
            })?;
        let shown = backend.shown.clone();
        tracing::info!(database = %shown, "using PostgreSQL");
        Self::init(None, Some(backend), None, clock, shown)
    }

    fn init(
        db: Option<Database>,
        pg: Option<Arc<pg::PgBackend>>,
        file: Option<(PathBuf, usize)>,
        clock: Clock,
        shown: String,
    ) -> Result<Self, OpenError> {
        let store = Self {
            inner: Arc::new(Inner {
                db: RwLock::new(db),
                file,
                clock,
                writable: AtomicBool::new(true),
                commits: AtomicU64::new(0),
                group: GroupCommit::default(),
                deferred: AtomicBool::new(false),
                batcher: batch::Batcher::default(),
                last_recovery: Mutex::new(None),
                pg,
            }),
        };
        let open_error = |source| OpenError::Open {
            path: shown.clone(),
            source,
        };
        // A newer database is refused before anything is written to it.
        let schema_version = |txn: &ReadTransaction| -> Result<Option<u64>, StoreError> {
            match txn.try_open_table(tables::META)? {
                Some(meta) => Ok(meta.get(SCHEMA_KEY)?.map(|v| v.value())),
                None => Ok(None),
            }
        };
        let newer = |found: u64| OpenError::NewerSchema {
            path: shown.clone(),
            found,
            supported: SCHEMA_VERSION,
        };
        let found = store.read(schema_version).map_err(open_error)?;
        if let Some(v) = found.filter(|v| *v > SCHEMA_VERSION) {
            return Err(newer(v));
        }
        let raced = store
            .write(|txn| {
                // Another node may have migrated the database while this one waited for the
                // write lock (PostgreSQL): decide on what is there now, before writing.
                txn.create_table(tables::META)?;
                let found = txn
                    .open_table(tables::META)?
                    .get(SCHEMA_KEY)?
                    .map(|v| v.value());
                if let Some(v) = found.filter(|v| *v > SCHEMA_VERSION) {
                    return Ok(Some(v));
                }
                // Create every table up front so read transactions never meet a missing one.
                create_all_tables(txn)?;
                // Migrations run in the opening transaction: all of them or none.
                if let Some(v) = found {
                    migrations::run(txn, v)?;
                }
                txn.open_table(tables::META)?
                    .insert(SCHEMA_KEY, SCHEMA_VERSION)?;
                Ok(None)
            })
            .map_err(open_error)?;
        match raced {
            Some(v) => Err(newer(v)),
            None => Ok(store),
        }
    }

    /// Runs the housekeeping `f` unless another node sharing the database is running it right
    /// now (then `Ok(None)`): on PostgreSQL a session advisory lock makes one node at a time
    /// the sweeper; a redb file has one process, which simply runs it.
    pub fn as_only_sweeper<T>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match &self.inner.pg {
            Some(pg) => pg.with_lock(pg::SWEEP_LOCK, f)?.transpose(),
            None => f().map(Some),
        }
    }

    /// Whether this store is on PostgreSQL (shared with other nodes) rather than a file.
    pub fn is_shared(&self) -> bool {
        self.inner.pg.is_some()
    }

    /// Runs `f` on the open database. An I/O fault marks the store unwritable and is answered
    /// as [`StoreError::Unavailable`]; while unwritable, each call first tries (at most once a
    /// second) to reopen the file, so the store heals by itself once the disk has room again.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.inner.writable.load(Ordering::Acquire) {
            self.try_recover();
        }
        let result = {
            let guard = self.inner.db.read().unwrap_or_else(PoisonError::into_inner);
            let Some(db) = guard.as_ref() else {
                return Err(StoreError::Unavailable(
                    "the database could not be reopened after an I/O error".into(),
                ));
            };
            f(db)
        };
        // The handle is released before the fault is recorded, so a recovery under way never
        // waits on this thread.
        match result {
            Err(e) if e.is_io() => {
                // The next reopen waits a full interval: a file that just failed is not tried
                // again at once, and probes in that interval see the fault.
                *self
                    .inner
                    .last_recovery
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                if self.inner.writable.swap(false, Ordering::AcqRel) {
                    tracing::error!(error = %e, "storage I/O failed; answering 503 until the database can be reopened and written");
                }
                Err(StoreError::Unavailable(e.to_string()))
            }
            other => other,
        }
    }

    /// Write transactions this process has committed (for `/metrics`, and for tests that
    /// prove a read path writes nothing).
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Whether the last operations could write. False from an I/O fault until a reopen and
    /// a probe write succeed; `/readyz` reports it.
    pub fn writable(&self) -> bool {
        self.inner.writable.load(Ordering::Acquire)
    }

    /// Tries once to bring an unwritable store back: reopens the file (redb repairs it from
    /// its last durable commit, so nothing acknowledged is lost) and proves a write commits.
    /// Returns whether the store is writable afterwards.
    pub fn try_recover(&self) -> bool {
        if self.inner.pg.is_some() {
            // The pool replaces lost connections by itself.
            return self.writable();
        }
        let Ok(mut last) = self.inner.last_recovery.try_lock() else {
            // Another thread is recovering right now.
            return self.writable();
        };
        if self.writable() {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < RECOVERY_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        // `try_write`, polled: a blocking `write` would queue ahead of readers and could
        // deadlock a thread that nests a read inside a transaction.
        let deadline = Instant::now() + RECOVERY_INTERVAL;
        let mut db = loop {
            match self.inner.db.try_write() {
                Ok(guard) => break guard,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(std::sync::TryLockError::WouldBlock) => return false,
            }
        };
        if let Some((path, cache_bytes)) = &self.inner.file {
            // Close first: redb allows one handle per file, and the old one is unusable.
            drop(db.take());
            match open_file(path, *cache_bytes, true) {
                Ok(reopened) => {
                    *db = Some(reopened);
                    self.inner.group.reopened();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reopening the database failed; will retry");
                    return false;
                }
            }
        }
        let Some(handle) = db.as_ref() else {
            return false;
        };
        let now = self.clock().now();
        let probe = (|| -> Result<(), StoreError> {
            let mut txn = handle.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            let txn = WriteTransaction::redb(txn);
            txn.open_table(tables::META)?
                .insert(WRITE_PROBE_KEY, now.max(0) as u64)?;
            txn.commit()?;
            Ok(())
        })();
        match probe {
            Ok(()) => {
                self.inner.writable.store(true, Ordering::Release);
                tracing::info!("storage recovered: the database was reopened and accepts writes");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the database still cannot write; will retry");
                false
            }
        }
    }

    /// The clock records are timed against.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Runs `f` in a write transaction and commits it; returns once the commit is durable.
    /// On error the transaction is dropped, so nothing it wrote is kept.
    ///
    /// Group commit: each write commits on its own (redb `Durability::None`: visible at once,
    /// no fsync), so a failing write fails alone; then one thread — whichever finds no
    /// durable commit under way — makes a durable commit, whose fsync persists every write
    /// committed before it. Writes arriving meanwhile commit behind it and are covered by the
    /// next one. A caller is answered only after a durable commit covers its write, so
    /// nothing acknowledged is lost to a crash, and concurrent writers share one fsync.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(pg) = &self.inner.pg {
            // PostgreSQL commits durably by itself (and groups concurrent commits' WAL
            // flushes); the group commit below is redb's.
            let txn = WriteTransaction::pg(pg.begin(true)?);
            let out = f(&txn)?;
            txn.commit()?;
            self.inner.commits.fetch_add(1, Ordering::Relaxed);
            return Ok(out);
        }
        let group = &self.inner.group;
        let under_way = group.begin();
        let (out, seq) = self.with_db(|db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::None)?;
            let txn = WriteTransaction::redb(txn);
            let out = f(&txn)?;
            txn.commit()?;
            // Numbered under the handle's read lock: a reopen cannot come in between.
            Ok((out, group.committed()))
        })?;
        drop(under_way);
        self.inner.commits.fetch_add(1, Ordering::Relaxed);
        if !self.inner.deferred.load(Ordering::Acquire) {
            self.wait_durable(seq)?;
        }
        Ok(out)
    }

    /// Runs `f` — start-up work, before anything is served — with writes that do not each wait
    /// for an fsync, then makes them durable with one. Nothing `f` wrote has been handed to
    /// anyone before that, so a crash in between only means it is made again at the next start.
    pub fn deferring_durability<T>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.inner.deferred.store(true, Ordering::Release);
        let out = f();
        self.inner.deferred.store(false, Ordering::Release);
        let out = out?;
        let seq = self.inner.group.written();
        self.wait_durable(seq)?;
        Ok(out)
    }

    /// Returns once the write numbered `seq` is durable, making the durable commit itself
    /// when no other thread is.
    fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        if self.inner.pg.is_some() {
            return Ok(());
        }
        let group = &self.inner.group;
        loop {
            match group.claim(seq) {
                Claim::Durable => return Ok(()),
                Claim::Failed(why) => return Err(StoreError::Unavailable(why)),
                Claim::Lead => {
                    group.gather();
                    let result = self.with_db(|db| {
                        let mut txn = db.begin_write()?;
                        txn.set_durability(Durability::Immediate)?;
                        // Every write numbered up to here committed before this transaction
                        // began (redb runs one write transaction at a time), so this commit
                        // makes them all durable.
                        let through = group.written();
                        txn.commit()?;
                        Ok(through)
                    });
                    match result {
                        Ok(through) => {
                            // A durable commit proves the file writable (after a reopen
                            // whose probe failed).
                            self.inner.writable.store(true, Ordering::Release);
                            group.finish(Ok(through));
                        }
                        Err(e) => group.finish(Err((group.written(), e.to_string()))),
                    }
                }
            }
        }
    }

    /// Moves live pages to the front of the file and truncates it: after a bulk import the
    /// file holds room it grew for and no longer needs. For tools (`import`, `backup`): it
    /// waits for every transaction of this process to end and blocks new ones meanwhile.
    pub fn compact(&self) -> Result<(), StoreError> {
        if self.inner.pg.is_some() {
            // PostgreSQL reclaims room with its own (auto)vacuum.
            return Ok(());
        }
        let mut guard = self
            .inner
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let db = guard
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("the database is not open".into()))?;
        db.compact()?;
        Ok(())
    }

    /// Books a durable commit of `writes` batched writes, which also covered every write
    /// numbered up to `through`.
    fn committed_durably(&self, writes: u64, through: u64) {
        self.inner.commits.fetch_add(writes, Ordering::Relaxed);
        // A durable commit proves the file writable (after a reopen whose probe failed).
        self.inner.writable.store(true, Ordering::Release);
        self.inner.group.covered(through);
    }

    /// Durable commits (fsyncs) this process has made; with [`Store::commits`], the average
    /// group size.
    pub fn durable_commits(&self) -> u64 {
        self.inner.group.durable_commits()
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(pg) = &self.inner.pg {
            return f(&ReadTransaction::pg(pg.begin(false)?));
        }
        self.with_db(|db| {
            let txn = ReadTransaction::redb(db.begin_read()?);
            f(&txn)
        })
    }

    /// Runs a point read right here, on the calling (async worker) thread: for the hot reads
    /// of every authenticated request (a user, a client, a token's liveness), which take
    /// microseconds when their pages are cached, so the hop to the blocking pool and back
    /// (two context switches) would cost more than the read. Never for scans or writes: those
    /// go through [`Store::run`].
    ///
    /// On PostgreSQL a point read is a network round trip: the async worker lends its place
    /// to another thread meanwhile (`block_in_place`), so other requests keep running.
    pub fn point_read<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.inner.pg.is_none() {
            return f(self);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| f(self))
            }
            _ => f(self),
        }
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
            .map_err(|e| {
                // redb can panic on pages it cannot make sense of: the request gets a 500,
                // the process carries on, and the log says what to do.
                if e.is_panic() {
                    tracing::error!(
                        "a database operation panicked, which points at a damaged file; run `portcullis check`"
                    );
                }
                StoreError::Task(e.to_string())
            })?
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
        self.read(|txn| {
            let mut out = Vec::new();
            macro_rules! count {
                ($t:ident, $check:expr) => {
                    out.push((tables::$t.name(), txn.open_table(tables::$t)?.len()?));
                };
            }
            tables::every_table!(count);
            Ok(out)
        })
    }

    /// A consistent copy of the whole database, made while the server keeps serving (one read
    /// transaction: writes go on meanwhile and are not in it), as an open file that is
    /// already unlinked: it vanishes when the caller closes it, whatever happens. It is
    /// written next to the database file (the same disk, and its size again in free space),
    /// or in the temp directory for the in-memory store.
    pub fn snapshot(&self) -> Result<std::fs::File, BackupError> {
        let dir = match &self.inner.file {
            Some((path, _)) => path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            None => std::env::temp_dir(),
        };
        let name = format!(
            ".portcullis-snapshot-{}.redb",
            crate::token::opaque::random_token(9)
        );
        let path = dir.join(name);
        let made = self.backup_to(&path, |_, _| {});
        let opened = made.and_then(|_| std::fs::File::open(&path).map_err(BackupError::Io));
        // Unlinked at once, success or not: an open file stays readable until closed.
        let _ = std::fs::remove_file(&path);
        opened
    }

    /// Copies every table, as of one consistent read, into a new database file at `dest`
    /// (which must not exist), calling `progress(table, rows)` after each table. The copy is
    /// also compact: it holds only live pages. Works from either backend: a PostgreSQL
    /// database can be backed up into a file.
    pub fn backup_to(
        &self,
        dest: &Path,
        progress: impl FnMut(&str, u64),
    ) -> Result<Vec<(&'static str, u64)>, BackupError> {
        if dest.exists() {
            return Err(BackupError::Exists(dest.display().to_string()));
        }
        let target = Store::open(dest, self.clock().clone())?;
        Ok(self.copy_into(&target, progress)?)
    }

    /// Copies every row of every table, as of one consistent read of this store, into
    /// `target` in one transaction (all or nothing), calling `progress(table, rows)` after
    /// each table; returns the rows copied per table. Rows already in `target` under the
    /// same keys are replaced; `portcullis migrate` copies only into an empty database.
    pub fn copy_into(
        &self,
        target: &Store,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<Vec<(&'static str, u64)>, StoreError> {
        self.read(|src| {
            target.write(|dst| {
                let mut copied = Vec::new();
                macro_rules! copy {
                    ($t:ident, $check:expr) => {
                        let rows = copy_table(src, dst, tables::$t)?;
                        progress(tables::$t.name(), rows);
                        copied.push((tables::$t.name(), rows));
                    };
                }
                tables::every_table!(copy);
                Ok(copied)
            })
        })
    }

    /// Per table: its rows and a SHA-256 over every key and value in key order, as of one
    /// consistent read. Equal digests on two stores (of either backend) mean equal contents:
    /// `portcullis migrate` checks its copy with them.
    pub fn table_digests(&self) -> Result<Vec<TableDigest>, StoreError> {
        self.read(|txn| {
            let mut out = Vec::new();
            macro_rules! digest {
                ($t:ident, $check:expr) => {
                    let (rows, sum) = digest_table(txn, tables::$t)?;
                    out.push((tables::$t.name(), rows, sum));
                };
            }
            tables::every_table!(digest);
            Ok(out)
        })
    }

    /// Reads every record of every table and checks it (JSON records decode, index entries
    /// point at existing users, avatars are PNG, secrets have their length), returning one
    /// line per problem naming the table and key (empty when every record is sound).
    pub fn verify(&self) -> Result<Vec<String>, StoreError> {
        self.read(|txn| {
            let mut problems = Vec::new();
            let mut ctx = checks::Context::default();
            for row in txn.open_table(tables::USERS)?.iter()? {
                let (k, _) = row?;
                ctx.user_ids.insert(k.value().to_string());
            }
            macro_rules! verify {
                ($t:ident, $check:expr) => {
                    let table = txn.open_table(tables::$t)?;
                    let name = tables::$t.name();
                    match table.iter() {
                        Ok(rows) => {
                            for row in rows {
                                match row {
                                    Ok((k, v)) => {
                                        if let Err(e) = $check(&ctx, v.value()) {
                                            problems.push(format!(
                                                "table `{name}`, key {}: {e}",
                                                checks::ShowKey::show(&k.value())
                                            ));
                                        }
                                    }
                                    Err(e) => {
                                        problems
                                            .push(format!("table `{name}`: unreadable row: {e}"));
                                        break;
                                    }
                                }
                            }
                        }
                        Err(e) => problems.push(format!("table `{name}`: unreadable: {e}")),
                    }
                };
            }
            tables::every_table!(verify);
            Ok(problems)
        })
    }
}

/// What redb's own integrity check found in a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// Every page checksum and tree is sound.
    Sound,
    /// The file was damaged (or not closed cleanly) and redb had to repair the copy checked.
    Repaired,
    /// Damage redb cannot repair.
    Corrupt(String),
}

/// Runs redb's integrity check (page checksums, tree structure, allocator state) on a copy
/// of the file at `path` made in `scratch`, so the file itself is never repaired or changed.
/// Run it while no process has the file open.
pub fn check_file_integrity(path: &Path, scratch: &Path) -> Result<Integrity, StoreError> {
    let copy = scratch.join(format!("portcullis-check-{}.redb", std::process::id()));
    std::fs::copy(path, &copy).map_err(|e| StoreError::Database(redb::Error::Io(e)))?;
    let result = (|| {
        let repaired = Arc::new(AtomicBool::new(false));
        let flag = repaired.clone();
        let mut builder = Database::builder();
        builder.set_repair_callback(move |_| flag.store(true, Ordering::Relaxed));
        let mut db = match builder.open(&copy) {
            Ok(db) => db,
            Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail))) => {
                return Ok(Integrity::Corrupt(detail));
            }
            Err(e) => return Err(StoreError::from(e)),
        };
        match db.check_integrity() {
            Ok(true) if !repaired.load(Ordering::Relaxed) => Ok(Integrity::Sound),
            Ok(_) => Ok(Integrity::Repaired),
            Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail))) => {
                Ok(Integrity::Corrupt(detail))
            }
            Err(e) => Err(StoreError::from(e)),
        }
    })();
    let _ = std::fs::remove_file(&copy);
    result
}

/// Opens (or, when `exists` is false, creates) the file with the given cache size.
fn open_file(
    path: &Path,
    cache_bytes: usize,
    exists: bool,
) -> Result<Database, redb::DatabaseError> {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    if exists {
        builder.open(path)
    } else {
        builder.create(path)
    }
}

fn create_all_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    macro_rules! create {
        ($t:ident, $check:expr) => {
            txn.create_table(tables::$t)?;
        };
    }
    tables::every_table!(create);
    Ok(())
}

/// Copies one table's rows; the types come from its definition.
fn copy_table<K: kv::KeyCodec, V: redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: kv::Table<K, V>,
) -> Result<u64, StoreError> {
    // A table this binary knows but the source never created: nothing to copy.
    let Some(from) = src.try_open_table(def)? else {
        return Ok(0);
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

/// The rows of one table and a digest of their keys and values (see [`Store::table_digests`]).
fn digest_table<K: kv::KeyCodec, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: kv::Table<K, V>,
) -> Result<(u64, [u8; 32]), StoreError> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut rows = 0;
    if let Some(table) = txn.try_open_table(def)? {
        for row in table.iter()? {
            let (k, v) = row?;
            let (key, value) = (k.value(), v.value());
            let (key, value) = (K::as_bytes(&key), V::as_bytes(&value));
            for part in [key.as_ref(), value.as_ref()] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
            rows += 1;
        }
    }
    Ok((rows, hasher.finalize().into()))
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
        ($t:ident, $check:expr) => {
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
    #[error("could not read the copy back: {0}")]
    Io(std::io::Error),
    #[error("could not create the copy: {0}")]
    Create(#[from] OpenError),
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
    fn an_empty_file_is_refused_not_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        std::fs::write(&path, b"").unwrap();
        let err = Store::open(&path, Clock::system()).err().unwrap();
        assert!(matches!(err, OpenError::Empty { .. }), "{err}");
        assert!(err.to_string().contains("empty (0 bytes)"), "{err}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left untouched");
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        {
            let store = Store::open(&path, Clock::system()).unwrap();
            store
                .write(|txn| {
                    let mut t = txn.open_table(tables::USERNAMES)?;
                    for i in 0..2000 {
                        t.insert(format!("user{i}").as_str(), "id")?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        let len = std::fs::metadata(&path).unwrap().len();
        for cut in [100, 1000, len / 2] {
            let copy = dir.path().join(format!("cut{cut}.redb"));
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&copy, &bytes[..cut as usize]).unwrap();
            match Store::open(&copy, Clock::system()) {
                Err(e) => assert!(
                    matches!(e, OpenError::Damaged { .. }) && e.to_string().contains("restore"),
                    "cut at {cut}: {e}"
                ),
                Ok(store) => {
                    // redb may repair a cut-off tail from its last durable commit; what it
                    // must never do is start over as an empty database.
                    let n = store
                        .read(|txn| txn.open_table(tables::USERNAMES)?.len())
                        .unwrap();
                    assert_eq!(n, 2000, "cut at {cut} opened as a different database");
                }
            }
        }
    }

    #[test]
    fn must_exist_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo").join("p.redb");
        let options = OpenOptions {
            mode: OpenMode::MustExist,
            ..OpenOptions::default()
        };
        let err = Store::open_with(&path, Clock::system(), options)
            .err()
            .unwrap();
        assert!(matches!(err, OpenError::Missing { .. }), "{err}");
        assert!(!dir.path().join("typo").exists(), "no directory created");
    }

    #[test]
    fn verify_names_the_table_and_key_of_every_bad_record() {
        for (backend, store) in crate::store::testing::stores(&Clock::manual()) {
            println!("on {backend}");
            assert_eq!(
                store.verify().unwrap(),
                Vec::<String>::new(),
                "a new store is sound"
            );
            let garbage: &[u8] = b"{not json";
            let json_tables = [
                "users",
                "refresh_tokens",
                "session_families",
                "signing_keys",
                "email_codes",
                "captchas",
                "clients",
                "revoked_tokens",
                "auth_requests",
                "auth_codes",
                "browser_sessions",
                "jwt_keys",
            ];
            store
                .write(|txn| {
                    macro_rules! put {
                        ($t:expr, $k:expr, $v:expr) => {
                            txn.open_table($t)?.insert($k, $v)?;
                        };
                    }
                    put!(tables::USERS, "u1", garbage);
                    put!(tables::REFRESH_TOKENS, b"rt".as_slice(), garbage);
                    put!(tables::SESSION_FAMILIES, b"sf".as_slice(), garbage);
                    put!(tables::SIGNING_KEYS, "sk", garbage);
                    put!(tables::EMAIL_CODES, b"ec".as_slice(), garbage);
                    put!(tables::CAPTCHAS, b"ca".as_slice(), garbage);
                    put!(tables::CLIENTS, "cl", garbage);
                    put!(tables::REVOKED_TOKENS, b"rv".as_slice(), garbage);
                    put!(tables::AUTH_REQUESTS, b"ar".as_slice(), garbage);
                    put!(tables::AUTH_CODES, b"ac".as_slice(), garbage);
                    put!(tables::BROWSER_SESSIONS, b"bs".as_slice(), garbage);
                    put!(tables::JWT_KEYS, "jk", garbage);
                    put!(tables::USERNAMES, "ghost", "no-such-user");
                    put!(tables::EMAILS, "ghost@example.test", "no-such-user");
                    put!(tables::API_KEYS, [7u8; 32].as_slice(), "no-such-user");
                    put!(tables::AVATARS, "u1", b"GIF89a".as_slice());
                    put!(tables::SECRETS, "hmac", b"short".as_slice());
                    put!(tables::CONSENTS, ("u1", "cl"), "bad\\scope");
                    Ok(())
                })
                .unwrap();
            let problems = store.verify().unwrap();
            let mut expected: Vec<&str> = json_tables.to_vec();
            expected.extend([
                "usernames",
                "emails",
                "api_keys",
                "avatars",
                "secrets",
                "consents",
            ]);
            for table in expected {
                assert!(
                    problems
                        .iter()
                        .any(|p| p.starts_with(&format!("table `{table}`, key "))),
                    "{table} not reported in {problems:#?}"
                );
            }
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(r#"key "u1": does not decode"#))
            );
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains("points at user \"no-such-user\""))
            );
        }
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
        for (backend, store) in crate::store::testing::stores(&Clock::manual()) {
            println!("on {backend}");
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
}
