//! Limits on failed password logins, per client IP and per username, in a sliding window.
//! Kept in memory: each keygate instance counts its own failures, which bounds guessing per
//! instance; Keycloak's own brute-force detection is the realm-wide guard.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked before stale ones are swept, so a flood of usernames cannot grow memory unbounded.
const MAX_KEYS: usize = 50_000;

pub(crate) struct FailureLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub(crate) fn new(max: usize, window: Duration) -> Self {
        FailureLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when any of `keys` has used up its failures in the window.
    pub(crate) fn check(&self, keys: &[String]) -> Result<(), u64> {
        let Ok(mut map) = self.failures.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let mut wait = None;
        for key in keys {
            if let Some(times) = map.get_mut(key) {
                while times.front().is_some_and(|t| now - *t >= self.window) {
                    times.pop_front();
                }
                if times.len() >= self.max {
                    let oldest = times.front().copied().unwrap_or(now);
                    let left = self.window.saturating_sub(now - oldest).as_secs() + 1;
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    pub(crate) fn record_failure(&self, keys: &[String]) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        let now = Instant::now();
        if map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| now - *t < window));
        }
        for key in keys {
            map.entry(key.clone()).or_default().push_back(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_in_a_minute_is_refused_with_a_wait() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(60));
        let keys = vec!["ip:1.2.3.4".to_string(), "user:bob".to_string()];
        for _ in 0..5 {
            assert!(limiter.check(&keys).is_ok());
            limiter.record_failure(&keys);
        }
        let wait = limiter.check(&keys).unwrap_err();
        assert!((1..=61).contains(&wait), "{wait}");
        // Another IP guessing the same username is refused too.
        assert!(limiter
            .check(&["ip:5.6.7.8".into(), "user:bob".into()])
            .is_err());
        assert!(limiter
            .check(&["ip:5.6.7.8".into(), "user:alice".into()])
            .is_ok());
    }

    #[test]
    fn failures_leave_the_window() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(50));
        let keys = vec!["k".to_string()];
        limiter.record_failure(&keys);
        assert!(limiter.check(&keys).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.check(&keys).is_ok());
    }
}
