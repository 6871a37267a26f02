//! `envoi report`: what a delivery log says, recipient by recipient.

use crate::cli::{GlobalArgs, ReportArgs};
use crate::commands::Outcome;
use crate::delivery_log::History;
use crate::error::{Error, Location};
use crate::report::{Summary, spreadsheet};

pub fn execute(global: &GlobalArgs, args: &ReportArgs) -> Result<Outcome, Error> {
    let path = global.dir.join(&args.log);
    if !path.exists() {
        return Err(Error::input(
            Location::file(&args.log),
            "not found; it is written by envoi send (name another log with --log)",
        ));
    }
    let history = History::read(&path)?;
    for warning in history.warnings() {
        eprintln!("warning: {}: {warning}", args.log.display());
    }
    print!("{}", Summary::from_history(&history).render(&args.log));
    if let Some(csv) = &args.csv {
        spreadsheet::write(&history, &global.dir.join(csv), csv)?;
        println!(
            "\nWrote the last status of {} recipients to {}.",
            history.len(),
            csv.display()
        );
    }
    Ok(Outcome::Done)
}
