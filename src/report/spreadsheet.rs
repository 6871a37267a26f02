//! `envoi report --csv FILE`: the last status of every recipient, for the spreadsheet the
//! office keeps.
//!
//! UTF-8 with a byte order mark and CRLF line ends, so that Excel opens it with accents and
//! non-Latin names intact; RFC 4180 quoting. Columns: `row`, `organisation`, `email`, `status`,
//! `since` (when the status was recorded, UTC), `code`, `detail`, `attempts`, `message_id`.
//! Rows are in recipients-file order. A cell that a spreadsheet would take for a formula (it
//! starts with `=`, `+`, `-`, `@`, a tab or a carriage return; a bounce's text is written by
//! whoever sent the bounce) is prefixed with `'`, which spreadsheets show as text.

use std::borrow::Cow;
use std::path::Path;

use crate::delivery_log::{Entry, History};
use crate::error::Error;

/// The header line, in order.
pub const COLUMNS: [&str; 9] = [
    "row",
    "organisation",
    "email",
    "status",
    "since",
    "code",
    "detail",
    "attempts",
    "message_id",
];

/// The file's bytes: BOM, header, one line per recipient.
pub fn render(history: &History) -> Vec<u8> {
    let mut entries: Vec<&Entry> = history.entries().collect();
    entries.sort_by(|a, b| a.row.cmp(&b.row).then_with(|| a.email.cmp(&b.email)));
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    // Writing to memory cannot fail.
    let _ = writer.write_record(COLUMNS);
    for e in entries {
        let row = e.row.to_string();
        let attempts = e.attempts.to_string();
        let cells = [
            row.as_str(),
            &e.organisation,
            &e.email,
            e.status.as_str(),
            &e.timestamp,
            &e.code,
            &e.detail,
            &attempts,
            &e.message_id,
        ];
        let _ = writer.write_record(cells.iter().map(|c| defuse_formula(c).into_owned()));
    }
    writer.into_inner().unwrap_or_default()
}

/// Writes [`render`] to `path` (`shown` is how the user named it).
pub fn write(history: &History, path: &Path, shown: &Path) -> Result<(), Error> {
    std::fs::write(path, render(history)).map_err(|e| Error::io(shown, "cannot write", e))
}

/// The cell, with a `'` before it if a spreadsheet would read it as a formula.
pub fn defuse_formula(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_shown_as_text() {
        assert_eq!(defuse_formula("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse_formula("550 5.1.1 unknown"), "550 5.1.1 unknown");
        assert_eq!(defuse_formula(""), "");
    }
}
