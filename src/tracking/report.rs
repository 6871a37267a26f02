//! What a report says, whatever its shape, and the MIME reading that picks the parser: an RFC
//! 3464 `multipart/report` (delivery-status), an RFC 8098 read receipt (disposition-
//! notification), or one of the non-standard bounces of [`super::bounces`].

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::{MalformedReport, RawMessage, bounces, dsn, mdn};
use crate::delivery_log::Status;

/// What a report says became of the letter at one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Delayed,
    Delivered,
    Bounced,
    Read,
    /// Passed on to a system that does not report back (DSN `relayed`): no status to record.
    Relayed,
}

impl Fate {
    /// The log status this fate is recorded as, if any.
    pub fn status(self) -> Option<Status> {
        match self {
            Fate::Delayed => Some(Status::Delayed),
            Fate::Delivered => Some(Status::Delivered),
            Fate::Bounced => Some(Status::Bounced),
            Fate::Read => Some(Status::Read),
            Fate::Relayed => None,
        }
    }
}

/// One recipient's part of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The address the report is about, every spelling it gives (`Final-Recipient`, or the
    /// address a plain bounce names).
    pub final_recipient: Vec<String>,
    /// The address as the sender gave it (`Original-Recipient`, from ORCPT), if stated.
    pub original_recipient: Vec<String>,
    pub fate: Fate,
    /// The enhanced status code (`5.1.1`), or empty.
    pub status: String,
    /// What the receiving side said (`550 5.1.1 <jane@un.example>: user unknown`), or empty.
    pub diagnostic: String,
    /// The server that refused, delayed or took the letter, or empty.
    pub remote_server: String,
}

impl Notice {
    /// Every spelling of every address the notice names, original first.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.original_recipient
            .iter()
            .chain(&self.final_recipient)
            .map(String::as_str)
    }
}

/// Which shape the report came in, for messages and the unmatched list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dsn,
    Mdn,
    Exim,
    Qmail,
    Exchange,
    Gmail,
    /// A bounce that names its failed addresses only in `X-Failed-Recipients`.
    FailedRecipients,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Dsn => "delivery status notification",
            Kind::Mdn => "read receipt",
            Kind::Exim => "Exim bounce",
            Kind::Qmail => "qmail bounce",
            Kind::Exchange => "Exchange non-delivery report",
            Kind::Gmail => "Gmail bounce",
            Kind::FailedRecipients => "bounce",
        }
    }
}

/// A report, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The report's own Message-ID (`<...>`), or `sha256:<hex>` of its bytes when it has none:
    /// how a report already applied is recognised.
    pub id: String,
    pub kind: Kind,
    /// When the report was written (its `Date`), as seconds since 1970, if stated.
    pub date: Option<i64>,
    /// `Original-Envelope-Id`: envoi's letter token, when the relay passed ENVID on.
    pub envelope_id: Option<String>,
    /// Message-IDs of the letter the report is about: from the returned headers or message, or
    /// for a read receipt `Original-Message-ID`, `In-Reply-To` and `References`.
    pub message_ids: Vec<String>,
    /// Addresses in the returned letter's `Cc`, to tell a report about a copy.
    pub returned_cc: Vec<String>,
    /// Addresses the report itself was sent to (`To`, `Delivered-To`, `Envelope-To`,
    /// `X-Original-To`, `Return-Path`), where a VERP token is looked for.
    pub sent_to: Vec<String>,
    /// The server (or mail client, for a read receipt) that wrote the report.
    pub reporter: String,
    pub notices: Vec<Notice>,
}

/// The headers of the letter a report returns, when it returns them.
#[derive(Debug, Default)]
pub struct Returned {
    pub message_ids: Vec<String>,
    pub cc: Vec<String>,
}

/// Reads one message. `Ok(None)`: it is not a report (ordinary mail, left alone). `Err`: it
/// looks like a report but cannot be read as one.
pub fn parse(raw: &RawMessage) -> Result<Option<Report>, MalformedReport> {
    let message = match parse_mime(&raw.bytes, Extent::Whole) {
        Parsed::Message(message) => message,
        Parsed::NoHeaders => {
            return Err(MalformedReport::new(
                "is not a mail message (no header could be read)",
            ));
        }
        Parsed::ParserFailed => {
            return Err(MalformedReport::new(
                "could not be read: its MIME structure is damaged beyond what the mail parser can read",
            ));
        }
    };
    let returned = returned_headers(&message);
    let mut report = match report_part(&message) {
        Some(ReportPart::DeliveryStatus(text)) => {
            let status = dsn::parse(&text)?;
            let kind = bounces::vendor(&message).unwrap_or(Kind::Dsn);
            Report {
                kind,
                envelope_id: status.envelope_id,
                reporter: status.reporting_mta,
                notices: status.notices,
                ..Report::empty(&message, raw)
            }
        }
        Some(ReportPart::Disposition(text)) => {
            let receipt = mdn::parse(&text)?;
            let mut report = Report {
                kind: Kind::Mdn,
                reporter: receipt.reporting_ua,
                notices: vec![receipt.notice],
                ..Report::empty(&message, raw)
            };
            report.message_ids.extend(receipt.original_message_id);
            // A receipt that lost Original-Message-ID still answers the letter.
            report.message_ids.extend(message_ids_in(
                message.header_raw("In-Reply-To").unwrap_or_default(),
            ));
            report.message_ids.extend(message_ids_in(
                message.header_raw("References").unwrap_or_default(),
            ));
            report
        }
        None => match bounces::parse(&message)? {
            Some(bounce) => Report {
                kind: bounce.kind,
                reporter: bounce.reporter,
                notices: bounce.notices,
                message_ids: bounce.message_ids,
                ..Report::empty(&message, raw)
            },
            None => return Ok(None),
        },
    };
    report.message_ids.extend(returned.message_ids);
    report.returned_cc = returned.cc;
    if report.reporter.is_empty() {
        report.reporter = reporting_host(&message);
    }
    dedup(&mut report.message_ids);
    Ok(Some(report))
}

impl Report {
    /// The parts every report shape shares, read from the report's own headers.
    fn empty(message: &Message<'_>, raw: &RawMessage) -> Report {
        let id = match message.message_id() {
            // A Message-ID holds no white space or parentheses: dropping any a hostile or broken
            // header has keeps the id one token, so it reads back from a row's detail exactly.
            Some(id) if id.contains(|c: char| !c.is_whitespace() && c != '(' && c != ')') => {
                let id: String = id
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '(' && *c != ')')
                    .collect();
                format!("<{id}>")
            }
            _ => {
                let digest = Sha256::digest(&raw.bytes);
                let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("sha256:{hex}")
            }
        };
        let mut sent_to = Vec::new();
        for (name, value) in message.headers_raw() {
            if [
                "to",
                "delivered-to",
                "envelope-to",
                "x-original-to",
                "return-path",
            ]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
            {
                sent_to.extend(addresses_in(value));
            }
        }
        Report {
            id,
            kind: Kind::Dsn,
            date: message.date().map(|d| d.to_timestamp()),
            envelope_id: None,
            message_ids: Vec::new(),
            returned_cc: Vec::new(),
            sent_to,
            reporter: String::new(),
            notices: Vec::new(),
        }
    }
}

enum ReportPart {
    DeliveryStatus(String),
    Disposition(String),
}

/// The machine-readable part of a report: `message/delivery-status` or
/// `message/disposition-notification` (or their RFC 6533 `global-` forms), wherever it sits.
fn report_part(message: &Message<'_>) -> Option<ReportPart> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        if !ct.ctype().eq_ignore_ascii_case("message") {
            return None;
        }
        let text = || String::from_utf8_lossy(part.contents()).into_owned();
        match ct.subtype()?.to_ascii_lowercase().as_str() {
            "delivery-status" | "global-delivery-status" => {
                Some(ReportPart::DeliveryStatus(text()))
            }
            "disposition-notification" | "global-disposition-notification" => {
                Some(ReportPart::Disposition(text()))
            }
            _ => None,
        }
    })
}

/// The Message-ID and Cc of the letter the report returns: a `text/rfc822-headers` or
/// `message/global-headers` part, or a returned `message/rfc822` / `message/global`.
fn returned_headers(message: &Message<'_>) -> Returned {
    let mut returned = Returned::default();
    let mut take = |headers: &Message<'_>| {
        returned
            .message_ids
            .extend(headers.message_id().map(|id| format!("<{}>", id.trim())));
        for (name, value) in headers.headers_raw() {
            if name.eq_ignore_ascii_case("cc") {
                returned.cc.extend(addresses_in(value));
            }
        }
    };
    for part in message.parts.iter().skip(1) {
        match &part.body {
            PartType::Message(inner) => take(inner),
            _ => {
                let Some(ct) = part.content_type() else {
                    continue;
                };
                let subtype = ct.subtype().unwrap_or_default().to_ascii_lowercase();
                let is_headers = (ct.ctype().eq_ignore_ascii_case("text")
                    && subtype == "rfc822-headers")
                    || (ct.ctype().eq_ignore_ascii_case("message") && subtype == "global-headers");
                if is_headers
                    && let Parsed::Message(headers) = parse_mime(part.contents(), Extent::Headers)
                {
                    take(&headers);
                }
            }
        }
    }
    returned
}

enum Extent {
    Whole,
    Headers,
}

enum Parsed<'x> {
    Message(Message<'x>),
    NoHeaders,
    ParserFailed,
}

/// mail-parser documents that it never panics, but its debug assertions fire on some damaged
/// MIME (found by the `reports` fuzz target: "Invalid part ID, could not find multipart"), and
/// any panic in it must cost one message, never the whole `track` run. Nothing is shared
/// with the parser but the bytes, so nothing is left half-changed by an unwind.
fn parse_mime(bytes: &[u8], extent: Extent) -> Parsed<'_> {
    let parsed = std::panic::catch_unwind(|| {
        let parser = MessageParser::default();
        match extent {
            Extent::Whole => parser.parse(bytes),
            Extent::Headers => parser.parse_headers(bytes),
        }
    });
    match parsed {
        Ok(Some(message)) => Parsed::Message(message),
        Ok(None) => Parsed::NoHeaders,
        Err(_) => Parsed::ParserFailed,
    }
}

/// The host that wrote a report that does not name itself: the `by` of its first `Received`
/// header, else the domain of its Message-ID.
fn reporting_host(message: &Message<'_>) -> String {
    if let Some(by) = message.received().and_then(|r| r.by.as_ref()) {
        return by.to_string();
    }
    message
        .message_id()
        .and_then(|id| id.rsplit_once('@'))
        .map(|(_, domain)| domain.trim_end_matches('>').to_string())
        .unwrap_or_default()
}

/// Every `<id>` in a header value (`In-Reply-To`, `References`, a quoted `Message-ID:` line).
pub fn message_ids_in(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let id = after[..close].trim();
        if id.contains('@') && !id.contains(char::is_whitespace) {
            ids.push(format!("<{id}>"));
        }
        rest = &after[close + 1..];
    }
    ids
}

/// Every address in a header value or a line of text: the pieces holding an `@`, without the
/// angle brackets, quotes or punctuation around them.
pub fn addresses_in(text: &str) -> Vec<String> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '(' | ')' | '"' | '\'')
    })
    .map(|piece| piece.trim_matches(|c: char| matches!(c, '.' | ':' | '[' | ']')))
    .filter(|piece| {
        piece.len() > 2
            && piece
                .find('@')
                .is_some_and(|at| at > 0 && at < piece.len() - 1)
    })
    .map(str::to_string)
    .collect()
}

fn dedup(list: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|item| seen.insert(item.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_found_in_reference_lists() {
        assert_eq!(
            message_ids_in("<a@x.example> <b@y.example>\r\n <not an id> <c>"),
            vec!["<a@x.example>", "<b@y.example>"]
        );
    }

    #[test]
    fn addresses_are_found_among_names_and_punctuation() {
        assert_eq!(
            addresses_in("\"Bounces\" <bounces+0a1b@office.example>, x@y.example."),
            vec!["bounces+0a1b@office.example", "x@y.example"]
        );
        assert!(addresses_in("@ nobody@ @x").is_empty());
    }

    #[test]
    fn a_message_that_is_no_report_is_left_alone() {
        let raw = RawMessage {
            origin: "x.eml".into(),
            bytes: b"From: a@x.example\r\nSubject: Thank you\r\n\r\nWe received your letter.\r\n"
                .to_vec(),
        };
        assert_eq!(parse(&raw), Ok(None));
    }

    #[test]
    fn nothing_at_all_is_malformed() {
        let raw = RawMessage {
            origin: "x.eml".into(),
            bytes: Vec::new(),
        };
        assert!(parse(&raw).is_err());
    }

    #[test]
    fn a_message_the_mail_parser_fails_on_costs_only_that_message() {
        // Found by the `reports` fuzz target: nested message/rfc822 parts in a broken multipart
        // trip mail-parser's debug assertion "Invalid part ID, could not find multipart". Its
        // release build reads such a message as best it can; wherever it panics, the panic is
        // this one message's problem.
        let raw = RawMessage {
            origin: "damaged-mime.eml".into(),
            bytes: include_bytes!("../../tests/fixtures/reports/damaged-mime.eml").to_vec(),
        };
        let read = parse(&raw);
        if cfg!(debug_assertions) {
            assert!(
                matches!(&read, Err(MalformedReport(reason)) if reason.contains("MIME structure is damaged")),
                "{read:?}"
            );
        }
    }

    #[test]
    fn a_folded_message_id_is_one_token() {
        // Found by fuzzing: a folded id did not read back from the row's one-line detail.
        let raw = RawMessage {
            origin: "x.eml".into(),
            bytes: b"From: MAILER-DAEMON@x.example\r\nMessage-ID: <a@relay\r\n (report x).example>\r\nX-Failed-Recipients: a@x.example\r\n\r\n550 5.1.1 unknown\r\n".to_vec(),
        };
        let report = parse(&raw).expect("reads").expect("a report");
        assert_eq!(report.id, "<a@relayreportx.example>");
    }

    #[test]
    fn a_report_without_message_id_is_named_by_its_digest() {
        let raw = RawMessage {
            origin: "x.eml".into(),
            bytes: b"From: MAILER-DAEMON@x.example\r\nX-Failed-Recipients: a@x.example\r\nSubject: failure\r\n\r\n550 5.1.1 unknown\r\n".to_vec(),
        };
        let report = parse(&raw).expect("reads").expect("a report");
        assert!(
            report.id.starts_with("sha256:") && report.id.len() == 39,
            "{}",
            report.id
        );
    }
}
