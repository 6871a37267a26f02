//! Composing: a rendered letter plus its row becomes an RFC 5322 message.
//!
//! Every header value is checked here, because this is the last place that knows which row and
//! column a value came from: a CR or LF would start a new header, so it is an error naming the
//! column, never a header. Addresses are validated; display names and subjects are RFC 2047
//! encoded by lettre, never the address itself. Bcc goes to the envelope only.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::SystemTime;

use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

use crate::campaign::Campaign;
use crate::error::{Location, Problem};
use crate::markdown;
use crate::recipients::Recipient;
use crate::template::RenderedLetter;

/// Relays commonly refuse messages over 25 MB (after base64, which adds a third).
pub const MAX_ATTACHMENT_BYTES: u64 = 18 * 1024 * 1024;

/// Headers that envoi writes itself; a template may not set them through `headers`.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "sender",
    "return-path",
];

/// What is the same for every letter of a run.
#[derive(Debug, Clone)]
pub struct ComposeSettings {
    pub campaign_id: String,
    pub default_from: Option<String>,
    pub default_reply_to: Option<String>,
    pub config_display: PathBuf,
    pub recipients_display: PathBuf,
    pub date: SystemTime,
    /// `send --test-to`: deliver to this address only, with no Cc or Bcc.
    pub test_to: Option<Address>,
}

/// An attachment as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    pub name: String,
    pub path: PathBuf,
    pub content_type: String,
    pub size: u64,
}

/// A message ready to hand to the relay, with what the preview and the log need to show.
#[derive(Debug, Clone)]
pub struct Composed {
    pub row: usize,
    pub email: String,
    pub organisation: String,
    /// With angle brackets, as in the header.
    pub message_id: String,
    pub from: Mailbox,
    pub to: Mailbox,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: String,
    pub attachments: Vec<AttachmentInfo>,
    pub template: PathBuf,
    /// The whole message, CRLF line endings, as sent in DATA.
    pub bytes: Vec<u8>,
}

impl Composed {
    /// Envelope recipients: To, then Cc, then Bcc.
    pub fn envelope_recipients(&self) -> impl Iterator<Item = &Address> {
        std::iter::once(&self.to)
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|m| &m.email)
    }
}

/// Collects the problems of one row instead of stopping at the first.
struct RowProblems<'a> {
    recipient: &'a Recipient,
    settings: &'a ComposeSettings,
    letter: &'a RenderedLetter,
    problems: Vec<Problem>,
}

impl RowProblems<'_> {
    fn at_column(&mut self, column: &str, message: String) {
        let location = Location::file(&self.settings.recipients_display)
            .row(self.recipient.row())
            .column(column);
        self.problems.push(Problem::new(location, message));
    }

    /// A problem in a value rendered from the template: name the template and the row.
    fn in_field(&mut self, field: &str, message: String) {
        let location = Location::file(&self.letter.template);
        self.problems.push(Problem::new(
            location,
            format!(
                "{field}: {message} (rendering {} row {})",
                self.settings.recipients_display.display(),
                self.recipient.row()
            ),
        ));
    }

    /// A header value must be one line. Names the column the line break came from.
    fn single_line(&mut self, field: &str, value: &str) -> bool {
        if !value.contains(['\r', '\n']) {
            return true;
        }
        let source = self
            .recipient
            .columns()
            .find(|(_, v)| v.contains(['\r', '\n']) && !v.trim().is_empty())
            .map(|(c, _)| c.to_owned());
        match source {
            Some(column) => self.at_column(
                &column,
                format!(
                    "this cell contains a line break, which would end up in the {field} header; make it one line in the spreadsheet"
                ),
            ),
            None => self.in_field(
                field,
                "contains a line break, which is not allowed in a header; keep it on one line"
                    .to_owned(),
            ),
        }
        false
    }
}

/// Builds the message for one row. All problems of the row are returned together.
pub fn compose(
    campaign: &Campaign,
    settings: &ComposeSettings,
    recipient: &Recipient,
    letter: &RenderedLetter,
) -> Result<Composed, Vec<Problem>> {
    let mut p = RowProblems {
        recipient,
        settings,
        letter,
        problems: Vec::new(),
    };

    let subject = letter.subject.trim().to_owned();
    if subject.is_empty() {
        p.in_field("subject", "is empty; every letter needs a subject".into());
    }
    p.single_line("Subject", &subject);

    let from = match letter.from.as_deref().or(settings.default_from.as_deref()) {
        None => {
            p.problems.push(Problem::new(
                Location::file(&settings.config_display).column("sender.from"),
                "no sender is set; add from = \"Office name <office@example.org>\" under [sender]"
                    .to_owned(),
            ));
            None
        }
        Some(text) if !p.single_line("From", text) => None,
        Some(text) => parse_mailbox(text).map_err(|e| p.in_field("from", e)).ok(),
    };

    let reply_to = match letter
        .reply_to
        .as_deref()
        .or(settings.default_reply_to.as_deref())
    {
        Some(text) if !text.trim().is_empty() && p.single_line("Reply-To", text) => {
            parse_mailbox(text)
                .map_err(|e| p.in_field("reply_to", e))
                .ok()
        }
        _ => None,
    };

    let to_name = recipient
        .get("name")
        .filter(|n| !n.is_empty())
        .or_else(|| recipient.get("organisation").filter(|o| !o.is_empty()));
    let to = match Address::from_str(recipient.email()) {
        Ok(address) => Some(Mailbox::new(
            to_name
                .filter(|n| !n.contains(['\r', '\n']))
                .map(str::to_owned),
            address,
        )),
        Err(e) => {
            p.at_column(
                "email",
                format!("\"{}\" is not an email address ({e})", recipient.email()),
            );
            None
        }
    };
    if let Some(name) = to_name {
        p.single_line("To", name);
    }

    let mut cc = Vec::new();
    let mut bcc = Vec::new();
    for (field, list, out) in [("cc", &letter.cc, &mut cc), ("bcc", &letter.bcc, &mut bcc)] {
        for value in list {
            if p.single_line(field, value) {
                parse_list(value, |e| p.in_field(field, e), out);
            }
        }
        if let Some(cell) = recipient.get(field) {
            // A cell may hold several addresses on several lines; that is a list, not a header.
            parse_list(cell, |e| p.at_column(field, e), out);
        }
    }

    let mut headers = Vec::new();
    for (name, value) in &letter.headers {
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            p.in_field(
                &format!("headers.{name}"),
                format!("{name} is set by envoi itself; use the front-matter key for it instead"),
            );
        } else if HeaderName::new_from_ascii(name.clone()).is_err()
            || name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        {
            p.in_field(
                &format!("headers.{name}"),
                "is not a valid header name (letters, digits and dashes only)".into(),
            );
        } else if p.single_line(name, value) {
            headers.push((name.clone(), value.trim().to_owned()));
        }
    }

    let mut attachments = Vec::new();
    let mut total = 0u64;
    let row_attachments = recipient
        .get("attachments")
        .into_iter()
        .flat_map(|cell| cell.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let from_template = letter
        .attachments
        .iter()
        .map(|a| a.trim())
        .filter(|s| !s.is_empty());
    for (source, rel) in from_template
        .map(|a| (None, a))
        .chain(row_attachments.map(|a| (Some("attachments"), a)))
    {
        match campaign.resolve_attachment(rel) {
            Ok(path) => {
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                total += size;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| rel.to_owned());
                let content_type = mime_guess::from_path(&path)
                    .first_or_octet_stream()
                    .essence_str()
                    .to_owned();
                attachments.push(AttachmentInfo {
                    name,
                    path,
                    content_type,
                    size,
                });
            }
            Err(e) => match source {
                Some(column) => p.at_column(column, e),
                None => p.in_field("attachments", e),
            },
        }
    }
    if total > MAX_ATTACHMENT_BYTES {
        p.in_field(
            "attachments",
            format!(
                "attachments total {:.1} MB; most relays refuse letters over 25 MB once encoded, so keep attachments under {} MB (share large files by link)",
                total as f64 / 1e6,
                MAX_ATTACHMENT_BYTES / 1024 / 1024
            ),
        );
    }

    let (Some(from), Some(to), true) = (from, to, p.problems.is_empty()) else {
        return Err(p.problems);
    };

    let message_id = message_id(settings, recipient.email(), &from);
    let (to, cc, bcc) = match &settings.test_to {
        Some(test) => (Mailbox::new(None, test.clone()), Vec::new(), Vec::new()),
        None => (to, cc, bcc),
    };
    let (text, html) =
        markdown::to_text_and_html_document(&letter.body, &subject, letter.language.as_deref());

    let composed = Composed {
        row: recipient.row(),
        email: recipient.email().to_owned(),
        organisation: recipient.get("organisation").unwrap_or("").to_owned(),
        message_id,
        from,
        to,
        cc,
        bcc,
        reply_to,
        subject,
        headers,
        text,
        html,
        attachments,
        template: letter.template.clone(),
        bytes: Vec::new(),
    };
    build(composed, settings, recipient)
}

/// Formats the MIME message. Boundaries derive from the Message-ID, so the same input gives
/// the same bytes (except Date).
fn build(
    mut c: Composed,
    settings: &ComposeSettings,
    recipient: &Recipient,
) -> Result<Composed, Vec<Problem>> {
    // Given, lettre need not parse the From, To, Cc and Bcc headers back into addresses to
    // derive it (11% of composing); the same addresses, in the same order.
    let envelope = Envelope::new(
        Some(c.from.email.clone()),
        c.envelope_recipients().cloned().collect(),
    )
    .map_err(|e| {
        vec![Problem::new(
            Location::file(&settings.recipients_display).row(recipient.row()),
            format!("the message cannot be built: {e}"),
        )]
    })?;
    let mut builder = Message::builder()
        .envelope(envelope)
        .from(c.from.clone())
        .to(c.to.clone())
        .subject(c.subject.clone())
        .date(settings.date)
        .message_id(Some(c.message_id.clone()));
    for m in &c.cc {
        builder = builder.cc(m.clone());
    }
    for m in &c.bcc {
        builder = builder.bcc(m.clone());
    }
    if let Some(r) = &c.reply_to {
        builder = builder.reply_to(r.clone());
    }
    for (name, value) in &c.headers {
        if let Ok(name) = HeaderName::new_from_ascii(name.clone()) {
            builder = builder.raw_header(HeaderValue::new(name, value.clone()));
        }
    }
    if settings.test_to.is_some() {
        let name = HeaderName::new_from_ascii_str("X-Envoi-Test");
        builder = builder.raw_header(HeaderValue::new(
            name,
            format!("test copy of the letter for row {}, {}", c.row, c.email),
        ));
    }

    let seed = c
        .message_id
        .trim_matches(['<', '>'])
        .replace(['@', '.'], "");
    let alternative = MultiPart::alternative()
        .boundary(format!("alt-{seed}"))
        .singlepart(text_part(ContentType::TEXT_PLAIN, &c.text))
        .singlepart(text_part(ContentType::TEXT_HTML, &c.html));
    let message = if c.attachments.is_empty() {
        builder.multipart(alternative)
    } else {
        let mut mixed = MultiPart::mixed()
            .boundary(format!("mix-{seed}"))
            .multipart(alternative);
        for a in &c.attachments {
            let body = std::fs::read(&a.path).map_err(|e| {
                vec![Problem::new(
                    Location::file(&settings.recipients_display).row(recipient.row()),
                    format!("attachment {} cannot be read: {e}", a.path.display()),
                )]
            })?;
            let content_type =
                ContentType::parse(&a.content_type).unwrap_or(ContentType::TEXT_PLAIN);
            mixed = mixed.singlepart(
                Attachment::new(a.name.clone()).body(attachment_body(body), content_type),
            );
        }
        builder.multipart(mixed)
    };
    let message = message.map_err(|e| {
        vec![Problem::new(
            Location::file(&settings.recipients_display).row(recipient.row()),
            format!("the message cannot be built: {e}"),
        )]
    })?;
    c.bytes = message.formatted();
    Ok(c)
}

/// `SinglePart::plain(text)` (or `html`), byte for byte, in linear time.
///
/// lettre turns LF into CRLF by inserting one `\r` at a time (quadratic in the number of lines)
/// and its quoted-printable encoder works a `char` at a time; together they were 60% of the
/// time it took to compose a letter. The same choice of encoding is made here (7bit for short
/// ASCII lines, else quoted-printable unless more than a third of the bytes need escaping, else
/// base64), and quoted-printable is written with the same line-wrapping decisions, so a letter's
/// bytes do not change.
fn text_part(content_type: ContentType, text: &str) -> SinglePart {
    let builder = SinglePart::builder().header(content_type);
    let lines_too_long = {
        // As lettre measures it: from one LF to the next, or from the start.
        let mut last = 0;
        text.match_indices('\n')
            .any(|(i, _)| i - std::mem::replace(&mut last, i) >= 76)
            || text.len() - last >= 76
    };
    if text.is_ascii() && !lines_too_long {
        return builder.body(Body::dangerous_pre_encoded(
            crlf_line_endings(text),
            ContentTransferEncoding::SevenBit,
        ));
    }
    let escaped = text
        .bytes()
        .filter(|&b| !matches!(b, b'\t' | b' '..=b'~'))
        .count();
    if escaped > text.len() / 3 {
        // Mostly non-Latin text: lettre's base64 path is linear apart from the CRLF step,
        // which is done here first (so lettre finds nothing to convert).
        let text = String::from_utf8(crlf_line_endings(text)).expect("CRLF keeps UTF-8");
        return builder.body(
            Body::new_with_encoding(text, ContentTransferEncoding::Base64)
                .expect("base64 takes any text"),
        );
    }
    builder.body(Body::dangerous_pre_encoded(
        quoted_printable(text.as_bytes()),
        ContentTransferEncoding::QuotedPrintable,
    ))
}

/// An attachment's body, byte for byte what lettre makes of it, faster.
///
/// A file with any non-ASCII byte (a PDF, an image, an office document) is always base64 to
/// lettre, which encodes it 57 bytes at a time, a line per call: 75% of the time it took to
/// compose a letter with a 200 KB attachment. Encoding it whole and cutting the result every
/// 76 characters gives the same lines, as 57 bytes make exactly 76 characters. An ASCII file
/// may get another encoding, so it takes lettre's own path.
fn attachment_body(bytes: Vec<u8>) -> Body {
    use base64::Engine;
    if bytes.is_ascii() {
        return Body::new(bytes);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let mut lines = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            lines.extend_from_slice(b"\r\n");
        }
        lines.extend_from_slice(line);
    }
    Body::dangerous_pre_encoded(lines, ContentTransferEncoding::Base64)
}

/// Every LF not already preceded by CR gets one.
fn crlf_line_endings(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() + text.len() / 32);
    let mut start = 0;
    for (at, _) in text.match_indices('\n') {
        out.extend_from_slice(&bytes[start..at]);
        if at == 0 || bytes[at - 1] != b'\r' {
            out.push(b'\r');
        }
        out.push(b'\n');
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out
}

/// Bytes that quoted-printable writes as they are: tab and printable ASCII except `=`.
const QP_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b == 9 || (b >= 32 && b <= 126)) && b != b'=' as usize;
        b += 1;
    }
    table
};

/// Quoted-printable (RFC 2045 6.7) of text, LF or CRLF line endings becoming CRLF, lines
/// wrapped at 76, with the decisions of the `quoted_printable` crate that lettre uses: runs of
/// plain bytes are copied up to two short of the limit; an escape that does not fit goes to
/// the next line, and if the line is exactly full, the soft break is put before the last thing
/// written; a space or tab before a line break is escaped; a CR not followed by LF is escaped.
fn quoted_printable(input: &[u8]) -> Vec<u8> {
    const LIMIT: usize = 76;
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    struct Out {
        bytes: Vec<u8>,
        on_line: usize,
        /// Where the last thing appended starts: a soft break can go there.
        backup: usize,
    }
    impl Out {
        fn append(&mut self, piece: &[u8]) {
            if self.on_line + piece.len() > LIMIT {
                if self.on_line == LIMIT {
                    self.on_line = self.bytes.len() - self.backup;
                    self.bytes.splice(self.backup..self.backup, *b"=\r\n");
                } else {
                    self.bytes.extend_from_slice(b"=\r\n");
                    self.on_line = 0;
                }
            }
            self.bytes.extend_from_slice(piece);
            self.on_line += piece.len();
            self.backup = self.bytes.len() - piece.len();
        }
        fn escape(&mut self, b: u8) {
            self.append(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        /// A space or tab must not end a line: it would be taken for padding.
        fn escape_trailing_blank(&mut self) {
            if let Some(&last @ (b' ' | b'\t')) = self.bytes.last() {
                self.bytes.pop();
                self.on_line -= 1;
                self.escape(last);
            }
        }
        fn line_break(&mut self) {
            self.escape_trailing_blank();
            self.bytes.extend_from_slice(b"\r\n");
            self.on_line = 0;
        }
    }
    let mut out = Out {
        bytes: Vec::with_capacity(input.len() + input.len() / 16),
        on_line: 0,
        backup: 0,
    };
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        i += 1;
        let plain = QP_PLAIN[usize::from(b)];
        if plain && LIMIT - out.on_line >= 3 {
            let end = (i - 1 + LIMIT - out.on_line - 2).min(input.len());
            let run_end = input[i..end]
                .iter()
                .position(|&b| !QP_PLAIN[usize::from(b)])
                .map_or(end, |n| i + n);
            out.bytes.extend_from_slice(&input[i - 1..run_end]);
            out.on_line += run_end - (i - 1);
            out.backup = out.bytes.len();
            i = run_end;
        } else if plain {
            out.append(&[b]);
        } else if b == b'\n' {
            out.line_break();
        } else if b == b'\r' && input.get(i) == Some(&b'\n') {
            out.line_break();
            i += 1;
        } else {
            out.escape(b);
        }
    }
    // The end of the text ends a line too.
    out.escape_trailing_blank();
    out.bytes
}

/// `<hash@sender-domain>`, stable for the campaign and the recipient.
fn message_id(settings: &ComposeSettings, email: &str, from: &Mailbox) -> String {
    let mut hasher = Sha256::new();
    hasher.update(settings.campaign_id.as_bytes());
    hasher.update([0]);
    hasher.update(email.trim().to_lowercase().as_bytes());
    if let Some(test) = &settings.test_to {
        // A test copy is another message: never let it share the real letter's ID.
        hasher.update(b"\0test\0");
        hasher.update(test.to_string().as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.envoi@{}>", from.email.domain())
}

/// Parses `addr`, `Name <addr>` or `"Name" <addr>`. Done by hand because a display name such
/// as "Commissioner (Ombudsman)" is ordinary text to users, not an RFC 5322 comment.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    let text = text.trim();
    let (name, address) = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim();
            let name = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .unwrap_or(name)
                .replace("\\\"", "\"");
            (
                (!name.is_empty()).then_some(name),
                text[open + 1..text.len() - 1].trim(),
            )
        }
        _ => (None, text),
    };
    let address = Address::from_str(address)
        .map_err(|e| format!("\"{text}\" is not a valid email address ({e})"))?;
    Ok(Mailbox::new(name, address))
}

/// Splits a list of addresses on `,` or `;` (outside quotes and angle brackets) and parses
/// each; errors go to `report` one by one.
fn parse_list(text: &str, mut report: impl FnMut(String), out: &mut Vec<Mailbox>) {
    for item in split_addresses(text) {
        match parse_mailbox(&item) {
            Ok(m) => out.push(m),
            Err(e) => report(e),
        }
    }
}

fn split_addresses(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle) = (false, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' | ';' | '\n' | '\r' if !quoted && !angle => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What lettre itself makes of a text part, the reference `text_part` must match.
    fn lettre_part(content_type: ContentType, text: &str) -> Vec<u8> {
        SinglePart::builder()
            .header(content_type)
            .body(text.to_owned())
            .formatted()
    }

    fn same_bytes_as_lettre(text: &str) {
        for content_type in [ContentType::TEXT_PLAIN, ContentType::TEXT_HTML] {
            let ours = text_part(content_type.clone(), text).formatted();
            let theirs = lettre_part(content_type, text);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "input {text:?}"
            );
        }
    }

    #[test]
    fn text_parts_are_byte_for_byte_what_lettre_makes() {
        let full_line = "x".repeat(75);
        for text in [
            "",
            "short ASCII\nlines\n",
            "Səbinə Əliyeva, Ombudsman — “quoted” €",
            "Ηλέκτρα Παπαδοπούλου Дмитрий Соколов Ηλέκτρα Παπαδοπούλου",
            &format!("{full_line}=\n{full_line} \n{full_line}\t\r\n.lone\rcr\r"),
            &format!("{}é{}", "a".repeat(74), "b".repeat(200)),
            "trailing space \ntrailing tab\t\nend ",
        ] {
            same_bytes_as_lettre(text);
        }
    }

    #[test]
    fn attachments_are_byte_for_byte_what_lettre_makes() {
        let pdf: Vec<u8> = b"%PDF-1.7\n"
            .iter()
            .copied()
            .chain((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8))
            .collect();
        let mut cases = vec![pdf, b"plain ASCII, short\nlines\n".to_vec(), Vec::new()];
        // Every length around the 57-byte line boundary, with a non-ASCII byte.
        cases.extend((0..=120).map(|n| (0..n).map(|i| 0x80 ^ i as u8).collect()));
        for bytes in cases {
            let part = |body| {
                Attachment::new("statement.pdf".into())
                    .body(body, ContentType::parse("application/pdf").unwrap())
                    .formatted()
            };
            assert_eq!(
                part(attachment_body(bytes.clone())),
                part(Body::new(bytes.clone())),
                "{} bytes",
                bytes.len()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn text_parts_match_lettre_on_any_text(
            chars in prop::collection::vec(
                prop::sample::select(vec![
                    'a', 'Z', '.', ' ', ' ', '\t', '=', '\r', '\n', '\n', 'é', 'Ə', '€', '😀', '\u{7f}',
                ]),
                0..400,
            ),
            run in 0usize..160,
        ) {
            // A long plain run first, so wrapping is exercised at every offset.
            let text: String = "w".repeat(run).chars().chain(chars).collect();
            same_bytes_as_lettre(&text);
        }
    }

    #[test]
    fn display_names_with_parentheses_and_unicode_are_kept() {
        let m = parse_mailbox("Commissioner for Human Rights (Ombudsman) <o@ombudsman.example>")
            .unwrap();
        assert_eq!(
            m.name.as_deref(),
            Some("Commissioner for Human Rights (Ombudsman)")
        );
        let m = parse_mailbox("\"Səbinə Əliyeva, Office\" <s@x.example>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Səbinə Əliyeva, Office"));
        assert_eq!(parse_mailbox("a@b.example").unwrap().name, None);
        assert!(parse_mailbox("Name <not an address>").is_err());
    }

    #[test]
    fn address_lists_split_outside_quotes() {
        assert_eq!(
            split_addresses("a@x.example; \"Doe, J\" <j@x.example>, b@x.example"),
            vec!["a@x.example", "\"Doe, J\" <j@x.example>", "b@x.example"]
        );
        assert!(split_addresses(" ;, ").is_empty());
    }
}
