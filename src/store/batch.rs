//! The batching writer: the hot durable writes of request handling (refresh rotations, the
//! sessions logins start, code redemptions, registrations) are queued to one writer thread,
//! which runs every write waiting at that moment in one redb transaction and makes it durable
//! with one commit (one fsync). A request is answered only after the commit holding its
//! write. While a commit's fsync runs, the next writes queue up, so the batch grows with the
//! load by itself; [`MAX_BATCH`] bounds it.
//!
//! A write that fails (a storage error, or a panic) cannot be taken back alone inside a redb
//! transaction, so the batch is dropped whole and each of its writes is run again in a
//! transaction of its own: the failing one fails alone and its siblings still commit. That is
//! why a batched write is `FnMut` — it must be able to run twice — and why it must decide
//! before writing anything when it is to answer "no" (every store operation here checks first,
//! then writes).

use std::{
    panic::AssertUnwindSafe,
    sync::{Mutex, PoisonError, Weak, mpsc},
};

use redb::Durability;

use super::kv::WriteTransaction;

use super::{Inner, Store, StoreError};

/// The most writes one transaction holds: bounds a batch's latency and its memory.
const MAX_BATCH: usize = 256;

type Run = Box<dyn FnMut(&WriteTransaction) -> Result<(), StoreError> + Send>;
type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// One queued write: how to run it (storing its output aside), and how to answer it.
struct Job {
    run: Run,
    done: Done,
}

impl Job {
    /// Runs the write; a panic is this write's error, not the writer thread's end.
    fn run(&mut self, txn: &WriteTransaction) -> Result<(), StoreError> {
        std::panic::catch_unwind(AssertUnwindSafe(|| (self.run)(txn)))
            .unwrap_or_else(|_| Err(StoreError::Task("a batched write panicked".into())))
    }
}

/// The queue to the writer thread, started by the first batched write.
#[derive(Default)]
pub(super) struct Batcher {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Batcher {
    fn submit(&self, job: Job, inner: Weak<Inner>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = queue.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel();
            let started = std::thread::Builder::new()
                .name("portcullis-writer".into())
                .spawn(move || write_batches(&rx, &inner));
            if let Err(e) = started {
                tracing::error!(error = %e, "could not start the database writer thread");
            }
            tx
        });
        if let Err(mpsc::SendError(job)) = sender.send(job) {
            // The writer thread is gone (it could not start): answer at once, and try a new
            // thread for the next write.
            *queue = None;
            (job.done)(Err(StoreError::Task(
                "the database writer is not running".into(),
            )));
        }
    }
}

/// The writer thread: takes every queued write, up to [`MAX_BATCH`], and commits them
/// together. It holds the store only while committing, so the store (and its file) closes
/// when its last handle elsewhere is dropped; then the queue closes and the thread ends.
fn write_batches(queue: &mpsc::Receiver<Job>, inner: &Weak<Inner>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // The store is let go before any write is answered: once the last answer is out, a
        // stopping server may close the file and reopen it at once.
        let answers = match inner.upgrade() {
            Some(inner) => Store { inner }.commit_batch(batch),
            None => batch
                .into_iter()
                .map(|job| {
                    let closed = StoreError::Unavailable("the database is closed".into());
                    (job.done, Err(closed))
                })
                .collect(),
        };
        for (done, result) in answers {
            done(result);
        }
    }
}

impl Store {
    /// Queues `f` for the batching writer's next transaction (see the module documentation)
    /// at once, and returns a future of its output, ready once that transaction is durable.
    /// `f` may run more than once (when another write of its batch fails) and must not write
    /// before deciding to answer "no".
    pub fn write_batched<T, F>(
        &self,
        mut f: F,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let output = std::sync::Arc::new(Mutex::new(None));
        let (answer, answered) = tokio::sync::oneshot::channel();
        let kept = output.clone();
        let job = Job {
            run: Box::new(move |txn| {
                let out = f(txn)?;
                *kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(out);
                Ok(())
            }),
            done: Box::new(move |result| {
                let _ = answer.send(result.and_then(|()| {
                    output
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                        .ok_or_else(|| StoreError::Task("a batched write left no output".into()))
                }));
            }),
        };
        self.inner
            .batcher
            .submit(job, std::sync::Arc::downgrade(&self.inner));
        async move {
            answered
                .await
                .map_err(|_| StoreError::Task("the database writer dropped a write".into()))?
        }
    }

    /// Runs `jobs` in one write transaction and commits it durably. On any error nothing of
    /// the transaction is kept.
    fn commit_jobs(&self, jobs: &mut [Job]) -> Result<(), StoreError> {
        if let Some(pg) = &self.inner.pg {
            let txn = WriteTransaction::pg(pg.begin(true)?);
            for job in jobs.iter_mut() {
                job.run(&txn)?;
            }
            txn.commit()?;
            self.inner
                .commits
                .fetch_add(jobs.len() as u64, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        let group = &self.inner.group;
        let through = self.with_db(|db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            let txn = WriteTransaction::redb(txn);
            // Writes numbered up to here committed before this transaction began (redb runs
            // one write transaction at a time): this commit makes them durable too.
            let through = group.written();
            for job in jobs.iter_mut() {
                job.run(&txn)?;
            }
            txn.commit()?;
            Ok(through)
        })?;
        self.committed_durably(jobs.len() as u64, through);
        Ok(())
    }

    /// Commits `batch` in one durable transaction, or, when one of its writes fails, each
    /// write in a transaction of its own; returns every write's answer.
    fn commit_batch(&self, mut batch: Vec<Job>) -> Vec<(Done, Result<(), StoreError>)> {
        match self.commit_jobs(&mut batch) {
            Ok(()) => batch.into_iter().map(|job| (job.done, Ok(()))).collect(),
            // The file cannot be written: every write of the batch gets that answer.
            Err(StoreError::Unavailable(why)) => batch
                .into_iter()
                .map(|job| (job.done, Err(StoreError::Unavailable(why.clone()))))
                .collect(),
            Err(e) if batch.len() == 1 => {
                let answered = batch.pop().map(|job| (job.done, Err(e)));
                answered.into_iter().collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.len(), "a batched write failed; committing its batch one write at a time");
                batch
                    .into_iter()
                    .map(|mut job| {
                        let alone = self.commit_jobs(std::slice::from_mut(&mut job));
                        (job.done, alone)
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        clock::Clock,
        store::{Store, StoreError, tables},
    };

    /// Holds the database's write lock in another thread until the returned sender is used or
    /// dropped, so batched writes queue up behind it.
    fn hold_write_lock(store: &Store) -> std::sync::mpsc::Sender<()> {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (held, is_held) = std::sync::mpsc::channel();
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .write(|_| {
                    held.send(()).ok();
                    released.recv().ok();
                    Ok(())
                })
                .unwrap();
        });
        is_held.recv().unwrap();
        release
    }

    fn put(
        key: &'static str,
    ) -> impl FnMut(&crate::store::kv::WriteTransaction) -> Result<(), StoreError> {
        move |txn| {
            txn.open_table(tables::META)?.insert(key, 1)?;
            Ok(())
        }
    }

    fn stored(store: &Store, key: &str) -> bool {
        store
            .read(|txn| Ok(txn.open_table(tables::META)?.get(key)?.is_some()))
            .unwrap()
    }

    #[tokio::test]
    async fn writes_queued_together_share_one_durable_commit() {
        let store = Store::open_in_memory(Clock::manual()).unwrap();
        let before = store.durable_commits();
        let release = hold_write_lock(&store);
        let keys = ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"];
        let writes: Vec<_> = keys.iter().map(|k| store.write_batched(put(k))).collect();
        drop(release);
        for w in writes {
            w.await.unwrap();
        }
        assert!(keys.iter().all(|k| stored(&store, k)));
        // The held write's own durable commit, then the writer's: the first write it took
        // (which may have waited for the lock alone) and the rest, queued meanwhile, in one.
        let fsyncs = store.durable_commits() - before;
        assert!(fsyncs <= 3, "{fsyncs} durable commits for 8 queued writes");
    }

    #[tokio::test]
    async fn a_failing_or_panicking_write_fails_alone_and_keeps_nothing() {
        for (backend, store) in crate::store::testing::stores(&Clock::manual()) {
            println!("on {backend}");
            let release = hold_write_lock(&store);
            let first = store.write_batched(put("before"));
            let failing = store.write_batched(|txn| {
                txn.open_table(tables::META)?.insert("half-written", 1)?;
                Err::<(), _>(StoreError::Encode("refused after writing".into()))
            });
            let panicking = store.write_batched(|txn| -> Result<(), StoreError> {
                txn.open_table(tables::META)?.insert("half-panicked", 1)?;
                panic!("a bug in one write")
            });
            let last = store.write_batched(put("after"));
            drop(release);
            first.await.unwrap();
            assert!(matches!(failing.await, Err(StoreError::Encode(_))));
            assert!(matches!(panicking.await, Err(StoreError::Task(_))));
            last.await.unwrap();
            assert!(stored(&store, "before") && stored(&store, "after"));
            assert!(!stored(&store, "half-written") && !stored(&store, "half-panicked"));
        }
    }
}
