//! Typed errors and the problems `check` reports.
//!
//! Users are office staff: every problem says *where* (file, spreadsheet row, column,
//! template line) and *what to do*. [`Location`] holds the where, [`Problem`] the what, and
//! [`Error`] decides the exit code.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit code: everything asked for was done.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run finished but some messages failed, are unknown or were skipped.
pub const EXIT_INCOMPLETE: u8 = 1;
/// Exit code: bad input or configuration; nothing was sent.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the run was stopped (authentication, quota, interrupt); what was sent is logged.
pub const EXIT_STOPPED: u8 = 3;

/// Where a problem is, as the user would look for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it (relative to the campaign folder where possible).
    pub file: PathBuf,
    /// The sheet of a spreadsheet file.
    pub sheet: Option<String>,
    /// The row as a spreadsheet numbers it (the header is row 1).
    pub row: Option<usize>,
    /// The column's header name.
    pub column: Option<String>,
    /// The column's letter (C), for a spreadsheet file.
    pub column_letter: Option<String>,
    /// A setting in envoi.toml, as `[section] key`.
    pub setting: Option<String>,
    /// A line in a text file (templates, config), 1-based.
    pub line: Option<usize>,
    /// A column within that line, 1-based.
    pub col: Option<usize>,
}

impl Location {
    pub fn file(file: impl AsRef<Path>) -> Self {
        Location {
            file: file.as_ref().to_path_buf(),
            ..Location::default()
        }
    }

    pub fn row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }

    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    pub fn sheet(mut self, sheet: impl Into<String>) -> Self {
        self.sheet = Some(sheet.into());
        self
    }

    /// A column as a spreadsheet names it: its letter and its header.
    pub fn column_at(mut self, letter: impl Into<String>, column: impl Into<String>) -> Self {
        self.column_letter = Some(letter.into());
        self.column(column)
    }

    /// A setting in envoi.toml: `setting("smtp", "port")` reads `[smtp] port`.
    pub fn setting(mut self, section: &str, key: &str) -> Self {
        self.setting = Some(if key.is_empty() {
            format!("[{section}]")
        } else {
            format!("[{section}] {key}")
        });
        self
    }

    pub fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub fn col(mut self, col: usize) -> Self {
        self.col = Some(col);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(sheet) = &self.sheet {
            write!(f, ", sheet \"{sheet}\"")?;
        }
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        match (&self.column_letter, &self.column) {
            (Some(letter), Some(column)) => write!(f, ", column {letter} \"{column}\"")?,
            (None, Some(column)) => write!(f, ", column \"{column}\"")?,
            (Some(letter), None) => write!(f, ", column {letter}")?,
            (None, None) => {}
        }
        if let Some(setting) = &self.setting {
            write!(f, ", {setting}")?;
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
            if let Some(col) = self.col {
                write!(f, ", column {col}")?;
            }
        }
        Ok(())
    }
}

/// One thing wrong with the input, pinned to a place. Displayed on one line:
/// `recipients.csv, row 7, column "email": "jean@@x" is not an email address; correct it in the spreadsheet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    pub message: String,
}

impl Problem {
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Problem {
            location,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it to one line whatever the message or the location holds (a relay reply, a
        // cell value, a header cell with a line break in it).
        let location = self.location.to_string().replace(['\r', '\n'], " ");
        let message = self.message.replace(['\r', '\n'], " ");
        write!(f, "{location}: {message}")
    }
}

/// Everything that can end a command early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One bad input; nothing was sent.
    #[error("{0}")]
    Input(Box<Problem>),

    /// Several bad inputs, all listed; nothing was sent.
    #[error("{} problem{} found; nothing was sent", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Problems(Vec<Problem>),

    /// Problems already shown to the user one by one; this is the closing line.
    #[error("{0}")]
    Reported(String),

    /// A file could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The run was stopped part-way (authentication refused, quota, interrupt, log unwritable).
    /// What was sent before is in the delivery log.
    #[error("{0}")]
    Stopped(String),
}

impl Error {
    pub fn input(location: Location, message: impl Into<String>) -> Self {
        Error::Input(Box::new(Problem::new(location, message)))
    }

    pub fn io(path: impl AsRef<Path>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            action,
            source,
        }
    }

    /// The individual problems behind an [`Error::Problems`], to print one per line.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Problems(list) => list,
            _ => &[],
        }
    }

    /// The process exit code this error maps to (README, "Exit codes": 2 bad input, 3 stopped).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::Problems(_) | Error::Reported(_) | Error::Io { .. } => {
                EXIT_BAD_INPUT
            }
            Error::Stopped(_) => EXIT_STOPPED,
        }
    }
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::Input(Box::new(problem))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_reads_like_a_spreadsheet_reference() {
        let loc = Location::file("recipients.csv").row(7).column("email");
        assert_eq!(loc.to_string(), "recipients.csv, row 7, column \"email\"");
        let loc = Location::file("addressees.xlsx")
            .sheet("Addressees")
            .row(7)
            .column_at("C", "organisation");
        assert_eq!(
            loc.to_string(),
            "addressees.xlsx, sheet \"Addressees\", row 7, column C \"organisation\""
        );
        let loc = Location::file("templates/letter.hbs").line(3).col(12);
        assert_eq!(loc.to_string(), "templates/letter.hbs, line 3, column 12");
    }

    #[test]
    fn settings_read_like_the_toml_file() {
        let loc = Location::file("envoi.toml").setting("smtp", "port");
        assert_eq!(loc.to_string(), "envoi.toml, [smtp] port");
    }

    #[test]
    fn problem_is_one_line() {
        let p = Problem::new(Location::file("x.csv").row(2), "bad\r\nvalue");
        assert_eq!(p.to_string(), "x.csv, row 2: bad  value");
        let p = Problem::new(Location::file("x.csv").row(2).column("two\nlines"), "bad");
        assert_eq!(p.to_string(), "x.csv, row 2, column \"two lines\": bad");
    }

    #[test]
    fn exit_codes_follow_the_spec() {
        assert_eq!(Error::input(Location::file("a"), "x").exit_code(), 2);
        assert_eq!(Error::Stopped("auth".into()).exit_code(), 3);
    }
}
