//! The catch-up of the Sent folder, at the end of every `send` and `track` with `sent_folder`.
//!
//! What is missing is decided from the two sources of truth, never from a list of its own
//! that could itself be lost: every recipient whose last status in the delivery log says the
//! letter went out (`sent`, `delayed`, `delivered`, `bounced`, `read`; not `unknown`, which may
//! never have reached anyone) and whose Message-ID the folder does not hold. Only those
//! letters are composed again, from the campaign files; the copy then has the original
//! Message-ID and content but a new MIME boundary and Date (the folder's arrival time is set
//! to when the log says it was sent). A copy filed while sending is byte for byte the letter.

use std::collections::HashMap;
use std::path::Path;

use chrono::DateTime;

use crate::campaign::Campaign;
use crate::cli::GlobalArgs;
use crate::config::tracking::MailboxSettings;
use crate::delivery_log::{History, Status};
use crate::error::Error;
use crate::mailbox::filing::{Filed, Filer};
use crate::mailbox::{MailboxError, SentFolder, sent_copy};
use crate::pipeline::{Pipeline, RowFilter};

/// Files every letter the log says went out and the folder lacks. Returns how many it filed.
pub fn file_missing(
    pipeline: &Pipeline,
    history: &History,
    folder: &mut SentFolder,
) -> Result<usize, Error> {
    // Recipient (lower case) → when it was sent, for every letter that went out.
    let mut went_out: HashMap<String, Option<String>> = history
        .entries()
        .filter(|e| e.status.went_out() && e.status != Status::Unknown)
        .map(|e| {
            let sent_at = (e.status == Status::Sent).then(|| e.timestamp.clone());
            (e.email.trim().to_lowercase(), sent_at)
        })
        .collect();
    if went_out.is_empty() {
        return Ok(0);
    }
    let in_folder = folder.message_ids().map_err(stopped)?;
    let mut filed = 0;
    let all = RowFilter::default();
    for letter in pipeline.letters(&all)? {
        let Ok(composed) = letter.result else {
            continue;
        };
        let Some(sent_at) = went_out.remove(&composed.email.trim().to_lowercase()) else {
            continue;
        };
        if in_folder.contains(&composed.message_id) {
            continue;
        }
        let date = sent_at.and_then(|t| DateTime::parse_from_rfc3339(&t).ok());
        folder
            .append(&sent_copy(&composed), date)
            .map_err(stopped)?;
        filed += 1;
    }
    Ok(filed)
}

fn stopped(e: crate::mailbox::MailboxError) -> Error {
    Error::Stopped(e.to_string())
}

/// Opens the Sent folder for a run, when `[mailbox] sent_folder` is set. A folder that does
/// not exist or a bad setting is a configuration error (exit 2, nothing sent); a mailbox that
/// cannot be reached only means the copies are filed later, so it is a warning.
pub fn open(campaign: &Campaign) -> Result<Option<SentFolder>, Error> {
    let Some(settings) = campaign.mailbox_settings().map_err(Error::Problems)? else {
        return Ok(None);
    };
    if settings.sent_folder.is_none() {
        return Ok(None);
    }
    let config = campaign.config_display();
    let password = crate::mailbox::password(&settings, config)?;
    match SentFolder::open(&settings, &password) {
        Ok(folder) => Ok(Some(folder)),
        Err(e @ (MailboxError::NoFolder { .. } | MailboxError::TlsSetup { .. })) => {
            Err(e.into_error(config, "sent_folder"))
        }
        Err(e) => {
            eprintln!(
                "warning: {e}; copies are not filed in Sent now (the next send or track files them)"
            );
            Ok(None)
        }
    }
}

/// After a send: waits for the filing thread, files whatever is still missing, and says so.
pub fn finish(filer: Filer, pipeline: &Pipeline, log: &Path) {
    let (filed, folder) = filer.finish();
    report(filed, folder, pipeline, log);
}

/// Files whatever is missing (a run that sent nothing, or `track`), and says so.
pub fn catch_up(folder: SentFolder, pipeline: &Pipeline, log: &Path) {
    report(Filed::default(), Some(folder), pipeline, log);
}

fn report(filed: Filed, folder: Option<SentFolder>, pipeline: &Pipeline, log: &Path) {
    let mut caught_up = 0;
    let mut failure = filed.failure.map(|e| e.to_string());
    if let Some(mut folder) = folder {
        match History::read(log).and_then(|history| file_missing(pipeline, &history, &mut folder)) {
            Ok(n) => caught_up = n,
            Err(e) => failure = Some(e.to_string()),
        }
        folder.close();
    }
    let total = filed.filed + caught_up;
    println!(
        "Sent folder: {} filed{}",
        if total == 1 {
            "1 copy".to_owned()
        } else {
            format!("{total} copies")
        },
        if filed.already > 0 {
            format!(", {} already there", filed.already)
        } else {
            String::new()
        }
    );
    if let Some(reason) = failure {
        eprintln!(
            "warning: not every copy could be filed in Sent ({reason}); the letters' statuses are unchanged, and the next send or track files what is missing"
        );
    }
}

/// After `track`: files what Sent lacks. Problems (campaign files that no longer render, a
/// mailbox out of reach) are warnings: the reports are already recorded.
pub fn catch_up_for_track(global: &GlobalArgs, settings: &MailboxSettings, log: &Path) {
    let why = match Pipeline::open(global.campaign_paths(), None) {
        Err(e) => format!("the campaign files cannot be composed ({e})"),
        Ok(pipeline) => {
            let opened = crate::mailbox::password(settings, &global.config)
                .and_then(|password| SentFolder::open(settings, &password).map_err(stopped));
            match opened {
                Ok(folder) => return catch_up(folder, &pipeline, log),
                Err(e) => e.to_string(),
            }
        }
    };
    eprintln!(
        "warning: copies missing from Sent were not filed: {why}; the next send or track files them"
    );
}
