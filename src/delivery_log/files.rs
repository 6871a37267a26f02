//! Opening, reading and checking the log's files.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};

use crate::error::{Error, Location, Result};

/// Appended to the log's file name to name its lock file.
const LOCK_SUFFIX: &str = ".lock";

/// The lock file that sits next to a log.
pub fn lock_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(LOCK_SUFFIX);
    PathBuf::from(name)
}

/// Reads a whole file; a missing one reads as empty.
pub(super) fn read_if_exists(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    match fs::metadata(path) {
        Ok(metadata) => must_be_regular(path, &metadata)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, what, e)),
    }
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path, what, e)),
    }
}

/// A log or journal must be an ordinary file: a device such as `/dev/full` reads as endless
/// zeros (reading it would never end) and cannot keep a record; a folder cannot either.
pub(super) fn must_be_regular(path: &Path, metadata: &fs::Metadata) -> Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    Err(Error::input(
        Location::file(path),
        "is not an ordinary file (it is a folder or a device), so it cannot keep the delivery log; give a file name with --log",
    ))
}

/// Makes a new file's name durable: it lives in the parent directory. Best effort, as some
/// file systems refuse to sync a directory; the contents are synced regardless.
pub(super) fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// Opens (creating) an ordinary file for reading and writing; `what` names it in errors. Not
/// in append mode: Windows refuses to truncate through an append handle, and the writer keeps
/// track of the end itself.
pub(super) fn open_for_writing(path: &Path, what: &'static str) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, what, e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, what, e))?;
    must_be_regular(path, &metadata)?;
    Ok(file)
}

/// The one-writer lock on a log, held for as long as a run writes it.
///
/// It locks a separate file, `<log>.lock`, as cargo does, not the log itself: on Windows a
/// lock on the log (`LockFileEx`) would also stop `envoi report`, a spreadsheet or a backup
/// from reading it while a run goes on. The lock file also says whether the last run ended
/// cleanly: a run writes a line into it when it starts and empties it when it closes the log
/// with every outcome on disk. The file itself is never removed, since a run that found it
/// gone while another still held the old one could lock a new one beside it.
pub(super) struct RunLock {
    path: PathBuf,
    file: File,
    /// What the lock file held when it was locked: empty unless a run did not end cleanly.
    found: Vec<u8>,
}

impl RunLock {
    /// Takes the lock, or says that another run holds it.
    pub(super) fn acquire(log: &Path) -> Result<RunLock> {
        let path = lock_path(log);
        let file = open_for_writing(&path, "cannot open the delivery log's lock file")?;
        // A lock is let go of only when every copy of its descriptor is closed, and a process
        // that starts another (a test harness, a password command) holds copies for the moment
        // between fork and exec: a lock released an instant ago may still look held. So a
        // held lock is asked again for a short while before this run gives up.
        let mut attempts = 0;
        let locked = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) if attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::input(
                    Location::file(log),
                    "is being written by another `envoi send`; wait for it to finish, or give this run another log with --log",
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(
                    &path,
                    "cannot lock the delivery log's lock file",
                    e,
                ));
            }
        }
        let found = read_all(&file, &path, "cannot read the delivery log's lock file")?;
        Ok(RunLock { path, file, found })
    }

    /// What the lock file says about the last run that held it, when it did not end cleanly.
    pub(super) fn unfinished_run(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.found);
        let text = text.trim();
        (!self.found.is_empty()).then(|| text.to_owned())
    }

    /// Says in the lock file that a run is writing the log, durably.
    pub(super) fn mark_running(&mut self) -> Result<()> {
        let line = format!(
            "envoi send started {} (process {})\n",
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            std::process::id()
        );
        self.rewrite(line.as_bytes())?;
        sync_parent(&self.path);
        Ok(())
    }

    /// Says in the lock file that the last run ended cleanly, durably.
    pub(super) fn mark_clean(&mut self) -> Result<()> {
        self.rewrite(b"")
    }

    fn rewrite(&mut self, contents: &[u8]) -> Result<()> {
        let result = self
            .file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)))
            .and_then(|_| self.file.write_all(contents))
            .and_then(|()| self.file.sync_all());
        result
            .map_err(|e| Error::io(&self.path, "cannot write the delivery log's lock file", e))?;
        Ok(())
    }
}

/// Reads everything from a file just opened (its position is at the start).
pub(super) fn read_all(file: &File, path: &Path, what: &'static str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut reader = file;
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, what, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::path::{Path, PathBuf};

    use crate::delivery_log::test_support::*;
    use crate::delivery_log::*;

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
        let dir = tmp();
        let path = dir.path().join("delivery-log.csv");
        let first = open(&path);
        let err = DeliveryLog::open(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("is being written by another `envoi send`"),
            "{message}"
        );
        // Reading is still allowed while a run writes.
        first
            .record(&Entry::now(2, "a@x.example", "A", Status::Sent))
            .unwrap();
        assert_eq!(read(&path).len(), 1);
        drop(first);
        drop(open(&path));
    }

    #[test]
    fn the_lock_is_on_its_own_file_so_the_log_stays_free_to_read_and_lock() {
        let dir = tmp();
        let path = dir.path().join("delivery-log.csv");
        let log = open(&path);
        log.record(&Entry::now(2, "a@x.example", "A", Status::Sent))
            .unwrap();
        // Another handle may lock the log itself: envoi holds only `<log>.lock`.
        let other = File::open(&path).unwrap();
        other
            .try_lock_shared()
            .expect("the log itself is not locked");
        other.unlock().unwrap();
        assert!(lock_path(&path).exists());
        assert!(
            DeliveryLog::open(&path).is_err(),
            "but a second run is refused"
        );
        log.close().unwrap();
        assert_eq!(fs::read(lock_path(&path)).unwrap(), b"", "a clean close");
    }

    #[test]
    fn a_run_that_did_not_end_cleanly_without_its_journal_is_refused() {
        let dir = tmp();
        let path = dir.path().join("delivery-log.csv");
        let log = open(&path);
        log.begin(2, "a@x.example", "A", "<a>").unwrap();
        // Envoi dies with a letter in flight; then someone deletes the journal.
        drop(log);
        let marker = fs::read_to_string(lock_path(&path)).unwrap();
        assert!(marker.starts_with("envoi send started "), "{marker:?}");
        fs::remove_file(journal_path(&path)).unwrap();
        let before = fs::read(&path).unwrap();

        let err = DeliveryLog::open(&path).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
        let message = err.to_string();
        assert!(
            message.contains("the last run with this log did not end cleanly"),
            "{message}"
        );
        assert!(message.contains(marker.trim()), "{message}");
        assert!(
            message.contains(&format!(
                "its journal {} is gone",
                journal_path(&path).display()
            )),
            "{message}"
        );
        assert_eq!(fs::read(&path).unwrap(), before, "nothing written");
        assert!(!journal_path(&path).exists(), "nothing created");

        // The way on that the message gives: delete the lock file.
        fs::remove_file(lock_path(&path)).unwrap();
        drop(open(&path));
    }

    #[cfg(unix)]
    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmp();
        let read_only = dir.path().join("read-only");
        fs::create_dir(&read_only).unwrap();
        fs::set_permissions(&read_only, fs::Permissions::from_mode(0o555)).unwrap();
        // A privileged user (root in a CI container) writes through permissions; sysfs refuses
        // new files even to root.
        let unwritable = [read_only.clone(), PathBuf::from("/sys")]
            .into_iter()
            .find(|d| File::create(d.join("envoi-probe")).is_err())
            .expect("a directory this user cannot write");
        let path = unwritable.join("delivery-log.csv");
        let err = DeliveryLog::open(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("cannot open the delivery log for writing"),
            "{message}"
        );
        assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
        fs::set_permissions(&read_only, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn devices_and_folders_are_refused_not_read_forever() {
        // /dev/zero and /dev/full read as endless zeros: reading one as a log would never end.
        for device in ["/dev/zero", "/dev/full"] {
            let path = Path::new(device);
            if !path.exists() {
                continue;
            }
            let error = History::read(path).unwrap_err().to_string();
            assert!(error.contains("is not an ordinary file"), "{error}");
            let error = DeliveryLog::open(path).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{error}");
            assert!(error.to_string().contains("--log"), "{error}");
        }
        let dir = tmp();
        let error = History::read(dir.path()).unwrap_err().to_string();
        assert!(error.contains("is not an ordinary file"), "{error}");
    }
}
