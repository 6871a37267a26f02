//! RFC 8098 `message/disposition-notification`: what the recipient's mail client did with the
//! letter. `Disposition: manual-action/MDN-sent-manually; displayed` says it was shown: the
//! letter is `read`. `deleted`, `dispatched` and `processed` say it reached the mailbox and was
//! dealt with without being shown: recorded as `delivered`, which is all they prove.

use super::MalformedReport;
use super::fields;
use super::report::{Fate, Notice, message_ids_in};

/// A read receipt, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `Reporting-UA` (the client and where it runs), or empty.
    pub reporting_ua: String,
    pub original_message_id: Option<String>,
    pub notice: Notice,
}

pub fn parse(text: &str) -> Result<Receipt, MalformedReport> {
    let groups = fields::groups(text);
    let Some(group) = groups.first() else {
        return Err(MalformedReport::new(
            "its disposition-notification part is empty",
        ));
    };
    let disposition = group.get("disposition").ok_or_else(|| {
        MalformedReport::new("its disposition-notification part has no Disposition")
    })?;
    let disposition = fields::without_comments(disposition);
    // `action-mode/sending-mode; type/modifier,modifier`
    let (mode, kind) = disposition.split_once(';').unwrap_or(("", &disposition));
    let kind = kind.trim();
    let (kind_name, modifiers) = kind.split_once('/').unwrap_or((kind, ""));
    let fate = match kind_name.trim().to_ascii_lowercase().as_str() {
        "displayed" => Fate::Read,
        "deleted" | "dispatched" | "processed" => Fate::Delivered,
        other => {
            return Err(MalformedReport::new(format!(
                "its Disposition \"{other}\" is none of displayed, deleted, dispatched or processed (RFC 8098)"
            )));
        }
    };
    let final_recipient = group.address("final-recipient");
    if final_recipient.is_empty() {
        return Err(MalformedReport::new(
            "its disposition-notification part has no Final-Recipient address",
        ));
    }
    let mut diagnostic = kind_name.trim().to_ascii_lowercase();
    if !modifiers.trim().is_empty() {
        diagnostic.push_str(&format!(" ({})", modifiers.trim()));
    }
    if mode
        .trim()
        .to_ascii_lowercase()
        .starts_with("automatic-action")
    {
        diagnostic.push_str(", automatically");
    }
    Ok(Receipt {
        reporting_ua: group
            .get("reporting-ua")
            .map(|ua| fields::typed(ua).1.to_string())
            .unwrap_or_default(),
        original_message_id: group
            .get("original-message-id")
            .and_then(|id| message_ids_in(id).into_iter().next()),
        notice: Notice {
            final_recipient,
            original_recipient: group.address("original-recipient"),
            fate,
            status: String::new(),
            diagnostic,
            remote_server: String::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displayed_is_read() {
        let receipt = parse("Reporting-UA: pc12.un.example; Microsoft Outlook 16.0\r\nFinal-Recipient: rfc822;registry@un.example\r\nOriginal-Message-ID: <0123456789abcdef0123456789abcdef.envoi@ombudsman.example>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n").expect("parses");
        assert_eq!(receipt.notice.fate, Fate::Read);
        assert_eq!(receipt.notice.diagnostic, "displayed");
        assert_eq!(receipt.reporting_ua, "Microsoft Outlook 16.0");
        assert_eq!(
            receipt.original_message_id.as_deref(),
            Some("<0123456789abcdef0123456789abcdef.envoi@ombudsman.example>")
        );
    }

    #[test]
    fn deleted_unread_is_delivered_and_says_how() {
        let receipt = parse("Final-Recipient: rfc822; a@x.example\nDisposition: automatic-action/MDN-sent-automatically;\n deleted/error (comment)\n").expect("parses");
        assert_eq!(receipt.notice.fate, Fate::Delivered);
        assert_eq!(receipt.notice.diagnostic, "deleted (error), automatically");
        assert_eq!(receipt.original_message_id, None);
    }

    #[test]
    fn incomplete_receipts_are_malformed() {
        for (text, reason) in [
            ("", "is empty"),
            ("Final-Recipient: rfc822;a@x.example\n", "no Disposition"),
            (
                "Disposition: manual-action/MDN-sent-manually; displayed\n",
                "no Final-Recipient",
            ),
            (
                "Final-Recipient: rfc822;a@x.example\nDisposition: manual-action/x; failed\n",
                "\"failed\"",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(reason), "{text:?}: {err}");
        }
    }
}
