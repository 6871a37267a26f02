//! The rules every recipients row follows, whatever file it comes from: the header names the
//! columns, each data row is checked cell by cell (size, `email`, `language`, duplicates), and
//! every problem names its row and column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::address::check_email;
use super::{MAX_CELL_BYTES, Recipient};
use crate::error::{Error, Location, Problem};
use crate::locale::is_language_tag;
use crate::text::plural;

/// One cell as a source read it, before trimming.
#[derive(Debug)]
pub(super) enum Cell<'a> {
    Text(&'a str),
    /// A cell that cannot be read as text. `shown` renders it for messages; `what` completes
    /// "this cell ..." with what is wrong and what to do.
    Unreadable {
        shown: String,
        what: String,
    },
}

impl Cell<'_> {
    /// A cell that holds nothing but whitespace (or nothing).
    fn is_blank(&self) -> bool {
        matches!(self, Cell::Text(text) if text.trim().is_empty())
    }

    fn shown(&self) -> &str {
        match self {
            Cell::Text(text) => text,
            Cell::Unreadable { shown, .. } => shown,
        }
    }
}

/// A row whose every cell is blank: a spreadsheet shows it as an empty row.
pub(super) fn is_blank_row(cells: &[Cell<'_>]) -> bool {
    cells.iter().all(Cell::is_blank)
}

/// Which file (and sheet) rows come from, to name places as the user sees them.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub(super) file: PathBuf,
    /// The sheet of a spreadsheet; its messages name columns by letter too, as it shows them.
    pub(super) sheet: Option<String>,
}

impl Origin {
    pub(super) fn csv(file: &Path) -> Origin {
        Origin {
            file: file.to_path_buf(),
            sheet: None,
        }
    }

    /// The file (and sheet).
    pub(super) fn whole(&self) -> Location {
        let location = Location::file(&self.file);
        match &self.sheet {
            Some(sheet) => location.sheet(sheet),
            None => location,
        }
    }

    pub(super) fn row(&self, row: usize) -> Location {
        self.whole().row(row)
    }

    /// The cell of `row` in the column at `position`, whose header is `name`.
    pub(super) fn cell(&self, row: usize, position: usize, name: &str) -> Location {
        match self.sheet {
            Some(_) => self.row(row).column_at(column_letter(position), name),
            None => self.row(row).column(name),
        }
    }
}

/// The columns of a recipients file that have a name, shared by every row.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) origin: Origin,
    /// The position of each named column in the row (0 is column A), aligned with `names`.
    pub(super) positions: Vec<usize>,
    /// Header names in file order, trimmed; `email` (and `language`) normalised to lower case.
    pub(super) names: Vec<String>,
    /// Index of `email` in `names`.
    pub(super) email: usize,
    /// Index of `language` in `names`, if there is such a column.
    pub(super) language: Option<usize>,
}

/// The first 96 bits of SHA-256 of an address: two different addresses share one with
/// probability 2^-96 per pair (below 10^-19 for a million rows), so a duplicate reported is a
/// real duplicate. With the row as `u32`, an entry of the map is 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AddressDigest([u8; 12]);

impl AddressDigest {
    fn of(address: &str) -> AddressDigest {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(address.as_bytes());
        let mut first = [0; 12];
        first.copy_from_slice(&digest[..12]);
        AddressDigest(first)
    }
}

/// The header of a file, and what its rows so far have settled (the addresses already seen).
#[derive(Debug)]
pub(super) struct RowRules {
    layout: Arc<Layout>,
    /// Header names by position, `""` for unnamed columns.
    raw_names: Vec<String>,
    header_row: usize,
    /// Digest of the lower-cased address -> the row it was first seen in. A digest, not the
    /// address: at 100,000 rows the addresses themselves were most of envoi's memory.
    seen: HashMap<AddressDigest, u32>,
}

impl RowRules {
    /// Reads the header row (spreadsheet row `row`) of the file `origin` names. `rows` is an
    /// upper bound on the number of data rows, to size the table of addresses seen.
    pub(super) fn from_header(
        origin: Origin,
        row: usize,
        cells: &[Cell<'_>],
        rows: usize,
    ) -> Result<RowRules, Error> {
        let here = || origin.row(row);
        let mut raw_names = Vec::with_capacity(cells.len());
        for (position, cell) in cells.iter().enumerate() {
            let name = match cell {
                Cell::Text(name) => name.trim(),
                Cell::Unreadable { what, .. } => {
                    return Err(Error::input(
                        here(),
                        format!("the name of column {} {what}", column_letter(position)),
                    ));
                }
            };
            // Templates and envoi itself look these up by their lower-case names.
            let name = match name.to_lowercase().as_str() {
                lower @ ("email" | "language") => lower.to_owned(),
                _ => name.to_owned(),
            };
            if !name.is_empty()
                && let Some(first) = raw_names.iter().position(|seen| *seen == name)
            {
                return Err(Error::input(
                    here(),
                    format!(
                        "columns {} and {} are both named \"{name}\"; each column needs its own \
                         name: rename or delete one of them",
                        column_letter(first),
                        column_letter(position)
                    ),
                ));
            }
            raw_names.push(name);
        }

        let (positions, names): (Vec<usize>, Vec<String>) = raw_names
            .iter()
            .enumerate()
            .filter(|(_, name)| !name.is_empty())
            .map(|(position, name)| (position, name.clone()))
            .unzip();
        let Some(email) = names.iter().position(|name| name == "email") else {
            return Err(Error::input(here(), missing_email_message(&names)));
        };
        let language = names.iter().position(|name| name == "language");
        Ok(RowRules {
            layout: Arc::new(Layout {
                origin,
                positions,
                names,
                email,
                language,
            }),
            raw_names,
            header_row: row,
            // Sized once, as growing holds the old and the new table at the same time; the cap
            // keeps a file of blank lines from reserving memory for rows it does not have.
            seen: HashMap::with_capacity(rows.min(1 << 21)),
        })
    }

    /// The named columns, in file order.
    pub(super) fn headers(&self) -> &[String] {
        &self.layout.names
    }

    fn location(&self, row: usize) -> Location {
        self.layout.origin.row(row)
    }

    /// The cell of `row` in the column at `position`, named `name`.
    fn cell(&self, row: usize, position: usize, name: &str) -> Location {
        self.layout.origin.cell(row, position, name)
    }

    /// Checks one data row, found at spreadsheet row `row`.
    pub(super) fn check_row(
        &mut self,
        row: usize,
        cells: &[Cell<'_>],
    ) -> Result<Recipient, Vec<Problem>> {
        let mut problems = Vec::new();
        let named_width = self
            .raw_names
            .iter()
            .rposition(|name| !name.is_empty())
            .map_or(0, |last| last + 1);
        if cells.len() < named_width {
            problems.push(Problem::new(
                self.location(row),
                format!(
                    "this row has {} but the header has {named_width}; a cell is missing or two \
                     were merged: check the separators in this row",
                    plural(cells.len(), "cell")
                ),
            ));
        }

        let layout = Arc::clone(&self.layout);
        let mut values = Vec::with_capacity(layout.names.len());
        // Cells that cannot be read get no further check (their problem is already said).
        let mut readable = vec![true; layout.names.len()];
        let mut stray_reported = false;
        for (position, cell) in cells.iter().enumerate() {
            match (
                self.raw_names.get(position).filter(|name| !name.is_empty()),
                cell,
            ) {
                (Some(name), Cell::Text(text)) if text.len() > MAX_CELL_BYTES => {
                    problems.push(Problem::new(
                        self.cell(row, position, name),
                        format!(
                            "this cell holds {:.1} MB of text, more than the {} MB a cell may \
                             hold; shorten it in the spreadsheet (a long text belongs in a \
                             template partial or an attachment)",
                            text.len() as f64 / 1e6,
                            MAX_CELL_BYTES / (1024 * 1024)
                        ),
                    ));
                    readable[values.len()] = false;
                    values.push(String::new());
                }
                (Some(_), Cell::Text(text)) => values.push(text.trim().to_owned()),
                (Some(name), Cell::Unreadable { what, .. }) => {
                    problems.push(Problem::new(
                        self.cell(row, position, name),
                        format!("this cell {what}"),
                    ));
                    readable[values.len()] = false;
                    values.push(String::new());
                }
                (None, cell) if !stray_reported && !cell.is_blank() => {
                    stray_reported = true;
                    problems.push(Problem::new(
                        self.location(row),
                        format!(
                            "column {letter} has no name in the header row but this row has {} \
                             in it; give column {letter} a name in row {} or empty the cell",
                            quote(cell.shown()),
                            self.header_row,
                            letter = column_letter(position),
                        ),
                    ));
                }
                (None, _) => {}
            }
        }
        // A short row (already reported) lacks its last cells.
        values.resize(layout.names.len(), String::new());

        let email_location = || self.cell(row, layout.positions[layout.email], "email");
        if readable[layout.email] {
            match check_email(&values[layout.email]) {
                Err(problem) => problems.push(Problem::new(email_location(), problem.to_string())),
                Ok(key) => {
                    let key = AddressDigest::of(&key);
                    if let Some(first) = self.seen.get(&key) {
                        problems.push(Problem::new(
                            email_location(),
                            format!(
                                "{} is also in row {first}; each addressee must appear once: \
                                 delete one of the rows",
                                quote(&values[layout.email])
                            ),
                        ));
                    } else {
                        // A spreadsheet stops at 1,048,576 rows; a CSV past 4 billion lines
                        // would only make the "also in row" number wrong, never hide a row.
                        self.seen
                            .insert(key, u32::try_from(row).unwrap_or(u32::MAX));
                    }
                }
            }
        }

        let mut language = None;
        if let Some(index) = layout.language.filter(|&index| readable[index]) {
            let position = layout.positions[index];
            let code = &values[index];
            if is_language_tag(code) {
                language = Some(code.to_ascii_lowercase());
            } else if !code.is_empty() {
                problems.push(Problem::new(
                    self.cell(row, position, "language"),
                    format!(
                        "{} is not a language code; use a code such as fr, de or pt-BR, \
                         as in the template name letter.fr.hbs",
                        quote(code)
                    ),
                ));
            }
        }

        if problems.is_empty() {
            Ok(Recipient {
                row,
                layout,
                values,
                language,
            })
        } else {
            Err(problems)
        }
    }
}

fn missing_email_message(names: &[String]) -> String {
    let found = if names.is_empty() {
        "the header row has no column names".to_owned()
    } else {
        let list: Vec<String> = names.iter().map(|name| quote(name)).collect();
        format!("the columns found are {}", list.join(", "))
    };
    let hint = if names.iter().any(|name| name.contains('@')) {
        "the first row looks like data: add a header row above it, with a column named email"
    } else {
        "add a column named email, with one address per row"
    };
    format!("there is no email column ({found}); {hint}")
}

/// Spreadsheet column name for a 0-based position: A, B, ..., Z, AA, AB, ...
pub(super) fn column_letter(position: usize) -> String {
    let mut letters = Vec::new();
    let mut n = position + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// A cell value in double quotes for a message, shortened if long.
pub(super) fn quote(value: &str) -> String {
    const MAX: usize = 60;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("\"{}…\"", &value[..end]),
        None => format!("\"{value}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_follow_spreadsheets() {
        let letters: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
            .into_iter()
            .map(column_letter)
            .collect();
        assert_eq!(
            letters,
            ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
        );
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(100);
        assert_eq!(quote(&long), format!("\"{}…\"", "x".repeat(60)));
        assert_eq!(quote("Əli"), "\"Əli\"");
    }
}
