//! The group-commit durable writer: an append-only file that many threads write, each line on
//! disk before its append returns.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::error::{Error, Result};

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still sound.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An append-only file that many threads write, each line on disk before its append returns.
///
/// Group commit. Invariant: `synced.seq <= written.seq`, and every line numbered `<=
/// synced.seq` was wholly written to the file before an `fdatasync` that completed
/// successfully had started. An appender writes its whole line under `written` (so lines never
/// interleave) and takes that line's number, then waits until `synced.seq` reaches it. When no
/// sync is running it becomes the leader: it reads `written.seq` (every line counted there is
/// already in the file), runs one `fdatasync` and publishes that number, which covers its own
/// line and every line written before the sync began; threads whose line is already covered
/// return without a sync of their own. After any write or sync error the file is failed for
/// good (the kernel may have dropped unsynced data), and every later append is refused.
///
/// Lazy lines. A line written with [`write_lazily`](Self::write_lazily) does not wake the
/// [`flush_ahead`](Self::flush_ahead) thread: it reaches the disk with the next sync anyone
/// needs, which covers every line written before it. The journal writes outcomes that way, so
/// that the next intent's sync carries them: one `fdatasync` per letter, not two.
///
/// Zeroed ahead. A file made [`zeroed_ahead`](Self::zeroed_ahead) (the journal) is filled with
/// zero bytes a chunk ahead of its last line, so that a line overwrites bytes the file already
/// has: its `fdatasync` then writes data only, where an append also commits the new length to
/// the file system's journal (on ext4, about 140 µs a sync instead of 190 µs here; databases
/// pre-zero their write-ahead logs for the same reason). Readers take the zeros after the last
/// line for a torn tail, which they ignore (see `journal::parse_journal`).
///
/// The file is opened for writing without append mode (Windows refuses to truncate through an
/// append handle): `written.len` is where the next line goes, and the file position is kept
/// there (every write is made under `written`, and a truncation moves the position with it).
pub(super) struct DurableAppend {
    path: PathBuf,
    /// What the file is, for messages: "delivery log" or "delivery log journal".
    what: &'static str,
    file: File,
    written: Mutex<Written>,
    /// Signalled when a line is written, or when flushing ahead should stop.
    written_changed: Condvar,
    synced: Mutex<Synced>,
    synced_changed: Condvar,
    failure: OnceLock<String>,
    /// Tells the [`flush_ahead`](Self::flush_ahead) thread to finish.
    stop_flushing: AtomicBool,
}

/// How far ahead of its last line a [zeroed-ahead](DurableAppend::zeroed_ahead) file is filled:
/// about 3,900 letters of intents and outcomes, so one sync in thousands also commits a length.
const ZERO_CHUNK: u64 = 1 << 20;

struct Written {
    /// The file's length: where the next line starts.
    len: u64,
    /// How many lines have been written.
    seq: u64,
    /// The last line written with [`DurableAppend::write`], which someone will wait for.
    wanted: u64,
    /// Where the file ends: `len` plus the zeros written ahead of it.
    end: u64,
    /// Whether zeros are still written ahead (see [`DurableAppend::zeroed_ahead`]).
    zeroing: bool,
    /// Whether the flusher waits on `written_changed` (nobody else does): a write that finds
    /// it syncing, or no flusher at all, need not signal, a system call saved per line.
    flusher_waits: bool,
}

struct Synced {
    /// Lines up to this number are on disk.
    seq: u64,
    /// Whether a leader is running `fdatasync` now.
    leader: bool,
    /// How many threads wait on `synced_changed`: with none, a finished sync need not signal.
    waiters: usize,
}

impl DurableAppend {
    /// Wraps a file opened for writing whose length is `len`, with its position at the end.
    pub(super) fn new(path: &Path, what: &'static str, file: File, len: u64) -> DurableAppend {
        DurableAppend {
            path: path.to_path_buf(),
            what,
            file,
            written: Mutex::new(Written {
                len,
                seq: 0,
                wanted: 0,
                end: len,
                zeroing: false,
                flusher_waits: false,
            }),
            written_changed: Condvar::new(),
            synced: Mutex::new(Synced {
                seq: 0,
                leader: false,
                waiters: 0,
            }),
            synced_changed: Condvar::new(),
            failure: OnceLock::new(),
            stop_flushing: AtomicBool::new(false),
        }
    }

    /// Fills the file with zeros ahead of its last line (see "Zeroed ahead" above).
    pub(super) fn zeroed_ahead(self) -> DurableAppend {
        lock(&self.written).zeroing = true;
        self
    }

    fn stopped(&self, reason: &str) -> Error {
        Error::Stopped(format!(
            "cannot write the {} {}: {reason}; stopping so that no letter is sent without a record",
            self.what,
            self.path.display()
        ))
    }

    /// Marks the file failed for good and returns the error to report.
    pub(super) fn fail(&self, error: io::Error) -> Error {
        let reason = self.failure.get_or_init(|| error.to_string());
        self.stopped(reason)
    }

    /// Refuses to go on once a write or sync has failed.
    pub(super) fn check(&self) -> Result<()> {
        match self.failure.get() {
            Some(reason) => Err(self.stopped(reason)),
            None => Ok(()),
        }
    }

    /// The file, as given to [`new`](Self::new).
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length: the offset where the next line will start.
    pub(super) fn len(&self) -> u64 {
        lock(&self.written).len
    }

    /// Appends one whole line and returns once it is on disk.
    pub(super) fn append(&self, line: &[u8]) -> Result<()> {
        let seq = self.write(line)?;
        self.wait_durable(seq)
    }

    /// Writes one whole line and returns its number, for [`wait_durable`](Self::wait_durable);
    /// the line is in the file but not yet surely on disk, and a [`flush_ahead`](Self::flush_ahead)
    /// thread starts syncing it.
    pub(super) fn write(&self, line: &[u8]) -> Result<u64> {
        let mut written = self.write_locked(line)?;
        written.wanted = written.seq;
        if written.flusher_waits {
            self.written_changed.notify_all();
        }
        Ok(written.seq)
    }

    /// Writes one whole line that nobody waits for now: the next sync, whoever needs it,
    /// puts it on disk (see "Lazy lines" above). Returns its number.
    pub(super) fn write_lazily(&self, line: &[u8]) -> Result<u64> {
        Ok(self.write_locked(line)?.seq)
    }

    fn write_locked(&self, line: &[u8]) -> Result<MutexGuard<'_, Written>> {
        let mut written = lock(&self.written);
        self.check()?;
        if written.zeroing
            && written.len + line.len() as u64 > written.end
            && let Err(error) = self.zero_fill(&mut written, line.len() as u64)
        {
            return Err(self.fail(error));
        }
        if let Err(error) = (&self.file).write_all(line) {
            // Cut off a partial line so that the file still ends at a line boundary.
            let _ = self.file.set_len(written.len);
            let _ = (&self.file).seek(SeekFrom::Start(written.len));
            written.end = written.len;
            return Err(self.fail(error));
        }
        written.len += line.len() as u64;
        written.seq += 1;
        Ok(written)
    }

    /// Writes zeros from the file's end to a chunk past the next `needed` bytes, and puts the
    /// position back where the next line goes. The next sync puts them on disk with the line.
    /// The room is only a speed-up: where the disk has none to give (full, or a file size
    /// limit), the file goes on without it, and only a line that cannot be written fails it.
    /// Fails only when the position cannot be put back.
    fn zero_fill(&self, written: &mut Written, needed: u64) -> io::Result<()> {
        let end = written.len + needed + ZERO_CHUNK;
        let zeros = vec![0; (end - written.end) as usize];
        let filled = (&self.file)
            .seek(SeekFrom::Start(written.end))
            .and_then(|_| (&self.file).write_all(&zeros));
        match filled {
            Ok(()) => written.end = end,
            Err(_) => {
                // Zeros that did get written are a torn tail to readers, and lines overwrite
                // them; the position must be back where the next line goes in any case.
                written.zeroing = false;
                written.end = written.len;
            }
        }
        (&self.file).seek(SeekFrom::Start(written.len)).map(|_| ())
    }

    /// Syncs every line written with [`write`](Self::write) as soon as it is written (and with
    /// it the lazy lines before it), until [`stop`](Self::stop) is called, so that a writer
    /// waiting for its line finds the sync done or under way. Runs on its own thread;
    /// it is one more participant in the group commit, so it changes when syncs happen, never
    /// what an appender waits for. After a failed sync the file is failed and this returns.
    pub(super) fn flush_ahead(&self) {
        let mut covered = 0;
        loop {
            let target = {
                let mut written = lock(&self.written);
                while written.wanted <= covered && !self.stop_flushing.load(Ordering::SeqCst) {
                    written.flusher_waits = true;
                    written = self
                        .written_changed
                        .wait(written)
                        .unwrap_or_else(PoisonError::into_inner);
                    written.flusher_waits = false;
                }
                if written.wanted <= covered {
                    return;
                }
                written.seq
            };
            if self.wait_durable(target).is_err() {
                return;
            }
            covered = target;
        }
    }

    /// Ends [`flush_ahead`](Self::flush_ahead) once what was written is synced.
    pub(super) fn stop(&self) {
        // Under the lock, so the flusher cannot check the flag, miss this wake-up, then wait.
        let _written = lock(&self.written);
        self.stop_flushing.store(true, Ordering::SeqCst);
        self.written_changed.notify_all();
    }

    /// Waits until every line written so far is on disk; fails once the file has failed, even
    /// with nothing left to sync (a line that failed to be written was not counted).
    pub(super) fn sync_written(&self) -> Result<()> {
        self.check()?;
        let seq = lock(&self.written).seq;
        self.wait_durable(seq)
    }

    /// Waits until line `seq` is covered by a completed sync, leading one if none is running.
    pub(super) fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut synced = lock(&self.synced);
        loop {
            if synced.seq >= seq {
                return Ok(());
            }
            self.check()?;
            if synced.leader {
                synced.waiters += 1;
                synced = self
                    .synced_changed
                    .wait(synced)
                    .unwrap_or_else(PoisonError::into_inner);
                synced.waiters -= 1;
                continue;
            }
            synced.leader = true;
            drop(synced);
            // Read after our own line was counted: the sync covers it and all before it.
            let target = lock(&self.written).seq;
            let result = self.file.sync_data();
            synced = lock(&self.synced);
            synced.leader = false;
            match result {
                Ok(()) => synced.seq = synced.seq.max(target),
                Err(error) => {
                    self.fail(error);
                }
            }
            if synced.waiters > 0 {
                self.synced_changed.notify_all();
            }
        }
    }

    /// Whether line `seq` is on disk.
    #[cfg(test)]
    pub(super) fn synced_at_least(&self, seq: u64) -> bool {
        lock(&self.synced).seq >= seq
    }

    /// Cuts the file to `len` bytes, durably.
    pub(super) fn truncate(&self, len: u64) -> Result<()> {
        let mut written = lock(&self.written);
        self.check()?;
        // sync_all: a change of length is metadata that must reach the disk too.
        let cut = self
            .file
            .set_len(len)
            .and_then(|()| (&self.file).seek(SeekFrom::Start(len)).map(|_| ()))
            .and_then(|()| self.file.sync_all());
        match cut {
            Ok(()) => {
                written.len = len;
                written.end = len;
                Ok(())
            }
            Err(error) => Err(self.fail(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::path::Path;
    use std::sync::Arc;

    use crate::delivery_log::test_support::*;
    use crate::delivery_log::*;
    use crate::error::Error;

    #[test]
    fn flushing_ahead_syncs_what_nobody_waits_for_and_stops_when_told() {
        let dir = tmp();
        let path = dir.path().join("journal");
        let file = open_for_writing(&path, "cannot open the journal").unwrap();
        let journal = Arc::new(DurableAppend::new(&path, "delivery log journal", file, 0));
        let flusher = std::thread::spawn({
            let journal = Arc::clone(&journal);
            move || journal.flush_ahead()
        });
        for i in 0..20 {
            journal.write(format!("line {i}\n").as_bytes()).unwrap();
        }
        // No one waits for those lines; the flusher syncs them on its own.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while lock(&journal.synced).seq < 20 {
            assert!(std::time::Instant::now() < deadline, "lines never synced");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        journal.wait_durable(20).unwrap();
        journal.stop();
        flusher.join().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 20);
    }

    #[test]
    fn concurrent_records_are_complete_lines() {
        const THREADS: usize = 8;
        const EACH: usize = 500;
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = Arc::new(open(&path));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        let email = format!("t{t}-{i}@x.example");
                        if t % 2 == 0 {
                            log.begin(i + 2, &email, "Org, \"quoted\"", "<id>").unwrap();
                        } else {
                            // As `send` does it: announce, (the envelope), confirm.
                            let announced = log
                                .announce(i + 2, &email, "Org, \"quoted\"", "<id>", SyncStart::Now)
                                .unwrap();
                            log.confirm(announced).unwrap();
                        }
                        let entry = Entry::now(i + 2, &email, "Org, \"quoted\"", Status::Sent)
                            .with_detail(&format!("queued as {t}/{i}, ok"))
                            .with_attempts(1);
                        log.record(&entry).unwrap();
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        Arc::into_inner(log).unwrap().close().unwrap();

        let history = read(&path);
        assert!(
            history.warnings().is_empty(),
            "{:?}",
            &history.warnings()[..1]
        );
        assert_eq!(history.len(), THREADS * EACH);
        for t in 0..THREADS {
            for i in 0..EACH {
                let entry = history.last(&format!("t{t}-{i}@x.example")).unwrap();
                assert_eq!(entry.detail, format!("queued as {t}/{i}, ok"));
            }
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap().lines().count(),
            1 + THREADS * EACH
        );
        assert!(
            !journal_path(&path).exists(),
            "a clean close removes the journal"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_stops_and_keeps_refusing() {
        // Every write to /dev/full fails with "No space left on device".
        let path = Path::new("/dev/full");
        let file = OpenOptions::new().append(true).open(path).unwrap();
        let full = DurableAppend::new(path, "delivery log", file, 0);
        for _ in 0..2 {
            let err = full.append(b"a line\n").unwrap_err();
            assert!(matches!(err, Error::Stopped(_)));
            let message = err.to_string();
            assert!(
                message.starts_with("cannot write the delivery log /dev/full: "),
                "{message}"
            );
            assert!(message.ends_with("; stopping so that no letter is sent without a record"));
        }
        assert!(full.check().is_err());
    }

    /// A journal in a fresh folder, with its flush-ahead thread.
    fn journal_with_flusher(dir: &Path) -> (Arc<DurableAppend>, std::thread::JoinHandle<()>) {
        let path = dir.join("log.csv.inflight");
        let journal = Arc::new(DurableAppend::new(
            &path,
            "delivery log journal",
            open_for_writing(&path, "open").unwrap(),
            0,
        ));
        let flusher = std::thread::spawn({
            let journal = Arc::clone(&journal);
            move || journal.flush_ahead()
        });
        (journal, flusher)
    }

    #[test]
    fn lazy_lines_wake_no_sync_and_ride_with_the_next_one() {
        let dir = tmp();
        let (journal, flusher) = journal_with_flusher(dir.path());
        for i in 0..3 {
            journal
                .write_lazily(format!("outcome {i}\n").as_bytes())
                .unwrap();
        }
        // Told to stop with only lazy lines written, the flusher has nothing it must sync.
        journal.stop();
        flusher.join().unwrap();
        assert_eq!(lock(&journal.synced).seq, 0, "no sync for lazy lines alone");
        let intent = journal.write(b"intent 4\n").unwrap();
        journal.wait_durable(intent).unwrap();
        assert_eq!(
            lock(&journal.synced).seq,
            4,
            "one sync covered all four lines"
        );
        // A lazy line after that is put on disk by the next sync anyone waits for.
        let late = journal.write_lazily(b"outcome 5\n").unwrap();
        assert!(lock(&journal.synced).seq < late);
        journal.sync_written().unwrap();
        assert!(lock(&journal.synced).seq >= late);
    }

    #[test]
    fn concurrent_writers_find_their_outcome_on_disk_once_their_next_intent_is() {
        const THREADS: usize = 8;
        const EACH: usize = 300;
        let dir = tmp();
        let (journal, flusher) = journal_with_flusher(dir.path());
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let journal = &journal;
                scope.spawn(move || {
                    for i in 0..EACH {
                        let outcome = journal
                            .write_lazily(format!("outcome {t}/{i}\n").as_bytes())
                            .unwrap();
                        let intent = journal
                            .write(format!("intent {t}/{i}\n").as_bytes())
                            .unwrap();
                        journal.wait_durable(intent).unwrap();
                        assert!(
                            lock(&journal.synced).seq >= outcome,
                            "thread {t}, letter {i}"
                        );
                    }
                });
            }
        });
        journal.stop();
        flusher.join().unwrap();
        let text = fs::read_to_string(dir.path().join("log.csv.inflight")).unwrap();
        assert_eq!(text.lines().count(), 2 * THREADS * EACH);
        assert!(
            text.lines()
                .all(|line| line.starts_with("outcome ") || line.starts_with("intent ")),
            "whole lines, never interleaved"
        );
    }

    /// A real failed `fdatasync`: Linux refuses to sync a pipe (EINVAL), though writing to it
    /// works, which is what a disk that drops a flush looks like to envoi.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_sync_fails_every_waiter_and_every_later_write() {
        let (reader, writer) = std::io::pipe().unwrap();
        let file = fs::File::from(std::os::fd::OwnedFd::from(writer));
        let pipe = Arc::new(DurableAppend::new(
            Path::new("pipe"),
            "delivery log journal",
            file,
            0,
        ));
        let seqs: Vec<u64> = (0..4)
            .map(|i| pipe.write(format!("line {i}\n").as_bytes()).unwrap())
            .collect();
        std::thread::scope(|scope| {
            for &seq in &seqs {
                let pipe = &pipe;
                scope.spawn(move || {
                    let err = pipe.wait_durable(seq).unwrap_err();
                    assert!(matches!(err, Error::Stopped(_)), "{err}");
                    assert!(
                        err.to_string()
                            .starts_with("cannot write the delivery log journal pipe: "),
                        "{err}"
                    );
                });
            }
        });
        assert_eq!(lock(&pipe.synced).seq, 0, "nothing counts as synced");
        assert!(pipe.write(b"later\n").is_err());
        assert!(pipe.truncate(0).is_err());
        drop(reader);
    }
}
