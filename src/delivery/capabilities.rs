//! What the relay says it can do, read from its raw EHLO reply.
//!
//! lettre's `ServerInfo` keeps only what lettre itself needs (8BITMIME, SMTPUTF8, STARTTLS and
//! the three AUTH mechanisms it implements, matched case-sensitively) and drops SIZE and DSN,
//! so envoi reads the reply itself (RFC 5321 4.1.1.1: keywords are case-insensitive).

use lettre::transport::smtp::response::Response;

/// The relay's EHLO keywords that envoi acts on. Who reads which field:
///
/// * `dsn` (RFC 3461): delivery-status requests (`NOTIFY`, `RET`, `ENVID`) are sent only when
///   it is set (the DSN / return-path work).
/// * `smtputf8` (RFC 6531): a letter to a non-ASCII local part can go out only when it is set;
///   `check --smtp` tells beforehand (the international-address work).
/// * `size_limit` (RFC 1870): a letter larger than this is refused by the relay anyway; `None`
///   when the relay did not say (or said `SIZE 0`, "no fixed limit").
/// * `eight_bit_mime` (RFC 6152): `BODY=8BITMIME` is declared only when it is set.
/// * `starttls`: `security = "starttls"` refuses to go on without it.
/// * `auth_mechanisms`: every mechanism offered, upper-case, in the relay's order; the login
///   picks from it and names them when none is one envoi supports.
/// * `enhanced_status_codes` (RFC 2034): replies carry `x.y.z`; classification uses them first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The name the relay gave in the first line of its EHLO reply.
    pub name: String,
    pub dsn: bool,
    pub smtputf8: bool,
    pub size_limit: Option<u64>,
    pub eight_bit_mime: bool,
    pub starttls: bool,
    pub auth_mechanisms: Vec<String>,
    pub enhanced_status_codes: bool,
    pub pipelining: bool,
}

impl Capabilities {
    pub(crate) fn from_response(response: &Response) -> Capabilities {
        Self::from_lines(response.message())
    }

    /// Parses the text lines of an EHLO reply (without the `250-` prefixes): the first is the
    /// greeting name, each other one a keyword with its parameters.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Capabilities {
        let mut lines = lines.into_iter();
        let mut caps = Capabilities {
            name: lines
                .next()
                .and_then(|l| l.split_whitespace().next())
                .unwrap_or_default()
                .to_owned(),
            ..Capabilities::default()
        };
        for line in lines {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "DSN" => caps.dsn = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "STARTTLS" => caps.starttls = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => {
                    caps.size_limit = words
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .filter(|&n| n > 0);
                }
                "AUTH" => {
                    for mechanism in words {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if !caps.auth_mechanisms.contains(&mechanism) {
                            caps.auth_mechanisms.push(mechanism);
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }

    /// Whether the relay offers this AUTH mechanism (case-insensitive).
    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth_mechanisms
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postfix_ehlo_reply_is_read_whole() {
        let caps = Capabilities::from_lines([
            "relay.example.test",
            "PIPELINING",
            "SIZE 10240000",
            "VRFY",
            "ETRN",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "AUTH=PLAIN LOGIN",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ]);
        assert_eq!(caps.name, "relay.example.test");
        assert!(caps.dsn && caps.smtputf8 && caps.eight_bit_mime && caps.starttls);
        assert!(caps.enhanced_status_codes && caps.pipelining);
        assert_eq!(caps.size_limit, Some(10_240_000));
        assert_eq!(caps.auth_mechanisms, ["PLAIN", "LOGIN"]);
        assert!(caps.offers_auth("login"));
    }

    #[test]
    fn keywords_are_case_insensitive_and_size_zero_is_no_limit() {
        let caps = Capabilities::from_lines(["mx", "smtputf8", "size 0", "auth cram-md5 ntlm"]);
        assert!(caps.smtputf8);
        assert!(!caps.dsn && !caps.eight_bit_mime);
        assert_eq!(caps.size_limit, None);
        assert_eq!(caps.auth_mechanisms, ["CRAM-MD5", "NTLM"]);
        assert!(!caps.offers_auth("PLAIN"));
        assert_eq!(Capabilities::from_lines(["mx", "SIZE"]).size_limit, None);
        assert_eq!(Capabilities::from_lines([]), Capabilities::default());
    }
}
