//! The common bounces that carry no `message/delivery-status` part, read from their text:
//!
//! * **Exim** (the plain-text form; Exim also adds `X-Failed-Recipients`): "The following
//!   address(es) failed:", then per address an indented paragraph (`host ...`, the SMTP reply);
//!   delay warnings say "has not yet been delivered".
//! * **qmail** (QSBMF, <https://cr.yp.to/proto/qsbmf.txt>): "Hi. This is the qmail-send program
//!   at HOST.", then one paragraph per address starting `<address>:`.
//! * **Exchange** (2003–2010 text form, and Microsoft 365's human-readable part when the
//!   delivery-status part is missing): "The following recipient(s) cannot be reached:" with
//!   `<host #5.1.1>`, or "Remote Server returned '550 5.1.10 ...'".
//! * **Gmail** (the form it sent before it adopted RFC 3464): "Delivery to the following
//!   recipient failed permanently:" or "has been delayed:", then "Technical details of ...".
//! * Anything else with an `X-Failed-Recipients` header.
//!
//! The returned letter's Message-ID is taken from the copy these bounces append.

use mail_parser::Message;

use super::MalformedReport;
use super::fields::enhanced_status;
use super::report::{Fate, Kind, Notice, addresses_in, message_ids_in};

/// A non-standard bounce, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub kind: Kind,
    /// The server that wrote the bounce, or empty when the text does not say.
    pub reporter: String,
    pub notices: Vec<Notice>,
    /// Message-IDs found in the copy of the letter that the bounce returns.
    pub message_ids: Vec<String>,
}

/// Which vendor wrote a standard delivery-status report, for the messages (the report itself
/// is read by [`super::dsn`]).
pub fn vendor(message: &Message<'_>) -> Option<Kind> {
    let header = |name: &str| {
        message
            .header_raw(name)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    if message.header_raw("X-MS-Exchange-Message-Is-Ndr").is_some()
        || header("X-Mailer").contains("microsoft")
    {
        return Some(Kind::Exchange);
    }
    if header("From").contains("googlemail.com") || header("From").contains("@google.com") {
        return Some(Kind::Gmail);
    }
    None
}

/// Reads a message that has no delivery-status part as one of the known bounces. `Ok(None)`:
/// it is none of them.
pub fn parse(message: &Message<'_>) -> Result<Option<Bounce>, MalformedReport> {
    let text = message
        .body_text(0)
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default();
    let failed_header: Vec<String> = message
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("x-failed-recipients"))
        .flat_map(|(_, value)| addresses_in(value))
        .collect();
    let (kind, reporter, notices) = if text.contains("This is the qmail-send program at ") {
        let (reporter, notices) = qmail(&text);
        (Kind::Qmail, reporter, notices)
    } else if text.contains("created automatically by mail delivery software")
        && (text.contains("address(es) failed") || text.contains("has not yet been delivered"))
    {
        (Kind::Exim, String::new(), exim(&text))
    } else if text.contains("following recipient(s) cannot be reached")
        || text.contains("Delivery has failed to these recipients or groups")
        || text.contains("did not reach some or all of the intended recipients")
    {
        let (reporter, notices) = exchange(&text);
        (Kind::Exchange, reporter, notices)
    } else if text.contains("Delivery to the following recipient") {
        (Kind::Gmail, String::new(), gmail(&text))
    } else if !failed_header.is_empty() {
        (
            Kind::FailedRecipients,
            String::new(),
            failed_recipients(&failed_header, &text),
        )
    } else {
        return Ok(None);
    };
    if notices.is_empty() {
        return Err(MalformedReport::new(format!(
            "reads like a {} but names no address that failed or was delayed",
            kind.describe()
        )));
    }
    Ok(Some(Bounce {
        kind,
        reporter,
        notices,
        message_ids: quoted_message_ids(&text),
    }))
}

/// `Message-ID:` lines of the copy a bounce returns.
fn quoted_message_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            line.trim_start()
                .get(..11)
                .is_some_and(|name| name.eq_ignore_ascii_case("message-id:"))
        })
        .flat_map(message_ids_in)
        .collect()
}

fn notice(address: &str, fate: Fate, diagnostic: String, remote_server: String) -> Notice {
    Notice {
        final_recipient: vec![address.to_string()],
        original_recipient: Vec::new(),
        fate,
        status: enhanced_status(&diagnostic).unwrap_or_default(),
        diagnostic,
        remote_server,
    }
}

/// The lines of `text` after the first line holding `start`, up to the first holding one of
/// `stops`.
fn section<'a>(text: &'a str, start: &str, stops: &[&str]) -> Vec<&'a str> {
    text.lines()
        .skip_while(|line| !line.contains(start))
        .skip(1)
        .take_while(|line| !stops.iter().any(|stop| line.contains(stop)))
        .collect()
}

/// The one address a line consists of (`  jane@un.example`, `<jane@un.example>:`), if it does.
fn lone_address(line: &str) -> Option<String> {
    let found = addresses_in(line);
    let words = line.split_whitespace().count();
    (found.len() == 1 && words == 1).then(|| found[0].clone())
}

/// Exim: indented address lines, each followed by more deeply indented detail lines.
fn exim(text: &str) -> Vec<Notice> {
    let copy_markers = [
        "------ This is a copy of the message",
        "------ This is a copy of the message's headers",
    ];
    let (fate, lines) = if text.contains("address(es) failed") {
        (
            Fate::Bounced,
            section(text, "address(es) failed", &copy_markers),
        )
    } else {
        (
            Fate::Delayed,
            section(text, "has not yet been delivered", &copy_markers),
        )
    };
    let mut notices = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let finish = |current: Option<(String, Vec<String>)>, notices: &mut Vec<Notice>| {
        if let Some((address, details)) = current {
            // The SMTP reply is the detail line that starts with a reply code.
            let reply = details
                .iter()
                .rev()
                .find(|d| d.len() > 3 && d.as_bytes()[..3].iter().all(u8::is_ascii_digit))
                .cloned();
            let remote = details
                .iter()
                .find_map(|d| d.strip_prefix("host "))
                .and_then(|h| h.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            let diagnostic = reply.unwrap_or_else(|| details.join(" "));
            notices.push(notice(&address, fate, diagnostic, remote));
        }
    };
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        if line.trim().is_empty() {
            continue;
        }
        match lone_address(line) {
            Some(address) if indent <= 2 => {
                finish(current.take(), &mut notices);
                current = Some((address, Vec::new()));
            }
            _ if indent > 2 => {
                if let Some((_, details)) = &mut current {
                    details.push(line.trim().to_string());
                }
            }
            // Text between paragraphs ("The address to which ... is:") ends a paragraph.
            _ => finish(current.take(), &mut notices),
        }
    }
    finish(current, &mut notices);
    notices
}

/// qmail: `Hi. This is the qmail-send program at HOST.`, then paragraphs `<address>:`.
fn qmail(text: &str) -> (String, Vec<Notice>) {
    let reporter = text
        .split("qmail-send program at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_string();
    let body = text
        .split("--- Below this line is a copy of the message")
        .next()
        .unwrap_or_default()
        .split("--- Enclosed are the original headers of the message")
        .next()
        .unwrap_or_default();
    let mut notices = Vec::new();
    for paragraph in body.split("\n\n") {
        let mut lines = paragraph.lines().filter(|l| !l.trim().is_empty());
        let Some(first) = lines.next() else { continue };
        let first = first.trim();
        let Some(address) = first.strip_prefix('<').and_then(|f| f.strip_suffix(">:")) else {
            continue;
        };
        let details: Vec<&str> = lines.map(str::trim).collect();
        let remote = details
            .iter()
            .find_map(|d| {
                d.strip_suffix(" does not like recipient.")
                    .or_else(|| d.strip_prefix("Connected to "))
            })
            .and_then(|h| h.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        let diagnostic = match details
            .iter()
            .position(|d| d.starts_with("Remote host said:"))
        {
            Some(at) => details[at..]
                .iter()
                .take_while(|d| !d.starts_with("Giving up on"))
                .map(|d| d.trim_start_matches("Remote host said:").trim())
                .collect::<Vec<_>>()
                .join(" "),
            None => details.join(" "),
        };
        notices.push(notice(address, Fate::Bounced, diagnostic, remote));
    }
    (reporter, notices)
}

/// Exchange: the 2003–2010 "cannot be reached" list with `<host #5.1.1>`, or Microsoft 365's
/// "Diagnostic information for administrators" with "Remote Server returned '...'".
fn exchange(text: &str) -> (String, Vec<Notice>) {
    let mut reporter = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Generating server:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut notices = Vec::new();
    if text.contains("Remote Server returned") {
        for (i, line) in lines.iter().enumerate() {
            let Some(reply) = line.trim().strip_prefix("Remote Server returned") else {
                continue;
            };
            let address = lines[..i].iter().rev().find_map(|l| lone_address(l.trim()));
            if let Some(address) = address {
                let reply = reply
                    .trim()
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_string();
                notices.push(notice(&address, Fate::Bounced, reply, String::new()));
            }
        }
        return (reporter, notices);
    }
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        let is_recipient = words.len() >= 2
            && words[1] == "on"
            && addresses_in(words[0]).len() == 1
            && lines[i].starts_with([' ', '\t']);
        if !is_recipient {
            i += 1;
            continue;
        }
        let address = addresses_in(words[0]).remove(0);
        let indent = lines[i].len() - lines[i].trim_start().len();
        let mut details = Vec::new();
        i += 1;
        while i < lines.len() && lines[i].len() - lines[i].trim_start().len() > indent {
            details.push(lines[i].trim());
            i += 1;
        }
        // `<mail.un.example #5.1.1>` names the server and the status.
        let tag = details.iter().find_map(|d| {
            let inner = d.strip_prefix('<')?.strip_suffix('>')?;
            let (host, code) = inner.split_once(" #")?;
            Some((host.to_string(), code.to_string()))
        });
        let text: Vec<&str> = details
            .iter()
            .filter(|d| !d.starts_with('<'))
            .copied()
            .collect();
        let mut found = notice(&address, Fate::Bounced, text.join(" "), String::new());
        if let Some((host, code)) = tag {
            if found.status.is_empty() {
                found.status = enhanced_status(&code).unwrap_or_default();
            }
            if reporter.is_empty() {
                reporter = host;
            }
        }
        notices.push(found);
    }
    (reporter, notices)
}

/// Gmail's older bounce: an indented address list, then "Technical details of ... failure:".
fn gmail(text: &str) -> Vec<Notice> {
    let fate = if text.contains("failed permanently") {
        Fate::Bounced
    } else {
        Fate::Delayed
    };
    let addresses: Vec<String> = text
        .lines()
        .skip_while(|l| !l.contains("Delivery to the following recipient"))
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| lone_address(l.trim()))
        .collect();
    let details = section(
        text,
        "Technical details of",
        &[
            "----- Original message -----",
            "----- Message truncated -----",
        ],
    );
    // The other server's reply when the text quotes it, else the first paragraph.
    let reply = details
        .iter()
        .map(|l| l.trim())
        .find(|l| l.len() > 3 && l.as_bytes()[..3].iter().all(u8::is_ascii_digit));
    let diagnostic = match reply {
        Some(reply) => reply.to_string(),
        None => details
            .iter()
            .map(|l| l.trim())
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    };
    addresses
        .iter()
        .map(|a| notice(a, fate, diagnostic.clone(), String::new()))
        .collect()
}

/// A bounce known only by its `X-Failed-Recipients` header: the diagnostic is the first line
/// of the text carrying an enhanced status code.
fn failed_recipients(addresses: &[String], text: &str) -> Vec<Notice> {
    let diagnostic = text
        .lines()
        .map(str::trim)
        .find(|l| enhanced_status(l).is_some())
        .unwrap_or_default()
        .to_string();
    addresses
        .iter()
        .map(|a| notice(a, Fate::Bounced, diagnostic.clone(), String::new()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn read(raw: &str) -> Result<Option<Bounce>, MalformedReport> {
        let message = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("a message");
        parse(&message)
    }

    #[test]
    fn exim_failure_paragraphs() {
        let raw = "From: Mail Delivery System <Mailer-Daemon@mx.example>\nSubject: Mail delivery failed\n\nThis message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  a@un.example\n    host mx.un.example [192.0.2.25]\n    SMTP error from remote mail server after RCPT TO:<a@un.example>:\n    550 5.1.1 <a@un.example>: User unknown\n  b@un.example\n    Unrouteable address\n\n------ This is a copy of the message, including all the headers. ------\n\nMessage-ID: <0123456789abcdef0123456789abcdef.envoi@ombudsman.example>\n";
        let bounce = read(raw).expect("reads").expect("an Exim bounce");
        assert_eq!(bounce.kind, Kind::Exim);
        assert_eq!(bounce.notices.len(), 2);
        assert_eq!(
            bounce.notices[0].diagnostic,
            "550 5.1.1 <a@un.example>: User unknown"
        );
        assert_eq!(bounce.notices[0].status, "5.1.1");
        assert_eq!(bounce.notices[0].remote_server, "mx.un.example");
        assert_eq!(bounce.notices[1].diagnostic, "Unrouteable address");
        assert_eq!(bounce.notices[1].status, "");
        assert_eq!(
            bounce.message_ids,
            vec!["<0123456789abcdef0123456789abcdef.envoi@ombudsman.example>"]
        );
    }

    #[test]
    fn qmail_paragraphs() {
        let raw = "From: MAILER-DAEMON@mail.example\nSubject: failure notice\n\nHi. This is the qmail-send program at mail.example.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<a@osce.example>:\n192.0.2.9 does not like recipient.\nRemote host said: 550 5.1.1 No such user\nGiving up on 192.0.2.9.\n\n<b@osce.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy of the message.\n\nMessage-Id: <x@y.example>\n";
        let bounce = read(raw).expect("reads").expect("a qmail bounce");
        assert_eq!(bounce.kind, Kind::Qmail);
        assert_eq!(bounce.reporter, "mail.example");
        assert_eq!(bounce.notices[0].diagnostic, "550 5.1.1 No such user");
        assert_eq!(bounce.notices[0].remote_server, "192.0.2.9");
        assert_eq!(bounce.notices[1].status, "5.1.1");
        assert_eq!(bounce.message_ids, vec!["<x@y.example>"]);
    }

    #[test]
    fn a_known_shape_naming_no_address_is_malformed() {
        let raw = "From: MAILER-DAEMON@mail.example\n\nHi. This is the qmail-send program at mail.example.\nSomething odd.\n";
        let err = read(raw).expect_err("malformed");
        assert!(err.to_string().contains("qmail bounce"), "{err}");
    }

    #[test]
    fn ordinary_mail_is_no_bounce() {
        assert_eq!(
            read("From: a@x.example\n\nThe following recipient was happy.\n"),
            Ok(None)
        );
    }
}
