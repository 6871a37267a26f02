//! The `email` cell: one bare address, with a hint for each common way of getting it wrong.

use std::str::FromStr;

use super::rules::quote;

/// Checks an `email` cell; returns the key that identifies the addressee (lower case).
pub(super) fn check_email(email: &str) -> Result<String, String> {
    if email.is_empty() {
        return Err("the email cell is empty; fill in the address or delete the row".to_owned());
    }
    if email.contains(['\r', '\n']) {
        return Err(format!(
            "{} runs over several lines; put the address on one line",
            quote(email)
        ));
    }
    if email.contains(['<', '>']) {
        return Err(format!(
            "{} is not a bare email address; put only the address in this column, and the \
             person's name in the `name` column",
            quote(email)
        ));
    }
    let Ok(address) = lettre::Address::from_str(email) else {
        let with_dots = email.replace(',', ".");
        let hint = if email.contains(',')
            && !email.contains([';', ' '])
            && lettre::Address::from_str(&with_dots).is_ok_and(|a| has_dotted_domain(a.domain()))
        {
            format!("there is a comma where a dot belongs: {with_dots}")
        } else if email.contains([',', ';']) {
            "put one address per row; further addressees of the same letter go in the `cc` column"
                .to_owned()
        } else {
            "correct it in the spreadsheet".to_owned()
        };
        return Err(format!("{} is not an email address; {hint}", quote(email)));
    };
    if !has_dotted_domain(address.domain()) {
        let domain = address.domain();
        return Err(format!(
            "{} is not a complete address: its domain {} has no dot (an address ends in a \
             domain such as {domain}.org); correct it in the spreadsheet",
            quote(email),
            quote(domain)
        ));
    }
    // An international domain must have a valid A-label form; and the key is the same however
    // the domain is written (bakı.example or xn--bak-lua.example), so a duplicate is found.
    let address = crate::compose::parse_address(email).map_err(|e| e.to_string())?;
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

    #[test]
    fn a_comma_for_a_dot_and_a_domain_without_a_dot_get_their_own_hint() {
        assert_eq!(
            check_email("info@ombudsman,example").unwrap_err(),
            "\"info@ombudsman,example\" is not an email address; there is a comma where a dot belongs: info@ombudsman.example"
        );
        assert!(
            check_email("a@x.example, b@x.example")
                .unwrap_err()
                .contains("one address per row")
        );
        assert_eq!(
            check_email("info@institute").unwrap_err(),
            "\"info@institute\" is not a complete address: its domain \"institute\" has no dot (an address ends in a domain such as institute.org); correct it in the spreadsheet"
        );
        for fine in [
            "me@localhost",
            "me@LOCALHOST",
            "me@relay.localhost",
            "me@x.example",
        ] {
            assert_eq!(check_email(fine).unwrap(), fine.to_lowercase());
        }
    }
}
