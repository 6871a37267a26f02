//! Attachments arrive byte for byte, whatever their line endings, control bytes or line
//! lengths: sent through the in-process server and decoded back as a mail program would.

use crate::support::attachment_files;
use crate::support::mail;
use crate::support::relay::RelayConfig;
use crate::support::smtp_server::{ServerConfig, SmtpServer};

#[test]
fn every_attachment_arrives_byte_for_byte() {
    let server = SmtpServer::start(ServerConfig::default());
    let recipients = format!(
        "email,organisation,salutation,attachments\nregistry@un.example,UN,Dear Registrar,{}\n",
        attachment_files::attachments_cell()
    );
    let campaign = RelayConfig::plain(&server).campaign(&recipients);
    attachment_files::write_into(campaign.path());
    campaign.send(&[]).expect_code(0);

    let received = server.received();
    assert_eq!(received.len(), 1);
    let message = mail::parse(&received[0].data);
    let attached: Vec<(String, Vec<u8>)> = mail::attachments(&message)
        .into_iter()
        .map(|a| (a.name, a.bytes))
        .collect();
    attachment_files::assert_intact(&attached, "through the in-process server");
    // What the relay got is valid 7-bit text with short lines: nothing for it to rewrite.
    let data = &received[0].data;
    assert!(data.is_ascii(), "the message is not 7-bit");
    let text = String::from_utf8_lossy(data);
    assert!(
        text.split("\r\n")
            .all(|line| line.len() <= 998 && !line.contains(['\r', '\n', '\0'])),
        "a line over 998 octets, or a bare CR, LF or NUL, in the message"
    );
}
