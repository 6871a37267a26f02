//! Summaries of a delivery log: counts by status; every letter that was not sent, bounced or
//! is delayed, with its reason; and, once `envoi track` has recorded reports, every letter not
//! yet confirmed delivered. [`spreadsheet`] writes the last status per recipient as CSV.

pub mod spreadsheet;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::delivery_log::{Entry, History, Status, StatusCounts};

/// The last status of every recipient in a log.
#[derive(Debug, Default)]
pub struct Summary {
    /// Recipients by their last status (the same tally a send run keeps).
    pub counts: StatusCounts,
    /// Recipients whose letter did not go out (`failed`, `unknown`, `skipped`, `dry-run`), in
    /// log order.
    pub open: Vec<Entry>,
    /// Recipients whose letter bounced, in log order.
    pub bounces: Vec<Entry>,
    /// Recipients whose letter is reported delayed, in log order.
    pub delays: Vec<Entry>,
    /// Recipients whose letter the relay took and no report has confirmed yet (`sent`).
    pub unconfirmed: Vec<Entry>,
    /// Bounced addresses whose row was sent again since to another address (corrected in
    /// the recipients file): not counted as bounced.
    pub corrected: Vec<Entry>,
}

impl Summary {
    pub fn from_history(history: &History) -> Summary {
        // The latest entry of each row: a bounced address whose row was sent again to another
        // address since has been corrected.
        let mut latest: HashMap<usize, &Entry> = HashMap::new();
        for entry in history.entries() {
            let slot = latest.entry(entry.row).or_insert(entry);
            if entry.timestamp > slot.timestamp {
                *slot = entry;
            }
        }
        let mut summary = Summary::default();
        for entry in history.entries() {
            let newer = latest[&entry.row];
            if entry.status == Status::Bounced
                && newer.timestamp > entry.timestamp
                && !newer.email.eq_ignore_ascii_case(&entry.email)
            {
                summary.corrected.push(entry.clone());
            } else {
                summary.count(entry);
            }
        }
        summary
    }

    fn count(&mut self, entry: &Entry) {
        self.counts.add(entry.status);
        match entry.status {
            Status::Failed | Status::Unknown | Status::Skipped | Status::DryRun => {
                self.open.push(entry.clone());
            }
            Status::Bounced => self.bounces.push(entry.clone()),
            Status::Delayed => self.delays.push(entry.clone()),
            Status::Sent => self.unconfirmed.push(entry.clone()),
            Status::Delivered | Status::Read => {}
        }
    }

    /// Whether `envoi track` has recorded any report in the log.
    pub fn tracked(&self) -> bool {
        let c = &self.counts;
        c.delayed + c.delivered + c.bounced + c.read > 0
    }

    pub fn total(&self) -> usize {
        self.counts.total()
    }

    /// The report as printed by `envoi report`.
    pub fn render(&self, log: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}: {} recipients", log.display(), self.total());
        for status in Status::ALL {
            let _ = writeln!(s, "  {:<9}{:>6}", status.as_str(), self.counts.get(status));
        }
        if self.total() == 0 {
            return s;
        }
        if self.open.is_empty() && self.bounces.is_empty() && self.delays.is_empty() {
            let _ = writeln!(
                s,
                "\n{}",
                if self.tracked() {
                    "Every letter in the log went out; none bounced or is delayed."
                } else {
                    "Every recipient in the log ended sent."
                }
            );
        }
        list(&mut s, "Not sent:", &self.open);
        list(
            &mut s,
            "Bounced (correct the address in the recipients file, then envoi send --resend --row N):",
            &self.bounces,
        );
        list(
            &mut s,
            "Delayed (the servers are still trying):",
            &self.delays,
        );
        // Before any report is tracked every letter is unconfirmed: listing them says nothing.
        if self.tracked() && !self.unconfirmed.is_empty() {
            let _ = writeln!(
                s,
                "\nNot confirmed delivered yet ({}: sent, no report since):",
                self.unconfirmed.len()
            );
            for e in &self.unconfirmed {
                let _ = writeln!(s, "  row {:>4}  {}", e.row, who(e).trim_end_matches(": "));
            }
        }
        if !self.corrected.is_empty() {
            let rows: Vec<String> = self
                .corrected
                .iter()
                .map(|e| format!("row {} ({})", e.row, e.email))
                .collect();
            let _ = writeln!(
                s,
                "\nBounced, and sent again since to a corrected address (not counted above): {}",
                rows.join(", ")
            );
        }
        if self.counts.unknown > 0 {
            let _ = writeln!(
                s,
                "\n\"unknown\" means the relay may have received the letter: envoi will not send it again on its own. Check with the relay, then use envoi send --resend --row N."
            );
        }
        if self.counts.failed > 0 {
            let _ = writeln!(
                s,
                "\"failed\" letters are tried again by the next envoi send."
            );
        }
        s
    }
}

/// `Organisation <email>: `, `email: `, or nothing for a row skipped before its address was read.
fn who(e: &Entry) -> String {
    match (e.organisation.is_empty(), e.email.is_empty()) {
        (_, true) => String::new(),
        (true, false) => format!("{}: ", e.email),
        (false, false) => format!("{} <{}>: ", e.organisation, e.email),
    }
}

/// A titled list of entries with their code, detail, attempts and time.
fn list(s: &mut String, title: &str, entries: &[Entry]) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{title}");
    for e in entries {
        let code = if e.code.is_empty() {
            String::new()
        } else {
            format!("{} ", e.code)
        };
        let _ = writeln!(
            s,
            "  row {:>4}  {:<8} {}{code}{} (attempts: {}, {})",
            e.row,
            e.status.as_str(),
            who(e),
            e.detail,
            e.attempts,
            e.timestamp
        );
    }
}
