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

/// An attachment's body, which must arrive byte for byte as the file is: as it is (7bit) only
/// when the file is already clean 7-bit text ([`is_clean_7bit_text`]), else base64, which
/// nothing on the way changes.
///
/// A text file with a bare LF or CR, a NUL or a line over 998 octets is not valid 7bit (RFC
/// 5322, RFC 2045): relays rewrite its line endings and readers drop or fold the rest, so it
/// would arrive with other bytes (seen through Postfix into a Maildir). lettre would pick 7bit
/// for such a file, and quoted-printable (its other choice) turns line endings into CRLF.
///
/// base64 is written whole and cut every 76 characters: lettre encodes 57 bytes at a time, a
/// line per call, which was 75% of the time it took to compose a letter with a 200 KB
/// attachment. As 57 bytes make exactly 76 characters, the lines are the same.
pub(super) fn attachment_body(bytes: Vec<u8>) -> Body {
    if is_clean_7bit_text(&bytes) {
        return Body::dangerous_pre_encoded(bytes, ContentTransferEncoding::SevenBit);
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

/// The longest line (without its CRLF) an attachment may have to go as it is: lettre's limit
/// for 7bit text, well within RFC 5322's 998 octets.
const MAX_7BIT_LINE: usize = 76;

/// Whether `bytes` can go as 7bit and arrive unchanged: printable ASCII and tabs, every line
/// ended by CRLF (or by the end of the file), none longer than [`MAX_7BIT_LINE`]. Other
/// control characters are legal in 7bit but mail software is known to drop them.
pub(super) fn is_clean_7bit_text(bytes: &[u8]) -> bool {
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let text = match (lines.peek().is_some(), line.strip_suffix(b"\r")) {
            // An LF follows: it must end a CRLF.
            (true, Some(text)) => text,
            (true, None) => return false,
            // The last line: a CR left in it is bare, and fails below.
            (false, _) => line,
        };
        if text.len() > MAX_7BIT_LINE
            || !text
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return false;
        }
    }
    true
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

    /// Files whose bytes mail software is tempted to change, and ordinary ones.
    fn attachment_cases() -> Vec<(&'static str, Vec<u8>)> {
        let pdf: Vec<u8> = b"%PDF-1.7\n"
            .iter()
            .copied()
            .chain((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8))
            .collect();
        let mut cases = vec![
            ("binary", pdf),
            ("bare LF", b"plain ASCII, short\nlines\n".to_vec()),
            ("bare CR", b"old Mac\rline endings\r".to_vec()),
            ("NUL", b"a NUL\0here\r\n".to_vec()),
            (
                "1000-octet line",
                [vec![b'x'; 1000], b"\r\n".to_vec()].concat(),
            ),
            ("77-octet line", [vec![b'y'; 77], b"\r\n".to_vec()].concat()),
            (
                "clean CRLF",
                b"clean text\r\n.\r\nFrom here\r\n\r\nno end".to_vec(),
            ),
            ("clean CRLF ending", b"76 is fine\r\n".to_vec()),
            (
                "UTF-8",
                "Səbinə Əliyeva — “quoted” €\r\n".as_bytes().to_vec(),
            ),
            ("escape", b"an ESC\x1b[0m\r\n".to_vec()),
            ("trailing CR", b"ends with CR\r\nthen\r".to_vec()),
            ("empty", Vec::new()),
        ];
        // Every length around the 57-byte line boundary, with a non-ASCII byte.
        for n in 0..=120 {
            cases.push(("around 57", (0..n).map(|i| 0x80 ^ i as u8).collect()));
        }
        cases
    }

    fn attachment_part(body: Body) -> Vec<u8> {
        use lettre::message::Attachment;
        Attachment::new("statement.txt".into())
            .body(body, ContentType::parse("text/plain").unwrap())
            .formatted()
    }

    #[test]
    fn only_clean_7bit_text_goes_as_it_is_and_the_rest_as_lettres_base64() {
        for (what, bytes) in attachment_cases() {
            let ours = attachment_part(attachment_body(bytes.clone()));
            let clean = is_clean_7bit_text(&bytes);
            assert_eq!(
                clean,
                what.starts_with("clean") || bytes.is_empty(),
                "{what}"
            );
            let encoding = if clean {
                ContentTransferEncoding::SevenBit
            } else {
                ContentTransferEncoding::Base64
            };
            let lettre = match Body::new_with_encoding(bytes.clone(), encoding) {
                Ok(body) => body,
                Err(_) => panic!("lettre cannot encode {what} as {encoding}"),
            };
            assert_eq!(
                ours,
                attachment_part(lettre),
                "{what}: {} bytes",
                bytes.len()
            );
        }
    }

    #[test]
    fn every_attachment_decodes_back_to_its_exact_bytes() {
        use lettre::message::{Attachment, MultiPart, SinglePart};
        use mail_parser::{MessageParser, MimeHeaders};
        for (what, bytes) in attachment_cases() {
            let message = lettre::Message::builder()
                .from("a@x.example".parse().unwrap())
                .to("b@x.example".parse().unwrap())
                .subject("s")
                .multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain("text".to_owned()))
                        .singlepart(Attachment::new("f.txt".into()).body(
                            attachment_body(bytes.clone()),
                            // Not text/plain, which the parser would decode as text.
                            ContentType::parse("application/octet-stream").unwrap(),
                        )),
                )
                .unwrap()
                .formatted();
            let parsed = MessageParser::default().parse(&message).unwrap();
            let attachment = parsed.attachment(0).unwrap();
            assert_eq!(attachment.attachment_name(), Some("f.txt"), "{what}");
            assert!(
                attachment.contents() == bytes.as_slice(),
                "{what}: {} bytes decode as {} bytes",
                bytes.len(),
                attachment.contents().len()
            );
        }
    }
}
