//! Password hashing with scrypt (PHC strings).
//!
//! Only scrypt is ever written. Accounts brought in by `portcullis import` may carry other
//! formats ([`HashFormat`]): they are verified in their own format and re-hashed to scrypt at
//! the user's next sign-in.
//!
//! Hashing is deliberately slow, so it runs on its own threads, one per core, at a lower OS
//! priority (`--hash-priority`: by default `SCHED_IDLE`, so a login flood uses only the CPU
//! time the other requests leave, instead of delaying them). The queue in front of them is
//! bounded by time:
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
    password_hash::{self, PasswordHash, PasswordHasher as _, SaltString},
};
use tokio::sync::{OnceCell, Semaphore};

use super::{Result, ServiceError};
use crate::config::HashPriority;
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

/// A stored password hash's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// `$scrypt$…` (PHC): what this server writes.
    Scrypt,
    /// `$argon2id$…`, `$argon2i$…`, `$argon2d$…` (PHC).
    Argon2,
    /// `$pbkdf2-sha256$…`, `$pbkdf2-sha512$…` (PHC).
    Pbkdf2,
    /// `$2a$`, `$2b$`, `$2x$`, `$2y$` (the bcrypt modular crypt format).
    Bcrypt,
    /// `$md5$<32 hex digits>`: the unsalted MD5 the account-API document stores.
    LegacyMd5,
    /// No password (an imported account without one): nothing verifies until the owner
    /// sets one with an emailed reset code.
    Unusable,
}

/// The stored form of an account without a usable password.
pub const NO_PASSWORD: &str = "!";
/// The prefix under which an account document's MD5 digest is stored.
pub const LEGACY_MD5_PREFIX: &str = "$md5$";

/// The highest costs accepted from an imported hash: a hash that costs more to verify than
/// these would let every sign-in attempt on that account burn seconds of CPU.
const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ARGON2_PASSES: u32 = 16;
const MAX_BCRYPT_COST: u32 = 16;
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;
const MAX_SCRYPT_LOG_N: u8 = 20;

impl HashFormat {
    /// The format of a stored hash, by its prefix; `None` for anything unrecognised.
    pub fn of(stored: &str) -> Option<Self> {
        Some(if stored == NO_PASSWORD {
            Self::Unusable
        } else if stored.starts_with("$scrypt$") {
            Self::Scrypt
        } else if stored.starts_with("$argon2") {
            Self::Argon2
        } else if stored.starts_with("$pbkdf2") {
            Self::Pbkdf2
        } else if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            Self::Bcrypt
        } else if stored.starts_with(LEGACY_MD5_PREFIX) {
            Self::LegacyMd5
        } else {
            return None;
        })
    }

    /// Checks a hash brought in by an import: a known format that parses, with a cost no
    /// higher than the bounds above. Returns the format, or why the hash is refused.
    pub fn check_imported(hash: &str) -> std::result::Result<Self, String> {
        let format = Self::of(hash).ok_or_else(|| {
            "unrecognised password hash format (expected a PHC string: $scrypt$, $argon2id$, $pbkdf2-sha256$; or bcrypt $2b$)".to_string()
        })?;
        let phc = || PasswordHash::new(hash).map_err(|e| format!("malformed {format:?} hash: {e}"));
        let param =
            |h: &PasswordHash<'_>, name: &str| -> Option<u32> { h.params.get_decimal(name) };
        match format {
            Self::Scrypt => {
                let h = phc()?;
                let p = Params::try_from(&h).map_err(|e| format!("bad scrypt parameters: {e}"))?;
                if p.log_n() > MAX_SCRYPT_LOG_N {
                    return Err(format!("scrypt ln above {MAX_SCRYPT_LOG_N}"));
                }
            }
            Self::Argon2 => {
                let h = phc()?;
                argon2::Params::try_from(&h).map_err(|e| format!("bad argon2 parameters: {e}"))?;
                if param(&h, "m").is_some_and(|m| m > MAX_ARGON2_MEMORY_KIB)
                    || param(&h, "t").is_some_and(|t| t > MAX_ARGON2_PASSES)
                {
                    return Err("argon2 cost above 1 GiB or 16 passes".into());
                }
            }
            Self::Pbkdf2 => {
                let h = phc()?;
                if !matches!(h.algorithm.as_str(), "pbkdf2-sha256" | "pbkdf2-sha512") {
                    return Err("only pbkdf2-sha256 and pbkdf2-sha512 are supported".into());
                }
                if param(&h, "i").is_some_and(|i| i > MAX_PBKDF2_ROUNDS) || h.hash.is_none() {
                    return Err("pbkdf2 hash without output or above 10,000,000 rounds".into());
                }
            }
            Self::Bcrypt => {
                let parts: bcrypt::HashParts = hash
                    .parse()
                    .map_err(|e| format!("malformed bcrypt hash: {e}"))?;
                if parts.get_cost() > MAX_BCRYPT_COST {
                    return Err(format!("bcrypt cost above {MAX_BCRYPT_COST}"));
                }
            }
            Self::LegacyMd5 => {
                let digest = &hash[LEGACY_MD5_PREFIX.len()..];
                if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err("an MD5 digest is 32 hexadecimal digits".into());
                }
            }
            Self::Unusable => {}
        }
        Ok(format)
    }

    /// Whether checking a password against this format costs next to nothing, so the
    /// verifier must also spend a dummy hash's time (no timing difference to learn from).
    fn is_cheap(self) -> bool {
        matches!(self, Self::LegacyMd5 | Self::Unusable)
    }
}

/// Checks `password` against a stored hash of any [`HashFormat`]. Comparisons of digests are
/// constant-time (the crates' own, or `subtle` for MD5).
fn verify_stored(stored: &str, password: &[u8]) -> bool {
    use password_hash::PasswordVerifier;
    let phc = || PasswordHash::new(stored).ok();
    match HashFormat::of(stored) {
        Some(HashFormat::Scrypt) => {
            phc().is_some_and(|h| Scrypt.verify_password(password, &h).is_ok())
        }
        Some(HashFormat::Argon2) => phc().is_some_and(|h| {
            argon2::Argon2::default()
                .verify_password(password, &h)
                .is_ok()
        }),
        Some(HashFormat::Pbkdf2) => {
            phc().is_some_and(|h| pbkdf2::Pbkdf2.verify_password(password, &h).is_ok())
        }
        Some(HashFormat::Bcrypt) => bcrypt::verify(password, stored).unwrap_or(false),
        Some(HashFormat::LegacyMd5) => {
            use md5::Digest as _;
            use subtle::ConstantTimeEq as _;
            let digest = crate::store::codes::hex(&md5::Md5::digest(password));
            digest
                .as_bytes()
                .ct_eq(
                    stored[LEGACY_MD5_PREFIX.len()..]
                        .to_ascii_lowercase()
                        .as_bytes(),
                )
                .into()
        }
        Some(HashFormat::Unusable) | None => false,
    }
}

/// The nice value of the hashing threads.
const HASHING_NICE: libc::c_int = 10;

/// The time slice the hashing threads ask for (Linux 6.12+).
const HASHING_SLICE_NANOS: u64 = 100_000;

/// `struct sched_attr` of sched_setattr(2), in its first published size.
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Lowers the calling thread's CPU priority as `priority` says (see [`HashPriority`]).
///
/// `Idle` is Linux's `SCHED_IDLE` policy (sched(7)): the thread runs only on CPU time no
/// other thread wants, and a thread that wakes preempts it at once. It also asks for a short
/// time slice (0.1 ms, sched_setattr(2); kernels before 6.12 ignore it): when the request
/// threads are busy rather than waking, the scheduler still gives an idle thread a turn now
/// and then, and a short turn keeps the delay it causes them short. `Low` (or where
/// `SCHED_IDLE` is refused) is nice 10.
fn lower_priority(priority: HashPriority) {
    // SAFETY: sched_setattr reads a valid, fully initialised `sched_attr` of the size it is
    // told; pid 0 is the calling thread. setpriority with this thread's id changes only this
    // thread's nice value (threads are scheduled separately on Linux).
    unsafe {
        if priority == HashPriority::Idle {
            let attr = SchedAttr {
                size: std::mem::size_of::<SchedAttr>() as u32,
                policy: libc::SCHED_IDLE as u32,
                flags: 0,
                nice: 0,
                priority: 0,
                runtime: HASHING_SLICE_NANOS,
                deadline: 0,
                period: 0,
            };
            if libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) == 0 {
                return;
            }
            let param = libc::sched_param { sched_priority: 0 };
            if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 {
                return;
            }
        }
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, HASHING_NICE);
    }
}

type Job = Box<dyn FnOnce() + Send>;

pub struct PasswordHasher {
    cost: ScryptCost,
    priority: HashPriority,
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
fn start_threads(n: usize, priority: HashPriority) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let started = std::thread::Builder::new()
            .name(format!("portcullis-hash-{i}"))
            .spawn(move || {
                lower_priority(priority);
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
            priority: HashPriority::default(),
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

    /// The hashing threads' priority (before the first hash starts them).
    pub fn with_priority(mut self, priority: HashPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Hashes a password into a PHC string with a fresh 128-bit salt.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        self.rehash(password.expose()).await
    }

    /// Hashes a password that was just verified against a weaker stored hash. It is hashed
    /// as it is, even where today's password rules would refuse it: the owner chose it under
    /// older rules, and scrypt protects it better than what was stored.
    pub async fn rehash(&self, verified: &str) -> Result<String> {
        let pw = verified.to_string();
        let params = self.params;
        self.blocking(move || hash_with(&pw, params)).await?
    }

    /// Checks `password` against a stored hash (any [`HashFormat`]); with no hash (unknown
    /// account) it spends the same time on a dummy hash and returns `false`. A hash that is
    /// cheap to check (an imported MD5, no password) also spends the dummy hash's time.
    pub async fn verify(&self, stored: Option<&str>, password: &str) -> Result<bool> {
        let dummy = self.dummy_hash().await?.clone();
        let stored = stored.map(str::to_string);
        let pw = password.to_string();
        self.blocking(move || match stored {
            Some(stored) => {
                let ok = verify_stored(&stored, pw.as_bytes());
                if HashFormat::of(&stored).is_none_or(HashFormat::is_cheap) {
                    verify_stored(&dummy, pw.as_bytes());
                }
                ok
            }
            None => {
                verify_stored(&dummy, pw.as_bytes());
                false
            }
        })
        .await
    }

    /// Whether a stored hash should be replaced at the next sign-in: another format than
    /// scrypt (imported), or scrypt with other parameters than the configured ones.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        if HashFormat::of(phc) != Some(HashFormat::Scrypt) {
            return true;
        }
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
            .get_or_insert_with(|| start_threads(self.cores, self.priority))
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

    /// What `lower_priority` leaves a fresh thread with: (scheduling policy, nice value).
    fn lowered(priority: HashPriority) -> (libc::c_int, libc::c_int) {
        std::thread::spawn(move || {
            lower_priority(priority);
            // SAFETY: both read the calling thread's own scheduling attributes.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, tid),
                )
            }
        })
        .join()
        .unwrap()
    }

    #[test]
    fn hashing_threads_take_the_priority_they_are_configured_with() {
        assert_eq!(lowered(HashPriority::Idle).0, libc::SCHED_IDLE);
        assert_eq!(
            lowered(HashPriority::Low),
            (libc::SCHED_OTHER, HASHING_NICE)
        );
    }

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
