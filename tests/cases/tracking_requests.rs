//! What `send` asks the relay for so that letters can be followed: DSN parameters where the
//! relay offers DSN (RFC 3461), the return path (VERP), and read receipts (RFC 8098).

use crate::support::relay::{RelayConfig, plain_server, recipients};
use crate::support::smtp_server::{Faults, ServerConfig, SmtpServer};

const TRACKING: &str = "\n[tracking]\nnotify = [\"failure\", \"delay\", \"success\"]\nreturn_path = \"bounces+{token}@ombudsman.example\"\n";

/// The letter token of a Message-ID: its 32 hex digits.
fn token(message_id: &str) -> String {
    message_id
        .trim_matches(['<', '>'])
        .split('.')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_relay_with_dsn_is_asked_for_reports_and_each_letter_has_its_own_return_path() {
    let list = "email,organisation,salutation,bcc\nsg@un.example,United Nations,Excellency,archive+un@ombudsman.example\nsg@coe.example,Council of Europe,Dear Secretary General,\n";
    let server = plain_server(Faults::none());
    let config = RelayConfig::plain(&server);
    let campaign = config.campaign(list);
    campaign.file("envoi.toml", config.toml() + TRACKING);
    campaign.send(&[]).expect_code(0);

    let rows = campaign.last_rows();
    let received = server.received();
    assert_eq!(received.len(), 2);
    for message in &received {
        let row = &rows[&message.rcpt_to[0]];
        let token = token(&row.message_id);
        assert_eq!(
            message.mail_from,
            format!("bounces+{token}@ombudsman.example")
        );
        assert_eq!(message.mail_params, format!("RET=HDRS ENVID={token}"));
        for (address, params) in message.rcpt_to.iter().zip(&message.rcpt_params) {
            // ORCPT is xtext: "+" travels as "+2B".
            let xtext = address.replace('+', "+2B");
            assert_eq!(
                params,
                &format!("NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;{xtext}")
            );
        }
    }
    let with_bcc = received
        .iter()
        .find(|m| m.rcpt_to.len() == 2)
        .expect("the Bcc letter");
    assert_eq!(with_bcc.rcpt_to[1], "archive+un@ombudsman.example");
    let text = with_bcc.text();
    assert!(!text.contains("Disposition-Notification-To"), "{text}");
}

#[test]
fn a_relay_without_dsn_is_said_once_and_the_letters_still_go() {
    let server = SmtpServer::start(ServerConfig::default().with_dsn(false));
    let config = RelayConfig::plain(&server).concurrency(2);
    let campaign = config.campaign(&recipients(6));
    campaign.file("envoi.toml", config.toml() + TRACKING);
    let run = campaign.send(&[]);
    run.expect_code(0).expect_stdout("sent 6,");
    let said = run.stderr.matches("does not offer DSN").count();
    assert_eq!(said, 1, "said once per run:\n{}", run.stderr);
    for message in server.received() {
        assert_eq!(message.mail_params, "", "no DSN parameters without DSN");
        assert!(message.rcpt_params.iter().all(String::is_empty));
        // The return path does not need DSN.
        assert!(
            message.mail_from.starts_with("bounces+"),
            "{}",
            message.mail_from
        );
    }
}

#[test]
fn without_tracking_settings_the_envelope_sender_is_the_from_address() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&recipients(1));
    campaign.send(&[]).expect_code(0);
    let received = server.received();
    assert_eq!(received[0].mail_from, "ombudsman@ombudsman.example");
    // DSN is on by default: failures and delays are reported.
    assert!(received[0].mail_params.starts_with("RET=HDRS ENVID="));
    assert!(received[0].rcpt_params[0].starts_with("NOTIFY=FAILURE,DELAY ORCPT=rfc822;"));
}

#[test]
fn dsn_false_asks_for_nothing() {
    let server = plain_server(Faults::none());
    let config = RelayConfig::plain(&server);
    let campaign = config.campaign(&recipients(1));
    campaign.file("envoi.toml", config.toml() + "\n[tracking]\ndsn = false\n");
    let run = campaign.send(&[]);
    run.expect_code(0);
    assert!(!run.stderr.contains("DSN"), "{}", run.stderr);
    let received = server.received();
    assert_eq!(received[0].mail_params, "");
    assert_eq!(received[0].rcpt_params, [""]);
}

#[test]
fn read_receipts_ask_for_a_disposition_notification_to_the_sender() {
    let server = plain_server(Faults::none());
    let config = RelayConfig::plain(&server);
    let campaign = config.campaign(&recipients(1));
    campaign.file(
        "envoi.toml",
        config.toml() + "\n[tracking]\nread_receipts = true\n",
    );
    campaign.send(&[]).expect_code(0);
    let text = server.received()[0].text();
    assert!(
        text.contains("\r\nDisposition-Notification-To: ombudsman@ombudsman.example\r\n"),
        "{text}"
    );
}

#[test]
fn a_bad_tracking_setting_is_named_and_nothing_is_sent() {
    let server = plain_server(Faults::none());
    let config = RelayConfig::plain(&server);
    let campaign = config.campaign(&recipients(1));
    campaign.file(
        "envoi.toml",
        config.toml()
            + "\n[tracking]\nreturn_path = \"bounces@{token}.example\"\nnotify = [\"always\"]\n",
    );
    let run = campaign.send(&[]);
    run.expect_code(2)
        .expect_stderr("envoi.toml, [tracking] notify: \"always\" is not one of \"success\", \"failure\", \"delay\" or \"never\"")
        .expect_stderr("envoi.toml, [tracking] return_path: \"bounces@{token}.example\" has {token} in its domain");
    assert_eq!(server.connections_opened(), 0);
    assert!(!campaign.path().join("delivery-log.csv").exists());
}
