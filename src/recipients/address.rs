//! The `email` cell: one bare address, with a hint for each common way of getting it wrong.

use std::str::FromStr;

use super::rules::quote;
use crate::compose::{AddressError, InvisibleCharacter};

/// What is wrong with an `email` cell. Each message says what to do; the caller adds the row
/// and column.
#[derive(Debug, thiserror::Error)]
pub(super) enum EmailError {
    #[error("the email cell is empty; fill in the address or delete the row")]
    Empty,
    #[error("{} runs over several lines; put the address on one line", quote(.email))]
    SeveralLines { email: String },
    #[error(
        "{} is not a bare email address; put only the address in this column, and the \
         person's name in the `name` column",
        quote(.email)
    )]
    NotBare { email: String },
    /// A character that a spreadsheet does not show, pasted from a web page or a document.
    #[error(transparent)]
    Invisible(#[from] InvisibleCharacter),
    #[error(
        "{} is not an email address; there is a comma where a dot belongs: {with_dots}",
        quote(.email)
    )]
    CommaForDot { email: String, with_dots: String },
    #[error(
        "{} is not an email address; put one address per row; further addressees of the same \
         letter go in the `cc` column",
        quote(.email)
    )]
    SeveralAddresses { email: String },
    #[error("{} is not an email address; correct it in the spreadsheet", quote(.email))]
    NotAnAddress { email: String },
    #[error(
        "{} is not a complete address: its domain {} has no dot (an address ends in a domain \
         such as {domain}.org); correct it in the spreadsheet",
        quote(.email),
        quote(.domain)
    )]
    DotlessDomain { email: String, domain: String },
    /// An international domain without a valid A-label form.
    #[error(transparent)]
    Domain(#[from] AddressError),
}

/// Checks an `email` cell; returns the key that identifies the addressee (lower case).
pub(super) fn check_email(email: &str) -> Result<String, EmailError> {
    let owned = || email.to_owned();
    if email.is_empty() {
        return Err(EmailError::Empty);
    }
    if email.contains(['\r', '\n']) {
        return Err(EmailError::SeveralLines { email: owned() });
    }
    if email.contains(['<', '>']) {
        return Err(EmailError::NotBare { email: owned() });
    }
    // Before parsing: UTS 46 would silently drop some of these from the domain, and the letter
    // would go to an address that is not the one in the cell.
    InvisibleCharacter::check(email)?;
    let Ok(address) = lettre::Address::from_str(email) else {
        let with_dots = email.replace(',', ".");
        return Err(
            if email.contains(',')
                && !email.contains([';', ' '])
                && lettre::Address::from_str(&with_dots)
                    .is_ok_and(|a| has_dotted_domain(a.domain()))
            {
                EmailError::CommaForDot {
                    email: owned(),
                    with_dots,
                }
            } else if email.contains([',', ';']) {
                EmailError::SeveralAddresses { email: owned() }
            } else {
                EmailError::NotAnAddress { email: owned() }
            },
        );
    };
    if !has_dotted_domain(address.domain()) {
        return Err(EmailError::DotlessDomain {
            email: owned(),
            domain: address.domain().to_owned(),
        });
    }
    // An international domain must have a valid A-label form; and the key is the same however
    // the domain is written (bakı.example or xn--bak-lua.example), so a duplicate is found.
    let address = crate::compose::parse_address(email)?;
    Ok(address.to_string().to_lowercase())
}

/// A domain that mail can be delivered to: it has a dot (`institute.example`), or it is a
/// test set-up on this machine (`localhost`, `*.localhost`, an address literal `[127.0.0.1]`).
/// A bare `info@institute` is a typo for a real domain far more often than an intranet host.
fn has_dotted_domain(domain: &str) -> bool {
    domain.contains('.') || domain.eq_ignore_ascii_case("localhost") || domain.starts_with('[')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(email: &str) -> String {
        check_email(email).unwrap_err().to_string()
    }

    #[test]
    fn a_comma_for_a_dot_and_a_domain_without_a_dot_get_their_own_hint() {
        assert_eq!(
            problem("info@ombudsman,example"),
            "\"info@ombudsman,example\" is not an email address; there is a comma where a dot belongs: info@ombudsman.example"
        );
        assert_eq!(
            problem("a@x.example, b@x.example"),
            "\"a@x.example, b@x.example\" is not an email address; put one address per row; further addressees of the same letter go in the `cc` column"
        );
        assert_eq!(
            problem("info@institute"),
            "\"info@institute\" is not a complete address: its domain \"institute\" has no dot (an address ends in a domain such as institute.org); correct it in the spreadsheet"
        );
        for fine in [
            "me@localhost",
            "me@LOCALHOST",
            "me@relay.localhost",
            "me@x.example",
            "me@[127.0.0.1]",
        ] {
            assert_eq!(check_email(fine).unwrap(), fine.to_lowercase());
        }
    }

    #[test]
    fn an_invisible_character_is_refused_and_named_wherever_it_is() {
        assert_eq!(
            problem("info@un.\u{200B}example"),
            "\"info@un.[U+200B]example\" contains an invisible character U+200B (zero width space); retype the address"
        );
        for (email, code, name) in [
            (
                "\u{FEFF}info@un.example",
                "FEFF",
                "zero width no-break space, or byte order mark",
            ),
            ("info@bak\u{00AD}ı.example", "00AD", "soft hyphen"),
            ("in\u{00A0}fo@un.example", "00A0", "no-break space"),
            ("info@un.example\u{200F}", "200F", "right-to-left mark"),
            ("info\u{2060}@un.example", "2060", "word joiner"),
            ("info@un.exa\u{200C}mple", "200C", "zero width non-joiner"),
            (
                "info@un.example\u{E0041}",
                "E0041",
                "a formatting character",
            ),
        ] {
            let text = problem(email);
            assert!(
                text.contains(&format!(
                    "contains an invisible character U+{code} ({name}); retype the address"
                )),
                "{text}"
            );
            assert!(text.contains(&format!("[U+{code}]")), "{text}");
        }
        // Letters of any script are visible, and stay accepted.
        assert_eq!(
            check_email("info@bakı.example").unwrap(),
            "info@xn--bak-lua.example"
        );
    }

    #[test]
    fn an_international_domain_that_is_not_valid_is_refused() {
        assert!(
            problem("info@xn--zz.example").contains("not a valid international domain name"),
            "{}",
            problem("info@xn--zz.example")
        );
    }
}
