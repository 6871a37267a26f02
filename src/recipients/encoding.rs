//! Which text encoding a CSV file is in, and a reader that turns it into UTF-8 or stops at the
//! first byte that does not fit.
//!
//! UTF-8 (with or without BOM) is read as it is. A UTF-16 BOM (Excel's "Unicode Text") is
//! proof of UTF-16. Any other encoding is read only when `encoding` under `[campaign]` names
//! it: a guess that is wrong puts a wrong name in a letter, so a file that is not UTF-8 is
//! refused with one message saying what it seems to be and how to re-save it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use encoding_rs::{Decoder, DecoderResult, Encoding, UTF_8};

/// How to re-save a file as UTF-8, in the words of the two spreadsheets offices use.
pub(super) const RESAVE_AS_UTF8: &str = "re-save it as UTF-8: in Excel, Save As \"CSV UTF-8 \
    (Comma delimited)\"; in LibreOffice, Save As \"Text CSV\" with Character set \"Unicode \
    (UTF-8)\"";

/// How the bytes of a file become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// UTF-8, checked; `bom` bytes of UTF-8 BOM to skip.
    Utf8 { bom: usize },
    /// Decoded from `encoding`, which a BOM of `bom` bytes proved, or the setting declared.
    Decode {
        encoding: &'static Encoding,
        bom: usize,
        declared: bool,
    },
}

impl Plan {
    /// Settles the plan from the first bytes of the file and the `encoding` setting. A BOM
    /// wins over the setting: it is the file's own statement of its encoding.
    pub(super) fn for_file(start: &[u8], declared: Option<&'static Encoding>) -> Plan {
        match Encoding::for_bom(start) {
            Some((encoding, bom)) if encoding == UTF_8 => Plan::Utf8 { bom },
            Some((encoding, bom)) => Plan::Decode {
                encoding,
                bom,
                declared: false,
            },
            None => match declared {
                Some(encoding) if encoding != UTF_8 => Plan::Decode {
                    encoding,
                    bom: 0,
                    declared: true,
                },
                _ => Plan::Utf8 { bom: 0 },
            },
        }
    }

    /// UTF-16 without a BOM is valid UTF-8 full of NULs: told by its first two characters,
    /// ASCII with a zero byte beside each.
    pub(super) fn looks_like_utf16(self, start: &[u8]) -> bool {
        let ascii_beside_zero = |pairs: &[u8], zero_first: bool| {
            pairs.len() == 4
                && pairs.chunks(2).all(|pair| {
                    let (zero, ascii) = if zero_first {
                        (pair[0], pair[1])
                    } else {
                        (pair[1], pair[0])
                    };
                    zero == 0 && ascii != 0 && ascii.is_ascii()
                })
        };
        self == (Plan::Utf8 { bom: 0 })
            && (ascii_beside_zero(start, false) || ascii_beside_zero(start, true))
    }

    fn bom(self) -> usize {
        match self {
            Plan::Utf8 { bom } | Plan::Decode { bom, .. } => bom,
        }
    }

    /// What to say when row `row` is the first that does not fit the plan. `path` is read
    /// again (its first megabyte) to guess what the file is in.
    pub(super) fn not_text_message(self, path: &Path) -> String {
        match self {
            Plan::Utf8 { .. } => {
                let sample = read_start(path, 1 << 20).unwrap_or_default();
                let (label, what) = guess(&sample);
                format!(
                    "this row is the first that is not UTF-8 text, so the file is in another \
                     encoding: it seems to be {label} ({what}). Never guessed: {RESAVE_AS_UTF8}; \
                     or, if {label} is right, add encoding = \"{label}\" under [campaign] in \
                     envoi.toml"
                )
            }
            Plan::Decode {
                encoding,
                declared: true,
                ..
            } => format!(
                "this row is not valid {} text, the encoding that encoding under [campaign] in \
                 envoi.toml names; correct the setting, or {RESAVE_AS_UTF8} and remove the \
                 setting",
                encoding.name()
            ),
            Plan::Decode { encoding, .. } => format!(
                "the file starts with the byte order mark of {} but this row is not valid {} \
                 text; {RESAVE_AS_UTF8}",
                encoding.name(),
                encoding.name()
            ),
        }
    }
}

/// Opens `path` as text in `plan`'s encoding, its BOM skipped.
pub(super) fn open_text(path: &Path, plan: Plan) -> io::Result<TextReader> {
    let mut file = File::open(path)?;
    io::copy(&mut (&mut file).take(plan.bom() as u64), &mut io::sink())?;
    let mode = match plan {
        Plan::Utf8 { .. } => Mode::Utf8 { carry: Vec::new() },
        Plan::Decode { encoding, .. } => Mode::Decode(encoding.new_decoder_without_bom_handling()),
    };
    Ok(TextReader {
        file,
        mode,
        raw: vec![0; 64 * 1024],
        text: Vec::new(),
        at: 0,
        state: State::Reading,
    })
}

/// The first `limit` bytes of the file at `path`.
pub(super) fn read_start(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut start = Vec::new();
    File::open(path)?.take(limit).read_to_end(&mut start)?;
    Ok(start)
}

/// Whether the whole file at `path` is UTF-8 with at least one non-ASCII character: then an
/// `encoding` setting that says otherwise would garble every accented letter.
pub(super) fn is_utf8_beyond_ascii(path: &Path) -> io::Result<bool> {
    let mut reader = open_text(path, Plan::Utf8 { bom: 0 })?;
    let mut buffer = vec![0; 64 * 1024];
    let mut beyond_ascii = false;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(beyond_ascii),
            Ok(n) => beyond_ascii |= !buffer[..n].is_ascii(),
            Err(e) if NotText::is(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// The io error a [`TextReader`] ends with at the first byte that does not fit.
#[derive(Debug)]
pub(super) struct NotText;

impl fmt::Display for NotText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the file is not text in the expected encoding")
    }
}

impl std::error::Error for NotText {}

impl NotText {
    pub(super) fn is(error: &io::Error) -> bool {
        error.get_ref().is_some_and(|inner| inner.is::<NotText>())
    }
}

enum Mode {
    /// Checked as it goes; `carry` holds a character cut by the end of a read.
    Utf8 {
        carry: Vec<u8>,
    },
    Decode(Decoder),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// The file is done; what is left in `text` is the last of it.
    Done,
    /// A byte did not fit: after the text before it, every read fails.
    Failed,
}

/// A file as UTF-8: everything before the first byte that does not fit, then a [`NotText`]
/// error.
pub(super) struct TextReader {
    file: File,
    mode: Mode,
    raw: Vec<u8>,
    /// UTF-8 not yet handed out, from `at` on.
    text: Vec<u8>,
    at: usize,
    state: State,
}

impl fmt::Debug for TextReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextReader")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Read for TextReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.text.len() {
            match self.state {
                State::Done => return Ok(0),
                State::Failed => return Err(io::Error::new(io::ErrorKind::InvalidData, NotText)),
                State::Reading => self.refill()?,
            }
        }
        let n = out.len().min(self.text.len() - self.at);
        out[..n].copy_from_slice(&self.text[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl TextReader {
    fn refill(&mut self) -> io::Result<()> {
        let n = self.file.read(&mut self.raw)?;
        let last = n == 0;
        self.text.clear();
        self.at = 0;
        let fits = match &mut self.mode {
            Mode::Utf8 { carry } => {
                carry.extend_from_slice(&self.raw[..n]);
                let valid = match std::str::from_utf8(carry) {
                    Ok(_) => carry.len(),
                    Err(e) => e.valid_up_to(),
                };
                // A character cut by the end of this read is completed by the next one.
                let cut = valid < carry.len()
                    && !last
                    && std::str::from_utf8(&carry[valid..]).is_err_and(|e| e.error_len().is_none());
                self.text.extend_from_slice(&carry[..valid]);
                let fits = valid == carry.len() || cut;
                carry.drain(..valid);
                fits
            }
            Mode::Decode(decoder) => {
                let room = decoder
                    .max_utf8_buffer_length_without_replacement(n)
                    .unwrap_or(4 * n + 16);
                self.text.resize(room, 0);
                let (result, _, written) = decoder.decode_to_utf8_without_replacement(
                    &self.raw[..n],
                    &mut self.text,
                    last,
                );
                self.text.truncate(written);
                matches!(result, DecoderResult::InputEmpty)
            }
        };
        self.state = match (fits, last) {
            (false, _) => State::Failed,
            (true, true) => State::Done,
            (true, false) => State::Reading,
        };
        Ok(())
    }
}

/// The encoding a file that is not UTF-8 seems to be in: its WHATWG name and what it is for.
fn guess(sample: &[u8]) -> (&'static str, &'static str) {
    // UTF-16 without a BOM: every other byte of Latin text is zero.
    let zeros_at = |parity: usize| {
        sample
            .iter()
            .skip(parity)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count()
    };
    let half = sample.len() / 2;
    if half >= 4 && zeros_at(1) * 3 > half {
        return ("UTF-16LE", "Unicode text without a byte order mark");
    }
    if half >= 4 && zeros_at(0) * 3 > half {
        return ("UTF-16BE", "Unicode text without a byte order mark");
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(sample, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Deny);
    (encoding.name(), describe(encoding))
}

/// What an encoding is for, as spreadsheets name it in their Save As dialogs.
fn describe(encoding: &'static Encoding) -> &'static str {
    match encoding.name() {
        "windows-1252" | "ISO-8859-15" => "Western European",
        "windows-1250" | "ISO-8859-2" => "Central European",
        "windows-1251" | "KOI8-R" | "KOI8-U" | "IBM866" | "ISO-8859-5" => "Cyrillic",
        "windows-1253" | "ISO-8859-7" => "Greek",
        "windows-1254" => "Turkish",
        "windows-1255" | "ISO-8859-8" => "Hebrew",
        "windows-1256" | "ISO-8859-6" => "Arabic",
        "windows-1257" | "ISO-8859-4" | "ISO-8859-13" => "Baltic",
        "windows-1258" => "Vietnamese",
        "windows-874" => "Thai",
        "Shift_JIS" | "EUC-JP" | "ISO-2022-JP" => "Japanese",
        "EUC-KR" => "Korean",
        "GBK" | "gb18030" => "Chinese Simplified",
        "Big5" => "Chinese Traditional",
        "macintosh" => "Western, Mac OS Roman",
        _ => "a legacy encoding",
    }
}

/// The encoding a label names (any WHATWG label: "windows-1252", "latin1", "cp1251", ...);
/// `None` for labels that name none, and for "replacement", which decodes nothing.
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label_no_replacement(label.trim().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(bytes: &[u8], declared: Option<&'static Encoding>) -> (String, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, bytes).unwrap();
        let plan = Plan::for_file(bytes, declared);
        let mut reader = open_text(&path, plan).unwrap();
        let mut text = Vec::new();
        // One byte at a time, so that characters are cut between reads of the caller too.
        let mut byte = [0];
        let failed = loop {
            match reader.read(&mut byte) {
                Ok(0) => break false,
                Ok(_) => text.push(byte[0]),
                Err(e) => {
                    assert!(NotText::is(&e));
                    break true;
                }
            }
        };
        (String::from_utf8(text).unwrap(), failed)
    }

    #[test]
    fn boms_decide_and_declarations_apply_only_without_one() {
        let utf16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "email\tname\r\nä@x\tƏli\r\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(
            text_of(&utf16le, None),
            ("email\tname\r\nä@x\tƏli\r\n".into(), false)
        );
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("Ωmega".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let windows_1252 = encoding_for_label("windows-1252");
        assert_eq!(text_of(&utf16be, windows_1252), ("Ωmega".into(), false));
        assert_eq!(text_of(b"Caf\xe9", windows_1252), ("Café".into(), false));
        assert_eq!(
            text_of(b"\xEF\xBB\xBFCaf\xc3\xa9", windows_1252),
            ("Café".into(), false)
        );
    }

    #[test]
    fn utf8_stops_at_the_first_byte_that_does_not_fit() {
        // The multi-byte characters before it come through whole, even read a byte at a time.
        assert_eq!(text_of("Ə\nƏ".as_bytes(), None), ("Ə\nƏ".into(), false));
        assert_eq!(
            text_of(b"ok\n\xc3\xa9\nCaf\xe9!", None),
            ("ok\né\nCaf".into(), true)
        );
        assert_eq!(text_of(b"cut \xc3", None), ("cut ".into(), true));
        assert_eq!(text_of(b"e\0m\0", None), ("e\0m\0".into(), false));
        assert!(Plan::Utf8 { bom: 0 }.looks_like_utf16(b"e\0m\0"));
        assert!(Plan::Utf8 { bom: 0 }.looks_like_utf16(b"\0e\0m"));
        assert!(!Plan::Utf8 { bom: 0 }.looks_like_utf16(b"e\0,\x01"));
        assert!(!Plan::Utf8 { bom: 0 }.looks_like_utf16(b"em\0\0"));
        let shift_jis = encoding_for_label("shift_jis");
        assert_eq!(text_of(b"ab\x81", shift_jis), ("ab".into(), true));
    }

    #[test]
    fn a_guess_names_the_encoding_and_what_it_is_for() {
        let french = "Délégation permanente auprès de l'Office des Nations Unies à Genève, \
                      Représentation, Ambassade, Conseil de l'Europe, Comité";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(french);
        assert_eq!(guess(&bytes), ("windows-1252", "Western European"));
        let russian = "Уполномоченный по правам человека в Российской Федерации, посольство";
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(russian);
        assert_eq!(guess(&bytes), ("windows-1251", "Cyrillic"));
        let utf16: Vec<u8> = "email,name\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(guess(&utf16).0, "UTF-16LE");
    }

    #[test]
    fn labels_are_whatwg_labels() {
        assert_eq!(
            encoding_for_label(" latin1 ").unwrap().name(),
            "windows-1252"
        );
        assert_eq!(encoding_for_label("cp1251").unwrap().name(), "windows-1251");
        assert!(encoding_for_label("replacement").is_none());
        assert!(encoding_for_label("klingon").is_none());
    }
}
