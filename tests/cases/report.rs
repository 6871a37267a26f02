//! `envoi report`: counts by last status, and every recipient that did not end `sent` with
//! its reason, read from a log that real runs against the relay wrote.

use crate::support::relay::{
    RelayConfig, Run, at_data_end_to, at_most, emails, plain_server, recipients,
};
use crate::support::smtp_server::{Fault, Faults};

/// The number on the report's line for `status` (`  sent      2`).
fn count(run: &Run, status: &str) -> usize {
    run.stdout
        .lines()
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [name, n] if name == status => n.parse().ok(),
                _ => None,
            },
        )
        .unwrap_or_else(|| panic!("no count for {status}:\n{run}"))
}

/// The report's line about `email`, if it lists it.
fn line_about<'a>(run: &'a Run, email: &str) -> Option<&'a str> {
    run.stdout
        .lines()
        .find(|l| l.contains(&format!("<{email}>")))
}

#[test]
fn counts_by_last_status_and_lists_every_letter_not_sent_with_its_reason() {
    let mut list = recipients(5);
    list.push_str("not-an-address,Broken Row Org,Nobody,Dear colleague,\n");
    let all = emails(&list);
    let server = plain_server(Faults::first_of(vec![
        Faults::on_recipient(&all[1], Fault::Reply(550, "5.1.1 User unknown".into())),
        at_data_end_to(&all[2], Fault::DropAfterAccept),
        at_most(
            1,
            at_data_end_to(&all[3], Fault::Reply(451, "4.3.0 Try later".into())),
        ),
    ]));
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&["--skip-bad-rows"]).expect_code(1);
    let connections = server.connections_opened();

    let run = campaign.run(&["report"]);
    run.expect_code(0)
        .expect_stdout("delivery-log.csv: 6 recipients");
    assert_eq!(
        count(&run, "sent"),
        3,
        "a retried letter counts once, as sent"
    );
    assert_eq!(count(&run, "failed"), 1);
    assert_eq!(count(&run, "unknown"), 1);
    assert_eq!(count(&run, "skipped"), 1);
    assert_eq!(count(&run, "dry-run"), 0);

    let failed = line_about(&run, &all[1]).expect("the failed letter is listed");
    assert!(
        failed.contains("row    3  failed   Organisation 1 <person1@org1.example>: 550 5.1.1 User unknown (attempts: 1,"),
        "{failed}"
    );
    let unknown = line_about(&run, &all[2]).expect("the unknown letter is listed");
    assert!(
        unknown.contains("row    4  unknown  Organisation 2"),
        "{unknown}"
    );
    assert!(
        unknown.contains("lost after the letter was sent"),
        "{unknown}"
    );
    let skipped = run
        .stdout
        .lines()
        .find(|l| l.contains("row    7  skipped  "))
        .expect("the skipped row is listed");
    assert!(
        skipped.contains("\"not-an-address\" is not an email address"),
        "{skipped}"
    );
    for sent in [&all[0], &all[3], &all[4]] {
        assert!(
            line_about(&run, sent).is_none(),
            "{sent} ended sent:\n{run}"
        );
    }
    run.expect_stdout("envoi send --resend --row N")
        .expect_stdout("\"failed\" letters are tried again by the next envoi send");
    // A report talks to nobody.
    assert_eq!(server.connections_opened(), connections);

    // After the failed one goes through, only the unknown and the skipped remain open.
    campaign.send(&["--skip-bad-rows"]).expect_code(1);
    let run = campaign.run(&["report"]);
    run.expect_code(0);
    assert_eq!(count(&run, "sent"), 3);
    assert_eq!(count(&run, "failed"), 1, "the 550 recipient fails again");
}

#[test]
fn an_all_sent_log_says_so() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&recipients(3));
    // A log in a folder that does not exist is refused rather than started afresh: a typo in
    // the folder must not make envoi believe nothing was sent yet.
    campaign
        .send(&["--log", "logs/first-run.csv"])
        .expect_code(2)
        .expect_stderr("cannot open the delivery log for writing");
    assert_eq!(server.connections_opened(), 0);

    campaign.send(&["--log", "first-run.csv"]).expect_code(0);
    assert_eq!(server.received_count(), 3);
    assert!(!campaign.path().join("delivery-log.csv").exists());
    let run = campaign.run(&["report", "--log", "first-run.csv"]);
    run.expect_code(0)
        .expect_stdout("first-run.csv: 3 recipients")
        .expect_stdout("Every recipient in the log ended sent.");
    assert_eq!(count(&run, "sent"), 3);
    assert!(!run.stdout.contains("Not sent:"), "{run}");
}

#[test]
fn a_missing_log_is_a_clear_error() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&recipients(2));
    campaign
        .run(&["report"])
        .expect_code(2)
        .expect_stderr("delivery-log.csv: not found; it is written by envoi send");
    campaign
        .run(&["report", "--log", "elsewhere.csv"])
        .expect_code(2)
        .expect_stderr("elsewhere.csv: not found");
    assert_eq!(server.connections_opened(), 0);
}

/// Dry runs no longer write the log, but a log an older envoi wrote may hold `dry-run` rows:
/// they are read, counted and listed as not sent, and the next send sends those letters.
#[test]
fn a_dry_run_row_from_an_older_envoi_is_counted_as_not_sent() {
    let list = recipients(2);
    let all = emails(&list);
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&["--row", "2"]).expect_code(0);
    let path = campaign.path().join("delivery-log.csv");
    let log = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{log}2026-01-05T10:00:00Z,3,{},Organisation 1,dry-run,,dry run: not sent,,0\n",
            all[1]
        ),
    )
    .unwrap();

    let run = campaign.run(&["report"]);
    run.expect_code(0)
        .expect_stdout("delivery-log.csv: 2 recipients");
    assert_eq!(count(&run, "sent"), 1);
    assert_eq!(count(&run, "dry-run"), 1);
    let line = line_about(&run, &all[1]).expect("the dry-run letter is listed as not sent");
    assert!(line.contains("dry-run"), "{line}");

    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 2);
    let rows = campaign.rows_for(&all[1]);
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["dry-run", "sent"]);
}
