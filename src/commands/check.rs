//! `envoi check`: render every letter and validate everything a send would need.

use std::ops::ControlFlow;
use std::path::Path;

use crate::campaign::Campaign;
use crate::cli::{CheckArgs, GlobalArgs};
use crate::commands::init::PLACEHOLDERS;
use crate::commands::problem_list::ProblemList;
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
    pipeline.each_letter(&filter, None, |letter| {
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
        Ok::<_, Error>(ControlFlow::Continue(()))
    })?;
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
