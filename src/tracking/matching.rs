//! Which letter of the delivery log a report is about. In order, the first that names a letter
//! wins, and nothing is guessed:
//!
//! 1. the envelope id (`Original-Envelope-Id`), which envoi sets to the letter token
//!    ([`crate::compose::letter_token`]);
//! 2. the returned Message-ID (the report's returned headers or message; for a read receipt
//!    `Original-Message-ID`, `In-Reply-To`, `References`);
//! 3. the VERP token: the token's 32 hex digits anywhere in the local part of an address the
//!    report was sent to (`To`, `Delivered-To`, `Envelope-To`, `X-Original-To`, `Return-Path`);
//! 4. the recipient's address (`Original-Recipient`, `Final-Recipient`, or the address a plain
//!    bounce names), when one letter of the log went to it.

use std::collections::HashMap;

use super::report::{Notice, Report};
use crate::compose::letter_token;
use crate::delivery_log::{Entry, History};

/// How a report was tied to its letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    EnvelopeId,
    MessageId,
    Verp,
    Recipient,
}

/// A report's notice, tied to a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The letter's index in [`Letters`].
    pub letter: usize,
    pub basis: Basis,
    /// The notice is about a Cc or Bcc copy of the letter, not its addressee: its
    /// `Original-Recipient` is another address, or its address is in the returned `Cc`.
    pub copy: bool,
}

/// The letters of a log, by every key a report can name them with.
#[derive(Debug, Default)]
pub struct Letters {
    /// The last entry of every recipient.
    pub entries: Vec<Entry>,
    by_token: HashMap<String, usize>,
    by_message_id: HashMap<String, usize>,
    by_email: HashMap<String, usize>,
}

impl Letters {
    pub fn new(history: &History) -> Letters {
        let mut letters = Letters::default();
        for entry in history.entries() {
            let at = letters.entries.len();
            if let Some(token) = letter_token(&entry.message_id) {
                letters.by_token.insert(token.to_ascii_lowercase(), at);
            }
            if !entry.message_id.trim().is_empty() {
                letters.by_message_id.insert(id_key(&entry.message_id), at);
            }
            if !entry.email.trim().is_empty() {
                letters
                    .by_email
                    .insert(entry.email.trim().to_lowercase(), at);
            }
            letters.entries.push(entry.clone());
        }
        letters
    }

    /// The letter `notice` of `report` is about, if the report names one.
    pub fn find(&self, report: &Report, notice: &Notice) -> Option<Match> {
        let by_report = self
            .by_envelope_id(report)
            .map(|at| (at, Basis::EnvelopeId))
            .or_else(|| self.by_message_id(report).map(|at| (at, Basis::MessageId)))
            .or_else(|| self.by_verp(report).map(|at| (at, Basis::Verp)));
        if let Some((letter, basis)) = by_report {
            let copy = is_copy(&self.entries[letter], report, notice);
            return Some(Match {
                letter,
                basis,
                copy,
            });
        }
        notice
            .addresses()
            .find_map(|address| self.by_email.get(&address.trim().to_lowercase()).copied())
            .map(|letter| Match {
                letter,
                basis: Basis::Recipient,
                copy: false,
            })
    }

    fn by_envelope_id(&self, report: &Report) -> Option<usize> {
        let id = report.envelope_id.as_deref()?.trim().to_ascii_lowercase();
        self.by_token.get(&id).copied()
    }

    fn by_message_id(&self, report: &Report) -> Option<usize> {
        report.message_ids.iter().find_map(|id| {
            letter_token(id)
                .and_then(|token| self.by_token.get(&token.to_ascii_lowercase()))
                .or_else(|| self.by_message_id.get(&id_key(id)))
                .copied()
        })
    }

    fn by_verp(&self, report: &Report) -> Option<usize> {
        report.sent_to.iter().find_map(|address| {
            let local = address
                .rsplit_once('@')
                .map_or(address.as_str(), |(l, _)| l);
            hex_runs(local).find_map(|token| self.by_token.get(&token).copied())
        })
    }
}

/// Every 32-character window of hex digits in `local`, lower-cased.
fn hex_runs(local: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = local.as_bytes();
    (0..bytes.len().saturating_sub(31))
        .filter(move |&i| bytes[i..i + 32].iter().all(u8::is_ascii_hexdigit))
        .map(move |i| local[i..i + 32].to_ascii_lowercase())
}

/// Message-IDs compare without their angle brackets and surrounding space.
fn id_key(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn is_copy(letter: &Entry, report: &Report, notice: &Notice) -> bool {
    let addressee = letter.email.trim().to_lowercase();
    let same = |a: &String| a.trim().to_lowercase() == addressee;
    if notice
        .addresses()
        .any(|a| a.trim().to_lowercase() == addressee)
    {
        return false;
    }
    let named_elsewhere =
        !notice.original_recipient.is_empty() && !notice.original_recipient.iter().any(same);
    let in_cc = notice.addresses().any(|a| {
        report
            .returned_cc
            .iter()
            .any(|cc| cc.eq_ignore_ascii_case(a.trim()))
    });
    named_elsewhere || in_cc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery_log::{DeliveryLog, Status};
    use crate::tracking::report::{Fate, Kind};

    const TOKEN_A: &str = "0123456789abcdef0123456789abcdef";
    const TOKEN_B: &str = "fedcba9876543210fedcba9876543210";

    fn letters() -> Letters {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("delivery-log.csv");
        let (log, _) = DeliveryLog::open(&path).expect("open");
        for (row, email, token) in [(2, "a@un.example", TOKEN_A), (3, "b@coe.example", TOKEN_B)] {
            log.record(
                &Entry::now(row, email, "Org", Status::Sent)
                    .with_message_id(&format!("<{token}.envoi@ombudsman.example>")),
            )
            .expect("record");
        }
        log.close().expect("close");
        Letters::new(&History::read(&path).expect("read"))
    }

    fn report() -> Report {
        Report {
            id: "<r@x>".into(),
            kind: Kind::Dsn,
            date: None,
            envelope_id: None,
            message_ids: Vec::new(),
            returned_cc: Vec::new(),
            sent_to: Vec::new(),
            reporter: String::new(),
            notices: Vec::new(),
        }
    }

    fn notice(address: &str) -> Notice {
        Notice {
            final_recipient: vec![address.into()],
            original_recipient: Vec::new(),
            fate: Fate::Bounced,
            status: "5.1.1".into(),
            diagnostic: String::new(),
            remote_server: String::new(),
        }
    }

    #[test]
    fn each_key_in_order() {
        let letters = letters();
        let n = notice("b@coe.example");
        let mut r = report();
        assert_eq!(
            letters.find(&r, &n).map(|m| (m.letter, m.basis)),
            Some((1, Basis::Recipient))
        );
        r.sent_to = vec![format!(
            "bounces+{}@ombudsman.example",
            TOKEN_A.to_uppercase()
        )];
        assert_eq!(
            letters.find(&r, &n).map(|m| (m.letter, m.basis)),
            Some((0, Basis::Verp))
        );
        r.message_ids = vec![format!("<{TOKEN_B}.envoi@ombudsman.example>")];
        assert_eq!(
            letters.find(&r, &n).map(|m| (m.letter, m.basis)),
            Some((1, Basis::MessageId))
        );
        r.envelope_id = Some(TOKEN_A.into());
        assert_eq!(
            letters.find(&r, &n).map(|m| (m.letter, m.basis)),
            Some((0, Basis::EnvelopeId))
        );
    }

    #[test]
    fn nothing_is_guessed() {
        let letters = letters();
        let mut r = report();
        r.envelope_id = Some("not-a-token".into());
        r.message_ids = vec!["<other@x.example>".into()];
        r.sent_to = vec!["bounces@ombudsman.example".into()];
        assert_eq!(letters.find(&r, &notice("c@else.example")), None);
    }

    #[test]
    fn a_notice_about_a_cc_is_a_copy() {
        let letters = letters();
        let mut r = report();
        r.envelope_id = Some(TOKEN_A.into());
        let mut n = notice("cc@un.example");
        assert!(
            !letters.find(&r, &n).expect("match").copy,
            "an unknown final address may be an alias"
        );
        n.original_recipient = vec!["cc@un.example".into()];
        assert!(letters.find(&r, &n).expect("match").copy);
        let mut n = notice("cc@un.example");
        r.returned_cc = vec!["CC@un.example".into()];
        assert!(letters.find(&r, &n).expect("match").copy);
        n.original_recipient = vec!["a@un.example".into()];
        assert!(!letters.find(&r, &n).expect("match").copy);
    }
}
