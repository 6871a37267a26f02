//! Delivery: composed messages go to the relay over `concurrency` connections, each reused
//! for many messages, under one global rate limit, with retries; every outcome is logged.
//!
//! Threads, not async: each worker owns one SMTP session and blocks on it, which keeps the
//! order "intent on disk → data sent → outcome on disk" obvious. Each worker takes the next
//! message from the caller's iterator (the spool) when it is ready for one, and without a rate
//! the one after it too, whose envelope goes out with the current letter's content (see
//! `Shared::worker`), so memory stays flat however many rows there are.
//!
//! Stopping: the `halt` flag is raised by Ctrl-C or by a reply that means no message can go
//! out (authentication refused, quota), by a relay that keeps failing or refusing the client
//! (see [`streak`]), or when no connection at all can be made. Workers finish the message in
//! hand, log it, and take no other; messages not yet started are simply not in the log, so the
//! next run sends them.
//!
//! Connections: see [`pool`] (one login before any other connection; a relay's connection
//! limit lowers the concurrency instead of failing letters).

pub mod capabilities;
pub mod dsn;
mod pool;
pub mod rate;
pub mod relay;
pub mod reply;
pub mod retry;
pub mod session;
mod streak;
pub mod tls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::compose::Composed;
use crate::config::SendPolicy;
use crate::delivery_log::{DeliveryLog, Entry, Status, SyncStart};
use crate::error::Error;
use pool::{Pool, Slot};
use rate::RateLimiter;
use relay::Relay;
use reply::Attempt;
use session::{FurtherTransaction, Session};
use streak::Streaks;

/// What the terminal hears about while a run goes on.
pub trait Observer: Sync {
    /// A row was written to the log (or would have been, for a test send). `last` is false for
    /// a failed attempt that will be retried.
    fn logged(&self, entry: &Entry, last: bool);
    /// Something the user should know that is not a log row (a refused Cc, the run stopping).
    fn warn(&self, message: &str);
    /// The relay accepted this letter (for the copy filed in Sent, see `mailbox::filing`).
    fn accepted(&self, _letter: &Composed) {}
}

/// Final outcomes of a run (retried attempts are not counted), tallied as `envoi report` does.
pub type Totals = crate::delivery_log::StatusCounts;

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    pub totals: Totals,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    pub elapsed: Duration,
}

/// Everything a run needs besides the messages.
pub struct Delivery<'a> {
    pub relay: &'a Relay,
    pub policy: SendPolicy,
    /// `None` for `--test-to`, whose copies are not the letters and must not mark them sent.
    pub log: Option<&'a DeliveryLog>,
    pub halt: &'a AtomicBool,
    pub observer: &'a dyn Observer,
}

/// Shared state of the workers of one run.
struct Shared<'a> {
    delivery: &'a Delivery<'a>,
    rate: RateLimiter,
    totals: Mutex<Totals>,
    stop_reason: Mutex<Option<String>>,
    pool: Pool,
    streaks: Streaks,
    /// Letters a retiring worker took but did not attempt; the others send them first.
    returned: Mutex<Vec<Composed>>,
    /// Set once the run has said that the relay offers no DSN.
    no_dsn_said: AtomicBool,
}

impl Delivery<'_> {
    /// Sends every message the iterator yields; returns when all are done or the run stopped.
    pub fn run(&self, messages: impl Iterator<Item = Composed> + Send) -> RunReport {
        let started = Instant::now();
        let shared = Shared {
            delivery: self,
            rate: RateLimiter::new(self.policy.rate),
            totals: Mutex::new(Totals::default()),
            stop_reason: Mutex::new(None),
            pool: Pool::default(),
            streaks: Streaks::default(),
            returned: Mutex::new(Vec::new()),
            no_dsn_said: AtomicBool::new(false),
        };
        shared.run_workers(self.relay, messages);
        if self.halt.load(Ordering::SeqCst) {
            shared.stop("interrupted: no new letters were started".into());
        }
        RunReport {
            totals: shared
                .totals
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
            stopped: shared
                .stop_reason
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
            elapsed: started.elapsed(),
        }
    }
}

impl Shared<'_> {
    fn run_workers(&self, relay: &Relay, messages: impl Iterator<Item = Composed> + Send) {
        // Each worker takes its next letter itself, under this lock. Reading one from the
        // spool takes microseconds, and no thread hands letters over: a feeder thread and a
        // queue cost a wake-up on each side for every letter, which on two cores was a fifth
        // of a send's system time.
        let queue = Mutex::new(messages.fuse());
        std::thread::scope(|scope| {
            for _ in 0..self.delivery.policy.concurrency {
                scope.spawn(|| self.worker(relay, &queue));
            }
        });
    }

    fn halted(&self) -> bool {
        self.delivery.halt.load(Ordering::SeqCst)
    }

    /// Records why the run stops (the first reason wins) and raises the halt flag.
    fn stop(&self, reason: String) {
        let mut slot = self
            .stop_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.delivery.halt.store(true, Ordering::SeqCst);
    }

    /// Sends letters until the run is done or stopped. Without a rate limit the worker holds
    /// the letter after the one it sends, so that its envelope can go out with this one's
    /// content (see [`Session::send`]); with a rate, letters are spaced far more than a round
    /// trip apart, and an envelope sent ahead would only keep the relay waiting in DATA. A
    /// letter held when the run stops was not attempted: it is not in the log, and the next run
    /// sends it.
    fn worker(&self, relay: &Relay, queue: &Mutex<impl Iterator<Item = Composed>>) {
        let mut slot = Slot::new(&self.pool);
        let mut held = None;
        while !self.halted() {
            let Some(message) = held.take().or_else(|| self.next_message(queue)) else {
                break;
            };
            if self.rate.is_unlimited() {
                held = self.next_message(queue);
            }
            if let Err(Retired) = self.deliver(relay, &mut slot, &message, held.as_ref()) {
                let mut returned = self.returned.lock().unwrap_or_else(PoisonError::into_inner);
                returned.extend(held.take());
                returned.push(message);
                break;
            }
        }
    }

    /// A returned letter first, else the next one in the run; `None` when both are done.
    fn next_message(&self, queue: &Mutex<impl Iterator<Item = Composed>>) -> Option<Composed> {
        let returned = self
            .returned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        returned.or_else(|| queue.lock().unwrap_or_else(PoisonError::into_inner).next())
    }

    /// A session for the next attempt: the worker's own, or a new one when the pool allows.
    fn session<'p>(&'p self, relay: &Relay, slot: &mut Slot) -> Result<Session, Connect<'p>> {
        match slot.take() {
            Some(s) if s.is_usable() => return Ok(s),
            Some(_) => slot.lost(),
            None => {}
        }
        let Some(ticket) = self.pool.may_connect(self.delivery.halt) else {
            return Err(Connect::Halted);
        };
        match relay.connect() {
            Ok(s) => {
                // Counted before the pool opens to the other workers: one of them refused by the
                // relay's limit in between would otherwise see no connection open and log a
                // failed attempt instead of retiring.
                slot.opened();
                self.pool.connected(ticket);
                if relay.tracking().dsn
                    && !s.capabilities().dsn
                    && !self.no_dsn_said.swap(true, Ordering::SeqCst)
                {
                    self.delivery.observer.warn(&format!(
                        "the relay {} does not offer DSN (RFC 3461), so no delivery reports are asked for; bounces still come back as plain messages, which envoi track matches by their returned headers",
                        relay.describe()
                    ));
                }
                Ok(s)
            }
            Err(failure) => {
                // Refused while other connections work: the relay's connection limit.
                if failure.is_connection_refusal() && self.pool.open() > 0 {
                    if self.pool.first_lowering() {
                        let open = self.pool.open();
                        self.delivery.observer.warn(&format!(
                            "the relay accepts fewer connections than concurrency = {} ({}); going on with {open}",
                            self.delivery.policy.concurrency,
                            failure.reason()
                        ));
                    }
                    return Err(Connect::Retire);
                }
                Err(Connect::Failed(failure, ticket))
            }
        }
    }

    /// All attempts at one message, with the letter to send next on the same session, if any.
    /// `Err(Retired)`: not attempted, this worker stops.
    fn deliver(
        &self,
        relay: &Relay,
        slot: &mut Slot,
        message: &Composed,
        next: Option<&Composed>,
    ) -> Result<(), Retired> {
        let max_attempts = self.delivery.policy.max_attempts;
        for attempt_no in 1..=max_attempts {
            if !self.rate.acquire(self.delivery.halt) {
                return Ok(()); // stopped while waiting: not attempted, so not logged
            }
            // A failed first connection's ticket is held until its failure is counted, so the
            // next worker's try sees the count.
            let (attempt, while_connecting, _ticket) = match self.session(relay, slot) {
                Ok(s) => (self.attempt(s, slot, message, next), false, None),
                Err(Connect::Failed(failure, ticket)) => (failure, true, Some(ticket)),
                Err(Connect::Retire) => return Err(Retired),
                Err(Connect::Halted) => return Ok(()),
            };
            match attempt {
                Attempt::Accepted {
                    reply,
                    refused,
                    further,
                } => {
                    self.streaks.relay_worked();
                    let detail = self.accepted_detail(message, &reply, &refused, &further);
                    self.finish(
                        message,
                        Status::Sent,
                        reply.code_column(),
                        detail,
                        attempt_no,
                    );
                    self.delivery.observer.accepted(message);
                    return Ok(());
                }
                Attempt::Permanent {
                    reply,
                    misconfigured,
                } => {
                    if !misconfigured {
                        self.streaks.relay_worked();
                    } else if let Some(n) = self.streaks.refused(reply.without_addresses()) {
                        self.stop(format!(
                            "the relay refused {n} letters in a row with the same reply ({reply}): it refuses this sender or this computer, not the addresses; check host, username and the from address with the relay's administrator"
                        ));
                    }
                    self.finish(
                        message,
                        Status::Failed,
                        reply.code_column(),
                        reply.text,
                        attempt_no,
                    );
                    return Ok(());
                }
                Attempt::Unknown { reason } => {
                    self.finish(message, Status::Unknown, String::new(), reason, attempt_no);
                    return Ok(());
                }
                Attempt::Unsendable { reason } => {
                    self.finish(message, Status::Failed, String::new(), reason, attempt_no);
                    return Ok(());
                }
                Attempt::Fatal { reply, reason } => {
                    let code = reply.map(|r| r.code_column()).unwrap_or_default();
                    self.finish(message, Status::Failed, code, reason.clone(), attempt_no);
                    self.stop(reason);
                    return Ok(());
                }
                Attempt::Transient {
                    reply,
                    reason,
                    no_answer,
                } => {
                    let code = reply.map(|r| r.code_column()).unwrap_or_default();
                    let streak_ends = if no_answer || while_connecting {
                        self.no_answer_streak_ends(&reason, while_connecting)
                    } else {
                        None
                    };
                    if attempt_no == max_attempts || streak_ends.is_some() {
                        let detail = format!("gave up after {attempt_no} attempts: {reason}");
                        self.finish(message, Status::Failed, code, detail, attempt_no);
                        if let Some(why) = streak_ends {
                            self.stop(why);
                        } else if while_connecting && !self.pool.proven() {
                            // The relay itself is out of reach: every other letter would fail too.
                            self.stop(format!("the relay cannot be reached: {reason}"));
                        }
                        return Ok(());
                    }
                    let wait = retry::backoff(self.delivery.policy.retry_delay, attempt_no + 1);
                    let detail = format!(
                        "attempt {attempt_no} of {max_attempts}: {reason}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    self.log(message, Status::Failed, code, detail, attempt_no, false);
                    if !self.pause(wait) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts an attempt that got no answer (or no connection); the reason the run stops when
    /// that ends the streak (see [`streak`]).
    fn no_answer_streak_ends(&self, reason: &str, while_connecting: bool) -> Option<String> {
        let proven = self.pool.proven();
        let limit = if proven {
            self.delivery.policy.concurrency as u32 + 2
        } else {
            streak::NO_ANSWER_LIMIT
        };
        let n = self.streaks.no_answer(limit)?;
        Some(if while_connecting && !proven {
            format!("the relay cannot be reached: {n} attempts in a row failed, the last: {reason}")
        } else {
            format!(
                "the relay failed {n} times in a row without answering (the last: {reason}); check that it is running and reachable, then run envoi send again"
            )
        })
    }

    /// The log row's detail for a letter the relay took, with what each address got when not
    /// all did; warns about the addresses that did not.
    fn accepted_detail(
        &self,
        message: &Composed,
        reply: &reply::Reply,
        refused: &[(lettre::Address, reply::Reply)],
        further: &[FurtherTransaction],
    ) -> String {
        let mut detail = reply.text.clone();
        let refusals = refused
            .iter()
            .chain(further.iter().flat_map(|t| &t.refused));
        for (address, why) in refusals {
            self.delivery.observer.warn(&format!(
                "row {}: the relay refused {address} ({why}); the letter went to the other addresses",
                message.row
            ));
            detail.push_str(&format!("; refused {address}: {why}"));
        }
        for (i, transaction) in further.iter().enumerate() {
            let addresses = transaction
                .recipients
                .iter()
                .filter(|a| !transaction.refused.iter().any(|(r, _)| r == *a))
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            match &transaction.outcome {
                Ok(reply) => detail.push_str(&format!(
                    "; the relay takes fewer recipients per message, so transaction {} sent the same letter to {addresses}: {reply}",
                    i + 2
                )),
                Err(failed) => {
                    let why = failed.reason();
                    self.delivery.observer.warn(&format!(
                        "row {}: the letter went to the first addresses, but not to {addresses} ({why}); it will not be sent to them again, send it to them by hand",
                        message.row
                    ));
                    detail.push_str(&format!("; NOT sent to {addresses}: {why}"));
                }
            }
        }
        detail
    }

    /// One attempt on an open session; keeps the session if it can carry another message.
    fn attempt(
        &self,
        mut s: Session,
        slot: &mut Slot,
        message: &Composed,
        next: Option<&Composed>,
    ) -> Attempt {
        // The intent is written as the transaction starts, so that its sync runs while MAIL,
        // RCPT and DATA travel; it is confirmed on disk before the data goes out. Whatever
        // happens next is logged by the caller, which resolves the intent. When the envelope
        // already went out with the previous letter, its replies are waiting: this thread then
        // runs the sync itself, which saves waking another thread and being woken by it.
        let sync = match s.sent_ahead(message) {
            true => SyncStart::ByConfirm,
            false => SyncStart::Now,
        };
        let announced = match self.delivery.log {
            Some(log) => match log.announce(
                message.row,
                &message.email,
                &message.organisation,
                &message.message_id,
                sync,
            ) {
                Ok(announced) => Some((log, announced)),
                Err(e) => {
                    return Attempt::Fatal {
                        reply: None,
                        reason: e.to_string(),
                    };
                }
            },
            None => None,
        };
        let attempt = s.send(
            message,
            || match announced {
                Some((log, announced)) => log.confirm(announced),
                None => Ok(()),
            },
            next,
        );
        if s.is_usable()
            && matches!(
                attempt,
                Attempt::Accepted { .. } | Attempt::Permanent { .. } | Attempt::Unsendable { .. }
            )
        {
            slot.put(s);
        } else {
            slot.lost();
        }
        attempt
    }

    /// Sleeps for a backoff; false if the run was stopped meanwhile.
    fn pause(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.halted() {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        !self.halted()
    }

    /// Logs a final outcome and counts it.
    fn finish(
        &self,
        message: &Composed,
        status: Status,
        code: String,
        detail: String,
        attempts: u32,
    ) {
        self.log(message, status, code, detail, attempts, true);
        self.totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(status);
    }

    fn log(
        &self,
        message: &Composed,
        status: Status,
        code: String,
        detail: String,
        attempts: u32,
        last: bool,
    ) {
        let entry = Entry::now(message.row, &message.email, &message.organisation, status)
            .with_code(&code)
            .with_detail(&detail)
            .with_message_id(&message.message_id)
            .with_attempts(attempts);
        if let Some(log) = self.delivery.log
            && let Err(e) = log.record(&entry)
        {
            self.stop(stopped_reason(&e));
        }
        self.delivery.observer.logged(&entry, last);
    }
}

/// A worker that was refused a connection while others work stops (see [`pool`]).
struct Retired;

/// Why no session could be had for an attempt.
enum Connect<'p> {
    /// Connecting failed; classified like an attempt.
    Failed(Attempt, pool::Ticket<'p>),
    /// The relay's connection limit: this worker retires.
    Retire,
    /// The run was stopped while waiting for the pool.
    Halted,
}

fn stopped_reason(e: &Error) -> String {
    match e {
        Error::Stopped(reason) => reason.clone(),
        other => format!("the delivery log cannot be written: {other}"),
    }
}
