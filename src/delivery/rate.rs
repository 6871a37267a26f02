//! The global rate limit: at most `count` messages per period, spaced evenly.
//!
//! One schedule for all workers: each send takes the next free slot, `interval` after the
//! previous one, so N messages take (N−1) intervals whatever the concurrency — including rates
//! above one per second, where a per-second bucket would burst.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Rate;

pub struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

/// How often a waiting worker looks at the stop flag.
const TICK: Duration = Duration::from_millis(50);

impl RateLimiter {
    pub fn new(rate: Option<Rate>) -> Self {
        RateLimiter {
            interval: rate.map(|r| r.interval()),
            next: Mutex::new(None),
        }
    }

    /// Whether letters go as fast as they can (no `rate`).
    pub fn is_unlimited(&self) -> bool {
        self.interval.is_none()
    }

    /// Waits for the next slot. Returns false, without taking a slot's message out, if `stop`
    /// was raised while waiting.
    pub fn acquire(&self, stop: &AtomicBool) -> bool {
        let Some(interval) = self.interval else {
            return !stop.load(Ordering::SeqCst);
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= slot {
                return true;
            }
            std::thread::sleep((slot - now).min(TICK));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_rate_nothing_waits() {
        let limiter = RateLimiter::new(None);
        let stop = AtomicBool::new(false);
        assert!((0..1000).all(|_| limiter.acquire(&stop)));
    }

    #[test]
    fn a_raised_stop_flag_ends_the_wait() {
        let limiter = RateLimiter::new(Some(Rate {
            count: 1,
            per: Duration::from_secs(3600),
        }));
        let stop = AtomicBool::new(false);
        assert!(limiter.acquire(&stop));
        stop.store(true, Ordering::SeqCst);
        assert!(!limiter.acquire(&stop));
    }
}
