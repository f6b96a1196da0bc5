//! Per-account login throttling: after `max_failures` failures within `window` seconds,
//! further attempts are refused until the oldest failure leaves the window. Keys for unknown
//! accounts are throttled exactly like real ones, so the limit reveals nothing.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use crate::clock::Clock;

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
        let Some(times) = map.get(key) else {
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
        let times = map.entry(key.to_string()).or_default();
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
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
