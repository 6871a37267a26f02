//! International addresses: domains go out in A-label (punycode) form in the envelope and the
//! headers; a non-ASCII local part goes with SMTPUTF8 where the relay offers it, and where it
//! does not, that letter fails with a message saying so while the run goes on; `check --smtp`
//! tells beforehand. Nothing mangled reaches the relay.

use crate::support::mail;
use crate::support::relay::{RelayConfig, rcpt_addresses};
use crate::support::smtp_server::{ServerConfig, SmtpServer};

const LETTER: &str = "+++\nsubject = \"Statement for {{organisation}}\"\nfrom = \"Büro <office@büro.example>\"\n+++\n{{salutation}},\n\nThe statement.\n";

/// The MAIL FROM lines the server was sent.
fn mail_commands(server: &SmtpServer) -> Vec<String> {
    server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("MAIL FROM:"))
        .collect()
}

#[test]
fn international_domains_go_in_a_label_form_in_envelope_and_headers() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = RelayConfig::plain(&server).campaign(
        "email,organisation,salutation,cc\ninfo@bakı.example,Baku Office,Dear colleagues,Kanzlei <post@BÜRO.example>\n",
    );
    campaign.file("templates/letter.hbs", LETTER);
    campaign.send(&[]).expect_code(0);

    assert_eq!(
        rcpt_addresses(&server),
        ["info@xn--bak-lua.example", "post@xn--bro-hoa.example"]
    );
    // An ASCII letter needs no SMTPUTF8.
    let mails = mail_commands(&server);
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].starts_with("MAIL FROM:<office@xn--bro-hoa.example>")
            && !mails[0].contains("SMTPUTF8"),
        "{mails:?}"
    );
    let received = server.received();
    let header = String::from_utf8(mail::header_section(&received[0].data).to_vec()).unwrap();
    assert!(header.is_ascii(), "{header}");
    let message = mail::parse(&received[0].data);
    assert_eq!(
        mail::mailboxes(message.to()),
        [(
            "Baku Office".to_owned(),
            "info@xn--bak-lua.example".to_owned()
        )]
    );
    assert_eq!(
        mail::mailboxes(message.cc()),
        [("Kanzlei".to_owned(), "post@xn--bro-hoa.example".to_owned())]
    );
    assert!(
        message
            .message_id()
            .unwrap()
            .ends_with(".envoi@xn--bro-hoa.example"),
        "{:?}",
        message.message_id()
    );
    assert_eq!(
        campaign.final_status("info@bakı.example").as_deref(),
        Some("sent")
    );
}

#[test]
fn a_non_ascii_local_part_goes_with_smtputf8_when_the_relay_offers_it() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = RelayConfig::plain(&server).campaign(
        "email,organisation,name,salutation\njörg@bakı.example,Baku Office,Jörg Şahin,Dear Jörg\n",
    );
    campaign.send(&[]).expect_code(0);

    assert_eq!(rcpt_addresses(&server), ["jörg@xn--bak-lua.example"]);
    let mails = mail_commands(&server);
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].split_whitespace().any(|w| w == "SMTPUTF8"),
        "{mails:?}"
    );
    // UTF-8 headers (RFC 6532): the address as it is, the domain in A-label form.
    let received = server.received();
    let to = mail::raw_header(&received[0].data, "To").unwrap();
    assert!(to.contains("<jörg@xn--bak-lua.example>"), "{to}");
    let message = mail::parse(&received[0].data);
    assert_eq!(
        mail::mailboxes(message.to()),
        [(
            "Jörg Şahin".to_owned(),
            "jörg@xn--bak-lua.example".to_owned()
        )]
    );
}

#[test]
fn without_smtputf8_that_letter_fails_saying_why_and_the_run_goes_on() {
    let server = SmtpServer::start(ServerConfig::default().without_smtputf8());
    let campaign = RelayConfig::plain(&server).campaign(
        "email,organisation,salutation\njörg@bakı.example,Baku Office,Dear Jörg\nregistry@un.example,UN,Dear Registrar\ninfo@bakı.example,Baku,Dear all\n",
    );
    let run = campaign.send(&[]);
    run.expect_code(1);

    // Nothing mangled reached the relay: the letter to jörg was never offered.
    let mut offered = rcpt_addresses(&server);
    offered.sort();
    assert_eq!(offered, ["info@xn--bak-lua.example", "registry@un.example"]);
    assert!(server.commands().iter().all(|c| c.is_ascii()));
    assert_eq!(server.received().len(), 2);
    let rows = campaign.rows_for("jörg@bakı.example");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "failed");
    assert_eq!(rows[0].code, "");
    assert_eq!(
        rows[0].detail,
        "not sent: the address jörg@xn--bak-lua.example has characters other than ASCII before the @, which needs a relay that offers SMTPUTF8, and the relay (localhost) does not offer it; send this letter through a relay that does, or use an ASCII address"
    );
    assert_eq!(
        campaign.final_status("registry@un.example").as_deref(),
        Some("sent")
    );
    assert_eq!(
        campaign.final_status("info@bakı.example").as_deref(),
        Some("sent")
    );
}

#[test]
fn check_smtp_tells_beforehand_whether_the_relay_takes_smtputf8_letters() {
    let recipients = "email,organisation,salutation\njörg@bakı.example,Baku Office,Dear Jörg\nregistry@un.example,UN,Dear Registrar\n";
    let without = SmtpServer::start(ServerConfig::default().without_smtputf8());
    let campaign = RelayConfig::plain(&without).campaign(recipients);
    let run = campaign.run(&["check", "--smtp"]);
    run.expect_code(2).expect_stdout(
        "recipients.csv: 1 letter (row 2) has an address with characters other than ASCII before the @, which needs a relay that offers SMTPUTF8, and the relay does not offer it: it would fail; send it through a relay that offers SMTPUTF8, or use ASCII addresses",
    );

    let with = SmtpServer::start(ServerConfig::default());
    let campaign = RelayConfig::plain(&with).campaign(recipients);
    campaign.run(&["check", "--smtp"]).expect_code(0).expect_stdout(
        "relay: offers SMTPUTF8, which 1 letter (row 2) need (an address with characters other than ASCII before the @)",
    );
    // Without --smtp, a note says to ask.
    campaign.run(&["check"]).expect_code(0).expect_stdout(
        "note: 1 letter (row 2) has an address with characters other than ASCII before the @, which needs a relay that offers SMTPUTF8; envoi check --smtp tells whether yours does",
    );
    assert_eq!(without.received().len() + with.received().len(), 0);
}

#[test]
fn an_invalid_international_domain_is_a_row_problem() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = RelayConfig::plain(&server).campaign(
        "email,organisation,salutation,cc\nregistry@un.example,UN,Dear Registrar,\ninfo@xn--a.example,Baku,Dear all,\nok@un.example,UN,Dear,a@bak\u{131}-.example\n",
    );
    let run = campaign.run(&["check"]);
    run.expect_code(2)
        .expect_stdout(
            "recipients.csv, row 3, column \"email\": \"info@xn--a.example\" has a domain, \"xn--a.example\", that is not a valid international domain name; check its spelling",
        )
        .expect_stdout(
            "recipients.csv, row 4, column \"cc\": \"a@bak\u{131}-.example\" has a domain, \"bak\u{131}-.example\", that is not a valid international domain name; check its spelling",
        );
    assert!(!run.stdout.contains("Errors"), "{}", run.stdout);
    campaign.send(&[]).expect_code(2);
    assert_eq!(server.received().len(), 0);
}
