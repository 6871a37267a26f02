//! The row format: the log's columns, its statuses, one entry per physical CSV line, and
//! reading a log file back into entries (with what a crash may have left at its end).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{SecondsFormat, Utc};

use crate::error::{Error, Location, Problem, Result};

/// The log's columns, in order; its header line is these joined by commas.
pub const COLUMNS: [&str; 9] = [
    "timestamp",
    "row",
    "email",
    "organisation",
    "status",
    "code",
    "detail",
    "message_id",
    "attempts",
];

/// A UTF-8 byte order mark, which a spreadsheet may add when the user saves the log.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What became of one message, as the log spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The relay accepted the message.
    Sent,
    /// The relay refused it for good, or every attempt failed.
    Failed,
    /// The message may or may not have been delivered (connection lost after the data, crash).
    Unknown,
    /// Not sent on purpose (a bad row the user chose to skip).
    Skipped,
    /// Written by earlier versions for `send --dry-run`: nothing was sent. Read, never written.
    DryRun,
    /// `envoi track`: a delivery report said the letter is delayed on the way.
    Delayed,
    /// `envoi track`: a delivery report said the letter reached the addressee's mailbox.
    Delivered,
    /// `envoi track`: a delivery report said the letter could not be delivered.
    Bounced,
    /// `envoi track`: a read receipt came back.
    Read,
}

impl Status {
    /// Every status: those `send` writes, the legacy `dry-run`, then those `track` writes.
    pub const ALL: [Status; 9] = [
        Status::Sent,
        Status::Failed,
        Status::Unknown,
        Status::Skipped,
        Status::DryRun,
        Status::Delayed,
        Status::Delivered,
        Status::Bounced,
        Status::Read,
    ];

    /// Whether the letter went out, so that `send` must not send it again on its own: the
    /// relay took it (`sent`), may have (`unknown`), or a report says what became of it after.
    pub fn went_out(self) -> bool {
        matches!(
            self,
            Status::Sent
                | Status::Unknown
                | Status::Delayed
                | Status::Delivered
                | Status::Bounced
                | Status::Read
        )
    }

    /// The log's spelling: `sent`, `failed`, `unknown`, `skipped`, `dry-run`, `delayed`,
    /// `delivered`, `bounced`, `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Skipped => "skipped",
            Status::DryRun => "dry-run",
            Status::Delayed => "delayed",
            Status::Delivered => "delivered",
            Status::Bounced => "bounced",
            Status::Read => "read",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many outcomes have each status: the one tally behind a send run's totals and
/// `envoi report`'s summary. A send run only ever adds `sent`, `failed`, `unknown` (and, from old
/// logs, `dry-run`); a log read back may hold every status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatusCounts {
    pub sent: usize,
    pub failed: usize,
    pub unknown: usize,
    pub skipped: usize,
    pub dry_run: usize,
    pub delayed: usize,
    pub delivered: usize,
    pub bounced: usize,
    pub read: usize,
}

impl StatusCounts {
    pub fn add(&mut self, status: Status) {
        *self.slot(status) += 1;
    }

    pub fn get(&self, status: Status) -> usize {
        let mut copy = *self;
        *copy.slot(status)
    }

    pub fn total(&self) -> usize {
        Status::ALL.into_iter().map(|status| self.get(status)).sum()
    }

    fn slot(&mut self, status: Status) -> &mut usize {
        match status {
            Status::Sent => &mut self.sent,
            Status::Failed => &mut self.failed,
            Status::Unknown => &mut self.unknown,
            Status::Skipped => &mut self.skipped,
            Status::DryRun => &mut self.dry_run,
            Status::Delayed => &mut self.delayed,
            Status::Delivered => &mut self.delivered,
            Status::Bounced => &mut self.bounced,
            Status::Read => &mut self.read,
        }
    }
}

/// A `status` cell that is none of the spellings the log uses (`Status::as_str`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a delivery status (sent, failed, unknown, skipped, delayed, delivered, bounced, read or dry-run)"
)]
pub struct ParseStatusError(pub String);

impl FromStr for Status {
    type Err = ParseStatusError;

    /// Accepts the spellings `Status::as_str` writes, ignoring surrounding space and letter case (a spreadsheet
    /// may have touched the file).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Status::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| ParseStatusError(text.to_string()))
    }
}

/// One row of the log: one outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// RFC 3339 UTC, seconds precision, e.g. `2026-11-29T10:38:18Z`.
    pub timestamp: String,
    /// The recipients.csv row, as a spreadsheet numbers it (header is row 1).
    pub row: usize,
    pub email: String,
    pub organisation: String,
    pub status: Status,
    /// The relay's reply code and enhanced status (`250 2.0.0`), or empty.
    pub code: String,
    /// The relay's text or envoi's reason, on one line.
    pub detail: String,
    pub message_id: String,
    /// How many times envoi tried to hand this message over.
    pub attempts: u32,
}

impl Entry {
    /// An entry stamped with the current time, with no code, detail or message id and zero
    /// attempts; add those with the `with_*` methods.
    pub fn now(row: usize, email: &str, organisation: &str, status: Status) -> Entry {
        Entry {
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            row,
            email: one_line(email),
            organisation: one_line(organisation),
            status,
            code: String::new(),
            detail: String::new(),
            message_id: String::new(),
            attempts: 0,
        }
    }

    /// Sets the relay's reply code (`250 2.0.0`).
    pub fn with_code(mut self, code: &str) -> Entry {
        self.code = one_line(code);
        self
    }

    /// Sets the detail, with line breaks turned into spaces (a relay reply can span lines).
    pub fn with_detail(mut self, detail: &str) -> Entry {
        self.detail = one_line(detail);
        self
    }

    /// Sets the message's Message-ID.
    pub fn with_message_id(mut self, message_id: &str) -> Entry {
        self.message_id = one_line(message_id);
        self
    }

    /// Sets how many times the message was tried.
    pub fn with_attempts(mut self, attempts: u32) -> Entry {
        self.attempts = attempts;
        self
    }

    pub(super) fn to_line(&self) -> Vec<u8> {
        csv_line(&[
            self.timestamp.as_str(),
            &self.row.to_string(),
            &self.email,
            &self.organisation,
            self.status.as_str(),
            &self.code,
            &self.detail,
            &self.message_id,
            &self.attempts.to_string(),
        ])
    }

    /// Reads one log row written by [`to_line`](Self::to_line), as the journal keeps it;
    /// `None` if it is not one.
    pub(super) fn from_fields(record: &csv::ByteRecord) -> Option<Entry> {
        Entry::from_record(record).ok()
    }

    /// Reads one log row; the error says what is wrong with it.
    fn from_record(record: &csv::ByteRecord) -> Result<Entry, RowError> {
        if record.len() != COLUMNS.len() {
            return Err(RowError::Columns(record.len()));
        }
        let record =
            csv::StringRecord::from_byte_record(record.clone()).map_err(|_| RowError::NotText)?;
        Ok(Entry {
            timestamp: record[0].to_string(),
            row: number(&record, 1)?,
            email: record[2].to_string(),
            organisation: record[3].to_string(),
            status: record[4].parse()?,
            code: record[5].to_string(),
            detail: record[6].to_string(),
            message_id: record[7].to_string(),
            attempts: number(&record, 8)?,
        })
    }
}

/// What is wrong with one line of the log; the caller adds the line and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum RowError {
    #[error("has {0} columns where a delivery log row has {n}", n = COLUMNS.len())]
    Columns(usize),
    #[error("is not valid UTF-8 text")]
    NotText,
    #[error(transparent)]
    Status(#[from] ParseStatusError),
    #[error("{column} \"{text}\" is not a number")]
    NotANumber { column: &'static str, text: String },
}

/// A whole-number cell of a log row.
fn number<T: FromStr>(record: &csv::StringRecord, column: usize) -> Result<T, RowError> {
    let text = record[column].trim();
    text.parse().map_err(|_| RowError::NotANumber {
        column: COLUMNS[column],
        text: text.to_owned(),
    })
}

/// Turns line breaks into spaces: the log keeps one entry per physical line.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// One `\n`-terminated CSV line. Fields are made single-line first so that a line feed in the
/// file always ends a row (which is how a torn write is recognised), then quoted where they
/// hold a comma or a quote, as RFC 4180 and every spreadsheet expect.
pub(super) fn csv_line(fields: &[&str]) -> Vec<u8> {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let field = one_line(field);
        if field.contains([',', '"']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&field);
        }
    }
    line.push('\n');
    line.into_bytes()
}

pub(super) fn header_line() -> Vec<u8> {
    csv_line(&COLUMNS)
}

/// Recipients are matched on their address, whatever its letter case.
pub(super) fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Splits file contents at the last line feed: what comes after it is a line a crash cut short.
pub(super) fn split_torn(bytes: &[u8]) -> (&[u8], &[u8]) {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.split_at(complete)
}

/// The 1-based line number of the text that follows `complete`.
pub(super) fn next_line_number(complete: &[u8]) -> usize {
    complete.iter().filter(|&&b| b == b'\n').count() + 1
}

fn not_an_envoi_log(path: &Path) -> Error {
    Error::input(
        Location::file(path).line(1),
        format!(
            "is not an envoi delivery log (its first line should be \"{}\"); give another file with --log, or move this one away",
            COLUMNS.join(",")
        ),
    )
}

/// What `send` says after a log line it cannot read.
const UNREADABLE_STOPS_SEND: &str = "envoi cannot tell whether this recipient was already sent, so it sends nothing; correct the line (or delete it if it names no letter that went out), then run send again";

/// A log's contents, split into the complete entries and what a crash left behind.
pub(super) struct ParsedLog {
    /// Complete entries, each with the byte offset where its line starts.
    pub(super) entries: Vec<(u64, Entry)>,
    pub(super) warnings: Vec<String>,
    /// The complete lines that could not be read, worded for `send`: each may be a recipient
    /// whose letter went out, so a run must not go on without it.
    pub(super) unreadable: Vec<Problem>,
    /// Whether a header line is present (a file holding nothing, or only a torn header, has none).
    pub(super) has_header: bool,
    /// Length of the part that ends with a line feed.
    pub(super) complete_len: usize,
}

pub(super) fn parse_log(path: &Path, bytes: &[u8]) -> Result<ParsedLog> {
    let (complete, torn) = split_torn(bytes);
    let mut parsed = ParsedLog {
        entries: Vec::new(),
        warnings: Vec::new(),
        unreadable: Vec::new(),
        has_header: false,
        complete_len: complete.len(),
    };

    let start = if complete.starts_with(BOM) {
        BOM.len()
    } else {
        0
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&complete[start..]);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                parsed.warnings.push(format!(
                    "{}: {e}; the rest of the file is ignored",
                    path.display()
                ));
                parsed.unreadable.push(Problem::new(
                    Location::file(path),
                    format!("{e}; {UNREADABLE_STOPS_SEND}"),
                ));
                break;
            }
        }
        let (offset, line) = record
            .position()
            .map_or((0, 0), |p| (p.byte() + start as u64, p.line() as usize));
        if !parsed.has_header {
            if !record
                .iter()
                .map(|f| f.trim_ascii())
                .eq(COLUMNS.map(str::as_bytes))
            {
                return Err(not_an_envoi_log(path));
            }
            parsed.has_header = true;
            continue;
        }
        match Entry::from_record(&record) {
            Ok(entry) => parsed.entries.push((offset, entry)),
            Err(why) => {
                let location = Location::file(path).line(line);
                parsed.warnings.push(
                    Problem::new(
                        location.clone(),
                        format!("{why}; this line is ignored, so correct it or delete it"),
                    )
                    .to_string(),
                );
                parsed.unreadable.push(Problem::new(
                    location,
                    format!("{why}; {UNREADABLE_STOPS_SEND}"),
                ));
            }
        }
    }

    if !torn.is_empty() {
        // Before any complete line, the only thing a crash can tear is envoi's own header.
        let torn_header = {
            let torn = torn.strip_prefix(BOM).unwrap_or(torn);
            header_line().starts_with(torn)
        };
        // Without a header, `complete` held no record at all (only blank lines).
        if !parsed.has_header && !torn_header {
            return Err(not_an_envoi_log(path));
        }
        parsed.warnings.push(
            Problem::new(
                Location::file(path).line(next_line_number(complete)),
                "the last line is incomplete (envoi was stopped while writing it) and is ignored; the next `envoi send` removes it",
            )
            .to_string(),
        );
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use std::fs::{self};

    use crate::delivery_log::test_support::*;
    use crate::delivery_log::*;
    use crate::error::Error;

    #[test]
    fn status_counts_tally_each_status_on_its_own() {
        let mut counts = StatusCounts::default();
        for status in Status::ALL {
            counts.add(status);
        }
        counts.add(Status::Sent);
        assert_eq!(counts.get(Status::Sent), 2);
        assert_eq!((counts.sent, counts.dry_run, counts.read), (2, 1, 1));
        assert!(Status::ALL[1..].iter().all(|&s| counts.get(s) == 1));
        assert_eq!(counts.total(), Status::ALL.len() + 1);
    }
    #[test]
    fn only_letters_that_did_not_go_out_are_sent_again() {
        let again: Vec<Status> = Status::ALL.into_iter().filter(|s| !s.went_out()).collect();
        assert_eq!(again, [Status::Failed, Status::Skipped, Status::DryRun]);
    }

    #[test]
    fn statuses_use_the_spec_spellings() {
        let spelled: Vec<String> = Status::ALL.iter().map(Status::to_string).collect();
        assert_eq!(
            spelled,
            [
                "sent",
                "failed",
                "unknown",
                "skipped",
                "dry-run",
                "delayed",
                "delivered",
                "bounced",
                "read"
            ]
        );
        for status in Status::ALL {
            assert_eq!(status.to_string().parse::<Status>(), Ok(status));
        }
        assert_eq!(" Dry-Run ".parse::<Status>(), Ok(Status::DryRun));
        let err = "sentt".parse::<Status>().unwrap_err();
        assert!(
            err.to_string()
                .contains("\"sentt\" is not a delivery status")
        );
    }

    #[test]
    fn entries_are_stamped_in_utc_seconds_and_kept_single_line() {
        let entry = Entry::now(3, "a@x.example", "Org\nName", Status::Failed)
            .with_code("550 5.1.1")
            .with_detail("mailbox unavailable\r\nsecond line");
        let stamp = chrono::DateTime::parse_from_rfc3339(&entry.timestamp).unwrap();
        assert_eq!(stamp.offset().local_minus_utc(), 0);
        assert!(entry.timestamp.ends_with('Z'), "{}", entry.timestamp);
        assert_eq!(entry.timestamp.len(), "2026-11-29T10:38:18Z".len());
        assert_eq!(entry.detail, "mailbox unavailable  second line");
        assert_eq!(entry.organisation, "Org Name");
    }

    #[test]
    fn entries_round_trip_with_commas_quotes_and_unicode() {
        let dir = tmp();
        let path = dir.path().join("delivery-log.csv");
        let log = open(&path);
        let written = vec![
            Entry::now(
                2,
                "ana@ministère.example",
                "Ministère des \"Affaires\", étrangères",
                Status::Sent,
            )
            .with_code("250 2.0.0")
            .with_detail("Ok: queued as 4F2A, \"id\" = 7 — 完了 ✉")
            .with_message_id("<a.1@ombudsman.example>")
            .with_attempts(1),
            Entry::now(3, "b@x.example", "", Status::Failed)
                .with_code("550 5.1.1")
                .with_detail("line one\nline two, with \"quotes\"")
                .with_attempts(2),
            Entry::now(4, "c@x.example", " spaced ", Status::Skipped).with_detail(","),
            Entry::now(5, "d@x.example", "D", Status::DryRun).with_detail("\""),
        ];
        for entry in &written {
            log.record(entry).unwrap();
        }
        log.close().unwrap();

        let history = read(&path);
        assert_eq!(history.entries().cloned().collect::<Vec<_>>(), written);
        assert!(history.warnings().is_empty(), "{:?}", history.warnings());
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().count(),
            1 + written.len(),
            "one line per entry:\n{text}"
        );
        assert!(text.starts_with(
            "timestamp,row,email,organisation,status,code,detail,message_id,attempts\n"
        ));

        // A standard CSV reader sees the same cells.
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let first = reader.records().next().unwrap().unwrap();
        assert_eq!(&first[3], "Ministère des \"Affaires\", étrangères");
        assert_eq!(&first[6], "Ok: queued as 4F2A, \"id\" = 7 — 完了 ✉");
    }

    #[test]
    fn torn_tail_is_ignored_on_read_and_removed_on_open() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let log = open(&path);
        log.record(&Entry::now(2, "a@x.example", "A", Status::Sent))
            .unwrap();
        drop(log);
        let complete = fs::read(&path).unwrap();
        let mut torn = complete.clone();
        torn.extend_from_slice(b"2026-11-29T10:38:18Z,3,b@x.example,B,se");
        fs::write(&path, &torn).unwrap();

        let history = read(&path);
        assert_eq!(
            statuses(&history),
            [("a@x.example".to_string(), Status::Sent)]
        );
        assert_eq!(history.warnings().len(), 1);
        assert!(history.warnings()[0].contains("log.csv, line 3: the last line is incomplete"));

        let log = open(&path);
        assert_eq!(log.repairs().len(), 1);
        assert!(
            log.repairs()[0].contains("b@x.example,B,se"),
            "{:?}",
            log.repairs()
        );
        assert_eq!(fs::read(&path).unwrap(), complete);
        log.record(&Entry::now(3, "b@x.example", "B", Status::Failed))
            .unwrap();
        drop(log);
        let history = read(&path);
        assert!(history.warnings().is_empty());
        assert_eq!(history.last("b@x.example").unwrap().status, Status::Failed);
    }

    #[test]
    fn a_file_that_is_not_a_delivery_log_is_refused() {
        let dir = tmp();
        let path = dir.path().join("recipients.csv");
        let original = b"email,organisation\na@x.example,A\n";
        fs::write(&path, original).unwrap();
        for err in [
            History::read(&path).unwrap_err(),
            DeliveryLog::open(&path).unwrap_err(),
        ] {
            assert!(matches!(err, Error::Input(_)), "{err:?}");
            let message = err.to_string();
            assert!(
                message.contains("recipients.csv, line 1: is not an envoi delivery log"),
                "{message}"
            );
        }
        assert_eq!(fs::read(&path).unwrap(), original, "left untouched");

        // No line feed at all, and not the start of envoi's header either.
        fs::write(&path, b"hello").unwrap();
        assert!(matches!(History::read(&path), Err(Error::Input(_))));
        assert!(matches!(DeliveryLog::open(&path), Err(Error::Input(_))));
    }

    #[test]
    fn bad_rows_are_skipped_with_a_warning_naming_the_line() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let text = format!(
            "{}{}{}{}{}",
            String::from_utf8(header_line()).unwrap(),
            "2026-11-29T10:38:18Z,2,a@x.example,A,sent,250 2.0.0,ok,<a@x>,1\n",
            "2026-11-29T10:38:19Z,3,b@x.example,B,sent,250 2.0.0,ok,1\n",
            "2026-11-29T10:38:20Z,4,c@x.example,C,deliverd,,,,1\n",
            "2026-11-29T10:38:21Z,five,d@x.example,D,sent,,,,1\n",
        );
        fs::write(&path, text).unwrap();
        let history = read(&path);
        assert_eq!(
            statuses(&history),
            [("a@x.example".to_string(), Status::Sent)]
        );
        let warnings = history.warnings();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with(&format!("{}, line 3: has 8 columns", path.display())));
        assert!(warnings[1].contains("line 4: \"deliverd\" is not a delivery status"));
        assert!(warnings[2].contains("line 5: row \"five\" is not a number"));
    }

    #[test]
    fn a_log_saved_with_crlf_and_a_bom_is_read_and_appended_to() {
        let dir = tmp();
        let path = dir.path().join("log.csv");
        let text = "\u{feff}timestamp,row,email,organisation,status,code,detail,message_id,attempts\r\n\
                    2026-11-29T10:38:18Z,2,a@x.example,\"A, Inc\",sent,250 2.0.0,ok,<a@x>,1\r\n";
        fs::write(&path, text).unwrap();
        let history = read(&path);
        assert!(history.warnings().is_empty(), "{:?}", history.warnings());
        assert_eq!(history.last("a@x.example").unwrap().organisation, "A, Inc");

        let log = open(&path);
        log.begin(3, "b@x.example", "B", "<b@x>").unwrap();
        let b = Entry::now(3, "b@x.example", "B", Status::Sent);
        let crashed = crash_copy(&log, dir.path(), "crash.csv");
        log.record(&b).unwrap();
        drop(log);
        let history = read(&path);
        assert_eq!(history.len(), 2);
        assert_eq!(history.last("b@x.example"), Some(&b));

        // Offsets in a BOM + CRLF log still match intents to outcomes.
        let (_log, appended) = DeliveryLog::open(&crashed).unwrap();
        assert_eq!(appended.len(), 1);
        assert_eq!(appended[0].email, "b@x.example");
    }

    /// The last entry per recipient, first-seen order, computed independently of `History`.
    fn expected_history(written: &[Entry]) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for entry in written {
            match out
                .iter_mut()
                .find(|e| e.email.eq_ignore_ascii_case(&entry.email))
            {
                Some(slot) => *slot = entry.clone(),
                None => out.push(entry.clone()),
            }
        }
        out
    }

    #[test]
    fn a_crash_at_any_byte_of_a_log_write_never_invents_a_status() {
        let dir = ram_tmp();
        let original = dir.path().join("original.csv");
        let written = vec![
            Entry::now(2, "a@x.example", "A", Status::Failed)
                .with_code("421 4.7.0")
                .with_detail("try again, \"later\"")
                .with_attempts(12),
            Entry::now(3, "b@x.example", "Bé", Status::Sent).with_code("250 2.0.0"),
            Entry::now(2, "a@x.example", "A", Status::Sent).with_attempts(13),
            Entry::now(4, "c@x.example", "C", Status::Unknown).with_detail("lost, after data"),
            Entry::now(2, "A@x.example", "A", Status::Failed).with_attempts(1),
            Entry::now(5, "d@x.example", "D", Status::DryRun),
        ];
        let log = open(&original);
        for entry in &written {
            log.record(entry).unwrap();
        }
        drop(log);
        let bytes = fs::read(&original).unwrap();
        let header_len = header_line().len();
        // Where each line ends (just past its '\n'): the header's, then each entry's.
        let ends: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(ends.len(), 1 + written.len());

        let path = dir.path().join("crashed.csv");
        for cut in 0..=bytes.len() {
            let _ = fs::remove_file(journal_path(&path));
            fs::write(&path, &bytes[..cut]).unwrap();
            let lines = ends.iter().filter(|&&end| end <= cut).count();
            let complete = lines.saturating_sub(1);
            let expected = expected_history(&written[..complete]);
            let boundary = if lines == 0 { 0 } else { ends[lines - 1] };
            let torn = cut > boundary;

            let history = History::read(&path)
                .unwrap_or_else(|e| panic!("read after a cut at byte {cut}: {e}"));
            assert_eq!(
                history.entries().cloned().collect::<Vec<_>>(),
                expected,
                "cut at byte {cut}"
            );
            assert_eq!(
                history.warnings().len(),
                usize::from(torn),
                "cut at byte {cut}"
            );

            let (log, appended) = DeliveryLog::open(&path)
                .unwrap_or_else(|e| panic!("open after a cut at byte {cut}: {e}"));
            assert!(appended.is_empty());
            assert_eq!(log.repairs().len(), usize::from(torn), "cut at byte {cut}");
            drop(log);
            // Back to the last complete line; a log with no complete line gets its header.
            let expected_bytes = &bytes[..boundary.max(header_len)];
            assert_eq!(
                fs::read(&path).unwrap(),
                expected_bytes,
                "cut at byte {cut}"
            );
            let history = read(&path);
            assert!(history.warnings().is_empty(), "cut at byte {cut}");
            assert_eq!(history.entries().cloned().collect::<Vec<_>>(), expected);
        }
    }
}
