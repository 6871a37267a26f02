//! `envoi send` against a relay that misbehaves: every fault README's "How envoi deals with the
//! relay" names, checked on both sides (what the relay received, how often, on which
//! connection) and in the log.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::campaign::LogRow;
use crate::support::relay::{
    RelayConfig, Switch, assert_sent_means_received_once, at_data_end_to, at_mail_from, at_most,
    at_phase, deliveries_to, emails, plain_server, rcpt_count, recipients, starttls_server,
};
use crate::support::smtp_server::{Fault, Faults, Phase, SmtpServer};

fn reply(code: u16, text: &str) -> Fault {
    Fault::Reply(code, text.into())
}

/// The connections on which the server was sent `RCPT TO:<email>`, in order.
fn rcpt_connections(server: &SmtpServer, email: &str) -> Vec<u64> {
    let line = format!("RCPT TO:<{email}>");
    // The command may carry DSN parameters after the address.
    (1..=server.connections_opened())
        .filter(|&c| server.transcript(c).iter().any(|l| l.starts_with(&line)))
        .collect()
}

/// A retried letter's rows: one `failed` row per failed attempt saying it will be retried,
/// then `sent` with the number of attempts.
#[track_caller]
fn assert_retried_then_sent(rows: &[LogRow], attempts: u32) {
    assert_eq!(rows.len(), attempts as usize, "{rows:?}");
    for (i, row) in rows[..rows.len() - 1].iter().enumerate() {
        assert_eq!(row.status, "failed", "{row:?}");
        assert_eq!(row.attempts, i as u32 + 1, "{row:?}");
        let expected = format!("attempt {} of ", i + 1);
        assert!(row.detail.starts_with(&expected), "{row:?}");
        assert!(row.detail.contains("retrying in"), "{row:?}");
    }
    let last = rows.last().unwrap();
    assert_eq!(last.status, "sent", "{last:?}");
    assert_eq!(last.code, "250 2.0.0", "{last:?}");
    assert_eq!(last.attempts, attempts, "{last:?}");
}

#[test]
fn a_451_is_retried_on_a_fresh_connection() {
    let list = recipients(3);
    let first = &emails(&list)[0];
    let server = plain_server(at_most(
        1,
        at_data_end_to(first, reply(451, "4.3.0 Temporary failure, try again")),
    ));
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&[]).expect_code(0);

    assert_eq!(server.received_count(), 3);
    assert_sent_means_received_once(&campaign, &server);
    let rows = campaign.rows_for(first);
    assert_retried_then_sent(&rows, 2);
    assert_eq!(rows[0].code, "451 4.3.0", "{rows:?}");
    assert!(rows[0].detail.contains("Temporary failure"), "{rows:?}");
    // The retry went over a new connection, not the one that had the 451.
    let tried_on = rcpt_connections(&server, first);
    assert_eq!(tried_on.len(), 2, "{tried_on:?}");
    let delivered_on = server.received()[..]
        .iter()
        .find(|m| m.rcpt_to.contains(first))
        .unwrap()
        .connection;
    assert_eq!(delivered_on, tried_on[1]);
    assert_ne!(tried_on[0], tried_on[1]);
}

#[test]
fn a_550_fails_that_letter_and_the_run_goes_on() {
    let list = recipients(4);
    let refused = &emails(&list)[1];
    let server = plain_server(Faults::on_recipient(
        refused,
        reply(
            550,
            "5.1.1 <person1@org1.example>: Recipient address rejected: User unknown",
        ),
    ));
    let campaign = RelayConfig::plain(&server).concurrency(1).campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(1).expect_stdout("sent 3, failed 1");

    assert_eq!(server.received_count(), 3);
    assert_eq!(rcpt_count(&server, refused), 1, "a 5xx is not retried");
    assert_eq!(deliveries_to(&server, refused), 0);
    let rows = campaign.rows_for(refused);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "failed");
    assert_eq!(rows[0].code, "550 5.1.1");
    assert!(rows[0].detail.contains("User unknown"), "{rows:?}");
    assert_eq!(campaign.count_last("sent"), 3);
    assert_sent_means_received_once(&campaign, &server);
    // The refusal did not cost the connection: one connection carried all four.
    assert_eq!(server.connections_opened(), 1);
}

#[test]
fn a_refused_cc_is_reported_and_the_letter_still_goes() {
    let list = "email,organisation,name,salutation,language,cc\n\
                sg@un.example,United Nations,António Guterres,Your Excellency,,gone@un.example;office@un.example\n\
                sg@coe.example,Council of Europe,Marija Pejčinović Burić,Dear Secretary General,,\n";
    let server = plain_server(Faults::on_recipient(
        "gone@",
        reply(550, "5.1.1 Mailbox unavailable"),
    ));
    let campaign = RelayConfig::plain(&server).campaign(list);
    let run = campaign.send(&[]);
    run.expect_code(0)
        .expect_stderr("warning: row 2: the relay refused gone@un.example (550 5.1.1");

    let received = server.received();
    assert_eq!(received.len(), 2);
    let letter = received
        .iter()
        .find(|m| m.rcpt_to.contains(&"sg@un.example".to_owned()))
        .expect("the addressee got the letter");
    assert_eq!(letter.rcpt_to, ["sg@un.example", "office@un.example"]);
    assert_eq!(rcpt_count(&server, "gone@un.example"), 1);
    let row = campaign.only_row("sg@un.example", "sent");
    assert!(
        row.detail
            .contains("refused gone@un.example: 550 5.1.1 Mailbox unavailable"),
        "{row:?}"
    );
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn a_421_mid_session_reconnects_and_delivers_once() {
    let list = recipients(5);
    let server = plain_server(at_most(
        1,
        at_mail_from(3, reply(421, "4.3.2 Service shutting down")),
    ));
    let campaign = RelayConfig::plain(&server).concurrency(1).campaign(&list);
    campaign.send(&[]).expect_code(0);

    assert_eq!(server.received_count(), 5);
    assert_sent_means_received_once(&campaign, &server);
    assert_eq!(server.connections_opened(), 2);
    let third = &emails(&list)[2];
    let rows = campaign.rows_for(third);
    assert_retried_then_sent(&rows, 2);
    assert_eq!(rows[0].code, "421 4.3.2", "{rows:?}");
    for email in emails(&list).iter().filter(|e| *e != third) {
        assert_eq!(campaign.rows_for(email).len(), 1);
    }
}

#[test]
fn a_connection_lost_after_the_data_is_unknown_and_only_resent_on_request() {
    let list = recipients(3);
    let lost = &emails(&list)[0];
    let server = plain_server(at_most(1, at_data_end_to(lost, Fault::DropAfterAccept)));
    let campaign = RelayConfig::plain(&server).campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(1)
        .expect_stdout("sent 2, failed 0, unknown 1");

    assert_eq!(deliveries_to(&server, lost), 1, "the relay kept it");
    assert_eq!(rcpt_count(&server, lost), 1, "an unknown is not retried");
    let rows = campaign.rows_for(lost);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "unknown");
    assert_eq!(rows[0].attempts, 1);
    assert!(
        rows[0].detail.contains("lost after the letter was sent"),
        "{rows:?}"
    );
    assert_sent_means_received_once(&campaign, &server);

    // A plain second run does not send it again (nor anything else).
    campaign
        .send(&[])
        .expect_code(0)
        .expect_stdout("nothing to send");
    assert_eq!(server.received_count(), 3);
    assert_eq!(rcpt_count(&server, lost), 1);

    // --resend --row 2 does, and only that one.
    campaign.send(&["--resend", "--row", "2"]).expect_code(0);
    assert_eq!(server.received_count(), 4);
    assert_eq!(deliveries_to(&server, lost), 2);
    assert_eq!(campaign.final_status(lost).as_deref(), Some("sent"));
    for other in &emails(&list)[1..] {
        assert_eq!(deliveries_to(&server, other), 1);
    }
}

#[test]
fn a_connection_dropped_before_the_data_is_retried() {
    let list = recipients(4);
    let at_rcpt = &emails(&list)[2];
    let server = plain_server(Faults::first_of(vec![
        at_most(1, at_mail_from(1, Fault::Drop)),
        at_most(1, Faults::on_recipient(at_rcpt, Fault::Drop)),
    ]));
    let campaign = RelayConfig::plain(&server).concurrency(1).campaign(&list);
    campaign.send(&[]).expect_code(0);

    assert_eq!(server.received_count(), 4);
    assert_sent_means_received_once(&campaign, &server);
    assert_retried_then_sent(&campaign.rows_for(&emails(&list)[0]), 2);
    assert_retried_then_sent(&campaign.rows_for(at_rcpt), 2);
    assert_eq!(rcpt_connections(&server, at_rcpt).len(), 2);
}

#[test]
fn a_relay_that_stops_answering_after_the_data_leaves_the_letter_unknown() {
    let list = recipients(2);
    let silent = &emails(&list)[0];
    let server = plain_server(at_most(1, at_data_end_to(silent, Fault::Hang)));
    let campaign = RelayConfig::plain(&server).timeout(2).campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(1);
    assert!(run.elapsed < Duration::from_secs(30), "{run}");

    let rows = campaign.rows_for(silent);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "unknown");
    assert!(
        rows[0].detail.contains("no answer within the timeout"),
        "{rows:?}"
    );
    assert_eq!(rcpt_count(&server, silent), 1, "an unknown is not retried");
    assert_eq!(deliveries_to(&server, &emails(&list)[1]), 1);
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn a_relay_that_stops_answering_before_the_data_is_retried_then_given_up() {
    // Once: the retry on a new connection delivers.
    let list = recipients(2);
    let server = plain_server(at_most(1, at_mail_from(1, Fault::Hang)));
    let campaign = RelayConfig::plain(&server)
        .timeout(2)
        .concurrency(1)
        .campaign(&list);
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 2);
    assert_retried_then_sent(&campaign.rows_for(&emails(&list)[0]), 2);
    assert_sent_means_received_once(&campaign, &server);

    // Always: the letter fails after max_attempts, and the run ends (it is not stopped).
    let server = plain_server(at_mail_from(1, Fault::Hang));
    let campaign = RelayConfig::plain(&server)
        .timeout(1)
        .max_attempts(2)
        .campaign(&list);
    let run = campaign.send(&["--row", "2"]);
    run.expect_code(1);
    assert_eq!(server.received_count(), 0);
    let rows = campaign.rows_for(&emails(&list)[0]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].status, "failed");
    assert!(
        rows[1].detail.starts_with("gave up after 2 attempts"),
        "{rows:?}"
    );
    assert!(
        rows[1].detail.contains("no answer within the timeout"),
        "{rows:?}"
    );
    assert_eq!(server.connections_opened(), 2);
}

#[test]
fn persistent_451_gives_up_after_max_attempts() {
    let list = recipients(2);
    let greylisted = &emails(&list)[0];
    let server = plain_server(at_data_end_to(
        greylisted,
        reply(451, "4.7.1 Greylisted, try again later"),
    ));
    let campaign = RelayConfig::plain(&server).max_attempts(3).campaign(&list);
    campaign.send(&[]).expect_code(1);

    assert_eq!(rcpt_count(&server, greylisted), 3);
    assert_eq!(deliveries_to(&server, greylisted), 0);
    assert_eq!(deliveries_to(&server, &emails(&list)[1]), 1);
    let rows = campaign.rows_for(greylisted);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let last = &rows[2];
    assert_eq!(last.status, "failed");
    assert_eq!(last.code, "451 4.7.1");
    assert_eq!(last.attempts, 3);
    assert!(
        last.detail.starts_with("gave up after 3 attempts"),
        "{last:?}"
    );
    assert!(last.detail.contains("Greylisted"), "{last:?}");
}

/// The run stops at `stop_at` (the mail transaction number where `fault` starts); with one
/// connection, exactly the letters before it are sent, the one that met it is `failed`, the
/// rest are not attempted; the next run, against a healthy relay, sends all the others once.
fn stops_the_run(fault_plan: impl Fn(u64) -> crate::support::smtp_server::FaultFn, why: &str) {
    let list = recipients(6);
    let all = emails(&list);
    let (switch, plan) = Switch::new(fault_plan(4));
    let server = starttls_server(plan);
    let campaign = RelayConfig::starttls(&server)
        .concurrency(1)
        .campaign(&list);
    let run = campaign.send(&[]);
    run.expect_code(3)
        .expect_stderr("stopped: ")
        .expect_stderr(why);

    assert_eq!(server.received_count(), 3);
    for email in &all[..3] {
        assert_eq!(campaign.final_status(email).as_deref(), Some("sent"));
    }
    let stopped_at = campaign.rows_for(&all[3]);
    let last = stopped_at
        .last()
        .expect("the letter that met the refusal is logged");
    assert_eq!(last.status, "failed", "{stopped_at:?}");
    assert!(last.detail.contains(why), "{stopped_at:?}");
    for email in &all[4..] {
        assert!(
            campaign.rows_for(email).is_empty(),
            "{email} was not attempted"
        );
        assert_eq!(rcpt_count(&server, email), 0);
    }
    assert_sent_means_received_once(&campaign, &server);

    switch.off();
    campaign.send(&[]).expect_code(0).expect_stdout("sent 3,");
    assert_eq!(server.received_count(), 6);
    assert_eq!(campaign.count_last("sent"), 6);
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn a_sending_quota_stops_the_run_and_the_next_run_sends_the_rest() {
    stops_the_run(
        |n| at_mail_from(n, reply(550, "5.7.1 Daily sending quota exceeded")),
        "Daily sending quota exceeded",
    );
}

#[test]
fn login_refused_mid_run_stops_the_run_and_the_next_run_sends_the_rest() {
    // The relay drops the connection at the 4th letter and will not take the password again.
    stops_the_run(
        |n| {
            Faults::first_of(vec![
                at_most(1, at_mail_from(n, reply(421, "4.4.2 Idle timeout"))),
                Faults::from_fn(|step| match step.phase {
                    Phase::Auth { .. } if step.connection > 1 => {
                        Some(reply(535, "5.7.8 Error: authentication failed"))
                    }
                    _ => None,
                }),
            ])
        },
        "refused to log in",
    );
}

#[test]
fn a_quota_with_several_connections_loses_nothing() {
    let list = recipients(12);
    let (switch, plan) = Switch::new(at_mail_from(
        6,
        reply(550, "5.7.1 Daily sending quota exceeded"),
    ));
    let server = plain_server(plan);
    let campaign = RelayConfig::plain(&server).concurrency(3).campaign(&list);
    campaign.send(&[]).expect_code(3).expect_stderr("quota");
    assert_eq!(server.received_count(), 5);
    assert_eq!(campaign.count_last("sent"), 5);
    assert_sent_means_received_once(&campaign, &server);

    switch.off();
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 12);
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn an_unreachable_relay_stops_the_run() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let campaign = RelayConfig::plain_port(port).campaign(&recipients(5));
    let run = campaign.send(&[]);
    // Three failed connections in a row, before any worked, end the run (streak.rs).
    run.expect_code(3)
        .expect_stderr("stopped: the relay cannot be reached: 3 attempts in a row failed");
    let rows = campaign.log_rows();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.status == "failed"), "{rows:?}");
    assert!(campaign.count_last("failed") <= 2, "{rows:?}");
    assert!(
        rows.iter().any(|r| r.detail.starts_with("gave up after")),
        "{rows:?}"
    );
}

#[test]
fn a_greeting_refusal_is_tried_again() {
    // A relay that answers 421 to the first connection (too busy) is tried again.
    let server = plain_server(at_most(
        1,
        at_phase(
            |p| matches!(p, Phase::Connect),
            reply(421, "4.3.2 Too many connections"),
        ),
    ));
    let campaign = RelayConfig::plain(&server)
        .concurrency(1)
        .campaign(&recipients(2));
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 2);
    assert_eq!(server.connections_opened(), 2);
    assert_sent_means_received_once(&campaign, &server);
}
