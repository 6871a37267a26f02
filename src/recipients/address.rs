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
    if lettre::Address::from_str(email).is_err() {
        let hint = if email.contains([',', ';']) {
            "put one address per row; further addressees of the same letter go in the `cc` column"
        } else {
            "correct it in the spreadsheet"
        };
        return Err(format!("{} is not an email address; {hint}", quote(email)));
    }
    // An international domain must have a valid A-label form; and the key is the same however
    // the domain is written (bakı.example or xn--bak-lua.example), so a duplicate is found.
    let address = crate::compose::parse_address(email)?;
    Ok(address.to_string().to_lowercase())
}
