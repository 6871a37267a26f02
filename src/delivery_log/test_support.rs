//! What the delivery log's unit tests share: temporary folders and short-hands.

use std::fs;
use std::path::{Path, PathBuf};

use super::{DeliveryLog, History, Status, journal_path};
use tempfile::TempDir;

pub fn tmp() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// For the crash loops, which test parsing and repair rather than the disk: a RAM disk,
/// where there is one, keeps a thousand synced reopenings fast.
pub fn ram_tmp() -> TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir")
}

pub fn open(path: &Path) -> DeliveryLog {
    let (log, appended) = DeliveryLog::open(path).expect("open log");
    assert!(
        appended.is_empty(),
        "unexpected reconciliation: {appended:?}"
    );
    log
}

pub fn read(path: &Path) -> History {
    History::read(path).expect("read log")
}

pub fn statuses(history: &History) -> Vec<(String, Status)> {
    history
        .entries()
        .map(|e| (e.email.clone(), e.status))
        .collect()
}

/// What a `kill -9` leaves on disk: a copy of the log and its journal as they are now.
pub fn crash_copy(log: &DeliveryLog, dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    fs::copy(log.path(), &copy).unwrap();
    fs::copy(journal_path(log.path()), journal_path(&copy)).unwrap();
    copy
}

/// A journal's lines as written, without the zeros the writer keeps ahead of them
/// (`DurableAppend::zeroed_ahead`).
pub fn journal_content(log: &Path) -> Vec<u8> {
    let mut bytes = fs::read(journal_path(log)).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes.truncate(end);
    bytes
}

/// Puts a log and its journal on disk as a crash left them, at `log`.
pub fn write_crashed(log: &Path, log_bytes: &[u8], journal: &[u8]) {
    fs::write(log, log_bytes).unwrap();
    fs::write(journal_path(log), journal).unwrap();
}
