//! The read side: what an existing log says about each recipient.

use std::collections::HashMap;
use std::path::Path;

use super::files::read_if_exists;
use super::format::{Entry, email_key, parse_log};
use super::journal::{journal_path, parse_journal, reconcile};
use crate::error::Result;

/// How recipients are told apart: by address, or by row for entries with no address (a row
/// skipped because its address cell was empty), so that such rows do not merge into one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Recipient {
    Email(String),
    Row(usize),
}

impl Recipient {
    fn of(entry: &Entry) -> Recipient {
        match email_key(&entry.email) {
            key if key.is_empty() => Recipient::Row(entry.row),
            key => Recipient::Email(key),
        }
    }
}

/// What an existing log says: the last entry per recipient, in the order recipients first
/// appeared, plus the problems found while reading it.
#[derive(Debug, Clone, Default)]
pub struct History {
    entries: Vec<Entry>,
    index: HashMap<Recipient, usize>,
    warnings: Vec<String>,
}

impl History {
    /// Reads a delivery log; a missing file is an empty history. A torn last line and rows that
    /// do not parse are skipped with a warning; a file that is not a delivery log is an error.
    /// Letters left in the journal without an outcome are reported as a warning too, and
    /// outcomes the journal holds but the log lost in a crash count as if the log held them
    /// (the next `send` writes them back), with a warning.
    pub fn read(path: &Path) -> Result<History> {
        let bytes = read_if_exists(path, "cannot read the delivery log")?;
        let parsed = parse_log(path, &bytes)?;
        let journal = journal_path(path);
        let read_back = parse_journal(
            &journal,
            &read_if_exists(&journal, "cannot read the delivery log journal")?,
        );
        let mut warnings = parsed.warnings;
        warnings.extend(read_back.problems.iter().cloned());
        let reconciled = reconcile(&read_back.lines, &parsed.entries);
        let open = &reconciled.unresolved;
        if !open.is_empty() {
            let letters: Vec<String> = open
                .iter()
                .map(|(intent, _)| format!("row {} ({})", intent.row, intent.email))
                .collect();
            warnings.push(format!(
                "{}: {} letter{} being handed to the relay when envoi stopped, or {} being sent right now: {}; unless they are, the next `envoi send` records them as unknown",
                journal.display(),
                open.len(),
                if open.len() == 1 { " was" } else { "s were" },
                if open.len() == 1 { "it is" } else { "they are" },
                letters.join(", ")
            ));
        }
        let missing = &reconciled.missing;
        if !missing.is_empty() {
            let (them, are) = if missing.len() == 1 {
                ("it", "is")
            } else {
                ("them", "are")
            };
            warnings.push(format!(
                "{}: {} {are} in the journal but not in the log (envoi stopped before the log's disk had {them}, or a run is writing {them} now); the next `envoi send` writes {them} to the log",
                journal.display(),
                crate::text::plural(missing.len(), "outcome"),
            ));
        }
        let restored: Vec<Entry> = missing.iter().map(|&entry| entry.clone()).collect();
        let mut history = History {
            warnings,
            ..History::default()
        };
        for (_, entry) in parsed.entries {
            history.push(entry);
        }
        for entry in restored {
            history.push(entry);
        }
        Ok(history)
    }

    /// A later entry for a recipient replaces the earlier one, keeping its place.
    pub(super) fn push(&mut self, entry: Entry) {
        match self.index.get(&Recipient::of(&entry)) {
            Some(&at) => self.entries[at] = entry,
            None => {
                self.index.insert(Recipient::of(&entry), self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// The last entry for this address (letter case ignored): its status is the recipient's.
    pub fn last(&self, email: &str) -> Option<&Entry> {
        let key = email_key(email);
        if key.is_empty() {
            return None;
        }
        self.index
            .get(&Recipient::Email(key))
            .map(|&at| &self.entries[at])
    }

    /// The last entry per recipient, in the order recipients first appeared in the log.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// How many recipients the log knows about.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Problems found while reading, one line each, naming the file and line.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self};

    use crate::delivery_log::test_support::*;
    use crate::delivery_log::*;

    #[test]
    fn the_last_entry_for_a_recipient_is_its_status() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.record(&Entry::now(2, "a@x.example", "A", Status::Failed))
            .unwrap();
        log.record(&Entry::now(3, "b@x.example", "B", Status::Sent))
            .unwrap();
        log.record(&Entry::now(2, "A@X.example", "A", Status::Sent).with_attempts(2))
            .unwrap();
        log.record(&Entry::now(9, "", "no address", Status::Skipped))
            .unwrap();
        log.record(&Entry::now(10, "", "no address either", Status::Skipped))
            .unwrap();
        drop(log);

        let history = read(&path);
        assert_eq!(history.len(), 4);
        assert!(!history.is_empty());
        let last = history.last("a@x.EXAMPLE").unwrap();
        assert_eq!((last.status, last.attempts), (Status::Sent, 2));
        assert_eq!(history.last("b@x.example").unwrap().status, Status::Sent);
        assert!(history.last("c@x.example").is_none());
        assert!(history.last("").is_none());
        // First-seen order; rows without an address stay apart.
        let rows: Vec<usize> = history.entries().map(|e| e.row).collect();
        assert_eq!(rows, [2, 3, 9, 10]);
    }

    #[test]
    fn missing_log_is_an_empty_history_and_open_creates_it() {
        let dir = tmp();
        let path = dir.path().join("delivery-log.csv");
        let history = read(&path);
        assert!(history.is_empty() && history.warnings().is_empty());
        let log = open(&path);
        assert_eq!(log.path(), path);
        assert!(log.repairs().is_empty());
        drop(log);
        assert_eq!(fs::read(&path).unwrap(), header_line());
        assert!(
            !journal_path(&path).exists(),
            "a clean close removes the journal"
        );
    }
}
