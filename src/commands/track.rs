//! `envoi track`: read delivery reports, bounces and read receipts, and record in the delivery
//! log what became of each letter. See [`crate::tracking`].

use std::fmt::Write as _;
use std::path::Path;

use crate::campaign::Campaign;
use crate::cli::{GlobalArgs, TrackArgs};
use crate::commands::{Outcome, file_sent, open_log, plural};
use crate::delivery_log::History;
use crate::error::{Error, Location, Problem};
use crate::tracking::Tracker;
use crate::tracking::ledger::Tally;
use crate::tracking::sources::Source;

pub fn execute(global: &GlobalArgs, args: &TrackArgs) -> Result<Outcome, Error> {
    let sources = sources(global, args);
    // --- [mailbox] (see commands::file_sent): with no file named, reports come from the IMAP
    // folder. The mailbox is reached, logged into and its folder opened before the log is
    // touched, so a refusal (exit 3) or a missing folder (exit 2) records nothing.
    // Files named: the campaign's envoi.toml is needed only to file missing Sent copies.
    // Without an envoi.toml there is no mailbox, which the message below says.
    let has_config = global.dir.join(&global.config).exists();
    let mailbox = match Campaign::open(global.campaign_paths()) {
        Ok(campaign) => campaign.mailbox_settings().map_err(Error::Problems)?,
        Err(e) if sources.is_empty() && has_config => return Err(e),
        Err(_) => None,
    };
    let mut imap = None;
    if sources.is_empty() {
        let Some(settings) = &mailbox else {
            return Err(Error::input(
                Location::file(&global.config).setting("mailbox", ""),
                "no mailbox is set up to read reports from; add a [mailbox] section, or name Maildir folders (--maildir DIR), mbox files (--mbox FILE) or .eml files",
            ));
        };
        let password = crate::mailbox::password(settings, &global.config)?;
        imap = Some(
            crate::mailbox::folder_messages(settings, &password)
                .map_err(|e| e.into_error(&global.config, "folder"))?,
        );
    }
    // --- end [mailbox]
    let problems: Vec<Problem> = sources
        .iter()
        .filter_map(|s| match s.check() {
            Err(Error::Input(problem)) => Some(*problem),
            _ => None,
        })
        .collect();
    if !problems.is_empty() {
        return Err(match <[Problem; 1]>::try_from(problems) {
            Ok([one]) => Error::from(one),
            Err(all) => Error::Problems(all),
        });
    }

    let log_path = global.dir.join(&args.log);
    if !log_path.exists() {
        return Err(Error::input(
            Location::file(&args.log),
            "not found; reports are matched to the letters of the delivery log written by envoi send (name another log with --log)",
        ));
    }
    let log = open_log(&log_path)?;
    let history = History::read(&log_path)?;
    for warning in history.warnings() {
        eprintln!("warning: {warning}");
    }

    let mut tracker = Tracker::new(&history);
    for source in &sources {
        for message in source.messages() {
            match message {
                Ok(raw) => {
                    let (_, warning) = tracker.read(&raw, &log)?;
                    if let Some(warning) = warning {
                        eprintln!("warning: {warning}");
                    }
                }
                Err(unreadable) => eprintln!("warning: {}", tracker.unreadable(&unreadable)),
            }
        }
    }
    // --- [mailbox]: the folder's messages, then the copies Sent lacks.
    let mut stopped = None;
    for message in imap.into_iter().flatten() {
        match message {
            Ok(raw) => {
                let (_, warning) = tracker.read(&raw, &log)?;
                if let Some(warning) = warning {
                    eprintln!("warning: {warning}");
                }
            }
            Err(e) => stopped = Some(e),
        }
    }
    log.close()?;
    print!("{}", summary(tracker.tally(), &args.log));
    if let Some(e) = stopped {
        return Err(Error::Stopped(format!(
            "{e}; what was read before is recorded, and the next track reads the rest"
        )));
    }
    if let Some(settings) = mailbox.filter(|m| m.sent_folder.is_some()) {
        file_sent::catch_up_for_track(global, &settings, &log_path);
    }
    // --- end [mailbox]
    Ok(Outcome::Done)
}

/// The sources named on the command line, in the order: Maildir folders, mbox files, .eml files.
fn sources(global: &GlobalArgs, args: &TrackArgs) -> Vec<Source> {
    let at = |p: &Path| (p.to_path_buf(), global.dir.join(p));
    let maildirs = args.maildirs.iter().map(|p| {
        let (shown, path) = at(p);
        Source::Maildir { shown, path }
    });
    let mboxes = args.mboxes.iter().map(|p| {
        let (shown, path) = at(p);
        Source::Mbox { shown, path }
    });
    let files = args.files.iter().map(|p| {
        let (shown, path) = at(p);
        Source::Eml { shown, path }
    });
    maildirs.chain(mboxes).chain(files).collect()
}

/// What `track` prints when it is done.
pub fn summary(tally: &Tally, log: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Read {}: {}, {} not a report, {} skipped.",
        plural(tally.messages, "message"),
        plural(tally.reports, "report"),
        tally.not_reports,
        tally.skipped.len()
    );
    if tally.recorded.is_empty() {
        let _ = writeln!(s, "Nothing new to record in {}.", log.display());
    } else {
        let _ = writeln!(s, "\nRecorded in {}:", log.display());
        for e in &tally.recorded {
            let who = if e.organisation.is_empty() {
                e.email.clone()
            } else {
                format!("{} <{}>", e.organisation, e.email)
            };
            let code = if e.code.is_empty() {
                String::new()
            } else {
                format!("{} ", e.code)
            };
            let _ = writeln!(
                s,
                "  row {:>4}  {:<9} {who}: {code}{}",
                e.row,
                e.status.as_str(),
                e.detail
            );
        }
    }
    let quiet = [
        (tally.already_applied, "already recorded by an earlier run"),
        (
            tally.superseded,
            "the letter's status had already moved past it",
        ),
        (tally.stale, "dated before the letter was last sent"),
        (
            tally.no_status,
            "relayed on, without saying where the letter ended",
        ),
    ];
    let nothing: Vec<String> = quiet
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
    if !nothing.is_empty() {
        let _ = writeln!(s, "\nAdded nothing: {}.", nothing.join("; "));
    }
    if !tally.copies.is_empty() {
        let _ = writeln!(
            s,
            "\nAbout Cc or Bcc copies (the letters' status is their addressee's):"
        );
        for note in &tally.copies {
            let _ = writeln!(s, "  {note}");
        }
    }
    if !tally.unmatched.is_empty() {
        let _ = writeln!(
            s,
            "\nUnmatched: {} (no letter of {} has its envelope id, Message-ID, VERP token or address); nothing recorded for {}:",
            tally.unmatched.len(),
            log.display(),
            if tally.unmatched.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
        for note in &tally.unmatched {
            let _ = writeln!(s, "  {note}");
        }
    }
    if !tally.skipped.is_empty() {
        let _ = writeln!(s, "\nSkipped (see the warnings):");
        for note in &tally.skipped {
            let _ = writeln!(s, "  {note}");
        }
    }
    s
}
