//! Relays as they really are (issue 8): connection and recipient limits, hangs, a relay that
//! refuses everything, logins, and self-signed certificates, each against the in-process
//! relay with the fault injected; `tests/postfix.rs` repeats what Postfix can play.

use std::time::Duration;

use crate::support::campaign::TestCampaign;
use crate::support::pki::{self, CertKind};
use crate::support::relay::{
    PASSWORD, PASSWORD_ENV, RelayConfig, Run, USER, assert_sent_means_received_once, at_phase,
    deliveries_to, emails, plain_server, rcpt_count, recipients,
};
use crate::support::smtp_server::{Fault, Faults, Phase, ServerConfig, SmtpServer, Tls};

fn reply(code: u16, text: &str) -> Fault {
    Fault::Reply(code, text.into())
}

/// How many stderr lines contain `text`.
fn stderr_count(run: &Run, text: &str) -> usize {
    run.stderr_lines()
        .iter()
        .filter(|l| l.contains(text))
        .count()
}

#[test]
fn a_connection_limit_lowers_the_concurrency_and_every_letter_goes_once() {
    let list = recipients(20);
    let server = SmtpServer::start(ServerConfig::default().with_connection_limit(2));
    let campaign = RelayConfig::plain(&server).concurrency(4).campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(0);

    assert!(server.connections_refused() >= 1, "the limit was never hit");
    assert_eq!(
        stderr_count(
            &run,
            "the relay accepts fewer connections than concurrency = 4"
        ),
        1,
        "said once:\n{}",
        run.stderr
    );
    run.expect_stderr("421 4.7.0 Error: too many connections")
        .expect_stderr("going on with ");
    assert_eq!(server.received_count(), 20);
    assert_sent_means_received_once(&campaign, &server);
    // Not one failed attempt: the refused connections carried no letter.
    for email in emails(&list) {
        let rows = campaign.rows_for(&email);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].status, "sent", "{rows:?}");
    }
}

#[test]
fn a_relay_that_takes_no_connection_at_all_stops_the_run() {
    let server = SmtpServer::start(ServerConfig::default().with_connection_limit(0));
    let campaign = RelayConfig::plain(&server)
        .concurrency(3)
        .campaign(&recipients(6));
    let run = campaign.send(&[]);
    run.expect_code(3)
        .expect_stderr("stopped: the relay cannot be reached: 3 attempts in a row failed")
        .expect_stderr("421 4.7.0 Error: too many connections");
    assert_eq!(server.received_count(), 0);
    // Tried one at a time before any connection worked: exactly the streak's three.
    assert_eq!(server.connections_opened(), 3);
    assert!(campaign.log_rows().iter().all(|r| r.status == "failed"));
}

/// Rows with a To, three Cc and a Bcc, against a relay that takes two recipients per message.
const MANY_COPIES: &str = "email,organisation,name,salutation,language,cc,bcc\n\
    sg@un.example,United Nations,António Guterres,Your Excellency,,a@un.example;b@un.example;c@un.example,archive@ombudsman.example\n\
    sg@coe.example,Council of Europe,Marija Pejčinović Burić,Dear Secretary General,,,\n";

#[test]
fn too_many_recipients_go_in_further_transactions_of_the_same_letter() {
    let server = SmtpServer::start(ServerConfig::default().with_recipient_limit(2));
    let campaign = RelayConfig::plain(&server).campaign(MANY_COPIES);
    campaign.send(&[]).expect_code(0);

    let to_un: Vec<_> = server
        .received()
        .into_iter()
        .filter(|m| {
            m.rcpt_to
                .iter()
                .any(|r| r.ends_with("@un.example") || r.starts_with("archive@"))
        })
        .collect();
    // Five addresses, two per transaction: three transactions, each address exactly once.
    let envelopes: Vec<Vec<String>> = to_un.iter().map(|m| m.rcpt_to.clone()).collect();
    assert_eq!(
        envelopes,
        [
            vec!["sg@un.example", "a@un.example"],
            vec!["b@un.example", "c@un.example"],
            vec!["archive@ombudsman.example"],
        ],
        "{envelopes:?}"
    );
    for address in [
        "sg@un.example",
        "a@un.example",
        "b@un.example",
        "c@un.example",
        "archive@ombudsman.example",
    ] {
        assert_eq!(deliveries_to(&server, address), 1, "{address}");
    }
    // The same letter: same bytes, so the same Message-ID.
    assert!(to_un.windows(2).all(|w| w[0].data == w[1].data));
    let row = campaign.only_row("sg@un.example", "sent");
    let message_id = crate::support::mail::raw_header(&to_un[0].data, "Message-ID").unwrap();
    assert_eq!(row.message_id, message_id.trim());
    for transaction in [
        "transaction 2 sent the same letter to b@un.example, c@un.example: 250",
        "transaction 3 sent the same letter to archive@ombudsman.example: 250",
    ] {
        assert!(row.detail.contains(transaction), "{row:?}");
    }
    // A second run sends nothing again.
    campaign.send(&[]).expect_code(0);
    assert_eq!(deliveries_to(&server, "b@un.example"), 1);
    assert_eq!(server.received_count(), 4);
}

#[test]
fn a_later_transaction_that_fails_is_named_and_never_repeated() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_recipient_limit(2)
            .with_faults(Faults::on_recipient("b@un.example", Fault::Drop)),
    );
    let campaign = RelayConfig::plain(&server)
        .concurrency(1)
        .campaign(MANY_COPIES);
    let run = campaign.send(&[]);
    run.expect_code(0).expect_stderr(
        "row 2: the letter went to the first addresses, but not to b@un.example, c@un.example",
    );
    assert_eq!(deliveries_to(&server, "sg@un.example"), 1);
    assert_eq!(deliveries_to(&server, "a@un.example"), 1);
    assert_eq!(deliveries_to(&server, "c@un.example"), 0);
    let row = campaign.only_row("sg@un.example", "sent");
    assert!(
        row.detail
            .contains("NOT sent to b@un.example, c@un.example"),
        "{row:?}"
    );
    // Named twice: refused with 452 in the first transaction, dropped in the second.
    assert_eq!(rcpt_count(&server, "b@un.example"), 2);
    // The rerun does not send the letter again, to anyone.
    campaign.send(&[]).expect_code(0);
    assert_eq!(deliveries_to(&server, "sg@un.example"), 1);
    assert_eq!(rcpt_count(&server, "b@un.example"), 2);
}

/// A run of 10 letters over 2 connections, `timeout = 1`, against a relay that stops
/// answering at the step `when` picks.
fn run_against_a_stall(when: fn(&Phase<'_>) -> bool) -> (SmtpServer, TestCampaign, Run) {
    let server = plain_server(at_phase(when, Fault::Hang));
    let campaign = RelayConfig::plain(&server)
        .timeout(1)
        .concurrency(2)
        .campaign(&recipients(10));
    let run = campaign.send(&[]);
    (server, campaign, run)
}

#[test]
fn a_relay_that_stalls_after_its_greeting_stops_the_run_in_bounded_time() {
    let (server, _campaign, run) = run_against_a_stall(|p| matches!(p, Phase::Ehlo));
    run.expect_code(3)
        .expect_stderr("stopped: the relay cannot be reached: 3 attempts in a row failed")
        .expect_stderr("no answer within the timeout");
    assert_eq!(server.received_count(), 0);
    assert_eq!(server.connections_opened(), 3);
    // Three stalled EHLOs, each at most 2 × timeout (lettre waits for QUIT's answer too), plus
    // retry delays: far below the relay's own hang limit of 60 s.
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
}

#[test]
fn a_relay_that_stalls_at_mail_from_stops_the_run() {
    let (server, campaign, run) = run_against_a_stall(|p| matches!(p, Phase::Mail { .. }));
    // Connections work, so the streak is concurrency + 2 = 4 unanswered attempts.
    run.expect_code(3)
        .expect_stderr("stopped: the relay failed 4 times in a row without answering")
        .expect_stderr("no usable answer from the relay to MAIL FROM");
    assert_eq!(server.received_count(), 0);
    assert!(!run.stderr.contains("refused the sender"), "{}", run.stderr);
    let attempts = campaign.log_rows().len();
    assert!((4..=5).contains(&attempts), "{attempts} attempts");
}

#[test]
fn a_relay_that_refuses_every_recipient_stops_after_three_identical_refusals() {
    let server = plain_server(Faults::on_recipient(
        "@",
        reply(554, "5.7.1 Relay access denied"),
    ));
    let list = recipients(8);
    let campaign = RelayConfig::plain(&server).concurrency(1).campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(3).expect_stderr(
        "stopped: the relay refused 3 letters in a row with the same reply (554 5.7.1 Relay access denied)",
    );
    let all = emails(&list);
    for email in &all[..3] {
        assert_eq!(campaign.final_status(email).as_deref(), Some("failed"));
    }
    for email in &all[3..] {
        assert!(campaign.rows_for(email).is_empty(), "{email} not attempted");
        assert_eq!(rcpt_count(&server, email), 0);
    }
    assert_eq!(server.received_count(), 0);
}

#[test]
fn a_relay_that_drops_every_rcpt_stops_the_run() {
    let server = plain_server(Faults::on_recipient("@", Fault::Drop));
    let list = recipients(8);
    let campaign = RelayConfig::plain(&server).concurrency(1).campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(3)
        .expect_stderr("stopped: the relay failed 3 times in a row without answering");
    assert_eq!(server.received_count(), 0);
    // One letter's attempts, at most one more: not a row per letter.
    assert!(campaign.log_rows().len() <= 4, "{:?}", campaign.log_rows());
    assert!(rcpt_count(&server, &emails(&list)[7]) == 0);
}

#[test]
fn too_many_messages_on_a_connection_means_reconnect_not_quota() {
    // Every third transaction on a connection: 421 4.7.0 too many messages.
    let server = plain_server(Faults::from_fn(|step| match step.phase {
        Phase::Mail { .. } if step.message % 3 == 0 => Some(reply(
            421,
            "4.7.0 Error: too many messages on this connection",
        )),
        _ => None,
    }));
    let list = recipients(9);
    let campaign = RelayConfig::plain(&server)
        .concurrency(1)
        .max_attempts(5)
        .campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(0);
    assert!(!run.stderr.contains("stopped"), "{}", run.stderr);
    assert_eq!(server.received_count(), 9);
    assert_sent_means_received_once(&campaign, &server);
    assert!(server.connections_opened() >= 3);
}

#[test]
fn a_wrong_password_costs_exactly_one_failed_login() {
    let server = crate::support::relay::starttls_server(Faults::none());
    let campaign = RelayConfig::starttls(&server)
        .concurrency(4)
        .campaign(&recipients(12));
    let run = campaign.run_env(&["send", "--yes"], &[(PASSWORD_ENV, "wrong password")]);
    run.expect_code(3)
        .expect_stderr(&format!("the relay refused to log in as \"{USER}\""));
    assert_eq!(server.auth_failures(), 1);
    assert_eq!(server.auth_successes(), 0);
    assert_eq!(server.connections_opened(), 1);
    assert_eq!(server.received_count(), 0);
}

#[test]
fn after_the_first_login_the_other_connections_open() {
    let server = crate::support::relay::starttls_server(Faults::none());
    let campaign = RelayConfig::starttls(&server)
        .concurrency(4)
        .campaign(&recipients(12));
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.auth_failures(), 0);
    assert_eq!(server.received_count(), 12);
    // The gate holds the others back only until the first login: then all connect, and each
    // logs in once.
    assert!(server.max_concurrent_connections() >= 2);
    assert_eq!(server.auth_successes(), server.connections_opened());
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn must_issue_starttls_says_to_set_security_starttls() {
    let server = plain_server(Faults::from_fn(|step| {
        matches!(step.phase, Phase::Mail { .. })
            .then(|| reply(530, "5.7.0 Must issue a STARTTLS command first"))
    }));
    let campaign = RelayConfig::plain(&server).campaign(&recipients(3));
    let run = campaign.send(&[]);
    run.expect_code(3)
        .expect_stderr("530 5.7.0 Must issue a STARTTLS command first")
        .expect_stderr("set security = \"starttls\" in [smtp]");
    assert_eq!(server.received_count(), 0);
}

#[test]
fn a_relay_without_a_usable_login_mechanism_names_the_ones_it_offers() {
    let server = SmtpServer::start(ServerConfig {
        advertised_auth: Some("CRAM-MD5 NTLM"),
        ..ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_auth(USER, PASSWORD)
    });
    let campaign = RelayConfig::starttls(&server).campaign(&recipients(3));
    let run = campaign.send(&[]);
    run.expect_code(3)
        .expect_stderr("offers the login mechanisms CRAM-MD5, NTLM and envoi can use PLAIN, LOGIN");
    assert_eq!(server.auth_failures() + server.auth_successes(), 0);
    assert_eq!(server.connections_opened(), 1);
}

/// A relay presenting `cert`, with `ca.pem` holding exactly that certificate.
fn pinned(cert: CertKind, tls: Tls) -> (SmtpServer, TestCampaign) {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(tls)
            .with_cert(cert)
            .with_auth(USER, PASSWORD),
    );
    let config = match tls {
        Tls::Implicit => RelayConfig::implicit_tls(&server),
        _ => RelayConfig::starttls(&server),
    };
    let campaign = config.campaign(&recipients(3));
    campaign.file("ca.pem", pki::leaf_pem(cert));
    (server, campaign)
}

#[test]
fn a_self_signed_ca_certificate_named_in_ca_file_is_trusted_as_a_pin() {
    for tls in [Tls::StartTls { advertise: true }, Tls::Implicit] {
        let (server, campaign) = pinned(CertKind::SelfSignedCa, tls);
        campaign.send(&[]).expect_code(0);
        assert_eq!(server.received_count(), 3, "{tls:?}");
        assert_sent_means_received_once(&campaign, &server);
    }
}

#[test]
fn a_pinned_certificate_for_another_host_is_refused_naming_its_names() {
    let (server, campaign) = pinned(
        CertKind::SelfSignedCaWrongHost,
        Tls::StartTls { advertise: true },
    );
    let run = campaign.send(&[]);
    run.expect_code(3).expect_stderr(&format!(
        "the relay's certificate is not issued for \"localhost\" but for \"{}\"",
        pki::WRONG_HOST
    ));
    assert!(!run.stderr.contains("Other("), "{}", run.stderr);
    assert_eq!(server.auth_failures() + server.auth_successes(), 0);
    assert_eq!(server.received_count(), 0);
}

#[test]
fn a_self_signed_ca_certificate_not_in_ca_file_is_refused_in_words() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_cert(CertKind::SelfSignedCa)
            .with_auth(USER, PASSWORD),
    );
    // ca.pem holds the test CA, not this certificate.
    let campaign = RelayConfig::starttls(&server).campaign(&recipients(2));
    let run = campaign.send(&[]);
    run.expect_code(3).expect_stderr(
        "the relay presents a self-signed CA certificate (as `openssl req -x509` makes) that this computer does not trust; to trust it, put exactly that certificate (PEM) in ca_file",
    );
    assert!(!run.stderr.contains("CaUsedAsEndEntity"), "{}", run.stderr);
    assert!(!run.stderr.contains("Other("), "{}", run.stderr);
    assert_eq!(server.auth_failures() + server.auth_successes(), 0);
}
