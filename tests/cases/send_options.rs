//! `envoi send` options (`--dry-run`, `--test-to`, `--skip-bad-rows`) and the sending policy
//! (`rate`, `concurrency`), checked against what the relay saw.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::support::relay::{
    RelayConfig, assert_sent_means_received_once, at_phase, deliveries_to, emails, plain_server,
    rcpt_addresses, recipients,
};
use crate::support::smtp_server::{Fault, Faults, Phase};

#[test]
fn dry_run_talks_to_no_relay_and_a_later_send_sends_everything() {
    let list = recipients(4);
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&list);

    // No --yes needed: nothing goes out, and nothing is written to the log.
    campaign
        .run(&["send", "--dry-run"])
        .expect_code(0)
        .expect_stdout("dry run: 4 letters would be sent");
    assert_eq!(server.connections_opened(), 0);
    assert!(campaign.log_rows().is_empty());

    campaign.send(&[]).expect_code(0).expect_stdout("sent 4,");
    assert_eq!(server.received_count(), 4);
    assert_eq!(campaign.count_last("sent"), 4);
    assert_sent_means_received_once(&campaign, &server);
    for message in server.received() {
        assert!(!message_id(&message.text()).is_empty());
    }
}

/// The Message-ID header of a raw message.
fn message_id(raw: &str) -> String {
    raw.lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .expect("a Message-ID header")
        .trim()
        .to_owned()
}

#[test]
fn test_to_sends_only_to_that_address_and_leaves_the_log_alone() {
    let list = "email,organisation,name,salutation,language,cc,bcc\n\
                sg@un.example,United Nations,António Guterres,Your Excellency,,office@un.example,archive@un.example\n\
                sg@coe.example,Council of Europe,Marija Pejčinović Burić,Dear Secretary General,,,\n";
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(list);

    campaign
        .send(&["--test-to", "me@office.example"])
        .expect_code(0);
    assert_eq!(server.received_count(), 2);
    assert_eq!(rcpt_addresses(&server), ["me@office.example"; 2]);
    let tests = server.received();
    for message in &tests {
        let text = message.text();
        assert!(
            text.contains("X-Envoi-Test: test copy of the letter for row"),
            "{text}"
        );
        assert!(text.contains("To: me@office.example"), "{text}");
        assert!(!text.contains("Cc:"), "{text}");
    }
    assert!(!campaign.path().join("delivery-log.csv").exists());

    // The real letters still go, to their real addressees, with their own Message-IDs.
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 4);
    let real = &server.received()[2..];
    let un = real
        .iter()
        .find(|m| m.rcpt_to[0] == "sg@un.example")
        .expect("the real letter");
    assert_eq!(
        un.rcpt_to,
        ["sg@un.example", "office@un.example", "archive@un.example"]
    );
    assert!(!un.text().contains("X-Envoi-Test"));
    let test_ids: Vec<String> = tests.iter().map(|m| message_id(&m.text())).collect();
    for message in real {
        assert!(!test_ids.contains(&message_id(&message.text())));
    }
    assert_eq!(campaign.count_last("sent"), 2);
    assert_eq!(deliveries_to(&server, "me@office.example"), 2);
}

#[test]
fn a_bad_row_stops_the_send_unless_told_to_skip_it() {
    let list = "email,organisation,name,salutation,language\n\
                sg@un.example,United Nations,António Guterres,Your Excellency,\n\
                jean@@coe.example,Council of Europe,Marija Pejčinović Burić,Dear Secretary General,\n\
                info@osce.example,OSCE,Helga Schmid,Dear Secretary General,\n";
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(list);

    campaign
        .send(&[])
        .expect_code(2)
        .expect_stdout("recipients.csv, row 3, column \"email\": \"jean@@coe.example\" is not an email address")
        .expect_stderr("1 letter has problems (listed above); nothing was sent");
    assert_eq!(server.connections_opened(), 0);
    assert!(campaign.log_rows().is_empty());

    campaign
        .send(&["--skip-bad-rows"])
        .expect_code(1)
        .expect_stdout("sent 2, failed 0, unknown 0, skipped 1");
    assert_eq!(server.received_count(), 2);
    assert_eq!(deliveries_to(&server, "sg@un.example"), 1);
    assert_eq!(deliveries_to(&server, "info@osce.example"), 1);
    assert!(!rcpt_addresses(&server).iter().any(|a| a.contains("coe")));
    let rows = campaign.log_rows();
    let skipped: Vec<_> = rows.iter().filter(|r| r.status == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{rows:?}");
    assert_eq!(skipped[0].row, 3);
    assert!(
        skipped[0].detail.contains("is not an email address"),
        "{rows:?}"
    );
    assert_eq!(campaign.count_last("sent"), 2);
}

// Rate limits: lower bounds only (a loaded machine is only ever slower). The limiter gives N
// letters N slots one interval apart, the first at once; each letter starts its connection (or
// its MAIL on a kept one) at its slot or later. So from the first connection the relay sees to
// the last letter it accepts there are at least (N − 1) intervals, less the time the first
// connection took to reach the relay: a 0.1 s allowance.

/// Sends `letters` letters at `rate` over 4 connections; returns the seconds from the relay's
/// first connection to the last letter it accepted.
fn rate_span(rate: &str, letters: usize) -> f64 {
    let first_connection = Arc::new(OnceLock::new());
    let seen = Arc::clone(&first_connection);
    let server = plain_server(Faults::from_fn(move |step| {
        if matches!(step.phase, Phase::Connect) {
            let _ = seen.set(Instant::now());
        }
        None
    }));
    let campaign = RelayConfig::plain(&server)
        .rate(rate)
        .concurrency(4)
        .campaign(&recipients(letters));
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), letters);
    assert_eq!(campaign.count_last("sent"), letters);
    assert_sent_means_received_once(&campaign, &server);
    let last = server.received().iter().map(|m| m.at).max().unwrap();
    let first: Instant = *first_connection.get().expect("a connection");
    (last - first).as_secs_f64()
}

#[test]
fn rate_per_second_spaces_the_letters_across_connections() {
    let span = rate_span("10/s", 11);
    assert!(span >= 0.9, "11 letters at 10/s took only {span:.3} s");
}

#[test]
fn rate_per_minute_spaces_the_letters() {
    let span = rate_span("120/min", 5);
    assert!(span >= 1.9, "5 letters at 120/min took only {span:.3} s");
}

#[test]
fn concurrency_bounds_and_reuses_connections() {
    let list = recipients(30);
    // A slow relay keeps each connection busy, so that the workers overlap.
    let server = plain_server(at_phase(
        |p| matches!(p, Phase::DataEnd { .. }),
        Fault::Delay(Duration::from_millis(30)),
    ));
    let campaign = RelayConfig::plain(&server).concurrency(3).campaign(&list);
    campaign.send(&[]).expect_code(0);

    assert_eq!(server.received_count(), 30);
    assert_sent_means_received_once(&campaign, &server);
    let at_once = server.max_concurrent_connections();
    assert!((2..=3).contains(&at_once), "{at_once} connections at once");
    let opened = server.connections_opened();
    assert!(opened <= 3, "{opened} connections for 30 letters");
    // Each connection greeted once, carried several letters and said goodbye.
    let mut per_connection: BTreeMap<u64, usize> = BTreeMap::new();
    for message in server.received() {
        *per_connection.entry(message.connection).or_default() += 1;
    }
    for (connection, letters) in &per_connection {
        let transcript = server.transcript(*connection);
        // lettre's EHLO, then envoi's own, whose whole reply it keeps (capabilities.rs).
        let greetings = transcript.iter().filter(|l| l.starts_with("EHLO")).count();
        assert_eq!(greetings, 2, "{transcript:?}");
        assert_eq!(transcript.last().map(String::as_str), Some("QUIT"));
        assert!(*letters >= 2, "connection {connection}: {letters} letters");
    }
    assert_eq!(emails(&list).len(), campaign.count_last("sent"));
}
