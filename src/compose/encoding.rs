//! MIME encodings envoi writes itself instead of leaving them to lettre: text parts in
//! linear time (byte for byte what lettre would write), and RFC 2047 encoded words for header
//! text lettre would fold badly.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};

/// Longest word (between spaces) a header may carry as plain text; longer ones are encoded,
/// which splits them, so that no header line comes near the 998-octet limit of RFC 5322.
const MAX_PLAIN_WORD: usize = 70;
/// Bytes of text per encoded word: 45 bytes are 60 base64 characters, and with
/// `=?utf-8?b?` and `?=` the word is 72 characters, within the 75 RFC 2047 allows.
const ENCODED_WORD_BYTES: usize = 45;

/// Whether a header text needs envoi's encoding rather than lettre's: lettre leaves long words
/// whole (a line over 998 octets), writes text that looks like an encoded word as it is (a
/// reader would decode it into something else), and puts spaces next to encoded words, where
/// readers may collapse them. Ordinary text is left to lettre.
pub(super) fn needs_encoding(value: &str) -> bool {
    value.split(' ').any(|word| word.len() > MAX_PLAIN_WORD)
        || value.contains("=?")
        || value.contains("  ")
        || value.contains('\t')
        || value.trim() != value
}

/// `value` as RFC 2047 encoded words (UTF-8, base64), one per folded line. A reader ignores
/// the white space between adjacent encoded words, so it decodes exactly `value`.
pub(super) fn encoded_words(value: &str) -> String {
    let mut words = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let mut end = rest.len().min(ENCODED_WORD_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!("=?utf-8?b?{}?=", base64(&rest.as_bytes()[..end])));
        rest = &rest[end..];
    }
    words.join("\r\n ")
}

/// A mailbox list with every display name as encoded words, one mailbox per folded line.
pub(super) fn encoded_mailboxes(list: &[Mailbox]) -> String {
    list.iter()
        .map(|m| match m.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("{}\r\n <{}>", encoded_words(name), m.email),
            None => m.email.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",\r\n ")
}

/// Standard base64 with padding (RFC 4648), for encoded words.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An attachment's body, byte for byte what lettre makes of it, faster.
///
/// A file with any non-ASCII byte (a PDF, an image, an office document) is always base64 to
/// lettre, which encodes it 57 bytes at a time, a line per call: 75% of the time it took to
/// compose a letter with a 200 KB attachment. Encoding it whole and cutting the result every
/// 76 characters gives the same lines, as 57 bytes make exactly 76 characters. An ASCII file
/// may get another encoding, so it takes lettre's own path.
pub(super) fn attachment_body(bytes: Vec<u8>) -> Body {
    if bytes.is_ascii() {
        return Body::new(bytes);
    }
    let encoded = base64(&bytes);
    let mut lines = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            lines.extend_from_slice(b"\r\n");
        }
        lines.extend_from_slice(line);
    }
    Body::dangerous_pre_encoded(lines, ContentTransferEncoding::Base64)
}

/// `SinglePart::plain(text)` (or `html`), byte for byte, in linear time.
///
/// lettre turns LF into CRLF by inserting one `\r` at a time (quadratic in the number of lines)
/// and its quoted-printable encoder works a `char` at a time; together they were 60% of the
/// time it took to compose a letter. The same choice of encoding is made here (7bit for short
/// ASCII lines, else quoted-printable unless more than a third of the bytes need escaping, else
/// base64), and quoted-printable is written with the same line-wrapping decisions, so a letter's
/// bytes do not change.
pub(super) fn text_part(content_type: ContentType, text: &str) -> SinglePart {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn encoded_words_are_short_valid_and_exact() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let long = "ə".repeat(100);
        let encoded = encoded_words(&long);
        let words: Vec<&str> = encoded.split("\r\n ").collect();
        assert_eq!(words.len(), 5); // 200 bytes, at most 45 (whole characters) per word
        assert!(
            words
                .iter()
                .all(|w| w.len() <= 75 && w.starts_with("=?utf-8?b?"))
        );
        assert!(needs_encoding(&"a".repeat(71)) && !needs_encoding(&"a".repeat(70)));
        assert!(needs_encoding("=?utf-8?b?RXZpbA==?=") && needs_encoding(" lead"));
        assert!(!needs_encoding(
            "Statement for the Council of Europe — 2024"
        ));
    }

    #[test]
    fn attachments_are_byte_for_byte_what_lettre_makes() {
        use lettre::message::Attachment;
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
}
