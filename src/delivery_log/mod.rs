//! The delivery log (`delivery-log.csv`): an append-only record of what happened to every
//! letter, and the journal that keeps a crash from turning into a second letter.
//!
//! How it stays trustworthy when envoi is killed at any instant:
//!
//! * **One physical line per entry.** Every field is made single-line before it is written, so
//!   a line that does not end in `\n` is exactly a write that a crash cut short. Readers ignore
//!   it; [`DeliveryLog::open`] removes it. A complete line that cannot be read stops `send`
//!   (that recipient may have been sent); `report` shows it as a warning.
//! * **The journal is the run's write-ahead log.** Before a message's data goes to the relay,
//!   its intent (`offset,row,email,organisation,message_id`, where `offset` is the log's length
//!   at that moment) is on disk in `<log>.inflight`. [`DeliveryLog::announce`] writes it when
//!   the message's SMTP transaction starts, a background thread syncs it while MAIL, RCPT and
//!   DATA travel, and [`DeliveryLog::confirm`] returns once it is on disk, before the data goes
//!   out. Each outcome goes to the journal too (`outcome,` then the complete log row), then to
//!   the log, which is synced only when the run closes.
//! * **One sync per letter.** [`DeliveryLog::record`] writes an outcome without waiting; the
//!   next intent's sync, in the same file, puts it on disk before that next letter's data goes
//!   out. Concurrent connections share syncs (group commit). A crash loses at most the outcomes
//!   of the letters in flight, which the journal turns into `unknown`.
//! * **Recovery.** After a run that did not end cleanly, [`DeliveryLog::open`] first writes an
//!   `unknown` outcome to the journal for every intent with no outcome after it, then appends
//!   to the log every journaled outcome it does not hold (rows a power cut kept from its disk),
//!   syncs the log, and only then empties the journal: a crash at any step of that leaves a
//!   journal from which the next open reaches the same log, with no row twice.
//! * **One writer.** A [`DeliveryLog`] holds a lock on `<log>.lock` for its lifetime, so two
//!   `envoi send` runs cannot interleave their rows, while the log itself stays readable. The
//!   lock file holds a line while a run writes and is emptied when the run closes the log
//!   cleanly; a log whose last run did not end cleanly and whose journal is gone is refused.
//!   A clean close syncs the log, then removes the journal.

mod durable;
mod files;
mod format;
mod history;
mod journal;
#[cfg(test)]
mod test_support;

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{Error, Location, Problem, Result};
use durable::{DurableAppend, lock};
use files::{RunLock, open_for_writing, read_all, sync_parent};
use format::{email_key, header_line, next_line_number, parse_log};
use journal::{
    Intent, Journal, outcome_line, parse_journal, reconcile, unknown_detail, zeroed_log_cut,
};

pub use files::lock_path;
pub use format::{COLUMNS, Entry, ParseStatusError, Status, StatusCounts};
pub use history::History;
pub use journal::journal_path;

/// The log writer. Several SMTP workers append through `&self` (it is `Send + Sync`); it
/// holds the log's lock (see [`lock_path`]) until dropped.
pub struct DeliveryLog {
    path: PathBuf,
    log: DurableAppend,
    journal: Arc<DurableAppend>,
    /// The thread that syncs announced intents ahead of their [`confirm`](Self::confirm).
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Recipients (lower-cased address) whose handover began and whose outcome is not recorded.
    pending: Mutex<HashSet<String>>,
    repairs: Vec<String>,
    run_lock: Mutex<RunLock>,
    closed: AtomicBool,
}

/// When an announced intent's sync starts (see [`DeliveryLog::announce`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStart {
    /// At once, on the background thread, while the letter's envelope travels to the relay.
    Now,
    /// When [`DeliveryLog::confirm`] is called, on the confirming thread, unless a sync under
    /// way by then covers it: for a letter whose envelope is already answered, where handing
    /// the sync to another thread would only add a wake-up on each side.
    ByConfirm,
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
    /// removing them, then reconciles the journal: every outcome it holds that the log lost is
    /// written back to the log once, and every letter whose handover began with no outcome
    /// after it is recorded `unknown` (see "Recovery" above). Fails, writing nothing, if another run
    /// holds the log, if the file is not a delivery log, if a complete line of it cannot be read
    /// (that recipient may have been sent), or if the last run did not end cleanly and its
    /// journal is gone (its letters in flight cannot be known).
    pub fn open_with_history(path: &Path) -> Result<(DeliveryLog, History, Vec<Entry>)> {
        let file = open_for_writing(path, "cannot open the delivery log for writing")?;
        let mut run_lock = RunLock::acquire(path)?;
        let bytes = read_all(&file, path, "cannot read the delivery log")?;
        let journal_path = journal_path(path);
        let journal_exists = journal_path.try_exists().unwrap_or(true);
        // An existing journal is read once, here, before the log is parsed (opening it
        // changes nothing; a missing one is created only once the log is known good).
        let existing = journal_exists
            .then(|| open_journal(&journal_path))
            .transpose()?;
        let read_back = existing
            .as_ref()
            .map(|(_, bytes)| parse_journal(&journal_path, bytes));
        // A power cut in the last run may have left zeros where its unsynced rows were; they
        // are all in the journal, so the log is cut back and recovery writes them again.
        let zeroed_cut = match (&read_back, bytes.contains(&0)) {
            (Some(journal), true) => zeroed_log_cut(&bytes, &journal.lines),
            _ => None,
        };
        let kept = &bytes[..zeroed_cut.unwrap_or(bytes.len())];
        let parsed = parse_log(path, kept)?;
        if !parsed.unreadable.is_empty() {
            return Err(Error::Problems(parsed.unreadable));
        }
        if let Some(last_run) = run_lock.unfinished_run()
            && !journal_exists
        {
            return Err(missing_journal(path, &journal_path, &last_run));
        }
        let log = DurableAppend::new(path, "delivery log", file, bytes.len() as u64);

        let mut repairs = Vec::new();
        if zeroed_cut.is_some() {
            repairs.push(
                Problem::new(
                    Location::file(path).line(next_line_number(kept)),
                    "removed the rows from this line on, which a power cut during the last run left as zero bytes; the journal holds them, and they are written back below",
                )
                .to_string(),
            );
        }
        if parsed.complete_len < bytes.len() {
            log.truncate(parsed.complete_len as u64)?;
        }
        if parsed.complete_len < kept.len() {
            let torn = String::from_utf8_lossy(&kept[parsed.complete_len..]);
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

        let (journal_file, journal_bytes) = match existing {
            Some(journal) => journal,
            None => open_journal(&journal_path)?,
        };
        let read_back = read_back.unwrap_or_else(|| parse_journal(&journal_path, &journal_bytes));
        let journal = DurableAppend::new(
            &journal_path,
            "delivery log journal",
            journal_file,
            journal_bytes.len() as u64,
        )
        .zeroed_ahead();
        let recovered = recover(&log, &journal, &journal_bytes, &read_back, &parsed.entries)?;
        repairs.extend(read_back.problems);
        if !recovered.restored.is_empty() {
            let n = recovered.restored.len();
            repairs.push(format!(
                "{}: wrote {} back to the log from its journal: the log had lost {} when envoi stopped",
                path.display(),
                crate::text::plural(n, "outcome"),
                if n == 1 { "it" } else { "them" }
            ));
        }
        // The journal exists (durably) before the lock file says a run is under way.
        run_lock.mark_running()?;

        let mut history = History::default();
        for entry in parsed.entries.into_iter().map(|(_, entry)| entry) {
            history.push(entry);
        }
        for entry in recovered.restored.iter().chain(&recovered.unknown) {
            history.push(entry.clone());
        }
        let appended = recovered.unknown;

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
        let announced = self.announce(row, email, organisation, message_id, SyncStart::Now)?;
        self.confirm(announced)
    }

    /// The first half of [`begin`](Self::begin): writes the intent to the journal and returns
    /// without waiting for the disk; with [`SyncStart::Now`] a background thread syncs it
    /// meanwhile. Call it when the
    /// message's transaction starts, then [`confirm`](Self::confirm) before its data goes out.
    /// Every announced message must get an outcome [`record`](Self::record)ed (an attempt that
    /// failed before the data counts), or the next [`open`](Self::open) logs it `unknown`.
    pub fn announce(
        &self,
        row: usize,
        email: &str,
        organisation: &str,
        message_id: &str,
        sync: SyncStart,
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
        let line = intent.to_line();
        let seq = match sync {
            SyncStart::Now => self.journal.write(&line)?,
            SyncStart::ByConfirm => self.journal.write_lazily(&line)?,
        };
        Ok(Announced { seq })
    }

    /// The second half of [`begin`](Self::begin): returns once the announced intent is on disk,
    /// and with it every outcome [`record`](Self::record)ed before the intent was announced (at
    /// once, when the background sync already covered them).
    pub fn confirm(&self, announced: Announced) -> Result<()> {
        self.journal.wait_durable(announced.seq)?;
        // A row that could not reach the log stops the run here too, before this data goes out.
        self.log.check()
    }

    /// Appends an outcome: to the journal, then to the log, without waiting for either. The
    /// journal's line reaches the disk with the next intent's sync (the same file) or at
    /// [`close`](Self::close), whichever comes first; the log's row at close: one sync per
    /// letter. So the outcome of a letter is on disk before the next letter announced after
    /// it, on any connection, sends its data; a crash loses at most the outcomes of the
    /// letters whose data went out after the last sync, and their intents make the next
    /// [`open`](Self::open) record them `unknown`. A row the log lost is restored from the
    /// journal by that open.
    pub fn record(&self, entry: &Entry) -> Result<()> {
        // The journal first: a row in the log is always one the journal has (or had, synced).
        self.journal.write_lazily(&outcome_line(entry))?;
        self.log.write_lazily(&entry.to_line())?;
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
        // The log's rows were written unsynced; the journal that also holds them may go only
        // once they are on disk.
        let synced = self.log.sync_written();
        // With an outcome missing (or not surely in the log), the journal and the lock file's
        // line stay for the next open, with the journal's outcome lines on disk too.
        if synced.is_err() || !lock(&self.pending).is_empty() {
            let journal = self.journal.sync_written();
            return synced.and(journal);
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

/// What recovery wrote to the log.
struct Recovered {
    /// The journal's outcomes that the log had lost, now in it.
    restored: Vec<Entry>,
    /// The letters that were in flight, now `unknown` in the journal and the log.
    unknown: Vec<Entry>,
}

/// Brings the log up to what the journal says, in an order that a crash at any point leaves
/// something the next open finishes the same way: the `unknown` outcomes first go to the
/// journal (synced), so that a second recovery finds those intents answered and does not
/// invent a second `unknown`; then every journaled outcome the log lacks goes to the log
/// (synced), matched row by row so that none is written twice; last, the journal is emptied.
/// Opens (creating) the journal and reads it, leaving its position at the end.
fn open_journal(path: &Path) -> Result<(File, Vec<u8>)> {
    let file = open_for_writing(path, "cannot open the delivery log journal for writing")?;
    let bytes = read_all(&file, path, "cannot read the delivery log journal")?;
    Ok((file, bytes))
}

fn recover(
    log: &DurableAppend,
    journal: &DurableAppend,
    journal_bytes: &[u8],
    read_back: &Journal,
    entries: &[(u64, Entry)],
) -> Result<Recovered> {
    let reconciled = reconcile(&read_back.lines, entries);
    let unknown: Vec<Entry> = reconciled
        .unresolved
        .iter()
        .map(|&(intent, begun)| unknown_entry(intent, begun))
        .collect();
    if !unknown.is_empty() {
        // New lines must not be glued to a torn one.
        if read_back.complete_len < journal_bytes.len() {
            journal.truncate(read_back.complete_len as u64)?;
        }
        for entry in &unknown {
            journal.write_lazily(&outcome_line(entry))?;
        }
        journal.sync_written()?;
    }
    let restored: Vec<Entry> = reconciled.missing.into_iter().cloned().collect();
    for entry in restored.iter().chain(&unknown) {
        log.write_lazily(&entry.to_line())?;
    }
    log.sync_written()?;
    if journal_bytes.is_empty() {
        sync_parent(journal.path());
    } else {
        journal.truncate(0)?;
    }
    Ok(Recovered { restored, unknown })
}

fn unknown_entry(intent: &Intent, begun: u32) -> Entry {
    Entry::now(
        intent.row,
        &intent.email,
        &intent.organisation,
        Status::Unknown,
    )
    .with_detail(&unknown_detail(intent.row))
    .with_message_id(&intent.message_id)
    .with_attempts(begun)
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

    use std::fs;

    use crate::delivery_log::test_support::*;
    use crate::delivery_log::*;
    use crate::error::Error;

    #[test]
    fn delivery_log_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DeliveryLog>();
    }

    #[test]
    fn a_row_the_log_could_not_take_stops_the_next_data_and_every_later_letter() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        let announced = log
            .announce(2, "a@x.example", "A", "<a>", SyncStart::Now)
            .unwrap();
        // What a failed write of a row leaves: the log failed for good (its row is in the
        // journal, which recovery writes back).
        log.log.fail(std::io::Error::other("disk gone"));
        let err = log.confirm(announced).unwrap_err();
        assert!(matches!(err, Error::Stopped(_)), "{err}");
        assert!(err.to_string().contains("disk gone"), "{err}");
        assert!(
            log.announce(3, "b@x.example", "B", "<b>", SyncStart::Now)
                .is_err()
        );
        assert!(log.close().is_err(), "the log is not surely on disk");
        assert!(journal_path(&path).exists(), "the journal stays");
        assert!(!fs::read(lock_path(&path)).unwrap().is_empty(), "not clean");
    }

    /// Outcomes are synced with the next intent: one file, so one sync per letter, and the
    /// log itself is synced only when the run closes.
    #[test]
    fn an_outcome_is_in_the_journal_on_disk_with_the_next_intent() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.begin(2, "a@x.example", "A", "<a>").unwrap();
        let sent = Entry::now(2, "a@x.example", "A", Status::Sent);
        log.record(&sent).unwrap();
        log.begin(3, "b@x.example", "B", "<b>").unwrap();
        let journal = journal_content(&path);
        let outcome = journal::outcome_line(&sent);
        assert!(
            journal.windows(outcome.len()).any(|w| w == outcome),
            "the journal holds the complete row"
        );
        assert!(
            log.journal.synced_at_least(3),
            "intent, outcome, intent on disk"
        );
        // Line 1 is the header, written when the log was created.
        assert!(
            !log.log.synced_at_least(2),
            "the log's row waits for the close"
        );
        log.record(&Entry::now(3, "b@x.example", "B", Status::Sent))
            .unwrap();
        log.close().unwrap();
        assert_eq!(read(&path).len(), 2);
    }
}
