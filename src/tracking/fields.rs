//! Header-style field groups, as RFC 3464 (`message/delivery-status`) and RFC 8098
//! (`message/disposition-notification`) write them: `Name: value` lines, folded onto following
//! lines that start with white space, with groups separated by blank lines.
//!
//! mail-parser hands these parts over as opaque bytes, so they are read here.

/// One field: its name in lower case (names are case-insensitive) and its unfolded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// The fields of one group, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub fields: Vec<Field>,
}

impl Group {
    /// The first value of the field `name` (any letter case), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every spelling of the address in field `name` (see [`address_spellings`]); empty when
    /// the field is missing or names no address.
    pub fn address(&self, name: &str) -> Vec<String> {
        self.get(name).map(address_spellings).unwrap_or_default()
    }
}

/// Splits `text` into groups of fields. Lines that are neither a field nor a continuation are
/// ignored (a report is read as far as it makes sense, never refused for a stray line); groups
/// with no field at all are dropped.
pub fn groups(text: &str) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut current = Group::default();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A folded line continues the field before it.
            if let Some(last) = current.fields.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                current.fields.push(Field {
                    name: name.to_ascii_lowercase(),
                    value: value.trim().to_string(),
                });
            }
        }
    }
    if !current.fields.is_empty() {
        groups.push(current);
    }
    groups
}

/// The value with RFC 5322 comments (`(like this)`, nested, with `\)` escapes) removed, outside
/// quoted strings, and white space collapsed.
pub fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    out.extend(next);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a typed value, `rfc822; user@example.org` or `dns; mx.example.org`, into its type
/// (lower case) and the rest. A value without `;` has no type.
pub fn typed(value: &str) -> (Option<String>, &str) {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.trim().is_empty() && !kind.trim().contains(' ') => {
            (Some(kind.trim().to_ascii_lowercase()), rest.trim())
        }
        _ => (None, value.trim()),
    }
}

/// An address field (`Final-Recipient`, `Original-Recipient`): every spelling the report allows
/// for it, the first as written. `rfc822` addresses may be xtext-encoded (`+2B` for `+`, RFC
/// 3461) when they come from ORCPT, and `utf-8` ones may escape characters as `\x{HEX}` (RFC
/// 6533), so the decoded forms are listed too. Angle brackets, which some servers add, are
/// dropped. Empty when the field names no address.
pub fn address_spellings(value: &str) -> Vec<String> {
    let (kind, rest) = typed(value);
    let bare = without_comments(rest);
    let bare = bare
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if bare.is_empty() {
        return Vec::new();
    }
    let mut spellings = vec![bare.to_string()];
    let mut add = |s: String| {
        if !s.is_empty() && !spellings.contains(&s) {
            spellings.push(s);
        }
    };
    match kind.as_deref() {
        Some("utf-8") => add(unescape_unicode(bare)),
        _ => add(decode_xtext(bare)),
    }
    spellings
}

/// RFC 3461 xtext: `+` followed by two upper-case hex digits stands for that byte.
pub fn decode_xtext(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
        if bytes[i] == b'+' && i + 2 < bytes.len() && hex(bytes[i + 1]) && hex(bytes[i + 2]) {
            let pair = &text[i + 1..i + 3];
            out.push(u8::from_str_radix(pair, 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 6533 `\x{HEX}`: one Unicode scalar value written in hex.
pub fn unescape_unicode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\\x{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let decoded = after.find('}').and_then(|end| {
            let hex = &after[..end];
            let c = (hex.len() <= 6)
                .then(|| u32::from_str_radix(hex, 16).ok())
                .flatten()
                .and_then(char::from_u32)?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("\\x{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first RFC 3463 enhanced status code in `text` (`5.1.1`, `4.4.7`, `2.0.0`), standing on
/// its own (not part of a version number or an address).
pub fn enhanced_status(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for start in 0..bytes.len() {
        if !matches!(bytes[start], b'2' | b'4' | b'5') {
            continue;
        }
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'.') {
            continue;
        }
        if let Some(len) = status_len(&bytes[start..]) {
            let end = start + len;
            if end == bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'.') {
                return Some(text[start..end].to_string());
            }
        }
    }
    None
}

/// The length of `class.subject.detail` at the start of `bytes`, if it is one: one class digit,
/// then one to three digits twice.
fn status_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 5 || bytes[1] != b'.' {
        return None;
    }
    let mut at = 2;
    for part in 0..2 {
        let digits = bytes[at..]
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        at += digits;
        if part == 0 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
    }
    Some(at)
}

/// Whether `text` is exactly an enhanced status code.
pub fn is_enhanced_status(text: &str) -> bool {
    status_len(text.as_bytes()) == Some(text.len())
        && matches!(text.as_bytes()[0], b'2' | b'4' | b'5')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_join_their_field_and_blank_lines_split_groups() {
        let text = "Reporting-MTA: dns;\r\n mail.example.org\r\n\r\n\r\nFinal-Recipient: rfc822; a@x.example\r\nDiagnostic-Code: smtp; 550 5.1.1\r\n\t<a@x.example>: unknown\r\n\r\nfinal-recipient: rfc822; b@x.example\r\n";
        let groups = groups(text);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups[0].get("Reporting-MTA"),
            Some("dns; mail.example.org")
        );
        assert_eq!(
            groups[1].get("diagnostic-code"),
            Some("smtp; 550 5.1.1 <a@x.example>: unknown")
        );
        assert_eq!(
            groups[2].get("Final-Recipient"),
            Some("rfc822; b@x.example")
        );
    }

    #[test]
    fn stray_lines_are_ignored_not_fatal() {
        let groups = groups("this is not a field\nAction: failed\n  \n");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].get("action"), Some("failed"));
    }

    #[test]
    fn comments_go_quoted_strings_stay() {
        assert_eq!(without_comments("5.1.1 (bad (nested) mailbox)"), "5.1.1");
        assert_eq!(without_comments("failed (permanent \\) still)"), "failed");
        assert_eq!(without_comments("\"(kept)\" x"), "\"(kept)\" x");
    }

    #[test]
    fn typed_values_split_on_the_first_semicolon() {
        assert_eq!(
            typed("RFC822;user@x.example"),
            (Some("rfc822".into()), "user@x.example")
        );
        assert_eq!(typed("plain text"), (None, "plain text"));
    }

    #[test]
    fn addresses_are_listed_as_written_and_decoded() {
        assert_eq!(
            address_spellings("rfc822; <Jane+2Bun@x.example> (ORCPT)"),
            vec!["Jane+2Bun@x.example", "Jane+un@x.example"]
        );
        assert_eq!(
            address_spellings("utf-8; j\\x{F6}ran@b\\x{FC}cher.example"),
            vec!["j\\x{F6}ran@b\\x{FC}cher.example", "jöran@bücher.example"]
        );
        assert_eq!(
            address_spellings("utf-8; jöran@bücher.example"),
            vec!["jöran@bücher.example"]
        );
        assert!(address_spellings("rfc822;").is_empty());
    }

    #[test]
    fn xtext_and_unicode_escapes_survive_bad_input() {
        assert_eq!(decode_xtext("a+2"), "a+2");
        assert_eq!(decode_xtext("a+zz"), "a+zz");
        assert_eq!(unescape_unicode("\\x{D800}x"), "\\x{D800}x");
        assert_eq!(unescape_unicode("\\x{"), "\\x{");
    }

    #[test]
    fn enhanced_status_codes_are_found_on_their_own() {
        assert_eq!(
            enhanced_status("550 5.1.1 <a@x>: unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("550-5.7.26 unauthenticated").as_deref(),
            Some("5.7.26")
        );
        assert_eq!(enhanced_status("(#5.1.1)").as_deref(), Some("5.1.1"));
        assert_eq!(enhanced_status("version 15.2.1 on 10.4.5.6"), None);
        assert_eq!(enhanced_status("no code"), None);
        assert!(is_enhanced_status("4.4.7"));
        assert!(!is_enhanced_status("4.4"));
        assert!(!is_enhanced_status("3.1.1"));
    }
}
