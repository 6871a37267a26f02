//! International addresses: a domain goes out in its A-label (punycode) form, which every relay
//! takes, and a local part that is not ASCII needs a relay that offers SMTPUTF8 (RFC 6531).
//!
//! `info@bakı.example` written as it is reaches the relay raw, and a relay without SMTPUTF8
//! (or one that checks the domain, as Postfix does) refuses it; `info@xn--bak-lua.example` is
//! the same address in the form DNS uses (IDNA 2008 with UTS 46 mapping, strict: STD3 rules,
//! hyphens and DNS lengths checked). A local part has no ASCII form, so `jörg@…` can only go
//! through SMTPUTF8; composing marks such a letter and delivery refuses it, with a message,
//! where the relay does not offer it, rather than send mangled bytes.

use lettre::Address;

use super::AddressError;

/// `address` with its domain in A-label form. An ASCII domain without `xn--` labels (the usual
/// case) and an address literal (`[192.0.2.1]`) are left as they are.
pub(super) fn with_ascii_domain(address: Address) -> Result<Address, AddressError> {
    let domain = address.domain();
    let has_a_label = domain.split('.').any(|label| {
        label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
    });
    if (domain.is_ascii() && !has_a_label) || domain.starts_with('[') {
        return Ok(address);
    }
    // idna's error describes itself with Rust debug formatting: say what is wrong instead.
    let invalid = || AddressError::Domain {
        address: address.to_string(),
        domain: domain.to_owned(),
    };
    let ascii = idna::domain_to_ascii_strict(domain).map_err(|_| invalid())?;
    Address::new(address.user(), ascii).map_err(|_| invalid())
}

/// Whether the address can only travel with SMTPUTF8: its local part is not ASCII.
pub fn needs_smtputf8(address: &Address) -> bool {
    !address.user().is_ascii()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn ascii(text: &str) -> Result<String, String> {
        with_ascii_domain(Address::from_str(text).unwrap())
            .map(|a| a.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn international_domains_go_in_a_label_form() {
        assert_eq!(
            ascii("info@bakı.example").unwrap(),
            "info@xn--bak-lua.example"
        );
        assert_eq!(
            ascii("office@BÜRO.example").unwrap(),
            "office@xn--bro-hoa.example"
        );
        assert_eq!(
            ascii("a@xn--bak-lua.example").unwrap(),
            "a@xn--bak-lua.example"
        );
        assert_eq!(
            ascii("plain@ombudsman.example").unwrap(),
            "plain@ombudsman.example"
        );
        assert_eq!(
            ascii("Jörg@bakı.example").unwrap(),
            "Jörg@xn--bak-lua.example"
        );
    }

    #[test]
    fn an_invalid_international_domain_is_refused_in_words() {
        let err = ascii("a@xn--a.example").unwrap_err();
        assert_eq!(
            err,
            "\"a@xn--a.example\" has a domain, \"xn--a.example\", that is not a valid international domain name; check its spelling"
        );
        assert!(ascii("a@bak\u{131}-.example").is_err());
        assert!(!err.contains("Errors"), "{err}");
    }

    #[test]
    fn only_a_non_ascii_local_part_needs_smtputf8() {
        let needs = |t: &str| needs_smtputf8(&Address::from_str(t).unwrap());
        assert!(needs("jörg@x.example") && needs("用户@例子.example"));
        assert!(!needs("info@bakı.example") && !needs("a@x.example"));
    }
}
