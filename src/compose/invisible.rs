//! Characters a cell or a settings file does not show (a zero width space, a soft hyphen, a
//! no-break space), which come with addresses pasted from a web page or a document. UTS 46
//! would silently drop some of them from a domain, so the letter would go to an address that
//! is not the one written: an address that holds one is refused, naming the character.

/// An address holding a character that is not seen; `text` is the address as written.
#[derive(Debug, thiserror::Error)]
#[error(
    "\"{}\" contains an invisible character U+{:04X} ({}); retype the address",
    shown_visibly(.text),
    u32::from(*.character),
    character_name(*.character)
)]
pub struct InvisibleCharacter {
    pub text: String,
    pub character: char,
}

impl InvisibleCharacter {
    /// The first invisible character of `text`, as an error.
    pub fn check(text: &str) -> Result<(), InvisibleCharacter> {
        match text.chars().find(|&c| is_invisible(c)) {
            Some(character) => Err(InvisibleCharacter {
                text: text.to_owned(),
                character,
            }),
            None => Ok(()),
        }
    }
}

/// A character that takes no visible place, or looks like a plain space, in a spreadsheet
/// cell: Unicode's format characters (general category Cf) and the no-break and other fixed
/// spaces. An ordinary space is left to the address check, which says the address is wrong.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        // Format characters (Cf), as of Unicode 15.
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            // Spaces other than the ordinary one (Zs), and the line and paragraph separators.
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'..='\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// The Unicode name of the invisible characters met in pasted addresses, or what the others are.
fn character_name(c: char) -> &'static str {
    match c {
        '\u{00AD}' => "soft hyphen",
        '\u{00A0}' => "no-break space",
        '\u{200B}' => "zero width space",
        '\u{200C}' => "zero width non-joiner",
        '\u{200D}' => "zero width joiner",
        '\u{200E}' => "left-to-right mark",
        '\u{200F}' => "right-to-left mark",
        '\u{061C}' => "Arabic letter mark",
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => "a text direction control",
        '\u{2060}' => "word joiner",
        '\u{FEFF}' => "zero width no-break space, or byte order mark",
        '\u{202F}' => "narrow no-break space",
        '\u{2000}'..='\u{200A}' | '\u{1680}' | '\u{205F}' | '\u{3000}' => "a wide or narrow space",
        '\u{2028}' => "line separator",
        '\u{2029}' => "paragraph separator",
        _ => "a formatting character",
    }
}

/// The cell with each invisible character written as `[U+200B]`, so the message shows where.
fn shown_visibly(email: &str) -> String {
    email
        .chars()
        .map(|c| {
            if is_invisible(c) {
                format!("[U+{:04X}]", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{parse_address, parse_mailbox};

    #[test]
    fn an_address_with_an_invisible_character_is_refused_wherever_it_is_written() {
        assert_eq!(
            parse_mailbox("Desk <desk@coe\u{200B}.example>")
                .unwrap_err()
                .to_string(),
            "\"desk@coe[U+200B].example\" contains an invisible character U+200B (zero width space); retype the address"
        );
        assert_eq!(
            parse_address("desk@coe.example\u{2060}")
                .unwrap_err()
                .to_string(),
            "\"desk@coe.example[U+2060]\" contains an invisible character U+2060 (word joiner); retype the address"
        );
        // A display name may need one: Persian writes some words with a zero width non-joiner.
        let persian = parse_mailbox("\"می\u{200C}خواهم\" <desk@coe.example>").unwrap();
        assert_eq!(persian.name.as_deref(), Some("می\u{200C}خواهم"));
    }
}
