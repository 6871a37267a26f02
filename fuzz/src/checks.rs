//! Properties that every composed message must have, whatever the rows hold. Shared by the
//! fuzz targets (`fuzz/`) and the property tests (`tests/cases/properties.rs`, which includes
//! this file by path), so both hold envoi to the same definition.
//!
//! Each check returns `Err(what is wrong)` rather than panicking, so a caller can add context
//! (the input) before failing.

use std::path::Path;

use envoi::Problem;
use envoi::compose::Composed;
use mail_parser::{Address, HeaderName, Message, MessageParser, MimeHeaders};

/// The longest line RFC 5322 allows, without its CRLF.
pub const MAX_LINE_OCTETS: usize = 998;
/// The longest encoded word RFC 2047 allows.
pub const MAX_ENCODED_WORD: usize = 75;

/// The envoi.toml of the scratch campaigns: a sender, a reply-to and a loopback relay.
pub const CONFIG: &str = "[campaign]\nid = \"hostile-input\"\n\n[sender]\nfrom = \"Commissioner for Human Rights (Ombudsman) <ombudsman@ombudsman.example>\"\nreply_to = \"office@ombudsman.example\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\n";

/// A letter that puts row values everywhere a row value can go: the subject, the From and Cc
/// display names, an extra header and the body (the To display name is the `name` column).
pub const LETTER: &str = r#"+++
subject = "Statement for {{organisation}}: {{note}}"
from = "{{sender}} <ombudsman@ombudsman.example>"
cc = ["Office of {{name}} <cc@ombudsman.example>", "archive@ombudsman.example"]
[headers]
X-Reference = "{{note}}"
+++
{{salutation}},

I have the honour to transmit to {{organisation}} the following statement, {{name}}.

{{note}}

{{> statement}}
"#;
/// The partial [`LETTER`] includes.
pub const STATEMENT: &str = "## Statement\n\nThe statement text for {{organisation}}.\n";
/// The columns [`LETTER`] uses, `email` first.
pub const COLUMNS: [&str; 6] = [
    "email",
    "name",
    "organisation",
    "salutation",
    "note",
    "sender",
];

/// Writes a campaign folder: `envoi.toml`, `templates/letter.hbs`, `templates/statement.md`
/// and `recipients.csv`.
pub fn write_campaign(dir: &Path, letter: &str, statement: &str, recipients: &[u8]) {
    std::fs::create_dir_all(dir.join("templates")).expect("templates folder");
    std::fs::write(dir.join("envoi.toml"), CONFIG).expect("envoi.toml");
    std::fs::write(dir.join("templates/letter.hbs"), letter).expect("letter.hbs");
    std::fs::write(dir.join("templates/statement.md"), statement).expect("statement.md");
    std::fs::write(dir.join("recipients.csv"), recipients).expect("recipients.csv");
}

/// A recipients file with `header` and `rows`, quoted as a spreadsheet would save it.
pub fn recipients_csv(header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(header).expect("csv header");
    for row in rows {
        writer.write_record(row).expect("csv row");
    }
    writer.into_inner().expect("csv bytes")
}

/// Every problem must say where: a spreadsheet row (in its location or, for a template
/// problem, as "row N" in its text) or a template line.
pub fn names_row_or_line(problem: &Problem, row: usize) -> Result<(), String> {
    let location = &problem.location;
    let row_named = location.row == Some(row) || problem.message.contains(&format!("row {row})"));
    if row_named || location.line.is_some() {
        Ok(())
    } else {
        Err(format!(
            "problem names neither row {row} nor a line: {problem}"
        ))
    }
}

/// Parses a composed message back, as a mail client would.
pub fn parse(bytes: &[u8]) -> Result<Message<'_>, String> {
    MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| "mail-parser cannot parse the message".to_owned())
}

/// What a row must never change: which headers there are, who receives the letter, how many
/// MIME parts it has and of which types.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    pub header_names: Vec<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Vec<String>,
    pub envelope: Vec<String>,
    pub parts: Vec<String>,
}

/// The addresses of a header, lower-cased, the letter's own addressee (which differs from row
/// to row by design) written `<addressee>`.
fn addresses(address: Option<&Address<'_>>, addressee: &str) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .map(|addr| addr.address().unwrap_or(""))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|a| anonymous(a, addressee))
        .collect()
}

fn anonymous(address: &str, addressee: &str) -> String {
    if address.eq_ignore_ascii_case(addressee) {
        "<addressee>".to_owned()
    } else {
        address.to_ascii_lowercase()
    }
}

/// The shape of a composed message, read back from its bytes.
pub fn shape(composed: &Composed) -> Result<Shape, String> {
    let message = parse(&composed.bytes)?;
    let parts = message
        .parts
        .iter()
        .map(|part| {
            part.content_type()
                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")))
                .unwrap_or_default()
        })
        .collect();
    Ok(Shape {
        header_names: message
            .headers()
            .iter()
            .map(|h| h.name().to_ascii_lowercase())
            .collect(),
        from: addresses(message.from(), &composed.email),
        to: addresses(message.to(), &composed.email),
        cc: addresses(message.cc(), &composed.email),
        reply_to: addresses(message.reply_to(), &composed.email),
        envelope: composed
            .envelope_recipients()
            .map(|a| anonymous(a.as_ref(), &composed.email))
            .collect(),
        parts,
    })
}

/// `letter` has exactly the headers, recipients and parts of `baseline`.
pub fn same_shape(baseline: &Composed, letter: &Composed) -> Result<(), String> {
    let (expected, actual) = (shape(baseline)?, shape(letter)?);
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "a row value changed the message's shape:\nbaseline {expected:#?}\nletter   {actual:#?}"
        ))
    }
}

/// Line endings as a reader compares text: CRLF and lone CR become LF.
pub fn normalise_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The display name of the first address of a header.
fn name_of<'a>(address: Option<&'a Address<'_>>) -> Option<&'a str> {
    address.and_then(|a| a.first()).and_then(|a| a.name())
}

/// Subject, display names, extra headers and the text part read back exactly as composed.
pub fn round_trips(composed: &Composed) -> Result<(), String> {
    // Extra headers are unstructured text (RFC 5322 section 3.2.5): read them as a mail client
    // shows them, encoded words decoded.
    let parser = composed.headers.iter().fold(
        MessageParser::new().with_minimal_headers(),
        |parser, (name, _)| parser.header_text(HeaderName::Other(name.clone().into())),
    );
    let message = parser
        .parse(&composed.bytes[..])
        .ok_or_else(|| "mail-parser cannot parse the message".to_owned())?;
    let compare = |what: &str, expected: &str, actual: Option<&str>| {
        if actual == Some(expected) {
            Ok(())
        } else {
            Err(format!(
                "{what} does not survive: composed {expected:?}, read back {actual:?}"
            ))
        }
    };
    compare("Subject", &composed.subject, message.subject())?;
    if let Some(name) = &composed.from.name {
        compare("From display name", name, name_of(message.from()))?;
    }
    if let Some(name) = &composed.to.name {
        compare("To display name", name, name_of(message.to()))?;
    }
    let cc_names: Vec<Option<&str>> = message
        .cc()
        .map(|a| a.iter().map(|addr| addr.name()).collect())
        .unwrap_or_default();
    for (mailbox, read) in composed.cc.iter().zip(cc_names) {
        if let Some(name) = &mailbox.name {
            compare("Cc display name", name, read)?;
        }
    }
    for (name, value) in &composed.headers {
        compare(
            &format!("header {name}"),
            value,
            // An empty value reads back as an empty header (presence is checked by the shape).
            Some(
                message
                    .header(name.as_str())
                    .and_then(|v| v.as_text())
                    .unwrap_or(""),
            ),
        )?;
    }
    let text = message.body_text(0).map(|t| normalise_newlines(&t));
    compare(
        "text part",
        &normalise_newlines(&composed.text),
        text.as_deref(),
    )
}

/// The header section is 7-bit, CRLF-terminated lines of at most 998 octets, and every
/// encoded word in it is well formed and at most 75 characters long.
pub fn headers_are_well_folded(bytes: &[u8]) -> Result<(), String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no blank line ends the header section")?;
    let section = &bytes[..end];
    for (index, line) in section.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let shown = String::from_utf8_lossy(line);
        if line.contains(&b'\r') {
            return Err(format!(
                "header line {} holds a bare CR: {shown:?}",
                index + 1
            ));
        }
        if line.len() > MAX_LINE_OCTETS {
            return Err(format!(
                "header line {} is {} octets long",
                index + 1,
                line.len()
            ));
        }
        if !line.is_ascii() {
            return Err(format!("header line {} is not ASCII: {shown:?}", index + 1));
        }
        encoded_words_are_well_formed(&shown)
            .map_err(|e| format!("header line {}: {e}: {shown:?}", index + 1))?;
    }
    Ok(())
}

/// Checks every encoded word (`=?charset?enc?text?=`, RFC 2047 section 2) in one header line.
/// A word that merely starts with `=?` is plain text (a reader leaves it alone); one shaped like
/// an encoded word must be a valid one, as a reader would decode it.
fn encoded_words_are_well_formed(line: &str) -> Result<(), String> {
    for token in line.split([' ', '\t']) {
        let word = token.trim_end_matches([',', ';']);
        let Some(inner) = word.strip_prefix("=?").and_then(|w| w.strip_suffix("?=")) else {
            continue;
        };
        let fields: Vec<&str> = inner.splitn(3, '?').collect();
        let [charset, encoding, text] = fields[..] else {
            continue; // "=?x?=": not shaped like an encoded word
        };
        if word.len() > MAX_ENCODED_WORD {
            return Err(format!(
                "encoded word of {} characters: {word:?}",
                word.len()
            ));
        }
        let text_ok = match encoding {
            "B" | "b" => text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
            "Q" | "q" => text.bytes().all(|b| b.is_ascii_graphic() && b != b'?'),
            _ => false,
        };
        if charset.is_empty() || text.is_empty() || !text_ok {
            return Err(format!("malformed encoded word {word:?}"));
        }
    }
    Ok(())
}
