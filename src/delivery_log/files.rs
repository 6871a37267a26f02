//! Opening, reading and checking the log's files.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, Location, Result};

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

/// Opens (creating) an ordinary file for appending; `what` names it in errors.
pub(super) fn open_for_append(path: &Path, what: &'static str) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(path, what, e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, what, e))?;
    must_be_regular(path, &metadata)?;
    Ok(file)
}

/// Takes the one-writer lock on the log, or says that another run holds it.
pub(super) fn lock_exclusive(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::input(
            Location::file(path),
            "is being written by another `envoi send`; wait for it to finish, or give this run another log with --log",
        )),
        Err(TryLockError::Error(e)) => Err(Error::io(path, "cannot lock the delivery log", e)),
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
