//! The pipeline driver: from a campaign folder to composed messages, one row at a time.
//!
//! `check`, `preview` and `send` all walk the same path: recipients → rendered letter →
//! composed message. [`Pipeline::letters`] streams it, so memory does not grow with the number
//! of rows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use lettre::Address;

use crate::campaign::{Campaign, CampaignPaths};
use crate::compose::{self, ComposeSettings, Composed};
use crate::error::{Error, Location, Problem};
use crate::signing::Signer;
use crate::template::Templates;

/// What every command says about a recipients file with a header and no rows.
pub const NO_RECIPIENTS: &str = "has a header row but no recipients; add one row per addressee";

/// An opened campaign with its templates compiled.
pub struct Pipeline {
    pub campaign: Campaign,
    pub templates: Templates,
    pub settings: ComposeSettings,
}

/// One row's way through the pipeline.
#[derive(Debug)]
pub struct Letter {
    pub row: usize,
    /// The `email` cell, when the row could be read.
    pub email: String,
    pub organisation: String,
    pub result: Result<Composed, Vec<Problem>>,
}

/// Which rows to take: `--row` (spreadsheet numbers) and `--limit`.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    pub rows: BTreeSet<usize>,
    pub limit: Option<usize>,
}

impl RowFilter {
    pub fn new(rows: &[usize], limit: Option<usize>) -> Self {
        RowFilter {
            rows: rows.iter().copied().collect(),
            limit,
        }
    }

    pub fn accepts(&self, row: usize) -> bool {
        self.rows.is_empty() || self.rows.contains(&row)
    }
}

impl Pipeline {
    pub fn open(paths: CampaignPaths, test_to: Option<Address>) -> Result<Pipeline, Error> {
        let campaign = Campaign::open(paths)?;
        let recipients = campaign.open_recipients()?;
        let templates = Templates::load(
            &campaign.path(campaign.template_display()),
            campaign.template_display(),
            recipients.headers(),
            campaign.recipients_display(),
        )?;
        let settings = ComposeSettings {
            campaign_id: campaign.id(),
            default_from: campaign.config.sender.from.clone(),
            default_reply_to: campaign.config.sender.reply_to.clone(),
            config_display: campaign.config_display().to_path_buf(),
            recipients_display: campaign.recipients_display().to_path_buf(),
            date: SystemTime::now(),
            test_to,
            read_receipts: campaign
                .tracking_settings()
                .map_err(Error::Problems)?
                .read_receipts,
            signer: None,
        };
        Ok(Pipeline {
            campaign,
            templates,
            settings,
        })
    }

    /// Loads the `[signing]` keys (running `password_command` if one is set), so that every
    /// letter is signed; a set-up that cannot sign is refused with every problem listed.
    /// `check`, `preview` and `send` call it: what they show is what goes out.
    pub fn with_signing(mut self) -> Result<Pipeline, Error> {
        let signer = Signer::load(
            &self.campaign.config.signing,
            self.campaign.dir(),
            self.campaign.config_display(),
            self.settings.date,
        )
        .map_err(Error::Problems)?;
        self.settings.signer = signer.map(Arc::new);
        Ok(self)
    }

    /// The signer of this run, once [`with_signing`](Self::with_signing) found one.
    pub fn signer(&self) -> Option<&Signer> {
        self.settings.signer.as_deref()
    }

    /// Streams every row (or the filtered ones) through rendering and composing. Reads the
    /// recipients file afresh, so it can be called once to check and once to send.
    pub fn letters<'a>(
        &'a self,
        filter: &'a RowFilter,
    ) -> Result<impl Iterator<Item = Letter> + 'a, Error> {
        let recipients = self.campaign.open_recipients()?;
        let letters = recipients
            .filter_map(move |row| match row {
                Ok(recipient) if filter.accepts(recipient.row()) => {
                    let result = self.templates.render(&recipient).and_then(|letter| {
                        compose::compose(&self.campaign, &self.settings, &recipient, &letter)
                    });
                    Some(Letter {
                        row: recipient.row(),
                        email: recipient.email().to_owned(),
                        organisation: recipient.get("organisation").unwrap_or("").to_owned(),
                        result,
                    })
                }
                Ok(_) => None,
                Err(problems) => {
                    let row = problems.iter().find_map(|p| p.location.row).unwrap_or(0);
                    filter.accepts(row).then(|| Letter {
                        row,
                        email: String::new(),
                        organisation: String::new(),
                        result: Err(problems),
                    })
                }
            })
            .take(filter.limit.unwrap_or(usize::MAX));
        Ok(letters)
    }

    /// A recipients file with a header and no rows is refused before anything is written:
    /// there is nothing to preview or send, and the user should hear that plainly.
    pub fn require_recipients(&self) -> Result<(), Error> {
        let mut recipients = self.campaign.open_recipients()?;
        match recipients.next() {
            Some(_) => Ok(()),
            None => Err(Error::input(
                Location::file(self.campaign.recipients_display()),
                NO_RECIPIENTS,
            )),
        }
    }

    /// `--row N` naming a row the file does not have is a mistake worth stopping for.
    pub fn check_rows_exist(&self, filter: &RowFilter) -> Result<(), Error> {
        if filter.rows.is_empty() {
            return Ok(());
        }
        let recipients = self.campaign.open_recipients()?;
        let mut missing = filter.rows.clone();
        let mut last = 1;
        for row in recipients {
            let n = match &row {
                Ok(r) => r.row(),
                Err(problems) => problems.iter().find_map(|p| p.location.row).unwrap_or(0),
            };
            missing.remove(&n);
            last = last.max(n);
        }
        match missing.first() {
            None => Ok(()),
            Some(row) => Err(Error::input(
                Location::file(self.campaign.recipients_display()),
                format!(
                    "has no recipient in row {row} (its recipients are in rows 2 to {last}); check --row"
                ),
            )),
        }
    }
}
