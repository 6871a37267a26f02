//! `envoi check`: render every letter and validate everything a send would need.

use std::collections::HashMap;
use std::path::Path;

use crate::campaign::Campaign;
use crate::cli::{CheckArgs, GlobalArgs};
use crate::commands::init::PLACEHOLDERS;
use crate::commands::{Outcome, plural};
use crate::error::{Error, Location, Problem};
use crate::pipeline::{NO_RECIPIENTS, Pipeline, RowFilter};
use crate::secret::PasswordSource;

pub fn execute(global: &GlobalArgs, args: &CheckArgs) -> Result<Outcome, Error> {
    let pipeline = Pipeline::open(global.campaign_paths(), None)?.with_signing()?;
    let mut report = ProblemList::default();

    let campaign = &pipeline.campaign;
    let config_display = campaign.config_display();
    let smtp = campaign.smtp_settings(&global.smtp_overrides());
    match &smtp {
        Err(problems) => problems.iter().for_each(|p| report.add(p.clone())),
        Ok(settings) => {
            if let Err(e) = crate::delivery::relay::check_settings(settings) {
                report.add(Problem::new(
                    Location::file(config_display).setting("smtp", ""),
                    e.to_string(),
                ));
            }
            // The variable is often set only for the send itself, so this is a note, not a problem.
            if let (Some(user), PasswordSource::None) = (&settings.username, &settings.password) {
                println!(
                    "note: username \"{user}\" has no password yet: set ENVOI_SMTP_PASSWORD when you send, or password_command in [smtp]"
                );
            }
        }
    }
    let rate = match campaign.send_policy() {
        Ok(policy) => policy.rate,
        Err(problems) => {
            problems.into_iter().for_each(|p| report.add(p));
            None
        }
    };

    let mut leftovers = Leftovers::default();
    let filter = RowFilter::default();
    let (mut letters, mut good) = (0usize, 0usize);
    // Rows whose letter has an address with a non-ASCII local part.
    let mut smtputf8_rows = Vec::new();
    for letter in pipeline.letters(&filter)? {
        letters += 1;
        match letter.result {
            Ok(composed) => {
                good += 1;
                leftovers.note(&composed.text);
                if composed.address_needing_smtputf8().is_some() {
                    smtputf8_rows.push(composed.row);
                }
            }
            Err(problems) => problems.into_iter().for_each(|p| report.add(p)),
        }
    }
    if letters == 0 {
        report.add(Problem::new(
            Location::file(pipeline.campaign.recipients_display()),
            NO_RECIPIENTS,
        ));
    }

    if let Some(signer) = pipeline.signer() {
        for line in signer.summary() {
            println!("{line}");
        }
        if let Some(problem) = signer.expiry_problem(pipeline.settings.date, good, rate) {
            report.add(problem);
        }
    }

    if args.smtp {
        match &smtp {
            Ok(settings) => match crate::delivery::relay::probe(settings) {
                Ok(probed) => {
                    println!("relay: {}", probed.summary);
                    if let Some(problem) = smtputf8_verdict(
                        &smtputf8_rows,
                        Some(probed.capabilities.smtputf8),
                        pipeline.campaign.recipients_display(),
                    ) {
                        report.add(problem);
                    }
                }
                Err(e) => report.add(Problem::new(Location::file(config_display), e.to_string())),
            },
            Err(_) => println!("relay: not contacted, fix the [smtp] problems above first"),
        }
    }

    if !args.smtp {
        smtputf8_verdict(&smtputf8_rows, None, pipeline.campaign.recipients_display());
    }

    leftovers.warn(&pipeline.campaign);
    report.finish();
    let total = report.total();
    if total == 0 {
        println!("{} ready; no problems found", plural(letters, "letter"));
        return Ok(Outcome::Done);
    }
    Err(Error::Reported(format!(
        "{} found ({} of {} ready); nothing was sent. Correct them and run envoi check again",
        plural(total, "problem"),
        good,
        plural(letters, "letter"),
    )))
}

/// The sample text `envoi init` wrote that letters still contain: a warning, not a problem, as
/// a campaign may be checked long before its statement is written.
#[derive(Default)]
struct Leftovers {
    /// For each of [`PLACEHOLDERS`], how many letters contain it.
    letters: [usize; PLACEHOLDERS.len()],
}

impl Leftovers {
    fn note(&mut self, text: &str) {
        for (count, placeholder) in self.letters.iter_mut().zip(PLACEHOLDERS) {
            if text.contains(placeholder) {
                *count += 1;
            }
        }
    }

    fn warn(&self, campaign: &Campaign) {
        let folder = campaign
            .template_display()
            .parent()
            .unwrap_or(Path::new(""));
        for (&count, placeholder) in self.letters.iter().zip(PLACEHOLDERS) {
            if count == 0 {
                continue;
            }
            let place = find_in_templates(campaign, folder, placeholder)
                .map(|location| format!("{location}: "))
                .unwrap_or_default();
            println!(
                "warning: {place}\"{placeholder}\" is the sample text envoi init wrote, and {} still {} it; replace it with your own text before sending",
                plural(count, "letter"),
                if count == 1 { "contains" } else { "contain" }
            );
        }
    }
}

/// The template file and line that hold `text`, looking through the letter's folder.
fn find_in_templates(campaign: &Campaign, folder: &Path, text: &str) -> Option<Location> {
    let mut files: Vec<_> = std::fs::read_dir(campaign.path(folder))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .collect();
    files.sort();
    files.iter().find_map(|name| {
        let source = std::fs::read_to_string(campaign.path(folder.join(name))).ok()?;
        let line = source.lines().position(|line| line.contains(text))?;
        Some(Location::file(folder.join(name)).line(line + 1))
    })
}

/// What `check` says of letters with an address whose local part is not ASCII, which need a
/// relay that offers SMTPUTF8 (RFC 6531): a note, and with `--smtp` (`offered` known) either
/// that the relay takes them or a problem, as they would fail.
fn smtputf8_verdict(rows: &[usize], offered: Option<bool>, recipients: &Path) -> Option<Problem> {
    if rows.is_empty() {
        return None;
    }
    let mut listed: Vec<String> = rows.iter().take(5).map(ToString::to_string).collect();
    if rows.len() > listed.len() {
        listed.push("…".to_owned());
    }
    let one = rows.len() == 1;
    let which = format!(
        "{} ({} {})",
        plural(rows.len(), "letter"),
        if one { "row" } else { "rows" },
        listed.join(", ")
    );
    let why = format!(
        "{} an address with characters other than ASCII before the @, which needs a relay that offers SMTPUTF8",
        if one { "has" } else { "have" }
    );
    match offered {
        None => {
            println!("note: {which} {why}; envoi check --smtp tells whether yours does");
            None
        }
        Some(true) => {
            println!(
                "relay: offers SMTPUTF8, which {which} need (an address with characters other than ASCII before the @)"
            );
            None
        }
        Some(false) => Some(Problem::new(
            Location::file(recipients),
            format!(
                "{which} {why}, and the relay does not offer it: {} fail; send {} through a relay that offers SMTPUTF8, or use ASCII addresses",
                if one { "it would" } else { "they would" },
                if one { "it" } else { "them" }
            ),
        )),
    }
}

/// Collects problems and prints them at the end, one line per distinct problem: the same problem
/// on many rows (a template typo, an empty cell in every row) is one line that lists its rows,
/// so it does not bury the problems that are different.
#[derive(Default)]
struct ProblemList {
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
    fn add(&mut self, problem: Problem) {
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

    fn finish(&self) {
        for group in &self.groups {
            println!("{}", group.line());
        }
    }

    fn total(&self) -> usize {
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
        list.groups.iter().map(Repeated::line).collect()
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
