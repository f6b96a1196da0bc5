//! Login throttling per account and per client address, by progressive delay rather than a
//! hard block: the first `max_failures` failures within `window` seconds cost nothing; after
//! that each attempt must wait `BASE_DELAY` seconds after the last failure, doubling with
//! every further failure, up to the window. A quiet window forgets the key. Keys for unknown
//! accounts are throttled exactly like real ones, so the delay reveals nothing.
//!
//! An attacker can still keep an account's password sign-in slow; what keeps its owner in is
//! elsewhere: passkey sign-in never consults these limits, and the owner is mailed a link that
//! lets them past the per-account delay (`service::mfa`).

use std::{collections::HashMap, sync::Mutex};

use std::borrow::Cow;

use crate::{clock::Clock, store::Store};

/// Keys longer than this are stored as their SHA-256, so attacker-chosen login strings (up to
/// the body limit) cannot make the table large.
const MAX_KEY_LEN: usize = 128;

/// Seconds the first throttled attempt waits; each further failure doubles it.
pub const BASE_DELAY: i64 = 30;

fn bounded(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_LEN {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(crate::store::codes::hex(&crate::token::opaque::digest(key)))
    }
}

/// The database key of `key`'s failures in the throttle `name` (see [`Counts::Shared`]).
fn shared_key(name: &str, key: &str) -> String {
    format!("{name}:{}", bounded(key))
}

/// Bound on tracked keys; past it, keys whose failures have all aged out are dropped.
const PRUNE_ABOVE: usize = 50_000;

/// The two login throttles: per account and per client address.
pub struct LoginLimits {
    pub account: LoginLimiter,
    pub address: LoginLimiter,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: i64,
}

pub struct LoginLimiter {
    max_failures: u32,
    window: i64,
    clock: Clock,
    counts: Counts,
}

/// Where failures are counted.
enum Counts {
    /// In this process: one redb file has one process.
    Memory(Mutex<HashMap<String, Failures>>),
    /// In the database (`login_failures`), under `"<name>:<key>"`: every node that shares a
    /// PostgreSQL database counts into the same record, so a guesser spreading attempts over
    /// the nodes is throttled as if there were one.
    Shared { store: Store, name: &'static str },
}

/// What a recorded failure did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still within the free attempts.
    Free,
    /// This failure started the delays (the moment to tell an account's owner).
    Throttled,
    /// Delays were already running.
    StillThrottled,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: i64, clock: Clock) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window: window.max(1),
            clock,
            counts: Counts::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// A limiter counting in `store` under `name` (see [`Counts::Shared`]).
    pub fn shared(
        max_failures: u32,
        window: i64,
        clock: Clock,
        store: Store,
        name: &'static str,
    ) -> Self {
        Self {
            counts: Counts::Shared { store, name },
            ..Self::new(max_failures, window, clock)
        }
    }

    /// The wait after `count` failures, the last of them `last`: `None` when free.
    fn wait(&self, f: Failures, now: i64) -> Option<u64> {
        if now - f.last >= self.window || f.count < self.max_failures {
            return None;
        }
        let doublings = (f.count - self.max_failures).min(20);
        let delay = (BASE_DELAY << doublings).min(self.window);
        let ready = f.last + delay;
        (now < ready).then(|| (ready - now) as u64)
    }

    /// `Err(seconds)` while the key must wait, with how long until its next attempt.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = self.clock.now();
        let found = match &self.counts {
            Counts::Memory(map) => map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(bounded(key).as_ref())
                .copied(),
            // The database answers for every node; if it cannot answer, the sign-in cannot
            // go on either, and fails on its own read.
            Counts::Shared { store, name } => store
                .point_read(|s| s.login_failures(&shared_key(name, key), now))
                .inspect_err(|e| tracing::warn!(error = %e, "could not read the login throttle"))
                .ok()
                .flatten()
                .map(|r| Failures {
                    count: r.count,
                    last: r.last,
                }),
        };
        match found {
            Some(f) => self.wait(f, now).map_or(Ok(()), Err),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str) -> AfterFailure {
        let now = self.clock.now();
        let count = match &self.counts {
            Counts::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() > PRUNE_ABOVE {
                    let window = self.window;
                    map.retain(|_, f| now - f.last < window);
                }
                let f = map.entry(bounded(key).into_owned()).or_insert(Failures {
                    count: 0,
                    last: now,
                });
                if now - f.last >= self.window {
                    f.count = 0;
                }
                f.count = f.count.saturating_add(1);
                f.last = now;
                f.count
            }
            Counts::Shared { store, name } => {
                let key = shared_key(name, key);
                match store.point_read(|s| s.record_login_failure(&key, now, self.window)) {
                    Ok(count) => count,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not count a failed sign-in");
                        return AfterFailure::Free;
                    }
                }
            }
        };
        match count.cmp(&self.max_failures) {
            std::cmp::Ordering::Less => AfterFailure::Free,
            std::cmp::Ordering::Equal => AfterFailure::Throttled,
            std::cmp::Ordering::Greater => AfterFailure::StillThrottled,
        }
    }

    pub fn clear(&self, key: &str) {
        match &self.counts {
            Counts::Memory(map) => {
                map.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(bounded(key).as_ref());
            }
            Counts::Shared { store, name } => {
                let key = shared_key(name, key);
                if let Err(e) = store.point_read(|s| s.clear_login_failures(&key)) {
                    tracing::warn!(error = %e, "could not clear a login throttle");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_max_failures_double_up_to_the_window_and_a_quiet_window_forgets() {
        let clock = Clock::manual();
        let l = LoginLimiter::new(5, 900, clock.clone());
        for _ in 0..4 {
            assert_eq!(l.record_failure("k"), AfterFailure::Free);
            assert!(l.check("k").is_ok());
        }
        assert_eq!(l.record_failure("k"), AfterFailure::Throttled);
        assert_eq!(l.check("k"), Err(30));
        clock.advance(30);
        assert!(l.check("k").is_ok(), "the wait is over: one more try");
        assert_eq!(l.record_failure("k"), AfterFailure::StillThrottled);
        assert_eq!(l.check("k"), Err(60));
        for _ in 0..10 {
            clock.advance(1);
            l.record_failure("k");
        }
        assert_eq!(l.check("k"), Err(900), "capped at the window");
        clock.advance(900);
        assert!(l.check("k").is_ok());
        assert_eq!(
            l.record_failure("k"),
            AfterFailure::Free,
            "a whole quiet window starts the count over"
        );
    }

    #[test]
    fn long_keys_are_stored_bounded_and_still_counted() {
        let l = LoginLimiter::new(2, 900, Clock::manual());
        let long = "x".repeat(60_000);
        l.record_failure(&long);
        l.record_failure(&long);
        assert!(l.check(&long).is_err());
        let Counts::Memory(map) = &l.counts else {
            unreachable!("a new limiter counts in memory")
        };
        assert!(map.lock().unwrap().keys().all(|k| k.len() <= MAX_KEY_LEN));
    }

    #[test]
    fn clear_resets_and_keys_are_independent() {
        let l = LoginLimiter::new(2, 900, Clock::manual());
        l.record_failure("a");
        l.record_failure("a");
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok());
        l.clear("a");
        assert!(l.check("a").is_ok());
    }
}
