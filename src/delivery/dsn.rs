//! What the envelope asks for beyond delivery: the return path (fixed or per letter, VERP)
//! and, where the relay offers DSN (RFC 3461), delivery status notifications.
//!
//! `MAIL FROM:<return path> RET=HDRS ENVID=<token>`: a report returns only the letter's
//! headers (not its attachments) and carries the letter's token as `Original-Envelope-Id`.
//! `RCPT TO:<addr> NOTIFY=FAILURE,DELAY ORCPT=rfc822;<addr>`: which reports to send, and the
//! address as envoi wrote it (a relay may rewrite it). lettre xtext-encodes the values.
//! `envoi track` matches a report by that envelope id first, then by the Message-ID in the
//! returned headers, then by the VERP token of the address it came to, then by recipient.

use lettre::Address;
use lettre::transport::smtp::extension::{MailParameter, RcptParameter};

use crate::compose::{Composed, letter_token};
use crate::config::tracking::TrackingSettings;

/// The envelope sender of a letter: the return path (with the letter's token in place of
/// `{token}`), or the From address.
pub fn envelope_sender(tracking: &TrackingSettings, letter: &Composed) -> Address {
    let token = letter_token(&letter.message_id).unwrap_or_default();
    tracking
        .return_path
        .as_ref()
        .and_then(|path| path.for_token(token).ok())
        .unwrap_or_else(|| letter.from.email.clone())
}

/// Whether to ask this relay for reports: `[tracking] dsn` and the relay's EHLO say so.
pub fn asks(tracking: &TrackingSettings, relay_offers_dsn: bool) -> bool {
    tracking.dsn && relay_offers_dsn
}

/// `RET=HDRS ENVID=<token>`.
pub fn mail_parameters(letter: &Composed) -> Vec<MailParameter> {
    let mut params = vec![MailParameter::Other {
        keyword: "RET".into(),
        value: Some("HDRS".into()),
    }];
    if let Some(token) = letter_token(&letter.message_id) {
        params.push(MailParameter::Other {
            keyword: "ENVID".into(),
            value: Some(token.to_owned()),
        });
    }
    params
}

/// `NOTIFY=.. ORCPT=rfc822;<addr>` (ORCPT only for an ASCII address, which `rfc822` types).
pub fn rcpt_parameters(tracking: &TrackingSettings, address: &Address) -> Vec<RcptParameter> {
    let mut params = vec![RcptParameter::Other {
        keyword: "NOTIFY".into(),
        value: Some(tracking.notify.parameter()),
    }];
    if address.to_string().is_ascii() {
        params.push(RcptParameter::Other {
            keyword: "ORCPT".into(),
            value: Some(format!("rfc822;{address}")),
        });
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tracking::ReturnPath;

    fn letter(message_id: &str) -> Composed {
        let mailbox: lettre::message::Mailbox = "Office <office@office.example>".parse().unwrap();
        Composed {
            row: 2,
            email: "un@un.example".into(),
            organisation: String::new(),
            message_id: message_id.into(),
            from: mailbox.clone(),
            to: mailbox,
            cc: Vec::new(),
            bcc: Vec::new(),
            reply_to: None,
            subject: String::new(),
            headers: Vec::new(),
            text: String::new(),
            html: String::new(),
            attachments: Vec::new(),
            template: Default::default(),
            language: None,
            bytes: Vec::new(),
        }
    }

    const ID: &str = "<0123456789abcdef0123456789abcdef.envoi@office.example>";

    #[test]
    fn the_return_path_is_the_from_address_or_per_letter() {
        let mut tracking = TrackingSettings::default();
        assert_eq!(
            envelope_sender(&tracking, &letter(ID)).to_string(),
            "office@office.example"
        );
        tracking.return_path = Some(ReturnPath::parse("bounces+{token}@office.example").unwrap());
        assert_eq!(
            envelope_sender(&tracking, &letter(ID)).to_string(),
            "bounces+0123456789abcdef0123456789abcdef@office.example"
        );
        tracking.return_path = Some(ReturnPath::parse("bounces@office.example").unwrap());
        assert_eq!(
            envelope_sender(&tracking, &letter(ID)).to_string(),
            "bounces@office.example"
        );
    }

    #[test]
    fn parameters_are_written_as_rfc_3461_spells_them() {
        let mail: Vec<String> = mail_parameters(&letter(ID))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(mail, ["RET=HDRS", "ENVID=0123456789abcdef0123456789abcdef"]);
        let tracking = TrackingSettings::default();
        let address: Address = "first+last@un.example".parse().unwrap();
        let rcpt: Vec<String> = rcpt_parameters(&tracking, &address)
            .iter()
            .map(ToString::to_string)
            .collect();
        // xtext: "+" is written "+2B".
        assert_eq!(
            rcpt,
            [
                "NOTIFY=FAILURE,DELAY",
                "ORCPT=rfc822;first+2Blast@un.example"
            ]
        );
        assert!(asks(&tracking, true) && !asks(&tracking, false));
    }
}
