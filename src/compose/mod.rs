//! Composing: a rendered letter plus its row becomes an RFC 5322 message.
//!
//! Every header value is checked here, because this is the last place that knows which row and
//! column a value came from: a CR or LF would start a new header, so it is an error naming the
//! column, never a header. Addresses are validated; display names and subjects are RFC 2047
//! encoded by lettre, never the address itself. Bcc goes to the envelope only.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use lettre::address::Envelope;
use lettre::message::header::{self, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, Mailboxes, MultiPart};
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

mod encoding;
mod idn;
mod invisible;

pub use invisible::InvisibleCharacter;

use encoding::{attachment_body, encoded_mailboxes, encoded_words, needs_encoding, text_part};

use crate::campaign::Campaign;
use crate::error::{Location, Problem};
use crate::markdown;
use crate::recipients::Recipient;
use crate::signing::Signer;
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
    /// `[tracking] read_receipts`: ask for a read receipt (RFC 8098) to the From address.
    pub read_receipts: bool,
    /// The `[signing]` keys; every message (test copies too) is signed with them.
    pub signer: Option<Arc<Signer>>,
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
    /// The language of the letter variant used (`letter.fr.hbs` → `fr`); `None` for the plain
    /// letter.
    pub language: Option<String>,
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

    /// The first address of the letter (envelope or header) with a non-ASCII local part, if
    /// any: such a letter can go only to a relay that offers SMTPUTF8, with UTF-8 headers (RFC
    /// 6531, 6532).
    pub fn address_needing_smtputf8(&self) -> Option<&Address> {
        std::iter::once(&self.from)
            .chain([&self.to])
            .chain(&self.cc)
            .chain(&self.bcc)
            .chain(&self.reply_to)
            .map(|m| &m.email)
            .find(|a| idn::needs_smtputf8(a))
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
        // As the file shows it: for a spreadsheet with its sheet and column letter.
        let location = self.recipient.cell_location(column);
        self.problems.push(Problem::new(location, message));
    }

    /// A problem in a value rendered from the template: name the template and the row.
    fn in_field(&mut self, field: &str, message: String) {
        let location = Location::file(&self.letter.template);
        let message = format!("{field}: {message}{}", self.rendering());
        self.problems.push(Problem::new(location, message));
    }

    /// A problem of the signing set-up with this letter's sender, at the key file; the row is
    /// appended as for template problems, so that `check` folds the repeats into one line.
    fn in_signing(&mut self, problem: Problem) {
        let message = format!("{}{}", problem.message, self.rendering());
        self.problems.push(Problem::new(problem.location, message));
    }

    fn rendering(&self) -> String {
        format!(
            " (rendering {} row {})",
            self.settings.recipients_display.display(),
            self.recipient.row()
        )
    }

    /// A header value must be one line of visible text. Names the column the line break or
    /// control character came from.
    fn single_line(&mut self, field: &str, value: &str) -> bool {
        let Some(bad) = value.chars().find(|&c| forbidden_in_header(c)) else {
            return true;
        };
        let line_break = matches!(bad, '\r' | '\n');
        let source = self
            .recipient
            .columns()
            .find(|(_, v)| {
                !v.trim().is_empty()
                    && if line_break {
                        v.contains(['\r', '\n'])
                    } else {
                        v.contains(bad)
                    }
            })
            .map(|(c, _)| c.to_owned());
        let what = if line_break {
            "a line break".to_owned()
        } else {
            format!("an invisible control character (U+{:04X})", u32::from(bad))
        };
        match source {
            Some(column) if line_break => self.at_column(
                &column,
                format!(
                    "this cell contains a line break, which would end up in the {field} header; make it one line in the spreadsheet"
                ),
            ),
            Some(column) => self.at_column(
                &column,
                format!(
                    "this cell contains {what}, which cannot go into the {field} header; retype the cell in the spreadsheet"
                ),
            ),
            None => self.in_field(
                field,
                format!("contains {what}, which is not allowed in a header; remove it"),
            ),
        }
        false
    }
}

/// Characters a header may not carry: line breaks would start a new header, and other control
/// characters (NUL, U+0001, DEL...) are mangled or dropped by mail software, taking whole
/// addresses with them. A tab is ordinary white space.
fn forbidden_in_header(c: char) -> bool {
    c.is_control() && c != '\t'
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
                Location::file(&settings.config_display).setting("sender", "from"),
                "no sender is set; add from = \"Office name <office@example.org>\" under [sender]"
                    .to_owned(),
            ));
            None
        }
        Some(text) if !p.single_line("From", text) => None,
        Some(text) => parse_mailbox(text)
            .map_err(|e| p.in_field("from", e.to_string()))
            .ok(),
    };

    let reply_to = match letter
        .reply_to
        .as_deref()
        .or(settings.default_reply_to.as_deref())
    {
        Some(text) if !text.trim().is_empty() && p.single_line("Reply-To", text) => {
            parse_mailbox(text)
                .map_err(|e| p.in_field("reply_to", e.to_string()))
                .ok()
        }
        _ => None,
    };

    let to_name = recipient
        .get("name")
        .filter(|n| !n.is_empty())
        .or_else(|| recipient.get("organisation").filter(|o| !o.is_empty()));
    let to = match parse_address(recipient.email()) {
        Ok(address) => Some(Mailbox::new(
            to_name
                .filter(|n| !n.contains(['\r', '\n']))
                .map(str::to_owned),
            address,
        )),
        Err(e) => {
            p.at_column("email", e.to_string());
            None
        }
    };
    if let Some(name) = to_name {
        p.single_line("To", name);
    }

    let mut cc = Vec::new();
    let mut bcc = Vec::new();
    for (field, list, out) in [("cc", &letter.cc, &mut cc), ("bcc", &letter.bcc, &mut bcc)] {
        // Each front-matter value is one address (templates split their lists before
        // rendering), so a row value inside it cannot add a recipient.
        for value in list.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            if p.single_line(field, value) {
                match parse_mailbox(value) {
                    Ok(mailbox) => out.push(mailbox),
                    Err(e) if value.contains([',', ';']) => p.in_field(
                        field,
                        format!("{e}; one entry holds one address: put further addressees in the {field} column or a list in the front matter"),
                    ),
                    Err(e) => p.in_field(field, e.to_string()),
                }
            }
        }
        if let Some(cell) = recipient.get(field) {
            // A cell may hold several addresses on several lines; that is a list, not a header.
            match cell.chars().find(|&c| forbidden_in_header(c) && !matches!(c, '\r' | '\n')) {
                Some(bad) => p.at_column(
                    field,
                    format!(
                        "this cell contains an invisible control character (U+{:04X}), which cannot go into the {field} header; retype the cell in the spreadsheet",
                        u32::from(bad)
                    ),
                ),
                None => parse_list(
                    cell,
                    |e| match e {
                        // It already says what to do.
                        AddressError::Invisible(_) => p.at_column(field, e.to_string()),
                        _ => p.at_column(
                            field,
                            format!(
                                "{e}; correct it in the spreadsheet (addresses separated by , or ;)"
                            ),
                        ),
                    },
                    out,
                ),
            }
        }
    }

    let mut headers = Vec::new();
    for (name, value) in &letter.headers {
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            p.in_field(&format!("headers.{name}"), reserved_header_advice(name));
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
                Some(column) => p.at_column(column, e.to_string()),
                None => p.in_field("attachments", e.to_string()),
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

    if let (Some(signer), Some(from)) = (&settings.signer, &from) {
        for problem in signer.problems_with_sender(&from.email) {
            p.in_signing(problem);
        }
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
        language: letter.language.clone(),
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
    // Each list is set whole: adding mailboxes one by one makes lettre re-parse the header
    // built so far, which collapses runs of spaces in display names.
    if !c.cc.is_empty() {
        builder = builder.header(header::Cc::from(
            c.cc.iter().cloned().collect::<Mailboxes>(),
        ));
    }
    if !c.bcc.is_empty() {
        builder = builder.header(header::Bcc::from(
            c.bcc.iter().cloned().collect::<Mailboxes>(),
        ));
    }
    if let Some(r) = &c.reply_to {
        builder = builder.reply_to(r.clone());
    }
    for (name, value) in &c.headers {
        if let Ok(name) = HeaderName::new_from_ascii(name.clone()) {
            builder = builder.raw_header(if needs_encoding(value) {
                HeaderValue::dangerous_new_pre_encoded(name, value.clone(), encoded_words(value))
            } else {
                HeaderValue::new(name, value.clone())
            });
        }
    }
    // Where lettre's own encoding would lose text or overflow a line, envoi encodes the header
    // itself (replacing lettre's in place, so the header order stays).
    if needs_encoding(&c.subject) {
        builder = builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("Subject"),
            c.subject.clone(),
            encoded_words(&c.subject),
        ));
    }
    let reply_to: Vec<Mailbox> = c.reply_to.iter().cloned().collect();
    for (name, list) in [
        ("From", std::slice::from_ref(&c.from)),
        ("To", std::slice::from_ref(&c.to)),
        ("Cc", c.cc.as_slice()),
        ("Reply-To", reply_to.as_slice()),
    ] {
        if list
            .iter()
            .any(|m| m.name.as_deref().is_some_and(needs_encoding))
        {
            builder = builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
                HeaderName::new_from_ascii_str(name),
                list.iter().cloned().collect::<Mailboxes>().to_string(),
                encoded_mailboxes(list),
            ));
        }
    }
    if settings.read_receipts && settings.test_to.is_none() {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Disposition-Notification-To"),
            c.from.email.to_string(),
        ));
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
    let mut files = Vec::with_capacity(c.attachments.len());
    for a in &c.attachments {
        let body = std::fs::read(&a.path).map_err(|e| {
            vec![Problem::new(
                Location::file(&settings.recipients_display).row(recipient.row()),
                format!("attachment {} cannot be read: {e}", a.path.display()),
            )]
        })?;
        files.push(body);
    }
    // An attachment that goes as it is (clean 7-bit text) is a part's text like the others:
    // a line of it must not be taken for a boundary either. base64 holds no `-`.
    let mut parts = vec![c.text.as_str(), c.html.as_str()];
    parts.extend(
        files
            .iter()
            .filter(|f| encoding::is_clean_7bit_text(f))
            .filter_map(|f| std::str::from_utf8(f).ok()),
    );
    let alternative = MultiPart::alternative()
        .boundary(unused_boundary(&format!("alt-{seed}"), &parts))
        .singlepart(text_part(ContentType::TEXT_PLAIN, &c.text))
        .singlepart(text_part(ContentType::TEXT_HTML, &c.html));
    let message = if c.attachments.is_empty() {
        builder.multipart(alternative)
    } else {
        let mut mixed = MultiPart::mixed()
            .boundary(unused_boundary(&format!("mix-{seed}"), &parts))
            .multipart(alternative);
        for (a, body) in c.attachments.iter().zip(files) {
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
    if let Some(signer) = &settings.signer {
        c.bytes = signer.sign(&c.bytes, settings.date).map_err(|e| {
            vec![Problem::new(
                Location::file(&settings.recipients_display).row(recipient.row()),
                format!("the letter cannot be signed: {e}"),
            )]
        })?;
    }
    Ok(c)
}

/// `base`, lengthened until none of `parts` contains it. Boundaries derive from the Message-ID,
/// so anyone who knows the campaign can predict them; a line of text (a row value, say) that
/// starts with one would end its part early and begin a part of its own.
fn unused_boundary(base: &str, parts: &[&str]) -> String {
    let mut boundary = base.to_owned();
    let mut n = 0;
    while parts.iter().any(|part| part.contains(boundary.as_str())) {
        n += 1;
        boundary = format!("{base}-{n}");
    }
    boundary
}

/// Why a header cannot be set under `[headers]`, and where it is set instead.
fn reserved_header_advice(name: &str) -> String {
    let key = match name.to_ascii_lowercase().as_str() {
        "to" => {
            return format!(
                "{name} cannot be set here: envoi writes it from the row's email column (with its name or organisation); remove {name} from [headers]"
            );
        }
        "from" => "from",
        "reply-to" => "reply_to",
        "cc" => "cc",
        "bcc" => "bcc",
        "subject" => "subject",
        _ => return format!("{name} is written by envoi itself; remove it from [headers]"),
    };
    format!("{name} cannot be set here; use the front-matter key {key} = \"...\" instead")
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

/// The `Bcc:` header line a mail client adds to its own copy of a letter (the relay's copy
/// never has one), encoded as To and Cc are. Used for the copy filed in Sent.
pub fn bcc_header(bcc: &[Mailbox]) -> String {
    format!("Bcc: {}\r\n", encoded_mailboxes(bcc))
}

/// The letter's token: the 32 hex digits of its Message-ID (`<token.envoi@domain>`), stable for
/// the campaign and the recipient. It is the DSN envelope id (ENVID) and the `{token}` of a VERP
/// return path, so a report that carries only one of them still names its letter.
pub fn letter_token(message_id: &str) -> Option<&str> {
    let id = message_id.trim().trim_start_matches('<');
    let (token, _) = id.split_once(".envoi@")?;
    (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())).then_some(token)
}

/// Why an address written in a template, envoi.toml or a row cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// A mailbox (`Name <addr>`) whose address part does not parse.
    #[error("\"{text}\" is not a valid email address: {}", in_words(source))]
    Mailbox {
        text: String,
        #[source]
        source: lettre::address::AddressError,
    },
    /// A bare address that does not parse.
    #[error("\"{text}\" is not an email address: {}", in_words(source))]
    Address {
        text: String,
        #[source]
        source: lettre::address::AddressError,
    },
    // idna's own error describes itself with Rust debug formatting: say what is wrong instead.
    #[error(
        "\"{address}\" has a domain, \"{domain}\", that is not a valid international domain name; check its spelling"
    )]
    Domain { address: String, domain: String },
    #[error(transparent)]
    Invisible(#[from] InvisibleCharacter),
}

/// lettre's reason, said for someone who typed the address ("Invalid email user" is not).
fn in_words(source: &lettre::address::AddressError) -> &'static str {
    use lettre::address::AddressError as Why;
    match source {
        Why::MissingParts => "an address has the form name@organisation.example",
        Why::Unbalanced => "a < or > has no partner",
        Why::InvalidUser => "the part before the @ is not valid (a second @, a space or a comma?)",
        Why::InvalidDomain => "the part after the @ is not a valid domain",
        _ => "it holds a character that an address cannot hold",
    }
}

/// Parses `addr`, `Name <addr>` or `"Name" <addr>`. Done by hand because a display name such
/// as "Commissioner (Ombudsman)" is ordinary text to users, not an RFC 5322 comment.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, AddressError> {
    let text = text.trim();
    let (name, address) = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim();
            // Only a quoted name has escapes to undo; elsewhere a backslash is just text (a row
            // value keeps it).
            let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\\\"", "\""),
                None => name.to_owned(),
            };
            (
                (!name.is_empty()).then_some(name),
                text[open + 1..text.len() - 1].trim(),
            )
        }
        _ => (None, text),
    };
    InvisibleCharacter::check(address)?;
    let address = Address::from_str(address).map_err(|source| AddressError::Mailbox {
        text: text.to_owned(),
        source,
    })?;
    Ok(Mailbox::new(name, idn::with_ascii_domain(address)?))
}

/// Parses a bare address, its domain in A-label form (see [`idn`]).
pub fn parse_address(text: &str) -> Result<Address, AddressError> {
    InvisibleCharacter::check(text)?;
    let address = Address::from_str(text).map_err(|source| AddressError::Address {
        text: text.to_owned(),
        source,
    })?;
    idn::with_ascii_domain(address)
}

/// Splits a list of addresses on `,` or `;` (outside quotes and angle brackets) and parses
/// each; errors go to `report` one by one.
fn parse_list(text: &str, mut report: impl FnMut(AddressError), out: &mut Vec<Mailbox>) {
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

    #[test]
    fn a_bad_address_says_in_words_which_part_is_wrong() {
        let said = |text: &str| parse_mailbox(text).unwrap_err().to_string();
        assert_eq!(
            said("desk@@coe.example"),
            "\"desk@@coe.example\" is not a valid email address: the part before the @ is not valid (a second @, a space or a comma?)"
        );
        assert_eq!(
            said("Registry <registry>"),
            "\"Registry <registry>\" is not a valid email address: an address has the form name@organisation.example"
        );
        assert_eq!(
            said("desk@coe..example"),
            "\"desk@coe..example\" is not a valid email address: the part after the @ is not a valid domain"
        );
        assert_eq!(
            parse_address("nobody").unwrap_err().to_string(),
            "\"nobody\" is not an email address: an address has the form name@organisation.example"
        );
    }

    #[test]
    fn the_letter_token_is_the_message_id_digest() {
        let id = "<0123456789abcdef0123456789abcdef.envoi@ombudsman.example>";
        assert_eq!(letter_token(id), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(letter_token("<short.envoi@x.example>"), None);
        assert_eq!(
            letter_token("<0123456789abcdef0123456789abcdef@x.example>"),
            None
        );
    }

    /// What lettre itself makes of a text part, the reference `text_part` must match.
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
    fn a_boundary_never_occurs_in_the_parts_it_separates() {
        assert_eq!(unused_boundary("alt-x", &["text", "<p>html</p>"]), "alt-x");
        assert_eq!(unused_boundary("alt-x", &["--alt-x\n", ""]), "alt-x-1");
        assert_eq!(
            unused_boundary("alt-x", &["--alt-x --alt-x-1", "alt-x-2"]),
            "alt-x-3"
        );
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
