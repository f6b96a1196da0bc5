//! Password hashing with scrypt (PHC strings).
//!
//! Hashing is deliberately slow, so it runs on its own threads, one per core, at a lower OS
//! priority than the rest of the server (nice 10): a login flood uses the cores the other
//! requests leave, instead of starving them. The queue in front of them is bounded by time:
//! a sign-in that would wait longer than the configured bound (`--hash-queue-max-wait`,
//! 1.5 s) is refused at once with `Overloaded` (503 and `Retry-After`) rather than left to
//! time out.
//! Unknown accounts are verified against a dummy hash with the same cost, so response time
//! does not reveal whether an account exists.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, AtomicUsize, Ordering},
    mpsc,
};
use std::time::{Duration, Instant};

use rand::RngCore;
use scrypt::{
    Params, Scrypt,
    password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString},
};
use tokio::sync::{OnceCell, Semaphore};

use super::{Result, ServiceError};
use crate::domain::Password;

/// scrypt cost parameters. The default is OWASP's recommendation (N=2^17, r=8, p=1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptCost {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
}

impl Default for ScryptCost {
    fn default() -> Self {
        Self {
            log_n: 17,
            r: 8,
            p: 1,
        }
    }
}

/// The OS priority (nice value) of the hashing threads.
const HASHING_NICE: libc::c_int = 10;

type Job = Box<dyn FnOnce() + Send>;

pub struct PasswordHasher {
    cost: ScryptCost,
    params: Params,
    permits: Arc<Semaphore>,
    cores: usize,
    /// The longest a caller may expect to wait for a hashing thread before it is refused.
    max_wait: Duration,
    /// Callers waiting for a permit or hashing now.
    queued: AtomicUsize,
    /// The last hash's duration, in microseconds (0 until one is done).
    hash_micros: AtomicU64,
    /// The hashing threads' queue (started on first use).
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    dummy: OnceCell<String>,
}

/// Starts `n` hashing threads at a lower priority, taking jobs from one queue.
fn start_threads(n: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let started = std::thread::Builder::new()
            .name(format!("portcullis-hash-{i}"))
            .spawn(move || {
                // SAFETY: setpriority with PRIO_PROCESS and this thread's id changes only this
                // thread's nice value on Linux (threads are scheduled separately).
                unsafe {
                    let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, HASHING_NICE);
                }
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "could not start a password hashing thread");
        }
    }
    tx
}

impl PasswordHasher {
    pub fn new(cost: ScryptCost, max_wait: Duration) -> Result<Self, String> {
        let params = Params::new(cost.log_n, cost.r, cost.p, Params::RECOMMENDED_LEN)
            .map_err(|e| e.to_string())?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            cost,
            params,
            permits: Arc::new(Semaphore::new(cores)),
            cores,
            max_wait,
            queued: AtomicUsize::new(0),
            hash_micros: AtomicU64::new(0),
            jobs: Mutex::new(None),
            dummy: OnceCell::new(),
        })
    }

    /// Hashes a password into a PHC string with a fresh 128-bit salt.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let pw = password.expose().to_string();
        let params = self.params;
        self.blocking(move || hash_with(&pw, params)).await?
    }

    /// Checks `password` against `phc`; with no hash (unknown account) it spends the same
    /// time on a dummy hash and returns `false`.
    pub async fn verify(&self, phc: Option<&str>, password: &str) -> Result<bool> {
        let (target, real) = match phc {
            Some(h) => (h.to_string(), true),
            None => (self.dummy_hash().await?.to_string(), false),
        };
        let pw = password.to_string();
        let ok = self
            .blocking(move || match PasswordHash::new(&target) {
                Ok(parsed) => Scrypt.verify_password(pw.as_bytes(), &parsed).is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(ok && real)
    }

    /// Whether `phc` was made with other parameters than the configured ones (rehash on login).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        match Params::try_from(&parsed) {
            Ok(p) => p.log_n() != self.cost.log_n || p.r() != self.cost.r || p.p() != self.cost.p,
            Err(_) => true,
        }
    }

    /// Computes the dummy hash now, so the first unknown-account login is not slower.
    pub async fn warm_up(&self) {
        let _ = self.dummy_hash().await;
    }

    async fn dummy_hash(&self) -> Result<&String> {
        let params = self.params;
        self.dummy
            .get_or_try_init(|| async move {
                self.blocking(move || hash_with("portcullis-dummy-password", params))
                    .await?
            })
            .await
    }

    /// With `ahead` callers before this one (served `cores` at a time), the wait before its
    /// hash starts, if longer than the bound. The first `cores` never wait.
    fn too_long_a_wait(&self, ahead: usize) -> Option<Duration> {
        let per_hash = Duration::from_micros(self.hash_micros.load(Ordering::Relaxed));
        let wait = per_hash * (ahead / self.cores) as u32;
        (wait > self.max_wait).then_some(wait)
    }

    /// Runs a hash on the hashing threads, or refuses at once when the wait would exceed
    /// the bound (estimated from the queue length and the last hash's duration).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let ahead = self.queued.fetch_add(1, Ordering::AcqRel);
        let _queued = QueueSlot(&self.queued);
        if let Some(wait) = self.too_long_a_wait(ahead) {
            return Err(ServiceError::Overloaded {
                retry_after: wait.as_secs().max(1),
            });
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ServiceError::Internal("password hasher closed".into()))?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let started = Instant::now();
            // A panic drops the answer (the caller gets an error); the thread lives on.
            if let Ok(out) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = done_tx.send((out, started.elapsed()));
            }
        });
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(|| start_threads(self.cores))
            .send(job)
            .map_err(|_| ServiceError::Internal("password hashing threads are gone".into()))?;
        let (out, took) = done_rx
            .await
            .map_err(|_| ServiceError::Internal("a password hashing job was dropped".into()))?;
        self.hash_micros
            .store(took.as_micros() as u64, Ordering::Relaxed);
        Ok(out)
    }
}

/// Counts a caller out of the queue however it leaves (answered, refused or cancelled).
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn hash_with(password: &str, params: Params) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ServiceError::Internal(format!("salt encoding failed: {e}")))?;
    Scrypt
        .hash_password_customized(password.as_bytes(), None, None, params, &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_are_refused_only_when_their_wait_would_pass_the_bound() {
        let h = PasswordHasher::new(
            ScryptCost {
                log_n: 4,
                r: 8,
                p: 1,
            },
            Duration::from_millis(1500),
        )
        .unwrap();
        // Before any hash is timed nothing is refused.
        assert_eq!(h.too_long_a_wait(1000), None);
        h.hash_micros.store(300_000, Ordering::Relaxed);
        let cores = h.cores;
        // The first `cores` callers start at once, whatever a hash costs.
        assert_eq!(h.too_long_a_wait(cores - 1), None);
        // 0.3 s a hash: five rounds ahead is 1.5 s, still admitted; six is refused.
        assert_eq!(h.too_long_a_wait(5 * cores), None);
        assert_eq!(
            h.too_long_a_wait(6 * cores),
            Some(Duration::from_millis(1800))
        );
        // A hash slower than the bound alone never locks sign-ins out.
        h.hash_micros.store(5_000_000, Ordering::Relaxed);
        assert_eq!(h.too_long_a_wait(0), None);
    }

    const CHEAP: ScryptCost = ScryptCost {
        log_n: 4,
        r: 8,
        p: 1,
    };

    #[tokio::test]
    async fn hash_verifies_and_wrong_password_does_not() {
        let h = PasswordHasher::new(CHEAP, Duration::from_millis(1500)).unwrap();
        let pw = Password::parse("Tr0ub4dor&3-lilac").unwrap();
        let phc = h.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$scrypt$ln=4,r=8,p=1$"), "{phc}");
        assert!(h.verify(Some(&phc), "Tr0ub4dor&3-lilac").await.unwrap());
        assert!(!h.verify(Some(&phc), "Tr0ub4dor&3-lilaC").await.unwrap());
        assert!(!h.verify(None, "Tr0ub4dor&3-lilac").await.unwrap());
        assert!(!h.verify(Some("garbage"), "x").await.unwrap());
    }

    #[tokio::test]
    async fn changed_cost_asks_for_rehash() {
        let old = PasswordHasher::new(CHEAP, Duration::from_millis(1500)).unwrap();
        let phc = old
            .hash(&Password::parse("Tr0ub4dor&3-lilac").unwrap())
            .await
            .unwrap();
        assert!(!old.needs_rehash(&phc));
        let new = PasswordHasher::new(
            ScryptCost { log_n: 5, ..CHEAP },
            Duration::from_millis(1500),
        )
        .unwrap();
        assert!(new.needs_rehash(&phc));
    }
}
