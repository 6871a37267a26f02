//! Who may open a connection to the relay, and how many are open.
//!
//! * **One login first.** Until a connection has logged in (or, without a login, been set
//!   up), only one worker at a time tries; the others wait. A wrong password therefore costs
//!   exactly one failed login per run, not one per connection, which an account lock-out
//!   policy would punish.
//! * **The relay's connection limit.** A relay that allows fewer simultaneous connections than
//!   `concurrency` answers the extra ones with a 4xx greeting (`421 4.7.0 too many
//!   connections`). When that happens while other connections are open, the worker that was
//!   refused retires: the run goes on with the connections it has, says so once, and only a
//!   refusal with no connection open at all is a failure to reach the relay.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::delivery::session::Session;

#[derive(Default)]
pub(crate) struct Pool {
    state: Mutex<Gate>,
    changed: Condvar,
    /// Sessions held by workers right now.
    open: AtomicUsize,
    /// Whether the lowered concurrency was reported already.
    lowered: AtomicBool,
}

#[derive(Default)]
struct Gate {
    /// A connection was set up (and logged in) in this run.
    proven: bool,
    /// A worker is trying the first connection.
    trying: bool,
}

/// Permission to try a connection. [`Pool::connected`] takes it when the connection worked;
/// dropped otherwise, it lets the next worker try (so the caller keeps it until it has counted
/// the failure).
pub(crate) struct Ticket<'p> {
    pool: &'p Pool,
    connected: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.connected {
            let mut gate = self.pool.lock();
            gate.trying = false;
            self.pool.changed.notify_one();
        }
    }
}

impl Pool {
    /// Waits until this worker may connect. `None` if `halt` was raised meanwhile.
    pub fn may_connect(&self, halt: &AtomicBool) -> Option<Ticket<'_>> {
        let ticket = Ticket {
            pool: self,
            connected: false,
        };
        let mut gate = self.lock();
        loop {
            if halt.load(Ordering::SeqCst) {
                return None;
            }
            if gate.proven {
                // No first try to hand on.
                return Some(Ticket {
                    connected: true,
                    ..ticket
                });
            }
            if !gate.trying {
                gate.trying = true;
                return Some(ticket);
            }
            gate = self
                .changed
                .wait_timeout(gate, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The connection was set up: from now on workers connect freely.
    pub fn connected(&self, mut ticket: Ticket<'_>) {
        ticket.connected = true;
        let mut gate = self.lock();
        gate.proven = true;
        gate.trying = false;
        self.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a connection was ever set up in this run.
    pub fn proven(&self) -> bool {
        self.lock().proven
    }

    /// Sessions open right now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// True the first time only: the caller reports the lowered concurrency.
    pub fn first_lowering(&self) -> bool {
        !self.lowered.swap(true, Ordering::SeqCst)
    }
}

/// A worker's session, counted in [`Pool::open`] from the moment it is set up until it is
/// dropped, including while it carries a letter (taken out of the slot).
pub(crate) struct Slot<'p> {
    pool: &'p Pool,
    session: Option<Session>,
    counted: bool,
}

impl<'p> Slot<'p> {
    pub fn new(pool: &'p Pool) -> Self {
        Slot {
            pool,
            session: None,
            counted: false,
        }
    }

    /// The session, to carry a letter; it stays counted until [`Slot::lost`].
    pub fn take(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// A new session was set up.
    pub fn opened(&mut self) {
        if !self.counted {
            self.counted = true;
            self.pool.open.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The session (taken out) comes back for the next letter.
    pub fn put(&mut self, session: Session) {
        self.session = Some(session);
    }

    /// The session taken out was dropped.
    pub fn lost(&mut self) {
        if self.counted {
            self.counted = false;
            self.pool.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.take() {
            session.quit();
        }
        self.lost();
    }
}
