//! Problems printed as a list: the same problem on many rows (a template typo, an empty cell
//! in every row) is one line that names its rows, so it does not bury the problems that are
//! different. `check`, `preview` and `send` print their problems through it.

use std::collections::HashMap;

use crate::error::{Location, Problem};

/// Collects problems to print at the end, one line per distinct problem.
#[derive(Default)]
pub struct ProblemList {
    /// Distinct problems in the order they first came.
    groups: Vec<Repeated>,
    /// The problem without its row -> its index in `groups`.
    index: HashMap<String, usize>,
    total: usize,
}

/// One problem and the rows it came up on.
struct Repeated {
    first: Problem,
    /// The first few rows, enough to find the pattern; `count` says how many in all.
    rows: Vec<usize>,
    count: usize,
}

/// How many rows a repeated problem names before "and N more".
const ROWS_NAMED: usize = 3;

impl ProblemList {
    pub fn add(&mut self, problem: Problem) {
        self.total += 1;
        let Some((row, key)) = without_row(&problem) else {
            self.groups.push(Repeated {
                first: problem,
                rows: Vec::new(),
                count: 1,
            });
            return;
        };
        if let Some(&at) = self.index.get(&key) {
            let group = &mut self.groups[at];
            group.count += 1;
            if group.rows.len() <= ROWS_NAMED {
                group.rows.push(row);
            }
            return;
        }
        self.index.insert(key, self.groups.len());
        self.groups.push(Repeated {
            first: problem,
            rows: vec![row],
            count: 1,
        });
    }

    /// The lines to print, one per distinct problem, in the order they first came.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.groups.iter().map(Repeated::line)
    }

    /// Prints the list on standard output.
    pub fn finish(&self) {
        for line in self.lines() {
            println!("{line}");
        }
    }

    /// How many problems were added, repeated ones counted each time.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl Repeated {
    /// The problem as printed: as it came for one row, or with "rows 4, 9, 12 and 31 more"
    /// where it names its row.
    fn line(&self) -> String {
        let line = self.first.to_string();
        let (Some(&first), true) = (self.rows.first(), self.count > 1) else {
            return line;
        };
        let rows = rows_text(&self.rows, self.count);
        let row = format!(" row {first}");
        match rendering_row(&self.first.message) {
            // A template problem: "... (rendering recipients.csv row 2)".
            Some(_) => match line.strip_suffix(')').and_then(|l| l.strip_suffix(&row)) {
                Some(head) => format!("{head} {rows})"),
                None => line,
            },
            // A cell or row problem: "recipients.csv, row 4, column ...".
            None => {
                let place = self.first.location.to_string();
                let file = file_and_sheet(&self.first.location).to_string();
                match place[file.len()..].strip_prefix(&format!(",{row}")) {
                    Some(rest) => {
                        // One line, as `Problem` prints it.
                        format!("{file}, {rows}{rest}: {}", self.first.message)
                            .replace(['\r', '\n'], " ")
                    }
                    None => line,
                }
            }
        }
    }
}

/// "rows 4, 9 and 12", or "rows 4, 9, 12 and 31 more" when there are more than four.
/// `named` holds the first rows (up to `ROWS_NAMED + 1`), `count` how many in all.
fn rows_text(named: &[usize], count: usize) -> String {
    let shown: Vec<String> = named.iter().map(ToString::to_string).collect();
    if count > ROWS_NAMED + 1 {
        return format!(
            "rows {} and {} more",
            shown[..ROWS_NAMED].join(", "),
            count - ROWS_NAMED
        );
    }
    match shown.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("rows {} and {last}", rest.join(", ")),
        _ => format!("rows {}", shown.join(", ")),
    }
}

/// A problem's row and the problem with the row left out (what is the same on every row), or
/// `None` for a problem that is not about a row (a setting, the whole file).
fn without_row(problem: &Problem) -> Option<(usize, String)> {
    if let Some(row) = rendering_row(&problem.message) {
        // A template problem carries "(rendering <file> row N)"; on another row only N differs.
        let (message, _) = problem.message.rsplit_once(" (rendering ")?;
        return Some((row, format!("{}: {message}", problem.location)));
    }
    let row = problem.location.row?;
    let mut place = problem.location.clone();
    place.row = None;
    Some((row, format!("{place}: {}", problem.message)))
}

/// The row of "(rendering recipients.csv row 7)" at the end of a template problem.
fn rendering_row(message: &str) -> Option<usize> {
    let (_, rendering) = message.rsplit_once(" (rendering ")?;
    let (_, row) = rendering.strip_suffix(')')?.rsplit_once(" row ")?;
    row.parse().ok()
}

/// The part of a location before its row: the file, and the sheet of a spreadsheet.
fn file_and_sheet(location: &Location) -> Location {
    let mut place = Location::file(&location.file);
    place.sheet.clone_from(&location.sheet);
    place
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(problems: Vec<Problem>) -> Vec<String> {
        let mut list = ProblemList::default();
        problems.into_iter().for_each(|p| list.add(p));
        list.lines().collect()
    }

    #[test]
    fn a_repeated_problem_is_one_line_that_lists_its_rows() {
        let sheet = |row| {
            Location::file("addressees.xlsx")
                .sheet("Sheet1")
                .row(row)
                .column_at("B", "email")
        };
        let template = |row| {
            Problem::new(
                Location::file("templates/letter.hbs").line(6),
                format!("the template uses {{{{titel}}}} (rendering recipients.csv row {row})"),
            )
        };
        let empty = "the email cell is empty; fill in the address or delete the row";
        let mut problems: Vec<Problem> = [4, 9, 12, 15, 20]
            .into_iter()
            .map(|row| Problem::new(sheet(row), empty))
            .collect();
        problems.extend((2..=4).map(template));
        problems.push(Problem::new(sheet(7), "\"x\" is not an email address"));
        problems.push(Problem::new(Location::file("envoi.toml"), "no [smtp] host"));
        assert_eq!(
            lines(problems),
            [
                format!("addressees.xlsx, sheet \"Sheet1\", rows 4, 9, 12 and 2 more, column B \"email\": {empty}"),
                "templates/letter.hbs, line 6: the template uses {{titel}} (rendering recipients.csv rows 2, 3 and 4)".to_owned(),
                "addressees.xlsx, sheet \"Sheet1\", row 7, column B \"email\": \"x\" is not an email address".to_owned(),
                "envoi.toml: no [smtp] host".to_owned(),
            ]
        );
        assert_eq!(rows_text(&[4, 9], 2), "rows 4 and 9");
        assert_eq!(rows_text(&[4, 9, 12, 31], 4), "rows 4, 9, 12 and 31");
        assert_eq!(rows_text(&[4, 9, 12, 31], 34), "rows 4, 9, 12 and 31 more");
    }
}
