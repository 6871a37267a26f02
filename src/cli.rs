//! The command line: global options, one subcommand per verb of SPEC's "Commands" table.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::campaign::{CampaignPaths, DEFAULT_CONFIG, DEFAULT_LOG, DEFAULT_TEMPLATE};
use crate::commands::{self, Outcome};
use crate::config::SmtpOverrides;
use crate::error::Error;

/// Send one formal statement to many organisations as personalised letters, and keep a record
/// of what happened to each one.
///
/// A campaign folder holds envoi.toml (sender, relay, sending policy), recipients.csv (one
/// addressee per row) and templates/letter.hbs (the letter). Work in this order: check, preview,
/// send --dry-run, send, report.
#[derive(Debug, Parser)]
#[command(name = "envoi", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The campaign folder
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The configuration file, relative to --dir
    #[arg(long, global = true, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The recipients file (.csv, .xlsx, .xls or .ods), relative to --dir [default: recipients
    /// under [campaign] in envoi.toml, else recipients.csv]
    #[arg(long, global = true, value_name = "FILE")]
    pub recipients: Option<PathBuf>,
    /// The letter template, relative to --dir
    #[arg(long, global = true, value_name = "FILE", default_value = DEFAULT_TEMPLATE)]
    pub template: PathBuf,
    /// SMTP relay host (overrides [smtp] host)
    #[arg(long, global = true, env = "ENVOI_SMTP_HOST", value_name = "HOST")]
    pub smtp_host: Option<String>,
    /// SMTP relay port (overrides [smtp] port)
    #[arg(long, global = true, env = "ENVOI_SMTP_PORT", value_name = "PORT")]
    pub smtp_port: Option<u16>,
    /// tls, starttls or none (overrides [smtp] security)
    #[arg(long, global = true, env = "ENVOI_SMTP_SECURITY", value_name = "MODE")]
    pub security: Option<String>,
    /// SMTP user name (overrides [smtp] username); the password comes from ENVOI_SMTP_PASSWORD
    /// or password_command, never from a flag
    #[arg(long, global = true, env = "ENVOI_SMTP_USER", value_name = "USER")]
    pub smtp_user: Option<String>,
}

impl GlobalArgs {
    pub fn campaign_paths(&self) -> CampaignPaths {
        CampaignPaths {
            dir: self.dir.clone(),
            config: self.config.clone(),
            recipients: self.recipients.clone(),
            template: self.template.clone(),
        }
    }

    pub fn smtp_overrides(&self) -> SmtpOverrides {
        SmtpOverrides {
            host: self.smtp_host.clone(),
            port: self.smtp_port,
            security: self.security.clone(),
            username: self.smtp_user.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a small sample campaign (never overwrites a file)
    Init(InitArgs),
    /// Render every letter and validate everything a send needs; sends nothing
    Check(CheckArgs),
    /// Show letters on the terminal, or write them as .eml files with an index.html
    Preview(PreviewArgs),
    /// Send the letters over SMTP, recording each outcome in the delivery log
    Send(SendArgs),
    /// Summarise a delivery log: counts by status, every letter not sent, bounced or delayed
    /// with its reason, and (once tracked) those not yet confirmed delivered
    Report(ReportArgs),
    /// Read delivery reports, bounces and read receipts, and record in the delivery log what
    /// became of each letter: from the files named, or else the [mailbox] folder over IMAP
    /// (reads mail; never deletes, moves or flags it)
    Track(TrackArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the campaign (default: --dir)
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also connect to the relay: negotiate TLS and log in, without sending anything
    #[arg(long)]
    pub smtp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreviewFormat {
    /// Headers, the text part and the list of attachments
    Text,
    /// The raw RFC 5322 message, exactly as it would be sent
    Raw,
}

/// Which rows a command works on.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Only this row, as numbered in the spreadsheet (the header is row 1); repeatable
    #[arg(long = "row", value_name = "N")]
    pub rows: Vec<usize>,
    /// At most this many letters
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Write one .eml per recipient and an index.html into DIR instead of printing
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// How to print letters on the terminal
    #[arg(long, value_enum, default_value_t = PreviewFormat::Text)]
    pub format: PreviewFormat,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Check and plan everything, print what a send would do, send and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (needed when not on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Send the selected letters to ADDR only (no Cc, no Bcc), to see them as recipients will
    #[arg(long, value_name = "ADDR")]
    pub test_to: Option<String>,
    /// The delivery log, relative to --dir
    #[arg(long, value_name = "FILE", default_value = DEFAULT_LOG)]
    pub log: PathBuf,
    /// Send again to recipients the log records as sent or unknown (all selected rows, or those
    /// named with --row)
    #[arg(long)]
    pub resend: bool,
    /// Send the good rows and log bad ones as skipped, instead of refusing to start
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The delivery log, relative to --dir
    #[arg(long, value_name = "FILE", default_value = DEFAULT_LOG)]
    pub log: PathBuf,
    /// Also write the last status of every recipient to FILE as CSV (UTF-8 with BOM, for
    /// Excel), relative to --dir; replaces FILE
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrackArgs {
    /// A Maildir folder to read reports from (its new/ and cur/), relative to --dir; repeatable
    #[arg(long = "maildir", value_name = "DIR")]
    pub maildirs: Vec<PathBuf>,
    /// An mbox file to read reports from, relative to --dir; repeatable
    #[arg(long = "mbox", value_name = "FILE")]
    pub mboxes: Vec<PathBuf>,
    /// Single messages (.eml files) to read, relative to --dir
    #[arg(value_name = "FILE.eml")]
    pub files: Vec<PathBuf>,
    /// The delivery log, relative to --dir
    #[arg(long, value_name = "FILE", default_value = DEFAULT_LOG)]
    pub log: PathBuf,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    let global = &cli.global;
    match cli.command {
        Command::Init(args) => commands::init::execute(global, &args),
        Command::Check(args) => commands::check::execute(global, &args),
        Command::Preview(args) => commands::preview::execute(global, &args),
        Command::Send(args) => commands::send::execute(global, &args),
        Command::Report(args) => commands::report::execute(global, &args),
        Command::Track(args) => commands::track::execute(global, &args),
    }
}
