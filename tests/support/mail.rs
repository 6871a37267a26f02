//! Reading the messages envoi writes: parsed with mail-parser (an independent MIME reader, so
//! the tests do not trust lettre to read what lettre wrote), plus the raw header lines for what
//! a parser hides (encoding, folding, which headers are there at all).

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Address, Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Parses an RFC 5322 message; panics, showing its start, if it does not parse.
pub fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default().parse(bytes).unwrap_or_else(|| {
        panic!(
            "not an RFC 5322 message:\n{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(800)])
        )
    })
}

/// The header section as written, up to (not including) the blank line that ends it.
pub fn header_section(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section ended by a blank line (CRLF CRLF)");
    &bytes[..end]
}

/// The physical header lines (folded continuation lines included), as text.
pub fn header_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(header_section(bytes))
        .split("\r\n")
        .map(str::to_owned)
        .collect()
}

/// Header fields as written, unfolded: (name, raw value).
pub fn raw_headers(bytes: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header_lines(bytes) {
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields.last_mut().expect("a continuation after a field");
            value.push_str(&line);
        } else {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without a colon: {line:?}"));
            fields.push((name.to_owned(), value.trim_start().to_owned()));
        }
    }
    fields
}

/// The first header field of that name (case-insensitive), unfolded, as written.
pub fn raw_header(bytes: &[u8], name: &str) -> Option<String> {
    raw_headers(bytes)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// A raw header value with every RFC 2047 encoded word (`=?charset?b?...?=`) removed: what is
/// left is what a reader sees without decoding, and must hold the addresses.
pub fn outside_encoded_words(value: &str) -> String {
    let mut rest = value;
    let mut out = String::new();
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        // charset ? encoding ? text ?=
        let end = after
            .splitn(3, '?')
            .nth(2)
            .and_then(|text| text.find("?=").map(|e| after.len() - text.len() + e + 2))
            .unwrap_or_else(|| panic!("unterminated encoded word in {value:?}"));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `(display name, address)` of each mailbox in an address header; "" for no name.
pub fn mailboxes(address: Option<&Address<'_>>) -> Vec<(String, String)> {
    address
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m.name().unwrap_or("").to_owned(),
                        m.address().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn mime_type(part: &MessagePart<'_>) -> String {
    part.content_type().map_or_else(
        || "text/plain".to_owned(),
        |ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase(),
    )
}

/// The MIME tree on one line, e.g.
/// `multipart/mixed[multipart/alternative[text/plain, text/html], application/pdf]`.
pub fn structure(message: &Message<'_>) -> String {
    fn walk(message: &Message<'_>, id: usize) -> String {
        let part = &message.parts[id];
        match &part.body {
            PartType::Multipart(children) => format!(
                "{}[{}]",
                mime_type(part),
                children
                    .iter()
                    .map(|&c| walk(message, c as usize))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => mime_type(part),
        }
    }
    walk(message, 0)
}

fn body_of(message: &Message<'_>, wanted: &str) -> String {
    let matching: Vec<&MessagePart<'_>> = message
        .parts
        .iter()
        .filter(|p| mime_type(p) == wanted && p.content_disposition().is_none())
        .collect();
    assert_eq!(matching.len(), 1, "exactly one {wanted} part");
    // Text travels with CRLF line ends (RFC 2046); compare with what the template says.
    matching[0]
        .text_contents()
        .unwrap_or_else(|| panic!("the {wanted} part is text"))
        .replace("\r\n", "\n")
}

/// The text/plain part, decoded, with LF line ends.
pub fn text(message: &Message<'_>) -> String {
    body_of(message, "text/plain")
}

/// The text/html part, decoded, with LF line ends.
pub fn html(message: &Message<'_>) -> String {
    body_of(message, "text/html")
}

/// An attachment as a recipient's mail program sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct Attached {
    pub name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// Every part with `Content-Disposition: attachment`, in order.
pub fn attachments(message: &Message<'_>) -> Vec<Attached> {
    message
        .parts
        .iter()
        .filter(|p| p.content_disposition().is_some_and(|d| d.is_attachment()))
        .map(|p| Attached {
            name: p.attachment_name().unwrap_or("").to_owned(),
            mime_type: mime_type(p),
            bytes: file_bytes(message, p),
        })
        .collect()
}

/// The bytes of the file a part carries, as a mail program saves it: the part's transfer
/// encoding undone, and nothing else. `contents()` would convert a text part's charset.
fn file_bytes(message: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    let raw = &message.raw_message()[part.offset_body as usize..part.offset_end as usize];
    match part.encoding {
        Encoding::Base64 => base64_decode(raw).expect("a valid base64 body"),
        Encoding::QuotedPrintable => quoted_printable_decode(raw).expect("a valid QP body"),
        // As it is, less the line break that belongs to the boundary after it.
        Encoding::None => raw.strip_suffix(b"\r\n").unwrap_or(raw).to_vec(),
    }
}

/// The message without its Date header line: what must be identical between two runs.
pub fn without_date(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("envoi writes UTF-8 (in fact ASCII)");
    let header_end = text.find("\r\n\r\n").expect("a header section");
    let (head, body) = text.split_at(header_end);
    let head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect();
    format!("{}{body}", head.join("\r\n")).into_bytes()
}
