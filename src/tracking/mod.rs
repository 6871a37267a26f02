//! Delivery tracking: reading delivery reports, bounces and read receipts, matching each to the
//! letter it is about, and recording what became of the letter in the delivery log.
//!
//! ```text
//! Maildir / mbox / .eml / IMAP   sources        → RawMessage (bytes + where they came from)
//!   → a report, or not one       report         (the MIME shape: which parser reads it)
//!       RFC 3464 field groups    fields, dsn
//!       RFC 8098 MDNs            mdn
//!       Exim, qmail, Exchange    bounces        (the common non-standard shapes)
//!   → the letter it is about     matching       (envelope id, Message-ID, VERP token, address)
//!   → a log row, or nothing      ledger         (status order, idempotency)
//! ```
//!
//! Reading is all tracking does with mail: it never deletes, moves or flags a message.

pub mod bounces;
pub mod dsn;
pub mod fields;
pub mod ledger;
pub mod matching;
pub mod mdn;
pub mod report;
pub mod sources;

pub use ledger::{Applied, Tracker};
pub use report::{Fate, Notice, Report, parse};

/// One message to read as a possible report, and where it came from (for warnings and the
/// unmatched list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Where the message is, as the user can find it again: `INBOX UID 42`,
    /// `bounces/cur/1733.eml`, `archive.mbox, message 3`.
    pub origin: String,
    pub bytes: Vec<u8>,
}

/// A message that looks like a report but cannot be read as one; it is skipped with a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedReport(pub String);

impl MalformedReport {
    pub fn new(reason: impl Into<String>) -> MalformedReport {
        MalformedReport(reason.into())
    }
}
