//! Summaries of a delivery log: counts by status, and every letter that did not end `sent`.

use std::fmt::Write as _;
use std::path::Path;

use crate::delivery_log::{Entry, History, Status};

/// The last status of every recipient in a log.
#[derive(Debug, Default)]
pub struct Summary {
    pub sent: usize,
    pub failed: usize,
    pub unknown: usize,
    pub skipped: usize,
    pub dry_run: usize,
    pub delayed: usize,
    pub delivered: usize,
    pub bounced: usize,
    pub read: usize,
    /// Recipients whose last status is not `sent`, in log order.
    pub open: Vec<Entry>,
}

impl Summary {
    pub fn from_history(history: &History) -> Summary {
        let mut summary = Summary::default();
        for entry in history.entries() {
            summary.count(entry);
        }
        summary
    }

    fn count(&mut self, entry: &Entry) {
        match entry.status {
            Status::Sent => self.sent += 1,
            Status::Failed => self.failed += 1,
            Status::Unknown => self.unknown += 1,
            Status::Skipped => self.skipped += 1,
            Status::DryRun => self.dry_run += 1,
            Status::Delayed => self.delayed += 1,
            Status::Delivered => self.delivered += 1,
            Status::Bounced => self.bounced += 1,
            Status::Read => self.read += 1,
        }
        if !matches!(
            entry.status,
            Status::Sent | Status::Delivered | Status::Read
        ) {
            self.open.push(entry.clone());
        }
    }

    pub fn total(&self) -> usize {
        self.sent
            + self.failed
            + self.unknown
            + self.skipped
            + self.dry_run
            + self.delayed
            + self.delivered
            + self.bounced
            + self.read
    }

    /// The report as printed by `envoi report`.
    pub fn render(&self, log: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} recipients\n  sent     {:>6}\n  failed   {:>6}\n  unknown  {:>6}\n  skipped  {:>6}\n  dry-run  {:>6}",
            log.display(),
            self.total(),
            self.sent,
            self.failed,
            self.unknown,
            self.skipped,
            self.dry_run
        );
        if self.open.is_empty() {
            if self.total() > 0 {
                let _ = writeln!(s, "\nEvery recipient in the log ended sent.");
            }
            return s;
        }
        let _ = writeln!(s, "\nNot sent:");
        for e in &self.open {
            let code = if e.code.is_empty() {
                String::new()
            } else {
                format!("{} ", e.code)
            };
            // A row skipped because it could not be read has no address: its row says who.
            let who = match (e.organisation.is_empty(), e.email.is_empty()) {
                (_, true) => String::new(),
                (true, false) => format!("{}: ", e.email),
                (false, false) => format!("{} <{}>: ", e.organisation, e.email),
            };
            let _ = writeln!(
                s,
                "  row {:>4}  {:<8} {who}{code}{} (attempts: {}, {})",
                e.row,
                e.status.as_str(),
                e.detail,
                e.attempts,
                e.timestamp
            );
        }
        if self.unknown > 0 {
            let _ = writeln!(
                s,
                "\n\"unknown\" means the relay may have received the letter: envoi will not send it again on its own. Check with the relay, then use envoi send --resend --row N."
            );
        }
        if self.failed > 0 {
            let _ = writeln!(
                s,
                "\"failed\" letters are tried again by the next envoi send."
            );
        }
        s
    }
}
