//! Backoff between attempts at one message: exponential with jitter, so that workers that
//! failed together (a relay restart) do not come back together.

use std::time::Duration;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(120);

/// The wait before attempt `next_attempt` (2 for the first retry): `base · 2^(n−2)`, capped,
/// then scaled by a random factor in [0.75, 1.25).
pub fn backoff(base: Duration, next_attempt: u32) -> Duration {
    let exponent = next_attempt.saturating_sub(2).min(16);
    let delay = base.saturating_mul(1 << exponent).min(MAX_DELAY);
    let jitter = 0.75 + rand::random::<f64>() * 0.5;
    delay.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_and_is_capped() {
        let base = Duration::from_secs(2);
        for attempt in 2..=6u32 {
            let expected = base * (1 << (attempt - 2));
            let d = backoff(base, attempt);
            assert!(
                d >= expected.mul_f64(0.75) && d < expected.mul_f64(1.25),
                "{attempt}: {d:?}"
            );
        }
        assert!(backoff(base, 40) < MAX_DELAY.mul_f64(1.25));
    }
}
