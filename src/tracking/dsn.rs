//! RFC 3464 `message/delivery-status`: one group of per-message fields, then one group per
//! recipient. What envoi reads of them:
//!
//! * per message: `Original-Envelope-Id` (envoi's letter token, sent as ENVID), `Reporting-MTA`;
//! * per recipient: `Final-Recipient` and `Original-Recipient` (`rfc822;` or RFC 6533 `utf-8;`
//!   addresses), `Action` (`failed`, `delayed`, `delivered`, `relayed`, `expanded`), `Status`
//!   (`5.1.1`), `Diagnostic-Code` (`smtp; 550 5.1.1 ...`), `Remote-MTA`.

use super::MalformedReport;
use super::fields::{self, Group};
use super::report::{Fate, Notice};

/// A delivery-status part, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub envelope_id: Option<String>,
    /// `Reporting-MTA` without its type (`mail.ombudsman.example`), or empty.
    pub reporting_mta: String,
    pub notices: Vec<Notice>,
}

pub fn parse(text: &str) -> Result<DeliveryStatus, MalformedReport> {
    let groups = fields::groups(text);
    let Some(first) = groups.first() else {
        return Err(MalformedReport::new("its delivery-status part is empty"));
    };
    // The per-message group is required, but some servers start straight with a recipient.
    let (message, recipients) = if is_recipient_group(first) {
        (first, &groups[..])
    } else {
        (first, &groups[1..])
    };
    let notices = recipients
        .iter()
        .enumerate()
        .map(|(i, group)| {
            notice(group).map_err(|why| {
                MalformedReport::new(format!(
                    "recipient {} of its delivery-status part {why}",
                    i + 1
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if notices.is_empty() {
        return Err(MalformedReport::new(
            "its delivery-status part names no recipient (no Final-Recipient group)",
        ));
    }
    Ok(DeliveryStatus {
        envelope_id: message
            .get("original-envelope-id")
            .map(|v| fields::decode_xtext(v.trim()))
            .filter(|v| !v.is_empty()),
        reporting_mta: message
            .get("reporting-mta")
            .map(server_name)
            .unwrap_or_default(),
        notices,
    })
}

fn is_recipient_group(group: &Group) -> bool {
    group.has("final-recipient") || group.has("action")
}

/// What is wrong with one per-recipient group; the text completes "recipient N of its
/// delivery-status part ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum GroupError {
    #[error("has no Final-Recipient address")]
    NoFinalRecipient,
    #[error("has no Action")]
    NoAction,
    #[error("has an Action \"{0}\" that RFC 3464 does not define")]
    UnknownAction(String),
}

/// One per-recipient group.
fn notice(group: &Group) -> Result<Notice, GroupError> {
    let final_recipient = group.address("final-recipient");
    if final_recipient.is_empty() {
        return Err(GroupError::NoFinalRecipient);
    }
    let action = group
        .get("action")
        .map(fields::without_comments)
        .ok_or(GroupError::NoAction)?;
    let fate = match action.to_ascii_lowercase().as_str() {
        "failed" => Fate::Bounced,
        "delayed" => Fate::Delayed,
        "delivered" => Fate::Delivered,
        // Delivered to a list address, which passed it on to its members.
        "expanded" => Fate::Delivered,
        "relayed" => Fate::Relayed,
        other => return Err(GroupError::UnknownAction(other.to_owned())),
    };
    let diagnostic = group
        .get("diagnostic-code")
        .map(|v| fields::typed(v).1.to_string())
        .unwrap_or_default();
    let status = group
        .get("status")
        .map(fields::without_comments)
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .filter(|s| fields::is_enhanced_status(s))
        .or_else(|| fields::enhanced_status(&diagnostic))
        .unwrap_or_default();
    Ok(Notice {
        final_recipient,
        original_recipient: group.address("original-recipient"),
        fate,
        status,
        diagnostic,
        remote_server: group.get("remote-mta").map(server_name).unwrap_or_default(),
    })
}

/// `dns; mx.un.example (192.0.2.7)` → `mx.un.example`.
fn server_name(value: &str) -> String {
    let (_, name) = fields::typed(value);
    fields::without_comments(name)
        .trim_end_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTFIX: &str = "Reporting-MTA: dns; mail.ombudsman.example\r\nX-Postfix-Queue-ID: 4XyZ1k2Lmnz9\r\nX-Postfix-Sender: rfc822; bounces@ombudsman.example\r\nArrival-Date: Wed,  2 Dec 2026 09:12:01 +0000 (UTC)\r\nOriginal-Envelope-Id: 0123456789abcdef0123456789abcdef\r\n\r\nFinal-Recipient: rfc822; registry@un.example\r\nOriginal-Recipient: rfc822;registry@un.example\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.un.example\r\nDiagnostic-Code: smtp; 550 5.1.1 <registry@un.example>: Recipient address\r\n    rejected: User unknown in local recipient table\r\n";

    #[test]
    fn reads_a_postfix_failure() {
        let status = parse(POSTFIX).expect("parses");
        assert_eq!(
            status.envelope_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(status.reporting_mta, "mail.ombudsman.example");
        let [notice] = &status.notices[..] else {
            panic!("{status:?}")
        };
        assert_eq!(notice.fate, Fate::Bounced);
        assert_eq!(notice.status, "5.1.1");
        assert_eq!(notice.final_recipient, vec!["registry@un.example"]);
        assert_eq!(notice.original_recipient, vec!["registry@un.example"]);
        assert_eq!(notice.remote_server, "mx.un.example");
        assert_eq!(
            notice.diagnostic,
            "550 5.1.1 <registry@un.example>: Recipient address rejected: User unknown in local recipient table"
        );
    }

    #[test]
    fn reads_every_action_and_several_recipients() {
        let text = "Reporting-MTA: dns;relay.example\n\nFinal-Recipient: rfc822;a@x.example\nAction: delayed (still trying)\nStatus: 4.4.1 (no answer from host)\nWill-Retry-Until: Thu, 3 Dec 2026 09:00:00 +0000\n\nFinal-Recipient: RFC822; <b@x.example>\nAction: Delivered\nStatus: 2.0.0\n\nFinal-Recipient: rfc822;c@x.example\nAction: relayed\nStatus: 2.0.0\n\nFinal-Recipient: rfc822;list@x.example\nAction: expanded\nStatus: 2.0.0\n\nFinal-Recipient: rfc822;d@x.example\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: X-Unix; mailbox quota exceeded\n";
        let status = parse(text).expect("parses");
        let fates: Vec<Fate> = status.notices.iter().map(|n| n.fate).collect();
        assert_eq!(
            fates,
            [
                Fate::Delayed,
                Fate::Delivered,
                Fate::Relayed,
                Fate::Delivered,
                Fate::Bounced
            ]
        );
        assert_eq!(status.notices[0].status, "4.4.1");
        assert_eq!(status.notices[1].final_recipient, vec!["b@x.example"]);
        assert_eq!(status.notices[4].diagnostic, "mailbox quota exceeded");
        assert_eq!(status.envelope_id, None);
    }

    #[test]
    fn reads_utf8_addresses_and_xtext_envelope_ids() {
        let text = "Reporting-MTA: dns; mx.b\u{fc}cher.example\nOriginal-Envelope-Id: abc+2Bdef\n\nFinal-Recipient: utf-8; j\u{f6}ran@b\u{fc}cher.example\nOriginal-Recipient: utf-8; j\\x{F6}ran@b\\x{FC}cher.example\nAction: failed\nStatus: 5.1.1\n";
        let status = parse(text).expect("parses");
        assert_eq!(status.envelope_id.as_deref(), Some("abc+def"));
        let notice = &status.notices[0];
        assert_eq!(
            notice.final_recipient,
            vec!["j\u{f6}ran@b\u{fc}cher.example"]
        );
        assert!(
            notice
                .original_recipient
                .contains(&"j\u{f6}ran@b\u{fc}cher.example".to_string())
        );
    }

    #[test]
    fn a_missing_status_is_taken_from_the_diagnostic() {
        let text = "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;a@x.example\nAction: failed\nStatus: unknown\nDiagnostic-Code: smtp; 552-5.2.2 mailbox full\n";
        assert_eq!(parse(text).expect("parses").notices[0].status, "5.2.2");
    }

    #[test]
    fn a_recipient_group_without_per_message_fields_is_still_read() {
        let text = "Final-Recipient: rfc822;a@x.example\nAction: failed\nStatus: 5.1.1\n";
        assert_eq!(parse(text).expect("parses").notices.len(), 1);
    }

    #[test]
    fn incomplete_groups_are_malformed_with_a_reason() {
        let cases = [
            ("", "is empty"),
            ("Reporting-MTA: dns; x\n", "names no recipient"),
            (
                "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;a@x.example\nStatus: 5.1.1\n",
                "recipient 1 of its delivery-status part has no Action",
            ),
            (
                "Reporting-MTA: dns; x\n\nAction: failed\nStatus: 5.1.1\n",
                "has no Final-Recipient",
            ),
            (
                "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;a@x.example\nAction: vanished\n",
                "Action \"vanished\"",
            ),
        ];
        for (text, reason) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(reason), "{text:?}: {err}");
        }
    }
}
