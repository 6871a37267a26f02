//! CSV as spreadsheets save it: the BOM, the delimiter, line endings, quoted cells, and rows
//! numbered as a spreadsheet shows them (a quoted cell over several lines is still one row,
//! blank lines count as rows).
//!
//! The file is read twice, both times streaming: once cheaply for what the csv crate does not
//! report (a quote never closed, a stray carriage return) and to count lines, then record by
//! record.

use std::io::{self, BufRead, BufReader};
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder, Terminator};
use encoding_rs::Encoding;

use super::encoding::{self, NotText, Plan, RESAVE_AS_UTF8, TextReader};
use super::rules::{Cell, column_letter};
use crate::error::{Error, Location};

/// Delimiters we detect, in tie-break order (comma wins ties).
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];
/// The hint for a file spreadsheets would not have written this way.
pub(super) const SAVE_AS_UTF8: &str = "save the file as 'CSV UTF-8' in your spreadsheet";

/// The records of an open CSV file.
#[derive(Debug)]
pub(super) struct CsvRows {
    reader: csv::Reader<io::Chain<TextReader, &'static [u8]>>,
    record: ByteRecord,
    rows: RowCounter,
    delimiter: u8,
    /// The number of lines, an upper bound on the number of rows.
    lines: usize,
}

impl CsvRows {
    /// Opens the file at `path` and settles what concerns it as a whole (encoding, delimiter,
    /// line endings, unclosed quotes); `display` names it in messages. `declared` is the
    /// `encoding` setting.
    pub(super) fn open(
        path: &Path,
        display: &Path,
        declared: Option<&'static Encoding>,
    ) -> Result<CsvRows, Error> {
        let read_error = |e| Error::io(display, "could not read the recipients file", e);
        let start = encoding::read_start(path, 4).map_err(read_error)?;
        let plan = Plan::for_file(&start, declared);
        if plan.looks_like_utf16(&start) {
            return Err(Error::input(
                Location::file(display).row(1),
                plan.not_text_message(path),
            ));
        }
        if let Plan::Decode {
            encoding,
            declared: true,
            ..
        } = plan
            && encoding::is_utf8_beyond_ascii(path).map_err(read_error)?
        {
            return Err(Error::input(
                Location::file(display),
                format!(
                    "the file is UTF-8 text, but encoding = \"{}\" under [campaign] in \
                     envoi.toml says otherwise, and reading it so would garble every accented \
                     letter; remove the setting",
                    encoding.name()
                ),
            ));
        }

        // The first line decides the delimiter; text that does not fit is the prescan's to
        // report, with its row.
        let delimiter = match detect_delimiter(&mut BufReader::new(
            encoding::open_text(path, plan).map_err(read_error)?,
        )) {
            Ok(delimiter) => delimiter,
            Err(e) if NotText::is(&e) => DELIMITERS[0],
            Err(e) => return Err(read_error(e)),
        };
        let mut input = BufReader::new(encoding::open_text(path, plan).map_err(read_error)?);
        let lines = prescan(&mut input, delimiter, display).map_err(|e| match e {
            ScanError::Io(e) => read_error(e),
            ScanError::NotText { row } => Error::input(
                Location::file(display).row(row),
                plan.not_text_message(path),
            ),
            ScanError::Input(e) => e,
        })?;

        // Only LF ends a record: a CR before it stays in the last cell and is trimmed away (and
        // the prescan refused any other CR outside quotes). Every LF is then a line for csv's
        // line counter, which is what `RowCounter` relies on. The extra LF ends a last row that
        // has no line break; after one that has, it is a blank line that csv skips.
        let text = encoding::open_text(path, plan).map_err(read_error)?;
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .terminator(Terminator::Any(b'\n'))
            .from_reader(io::Read::chain(text, &b"\n"[..]));
        Ok(CsvRows {
            reader,
            record: ByteRecord::new(),
            rows: RowCounter::default(),
            delimiter,
            lines,
        })
    }

    pub(super) fn delimiter(&self) -> u8 {
        self.delimiter
    }

    pub(super) fn lines(&self) -> usize {
        self.lines
    }

    /// Reads the next record; its spreadsheet row, or `None` at the end of the file.
    pub(super) fn next_record(&mut self) -> io::Result<Option<usize>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => Ok(Some(
                self.rows
                    .row_of(&self.record, self.reader.position().line()),
            )),
            Ok(false) => Ok(None),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// The cells of the record last read.
    pub(super) fn cells(&self) -> Vec<Cell<'_>> {
        self.record
            .iter()
            .map(|cell| match std::str::from_utf8(cell) {
                Ok(text) => Cell::Text(text),
                Err(_) => Cell::Unreadable {
                    shown: String::from_utf8_lossy(cell).into_owned(),
                    what: format!("is not valid UTF-8 text; {RESAVE_AS_UTF8}"),
                },
            })
            .collect()
    }
}

/// Turns csv's line numbers into spreadsheet rows.
///
/// With LF as the only record terminator, csv counts every LF it has consumed, including the
/// blank lines it skips and the line breaks inside quoted cells. The spreadsheet row of a
/// record is one more than the number of LFs *outside* quoted cells before it; so subtract
/// the LFs inside the cells of every record so far.
#[derive(Debug, Default)]
struct RowCounter {
    newlines_in_cells: u64,
}

impl RowCounter {
    /// `line_after` is csv's line number once `record` (and its terminating LF) is consumed.
    fn row_of(&mut self, record: &ByteRecord, line_after: u64) -> usize {
        self.newlines_in_cells += record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        // line_after = 1 + (LFs before the record) + (LFs in its cells) + its own LF.
        let row = line_after.saturating_sub(1 + self.newlines_in_cells);
        usize::try_from(row).unwrap_or(usize::MAX)
    }
}

/// Picks the delimiter that occurs most often outside quotes on the first non-blank line;
/// ties go to the comma (which is also the answer for a one-column file).
fn detect_delimiter(input: &mut impl BufRead) -> io::Result<u8> {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut in_quotes = false;
    let mut line_has_text = false;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let length = buffer.len();
        for &byte in buffer {
            match byte {
                b'"' => in_quotes = !in_quotes,
                b'\n' if !in_quotes => {
                    if line_has_text {
                        return Ok(most_frequent(&counts));
                    }
                    counts = [0; DELIMITERS.len()];
                }
                _ if in_quotes => {}
                _ => {
                    if let Some(i) = DELIMITERS.iter().position(|&d| d == byte) {
                        counts[i] += 1;
                    }
                }
            }
            line_has_text |= !byte.is_ascii_whitespace();
        }
        input.consume(length);
    }
    Ok(most_frequent(&counts))
}

fn most_frequent(counts: &[usize; DELIMITERS.len()]) -> u8 {
    let mut best = 0;
    for (i, &count) in counts.iter().enumerate() {
        if count > counts[best] {
            best = i;
        }
    }
    DELIMITERS[best]
}

enum ScanError {
    Io(io::Error),
    /// Text that does not fit the file's encoding, first in this row.
    NotText {
        row: usize,
    },
    Input(Error),
}

/// Where the prescan is within a record; mirrors csv-core's states for the same settings
/// (quoting with doubled quotes, no escape character, LF terminator).
#[derive(Clone, Copy, PartialEq)]
enum ScanState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: either the first of a doubled quote or the closing one.
    QuoteInQuoted,
}

/// Reads the whole file once, cheaply, for what csv does not report: a quote that is never
/// closed (csv lets the cell run to the end of the file), and a CR that does not end a line
/// (old Mac line endings, which we do not read as rows).
/// Returns the number of lines, an upper bound on the number of rows.
fn prescan(input: &mut impl BufRead, delimiter: u8, display: &Path) -> Result<usize, ScanError> {
    let mut state = ScanState::FieldStart;
    let (mut row, mut column) = (1usize, 0usize);
    let mut opened_at = (1usize, 0usize);
    let mut after_cr = false;
    loop {
        let buffer = input.fill_buf().map_err(|e| match NotText::is(&e) {
            true => ScanError::NotText { row },
            false => ScanError::Io(e),
        })?;
        if buffer.is_empty() {
            break;
        }
        let length = buffer.len();
        for &byte in buffer {
            if after_cr && byte != b'\n' {
                return Err(ScanError::Input(Error::input(
                    Location::file(display).row(row),
                    format!(
                        "this row contains a carriage return that does not end a line (old Mac \
                         line endings?); {SAVE_AS_UTF8}"
                    ),
                )));
            }
            after_cr = false;
            state = match (state, byte) {
                (ScanState::Quoted, b'"') => ScanState::QuoteInQuoted,
                (ScanState::Quoted, _) => ScanState::Quoted,
                (ScanState::QuoteInQuoted, b'"') => ScanState::Quoted,
                (ScanState::FieldStart, b'"') => {
                    opened_at = (row, column);
                    ScanState::Quoted
                }
                (_, b'\n') => {
                    row += 1;
                    column = 0;
                    ScanState::FieldStart
                }
                (_, b) if b == delimiter => {
                    column += 1;
                    ScanState::FieldStart
                }
                (_, b) => {
                    after_cr = b == b'\r';
                    ScanState::Unquoted
                }
            };
        }
        input.consume(length);
    }
    if state == ScanState::Quoted {
        let (row, column) = opened_at;
        return Err(ScanError::Input(Error::input(
            Location::file(display),
            format!(
                "a quoted cell starting in row {row}, column {} is never closed; add the \
                 missing closing quote (\") in that cell",
                column_letter(column)
            ),
        )));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_ties_go_to_comma_and_quoted_ones_do_not_count() {
        let detect = |text: &str| detect_delimiter(&mut io::Cursor::new(text)).unwrap();
        assert_eq!(detect("email;name,title\n"), b',');
        assert_eq!(detect("email\n"), b',');
        assert_eq!(detect("\"a;b;c\",email\n"), b',');
        assert_eq!(detect("email\tname;x\ta\n"), b'\t');
        // The first line with text decides, not a blank line before it nor the lines after.
        assert_eq!(detect("\n \nemail;name\na,b,c,d\n"), b';');
        // A quoted header cell over two lines is still the header line.
        assert_eq!(detect("\"e\nmail,x\";n;x\n"), b';');
    }
}
