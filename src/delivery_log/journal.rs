//! The journal (`<log>.inflight`), the write-ahead log of a run, and crash recovery.
//!
//! It holds two kinds of line, in the order they were written: an intent (a message about to
//! be handed to the relay) and an outcome (`outcome,` then the complete row as the log has it).
//! Outcomes go to the journal first, then to the log without a sync of their own, so that the
//! journal's one sync per letter puts both on disk. After a run that did not end cleanly the
//! journal says which letters were in flight (an intent with no outcome after it) and which
//! outcomes the log may have lost (an outcome row the log does not hold).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::format::{Entry, csv_line, email_key, split_torn};
use crate::error::{Location, Problem};

/// Appended to the log's file name to name its journal.
const JOURNAL_SUFFIX: &str = ".inflight";

/// The first field of an outcome line. An intent's first field is a number (its offset).
const OUTCOME: &str = "outcome";

/// The journal that sits next to a log.
pub fn journal_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(JOURNAL_SUFFIX);
    PathBuf::from(name)
}

/// One intent line of the journal: a message that was about to be handed to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Intent {
    /// The log's length (as written, not necessarily as synced) when the handover began: an
    /// outcome found in the log at or after this offset was written after the intent.
    pub(super) offset: u64,
    pub(super) row: usize,
    pub(super) email: String,
    pub(super) organisation: String,
    pub(super) message_id: String,
}

impl Intent {
    pub(super) fn to_line(&self) -> Vec<u8> {
        csv_line(&[
            &self.offset.to_string(),
            &self.row.to_string(),
            &self.email,
            &self.organisation,
            &self.message_id,
        ])
    }
}

/// One complete line of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line {
    Intent(Intent),
    Outcome(Entry),
}

/// The journal line that keeps an outcome: `outcome,` followed by the log's row, unchanged.
pub(super) fn outcome_line(entry: &Entry) -> Vec<u8> {
    let mut line = format!("{OUTCOME},").into_bytes();
    line.extend(entry.to_line());
    line
}

/// A journal read back.
pub(super) struct Journal {
    /// Its complete lines, in order.
    pub(super) lines: Vec<Line>,
    /// The complete lines that could not be read, one message each.
    pub(super) problems: Vec<String>,
    /// Length of the part that ends with a line feed; what follows is a torn line.
    pub(super) complete_len: usize,
}

/// Reads the complete lines of a journal. A torn last line is dropped silently: an intent's
/// `confirm` never returned, so that message's data was never sent; an outcome's row was not
/// written to the log either (the journal is written first). A complete line that does not
/// parse (the file was edited or damaged) is reported with its text, since it may name a
/// letter whose delivery is unknown.
pub(super) fn parse_journal(path: &Path, bytes: &[u8]) -> Journal {
    let (complete, _torn) = split_torn(bytes);
    let mut journal = Journal {
        lines: Vec::new(),
        problems: Vec::new(),
        complete_len: complete.len(),
    };
    // Every line is written as one physical line. Zeros are the unwritten room the writer keeps
    // ahead of the last line (`DurableAppend::zeroed_ahead`): after the last line they are the
    // torn tail; before a line (a power cut that kept a later line and lost an earlier one
    // still unsynced) they are not part of it.
    for (index, line) in complete.split(|&b| b == b'\n').enumerate() {
        let line = &line[line.iter().position(|&b| b != 0).unwrap_or(line.len())..];
        if line.trim_ascii().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(line) => journal.lines.push(line),
            None => journal.problems.push(
                Problem::new(
                    Location::file(path).line(index + 1),
                    format!(
                        "cannot be read: \"{}\"; if it names a letter, check with the relay whether it was delivered",
                        String::from_utf8_lossy(line).trim_end()
                    ),
                )
                .to_string(),
            ),
        }
    }
    journal
}

fn parse_line(line: &[u8]) -> Option<Line> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let record = reader.byte_records().next()?.ok()?;
    if record.get(0) == Some(OUTCOME.as_bytes()) {
        let row: csv::ByteRecord = record.iter().skip(1).collect();
        return Entry::from_fields(&row).map(Line::Outcome);
    }
    let record = csv::StringRecord::from_byte_record(record).ok()?;
    if record.len() != 5 {
        return None;
    }
    Some(Line::Intent(Intent {
        offset: record[0].parse().ok()?,
        row: record[1].parse().ok()?,
        email: record[2].to_string(),
        organisation: record[3].to_string(),
        message_id: record[4].to_string(),
    }))
}

/// What a journal and its log, read together, say is left to do.
pub(super) struct Reconciled<'a> {
    /// The intents with no outcome after them, latest intent per recipient, in the order
    /// recipients first appear in the journal, each with how many times its handover began.
    pub(super) unresolved: Vec<(&'a Intent, u32)>,
    /// The journal's outcomes that the log does not hold, in journal order: rows a crash
    /// kept from reaching the log's disk.
    pub(super) missing: Vec<&'a Entry>,
}

/// Where a log that a power cut left with zero bytes can be cut back, so that recovery writes
/// the rest again from the journal: the start of the first line holding a zero byte, provided
/// every complete line from there on without one is an outcome the journal holds (so the cut
/// loses nothing). envoi never writes a zero byte to the log; the rows a run wrote but had not
/// synced can come back as zeros after a power cut (the file's new length reached the disk,
/// its data did not), and every such row is in the journal, which is synced first.
pub(super) fn zeroed_log_cut(log: &[u8], journal: &[Line]) -> Option<usize> {
    let first_zero = log.iter().position(|&b| b == 0)?;
    let cut = log[..first_zero]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let journaled: HashSet<Vec<u8>> = journal
        .iter()
        .filter_map(|line| match line {
            Line::Outcome(entry) => Some(entry.to_line()),
            Line::Intent(_) => None,
        })
        .collect();
    log[cut..]
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.ends_with(b"\n") && !line.contains(&0))
        .filter(|line| !line.trim_ascii().is_empty())
        .all(|line| journaled.contains(line))
        .then_some(cut)
}

/// Reads a journal against the log's complete entries (each with its offset).
///
/// An intent is answered by an outcome for the same address after it in the journal, or by
/// one in the log at or after the intent's offset (a row whose journal line a power cut lost,
/// and journals written before outcomes were journaled). Only the log as found counts for the
/// second: a row restored at the log's end may sit past an intent it is older than.
///
/// An outcome is in the log when the log holds a row that reads back the same; each row of
/// the log accounts for one outcome, so two identical outcomes need two rows.
pub(super) fn reconcile<'a>(lines: &'a [Line], log: &[(u64, Entry)]) -> Reconciled<'a> {
    let mut last_in_log: HashMap<String, u64> = HashMap::new();
    for (offset, entry) in log {
        let latest = last_in_log
            .entry(email_key(&entry.email))
            .or_insert(*offset);
        *latest = (*latest).max(*offset);
    }
    let mut order = Vec::new();
    // Per recipient: the latest intent, its place in the journal and how many there were.
    let mut latest: HashMap<String, (&Intent, usize, u32)> = HashMap::new();
    let mut last_outcome: HashMap<String, usize> = HashMap::new();
    let mut journaled: HashMap<Vec<u8>, usize> = HashMap::new();
    for (at, line) in lines.iter().enumerate() {
        match line {
            Line::Intent(intent) => {
                let key = email_key(&intent.email);
                let slot = latest.entry(key.clone()).or_insert_with(|| {
                    order.push(key);
                    (intent, at, 0)
                });
                *slot = (intent, at, slot.2 + 1);
            }
            Line::Outcome(entry) => {
                last_outcome.insert(email_key(&entry.email), at);
                *journaled.entry(entry.to_line()).or_default() += 1;
            }
        }
    }
    let unresolved = order
        .into_iter()
        .filter_map(|key| {
            let (intent, at, begun) = latest[&key];
            let answered = last_outcome.get(&key).is_some_and(|&outcome| outcome > at)
                || last_in_log
                    .get(&key)
                    .is_some_and(|&offset| offset >= intent.offset);
            (!answered).then_some((intent, begun))
        })
        .collect();

    // How many of each journaled row the log already holds.
    let mut in_log: HashMap<Vec<u8>, usize> = HashMap::new();
    if !journaled.is_empty() {
        for (_, entry) in log {
            let line = entry.to_line();
            if journaled.contains_key(&line) {
                *in_log.entry(line).or_default() += 1;
            }
        }
    }
    let missing = lines
        .iter()
        .filter_map(|line| match line {
            Line::Outcome(entry) => match in_log.get_mut(&entry.to_line()) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    None
                }
                _ => Some(entry),
            },
            Line::Intent(_) => None,
        })
        .collect();
    Reconciled {
        unresolved,
        missing,
    }
}

/// Why an intent without an outcome is `unknown`, and what the user can do.
pub(super) fn unknown_detail(row: usize) -> String {
    format!(
        "envoi stopped while handing this letter to the relay; it may or may not have been delivered. Check with the relay, then use --resend --row {row} to send it again"
    )
}

#[cfg(test)]
mod tests {
    use std::fs::{self};
    use std::path::PathBuf;

    use super::{Line, outcome_line, parse_journal};
    use crate::delivery_log::format::{parse_log, split_torn};
    use crate::delivery_log::test_support::*;
    use crate::delivery_log::*;

    #[test]
    fn intent_without_outcome_becomes_unknown_on_reopen() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.record(&Entry::now(2, "a@x.example", "A", Status::Sent))
            .unwrap();
        log.begin(7, "b@x.example", "B, Ltd", "<b.7@ombudsman.example>")
            .unwrap();
        // Envoi dies here: the relay may have the letter, the log has no outcome.
        drop(log);
        assert_ne!(journal_content(&path), b"", "journal kept");

        let (log, appended) = DeliveryLog::open(&path).unwrap();
        assert_eq!(appended.len(), 1);
        let unknown = &appended[0];
        assert_eq!(
            (
                unknown.row,
                unknown.email.as_str(),
                unknown.organisation.as_str()
            ),
            (7, "b@x.example", "B, Ltd")
        );
        assert_eq!(unknown.status, Status::Unknown);
        assert_eq!(unknown.message_id, "<b.7@ombudsman.example>");
        assert_eq!(unknown.attempts, 1);
        assert!(
            unknown
                .detail
                .starts_with("envoi stopped while handing this letter to the relay")
        );
        assert!(
            unknown
                .detail
                .ends_with("use --resend --row 7 to send it again")
        );
        assert_eq!(
            fs::read(journal_path(&path)).unwrap(),
            b"",
            "journal emptied once reconciled"
        );
        drop(log);

        let history = read(&path);
        assert_eq!(history.last("b@x.example"), Some(unknown));
        assert!(history.warnings().is_empty());
        // Reconciled once only.
        drop(open(&path));
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    #[test]
    fn the_journal_keeps_zeroed_room_ahead_and_a_crash_copy_with_it_or_a_hole_recovers() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.begin(2, "a@x.example", "A", "<a>").unwrap();
        log.record(&Entry::now(2, "a@x.example", "A", Status::Sent))
            .unwrap();
        log.begin(3, "b@x.example", "B", "<b>").unwrap();
        let on_disk = fs::read(journal_path(&path)).unwrap();
        let content = journal_content(&path);
        assert!(
            on_disk.len() > 1 << 20,
            "a chunk of zeros ahead of the lines: {} bytes for {}",
            on_disk.len(),
            content.len()
        );
        assert!(on_disk[content.len()..].iter().all(|&b| b == 0));

        // Killed now: the journal on disk, zeros and all.
        let crashed = crash_copy(&log, dir.path(), "crashed.csv");
        // A power cut that lost the first, unsynced line but kept the later ones: zeros
        // where it was.
        let holed = dir.path().join("holed.csv");
        fs::copy(&path, &holed).unwrap();
        let mut journal = on_disk.clone();
        let first_line = journal.iter().position(|&b| b == b'\n').unwrap();
        journal[..first_line].fill(0);
        fs::write(journal_path(&holed), &journal).unwrap();
        drop(log);

        for (copy, unknown) in [(&crashed, vec![3]), (&holed, vec![3])] {
            let (reopened, appended) = DeliveryLog::open(copy).unwrap();
            let rows: Vec<usize> = appended.iter().map(|e| e.row).collect();
            assert_eq!(rows, unknown, "{}", copy.display());
            assert!(
                reopened
                    .repairs()
                    .iter()
                    .all(|r| !r.contains("cannot be read"))
            );
            drop(reopened);
            let history = read(copy);
            assert_eq!(history.last("a@x.example").unwrap().status, Status::Sent);
            assert_eq!(history.last("b@x.example").unwrap().status, Status::Unknown);
        }
    }

    /// Both ways an intent's sync can start (see [`SyncStart`]); with `ByConfirm` the background
    /// thread is not asked to sync it, and [`DeliveryLog::confirm`] does, on the calling thread.
    #[test]
    fn an_announced_intent_counts_from_the_moment_it_is_written() {
        for sync in [SyncStart::Now, SyncStart::ByConfirm] {
            let dir = tmp();
            let path = dir.path().join("log.csv");
            let log = open(&path);
            let announced = log
                .announce(3, "c@x.example", "C", "<c.3@x>", sync)
                .unwrap();
            // Written at once, before any confirm: a crash from here on finds it.
            let journal = String::from_utf8(journal_content(&path)).unwrap();
            assert!(
                journal.ends_with(",3,c@x.example,C,<c.3@x>\n"),
                "{journal:?}"
            );
            let seq = announced.seq;
            log.confirm(announced).unwrap();
            assert!(log.journal.synced_at_least(seq), "{sync:?}");
            drop(log);

            let (log, appended) = DeliveryLog::open(&path).unwrap();
            assert_eq!(appended.len(), 1);
            assert_eq!(
                (appended[0].row, appended[0].status, appended[0].attempts),
                (3, Status::Unknown, 1)
            );
            // With its outcome recorded, an announced letter leaves nothing behind.
            let announced = log.announce(4, "d@x.example", "D", "<d>", sync).unwrap();
            log.confirm(announced).unwrap();
            log.record(&Entry::now(4, "d@x.example", "D", Status::Failed))
                .unwrap();
            log.close().unwrap();
            assert!(
                !journal_path(&path).exists(),
                "a clean close removes the journal"
            );
            let (log, appended) = DeliveryLog::open(&path).unwrap();
            assert!(appended.is_empty(), "{appended:?}");
            drop(log);
        }
    }

    #[test]
    fn retries_of_one_letter_give_one_unknown_counting_the_attempts() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.begin(4, "c@x.example", "C", "<c>").unwrap();
        log.begin(5, "d@x.example", "D", "<d>").unwrap();
        log.begin(4, "C@x.example", "C", "<c>").unwrap();
        drop(log);

        let history = read(&path);
        let warning = history.warnings().last().unwrap();
        assert!(
            warning.contains("log.csv.inflight: 2 letters were being handed to the relay"),
            "{warning}"
        );
        assert!(
            warning.contains("row 4 (C@x.example), row 5 (d@x.example)"),
            "{warning}"
        );

        let (_log, appended) = DeliveryLog::open(&path).unwrap();
        let got: Vec<(&str, u32)> = appended
            .iter()
            .map(|e| (e.email.as_str(), e.attempts))
            .collect();
        assert_eq!(got, [("C@x.example", 2), ("d@x.example", 1)]);
    }

    #[test]
    fn a_damaged_journal_line_is_reported_and_the_others_reconciled() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        drop(open(&path));
        let header_len = header_line().len();
        fs::write(
            journal_path(&path),
            format!("{header_len},2,a@x.example,A,<a>\ngarbage, b@x.example\n"),
        )
        .unwrap();

        let history = read(&path);
        assert!(
            history.warnings()[0]
                .contains("log.csv.inflight, line 2: cannot be read: \"garbage, b@x.example\"")
        );

        let (log, appended) = DeliveryLog::open(&path).unwrap();
        assert_eq!(appended.len(), 1);
        assert_eq!(
            (appended[0].row, appended[0].email.as_str()),
            (2, "a@x.example")
        );
        assert_eq!(log.repairs().len(), 1);
        assert!(log.repairs()[0].contains("line 2: cannot be read: \"garbage, b@x.example\"; if it names a letter, check with the relay"));
    }

    #[test]
    fn intent_with_an_outcome_after_it_is_not_unknown() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.begin(2, "a@x.example", "A", "<a>").unwrap();
        log.record(&Entry::now(2, "A@x.example", "A", Status::Sent))
            .unwrap();
        // Crash before the journal is emptied: the intent is still there, with its outcome.
        let crashed = crash_copy(&log, dir.path(), "crashed.csv");
        assert_ne!(journal_content(&crashed), b"");

        let (reopened, appended) = DeliveryLog::open(&crashed).unwrap();
        assert!(appended.is_empty(), "{appended:?}");
        drop(reopened);
        assert!(
            !journal_path(&crashed).exists(),
            "a clean close removes the journal"
        );
        assert_eq!(
            read(&crashed).last("a@x.example").unwrap().status,
            Status::Sent
        );

        // A clean close with every outcome recorded empties the journal too.
        log.close().unwrap();
        assert!(
            !journal_path(&path).exists(),
            "a clean close removes the journal"
        );
    }

    #[test]
    fn an_outcome_written_before_the_intent_does_not_count() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.record(&Entry::now(2, "a@x.example", "A", Status::Failed).with_code("421 4.7.0"))
            .unwrap();
        log.begin(2, "a@x.example", "A", "<a>").unwrap();
        let crashed = crash_copy(&log, dir.path(), "crashed.csv");
        drop(log);

        let (_log, appended) = DeliveryLog::open(&crashed).unwrap();
        assert_eq!(appended.len(), 1);
        assert_eq!(
            read(&crashed).last("a@x.example").unwrap().status,
            Status::Unknown
        );
    }

    /// Names the log that [`crash_child_writer`] writes, in the child process.
    const CRASH_CHILD_LOG: &str = "ENVOI_TEST_CRASH_CHILD_LOG";

    /// Run only as the child process of `kill_9_mid_run_leaves_every_letter_sent_or_unknown`:
    /// sends letters to no one, forever, logging like `send` does, until it is killed.
    #[test]
    #[ignore = "child process of kill_9_mid_run_leaves_every_letter_sent_or_unknown"]
    fn crash_child_writer() {
        let path = PathBuf::from(std::env::var_os(CRASH_CHILD_LOG).expect(CRASH_CHILD_LOG));
        let (log, _) = DeliveryLog::open(&path).unwrap();
        for row in 2.. {
            let email = format!("r{row}@x.example");
            log.begin(row, &email, "Org, \"X\"", "<id>").unwrap();
            let sent =
                Entry::now(row, &email, "Org, \"X\"", Status::Sent).with_detail("ok, queued");
            log.record(&sent).unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn kill_9_mid_run_leaves_every_letter_sent_or_unknown() {
        use std::process::{Command, Stdio};
        let dir = tmp();
        for round in 0..4u64 {
            let path = dir.path().join(format!("round-{round}.csv"));
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "delivery_log::journal::tests::crash_child_writer",
                    "--ignored",
                ])
                .env(CRASH_CHILD_LOG, &path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Let it get going, then kill it at a different moment each round.
            while fs::read(&path).map_or(0, |b| b.len()) < 2_000 {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the child writer stopped by itself"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            std::thread::sleep(std::time::Duration::from_millis(3 * round));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();

            let (log, appended) = DeliveryLog::open(&path).unwrap();
            drop(log);
            let history = read(&path);
            assert!(history.warnings().is_empty(), "{:?}", history.warnings());
            let entries: Vec<&Entry> = history.entries().collect();
            let last = entries.len() - 1;
            for (i, entry) in entries.iter().enumerate() {
                assert_eq!(
                    entry.row,
                    i + 2,
                    "round {round}: rows in order, none missing"
                );
                match (i == last, entry.status) {
                    (_, Status::Sent) => assert_eq!(entry.detail, "ok, queued"),
                    // Only the letter in hand when the kill came may be unknown.
                    (true, Status::Unknown) => assert_eq!(appended, [(*entry).clone()]),
                    (_, status) => panic!("round {round}: row {} is {status}", entry.row),
                }
            }
            let lines = fs::read_to_string(&path).unwrap().lines().count();
            assert_eq!(
                lines,
                1 + entries.len(),
                "round {round}: one line per letter"
            );
        }
    }

    /// A run as `send` writes it, stopped with two letters in flight: the log as it was when the
    /// run opened it, the log as written, and the journal.
    fn crashed_run(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let original = dir.join("original.csv");
        let log = open(&original);
        let at_open = fs::read(&original).unwrap();
        log.record(&Entry::now(2, "a@x.example", "A", Status::Failed))
            .unwrap();
        log.begin(3, "b@x.example", "Org, \"X\"", "<b@x>").unwrap();
        log.record(&Entry::now(3, "b@x.example", "Org, \"X\"", Status::Sent).with_detail("ok"))
            .unwrap();
        log.begin(4, "c@x.example", "Org, \"X\"", "<c@x>").unwrap();
        log.begin(5, "d@x.example", "Org, \"X\"", "<d@x>").unwrap();
        log.record(&Entry::now(5, "d@x.example", "Org, \"X\"", Status::Sent).with_attempts(1))
            .unwrap();
        log.begin(6, "e@x.example", "Org, \"X\"", "<e@x>").unwrap();
        let written = fs::read(&original).unwrap();
        let journal = journal_content(&original);
        drop(log);
        (at_open, written, journal)
    }

    /// What a log and journal must come to after recovery: the status of each recipient the
    /// complete part of the journal or the log names, and how many rows that makes.
    fn expected(log: &[u8], journal: &[u8]) -> Vec<(String, Status)> {
        let mut want: Vec<(String, Status)> = Vec::new();
        let mut set = |email: &str, status: Status, overwrite: bool| match want
            .iter_mut()
            .find(|(e, _)| e == email)
        {
            Some(slot) if overwrite => slot.1 = status,
            Some(_) => {}
            None => want.push((email.to_string(), status)),
        };
        for (_, entry) in parse_log(std::path::Path::new("log"), log).unwrap().entries {
            set(&entry.email, entry.status, true);
        }
        for line in parse_journal(std::path::Path::new("journal"), journal).lines {
            match line {
                Line::Outcome(entry) => set(&entry.email, entry.status, true),
                // An intent is `unknown` unless an outcome in the log (after it) or the
                // journal answers it.
                Line::Intent(intent) => set(&intent.email, Status::Unknown, false),
            }
        }
        want
    }

    #[test]
    fn a_crash_at_any_byte_of_the_journal_restores_every_outcome_once_and_loses_no_letter() {
        let dir = ram_tmp();
        let (at_open, written, journal) = crashed_run(dir.path());
        // The log as a power cut may leave it: nothing of the run, all of it, all but its
        // last row, and with a torn last row.
        let all_but_last = &written[..written[..written.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1];
        let torn = &written[..written.len() - 5];
        let path = dir.path().join("crashed.csv");
        for (name, log_bytes) in [
            ("the log as opened", &at_open[..]),
            ("the whole log", &written[..]),
            ("the log without its last row", all_but_last),
            ("the log with a torn last row", torn),
        ] {
            for cut in 0..=journal.len() {
                write_crashed(&path, log_bytes, &journal[..cut]);
                let (log, _) = DeliveryLog::open(&path)
                    .unwrap_or_else(|e| panic!("{name}, journal cut at byte {cut}: {e}"));
                drop(log);
                let after = fs::read(&path).unwrap();
                let history = read(&path);
                assert!(history.warnings().is_empty(), "{name}, cut {cut}");
                let mut want =
                    expected(&log_bytes[..split_torn(log_bytes).0.len()], &journal[..cut]);
                want.sort_by(|a, b| a.0.cmp(&b.0));
                // In any order: restored rows go before the `unknown` ones.
                let mut got = statuses(&history);
                got.sort_by(|a, b| a.0.cmp(&b.0));
                assert_eq!(got, want, "{name}, journal cut at byte {cut}");
                assert_eq!(
                    after.iter().filter(|&&b| b == b'\n').count(),
                    1 + want.len(),
                    "{name}, journal cut at byte {cut}: one row per recipient, none twice"
                );
                // Recovery again (as after a crash right after it): nothing changes.
                fs::write(journal_path(&path), &journal[..cut]).unwrap();
                let (log, appended) = DeliveryLog::open(&path).unwrap();
                drop(log);
                assert_eq!(fs::read(&path).unwrap(), after, "{name}, cut {cut}: twice");
                assert!(appended.is_empty(), "{name}, cut {cut}: {appended:?}");
            }
        }
    }

    #[test]
    fn a_log_missing_its_last_rows_gets_them_back_from_the_journal_once() {
        let dir = tmp();
        let (at_open, written, journal) = crashed_run(dir.path());
        let path = dir.path().join("crashed.csv");
        // A power cut: the journal (synced with each intent) survived, the log's rows did not.
        write_crashed(&path, &at_open, &journal);
        let (log, appended) = DeliveryLog::open(&path).unwrap();
        assert_eq!(
            appended
                .iter()
                .map(|e| (e.email.as_str(), e.status))
                .collect::<Vec<_>>(),
            [
                ("c@x.example", Status::Unknown),
                ("e@x.example", Status::Unknown)
            ]
        );
        assert_eq!(log.repairs().len(), 1, "{:?}", log.repairs());
        assert!(
            log.repairs()[0].contains("wrote 3 outcomes back to the log from its journal"),
            "{:?}",
            log.repairs()
        );
        drop(log);
        let restored = fs::read(&path).unwrap();
        // The rows the run wrote, byte for byte, then the letters in flight.
        assert!(restored.starts_with(&written), "restored in journal order");
        assert_eq!(
            statuses(&read(&path)),
            [
                ("a@x.example".to_string(), Status::Failed),
                ("b@x.example".to_string(), Status::Sent),
                ("d@x.example".to_string(), Status::Sent),
                ("c@x.example".to_string(), Status::Unknown),
                ("e@x.example".to_string(), Status::Unknown),
            ]
        );
        let (log, appended) = DeliveryLog::open(&path).unwrap();
        drop(log);
        assert!(appended.is_empty());
        assert_eq!(fs::read(&path).unwrap(), restored, "restored once");
    }

    /// The log's rows from `first` on (0-based, after the header) turned to zeros, as a power
    /// cut can leave rows that were written but not synced; the rows after them stay.
    fn zeroed(written: &[u8], first: usize, zeroed_rows: usize) -> Vec<u8> {
        let mut bytes = written.to_vec();
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                written
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        let (from, to) = (starts[1 + first], starts[1 + first + zeroed_rows]);
        bytes[from..to].fill(0);
        bytes
    }

    /// After a power cut the log may hold zeros where its last rows were: `send` cuts them
    /// off and writes the rows back from the journal, instead of stopping at an unreadable
    /// line. Whether the zeros are its last rows or rows before others that did reach the disk.
    #[test]
    fn a_log_a_power_cut_left_with_zeros_gets_its_rows_back_from_the_journal() {
        let dir = tmp();
        let (_, written, journal) = crashed_run(dir.path());
        let path = dir.path().join("crashed.csv");
        // The run wrote three rows: a (failed), b (sent), d (sent).
        for (first, rows) in [(2, 1), (1, 2), (0, 3), (0, 1), (1, 1)] {
            let damaged = zeroed(&written, first, rows);
            write_crashed(&path, &damaged, &journal);
            let (log, appended) = DeliveryLog::open(&path)
                .unwrap_or_else(|e| panic!("rows {first}+{rows} zeroed: {e}"));
            assert!(
                log.repairs()[0].contains(&format!(
                    "line {}: removed the rows from this line on",
                    first + 2
                )),
                "{:?}",
                log.repairs()
            );
            assert_eq!(appended.len(), 2, "c and e were in flight");
            drop(log);
            let after = fs::read(&path).unwrap();
            assert!(!after.contains(&0), "rows {first}+{rows}: zeros left");
            let mut got = statuses(&read(&path));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want = expected(&written, &journal);
            want.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got, want, "rows {first}+{rows} zeroed");
            assert_eq!(
                after.iter().filter(|&&b| b == b'\n').count(),
                1 + want.len()
            );
            let (log, appended) = DeliveryLog::open(&path).unwrap();
            drop(log);
            assert!(appended.is_empty());
            assert_eq!(
                fs::read(&path).unwrap(),
                after,
                "rows {first}+{rows}: repaired twice"
            );
        }
    }

    /// Zeros followed by a row the journal does not hold: cutting would lose that row, so the
    /// log is left as it is and `send` stops at the unreadable line, as before.
    #[test]
    fn zeros_before_a_row_the_journal_lacks_are_not_cut_away() {
        let dir = tmp();
        let (_, written, journal) = crashed_run(dir.path());
        let path = dir.path().join("crashed.csv");
        // Row a's bytes zeroed up to its line feed: a line that cannot be read.
        let mut damaged = zeroed(&written, 0, 1);
        let end = damaged.iter().rposition(|&b| b == 0).unwrap();
        damaged[end] = b'\n';
        damaged.extend(Entry::now(9, "z@x.example", "Z", Status::Sent).to_line());
        write_crashed(&path, &damaged, &journal);
        assert!(DeliveryLog::open(&path).is_err());
        assert_eq!(fs::read(&path).unwrap(), damaged, "nothing written");
    }

    #[test]
    fn report_counts_the_outcomes_only_the_journal_holds() {
        let dir = tmp();
        let (at_open, _, journal) = crashed_run(dir.path());
        let path = dir.path().join("crashed.csv");
        write_crashed(&path, &at_open, &journal);
        let history = read(&path);
        assert_eq!(history.last("b@x.example").unwrap().status, Status::Sent);
        assert_eq!(history.len(), 3);
        let warnings = history.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("row 4 (c@x.example), row 6 (e@x.example)"));
        assert!(
            warnings[1].contains("3 outcomes are in the journal but not in the log"),
            "{warnings:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), at_open, "reading writes nothing");
    }

    /// Recovery stopped at any byte of what it writes, then run again: the same log, no row
    /// twice, no second `unknown` for a letter.
    #[test]
    fn recovery_stopped_at_any_byte_and_run_again_ends_the_same() {
        let dir = ram_tmp();
        let (at_open, _, journal) = crashed_run(dir.path());
        let first = dir.path().join("first.csv");
        write_crashed(&first, &at_open, &journal);
        let (log, unknown) = DeliveryLog::open(&first).unwrap();
        drop(log);
        let recovered = fs::read(&first).unwrap();
        // The journal as recovery leaves it before it writes the log: the `unknown` outcomes
        // appended and synced.
        let mut journal_then = journal.clone();
        for entry in &unknown {
            journal_then.extend(outcome_line(entry));
        }
        let path = dir.path().join("again.csv");
        for cut in at_open.len()..=recovered.len() {
            write_crashed(&path, &recovered[..cut], &journal_then);
            let (log, appended) =
                DeliveryLog::open(&path).unwrap_or_else(|e| panic!("log cut at byte {cut}: {e}"));
            drop(log);
            assert_eq!(fs::read(&path).unwrap(), recovered, "log cut at byte {cut}");
            assert!(
                appended.is_empty(),
                "cut {cut}: no second unknown: {appended:?}"
            );
        }
    }
}
