//! The PostgreSQL backend of the key-value interface ([`super::kv`]), through `tokio-postgres`
//! and a small pool of connections.
//!
//! **One writer at a time, across every node.** Each write transaction begins by taking one
//! transaction-scoped advisory lock (`pg_advisory_xact_lock`), held to its commit. So write
//! transactions run one after another on the whole cluster, as they do on a redb file, and
//! every store operation (a rotation, a redemption, a registration with its indexes) keeps
//! the meaning it has on redb: the check and the write it makes see no other writer in
//! between, whichever node runs it. Read transactions are `REPEATABLE READ READ ONLY`
//! snapshots and never wait for the lock. The price is that writes do not run in parallel;
//! the batching writer (see `batch`) puts many of them in one transaction, and PostgreSQL
//! commits each transaction durably (`synchronous_commit`, its default).
//!
//! The store's code is synchronous (redb is); each statement here is run on this backend's
//! own runtime thread and waited for, so the store can be used from any thread, including
//! from inside async code (briefly blocking it, as a redb read does).

use std::{
    collections::HashMap,
    future::Future,
    ops::Bound,
    sync::{Arc, Condvar, Mutex, PoisonError},
    time::Duration,
};

use tokio_postgres::{Client, Statement, types::ToSql};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// The advisory lock every write transaction holds (`portcullis` in ASCII, truncated).
const WRITE_LOCK: i64 = 0x706f_7274_6375;
/// The advisory lock the node sweeping expired records holds while it sweeps.
pub(crate) const SWEEP_LOCK: i64 = 0x706f_7274_7377;
/// How long one statement (or a wait for a pool connection) may take before the operation
/// fails as unavailable rather than hanging a request.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A pool of connections to one PostgreSQL database.
pub(crate) struct PgBackend {
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    /// TLS for connections whose `sslmode` asks for it (`prefer`, the default, tries it).
    tls: MakeRustlsConnect,
    pool: Mutex<PoolState>,
    returned: Condvar,
    /// Whether a write transaction of this process is open. Writes run one at a time on the
    /// whole cluster anyway (the advisory lock), so letting only one per process wait for the
    /// lock costs nothing, and keeps the other connections for reads: a write that reads
    /// through a second transaction never waits for a connection held by writers queued
    /// behind it.
    writing: Mutex<bool>,
    write_done: Condvar,
    max_connections: usize,
    /// The URL without its password, for messages.
    pub(crate) shown: String,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    /// Connections open (idle or in use).
    open: usize,
}

struct Conn {
    client: Arc<Client>,
    statements: HashMap<String, Statement>,
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // A runtime may not be dropped (which blocks) inside async code; let its thread go.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {e}"))
}

/// SQLSTATE classes that say the database cannot serve right now, not that the statement is
/// wrong: connection exceptions (08), transaction rollbacks such as serialisation failures
/// and deadlocks (40), insufficient resources such as too many connections or a full disk
/// (53), operator intervention such as a shutdown (57).
const TRANSIENT_CLASSES: [&str; 4] = ["08", "40", "53", "57"];

/// A PostgreSQL error as a store error: the server's refusals of a statement are errors of
/// ours (500); a lost connection or a database that cannot serve now is unavailability (503).
fn from_pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if !TRANSIENT_CLASSES.contains(&db.code().code().get(..2).unwrap_or_default()) => {
            StoreError::Postgres(format!("{}: {}", db.code().code(), db.message()))
        }
        _ => unavailable(e),
    }
}

/// The URL shown in messages: its password replaced.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(an unparsable database URL)".into(),
    }
}

impl PgBackend {
    /// Connects to `url` (`postgres://user:password@host:port/db?...`), proving the database
    /// answers.
    pub(crate) fn connect(url: &str, max_connections: usize) -> Result<Arc<Self>, String> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("the database URL is not valid: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("portcullis-pg")
            .enable_all()
            .build()
            .map_err(|e| format!("could not start the database thread: {e}"))?;
        let tls = MakeRustlsConnect::new(crate::outbound::tls_config()?);
        let backend = Arc::new(Self {
            runtime: Some(runtime),
            config,
            tls,
            pool: Mutex::new(PoolState::default()),
            returned: Condvar::new(),
            writing: Mutex::new(false),
            write_done: Condvar::new(),
            max_connections: max_connections.max(1),
            shown: redacted(url),
        });
        let conn = backend.take().map_err(|e| e.to_string())?;
        backend.give_back(conn);
        Ok(backend)
    }

    /// Runs `fut` on the backend's runtime and waits for it, at most [`STATEMENT_TIMEOUT`].
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(rt) = &self.runtime else {
            return Err(unavailable("the database is closed"));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let out = match tokio::time::timeout(STATEMENT_TIMEOUT, fut).await {
                Ok(out) => out,
                Err(_) => Err(unavailable("a statement took longer than 30 s")),
            };
            let _ = tx.send(out);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(unavailable("the database thread dropped a statement")))
    }

    /// A connection from the pool, or a new one while fewer than the maximum are open.
    fn take(&self) -> Result<Conn, StoreError> {
        let deadline = std::time::Instant::now() + STATEMENT_TIMEOUT;
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            while let Some(conn) = pool.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                pool.open -= 1;
            }
            if pool.open < self.max_connections {
                pool.open += 1;
                drop(pool);
                let (config, tls) = (self.config.clone(), self.tls.clone());
                let made = self.block(async move {
                    let (client, connection) = config.connect(tls).await.map_err(from_pg)?;
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::warn!(error = %e, "a PostgreSQL connection ended");
                        }
                    });
                    Ok(client)
                });
                return match made {
                    Ok(client) => Ok(Conn {
                        client: Arc::new(client),
                        statements: HashMap::new(),
                    }),
                    Err(e) => {
                        self.lost();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(unavailable(
                    "no database connection became free within 30 s",
                ));
            }
            pool = self
                .returned
                .wait_timeout(pool, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn give_back(&self, conn: Conn) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(conn);
        }
        drop(pool);
        self.returned.notify_one();
    }

    /// A connection in use was lost (or never made).
    fn lost(&self) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        pool.open = pool.open.saturating_sub(1);
        drop(pool);
        self.returned.notify_one();
    }

    /// Begins a transaction: a write transaction holds the cluster-wide write lock. The
    /// `BEGIN` goes out with the transaction's first statement (one round trip, not two), and
    /// a transaction that runs no statement costs none.
    pub(crate) fn begin(self: &Arc<Self>, write: bool) -> Result<Txn, StoreError> {
        let slot = if write {
            Some(self.write_slot()?)
        } else {
            None
        };
        let conn = self.take()?;
        let begin = if write {
            format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
            )
        } else {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_string()
        };
        Ok(Txn {
            backend: self.clone(),
            conn: Mutex::new(Some(conn)),
            begin: Mutex::new(Some(begin)),
            finished: false,
            _slot: slot,
        })
    }

    /// Waits (at most [`STATEMENT_TIMEOUT`]) until no other write transaction of this process
    /// is open, and marks one open until the slot drops.
    fn write_slot(self: &Arc<Self>) -> Result<WriteSlot, StoreError> {
        let deadline = std::time::Instant::now() + STATEMENT_TIMEOUT;
        let mut writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        while *writing {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(unavailable("no write could start within 30 s"));
            }
            writing = self
                .write_done
                .wait_timeout(writing, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *writing = true;
        Ok(WriteSlot(self.clone()))
    }

    /// Runs `f` while holding the session-level advisory lock `key`, or returns `None`
    /// without running it when another session (another node) holds it.
    pub(crate) fn with_lock<T>(
        self: &Arc<Self>,
        key: i64,
        f: impl FnOnce() -> T,
    ) -> Result<Option<T>, StoreError> {
        let conn = self.take()?;
        let client = conn.client.clone();
        // Until it is known not to hold the lock (the attempt said no, or the unlock
        // succeeded), the connection is closed when done with, which releases the lock,
        // rather than put back in the pool: also if the attempt fails or `f` panics.
        let mut lent = Lent {
            backend: self,
            conn: Some(conn),
            clean: false,
        };
        let locking = client.clone();
        let got = self.block(async move {
            let client = locking;
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(from_pg)?;
            Ok(row.get::<_, bool>(0))
        });
        if !got? {
            lent.clean = true;
            return Ok(None);
        }
        let out = f();
        lent.clean = self
            .block(async move {
                client
                    .execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .await
                    .map_err(from_pg)
            })
            .is_ok();
        Ok(Some(out))
    }
}

/// A connection lent outside a transaction (see [`PgBackend::with_lock`]): back to the pool
/// when dropped clean, closed otherwise.
struct Lent<'a> {
    backend: &'a PgBackend,
    conn: Option<Conn>,
    clean: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.clean {
                self.backend.give_back(conn);
            } else {
                drop(conn);
                self.backend.lost();
            }
        }
    }
}

/// This process's one open write transaction (see `PgBackend::writing`).
struct WriteSlot(Arc<PgBackend>);

impl Drop for WriteSlot {
    fn drop(&mut self) {
        *self
            .0
            .writing
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = false;
        self.0.write_done.notify_one();
    }
}

/// A row as stored: the order-preserving key and the value's bytes.
pub(crate) type RawRow = (Vec<u8>, Vec<u8>);

/// A parameter of a statement.
enum Param {
    Bytes(Vec<u8>),
    Int(i64),
    Text(String),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Bytes(b) => b,
            Param::Int(n) => n,
            Param::Text(s) => s,
        }
    }
}

/// One transaction on one pooled connection. Dropped without a commit, it rolls back.
pub(crate) struct Txn {
    backend: Arc<PgBackend>,
    conn: Mutex<Option<Conn>>,
    /// The `BEGIN` not sent yet (see [`PgBackend::begin`]).
    begin: Mutex<Option<String>>,
    finished: bool,
    /// Held by a write transaction until it ends (declared last: released after the
    /// connection is back in the pool).
    _slot: Option<WriteSlot>,
}

impl Txn {
    /// Runs statements in the simple protocol (no parameters), in one round trip.
    fn simple(&self, sql: &str) -> Result<(), StoreError> {
        let client = self.client()?;
        let sql = match self.take_begin() {
            Some(begin) => format!("{begin}; {sql}"),
            None => sql.to_string(),
        };
        let result = self
            .backend
            .block(async move { client.batch_execute(&sql).await.map_err(from_pg) });
        if result.is_err() {
            self.forget_if_closed();
        }
        result
    }

    /// Queues a `ROLLBACK` on the connection without waiting for its answer; whether it
    /// was queued.
    fn queue_rollback(&self) -> bool {
        use futures_util::FutureExt as _;
        let Ok(client) = self.client() else {
            return false;
        };
        // tokio-postgres encodes and queues a request in its future's first poll; the
        // connection task sends it and discards the answer once the future is gone.
        match client.batch_execute("ROLLBACK").now_or_never() {
            None | Some(Ok(())) => !client.is_closed(),
            Some(Err(_)) => false,
        }
    }

    fn take_begin(&self) -> Option<String> {
        self.begin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Whether the transaction has begun on the server (a statement ran).
    fn begun(&self) -> bool {
        self.begin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    fn client(&self) -> Result<Arc<Client>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.as_ref()
            .map(|c| c.client.clone())
            .ok_or_else(|| unavailable("the transaction's connection is gone"))
    }

    fn forget_if_closed(&self) {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            conn.take();
            self.backend.lost();
        }
    }

    /// Runs one statement (prepared once per connection) and returns its rows.
    fn query(&self, sql: &str, params: Vec<Param>) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let (client, cached) = {
            let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let conn = conn
                .as_ref()
                .ok_or_else(|| unavailable("the transaction's connection is gone"))?;
            (conn.client.clone(), conn.statements.get(sql).cloned())
        };
        let statement = match cached {
            Some(s) => s,
            None => {
                let prepare = client.clone();
                let text = sql.to_string();
                let prepared = self
                    .backend
                    .block(async move { prepare.prepare(&text).await.map_err(from_pg) });
                let prepared = match prepared {
                    Ok(s) => s,
                    Err(e) => {
                        self.forget_if_closed();
                        return Err(e);
                    }
                };
                let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(conn) = conn.as_mut() {
                    conn.statements.insert(sql.to_string(), prepared.clone());
                }
                prepared
            }
        };
        let begin = self.take_begin();
        let result = self.backend.block(async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
            match begin {
                // Both are queued on the connection in this order by their first poll.
                Some(begin) => {
                    let (began, rows) =
                        futures_util::future::join(client.batch_execute(&begin), async {
                            client.query(&statement, &refs).await
                        })
                        .await;
                    began.map_err(from_pg)?;
                    rows.map_err(from_pg)
                }
                None => client.query(&statement, &refs).await.map_err(from_pg),
            }
        });
        if result.is_err() {
            self.forget_if_closed();
        }
        result
    }

    pub(crate) fn get(&self, table: &str, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.query(
            &format!(r#"SELECT v FROM "{table}" WHERE k = $1"#),
            vec![Param::Bytes(key)],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    pub(crate) fn insert(
        &self,
        table: &str,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // Both parts of the statement see the table as it was before it, so `old` is the
        // value replaced.
        let rows = self.query(
            &format!(
                r#"WITH old AS (SELECT v FROM "{table}" WHERE k = $1),
                   up AS (INSERT INTO "{table}" (k, v) VALUES ($1, $2)
                          ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v)
                   SELECT v FROM old"#
            ),
            vec![Param::Bytes(key), Param::Bytes(value)],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    pub(crate) fn remove(&self, table: &str, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.query(
            &format!(r#"DELETE FROM "{table}" WHERE k = $1 RETURNING v"#),
            vec![Param::Bytes(key)],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Up to `limit` rows with keys within the bounds, from the low end or the high end.
    pub(crate) fn page(
        &self,
        table: &str,
        lower: &Bound<Vec<u8>>,
        upper: &Bound<Vec<u8>>,
        descending: bool,
        limit: i64,
    ) -> Result<Vec<RawRow>, StoreError> {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        for (bound, included, excluded) in [(lower, ">=", ">"), (upper, "<=", "<")] {
            let (op, key) = match bound {
                Bound::Included(k) => (included, k),
                Bound::Excluded(k) => (excluded, k),
                Bound::Unbounded => continue,
            };
            params.push(Param::Bytes(key.clone()));
            conditions.push(format!("k {op} ${}", params.len()));
        }
        params.push(Param::Int(limit));
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let order = if descending { "DESC" } else { "ASC" };
        let rows = self.query(
            &format!(
                r#"SELECT k, v FROM "{table}" {filter} ORDER BY k {order} LIMIT ${}"#,
                params.len()
            ),
            params,
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(crate) fn count(&self, table: &str) -> Result<u64, StoreError> {
        let rows = self.query(&format!(r#"SELECT count(*) FROM "{table}""#), vec![])?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
    }

    pub(crate) fn create_table(&self, table: &str) -> Result<(), StoreError> {
        self.simple(&format!(
            r#"CREATE TABLE IF NOT EXISTS "{table}" (k bytea PRIMARY KEY, v bytea NOT NULL)"#
        ))
    }

    pub(crate) fn has_table(&self, table: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT to_regclass($1) IS NOT NULL",
            vec![Param::Text(format!(r#""{table}""#))],
        )?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    /// Commits; on error the transaction is rolled back by the server.
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        let result = if self.begun() {
            self.simple("COMMIT")
        } else {
            Ok(())
        };
        self.finished = true;
        self.release();
        result
    }

    fn release(&mut self) {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(conn) = conn {
            self.backend.give_back(conn);
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.finished && self.begun() {
            // Not committed (a read, or an error): end it, so the connection is clean for the
            // next user. The ROLLBACK is queued on the connection, not waited for: the next
            // user's statements go out behind it, in order, and nothing is lost if it fails
            // (its answer is dropped; a broken connection fails that next statement, which
            // then drops the connection). A connection that cannot take it is closed.
            if !self.queue_rollback() {
                let conn = self
                    .conn
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if conn.is_some() {
                    self.backend.lost();
                }
            }
        }
        self.release();
    }
}
