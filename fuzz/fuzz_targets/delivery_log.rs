//! Reading a delivery log: any bytes never panic, a file that is not a log is refused naming
//! line 1, and every warning names its line. A real log written by envoi and then torn at any
//! byte inside a line (a crash mid-write) reads as exactly its complete lines, with one warning
//! naming the torn line; reopening it for writing removes the torn part.
#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use envoi::Error;
use envoi::delivery_log::{DeliveryLog, Entry, History, Status};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any bytes, as a log someone edited or a file that is not a log at all.
    Raw(Vec<u8>),
    /// Entries written by envoi, then the file cut at `cut` (modulo its length).
    Torn { entries: Vec<LogEntry>, cut: u32 },
}

#[derive(Debug, Arbitrary)]
struct LogEntry {
    row: u16,
    email: String,
    organisation: String,
    status: u8,
    detail: String,
}

impl LogEntry {
    fn entry(&self) -> Entry {
        Entry::now(
            usize::from(self.row),
            &self.email,
            &self.organisation,
            Status::ALL[usize::from(self.status) % Status::ALL.len()],
        )
        .with_detail(&self.detail)
    }
}

/// Every warning names the file and says where in it: `delivery-log.csv, line N: ...`, or the
/// CSV reader's own `(line: N, ...)` for a file it cannot read past.
fn warning_is_placed(path: &Path, warning: &str) -> bool {
    warning.starts_with(&path.display().to_string())
        && (warning.contains(", line ") || warning.contains("line: "))
}

fuzz_target!(|input: Input| {
    let dir = envoi_fuzz::scratch_dir("delivery-log");
    let path = dir.join("delivery-log.csv");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join("delivery-log.csv.inflight"));
    match input {
        Input::Raw(bytes) => {
            std::fs::write(&path, &bytes).expect("write log");
            match History::read(&path) {
                Ok(history) => {
                    for warning in history.warnings() {
                        assert!(warning_is_placed(&path, warning), "{warning}");
                    }
                }
                Err(Error::Input(problem)) => {
                    assert_eq!(problem.location.line, Some(1), "{problem}");
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        Input::Torn { entries, cut } => torn(&path, &entries, cut),
    }
});

fn torn(path: &Path, entries: &[LogEntry], cut: u32) {
    {
        let (log, recovered) = DeliveryLog::open(path).expect("open a new log");
        assert!(recovered.is_empty());
        for entry in entries {
            log.record(&entry.entry()).expect("record");
        }
        log.close().expect("close");
    }
    let bytes = std::fs::read(path).expect("read log");
    let cut = cut as usize % (bytes.len() + 1);
    // Only cuts inside a line are tears; a cut at a line boundary is a shorter, whole log.
    if cut == 0 || bytes[cut - 1] == b'\n' {
        return;
    }
    let complete_lines = bytes[..cut].iter().filter(|&&b| b == b'\n').count();
    std::fs::write(path, &bytes[..cut]).expect("tear the log");

    let history = match History::read(path) {
        Ok(history) => history,
        Err(e) => panic!("a torn log must still read: {e}"),
    };
    let torn_line = complete_lines + 1;
    let torn_warnings: Vec<&String> = history
        .warnings()
        .iter()
        .filter(|w| w.contains("incomplete"))
        .collect();
    assert_eq!(history.warnings().len(), 1, "{:?}", history.warnings());
    assert_eq!(torn_warnings.len(), 1, "{:?}", history.warnings());
    assert!(
        torn_warnings[0].contains(&format!(", line {torn_line}:")),
        "{torn_warnings:?} (torn line {torn_line})"
    );

    // The complete lines are the header and the first entries: the last status per recipient
    // is the one of the last complete entry that names it.
    let kept = complete_lines.saturating_sub(1);
    let read: Vec<(String, Status)> = history
        .entries()
        .map(|e| (e.email.clone(), e.status))
        .collect();
    // Entries without an address are told apart by row; the model keeps to addresses.
    if entries[..kept].iter().all(|e| !e.email.trim().is_empty()) {
        let key = |email: &str| email.replace(['\r', '\n'], " ").trim().to_lowercase();
        let mut expected: Vec<(String, Status)> = Vec::new();
        for entry in entries[..kept].iter().map(LogEntry::entry) {
            let email = key(&entry.email);
            match expected.iter().position(|(e, _)| *e == email) {
                Some(at) => expected[at].1 = entry.status,
                None => expected.push((email, entry.status)),
            }
        }
        let read: Vec<(String, Status)> = read
            .into_iter()
            .map(|(email, status)| (key(&email), status))
            .collect();
        assert_eq!(read, expected);
    }

    // Opening for writing removes the torn tail; the log then reads clean.
    let (log, _) = DeliveryLog::open(path).expect("reopen a torn log");
    drop(log);
    let repaired = std::fs::read(path).expect("read repaired log");
    assert!(repaired.ends_with(b"\n"));
    let again = History::read(path).expect("read repaired log");
    assert!(again.warnings().is_empty(), "{:?}", again.warnings());
    assert_eq!(again.len(), history.len());
}
