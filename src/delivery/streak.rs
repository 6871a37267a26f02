//! When a relay that keeps failing stops the run, instead of failing every letter.
//!
//! Two streaks are counted across all connections, and any letter the relay takes (or refuses
//! for a reason of its own, such as an unknown address) ends both:
//!
//! * **No answer**: attempts that got no usable answer at all (no connection, a connection
//!   lost, a reply that did not come within `timeout`). [`NO_ANSWER_LIMIT`] of them in a row
//!   before any connection worked, or `concurrency + 2` once one had (so that the connections
//!   failing together in one relay restart do not stop the run), end it.
//! * **Identical refusals of the client**: [`Meaning::Misconfigured`] replies (`554 5.7.1
//!   Relay access denied`, a refused sender) that are the same apart from the address.
//!   [`REFUSAL_LIMIT`] in a row end the run: the relay refuses this sender or account, and
//!   every other letter would meet the same.
//!
//! [`Meaning::Misconfigured`]: crate::delivery::reply::Meaning::Misconfigured

use std::sync::{Mutex, PoisonError};

/// Attempts without an answer, in a row, that stop a run in which no connection ever worked.
pub const NO_ANSWER_LIMIT: u32 = 3;
/// Identical refusals of the client, in a row, that stop the run.
pub const REFUSAL_LIMIT: u32 = 3;

#[derive(Default)]
pub(crate) struct Streaks {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    no_answer: u32,
    refusals: u32,
    /// The last refusal, without its address.
    refusal: String,
}

impl Streaks {
    /// A letter went through or was refused for its own sake: the relay works.
    pub fn relay_worked(&self) {
        let mut s = self.lock();
        s.no_answer = 0;
        s.refusals = 0;
        s.refusal.clear();
    }

    /// An attempt got no answer. True when that makes `limit` in a row.
    pub fn no_answer(&self, limit: u32) -> Option<u32> {
        let mut s = self.lock();
        s.no_answer += 1;
        (s.no_answer >= limit).then_some(s.no_answer)
    }

    /// The relay refused the client (`refusal` without addresses). The count in a row when it
    /// reached [`REFUSAL_LIMIT`].
    pub fn refused(&self, refusal: String) -> Option<u32> {
        let mut s = self.lock();
        if s.refusal == refusal {
            s.refusals += 1;
        } else {
            s.refusal = refusal;
            s.refusals = 1;
        }
        (s.refusals >= REFUSAL_LIMIT).then_some(s.refusals)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_working_relay_ends_both_streaks() {
        let s = Streaks::default();
        assert_eq!(s.no_answer(3), None);
        assert_eq!(s.no_answer(3), None);
        s.relay_worked();
        assert_eq!(s.no_answer(3), None);
        assert_eq!(s.no_answer(3), None);
        assert_eq!(s.no_answer(3), Some(3));

        assert_eq!(s.refused("554 5.7.1 <>: Relay access denied".into()), None);
        assert_eq!(s.refused("554 5.7.1 <>: Relay access denied".into()), None);
        // A different refusal starts a new streak.
        assert_eq!(s.refused("553 5.7.1 sender rejected".into()), None);
        assert_eq!(s.refused("553 5.7.1 sender rejected".into()), None);
        assert_eq!(s.refused("553 5.7.1 sender rejected".into()), Some(3));
    }
}
