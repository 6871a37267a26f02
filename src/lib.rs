//! envoi: one formal statement, many organisations, a personalised letter each, and a record
//! of what happened to every one.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! campaign folder + envoi.toml   campaign, config, secret
//!   → addressee rows             recipients (CSV in any declared encoding, .xlsx/.xls/.ods)
//!   → rendered letters           template (front matter + Handlebars), markdown, locale
//!   → RFC 5322 messages          compose            (pipeline drives these three)
//!   → signed messages            signing            (S/MIME, then DKIM; optional)
//!   → what to send               send_plan          (log history × rows: never twice)
//!   → SMTP delivery              delivery (sessions, capabilities, DSN, rate, retry)
//!   → delivery-log.csv           delivery_log
//!   → copy in Sent               mailbox            (IMAP; optional)
//!   → summary                    report
//! delivery reports, bounces      tracking (sources, dsn, mdn, bounces, matching, ledger),
//!   → rows in delivery-log.csv   read from files or from the mailbox over IMAP
//! ```
//!
//! The binary (`src/main.rs`) only parses the command line, calls [`cli::run`] and maps the
//! result to an exit code; every command lives in [`commands`] with one `execute()` each.

pub mod campaign;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod config;
pub mod delivery;
pub mod delivery_log;
pub mod error;
pub mod locale;
pub mod mailbox;
pub mod markdown;
pub mod pipeline;
pub mod recipients;
pub mod report;
pub mod secret;
pub mod send_plan;
pub mod signing;
pub mod spool;
pub mod template;
pub mod text;
pub mod tracking;

pub use error::{Error, Location, Problem, Result};
