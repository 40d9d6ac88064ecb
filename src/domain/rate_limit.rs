//! Limits in a sliding window: failed password logins per client IP and per account, and
//! registrations per client IP.
//!
//! An attempt *reserves* its place before it goes to Keycloak: the check and the count are one
//! step under one lock, and attempts still in flight count against the limit, so many parallel
//! attempts cannot all pass a check that none of them has failed yet. A success gives its place
//! back; a failure keeps it for the window.
//!
//! Kept in memory: each keygate instance counts its own failures, which bounds guessing per
//! instance; Keycloak's own brute-force detection is the realm-wide guard.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys tracked before stale ones are swept, so a flood of usernames cannot grow memory unbounded.
const MAX_KEYS: usize = 50_000;

#[derive(Default)]
struct Budget {
    failures: VecDeque<Instant>,
    in_flight: usize,
}

struct Inner {
    max: usize,
    window: Duration,
    budgets: Mutex<HashMap<String, Budget>>,
}

#[derive(Clone)]
pub(crate) struct FailureLimiter(Arc<Inner>);

/// An attempt that holds its place under the limit until it is settled (or dropped: released).
pub(crate) struct Attempt {
    limiter: FailureLimiter,
    keys: Vec<String>,
    settled: bool,
}

impl FailureLimiter {
    pub(crate) fn new(max: usize, window: Duration) -> Self {
        FailureLimiter(Arc::new(Inner {
            max,
            window,
            budgets: Mutex::new(HashMap::new()),
        }))
    }

    /// Reserves an attempt for every one of `keys`, or `Err(seconds to wait)` when any of them
    /// has used up its failures (and attempts in flight) in the window.
    pub(crate) fn reserve(&self, keys: Vec<String>) -> Result<Attempt, u64> {
        let inner = &self.0;
        let mut map = inner.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= MAX_KEYS {
            map.retain(|_, b| {
                b.in_flight > 0 || b.failures.back().is_some_and(|t| now - *t < inner.window)
            });
        }
        let mut wait = None;
        for key in &keys {
            let Some(budget) = map.get_mut(key) else {
                continue;
            };
            while budget
                .failures
                .front()
                .is_some_and(|t| now - *t >= inner.window)
            {
                budget.failures.pop_front();
            }
            if budget.failures.len() + budget.in_flight >= inner.max {
                let left = match budget.failures.front() {
                    Some(oldest) => inner.window.saturating_sub(now - *oldest).as_secs() + 1,
                    // Only attempts in flight: they settle within seconds.
                    None => 1,
                };
                wait = Some(wait.map_or(left, |w: u64| w.max(left)));
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for key in &keys {
            map.entry(key.clone()).or_default().in_flight += 1;
        }
        Ok(Attempt {
            limiter: self.clone(),
            keys,
            settled: false,
        })
    }

    fn settle(&self, keys: &[String], failed: bool) {
        let mut map = self.0.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for key in keys {
            let budget = map.entry(key.clone()).or_default();
            budget.in_flight = budget.in_flight.saturating_sub(1);
            if failed {
                budget.failures.push_back(now);
            }
        }
    }
}

impl Attempt {
    /// The attempt counts against every key for the window (a failed sign-in, any registration).
    pub(crate) fn keep(mut self) {
        self.settled = true;
        self.limiter.settle(&self.keys, true);
    }
}

impl Drop for Attempt {
    /// An attempt that did not fail (it succeeded, or never reached Keycloak) gives its place back.
    fn drop(&mut self) {
        if !self.settled {
            self.limiter.settle(&self.keys, false);
        }
    }
}

/// The limiter's name for the account a sign-in names. Keycloak accepts the username or the email
/// address, in any case: both map to one budget (the email through the local user that has it,
/// when there is one).
pub(crate) async fn account_key(pool: &crate::store::Pool, name: &str) -> String {
    let name = name.trim().to_lowercase();
    if !name.contains('@') {
        return name;
    }
    let email = name.clone();
    let found = crate::store::run(pool, move |conn| {
        Ok(crate::store::User::username_of_email(conn, &email)?)
    })
    .await;
    match found {
        Ok(Some(username)) => username.to_lowercase(),
        Ok(None) => name,
        Err(e) => {
            log::warn!("rate limit: cannot look up the account of an address: {e}");
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ip: &str, user: &str) -> Vec<String> {
        vec![format!("ip:{ip}"), format!("user:{user}")]
    }

    #[test]
    fn the_sixth_failure_in_a_minute_is_refused_with_a_wait() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(60));
        for _ in 0..5 {
            limiter.reserve(keys("1.2.3.4", "bob")).unwrap().keep();
        }
        let wait = limiter.reserve(keys("1.2.3.4", "bob")).err().unwrap();
        assert!((1..=61).contains(&wait), "{wait}");
        // Another IP guessing the same username is refused too.
        assert!(limiter.reserve(keys("5.6.7.8", "bob")).is_err());
        assert!(limiter.reserve(keys("5.6.7.8", "alice")).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_and_successes_give_their_place_back() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(60));
        let held: Vec<Attempt> = (0..5)
            .map(|_| limiter.reserve(keys("1.2.3.4", "bob")).unwrap())
            .collect();
        assert!(
            limiter.reserve(keys("1.2.3.4", "bob")).is_err(),
            "five in flight fill the budget"
        );
        drop(held);
        assert!(limiter.reserve(keys("1.2.3.4", "bob")).is_ok());
    }

    #[test]
    fn failures_leave_the_window() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(50));
        limiter.reserve(vec!["k".into()]).unwrap().keep();
        assert!(limiter.reserve(vec!["k".into()]).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.reserve(vec!["k".into()]).is_ok());
    }
}
