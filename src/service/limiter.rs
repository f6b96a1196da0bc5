//! Per-account login throttling: after `max_failures` failures within `window` seconds,
//! further attempts are refused until the oldest failure leaves the window. Keys for unknown
//! accounts are throttled exactly like real ones, so the limit reveals nothing.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use std::borrow::Cow;

use crate::clock::Clock;

/// Keys longer than this are stored as their SHA-256, so attacker-chosen login strings (up to
/// the body limit) cannot make the table large.
const MAX_KEY_LEN: usize = 128;

fn bounded(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_LEN {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(crate::store::codes::hex(&crate::token::opaque::digest(key)))
    }
}

/// Bound on tracked keys; past it, keys whose failures have all aged out are dropped.
const PRUNE_ABOVE: usize = 50_000;

/// The two login throttles: per account and per client address.
pub struct LoginLimits {
    pub account: LoginLimiter,
    pub address: LoginLimiter,
}

pub struct LoginLimiter {
    max_failures: usize,
    window: i64,
    clock: Clock,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: i64, clock: Clock) -> Self {
        Self {
            max_failures: max_failures.max(1) as usize,
            window,
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` when the key is locked out, with how long until the next attempt.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = self.clock.now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = map.get(bounded(key).as_ref()) else {
            return Ok(());
        };
        let recent: Vec<i64> = times
            .iter()
            .copied()
            .filter(|t| now - t < self.window)
            .collect();
        if recent.len() >= self.max_failures {
            let oldest = recent[recent.len() - self.max_failures];
            return Err((oldest + self.window - now).max(1) as u64);
        }
        Ok(())
    }

    pub fn record_failure(&self, key: &str) {
        let now = self.clock.now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > PRUNE_ABOVE {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| now - t < window));
        }
        let times = map.entry(bounded(key).into_owned()).or_default();
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(bounded(key).as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_window() {
        let clock = Clock::manual();
        let l = LoginLimiter::new(5, 900, clock.clone());
        for _ in 0..4 {
            l.record_failure("k");
            assert!(l.check("k").is_ok());
        }
        clock.advance(100);
        l.record_failure("k");
        let wait = l.check("k").unwrap_err();
        assert_eq!(
            wait, 800,
            "first failure leaves the window 900 s after it happened"
        );
        clock.advance(800);
        assert!(l.check("k").is_ok());
    }

    #[test]
    fn long_keys_are_stored_bounded_and_still_counted() {
        let l = LoginLimiter::new(2, 900, Clock::manual());
        let long = "x".repeat(60_000);
        l.record_failure(&long);
        l.record_failure(&long);
        assert!(l.check(&long).is_err());
        let map = l.failures.lock().unwrap();
        assert!(map.keys().all(|k| k.len() <= MAX_KEY_LEN));
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
