//! The intent journal (`<log>.inflight`) and crash recovery: which letters were being handed
//! to the relay with no outcome logged after them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::format::{Entry, csv_line, email_key, split_torn};
use crate::error::{Location, Problem};

/// Appended to the log's file name to name its intent journal.
const JOURNAL_SUFFIX: &str = ".inflight";

/// The intent journal that sits next to a log.
pub fn journal_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(JOURNAL_SUFFIX);
    PathBuf::from(name)
}

/// One line of the intent journal: a message that was about to be handed to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Intent {
    /// The log's length when the handover began: outcomes for it start at or after this offset.
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

/// Reads the complete lines of a journal. A torn last line is dropped silently: its `begin`
/// never returned, so that message's data was never sent. A complete line that does not parse
/// (the file was edited or damaged) is reported with its text, since it may name a letter
/// whose delivery is unknown.
pub(super) fn parse_journal(path: &Path, bytes: &[u8]) -> (Vec<Intent>, Vec<String>) {
    let (complete, _torn) = split_torn(bytes);
    let mut intents = Vec::new();
    let mut problems = Vec::new();
    // `begin` writes every intent as one physical line.
    for (index, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match parse_intent(line) {
            Some(intent) => intents.push(intent),
            None => problems.push(
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
    (intents, problems)
}

fn parse_intent(line: &[u8]) -> Option<Intent> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let record = reader.records().next()?.ok()?;
    if record.len() != 5 {
        return None;
    }
    Some(Intent {
        offset: record[0].parse().ok()?,
        row: record[1].parse().ok()?,
        email: record[2].to_string(),
        organisation: record[3].to_string(),
        message_id: record[4].to_string(),
    })
}

/// The intents that have no outcome in the log after them, latest intent per recipient, in the
/// order recipients first appear in the journal, each with how many times its handover began.
pub(super) fn unresolved<'a>(
    intents: &'a [Intent],
    log: &[(u64, Entry)],
) -> Vec<(&'a Intent, u32)> {
    let mut last_outcome: HashMap<String, u64> = HashMap::new();
    for (offset, entry) in log {
        let latest = last_outcome
            .entry(email_key(&entry.email))
            .or_insert(*offset);
        *latest = (*latest).max(*offset);
    }
    let mut order = Vec::new();
    let mut latest: HashMap<String, (&Intent, u32)> = HashMap::new();
    for intent in intents {
        let key = email_key(&intent.email);
        let slot = latest.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (intent, 0)
        });
        *slot = (intent, slot.1 + 1);
    }
    order
        .into_iter()
        .filter_map(|key| {
            let (intent, begun) = latest[&key];
            let answered = last_outcome
                .get(&key)
                .is_some_and(|&at| at >= intent.offset);
            (!answered).then_some((intent, begun))
        })
        .collect()
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
        assert_ne!(fs::read(journal_path(&path)).unwrap(), b"", "journal kept");

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
    fn an_announced_intent_counts_from_the_moment_it_is_written() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        let announced = log.announce(3, "c@x.example", "C", "<c.3@x>").unwrap();
        // Written at once, before any confirm: a crash from here on finds it.
        let journal = fs::read_to_string(journal_path(&path)).unwrap();
        assert!(
            journal.ends_with(",3,c@x.example,C,<c.3@x>\n"),
            "{journal:?}"
        );
        log.confirm(announced).unwrap();
        drop(log);

        let (log, appended) = DeliveryLog::open(&path).unwrap();
        assert_eq!(appended.len(), 1);
        assert_eq!(
            (appended[0].row, appended[0].status, appended[0].attempts),
            (3, Status::Unknown, 1)
        );
        // With its outcome recorded, an announced letter leaves nothing behind.
        let announced = log.announce(4, "d@x.example", "D", "<d>").unwrap();
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
        assert_ne!(fs::read(journal_path(&crashed)).unwrap(), b"");

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

    #[test]
    fn a_crash_at_any_byte_of_a_journal_write_never_loses_a_begun_letter() {
        let dir = ram_tmp();
        let original = dir.path().join("original.csv");
        let log = open(&original);
        log.record(&Entry::now(2, "a@x.example", "A", Status::Sent))
            .unwrap();
        let begun = ["b@x.example", "c@x.example", "d@x.example"];
        for (i, email) in begun.iter().enumerate() {
            log.begin(i + 3, email, "Org, \"X\"", &format!("<{i}@x>"))
                .unwrap();
        }
        let log_bytes = fs::read(&original).unwrap();
        let journal = fs::read(journal_path(&original)).unwrap();
        drop(log);
        let ends: Vec<usize> = journal
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(ends.len(), begun.len());

        let path = dir.path().join("crashed.csv");
        for cut in 0..=journal.len() {
            fs::write(&path, &log_bytes).unwrap();
            fs::write(journal_path(&path), &journal[..cut]).unwrap();
            let complete = ends.iter().filter(|&&end| end <= cut).count();
            let (log, appended) = DeliveryLog::open(&path)
                .unwrap_or_else(|e| panic!("open after a journal cut at byte {cut}: {e}"));
            assert!(
                log.repairs().is_empty(),
                "cut at byte {cut}: {:?}",
                log.repairs()
            );
            let emails: Vec<&str> = appended.iter().map(|e| e.email.as_str()).collect();
            assert_eq!(emails, begun[..complete], "cut at byte {cut}");
            assert!(
                appended
                    .iter()
                    .all(|e| e.status == Status::Unknown && e.organisation == "Org, \"X\"")
            );
            drop(log);
            assert!(
                !journal_path(&path).exists(),
                "a clean close removes the journal"
            );
            assert_eq!(read(&path).len(), 1 + complete);
        }
    }
}
