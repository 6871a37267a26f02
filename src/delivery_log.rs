//! The delivery log (`delivery-log.csv`): an append-only record of what happened to every
//! letter, and the intent journal that keeps a crash from turning into a second letter.
//!
//! How it stays trustworthy when envoi is killed at any instant:
//!
//! * **One physical line per entry.** Every field is made single-line before it is written, so
//!   a line that does not end in `\n` is exactly a write that a crash cut short. Readers ignore
//!   it; [`DeliveryLog::open`] removes it.
//! * **On disk before acknowledged.** [`DeliveryLog::record`] and [`DeliveryLog::begin`] return
//!   only once their line has been through `fdatasync`; concurrent callers share one sync
//!   (group commit, see `DurableAppend`).
//! * **Intent journal.** Before a message's data goes to the relay, [`DeliveryLog::begin`]
//!   appends `offset,row,email,organisation,message_id` to `<log>.inflight`, where `offset` is
//!   the log's length at that moment. `begin` comes in two halves so that the sync need not
//!   hold up the relay: [`DeliveryLog::announce`] writes the intent when the message's SMTP
//!   transaction starts, a background thread syncs it while MAIL, RCPT and DATA travel, and
//!   [`DeliveryLog::confirm`] returns once it is on disk, before the message's data goes out. If envoi dies after the relay took the letter but before
//!   its `sent` row reached the log, the intent has no outcome after its offset, and the next
//!   [`DeliveryLog::open`] records it `unknown`, which `send` does not send again unless told to.
//! * **One writer.** A [`DeliveryLog`] holds an exclusive lock on the log file for its lifetime,
//!   so two `envoi send` runs cannot interleave their rows.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;

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

/// Appended to the log's file name to name its intent journal.
const JOURNAL_SUFFIX: &str = ".inflight";

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

/// A `status` cell that is none of the SPEC spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a delivery status (sent, failed, unknown, skipped, delayed, delivered, bounced, read or dry-run)"
)]
pub struct ParseStatusError(pub String);

impl FromStr for Status {
    type Err = ParseStatusError;

    /// Accepts the SPEC spellings, ignoring surrounding space and letter case (a spreadsheet
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

    fn to_line(&self) -> Vec<u8> {
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

    /// Reads one log row; the error says what is wrong with it.
    fn from_record(record: &csv::ByteRecord) -> Result<Entry, String> {
        if record.len() != COLUMNS.len() {
            return Err(format!(
                "has {} columns where a delivery log row has {}",
                record.len(),
                COLUMNS.len()
            ));
        }
        let record = csv::StringRecord::from_byte_record(record.clone())
            .map_err(|_| "is not valid UTF-8 text".to_string())?;
        Ok(Entry {
            timestamp: record[0].to_string(),
            row: number(&record, 1)?,
            email: record[2].to_string(),
            organisation: record[3].to_string(),
            status: record[4]
                .parse()
                .map_err(|e: ParseStatusError| e.to_string())?,
            code: record[5].to_string(),
            detail: record[6].to_string(),
            message_id: record[7].to_string(),
            attempts: number(&record, 8)?,
        })
    }
}

/// A whole-number cell of a log row.
fn number<T: FromStr>(record: &csv::StringRecord, column: usize) -> Result<T, String> {
    let text = record[column].trim();
    text.parse()
        .map_err(|_| format!("{} \"{text}\" is not a number", COLUMNS[column]))
}

/// Turns line breaks into spaces: the log keeps one entry per physical line.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// One `\n`-terminated CSV line. Fields are made single-line first so that a line feed in the
/// file always ends a row (which is how a torn write is recognised), then quoted where they
/// hold a comma or a quote, as RFC 4180 and every spreadsheet expect.
fn csv_line(fields: &[&str]) -> Vec<u8> {
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

fn header_line() -> Vec<u8> {
    csv_line(&COLUMNS)
}

/// The intent journal that sits next to a log.
pub fn journal_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(JOURNAL_SUFFIX);
    PathBuf::from(name)
}

/// Recipients are matched on their address, whatever its letter case.
fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Splits file contents at the last line feed: what comes after it is a line a crash cut short.
fn split_torn(bytes: &[u8]) -> (&[u8], &[u8]) {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.split_at(complete)
}

/// The 1-based line number of the text that follows `complete`.
fn next_line_number(complete: &[u8]) -> usize {
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

/// A log's contents, split into the complete entries and what a crash left behind.
struct ParsedLog {
    /// Complete entries, each with the byte offset where its line starts.
    entries: Vec<(u64, Entry)>,
    warnings: Vec<String>,
    /// Whether a header line is present (a file holding nothing, or only a torn header, has none).
    has_header: bool,
    /// Length of the part that ends with a line feed.
    complete_len: usize,
}

fn parse_log(path: &Path, bytes: &[u8]) -> Result<ParsedLog> {
    let (complete, torn) = split_torn(bytes);
    let mut parsed = ParsedLog {
        entries: Vec::new(),
        warnings: Vec::new(),
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
            Err(why) => parsed.warnings.push(
                Problem::new(
                    Location::file(path).line(line),
                    format!("{why}; this line is ignored, so correct it or delete it"),
                )
                .to_string(),
            ),
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

/// One line of the intent journal: a message that was about to be handed to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Intent {
    /// The log's length when the handover began: outcomes for it start at or after this offset.
    offset: u64,
    row: usize,
    email: String,
    organisation: String,
    message_id: String,
}

impl Intent {
    fn to_line(&self) -> Vec<u8> {
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
fn parse_journal(path: &Path, bytes: &[u8]) -> (Vec<Intent>, Vec<String>) {
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
fn unresolved<'a>(intents: &'a [Intent], log: &[(u64, Entry)]) -> Vec<(&'a Intent, u32)> {
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

/// Reads a whole file; a missing one reads as empty.
fn read_if_exists(path: &Path, what: &'static str) -> Result<Vec<u8>> {
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
fn must_be_regular(path: &Path, metadata: &fs::Metadata) -> Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    Err(Error::input(
        Location::file(path),
        "is not an ordinary file (it is a folder or a device), so it cannot keep the delivery log; give a file name with --log",
    ))
}

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
    /// Letters left in the intent journal without an outcome are reported as a warning too.
    pub fn read(path: &Path) -> Result<History> {
        let bytes = read_if_exists(path, "cannot read the delivery log")?;
        let parsed = parse_log(path, &bytes)?;
        let journal = journal_path(path);
        let (intents, journal_problems) = parse_journal(
            &journal,
            &read_if_exists(&journal, "cannot read the delivery log journal")?,
        );
        let mut warnings = parsed.warnings;
        warnings.extend(journal_problems);
        let open = unresolved(&intents, &parsed.entries);
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
        let mut history = History {
            warnings,
            ..History::default()
        };
        for (_, entry) in parsed.entries {
            history.push(entry);
        }
        Ok(history)
    }

    /// A later entry for a recipient replaces the earlier one, keeping its place.
    fn push(&mut self, entry: Entry) {
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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
struct DurableAppend {
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

struct Written {
    /// The file's length: where the next line starts.
    len: u64,
    /// How many lines have been written.
    seq: u64,
}

struct Synced {
    /// Lines up to this number are on disk.
    seq: u64,
    /// Whether a leader is running `fdatasync` now.
    leader: bool,
}

impl DurableAppend {
    /// Wraps a file opened for appending whose current length is `len`.
    fn new(path: &Path, what: &'static str, file: File, len: u64) -> DurableAppend {
        DurableAppend {
            path: path.to_path_buf(),
            what,
            file,
            written: Mutex::new(Written { len, seq: 0 }),
            written_changed: Condvar::new(),
            synced: Mutex::new(Synced {
                seq: 0,
                leader: false,
            }),
            synced_changed: Condvar::new(),
            failure: OnceLock::new(),
            stop_flushing: AtomicBool::new(false),
        }
    }

    fn stopped(&self, reason: &str) -> Error {
        Error::Stopped(format!(
            "cannot write the {} {}: {reason}; stopping so that no letter is sent without a record",
            self.what,
            self.path.display()
        ))
    }

    /// Marks the file failed for good and returns the error to report.
    fn fail(&self, error: io::Error) -> Error {
        let reason = self.failure.get_or_init(|| error.to_string());
        self.stopped(reason)
    }

    /// Refuses to go on once a write or sync has failed.
    fn check(&self) -> Result<()> {
        match self.failure.get() {
            Some(reason) => Err(self.stopped(reason)),
            None => Ok(()),
        }
    }

    /// The file's length: the offset where the next line will start.
    fn len(&self) -> u64 {
        lock(&self.written).len
    }

    /// Appends one whole line and returns once it is on disk.
    fn append(&self, line: &[u8]) -> Result<()> {
        let seq = self.write(line)?;
        self.wait_durable(seq)
    }

    /// Writes one whole line and returns its number, for [`wait_durable`](Self::wait_durable);
    /// the line is in the file but not yet surely on disk.
    fn write(&self, line: &[u8]) -> Result<u64> {
        let mut written = lock(&self.written);
        self.check()?;
        if let Err(error) = (&self.file).write_all(line) {
            // Cut off a partial line so that the file still ends at a line boundary.
            let _ = self.file.set_len(written.len);
            return Err(self.fail(error));
        }
        written.len += line.len() as u64;
        written.seq += 1;
        self.written_changed.notify_all();
        Ok(written.seq)
    }

    /// Syncs every line as soon as it is written, until [`stop`](Self::stop) is called, so that
    /// a writer waiting for its line finds the sync done or under way. Runs on its own thread;
    /// it is one more participant in the group commit, so it changes when syncs happen, never
    /// what an appender waits for. After a failed sync the file is failed and this returns.
    fn flush_ahead(&self) {
        let mut covered = 0;
        loop {
            let target = {
                let mut written = lock(&self.written);
                while written.seq <= covered && !self.stop_flushing.load(Ordering::SeqCst) {
                    written = self
                        .written_changed
                        .wait(written)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if written.seq <= covered {
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
    fn stop(&self) {
        // Under the lock, so the flusher cannot check the flag, miss this wake-up, then wait.
        let _written = lock(&self.written);
        self.stop_flushing.store(true, Ordering::SeqCst);
        self.written_changed.notify_all();
    }

    /// Waits until line `seq` is covered by a completed sync, leading one if none is running.
    fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut synced = lock(&self.synced);
        loop {
            if synced.seq >= seq {
                return Ok(());
            }
            self.check()?;
            if synced.leader {
                synced = self
                    .synced_changed
                    .wait(synced)
                    .unwrap_or_else(PoisonError::into_inner);
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
            self.synced_changed.notify_all();
        }
    }

    /// Cuts the file to `len` bytes, durably.
    fn truncate(&self, len: u64) -> Result<()> {
        let mut written = lock(&self.written);
        self.check()?;
        // sync_all: a change of length is metadata that must reach the disk too.
        match self.file.set_len(len).and_then(|()| self.file.sync_all()) {
            Ok(()) => {
                written.len = len;
                Ok(())
            }
            Err(error) => Err(self.fail(error)),
        }
    }
}

/// Makes a new file's name durable: it lives in the parent directory. Best effort, as some
/// file systems refuse to sync a directory; the contents are synced regardless.
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// Opens (creating) an ordinary file for appending; `what` names it in errors.
fn open_for_append(path: &Path, what: &'static str) -> Result<File> {
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

/// Reads everything from a file just opened (its position is at the start).
fn read_all(file: &File, path: &Path, what: &'static str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut reader = file;
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, what, e))?;
    Ok(bytes)
}

/// The log writer. Several SMTP workers append through `&self` (it is `Send + Sync`); it
/// holds an exclusive lock on the log file until dropped.
pub struct DeliveryLog {
    path: PathBuf,
    log: DurableAppend,
    journal: Arc<DurableAppend>,
    /// The thread that syncs announced intents ahead of their [`confirm`](Self::confirm).
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Recipients (lower-cased address) whose handover began and whose outcome is not recorded.
    pending: Mutex<HashSet<String>>,
    repairs: Vec<String>,
    closed: AtomicBool,
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

/// Why an intent without an outcome is `unknown`, and what the user can do.
fn unknown_detail(row: usize) -> String {
    format!(
        "envoi stopped while handing this letter to the relay; it may or may not have been delivered. Check with the relay, then use --resend --row {row} to send it again"
    )
}

impl DeliveryLog {
    /// Opens a log for appending, creating it with its header if it is missing or empty.
    ///
    /// Repairs a torn tail (bytes after the last line feed, left by a crash mid-write) by
    /// removing them, then reconciles the intent journal: every letter whose handover began with
    /// no outcome logged after it is recorded `unknown`. Returns the writer and the entries it
    /// appended while reconciling. Fails if another run holds the log, or if the file is not a
    /// delivery log.
    pub fn open(path: &Path) -> Result<(DeliveryLog, Vec<Entry>)> {
        let file = open_for_append(path, "cannot open the delivery log for writing")?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::input(
                    Location::file(path),
                    "is being written by another `envoi send`; wait for it to finish, or give this run another log with --log",
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(path, "cannot lock the delivery log", e));
            }
        }
        let bytes = read_all(&file, path, "cannot read the delivery log")?;
        let parsed = parse_log(path, &bytes)?;
        let log = DurableAppend::new(path, "delivery log", file, bytes.len() as u64);

        let mut repairs = Vec::new();
        if parsed.complete_len < bytes.len() {
            log.truncate(parsed.complete_len as u64)?;
            let torn = String::from_utf8_lossy(&bytes[parsed.complete_len..]);
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

        let journal_path = journal_path(path);
        let journal_file = open_for_append(
            &journal_path,
            "cannot open the delivery log journal for writing",
        )?;
        let journal_bytes = read_all(
            &journal_file,
            &journal_path,
            "cannot read the delivery log journal",
        )?;
        let (intents, problems) = parse_journal(&journal_path, &journal_bytes);
        repairs.extend(problems);
        let journal = DurableAppend::new(
            &journal_path,
            "delivery log journal",
            journal_file,
            journal_bytes.len() as u64,
        );

        let appended: Vec<Entry> = unresolved(&intents, &parsed.entries)
            .into_iter()
            .map(|(intent, begun)| {
                Entry::now(
                    intent.row,
                    &intent.email,
                    &intent.organisation,
                    Status::Unknown,
                )
                .with_detail(&unknown_detail(intent.row))
                .with_message_id(&intent.message_id)
                .with_attempts(begun)
            })
            .collect();
        for entry in &appended {
            log.append(&entry.to_line())?;
        }
        // Only once the outcomes are on disk: a crash before this leaves intents that now have
        // an outcome after them, so the next open adds nothing twice.
        if journal_bytes.is_empty() {
            sync_parent(&journal_path);
        } else {
            journal.truncate(0)?;
        }

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
            closed: AtomicBool::new(false),
        };
        Ok((delivery_log, appended))
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
        let announced = self.announce(row, email, organisation, message_id)?;
        self.confirm(announced)
    }

    /// The first half of [`begin`](Self::begin): writes the intent to the journal and returns
    /// without waiting for the disk; a background thread syncs it meanwhile. Call it when the
    /// message's transaction starts, then [`confirm`](Self::confirm) before its data goes out.
    /// Every announced message must get an outcome [`record`](Self::record)ed (an attempt that
    /// failed before the data counts), or the next [`open`](Self::open) logs it `unknown`.
    pub fn announce(
        &self,
        row: usize,
        email: &str,
        organisation: &str,
        message_id: &str,
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
        let seq = self.journal.write(&intent.to_line())?;
        Ok(Announced { seq })
    }

    /// The second half of [`begin`](Self::begin): returns once the announced intent is on disk
    /// (at once, when the background sync already covered it).
    pub fn confirm(&self, announced: Announced) -> Result<()> {
        self.journal.wait_durable(announced.seq)
    }

    /// Appends an outcome; on disk before it returns.
    pub fn record(&self, entry: &Entry) -> Result<()> {
        self.log.append(&entry.to_line())?;
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

    /// Closes the log: empties the intent journal when every letter begun has its outcome, and
    /// releases the lock. Dropping does the same, ignoring errors.
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
        // With an outcome missing (or not surely on disk), the journal stays for the next open.
        if self.log.check().is_err() || !lock(&self.pending).is_empty() {
            return Ok(());
        }
        self.journal.truncate(0)
    }
}

impl Drop for DeliveryLog {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tempfile::TempDir;

    fn tmp() -> TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    /// For the crash loops, which test parsing and repair rather than the disk: a RAM disk,
    /// where there is one, keeps a thousand synced reopenings fast.
    fn ram_tmp() -> TempDir {
        tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir")
    }

    fn open(path: &Path) -> DeliveryLog {
        let (log, appended) = DeliveryLog::open(path).expect("open log");
        assert!(
            appended.is_empty(),
            "unexpected reconciliation: {appended:?}"
        );
        log
    }

    fn read(path: &Path) -> History {
        History::read(path).expect("read log")
    }

    fn statuses(history: &History) -> Vec<(String, Status)> {
        history
            .entries()
            .map(|e| (e.email.clone(), e.status))
            .collect()
    }

    /// What a `kill -9` leaves on disk: a copy of the log and its journal as they are now.
    fn crash_copy(log: &DeliveryLog, dir: &Path, name: &str) -> PathBuf {
        let copy = dir.join(name);
        fs::copy(log.path(), &copy).unwrap();
        fs::copy(journal_path(log.path()), journal_path(&copy)).unwrap();
        copy
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
        assert_eq!(fs::read(journal_path(&path)).unwrap(), b"");
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
            "journal emptied"
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
        assert_eq!(fs::read(journal_path(&path)).unwrap(), b"");
        let (log, appended) = DeliveryLog::open(&path).unwrap();
        assert!(appended.is_empty(), "{appended:?}");
        drop(log);
    }

    #[test]
    fn flushing_ahead_syncs_what_nobody_waits_for_and_stops_when_told() {
        let dir = tmp();
        let path = dir.path().join("journal");
        let file = open_for_append(&path, "cannot open the journal").unwrap();
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
        assert_eq!(fs::read(journal_path(&crashed)).unwrap(), b"");
        assert_eq!(
            read(&crashed).last("a@x.example").unwrap().status,
            Status::Sent
        );

        // A clean close with every outcome recorded empties the journal too.
        log.close().unwrap();
        assert_eq!(fs::read(journal_path(&path)).unwrap(), b"");
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
                                .announce(i + 2, &email, "Org, \"quoted\"", "<id>")
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
        assert_eq!(fs::read(journal_path(&path)).unwrap(), b"");
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
                    "delivery_log::tests::crash_child_writer",
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
    fn delivery_log_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DeliveryLog>();
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
            assert_eq!(fs::read(journal_path(&path)).unwrap(), b"");
            assert_eq!(read(&path).len(), 1 + complete);
        }
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
