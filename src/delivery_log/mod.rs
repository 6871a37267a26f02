//! The delivery log (`delivery-log.csv`): an append-only record of what happened to every
//! letter, and the intent journal that keeps a crash from turning into a second letter.
//!
//! How it stays trustworthy when envoi is killed at any instant:
//!
//! * **One physical line per entry.** Every field is made single-line before it is written, so
//!   a line that does not end in `\n` is exactly a write that a crash cut short. Readers ignore
//!   it; [`DeliveryLog::open`] removes it. A complete line that cannot be read stops `send`
//!   (that recipient may have been sent); `report` shows it as a warning.
//! * **Intent journal.** Before a message's data goes to the relay, its intent
//!   (`offset,row,email,organisation,message_id`, where `offset` is the log's length at that
//!   moment) is on disk in `<log>.inflight`. [`DeliveryLog::announce`] writes it when the
//!   message's SMTP transaction starts, a background thread syncs it while MAIL, RCPT and DATA
//!   travel, and [`DeliveryLog::confirm`] returns once it is on disk, before the data goes out.
//!   If envoi dies after the relay took the letter but before its `sent` row reached the disk,
//!   the intent has no outcome after its offset, and the next [`DeliveryLog::open`] records it
//!   `unknown`, which `send` does not send again unless told to.
//! * **One sync per letter.** [`DeliveryLog::record`] writes an outcome without waiting; every
//!   sync of the journal first syncs the log (`durable::DurableAppend` "carrying"), so the
//!   next intent's sync puts the outcomes written before it on disk, before that next letter's
//!   data goes out. Concurrent connections share syncs (group commit). A crash loses at most
//!   the outcomes of the letters in flight, which the journal turns into `unknown`.
//! * **One writer.** A [`DeliveryLog`] holds a lock on `<log>.lock` for its lifetime, so two
//!   `envoi send` runs cannot interleave their rows, while the log itself stays readable. The
//!   lock file holds a line while a run writes and is emptied when the run closes the log
//!   cleanly; a log whose last run did not end cleanly and whose journal is gone is refused.
//!   A clean close removes the (then empty) journal.

mod durable;
mod files;
mod format;
mod history;
mod journal;
#[cfg(test)]
mod test_support;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{Error, Location, Problem, Result};
use durable::{DurableAppend, lock};
use files::{RunLock, open_for_writing, read_all, sync_parent};
use format::{email_key, header_line, next_line_number, parse_log};
use journal::{Intent, parse_journal, unknown_detail, unresolved};

pub use files::lock_path;
pub use format::{COLUMNS, Entry, ParseStatusError, Status, StatusCounts};
pub use history::History;
pub use journal::journal_path;

/// The log writer. Several SMTP workers append through `&self` (it is `Send + Sync`); it
/// holds the log's lock (see [`lock_path`]) until dropped.
pub struct DeliveryLog {
    path: PathBuf,
    log: Arc<DurableAppend>,
    journal: Arc<DurableAppend>,
    /// The thread that syncs announced intents ahead of their [`confirm`](Self::confirm).
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Recipients (lower-cased address) whose handover began and whose outcome is not recorded.
    pending: Mutex<HashSet<String>>,
    repairs: Vec<String>,
    run_lock: Mutex<RunLock>,
    closed: AtomicBool,
}

/// An intent written by [`DeliveryLog::announce`], to be [`confirm`](DeliveryLog::confirm)ed
/// before the message's data goes to the relay.
#[derive(Debug)]
#[must_use = "the intent must be confirmed on disk before the message's data goes out"]
pub struct Announced {
    seq: u64,
}

impl fmt::Debug for DeliveryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DeliveryLog {
    /// Opens a log for writing, creating it with its header if it is missing or empty; the
    /// same as [`open_with_history`](Self::open_with_history) without the history.
    pub fn open(path: &Path) -> Result<(DeliveryLog, Vec<Entry>)> {
        let (log, _, appended) = DeliveryLog::open_with_history(path)?;
        Ok((log, appended))
    }

    /// Opens a log for writing, creating it with its header if it is missing or empty, and
    /// reads it once: returns the writer, what the log says (with the entries reconciliation
    /// added), and the entries reconciliation appended.
    ///
    /// Repairs a torn tail (bytes after the last line feed, left by a crash mid-write) by
    /// removing them, then reconciles the intent journal: every letter whose handover began with
    /// no outcome logged after it is recorded `unknown`. Fails, writing nothing, if another run
    /// holds the log, if the file is not a delivery log, if a complete line of it cannot be read
    /// (that recipient may have been sent), or if the last run did not end cleanly and its
    /// journal is gone (its letters in flight cannot be known).
    pub fn open_with_history(path: &Path) -> Result<(DeliveryLog, History, Vec<Entry>)> {
        let file = open_for_writing(path, "cannot open the delivery log for writing")?;
        let mut run_lock = RunLock::acquire(path)?;
        let bytes = read_all(&file, path, "cannot read the delivery log")?;
        let parsed = parse_log(path, &bytes)?;
        if !parsed.unreadable.is_empty() {
            return Err(Error::Problems(parsed.unreadable));
        }
        let journal_path = journal_path(path);
        let journal_exists = journal_path.try_exists().unwrap_or(true);
        if let Some(last_run) = run_lock.unfinished_run()
            && !journal_exists
        {
            return Err(missing_journal(path, &journal_path, &last_run));
        }
        let log = Arc::new(DurableAppend::new(
            path,
            "delivery log",
            file,
            bytes.len() as u64,
        ));

        let mut repairs = Vec::new();
        if parsed.complete_len < bytes.len() {
            log.truncate(parsed.complete_len as u64)?;
            let torn = String::from_utf8_lossy(&bytes[parsed.complete_len..]);
            repairs.push(
                Problem::new(
                    Location::file(path).line(next_line_number(&bytes[..parsed.complete_len])),
                    format!(
                        "removed an incomplete last line left by an interrupted run: \"{torn}\""
                    ),
                )
                .to_string(),
            );
        }
        if !parsed.has_header {
            log.append(&header_line())?;
            sync_parent(path);
        }

        let journal_file = open_for_writing(
            &journal_path,
            "cannot open the delivery log journal for writing",
        )?;
        let journal_bytes = read_all(
            &journal_file,
            &journal_path,
            "cannot read the delivery log journal",
        )?;
        let (intents, problems) = parse_journal(&journal_path, &journal_bytes);
        repairs.extend(problems);
        // Each sync of the journal first syncs the log: an outcome written before an intent is
        // on disk when that intent is (see `DeliveryLog::record`).
        let journal = DurableAppend::new(
            &journal_path,
            "delivery log journal",
            journal_file,
            journal_bytes.len() as u64,
        )
        .carrying(Arc::clone(&log));

        let appended: Vec<Entry> = unresolved(&intents, &parsed.entries)
            .into_iter()
            .map(|(intent, begun)| {
                Entry::now(
                    intent.row,
                    &intent.email,
                    &intent.organisation,
                    Status::Unknown,
                )
                .with_detail(&unknown_detail(intent.row))
                .with_message_id(&intent.message_id)
                .with_attempts(begun)
            })
            .collect();
        for entry in &appended {
            log.append(&entry.to_line())?;
        }
        // Only once the outcomes are on disk: a crash before this leaves intents that now have
        // an outcome after them, so the next open adds nothing twice.
        if journal_bytes.is_empty() {
            sync_parent(&journal_path);
        } else {
            journal.truncate(0)?;
        }
        // The journal exists (durably) before the lock file says a run is under way.
        run_lock.mark_running()?;

        let mut history = History::default();
        for entry in parsed.entries.into_iter().map(|(_, entry)| entry) {
            history.push(entry);
        }
        for entry in &appended {
            history.push(entry.clone());
        }

        let journal = Arc::new(journal);
        // Without the thread (the system refused one) every confirm syncs for itself: slower,
        // exactly as safe.
        let flusher = std::thread::Builder::new()
            .name("envoi-journal".into())
            .spawn({
                let journal = Arc::clone(&journal);
                move || journal.flush_ahead()
            })
            .ok();
        let delivery_log = DeliveryLog {
            path: path.to_path_buf(),
            log,
            journal,
            flusher: Mutex::new(flusher),
            pending: Mutex::new(HashSet::new()),
            repairs,
            run_lock: Mutex::new(run_lock),
            closed: AtomicBool::new(false),
        };
        Ok((delivery_log, history, appended))
    }

    /// Records that a message is about to be handed to the relay; on disk before it returns.
    /// Call it before sending the message data, and [`record`](Self::record) its outcome after.
    /// The same as [`announce`](Self::announce) then [`confirm`](Self::confirm).
    pub fn begin(
        &self,
        row: usize,
        email: &str,
        organisation: &str,
        message_id: &str,
    ) -> Result<()> {
        let announced = self.announce(row, email, organisation, message_id)?;
        self.confirm(announced)
    }

    /// The first half of [`begin`](Self::begin): writes the intent to the journal and returns
    /// without waiting for the disk; a background thread syncs it meanwhile. Call it when the
    /// message's transaction starts, then [`confirm`](Self::confirm) before its data goes out.
    /// Every announced message must get an outcome [`record`](Self::record)ed (an attempt that
    /// failed before the data counts), or the next [`open`](Self::open) logs it `unknown`.
    pub fn announce(
        &self,
        row: usize,
        email: &str,
        organisation: &str,
        message_id: &str,
    ) -> Result<Announced> {
        // A letter must not go out if its outcome could not be logged.
        self.log.check()?;
        lock(&self.pending).insert(email_key(email));
        let intent = Intent {
            offset: self.log.len(),
            row,
            email: email.to_string(),
            organisation: organisation.to_string(),
            message_id: message_id.to_string(),
        };
        let seq = self.journal.write(&intent.to_line())?;
        Ok(Announced { seq })
    }

    /// The second half of [`begin`](Self::begin): returns once the announced intent is on disk,
    /// and with it every outcome [`record`](Self::record)ed before the intent was announced (at
    /// once, when the background sync already covered them).
    pub fn confirm(&self, announced: Announced) -> Result<()> {
        self.journal.wait_durable(announced.seq)
    }

    /// Appends an outcome. It is written at once and reaches the disk with the next intent's
    /// sync (the journal's syncs carry the log) or at [`close`](Self::close), whichever comes
    /// first: one sync per letter instead of two. So the outcome of a letter is on disk before
    /// the next letter announced after it, on any connection, sends its data; a crash loses at
    /// most the outcomes of the letters whose data went out after the last sync, and their
    /// intents make the next [`open`](Self::open) record them `unknown`.
    pub fn record(&self, entry: &Entry) -> Result<()> {
        self.log.write(&entry.to_line())?;
        lock(&self.pending).remove(&email_key(&entry.email));
        Ok(())
    }

    /// The log file, as given to [`open`](Self::open).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `open` had to mend (a torn last line removed, unreadable journal lines), one line
    /// each, for the caller to show.
    pub fn repairs(&self) -> &[String] {
        &self.repairs
    }

    /// Closes the log: puts every outcome on disk; when every letter begun has its outcome,
    /// says so in the lock file and removes the intent journal; releases the lock. Dropping
    /// does the same, ignoring errors.
    pub fn close(self) -> Result<()> {
        self.finish()
    }

    fn finish(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.journal.stop();
        if let Some(flusher) = lock(&self.flusher).take() {
            let _ = flusher.join();
        }
        let synced = self.log.sync_written();
        // With an outcome missing (or not surely on disk), the journal and the lock file's
        // line stay for the next open.
        if synced.is_err() || !lock(&self.pending).is_empty() {
            return synced;
        }
        // In this order: a crash between the two leaves a clean lock file and a journal whose
        // intents all have their outcomes, which the next open reads as nothing to do.
        lock(&self.run_lock).mark_clean()?;
        match std::fs::remove_file(self.journal.path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(
                self.journal.path(),
                "cannot remove the delivery log journal",
                e,
            )),
        }
    }
}

impl Drop for DeliveryLog {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The last run did not close the log, and the journal that names its letters in flight is gone.
fn missing_journal(log: &Path, journal: &Path, last_run: &str) -> Error {
    let lock = lock_path(log);
    Error::input(
        Location::file(log),
        format!(
            "the last run with this log did not end cleanly (its lock file {} says \"{last_run}\"), and its journal {} is gone, so envoi cannot tell which letters it was handing to the relay: sending now could send them twice. Put the journal back if you have it; otherwise check with the relay which letters of that run arrived, then delete {} to send the rest",
            lock.display(),
            journal.display(),
            lock.display()
        ),
    )
}

#[cfg(test)]
mod tests {

    use crate::delivery_log::*;

    #[test]
    fn delivery_log_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DeliveryLog>();
    }
}
