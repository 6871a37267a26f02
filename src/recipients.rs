//! Loading `recipients.csv` as SPEC ("recipients.csv") describes it, one row at a time.
//!
//! [`Recipients::open`] reads the header and settles everything that concerns the whole file
//! (delimiter, BOM, line endings, unclosed quotes, the `email` column); iterating it then yields
//! one [`Recipient`] per data row, or every problem of a bad row, so that `check` can list them
//! all. Memory does not grow with the number of rows, except for a 16-byte digest of each
//! address already seen (to catch an addressee listed twice).
//!
//! Rows are numbered as a spreadsheet shows them: the header is row 1, a quoted cell that spans
//! several lines is still one row, and blank lines count as rows (they are skipped silently).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use csv::{ByteRecord, ReaderBuilder, Terminator};

use crate::error::{Error, Location, Problem};

const BOM: &[u8] = b"\xEF\xBB\xBF";

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
/// Delimiters we detect, in tie-break order (comma wins ties).
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];
/// The hint for any encoding problem: spreadsheets export UTF-8 under this name.
const SAVE_AS_UTF8: &str = "save the file as 'CSV UTF-8' in your spreadsheet";
/// The most a cell may hold, in bytes of UTF-8. A name, a salutation or a paragraph for one
/// addressee is a few kilobytes at most; a cell of megabytes is a paste gone wrong or a hostile
/// file, and would be copied into every header and part it is used in.
pub const MAX_CELL_BYTES: usize = 1024 * 1024;

/// The columns of a recipients file that have a name, shared by every row.
#[derive(Debug)]
struct Layout {
    /// Header names in file order, trimmed; `email` (and `language`) normalised to lower case.
    names: Vec<String>,
    /// Index of `email` in `names`.
    email: usize,
    /// Index of `language` in `names`, if there is such a column.
    language: Option<usize>,
}

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

/// An open recipients file. Problems with the file as a whole come out of [`Recipients::open`];
/// problems with a row come out of the iterator, one `Err(Vec<Problem>)` per bad row.
#[derive(Debug)]
pub struct Recipients {
    display: PathBuf,
    reader: csv::Reader<io::Chain<File, &'static [u8]>>,
    record: ByteRecord,
    rows: RowCounter,
    delimiter: u8,
    layout: Arc<Layout>,
    /// Header names by position, `""` for unnamed columns.
    raw_names: Vec<String>,
    header_row: usize,
    /// Digest of the lower-cased address -> the row it was first seen in. A digest, not the
    /// address: at 100,000 rows the addresses themselves were most of envoi's memory.
    seen: HashMap<AddressDigest, u32>,
    done: bool,
}

impl Recipients {
    /// Opens and checks the file at `path`; `display` is how messages name it
    /// (e.g. `recipients.csv`).
    pub fn open(path: &Path, display: &Path) -> Result<Recipients, Error> {
        let read_error = |e| Error::io(display, "could not read the recipients file", e);
        let file = File::open(path).map_err(read_error)?;
        let mut input = BufReader::new(file);

        let bom = skip_bom(&mut input).map_err(read_error)?;
        let delimiter = detect_delimiter(&mut input).map_err(read_error)?;
        input.seek(SeekFrom::Start(bom)).map_err(read_error)?;
        let lines = prescan(&mut input, delimiter, display).map_err(|e| match e {
            ScanError::Io(e) => read_error(e),
            ScanError::Input(e) => e,
        })?;

        // The BOM is skipped here rather than left to csv, which strips it only when it arrives
        // in the first buffer it reads.
        let mut file = input.into_inner();
        file.seek(SeekFrom::Start(bom)).map_err(read_error)?;
        // Only LF ends a record: a CR before it stays in the last cell and is trimmed away (and
        // the prescan refused any other CR outside quotes). Every LF is then a line for csv's
        // line counter, which is what `RowCounter` relies on. The extra LF ends a last row that
        // has no line break; after one that has, it is a blank line that csv skips.
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .terminator(Terminator::Any(b'\n'))
            .from_reader(file.chain(&b"\n"[..]));

        let mut recipients = Recipients {
            display: display.to_path_buf(),
            reader,
            record: ByteRecord::new(),
            rows: RowCounter::default(),
            delimiter,
            layout: Arc::new(Layout {
                names: Vec::new(),
                email: 0,
                language: None,
            }),
            raw_names: Vec::new(),
            header_row: 1,
            // Sized once, as growing holds the old and the new table at the same time; the cap
            // keeps a file of blank lines from reserving memory for rows it does not have.
            seen: HashMap::with_capacity(lines.min(1 << 21)),
            done: false,
        };
        recipients.read_header()?;
        Ok(recipients)
    }

    /// The named columns, in file order (`email` normalised to lower case). Columns without a
    /// name (as spreadsheets export after the last real column) are left out.
    pub fn headers(&self) -> &[String] {
        &self.layout.names
    }

    /// The detected delimiter: `b','`, `b';'` or `b'\t'`.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Reads the next record into `self.record`; `Ok(None)` at the end of the file.
    fn read_record(&mut self) -> Result<Option<usize>, io::Error> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => Ok(Some(
                self.rows
                    .row_of(&self.record, self.reader.position().line()),
            )),
            Ok(false) => Ok(None),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    fn location(&self) -> Location {
        Location::file(&self.display)
    }

    /// Reads the header (the first row that is not blank) and builds the layout.
    fn read_header(&mut self) -> Result<(), Error> {
        let row = loop {
            match self.read_record() {
                Ok(Some(row)) if !is_blank_record(&self.record) => break row,
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(Error::input(
                        self.location(),
                        "the file is empty: it needs a header row with at least an `email` column",
                    ));
                }
                Err(e) => {
                    return Err(Error::io(
                        &self.display,
                        "could not read the recipients file",
                        e,
                    ));
                }
            }
        };
        self.header_row = row;
        let here = || Location::file(&self.display).row(row);

        let mut raw_names = Vec::with_capacity(self.record.len());
        for (position, cell) in self.record.iter().enumerate() {
            let Ok(name) = std::str::from_utf8(cell) else {
                return Err(Error::input(
                    here(),
                    format!(
                        "the name of column {} is not valid UTF-8 text; {SAVE_AS_UTF8}",
                        column_letter(position)
                    ),
                ));
            };
            let name = name.trim();
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

        let names: Vec<String> = raw_names
            .iter()
            .filter(|name| !name.is_empty())
            .cloned()
            .collect();
        let Some(email) = names.iter().position(|name| name == "email") else {
            return Err(Error::input(here(), missing_email_message(&names)));
        };
        let language = names.iter().position(|name| name == "language");
        self.layout = Arc::new(Layout {
            names,
            email,
            language,
        });
        self.raw_names = raw_names;
        Ok(())
    }

    /// Checks the data row in `self.record`, found at spreadsheet row `row`.
    fn check_row(&mut self, row: usize) -> Result<Recipient, Vec<Problem>> {
        let mut problems = Vec::new();
        let named_width = self
            .raw_names
            .iter()
            .rposition(|name| !name.is_empty())
            .map_or(0, |last| last + 1);
        if self.record.len() < named_width {
            problems.push(Problem::new(
                self.location().row(row),
                format!(
                    "this row has {} but the header has {named_width}; a cell is missing or two \
                     were merged: check the separators in this row",
                    plural(self.record.len(), "cell")
                ),
            ));
        }

        let layout = Arc::clone(&self.layout);
        let mut values = Vec::with_capacity(layout.names.len());
        // Cells that are not valid UTF-8 get no further check (their problem is already said).
        let mut readable = vec![true; layout.names.len()];
        let mut stray_reported = false;
        for (position, cell) in self.record.iter().enumerate() {
            match self.raw_names.get(position).filter(|name| !name.is_empty()) {
                Some(name) if cell.len() > MAX_CELL_BYTES => {
                    problems.push(Problem::new(
                        self.location().row(row).column(name.as_str()),
                        format!(
                            "this cell holds {:.1} MB of text, more than the {} MB a cell may \
                             hold; shorten it in the spreadsheet (a long text belongs in a \
                             template partial or an attachment)",
                            cell.len() as f64 / 1e6,
                            MAX_CELL_BYTES / (1024 * 1024)
                        ),
                    ));
                    readable[values.len()] = false;
                    values.push(String::new());
                }
                Some(name) => match std::str::from_utf8(cell) {
                    Ok(text) => values.push(text.trim().to_owned()),
                    Err(_) => {
                        problems.push(Problem::new(
                            self.location().row(row).column(name.as_str()),
                            format!("this cell is not valid UTF-8 text; {SAVE_AS_UTF8}"),
                        ));
                        readable[values.len()] = false;
                        values.push(String::new());
                    }
                },
                None if !stray_reported && !is_blank(cell) => {
                    stray_reported = true;
                    problems.push(Problem::new(
                        self.location().row(row),
                        format!(
                            "column {letter} has no name in the header row but this row has {} \
                             in it; give column {letter} a name in row {} or empty the cell",
                            quote(&String::from_utf8_lossy(cell)),
                            self.header_row,
                            letter = column_letter(position),
                        ),
                    ));
                }
                None => {}
            }
        }
        // A short row (already reported) lacks its last cells.
        values.resize(layout.names.len(), String::new());

        let email_location = || Location::file(&self.display).row(row).column("email");
        if readable[layout.email] {
            match check_email(&values[layout.email]) {
                Err(message) => problems.push(Problem::new(email_location(), message)),
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
            let code = &values[index];
            if is_language_code(code) {
                language = Some(code.to_ascii_lowercase());
            } else if !code.is_empty() {
                problems.push(Problem::new(
                    self.location().row(row).column("language"),
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

impl Iterator for Recipients {
    type Item = Result<Recipient, Vec<Problem>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.read_record() {
                Ok(Some(_)) if is_blank_record(&self.record) => continue,
                Ok(Some(row)) => return Some(self.check_row(row)),
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(vec![Problem::new(
                        self.location(),
                        format!("could not read the file any further: {e}"),
                    )]));
                }
            }
        }
        None
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

/// Consumes a UTF-8 BOM at the start of `input`; returns its length (0 or 3).
fn skip_bom(input: &mut BufReader<File>) -> io::Result<u64> {
    let mut start = [0u8; 3];
    let mut filled = 0;
    while filled < start.len() {
        match input.read(&mut start[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    let bom = if start[..filled] == *BOM { 3 } else { 0 };
    input.seek(SeekFrom::Start(bom))?;
    Ok(bom)
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
        let buffer = input.fill_buf().map_err(ScanError::Io)?;
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

/// Checks an `email` cell; returns the key that identifies the addressee (lower case).
fn check_email(email: &str) -> Result<String, String> {
    if email.is_empty() {
        return Err("the email cell is empty; fill in the address or delete the row".to_owned());
    }
    if email.contains(['\r', '\n']) {
        return Err(format!(
            "{} runs over several lines; put the address on one line",
            quote(email)
        ));
    }
    if email.contains(['<', '>']) {
        return Err(format!(
            "{} is not a bare email address; put only the address in this column, and the \
             person's name in the `name` column",
            quote(email)
        ));
    }
    if lettre::Address::from_str(email).is_err() {
        let hint = if email.contains([',', ';']) {
            "put one address per row; further addressees of the same letter go in the `cc` column"
        } else {
            "correct it in the spreadsheet"
        };
        return Err(format!("{} is not an email address; {hint}", quote(email)));
    }
    Ok(email.to_lowercase())
}

/// `^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`: the code selects template files, so it must never
/// hold a path character.
fn is_language_code(code: &str) -> bool {
    let mut parts = code.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|part| {
            (2..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        })
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
fn column_letter(position: usize) -> String {
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
fn quote(value: &str) -> String {
    const MAX: usize = 60;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("\"{}…\"", &value[..end]),
        None => format!("\"{value}\""),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A cell that holds nothing but whitespace (or nothing).
fn is_blank(cell: &[u8]) -> bool {
    std::str::from_utf8(cell).is_ok_and(|text| text.trim().is_empty())
}

/// A row whose every cell is blank: a spreadsheet shows it as an empty row.
fn is_blank_record(record: &ByteRecord) -> bool {
    record.iter().all(is_blank)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAME: &str = "recipients.csv";

    /// Writes `content` to a fresh file and hands the opened recipients to `f`.
    fn with_file<T>(content: &[u8], f: impl FnOnce(Result<Recipients, Error>) -> T) -> T {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipients.csv");
        std::fs::write(&path, content).unwrap();
        f(Recipients::open(&path, Path::new(NAME)))
    }

    /// Every good row of a file that opens.
    fn good_rows(content: &str) -> Vec<Recipient> {
        with_file(content.as_bytes(), |opened| {
            opened
                .expect("file opens")
                .map(|row| row.unwrap_or_else(|p| panic!("unexpected problems: {p:?}")))
                .collect()
        })
    }

    /// Every row problem of a file that opens, as the user reads them.
    fn row_problems(content: &[u8]) -> Vec<String> {
        with_file(content, |opened| {
            opened
                .expect("file opens")
                .filter_map(Result::err)
                .flatten()
                .map(|problem| problem.to_string())
                .collect()
        })
    }

    /// The message of a file that does not open.
    fn open_error(content: &[u8]) -> String {
        with_file(content, |opened| {
            opened.expect_err("file must not open").to_string()
        })
    }

    fn row_numbers(content: &str) -> Vec<usize> {
        good_rows(content).iter().map(Recipient::row).collect()
    }

    #[test]
    fn reads_rows_under_their_headers() {
        let rows = good_rows(
            "email,organisation,name\n\
             a@one.example,One Org,Ann\n\
             b@two.example,Two Org,Bob\n",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row(), 2);
        assert_eq!(rows[0].email(), "a@one.example");
        assert_eq!(rows[0].get("organisation"), Some("One Org"));
        assert_eq!(rows[0].get("nope"), None);
        assert_eq!(rows[0].language(), None);
        assert_eq!(
            rows[1].columns().collect::<Vec<_>>(),
            [
                ("email", "b@two.example"),
                ("organisation", "Two Org"),
                ("name", "Bob")
            ]
        );
        assert_eq!(
            rows[1].to_json(),
            serde_json::json!({"email": "b@two.example", "organisation": "Two Org", "name": "Bob"})
        );
    }

    #[test]
    fn header_only_yields_no_rows() {
        assert!(good_rows("email,name\n").is_empty());
        assert!(good_rows("email,name").is_empty());
    }

    #[test]
    fn a_bom_is_not_part_of_the_first_header() {
        with_file(b"\xEF\xBB\xBFemail,name\na@x.example,Ann\n", |opened| {
            let mut recipients = opened.unwrap();
            assert_eq!(recipients.headers(), ["email", "name"]);
            let row = recipients.next().unwrap().unwrap();
            assert_eq!((row.row(), row.email()), (2, "a@x.example"));
        });
        // A quoted first cell right after the BOM is still a quoted cell.
        with_file(
            b"\xEF\xBB\xBF\"email\";name\n\"a@x.example\";Ann\n",
            |opened| {
                let mut recipients = opened.unwrap();
                assert_eq!(recipients.delimiter(), b';');
                assert_eq!(recipients.next().unwrap().unwrap().email(), "a@x.example");
            },
        );
    }

    #[test]
    fn detects_semicolon_and_tab() {
        for (content, delimiter) in [
            ("email;name;title\na@x.example;Ann, Jr.;Dr\n", b';'),
            ("email\tname\ttitle\na@x.example\tAnn, Jr.\tDr\n", b'\t'),
        ] {
            with_file(content.as_bytes(), |opened| {
                let mut recipients = opened.unwrap();
                assert_eq!(recipients.delimiter(), delimiter);
                let row = recipients.next().unwrap().unwrap();
                assert_eq!(row.get("name"), Some("Ann, Jr."));
                assert_eq!(row.get("title"), Some("Dr"));
            });
        }
    }

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

    #[test]
    fn reads_crlf_files_without_stray_carriage_returns() {
        let rows = good_rows("email,name\r\na@x.example,Ann\r\n\r\nb@x.example,\"Bo\r\nB\"\r\n");
        assert_eq!(rows[0].get("name"), Some("Ann"));
        assert_eq!(rows[1].row(), 4);
        // Inside quotes the text is kept as it is.
        assert_eq!(rows[1].get("name"), Some("Bo\r\nB"));
    }

    #[test]
    fn quoted_cells_keep_delimiters_quotes_and_line_breaks() {
        let rows = good_rows(
            "email,organisation,note\n\
             a@x.example,\"Office, Ltd\",\"He said \"\"yes\"\"\"\n\
             b@x.example,\"Two\nlines\",\"  padded  \"\n",
        );
        assert_eq!(rows[0].get("organisation"), Some("Office, Ltd"));
        assert_eq!(rows[0].get("note"), Some("He said \"yes\""));
        assert_eq!(rows[1].get("organisation"), Some("Two\nlines"));
        assert_eq!(rows[1].get("note"), Some("padded"));
    }

    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        let lf = "email,note\n\
                  a@x.example,\"line1\nline2\nline3\"\n\
                  \n\
                  \n\
                  b@x.example,plain\n\
                  ,\n\
                  c@x.example,\"x\n\ny\"\n\
                  d@x.example,z";
        assert_eq!(row_numbers(lf), [2, 5, 7, 8]);
        assert_eq!(row_numbers(&lf.replace('\n', "\r\n")), [2, 5, 7, 8]);
        // Blank lines before the header move everything down too.
        assert_eq!(row_numbers("\n\nemail\na@x.example\n"), [4]);
        // Problems carry the same numbers.
        assert_eq!(
            row_problems(b"email,note\na@x.example,\"1\n2\"\n\nnot-an-address,x\n"),
            [
                "recipients.csv, row 4, column \"email\": \"not-an-address\" is not an email address; correct it in the spreadsheet"
            ]
        );
    }

    #[test]
    fn trims_header_names_and_values() {
        let rows =
            good_rows("  Email  ; Name ;organisation \n  a@x.example ;  Ann  ; \u{a0}Org\u{a0}\n");
        assert_eq!(rows[0].email(), "a@x.example");
        assert_eq!(rows[0].get("Name"), Some("Ann"));
        assert_eq!(rows[0].get("organisation"), Some("Org"));
        with_file(b" Email ,Name\n", |opened| {
            assert_eq!(opened.unwrap().headers(), ["email", "Name"]);
        });
    }

    #[test]
    fn non_latin_values_round_trip_exactly() {
        let az = "Azərbaycan Respublikasının İnsan Hüquqları üzrə Müvəkkili (Ombudsman)";
        let ru = "Уполномоченный по правам человека";
        let ar = "مفوض حقوق الإنسان";
        let content = format!(
            "email,organisation,name\na@x.example,\"{az}\",{ru}\nb@x.example,{ar},Şəhla Əliyeva\n"
        );
        let rows = good_rows(&content);
        assert_eq!(rows[0].get("organisation"), Some(az));
        assert_eq!(rows[0].get("name"), Some(ru));
        assert_eq!(rows[1].get("organisation"), Some(ar));
        assert_eq!(rows[1].to_json()["name"], "Şəhla Əliyeva");
    }

    #[test]
    fn invalid_utf8_is_pinned_to_row_and_column() {
        assert_eq!(
            row_problems(b"email,name\na@x.example,Caf\xe9\n"),
            [
                "recipients.csv, row 2, column \"name\": this cell is not valid UTF-8 text; save the file as 'CSV UTF-8' in your spreadsheet"
            ]
        );
        assert_eq!(
            open_error(b"email,N\xe4me\n"),
            "recipients.csv, row 1: the name of column B is not valid UTF-8 text; save the file as 'CSV UTF-8' in your spreadsheet"
        );
    }

    #[test]
    fn email_column_is_required() {
        assert_eq!(
            open_error(b"name,organisation\nAnn,One\n"),
            "recipients.csv, row 1: there is no email column (the columns found are \"name\", \"organisation\"); add a column named email, with one address per row"
        );
        assert_eq!(
            open_error(b"a@x.example,Ann\n"),
            "recipients.csv, row 1: there is no email column (the columns found are \"a@x.example\", \"Ann\"); the first row looks like data: add a header row above it, with a column named email"
        );
        assert_eq!(
            open_error(b",,\n,x,\n"),
            "recipients.csv, row 2: there is no email column (the columns found are \"x\"); add a column named email, with one address per row"
        );
        assert_eq!(good_rows("EMAIL\na@x.example\n")[0].email(), "a@x.example");
    }

    #[test]
    fn duplicate_header_names_are_refused() {
        assert_eq!(
            open_error(b"email,name,title,name\n"),
            "recipients.csv, row 1: columns B and D are both named \"name\"; each column needs its own name: rename or delete one of them"
        );
        assert_eq!(
            open_error(b"Email,name,E-mail,EMAIL\n"),
            "recipients.csv, row 1: columns A and D are both named \"email\"; each column needs its own name: rename or delete one of them"
        );
    }

    #[test]
    fn unnamed_columns_must_stay_empty() {
        with_file(
            b"email,,name,,\na@x.example,,Ann,,\nb@x.example,, Bo\n",
            |opened| {
                let recipients = opened.unwrap();
                assert_eq!(recipients.headers(), ["email", "name"]);
                let rows: Vec<_> = recipients.map(Result::unwrap).collect();
                assert_eq!(
                    rows[1].columns().collect::<Vec<_>>(),
                    [("email", "b@x.example"), ("name", "Bo")]
                );
            },
        );
        assert_eq!(
            row_problems(b"email,name,,\na@x.example,Ann,,oops\n"),
            [
                "recipients.csv, row 2: column D has no name in the header row but this row has \"oops\" in it; give column D a name in row 1 or empty the cell"
            ]
        );
    }

    #[test]
    fn empty_files_are_refused() {
        let message = "recipients.csv: the file is empty: it needs a header row with at least an `email` column";
        for content in [&b""[..], b"\xEF\xBB\xBF", b"\n \r\n\t\n", b",,,\n,\n"] {
            assert_eq!(open_error(content), message, "for {content:?}");
        }
    }

    #[test]
    fn short_rows_are_problems() {
        assert_eq!(
            row_problems(b"email,name,title\na@x.example,Ann\n"),
            [
                "recipients.csv, row 2: this row has 2 cells but the header has 3; a cell is missing or two were merged: check the separators in this row"
            ]
        );
    }

    #[test]
    fn long_rows_are_fine_while_the_extra_cells_are_empty() {
        assert_eq!(
            good_rows("email,name\na@x.example,Ann,, \n")[0].get("name"),
            Some("Ann")
        );
        assert_eq!(
            row_problems(b"email,name\na@x.example,Ann,,,Smith, Jr\n"),
            [
                "recipients.csv, row 2: column E has no name in the header row but this row has \"Smith\" in it; give column E a name in row 1 or empty the cell"
            ]
        );
    }

    #[test]
    fn unclosed_quotes_are_refused_with_the_row_they_open_in() {
        assert_eq!(
            open_error(b"email,name\na@x.example,\"1\n2\"\n\nb@x.example,\"Ann\nc@x.example,Bob\n"),
            "recipients.csv: a quoted cell starting in row 4, column B is never closed; add the missing closing quote (\") in that cell"
        );
        assert_eq!(
            open_error(b"\"email,name\n"),
            "recipients.csv: a quoted cell starting in row 1, column A is never closed; add the missing closing quote (\") in that cell"
        );
        // A quote inside an unquoted cell is just a character.
        assert_eq!(
            good_rows("email,name\na@x.example,O\"Brien\n")[0].get("name"),
            Some("O\"Brien")
        );
    }

    #[test]
    fn lone_carriage_returns_are_refused() {
        assert_eq!(
            open_error(b"email,name\ra@x.example,Ann\r"),
            "recipients.csv, row 1: this row contains a carriage return that does not end a line (old Mac line endings?); save the file as 'CSV UTF-8' in your spreadsheet"
        );
    }

    #[test]
    fn bad_addresses_are_problems() {
        let cases: [(&[u8], &str); 5] = [
            (
                b"a@x.example,",
                "the email cell is empty; fill in the address or delete the row",
            ),
            (
                b"jean@@x.example,",
                "\"jean@@x.example\" is not an email address; correct it in the spreadsheet",
            ),
            (
                b"\"Jean Dupont <jean@x.example>\",",
                "\"Jean Dupont <jean@x.example>\" is not a bare email address; put only the address in this column, and the person's name in the `name` column",
            ),
            (
                b"\"a@x.example, b@x.example\",",
                "\"a@x.example, b@x.example\" is not an email address; put one address per row; further addressees of the same letter go in the `cc` column",
            ),
            (
                b"\"a@x.example\nb@x.example\",",
                "\"a@x.example\nb@x.example\" runs over several lines; put the address on one line",
            ),
        ];
        for (index, (row, message)) in cases.into_iter().enumerate() {
            // The first case puts the empty cell under `email` by swapping the columns.
            let header: &[u8] = if index == 0 {
                b"name,email\n"
            } else {
                b"email,name\n"
            };
            let problems = row_problems(&[header, row, b"\n"].concat());
            let expected = Problem::new(Location::file(NAME).row(2).column("email"), message);
            assert_eq!(problems, [expected.to_string()]);
        }
    }

    #[test]
    fn duplicate_addressees_point_at_the_first_row() {
        with_file(
            b"email\na@x.example\nb@x.example\nA@X.example\nc@x.example\n",
            |opened| {
                let results: Vec<_> = opened.unwrap().collect();
                assert_eq!(results.len(), 4);
                assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
                let problems = results[2].as_ref().unwrap_err();
                assert_eq!(
                    problems[0].to_string(),
                    "recipients.csv, row 4, column \"email\": \"A@X.example\" is also in row 2; each addressee must appear once: delete one of the rows"
                );
            },
        );
    }

    #[test]
    fn language_codes_are_checked_and_lower_cased() {
        let rows = good_rows("email,Language\na@x.example,FR\nb@x.example,pt-BR\nc@x.example,\n");
        assert_eq!(rows[0].language(), Some("fr"));
        assert_eq!(rows[0].get("language"), Some("FR"));
        assert_eq!(rows[1].language(), Some("pt-br"));
        assert_eq!(rows[2].language(), None);
        for bad in [
            "../fr",
            "f",
            "fr/x",
            "fran",
            "fr-",
            "fr-x",
            "fr_FR",
            "fr-BR.hbs",
        ] {
            let content = format!("email,language\na@x.example,{bad}\n");
            assert_eq!(
                row_problems(content.as_bytes()),
                [format!(
                    "recipients.csv, row 2, column \"language\": \"{bad}\" is not a language code; use a code such as fr, de or pt-BR, as in the template name letter.fr.hbs"
                )]
            );
        }
    }

    #[test]
    fn a_row_lists_all_its_problems_and_later_rows_still_come() {
        with_file(
            b"email,name,language\nnope,Ann\nb@x.example,Bob,de\n",
            |opened| {
                let mut recipients = opened.unwrap();
                let problems = recipients.next().unwrap().unwrap_err();
                assert_eq!(problems.len(), 2);
                assert!(problems[0].message.starts_with("this row has 2 cells"));
                assert!(
                    problems[1]
                        .message
                        .starts_with("\"nope\" is not an email address")
                );
                let next = recipients.next().unwrap().unwrap();
                assert_eq!((next.row(), next.language()), (3, Some("de")));
                assert!(recipients.next().is_none());
            },
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = Recipients::open(&dir.path().join("absent.csv"), Path::new(NAME)).unwrap_err();
        assert!(matches!(error, Error::Io { .. }));
        assert!(
            error
                .to_string()
                .starts_with("recipients.csv: could not read the recipients file: ")
        );
    }

    #[test]
    fn oversized_cells_are_problems_naming_row_and_column() {
        let big = "x".repeat(MAX_CELL_BYTES + 1);
        let fits = "y".repeat(MAX_CELL_BYTES);
        let content = format!("email,note\na@x.example,{big}\nb@x.example,{fits}\n");
        with_file(content.as_bytes(), |opened| {
            let results: Vec<_> = opened.unwrap().collect();
            let problems = results[0].as_ref().unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(
                problems[0].to_string(),
                "recipients.csv, row 2, column \"note\": this cell holds 1.0 MB of text, more than the 1 MB a cell may hold; shorten it in the spreadsheet (a long text belongs in a template partial or an attachment)"
            );
            assert_eq!(
                results[1].as_ref().unwrap().get("note"),
                Some(fits.as_str())
            );
        });
        // An oversized address is refused for its size, not echoed back in full.
        let content = format!("email\n{big}@x.example\n");
        let problems = row_problems(content.as_bytes());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("recipients.csv, row 2, column \"email\": this cell holds")
        );
    }

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

    #[test]
    fn row_numbers_hold_across_read_buffers() {
        // Far more than any read buffer, with quoted line breaks, blank lines and CRLF mixed in.
        let mut content = String::from("email,note\r\n");
        let mut expected = Vec::new();
        let mut row = 1;
        for i in 0..5_000 {
            row += 1;
            expected.push(row);
            content.push_str(&format!("r{i}@x.example,\"a,\"\"b\"\"\nc\r\nd\"\n"));
            if i % 7 == 0 {
                content.push_str("\r\n\n");
                row += 2;
            }
        }
        assert_eq!(row_numbers(&content), expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn never_panics_and_always_says_where(
            bytes in proptest::collection::vec(
                prop_oneof![
                    Just(b','), Just(b';'), Just(b'\t'), Just(b'"'), Just(b'\n'), Just(b'\r'),
                    Just(b' '), Just(b'@'), Just(0xEF), Just(0xBB), Just(0xBF), Just(0xFF),
                    Just(b'e'), Just(b'a'), Just(b'.'), any::<u8>(),
                ],
                0..200,
            ),
            email_header in any::<bool>(),
        ) {
            // Half the inputs get a usable header, so that rows are exercised too.
            let content = if email_header { [&b"email,name,language\n"[..], &bytes].concat() } else { bytes };
            with_file(&content, |opened| {
                match opened {
                    Ok(recipients) => {
                        let mut last_row = 1;
                        for result in recipients {
                            let row = match &result {
                                Ok(recipient) => recipient.row(),
                                Err(problems) => problems[0].location.row.unwrap_or(usize::MAX),
                            };
                            prop_assert!(row > last_row, "row {} after row {}", row, last_row);
                            last_row = row;
                            if let Err(problems) = result {
                                prop_assert!(!problems.is_empty());
                                for problem in problems {
                                    prop_assert_eq!(problem.location.file.as_path(), Path::new(NAME));
                                    prop_assert!(problem.location.row.is_some(), "{}", problem);
                                }
                            }
                        }
                    }
                    Err(error) => prop_assert!(error.to_string().starts_with(NAME), "{}", error),
                }
                Ok(())
            })?;
        }
    }
}
