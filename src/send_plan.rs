//! The send plan: what the delivery log says × the rows of the recipients file → which letters
//! a run sends. This is where "never twice" is decided.
//!
//! A letter is skipped when the log's last status for its *address* (letter case ignored, not
//! its row number) says it went out ([`Status::went_out`]), unless `--resend`. `send` composes
//! the planned letters once, while planning, and sends exactly those (see `spool`), so the
//! file is not read again to send; the plan keeps the file's size and modification time, so
//! that a recipients file edited while envoi waited for "yes" is refused rather than leaving
//! the user to think the edit went out.

use std::path::Path;
use std::time::SystemTime;

use crate::delivery_log::{History, Status};
use crate::error::Problem;

/// What the plan decided for one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The letter goes out in this run.
    Send,
    /// The log says the letter already went out (`sent`, `unknown`, or a later report).
    AlreadyDone(Status),
    /// Beyond `--limit`: not this run.
    OverLimit,
    /// The row has problems: skipped (and logged so) with `--skip-bad-rows`, else the run stops.
    Bad,
}

/// A row with problems, as the plan keeps it for the message and the `skipped` log row.
#[derive(Debug, Clone)]
pub struct BadRow {
    pub row: usize,
    pub email: String,
    pub organisation: String,
    pub problems: Vec<Problem>,
}

/// Why the recipients file no longer matches the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Changed {
    #[error(
        "changed since envoi planned this run (its size or modification time differs); nothing was sent, run send again to plan from the file as it is now"
    )]
    File,
}

/// The plan of one run.
#[derive(Debug, Default)]
pub struct SendPlan {
    resend: bool,
    limit: Option<usize>,
    /// Planned rows, in the order the file gives them (rows ascend): 4 bytes a letter.
    planned: Vec<u32>,
    already_done: usize,
    bad: Vec<BadRow>,
    file: Option<FileStamp>,
}

/// What identifies the recipients file's contents cheaply: its length and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

impl SendPlan {
    /// A plan for the recipients file at `recipients` (stamped now, before its rows are read).
    pub fn new(recipients: &Path, resend: bool, limit: Option<usize>) -> SendPlan {
        SendPlan {
            resend,
            limit,
            file: FileStamp::of(recipients),
            ..SendPlan::default()
        }
    }

    /// Decides one row: `problems` is `None` for a row whose letter composed.
    pub fn consider(
        &mut self,
        history: &History,
        row: usize,
        email: &str,
        organisation: &str,
        problems: Option<Vec<Problem>>,
    ) -> Decision {
        let went_out = history
            .last(email)
            .map(|entry| entry.status)
            .filter(|status| status.went_out() && !self.resend);
        match (went_out, problems) {
            (Some(status), _) => {
                self.already_done += 1;
                Decision::AlreadyDone(status)
            }
            (None, Some(problems)) => {
                self.bad.push(BadRow {
                    row,
                    email: email.to_owned(),
                    organisation: organisation.to_owned(),
                    problems,
                });
                Decision::Bad
            }
            (None, None) if self.limit.is_some_and(|limit| self.planned.len() >= limit) => {
                Decision::OverLimit
            }
            (None, None) => {
                self.planned.push(row as u32);
                Decision::Send
            }
        }
    }

    /// How many letters go out.
    pub fn len(&self) -> usize {
        self.planned.len()
    }

    /// Whether no letter goes out.
    pub fn is_empty(&self) -> bool {
        self.planned.is_empty()
    }

    /// The first row that goes out.
    pub fn first(&self) -> Option<usize> {
        self.planned.first().map(|&row| row as usize)
    }

    /// Whether this row was planned.
    pub fn contains(&self, row: usize) -> bool {
        u32::try_from(row).is_ok_and(|row| self.planned.binary_search(&row).is_ok())
    }

    /// Letters skipped because the log says they went out.
    pub fn already_done(&self) -> usize {
        self.already_done
    }

    /// Rows with problems.
    pub fn bad(&self) -> &[BadRow] {
        &self.bad
    }

    /// Before anything is sent: the recipients file is still the one planned from.
    pub fn check_file(&self, recipients: &Path) -> Result<(), Changed> {
        match self.file == FileStamp::of(recipients) {
            true => Ok(()),
            false => Err(Changed::File),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery_log::{DeliveryLog, Entry};

    fn history(entries: &[(usize, &str, Status)]) -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        let (log, _) = DeliveryLog::open(&path).unwrap();
        for &(row, email, status) in entries {
            log.record(&Entry::now(row, email, "Org", status)).unwrap();
        }
        log.close().unwrap();
        let history = History::read(&path).unwrap();
        (dir, history)
    }

    fn plan(resend: bool, limit: Option<usize>) -> SendPlan {
        SendPlan::new(Path::new("/nonexistent/recipients.csv"), resend, limit)
    }

    #[test]
    fn a_letter_that_went_out_is_not_sent_again_whatever_its_row_is_now() {
        let (_dir, history) = history(&[
            (2, "a@x.example", Status::Sent),
            (3, "b@x.example", Status::Unknown),
            (4, "c@x.example", Status::Failed),
            (5, "d@x.example", Status::Skipped),
            (6, "e@x.example", Status::Delivered),
        ]);
        let mut plan = plan(false, None);
        // Rows moved since the last run: the address decides, not the row number.
        let got: Vec<Decision> = [
            (2, "c@x.example"),
            (3, "A@X.example"),
            (4, "d@x.example"),
            (5, "b@x.example"),
            (6, "new@x.example"),
            (7, "e@x.example"),
        ]
        .into_iter()
        .map(|(row, email)| plan.consider(&history, row, email, "Org", None))
        .collect();
        assert_eq!(
            got,
            [
                Decision::Send,
                Decision::AlreadyDone(Status::Sent),
                Decision::Send,
                Decision::AlreadyDone(Status::Unknown),
                Decision::Send,
                Decision::AlreadyDone(Status::Delivered),
            ]
        );
        assert_eq!((plan.len(), plan.already_done()), (3, 3));
        assert_eq!(plan.first(), Some(2));
        assert!(plan.contains(4) && !plan.contains(3));
    }

    #[test]
    fn resend_sends_again_limit_caps_and_bad_rows_are_kept() {
        let (_dir, history) = history(&[(2, "a@x.example", Status::Sent)]);
        let mut plan = plan(true, Some(2));
        assert_eq!(
            plan.consider(&history, 2, "a@x.example", "A", None),
            Decision::Send
        );
        let problem = Problem::new(crate::error::Location::file("r.csv").row(3), "bad");
        assert_eq!(
            plan.consider(&history, 3, "b@x.example", "B", Some(vec![problem])),
            Decision::Bad
        );
        assert_eq!(
            plan.consider(&history, 4, "c@x.example", "C", None),
            Decision::Send
        );
        assert_eq!(
            plan.consider(&history, 5, "d@x.example", "D", None),
            Decision::OverLimit
        );
        assert_eq!(plan.bad().len(), 1);
        assert_eq!(plan.bad()[0].row, 3);
        // A bad row whose letter already went out is not a problem for this run.
        let mut plan = super::SendPlan::new(Path::new("x"), false, None);
        let problem = Problem::new(crate::error::Location::file("r.csv").row(2), "bad");
        assert_eq!(
            plan.consider(&history, 2, "a@x.example", "A", Some(vec![problem])),
            Decision::AlreadyDone(Status::Sent)
        );
        assert!(plan.bad().is_empty());
    }

    #[test]
    fn the_plan_is_bound_to_the_file_it_planned() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipients.csv");
        std::fs::write(&file, "email\na@x.example\nb@x.example\n").unwrap();
        let history = History::default();
        let mut plan = SendPlan::new(&file, false, None);
        plan.consider(&history, 2, "a@x.example", "", None);
        plan.consider(&history, 3, "b@x.example", "", None);
        assert_eq!(plan.check_file(&file), Ok(()));
        std::fs::write(&file, "email\nnew@x.example\na@x.example\nb@x.example\n").unwrap();
        assert_eq!(plan.check_file(&file), Err(Changed::File));
    }
}
