//! Delivery: composed messages go to the relay over `concurrency` connections, each reused
//! for many messages, under one global rate limit, with retries; every outcome is logged.
//!
//! Threads, not async: each worker owns one SMTP session and blocks on it, which keeps the
//! order "intent on disk → data sent → outcome on disk" obvious. The caller's thread composes
//! messages and feeds a small bounded queue, so memory stays flat however many rows there are.
//!
//! Stopping: the `halt` flag is raised by Ctrl-C or by a reply that means no message can go
//! out (authentication refused, quota). Workers finish the message in hand, log it, and take
//! no other; messages not yet started are simply not in the log, so the next run sends them.

pub mod rate;
pub mod retry;
pub mod smtp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::compose::Composed;
use crate::config::SendPolicy;
use crate::delivery_log::{DeliveryLog, Entry, Status};
use crate::error::Error;
use rate::RateLimiter;
use smtp::{Attempt, Relay, Session};

/// What the terminal hears about while a run goes on.
pub trait Observer: Sync {
    /// A row was written to the log (or would have been, for a test send). `last` is false for
    /// a failed attempt that will be retried.
    fn logged(&self, entry: &Entry, last: bool);
    /// Something the user should know that is not a log row (a refused Cc, the run stopping).
    fn warn(&self, message: &str);
}

/// Final outcomes of a run (retried attempts are not counted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub sent: usize,
    pub failed: usize,
    pub unknown: usize,
    pub dry_run: usize,
}

impl Totals {
    fn add(&mut self, status: Status) {
        match status {
            Status::Sent => self.sent += 1,
            Status::Failed => self.failed += 1,
            Status::Unknown => self.unknown += 1,
            Status::DryRun => self.dry_run += 1,
            // Not written by a send run.
            Status::Skipped
            | Status::Delayed
            | Status::Delivered
            | Status::Bounced
            | Status::Read => {}
        }
    }
}

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
    /// `None` for a dry run.
    pub relay: Option<&'a Relay>,
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
}

impl Delivery<'_> {
    /// Sends every message the iterator yields; returns when all are done or the run stopped.
    pub fn run(&self, messages: impl Iterator<Item = Composed>) -> RunReport {
        let started = Instant::now();
        let shared = Shared {
            delivery: self,
            rate: RateLimiter::new(self.policy.rate),
            totals: Mutex::new(Totals::default()),
            stop_reason: Mutex::new(None),
        };
        match self.relay {
            None => {
                for message in messages {
                    if self.halt.load(Ordering::SeqCst) {
                        break;
                    }
                    shared.finish(
                        &message,
                        Status::DryRun,
                        String::new(),
                        "dry run: not sent".into(),
                        0,
                    );
                }
            }
            Some(relay) => shared.run_workers(relay, messages),
        }
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
    fn run_workers(&self, relay: &Relay, messages: impl Iterator<Item = Composed>) {
        let workers = self.delivery.policy.concurrency;
        let (tx, rx) = sync_channel::<Composed>(workers * 2);
        let rx = Mutex::new(rx);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| self.worker(relay, &rx));
            }
            'feed: for message in messages {
                let mut message = message;
                loop {
                    if self.halted() {
                        break 'feed;
                    }
                    match tx.try_send(message) {
                        Ok(()) => break,
                        Err(TrySendError::Full(m)) => {
                            message = m;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(TrySendError::Disconnected(_)) => break 'feed,
                    }
                }
            }
            drop(tx);
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

    fn worker(&self, relay: &Relay, rx: &Mutex<Receiver<Composed>>) {
        let mut session: Option<Session> = None;
        while !self.halted() {
            let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(message) = next else { break };
            self.deliver(relay, &mut session, &message);
        }
        if let Some(s) = session {
            s.quit();
        }
    }

    /// All attempts at one message.
    fn deliver(&self, relay: &Relay, session: &mut Option<Session>, message: &Composed) {
        let max_attempts = self.delivery.policy.max_attempts;
        for attempt_no in 1..=max_attempts {
            if !self.rate.acquire(self.delivery.halt) {
                return; // stopped while waiting: not attempted, so not logged
            }
            let (attempt, while_connecting) = match session.take() {
                Some(s) if s.is_usable() => self.attempt(s, session, message),
                _ => match relay.connect() {
                    Ok(s) => self.attempt(s, session, message),
                    Err(failure) => (failure, true),
                },
            };
            match attempt {
                Attempt::Accepted { reply, refused } => {
                    let mut detail = reply.text.clone();
                    for (address, why) in &refused {
                        let warning = format!(
                            "row {}: the relay refused {address} ({why}); the letter went to the other addresses",
                            message.row
                        );
                        self.delivery.observer.warn(&warning);
                        detail.push_str(&format!("; refused {address}: {why}"));
                    }
                    self.finish(
                        message,
                        Status::Sent,
                        reply.code_column(),
                        detail,
                        attempt_no,
                    );
                    return;
                }
                Attempt::Permanent { reply } => {
                    self.finish(
                        message,
                        Status::Failed,
                        reply.code_column(),
                        reply.text,
                        attempt_no,
                    );
                    return;
                }
                Attempt::Unknown { reason } => {
                    self.finish(message, Status::Unknown, String::new(), reason, attempt_no);
                    return;
                }
                Attempt::Fatal { reply, reason } => {
                    let code = reply.map(|r| r.code_column()).unwrap_or_default();
                    self.finish(message, Status::Failed, code, reason.clone(), attempt_no);
                    self.stop(reason);
                    return;
                }
                Attempt::Transient { reply, reason } => {
                    let code = reply.map(|r| r.code_column()).unwrap_or_default();
                    if attempt_no == max_attempts {
                        let detail = format!("gave up after {attempt_no} attempts: {reason}");
                        self.finish(message, Status::Failed, code, detail.clone(), attempt_no);
                        if while_connecting {
                            // The relay itself is out of reach: every other letter would fail too.
                            self.stop(format!("the relay cannot be reached: {reason}"));
                        }
                        return;
                    }
                    let wait = retry::backoff(self.delivery.policy.retry_delay, attempt_no + 1);
                    let detail = format!(
                        "attempt {attempt_no} of {max_attempts}: {reason}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    self.log(message, Status::Failed, code, detail, attempt_no, false);
                    if !self.pause(wait) {
                        return;
                    }
                }
            }
        }
    }

    /// One attempt on an open session; keeps the session if it can carry another message.
    fn attempt(
        &self,
        mut s: Session,
        slot: &mut Option<Session>,
        message: &Composed,
    ) -> (Attempt, bool) {
        // The intent is written as the transaction starts, so that its sync runs while MAIL,
        // RCPT and DATA travel; it is confirmed on disk before the data goes out. Whatever
        // happens next is logged by the caller, which resolves the intent.
        let announced = match self.delivery.log {
            Some(log) => match log.announce(
                message.row,
                &message.email,
                &message.organisation,
                &message.message_id,
            ) {
                Ok(announced) => Some((log, announced)),
                Err(e) => {
                    let reason = e.to_string();
                    return (
                        Attempt::Fatal {
                            reply: None,
                            reason,
                        },
                        false,
                    );
                }
            },
            None => None,
        };
        let attempt = s.send(message, || match announced {
            Some((log, announced)) => log.confirm(announced).map_err(|e| e.to_string()),
            None => Ok(()),
        });
        if s.is_usable()
            && matches!(
                attempt,
                Attempt::Accepted { .. } | Attempt::Permanent { .. }
            )
        {
            *slot = Some(s);
        }
        (attempt, false)
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

fn stopped_reason(e: &Error) -> String {
    match e {
        Error::Stopped(reason) => reason.clone(),
        other => format!("the delivery log cannot be written: {other}"),
    }
}
