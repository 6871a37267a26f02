//! What a matched report adds to the delivery log, and the tally of a `track` run.
//!
//! * **Status order.** A letter's status moves `sent` → `delayed` → `delivered` or `bounced` →
//!   `read`. A report adds a row only when it moves the letter forward: a `delayed` after
//!   `delivered`, or a second `bounced`, adds nothing (reports arrive late and out of order;
//!   the first of `delivered` and `bounced` stands). A read receipt always means delivered, so
//!   `read` may follow `bounced` (a server that bounced one copy while another arrived).
//! * **Idempotency.** The row a report adds ends its `detail` with `(report <Message-ID>)`, or
//!   `(report sha256:...)` for a report without one; a report whose id ends the letter's last
//!   row is not applied again. With the status order, a second run adds nothing.
//! * **Resends.** A report dated more than ten minutes before the letter's last `send` row
//!   (envoi's clock; the margin allows for the reporting server's) is about an earlier sending
//!   of a letter sent again since, and adds nothing.
//! * **Copies.** A report about a Cc or Bcc address of a letter is listed, and changes nothing:
//!   the letter's status is its addressee's.

use chrono::DateTime;

use super::RawMessage;
use super::matching::{Letters, Match};
use super::report::{Fate, Notice, Report, parse};
use super::sources::ReadWarning;
use crate::delivery_log::{DeliveryLog, Entry, History, Status};
use crate::error::Result;
use crate::report::spreadsheet::defuse_formula;

/// How far a reporting server's clock may be behind envoi's before its report is taken to be
/// about an earlier sending.
const CLOCK_MARGIN_SECS: i64 = 600;

/// What one notice of a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A row was appended.
    Recorded(Entry),
    /// This report is already in the log.
    AlreadyApplied,
    /// The letter's status had already moved past what the report says.
    Superseded,
    /// The report predates the letter's last sending.
    Stale,
    /// About a Cc or Bcc copy; listed, not recorded.
    Copy(String),
    /// The report says the letter moved on (`relayed`) without saying where it ended.
    NoStatus,
    /// No letter of the log is named by the report.
    Unmatched(String),
}

/// Everything a run saw, for its summary.
#[derive(Debug, Default)]
pub struct Tally {
    pub messages: usize,
    pub reports: usize,
    pub not_reports: usize,
    /// Reports and messages skipped, with their origin and why.
    pub skipped: Vec<String>,
    pub recorded: Vec<Entry>,
    pub already_applied: usize,
    pub superseded: usize,
    pub stale: usize,
    pub no_status: usize,
    /// Notes about copies, with their origin.
    pub copies: Vec<String>,
    /// Reports no letter matched, with their origin and what they say.
    pub unmatched: Vec<String>,
}

/// Reads reports one at a time and records what they say in a delivery log.
#[derive(Debug)]
pub struct Tracker {
    letters: Letters,
    tally: Tally,
}

impl Tracker {
    pub fn new(history: &History) -> Tracker {
        Tracker {
            letters: Letters::new(history),
            tally: Tally::default(),
        }
    }

    /// Reads one message and records what it says. Only a failure to write the log is an
    /// error; a message that is not a report, or a malformed one, is counted and skipped.
    /// Returns what each notice of the report did, and a warning for a malformed report.
    pub fn read(
        &mut self,
        raw: &RawMessage,
        log: &DeliveryLog,
    ) -> Result<(Vec<Applied>, Option<String>)> {
        self.tally.messages += 1;
        let report = match parse(raw) {
            Ok(Some(report)) => report,
            Ok(None) => {
                self.tally.not_reports += 1;
                return Ok((Vec::new(), None));
            }
            Err(malformed) => {
                let warning = format!(
                    "{}: skipped, not a readable report: {malformed}",
                    raw.origin
                );
                self.tally.skipped.push(warning.clone());
                return Ok((Vec::new(), Some(warning)));
            }
        };
        self.tally.reports += 1;
        let mut applied = Vec::new();
        for notice in &report.notices {
            let outcome = self.apply(&report, notice, &raw.origin);
            if let Applied::Recorded(entry) = &outcome {
                log.record(entry)?;
            }
            self.count(&outcome);
            applied.push(outcome);
        }
        Ok((applied, None))
    }

    /// A message a source could not read: counted and named, the run goes on.
    pub fn unreadable(&mut self, warning: &ReadWarning) -> String {
        let text = format!("{warning}");
        self.tally.messages += 1;
        self.tally.skipped.push(text.clone());
        text
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    fn count(&mut self, outcome: &Applied) {
        let tally = &mut self.tally;
        match outcome {
            Applied::Recorded(entry) => tally.recorded.push(entry.clone()),
            Applied::AlreadyApplied => tally.already_applied += 1,
            Applied::Superseded => tally.superseded += 1,
            Applied::Stale => tally.stale += 1,
            Applied::Copy(note) => tally.copies.push(note.clone()),
            Applied::NoStatus => tally.no_status += 1,
            Applied::Unmatched(note) => tally.unmatched.push(note.clone()),
        }
    }

    fn apply(&mut self, report: &Report, notice: &Notice, origin: &str) -> Applied {
        let Some(Match { letter, copy, .. }) = self.letters.find(report, notice) else {
            return Applied::Unmatched(format!("{origin}: {}", describe(report, notice)));
        };
        let last = &self.letters.entries[letter];
        if copy {
            return Applied::Copy(format!(
                "{origin}: about a copy of row {}'s letter ({}): {}",
                last.row,
                last.email,
                describe(report, notice)
            ));
        }
        let Some(status) = notice.fate.status() else {
            return Applied::NoStatus;
        };
        if report_id_of(&last.detail) == Some(report.id.as_str()) {
            return Applied::AlreadyApplied;
        }
        if rank(status) <= rank(last.status) {
            return Applied::Superseded;
        }
        if rank(last.status) == 0 && predates(report.date, &last.timestamp) {
            return Applied::Stale;
        }
        let entry = Entry::now(last.row, &last.email, &last.organisation, status)
            .with_code(&notice.status)
            .with_detail(&detail(report, notice))
            .with_message_id(&last.message_id)
            .with_attempts(last.attempts);
        self.letters.entries[letter] = entry.clone();
        Applied::Recorded(entry)
    }
}

/// Where a status stands in the order a letter's fate unfolds; send's statuses are all 0.
fn rank(status: Status) -> u8 {
    match status {
        Status::Delayed => 1,
        Status::Delivered | Status::Bounced => 2,
        Status::Read => 3,
        Status::Sent | Status::Failed | Status::Unknown | Status::Skipped | Status::DryRun => 0,
    }
}

/// Whether a report dated `date` was written before the row stamped `timestamp` (beyond the
/// clock margin). Without a date to compare, it is not.
fn predates(date: Option<i64>, timestamp: &str) -> bool {
    match (date, DateTime::parse_from_rfc3339(timestamp.trim())) {
        (Some(date), Ok(row)) => date + CLOCK_MARGIN_SECS < row.timestamp(),
        _ => false,
    }
}

/// The row's `detail`: what the receiving side said, the server that said it, the server or
/// client that reported it, and the report's id.
pub fn detail(report: &Report, notice: &Notice) -> String {
    let mut parts = Vec::new();
    // The diagnostic is the reporting server's text: it must not read as a spreadsheet formula
    // when the office opens the log.
    parts.push(if notice.diagnostic.is_empty() {
        fate_text(notice.fate).to_string()
    } else {
        defuse_formula(&notice.diagnostic).into_owned()
    });
    if !notice.remote_server.is_empty() {
        parts.push(format!("remote server {}", notice.remote_server));
    }
    if !report.reporter.is_empty() {
        parts.push(format!("reported by {}", report.reporter));
    }
    format!("{} (report {})", parts.join("; "), report.id)
}

/// The id of the report that wrote a `detail`, if a report did.
pub fn report_id_of(detail: &str) -> Option<&str> {
    let detail = detail.trim_end();
    let inner = detail.strip_suffix(')')?;
    let at = inner.rfind("(report ")?;
    Some(&inner[at + "(report ".len()..])
}

fn fate_text(fate: Fate) -> &'static str {
    match fate {
        Fate::Delayed => "delayed",
        Fate::Delivered => "delivered",
        Fate::Bounced => "could not be delivered",
        Fate::Read => "displayed",
        Fate::Relayed => "relayed",
    }
}

/// One line about a notice for the lists: `Exim bounce from mx.example: bounced 5.1.1 for x@y`.
fn describe(report: &Report, notice: &Notice) -> String {
    let from = if report.reporter.is_empty() {
        String::new()
    } else {
        format!(" from {}", report.reporter)
    };
    let status = notice.fate.status().map_or("relayed", Status::as_str);
    let code = if notice.status.is_empty() {
        String::new()
    } else {
        format!(" {}", notice.status)
    };
    let who = notice
        .final_recipient
        .first()
        .map(String::as_str)
        .unwrap_or("?");
    format!("{}{from}: {status}{code} for {who}", report.kind.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_id_is_read_back_from_the_detail() {
        assert_eq!(
            report_id_of("550 5.1.1 x; reported by y (report <a@b>)"),
            Some("<a@b>")
        );
        assert_eq!(report_id_of("x (report sha256:00ff)"), Some("sha256:00ff"));
        assert_eq!(report_id_of("250 2.0.0 Ok: queued as 4XyZ"), None);
        assert_eq!(report_id_of("(reported) x)"), None);
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(rank(Status::Delayed) > rank(Status::Sent));
        assert!(rank(Status::Delivered) > rank(Status::Delayed));
        assert_eq!(rank(Status::Delivered), rank(Status::Bounced));
        assert!(rank(Status::Read) > rank(Status::Bounced));
    }

    #[test]
    fn a_report_older_than_the_last_send_predates_it() {
        let sent = "2026-12-02T10:00:00Z";
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|d| d.timestamp()).ok();
        assert!(predates(at("2026-12-01T09:00:00Z"), sent));
        assert!(
            !predates(at("2026-12-02T09:55:00Z"), sent),
            "within the clock margin"
        );
        assert!(!predates(at("2026-12-02T11:00:00Z"), sent));
        assert!(!predates(None, sent));
        assert!(!predates(at("2026-12-01T09:00:00Z"), "not a time"));
    }
}
