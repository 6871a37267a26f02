//! `envoi check`: render every letter and validate everything a send would need.

use std::collections::HashMap;
use std::path::Path;

use crate::cli::{CheckArgs, GlobalArgs};
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

    let filter = RowFilter::default();
    let (mut letters, mut good) = (0usize, 0usize);
    // Rows whose letter has an address with a non-ASCII local part.
    let mut smtputf8_rows = Vec::new();
    for letter in pipeline.letters(&filter)? {
        letters += 1;
        match letter.result {
            Ok(composed) => {
                good += 1;
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

/// Prints problems as they come, folding a template problem that repeats on every row into
/// one line with a count, so a typo in the template does not bury the real row problems.
#[derive(Default)]
struct ProblemList {
    /// Template problems already printed: (location + message without the row) → repeats.
    repeats: HashMap<String, (String, usize)>,
    order: Vec<String>,
    total: usize,
}

impl ProblemList {
    fn add(&mut self, problem: Problem) {
        self.total += 1;
        // A template problem carries "(rendering <file> row N)"; the same problem on another
        // row differs only there. Row problems (cells) are pinned to their row and never fold.
        let rendering = strip_row(&problem.message).len() < problem.message.len();
        if problem.location.line.is_some() || rendering {
            let key = format!("{}: {}", problem.location, strip_row(&problem.message));
            if let Some((_, count)) = self.repeats.get_mut(&key) {
                *count += 1;
                return;
            }
            self.order.push(key.clone());
            self.repeats.insert(key, (problem.to_string(), 0));
        }
        println!("{problem}");
    }

    fn finish(&self) {
        for key in &self.order {
            let (first, count) = &self.repeats[key];
            if *count > 0 {
                println!(
                    "  (the same problem as \"{}\" occurs in {} more)",
                    shorten(first),
                    plural(*count, "row")
                );
            }
        }
    }

    fn total(&self) -> usize {
        self.total
    }
}

fn strip_row(message: &str) -> &str {
    message
        .rsplit_once(" (rendering ")
        .map_or(message, |(m, _)| m)
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}
