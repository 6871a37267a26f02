//! Spreadsheets (`.xlsx`, `.xls`, `.ods`), read with calamine: one sheet, each cell as the
//! spreadsheet shows it, rows and columns numbered as it numbers them.
//!
//! What "as it shows it" means here: text as typed; a whole number without `.0` or exponent
//! (phone numbers, postcodes); other numbers to the 15 significant digits a spreadsheet keeps;
//! a date as `YYYY-MM-DD` (with `HH:MM` when it has a time of day); a formula as its last
//! computed value; `TRUE`/`FALSE`; a merged cell's value in every cell it covers. Number
//! formats (currency, percent, fixed decimals) are not applied: the number itself is read.
//! An error value (`#DIV/0!`) is a problem of its cell.

use std::path::Path;

use calamine::{Data, Dimensions, Reader, Sheets};

use super::ods_merges;
use super::rules::Cell;
use crate::error::{Error, Location};

/// The extensions read as spreadsheets (lower case); anything else is CSV.
pub(super) fn is_spreadsheet(path: &Path) -> bool {
    matches!(
        extension(path).as_deref(),
        Some("xlsx" | "xlsm" | "xls" | "ods")
    )
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// A cell's value as read.
#[derive(Debug, Clone, Default)]
enum Value {
    #[default]
    Empty,
    Text(String),
    /// An error value such as `#DIV/0!`.
    Error(String),
}

/// The rows of one sheet, read whole (calamine reads a sheet at once).
#[derive(Debug)]
pub(super) struct SheetRows {
    sheet: String,
    /// Spreadsheet row number and cells from column A on.
    rows: Vec<(usize, Vec<Value>)>,
    next: usize,
}

impl SheetRows {
    /// Opens the sheet named `sheet` (default: the first) of the spreadsheet at `path`;
    /// `display` names the file in messages.
    pub(super) fn open(
        path: &Path,
        display: &Path,
        sheet: Option<&str>,
    ) -> Result<SheetRows, Error> {
        let unreadable = |e: &dyn std::fmt::Display| {
            Error::input(
                Location::file(display),
                format!(
                    "cannot be read as a spreadsheet ({e}); open it in Excel or LibreOffice and \
                     save it again (as .xlsx, .xls or .ods)"
                ),
            )
        };
        if !path.is_file() {
            // calamine's own message for a missing file is an I/O error with no path.
            let e = std::fs::File::open(path).err().unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file")
            });
            return Err(Error::io(display, "could not read the recipients file", e));
        }
        let mut workbook = calamine::open_workbook_auto(path).map_err(|e| unreadable(&e))?;
        let names = workbook.sheet_names();
        let name = match sheet {
            Some(wanted) => names
                .iter()
                .find(|name| name.as_str() == wanted)
                .or_else(|| {
                    names
                        .iter()
                        .find(|name| name.trim().eq_ignore_ascii_case(wanted.trim()))
                })
                .cloned()
                .ok_or_else(|| {
                    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                    let hint = crate::text::nearest(wanted, names.iter().map(String::as_str))
                        .map_or(": correct the setting".to_owned(), |near| {
                            format!("; did you mean \"{near}\"? correct the setting")
                        });
                    Error::input(
                        Location::file(display),
                        format!(
                            "has no sheet named \"{wanted}\" (set by sheet under [campaign] in \
                             envoi.toml); its sheets are {}{hint}",
                            list.join(", ")
                        ),
                    )
                })?,
            None => names.first().cloned().ok_or_else(|| {
                Error::input(
                    Location::file(display),
                    "has no sheets; add one with the addressees",
                )
            })?,
        };
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| unreadable(&e))?;
        let merges = match &mut workbook {
            Sheets::Xlsx(xlsx) => xlsx
                .merge_cells_by_sheet_name(&name)
                .map_err(|e| unreadable(&e))?,
            Sheets::Xls(xls) => xls
                .merge_cells_by_sheet_name(&name)
                .map_err(|e| unreadable(&e))?,
            Sheets::Ods(_) => ods_merges::of_sheet(path, &name).map_err(|e| unreadable(&e))?,
            Sheets::Xlsb(_) => Vec::new(),
        };

        let mut rows = Vec::with_capacity(range.height());
        if let Some((first_row, first_column)) = range.start() {
            for (index, cells) in range.rows().enumerate() {
                let mut values = vec![Value::Empty; first_column as usize];
                values.extend(cells.iter().map(value_of));
                rows.push((first_row as usize + index + 1, values));
            }
        }
        fill_merges(&mut rows, &merges);
        Ok(SheetRows {
            sheet: name,
            rows,
            next: 0,
        })
    }

    /// The sheet read.
    pub(super) fn sheet(&self) -> &str {
        &self.sheet
    }

    pub(super) fn lines(&self) -> usize {
        self.rows.len()
    }

    /// Moves to the next row; its number, or `None` after the last.
    pub(super) fn next_record(&mut self) -> Option<usize> {
        let (row, _) = self.rows.get(self.next)?;
        self.next += 1;
        Some(*row)
    }

    /// The cells of the row last moved to.
    pub(super) fn cells(&self) -> Vec<Cell<'_>> {
        let Some((_, values)) = self.next.checked_sub(1).and_then(|i| self.rows.get(i)) else {
            return Vec::new();
        };
        values
            .iter()
            .map(|value| match value {
                Value::Empty => Cell::Text(""),
                Value::Text(text) => Cell::Text(text),
                Value::Error(error) => Cell::Unreadable {
                    shown: error.clone(),
                    what: format!(
                        "shows the error {error}: its formula could not be computed; correct \
                         the formula, or type the value, in the spreadsheet"
                    ),
                },
            })
            .collect()
    }
}

/// Copies each merged region's value (held by its top-left cell) into every cell it covers.
fn fill_merges(rows: &mut [(usize, Vec<Value>)], merges: &[Dimensions]) {
    let Some(&(first_row, _)) = rows.first() else {
        return;
    };
    let index_of = |row: u32| (row as usize + 1).checked_sub(first_row);
    for merge in merges {
        let Some(value) = index_of(merge.start.0)
            .and_then(|i| rows.get(i))
            .and_then(|(_, values)| values.get(merge.start.1 as usize))
            .cloned()
        else {
            continue;
        };
        if matches!(value, Value::Empty) {
            continue;
        }
        for row in merge.start.0..=merge.end.0 {
            let Some((_, values)) = index_of(row).and_then(|i| rows.get_mut(i)) else {
                continue;
            };
            let end = merge.end.1 as usize;
            if values.len() <= end {
                values.resize(end + 1, Value::Empty);
            }
            for cell in &mut values[merge.start.1 as usize..=end] {
                *cell = value.clone();
            }
        }
    }
}

fn value_of(data: &Data) -> Value {
    match data {
        Data::Empty => Value::Empty,
        Data::String(text) => Value::Text(text.clone()),
        Data::Int(n) => Value::Text(n.to_string()),
        Data::Float(n) => Value::Text(number(*n)),
        Data::Bool(b) => Value::Text(if *b { "TRUE" } else { "FALSE" }.to_owned()),
        Data::DateTime(when) => Value::Text(if when.is_duration() {
            when.as_duration()
                .map(|d| duration(d.num_seconds()))
                .unwrap_or_else(|| number(when.as_f64()))
        } else {
            when.as_datetime()
                .map(date_time)
                .unwrap_or_else(|| number(when.as_f64()))
        }),
        Data::DateTimeIso(text) => Value::Text(iso_date_time(text)),
        Data::DurationIso(text) => Value::Text(iso_duration(text)),
        Data::Error(error) => Value::Error(error.to_string()),
    }
}

/// A number as a spreadsheet's General format shows it, without its exponent: whole numbers
/// without `.0`, others to 15 significant digits (all that a spreadsheet keeps).
fn number(n: f64) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    let rounded: f64 = format!("{n:.14e}").parse().unwrap_or(n);
    if rounded == 0.0 {
        return "0".to_owned();
    }
    // f64's Display never uses an exponent, and prints whole numbers without a fraction.
    format!("{rounded}")
}

/// `YYYY-MM-DD`, with ` HH:MM` (and `:SS`) when the cell has a time of day.
fn date_time(when: chrono::NaiveDateTime) -> String {
    use chrono::Timelike;
    match (when.time().num_seconds_from_midnight(), when.second()) {
        (0, _) => when.format("%Y-%m-%d").to_string(),
        (_, 0) => when.format("%Y-%m-%d %H:%M").to_string(),
        _ => when.format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

/// `H:MM` or `H:MM:SS`, as a spreadsheet shows a duration or a time of day.
fn duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if s == 0 {
        format!("{h}:{m:02}")
    } else {
        format!("{h}:{m:02}:{s:02}")
    }
}

/// An ODS date (`2024-01-19` or `2024-01-19T10:30:00`) in the same shape as other dates.
fn iso_date_time(text: &str) -> String {
    if let Ok(when) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return date_time(when);
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => date.format("%Y-%m-%d").to_string(),
        Err(_) => text.to_owned(),
    }
}

/// An ODS duration (`PT10H30M00S`) as `H:MM`.
fn iso_duration(text: &str) -> String {
    let Some(rest) = text.strip_prefix("PT") else {
        return text.to_owned();
    };
    let mut seconds = 0f64;
    let mut digits = String::new();
    for c in rest.chars() {
        let unit = match c {
            'H' => 3600.0,
            'M' => 60.0,
            'S' => 1.0,
            _ => {
                digits.push(c);
                continue;
            }
        };
        let Ok(n) = digits.parse::<f64>() else {
            return text.to_owned();
        };
        seconds += n * unit;
        digits.clear();
    }
    duration(seconds.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_spreadsheet_shows_them() {
        for (n, shown) in [
            (4930123456.0, "4930123456"),
            (1010.0, "1010"),
            (0.1 + 0.2, "0.3"),
            (1234.5, "1234.5"),
            (-0.0, "0"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
        ] {
            assert_eq!(number(n), shown, "{n}");
        }
    }

    #[test]
    fn dates_times_and_durations() {
        let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 19).unwrap();
        assert_eq!(date_time(date.and_hms_opt(0, 0, 0).unwrap()), "2024-01-19");
        assert_eq!(
            date_time(date.and_hms_opt(10, 30, 0).unwrap()),
            "2024-01-19 10:30"
        );
        assert_eq!(
            date_time(date.and_hms_opt(10, 30, 5).unwrap()),
            "2024-01-19 10:30:05"
        );
        assert_eq!(iso_date_time("2024-01-19"), "2024-01-19");
        assert_eq!(iso_date_time("2024-01-19T09:05:00"), "2024-01-19 09:05");
        assert_eq!(iso_duration("PT10H30M00S"), "10:30");
        assert_eq!(duration(3725), "1:02:05");
    }
}
