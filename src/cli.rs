//! The command line: global options, one subcommand per verb of README's "Commands" table.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::campaign::{CampaignPaths, DEFAULT_LOG};
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
    /// The campaign folder
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Campaign files and relay options given before the command (`envoi --config x check`),
    /// as README's "Commands" documents; a value given after the command wins. Not global, so
    /// that the help of `init` and `report` does not list them.
    #[command(flatten)]
    pub files: CampaignFiles,
    #[command(flatten)]
    pub relay: RelayArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where a command finds the campaign and its relay: what every command receives, whichever
/// of these options it lets the user set (the others keep their defaults).
#[derive(Debug, Clone)]
pub struct GlobalArgs {
    pub dir: PathBuf,
    pub config: PathBuf,
    /// `None`: `recipients` under `[campaign]` in envoi.toml, else `recipients.csv`.
    pub recipients: Option<PathBuf>,
    pub template: PathBuf,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub security: Option<String>,
    pub smtp_user: Option<String>,
}

/// The campaign's files, for the commands that read them. Each command lists only the
/// options it uses, so these are the subcommand's own, not global ones.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Campaign files (relative to --dir)")]
pub struct CampaignFiles {
    // No clap defaults, so that a value given before the command can stand; the defaults are
    // in the help text instead.
    /// The configuration file [default: envoi.toml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The recipients file (.csv, .xlsx, .xls or .ods) [default: recipients under [campaign]
    /// in envoi.toml, else recipients.csv]
    #[arg(long, value_name = "FILE")]
    pub recipients: Option<PathBuf>,
    /// The letter template [default: templates/letter.hbs]
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
}

/// The relay settings a command line may override, for the commands that talk to the relay.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Relay (overrides [smtp] in envoi.toml)")]
pub struct RelayArgs {
    /// SMTP relay host (overrides [smtp] host)
    #[arg(long, env = "ENVOI_SMTP_HOST", value_name = "HOST")]
    pub smtp_host: Option<String>,
    /// SMTP relay port (overrides [smtp] port)
    #[arg(long, env = "ENVOI_SMTP_PORT", value_name = "PORT")]
    pub smtp_port: Option<u16>,
    /// tls, starttls or none (overrides [smtp] security)
    #[arg(long, env = "ENVOI_SMTP_SECURITY", value_name = "MODE")]
    pub security: Option<String>,
    /// SMTP user name (overrides [smtp] username); the password comes from ENVOI_SMTP_PASSWORD
    /// or password_command, never from a flag
    #[arg(long, env = "ENVOI_SMTP_USER", value_name = "USER")]
    pub smtp_user: Option<String>,
}

impl GlobalArgs {
    /// The campaign in `dir`, with the files and relay the command line named, after the
    /// command or before it (defaults for what it did not name).
    pub fn new(
        dir: PathBuf,
        before: (&CampaignFiles, &RelayArgs),
        files: Option<&CampaignFiles>,
        relay: Option<&RelayArgs>,
    ) -> Self {
        let (before_files, before_relay) = before;
        let paths = CampaignPaths::default();
        // The value given after the command, else the one given before it.
        fn later<T: Clone>(after: Option<&Option<T>>, before: &Option<T>) -> Option<T> {
            after.and_then(Option::as_ref).or(before.as_ref()).cloned()
        }
        let file = |field: fn(&CampaignFiles) -> &Option<PathBuf>| {
            later(files.map(field), field(before_files))
        };
        GlobalArgs {
            dir,
            config: file(|f| &f.config).unwrap_or(paths.config),
            recipients: file(|f| &f.recipients).or(paths.recipients),
            template: file(|f| &f.template).unwrap_or(paths.template),
            smtp_host: later(relay.map(|r| &r.smtp_host), &before_relay.smtp_host),
            smtp_port: later(relay.map(|r| &r.smtp_port), &before_relay.smtp_port),
            security: later(relay.map(|r| &r.security), &before_relay.security),
            smtp_user: later(relay.map(|r| &r.smtp_user), &before_relay.smtp_user),
        }
    }

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

    /// A path the user gave relative to `--dir`, as it is on disk: `outbox` with the default
    /// `--dir .`, `campaign/outbox` with `--dir campaign`, unchanged when absolute.
    pub fn relative(&self, path: &std::path::Path) -> PathBuf {
        if self.dir == std::path::Path::new(".") {
            path.to_path_buf()
        } else {
            self.dir.join(path)
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
    #[arg(id = "target", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also connect to the relay: negotiate TLS and log in, without sending anything
    #[arg(long)]
    pub smtp: bool,
    #[command(flatten)]
    pub files: CampaignFiles,
    #[command(flatten)]
    pub relay: RelayArgs,
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
    /// Write one .eml per recipient, a page per letter and an index.html into DIR (relative
    /// to --dir) instead of printing
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// How to print letters on the terminal
    #[arg(long, value_enum, default_value_t = PreviewFormat::Text)]
    pub format: PreviewFormat,
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub files: CampaignFiles,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Check and plan everything, print what a send would do, send and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Send the selected letters to ADDR only (no Cc, no Bcc), to see them as recipients will
    #[arg(long, value_name = "ADDR")]
    pub test_to: Option<String>,
    #[command(flatten)]
    pub selection: Selection,
    /// Send again to recipients the log records as sent or unknown (all selected rows, or those
    /// named with --row)
    #[arg(long)]
    pub resend: bool,
    /// Send the good rows and log bad ones as skipped, instead of refusing to start
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Do not ask for confirmation (needed when not on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The delivery log, relative to --dir
    #[arg(long, value_name = "FILE", default_value = DEFAULT_LOG)]
    pub log: PathBuf,
    #[command(flatten)]
    pub files: CampaignFiles,
    #[command(flatten)]
    pub relay: RelayArgs,
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
    let Cli {
        dir,
        files,
        relay,
        command,
    } = cli;
    let before = (&files, &relay);
    match command {
        Command::Init(args) => {
            commands::init::execute(&GlobalArgs::new(dir, before, None, None), &args)
        }
        Command::Check(args) => {
            let global = GlobalArgs::new(dir, before, Some(&args.files), Some(&args.relay));
            commands::check::execute(&global, &args)
        }
        Command::Preview(args) => {
            let global = GlobalArgs::new(dir, before, Some(&args.files), None);
            commands::preview::execute(&global, &args)
        }
        Command::Send(args) => {
            let global = GlobalArgs::new(dir, before, Some(&args.files), Some(&args.relay));
            commands::send::execute(&global, &args)
        }
        Command::Report(args) => {
            commands::report::execute(&GlobalArgs::new(dir, before, None, None), &args)
        }
        Command::Track(args) => {
            commands::track::execute(&GlobalArgs::new(dir, before, None, None), &args)
        }
    }
}
