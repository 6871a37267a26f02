//! The pipeline driver: from a campaign folder to composed messages, one row at a time.
//!
//! `check`, `preview` and `send` all walk the same path: recipients → rendered letter →
//! composed message. [`Pipeline::letters`] streams it, so memory does not grow with the number
//! of rows; [`Pipeline::each_letter`] streams it the same, composing on every core.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::SystemTime;

use lettre::Address;

use crate::campaign::{Campaign, CampaignPaths};
use crate::compose::{self, ComposeSettings, Composed};
use crate::error::{Error, Location, Problem};
use crate::recipients::{Recipient, Recipients};
use crate::signing::Signer;
use crate::template::Templates;

mod ordered;

/// What every command says about a recipients file with a header and no rows.
pub const NO_RECIPIENTS: &str = "has a header row but no recipients; add one row per addressee";

/// An opened campaign with its templates compiled.
pub struct Pipeline {
    pub campaign: Campaign,
    pub templates: Templates,
    pub settings: ComposeSettings,
    /// The recipients file as [`Pipeline::open`] opened it to read the header: the first
    /// [`letters`](Self::letters) goes on from there instead of opening and parsing it again.
    opened: RefCell<Option<Recipients>>,
    /// How many threads [`each_letter`](Self::each_letter) composes on.
    threads: NonZeroUsize,
}

/// One row as the recipients file gave it: a recipient, or the problems that kept it from
/// being read.
type Row = Result<Recipient, Vec<Problem>>;

/// What composing a row needs, apart from the reader (which is not `Sync`): shared by
/// reference by every thread that composes.
#[derive(Clone, Copy)]
struct Composer<'a> {
    campaign: &'a Campaign,
    templates: &'a Templates,
    settings: &'a ComposeSettings,
}

impl Composer<'_> {
    fn letter(&self, row: Row) -> Letter {
        match row {
            Ok(recipient) => {
                let result = self.templates.render(&recipient).and_then(|letter| {
                    compose::compose(self.campaign, self.settings, &recipient, &letter)
                });
                Letter {
                    row: recipient.row(),
                    email: recipient.email().to_owned(),
                    organisation: recipient.get("organisation").unwrap_or("").to_owned(),
                    result,
                }
            }
            Err(problems) => Letter {
                row: problem_row(&problems),
                email: String::new(),
                organisation: String::new(),
                result: Err(problems),
            },
        }
    }
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
        stats::count(|s| s.recipients_opened += 1);
        Ok(Pipeline {
            campaign,
            templates,
            settings,
            opened: RefCell::new(Some(recipients)),
            threads: ordered::default_threads(),
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

    /// Composes on `threads` threads in [`each_letter`](Self::each_letter) instead of one per
    /// core (the tests check that the result does not depend on it).
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Pipeline {
        self.threads = threads;
        self
    }

    /// The signer of this run, once [`with_signing`](Self::with_signing) found one.
    pub fn signer(&self) -> Option<&Signer> {
        self.settings.signer.as_deref()
    }

    /// The recipients file from its first row: the one `open` read the header of, the first
    /// time; opened afresh after that.
    fn recipients(&self) -> Result<Recipients, Error> {
        match self.opened.borrow_mut().take() {
            Some(recipients) => Ok(recipients),
            None => {
                stats::count(|s| s.recipients_opened += 1);
                self.campaign.open_recipients()
            }
        }
    }

    /// Streams every row (or the filtered ones) through rendering and composing. The first
    /// call reads the file `open` opened; a later one reads it afresh.
    pub fn letters<'a>(
        &'a self,
        filter: &'a RowFilter,
    ) -> Result<impl Iterator<Item = Letter> + 'a, Error> {
        self.letters_scanned(filter, None)
    }

    /// [`letters`](Self::letters), with `scan` seeing every row read, selected or not, so that
    /// the checks of [`RowScan::finish`] need no pass of their own.
    pub fn letters_scanned<'a>(
        &'a self,
        filter: &'a RowFilter,
        scan: Option<&'a RowScan>,
    ) -> Result<impl Iterator<Item = Letter> + 'a, Error> {
        let composer = self.composer();
        Ok(self
            .selected_rows(filter, scan)?
            .map(move |row| composer.letter(row)))
    }

    /// Gives `f` every selected letter, as [`letters_scanned`](Self::letters_scanned) yields
    /// them (same letters, same row order), composed on every core. The file is read on this
    /// thread, and `f` runs on it; only a few letters are composed ahead of `f`, so memory
    /// stays flat. Ends at `f`'s first error or `Break`.
    pub fn each_letter<E: From<Error>>(
        &self,
        filter: &RowFilter,
        scan: Option<&RowScan>,
        f: impl FnMut(Letter) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let composer = self.composer();
        let rows = self.selected_rows(filter, scan)?;
        ordered::map_in_order(self.threads, rows, |row| composer.letter(row), f)
    }

    fn composer(&self) -> Composer<'_> {
        Composer {
            campaign: &self.campaign,
            templates: &self.templates,
            settings: &self.settings,
        }
    }

    /// The rows `filter` selects, counted in [`stats`] as the letters to compose.
    fn selected_rows<'a>(
        &'a self,
        filter: &'a RowFilter,
        scan: Option<&'a RowScan>,
    ) -> Result<impl Iterator<Item = Row> + 'a, Error> {
        let recipients = self.recipients()?;
        let rows = recipients
            .inspect(move |row| {
                if let Some(scan) = scan {
                    scan.saw(row_number(row));
                }
            })
            .filter(move |row| filter.accepts(row_number(row)))
            .take(filter.limit.unwrap_or(usize::MAX))
            // Counted here, on the thread that reads, not on the one that composes.
            .inspect(|row| {
                if row.is_ok() {
                    stats::count(|s| s.letters_composed += 1);
                }
            });
        Ok(rows)
    }

    /// A recipients file with a header and no rows is refused before anything is written:
    /// there is nothing to preview or send, and the user should hear that plainly.
    pub fn require_recipients(&self) -> Result<(), Error> {
        let scan = RowScan::default();
        scan.saw_all(self.recipients()?);
        scan.require_recipients(self)
    }

    /// `--row N` naming a row the file does not have is a mistake worth stopping for.
    pub fn check_rows_exist(&self, filter: &RowFilter) -> Result<(), Error> {
        if filter.rows.is_empty() {
            return Ok(());
        }
        let scan = RowScan::new(filter);
        scan.saw_all(self.recipients()?);
        scan.finish(self)
    }
}

/// The spreadsheet row a row's problems are about (0 when none says).
fn problem_row(problems: &[Problem]) -> usize {
    problems.iter().find_map(|p| p.location.row).unwrap_or(0)
}

fn row_number(row: &Row) -> usize {
    match row {
        Ok(r) => r.row(),
        Err(problems) => problem_row(problems),
    }
}

/// What a pass over the recipients file saw of its rows, for the checks that need every row
/// (a file with no rows, `--row N` it does not have) without a pass of their own.
#[derive(Debug, Default)]
pub struct RowScan {
    rows: Cell<usize>,
    last: Cell<usize>,
    /// The rows `--row` named that the pass has not seen yet (so memory stays flat).
    missing: RefCell<BTreeSet<usize>>,
}

impl RowScan {
    /// A scan for the rows `filter` names.
    pub fn new(filter: &RowFilter) -> RowScan {
        RowScan {
            missing: RefCell::new(filter.rows.clone()),
            ..RowScan::default()
        }
    }

    fn saw(&self, row: usize) {
        self.rows.set(self.rows.get() + 1);
        self.last.set(self.last.get().max(row));
        self.missing.borrow_mut().remove(&row);
    }

    fn saw_all(&self, recipients: Recipients) {
        for row in recipients {
            self.saw(row_number(&row));
        }
    }

    fn require_recipients(&self, pipeline: &Pipeline) -> Result<(), Error> {
        match self.rows.get() {
            0 => Err(Error::input(
                Location::file(pipeline.campaign.recipients_display()),
                NO_RECIPIENTS,
            )),
            _ => Ok(()),
        }
    }

    /// After the pass: the file has rows, and every row `--row` names. The same messages as a
    /// check of its own would give.
    pub fn finish(&self, pipeline: &Pipeline) -> Result<(), Error> {
        self.require_recipients(pipeline)?;
        match self.missing.borrow().first() {
            None => Ok(()),
            Some(row) => Err(Error::input(
                Location::file(pipeline.campaign.recipients_display()),
                format!(
                    "has no recipient in row {row} (its recipients are in rows 2 to {}); check --row",
                    self.last.get().max(1)
                ),
            )),
        }
    }
}

/// How often this thread opened the recipients file and had a letter composed (on whichever
/// thread composed it): the proof, in
/// `tests/cases/each_stage_once.rs`, that a `send` does each once. Not an interface.
#[doc(hidden)]
pub mod stats {
    use std::cell::Cell;

    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub struct Stats {
        pub recipients_opened: usize,
        pub letters_composed: usize,
    }

    thread_local! {
        static STATS: Cell<Stats> = Cell::new(Stats::default());
    }

    pub(crate) fn count(f: impl FnOnce(&mut Stats)) {
        STATS.with(|s| {
            let mut stats = s.get();
            f(&mut stats);
            s.set(stats);
        });
    }

    /// This thread's counts since the last call, which resets them.
    pub fn take() -> Stats {
        STATS.with(|s| s.replace(Stats::default()))
    }
}
