//! Loading the recipients file as SPEC ("recipients.csv") describes it, one row at a time.
//!
//! [`Recipients::open`] reads the header and settles everything that concerns the whole file;
//! iterating it then yields one [`Recipient`] per data row, or every problem of a bad row, so
//! that `check` can list them all. Memory does not grow with the number of rows, except for a
//! 16-byte digest of each address already seen (to catch an addressee listed twice).
//!
//! One file per concern: [`csv`](self::csv) reads CSV syntax, `rules` holds what every row must
//! satisfy whatever file it comes from, `address` the `email` cell.
//!
//! Rows are numbered as a spreadsheet shows them: the header is row 1, a quoted cell that spans
//! several lines is still one row, and blank lines count as rows (they are skipped silently).

mod address;
mod csv;
mod encoding;
mod rules;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

pub use self::encoding::encoding_for_label;

use self::csv::CsvRows;
use self::rules::{Layout, RowRules, is_blank_row};
use crate::error::{Error, Location, Problem};

/// The most a cell may hold, in bytes of UTF-8. A name, a salutation or a paragraph for one
/// addressee is a few kilobytes at most; a cell of megabytes is a paste gone wrong or a hostile
/// file, and would be copied into every header and part it is used in.
pub const MAX_CELL_BYTES: usize = 1024 * 1024;

/// One data row: its spreadsheet row number and its trimmed cells under their header names.
#[derive(Debug, Clone)]
pub struct Recipient {
    row: usize,
    layout: Arc<Layout>,
    /// One value per named column, aligned with `layout.names`.
    values: Vec<String>,
    /// The `language` cell, lower-cased; `None` when absent or empty.
    language: Option<String>,
}

impl Recipient {
    /// The row as a spreadsheet shows it (the header is row 1).
    pub fn row(&self) -> usize {
        self.row
    }

    /// The trimmed cell under the header named exactly `column`.
    pub fn get(&self, column: &str) -> Option<&str> {
        let index = self.layout.names.iter().position(|name| name == column)?;
        self.values.get(index).map(String::as_str)
    }

    /// The `email` cell, trimmed; a valid address on every row the iterator accepts.
    pub fn email(&self) -> &str {
        &self.values[self.layout.email]
    }

    /// The `language` cell in lower case; `None` when the column is absent or the cell empty.
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// `(header, value)` for every named column, in header order.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &str)> {
        self.layout
            .names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().map(String::as_str))
    }

    /// The row as a JSON object, header -> value: the data templates are rendered with.
    pub fn to_json(&self) -> serde_json::Value {
        let object = self
            .columns()
            .map(|(name, value)| (name.to_owned(), serde_json::Value::from(value)))
            .collect();
        serde_json::Value::Object(object)
    }
}

/// How to read a recipients file, from `[campaign]` in envoi.toml.
#[derive(Debug, Clone, Default)]
pub struct RecipientsOptions {
    /// `encoding`: what a CSV file without a BOM is in, when it is not UTF-8.
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

/// An open recipients file. Problems with the file as a whole come out of [`Recipients::open`];
/// problems with a row come out of the iterator, one `Err(Vec<Problem>)` per bad row.
#[derive(Debug)]
pub struct Recipients {
    display: std::path::PathBuf,
    source: CsvRows,
    rules: RowRules,
    done: bool,
}

impl Recipients {
    /// Opens and checks the file at `path`; `display` is how messages name it
    /// (e.g. `recipients.csv`).
    pub fn open(path: &Path, display: &Path) -> Result<Recipients, Error> {
        Self::open_with(path, display, &RecipientsOptions::default())
    }

    /// [`open`](Self::open), with the `[campaign]` settings that say how to read the file.
    pub fn open_with(
        path: &Path,
        display: &Path,
        options: &RecipientsOptions,
    ) -> Result<Recipients, Error> {
        let mut source = CsvRows::open(path, display, options.encoding)?;
        let rules = read_header(&mut source, display)?;
        Ok(Recipients {
            display: display.to_path_buf(),
            source,
            rules,
            done: false,
        })
    }

    /// The named columns, in file order (`email` normalised to lower case). Columns without a
    /// name (as spreadsheets export after the last real column) are left out.
    pub fn headers(&self) -> &[String] {
        self.rules.headers()
    }

    /// The detected delimiter: `b','`, `b';'` or `b'\t'`.
    pub fn delimiter(&self) -> u8 {
        self.source.delimiter()
    }
}

/// Reads the header (the first row that is not blank) and sets up the row rules.
fn read_header(source: &mut CsvRows, display: &Path) -> Result<RowRules, Error> {
    loop {
        match source.next_record() {
            Ok(Some(row)) => {
                let cells = source.cells();
                if !is_blank_row(&cells) {
                    return RowRules::from_header(display, row, &cells, source.lines());
                }
            }
            Ok(None) => {
                return Err(Error::input(
                    Location::file(display),
                    "the file is empty: it needs a header row with at least an `email` column",
                ));
            }
            Err(e) => return Err(Error::io(display, "could not read the recipients file", e)),
        }
    }
}

impl Iterator for Recipients {
    type Item = Result<Recipient, Vec<Problem>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.source.next_record() {
                Ok(Some(row)) => {
                    let cells = self.source.cells();
                    if !is_blank_row(&cells) {
                        return Some(self.rules.check_row(row, &cells));
                    }
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(vec![Problem::new(
                        Location::file(&self.display),
                        format!("could not read the file any further: {e}"),
                    )]));
                }
            }
        }
        None
    }
}
