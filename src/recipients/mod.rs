//! Loading the recipients file as README ("recipients.csv") describes it, one row at a time.
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
mod ods_merges;
mod rules;
mod spreadsheet;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

pub use self::encoding::encoding_for_label;

use self::csv::CsvRows;
use self::rules::Cell;
use self::rules::{Layout, Origin, RowRules, is_blank_row};
use self::spreadsheet::SheetRows;
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

    /// Where this row is, as the spreadsheet shows it (file, sheet, row).
    pub fn location(&self) -> Location {
        self.layout.origin.row(self.row)
    }

    /// Where this row's cell under `column` is: for a spreadsheet with its column letter too.
    pub fn cell_location(&self, column: &str) -> Location {
        match self.layout.names.iter().position(|name| name == column) {
            Some(index) => self
                .layout
                .origin
                .cell(self.row, self.layout.positions[index], column),
            None => self.location().column(column),
        }
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
    /// `sheet`: the sheet of a spreadsheet to read; default: the first.
    pub sheet: Option<String>,
}

/// Where rows come from: CSV syntax or a spreadsheet's sheet.
#[derive(Debug)]
enum Source {
    /// Boxed: the csv reader's buffers make it far larger than a sheet's rows.
    Csv(Box<CsvRows>),
    Sheet(SheetRows),
}

impl Source {
    fn next_record(&mut self) -> std::io::Result<Option<usize>> {
        match self {
            Source::Csv(csv) => csv.next_record(),
            Source::Sheet(sheet) => Ok(sheet.next_record()),
        }
    }

    fn cells(&self) -> Vec<Cell<'_>> {
        match self {
            Source::Csv(csv) => csv.cells(),
            Source::Sheet(sheet) => sheet.cells(),
        }
    }

    fn lines(&self) -> usize {
        match self {
            Source::Csv(csv) => csv.lines(),
            Source::Sheet(sheet) => sheet.lines(),
        }
    }
}

/// An open recipients file. Problems with the file as a whole come out of [`Recipients::open`];
/// problems with a row come out of the iterator, one `Err(Vec<Problem>)` per bad row.
#[derive(Debug)]
pub struct Recipients {
    display: std::path::PathBuf,
    source: Source,
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
        let (mut source, origin) = if spreadsheet::is_spreadsheet(display) {
            let sheet = SheetRows::open(path, display, options.sheet.as_deref())?;
            let origin = Origin {
                file: display.to_path_buf(),
                sheet: Some(sheet.sheet().to_owned()),
            };
            (Source::Sheet(sheet), origin)
        } else {
            let csv = CsvRows::open(path, display, options.encoding)?;
            (Source::Csv(Box::new(csv)), Origin::csv(display))
        };
        let rules = read_header(&mut source, origin)?;
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

    /// The detected delimiter of a CSV file: `b','`, `b';'` or `b'\t'`; `None` for a
    /// spreadsheet.
    pub fn delimiter(&self) -> Option<u8> {
        match &self.source {
            Source::Csv(csv) => Some(csv.delimiter()),
            Source::Sheet(_) => None,
        }
    }
}

/// Reads the header (the first row that is not blank) and sets up the row rules.
fn read_header(source: &mut Source, origin: Origin) -> Result<RowRules, Error> {
    loop {
        match source.next_record() {
            Ok(Some(row)) => {
                let cells = source.cells();
                if !is_blank_row(&cells) {
                    return RowRules::from_header(origin, row, &cells, source.lines());
                }
            }
            Ok(None) => {
                let what = if origin.sheet.is_some() {
                    "sheet"
                } else {
                    "file"
                };
                return Err(Error::input(
                    origin.whole(),
                    format!(
                        "the {what} is empty: it needs a header row with at least an `email` column"
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::io(
                    &origin.file,
                    "could not read the recipients file",
                    e,
                ));
            }
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
