//! One module per subcommand, each with an `execute()`.

pub mod check;
pub mod file_sent;
pub mod init;
pub mod preview;
pub mod problem_list;
pub mod report;
pub mod send;
pub mod track;

use std::path::Path;

use crate::delivery_log::{DeliveryLog, History};
use crate::error::{EXIT_INCOMPLETE, EXIT_OK, EXIT_STOPPED, Error};

/// How a command ended when it did not fail outright (README, "Exit codes": 0 all done, 1 some
/// letters not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Done,
    /// The run finished, but some messages failed, are unknown or were skipped.
    Incomplete,
    /// The run was stopped part-way; what was sent is logged.
    Stopped,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => EXIT_OK,
            Outcome::Incomplete => EXIT_INCOMPLETE,
            Outcome::Stopped => EXIT_STOPPED,
        }
    }
}

/// Re-exported so that every command's message says counts the same way.
pub use crate::text::plural;

/// Opens a delivery log for appending, and tells the user what opening it had to mend: a torn
/// last line removed, letters left in the intent journal recorded `unknown`.
pub fn open_log(path: &Path) -> Result<DeliveryLog, Error> {
    open_log_with_history(path).map(|(log, _)| log)
}

/// [`open_log`], with what the log says (read once, as it is opened).
pub fn open_log_with_history(path: &Path) -> Result<(DeliveryLog, History), Error> {
    let (log, history, recovered) = DeliveryLog::open_with_history(path)?;
    for repair in log.repairs() {
        eprintln!("warning: {repair}");
    }
    for entry in &recovered {
        eprintln!(
            "warning: row {} ({}) was being handed to the relay when envoi last stopped; logged as unknown",
            entry.row, entry.email
        );
    }
    Ok((log, history))
}
