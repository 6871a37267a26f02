//! Running `envoi send` again: what the log says decides what goes out, and no crash or
//! interrupt at any instant makes a letter go out twice or get lost.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::campaign::TestCampaign;
use crate::support::relay::{
    RelayConfig, Switch, assert_sent_means_received_once, at_data_end_to, at_phase, deliveries_to,
    emails, plain_server, rcpt_count, recipients,
};
use crate::support::smtp_server::{Fault, Faults, Phase, SmtpServer};

#[test]
fn failed_letters_are_retried_by_the_next_run_and_sent_or_unknown_ones_are_not() {
    let list = recipients(5);
    let all = emails(&list);
    let (switch, plan) = Switch::new(Faults::first_of(vec![
        Faults::on_recipient(&all[1], Fault::Reply(550, "5.1.1 User unknown".into())),
        at_data_end_to(&all[2], Fault::DropAfterAccept),
    ]));
    let server = plain_server(plan);
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign
        .send(&[])
        .expect_code(1)
        .expect_stdout("sent 3, failed 1, unknown 1");
    assert_eq!(campaign.final_status(&all[1]).as_deref(), Some("failed"));
    assert_eq!(campaign.final_status(&all[2]).as_deref(), Some("unknown"));
    assert_eq!(server.received_count(), 4, "three sent and the unknown one");

    // The relay is healthy again: only the failed letter goes out.
    switch.off();
    campaign
        .send(&[])
        .expect_code(0)
        .expect_stdout("sent 1, failed 0, unknown 0, skipped 0 (4 already done earlier)");
    assert_eq!(rcpt_count(&server, &all[1]), 2);
    assert_eq!(rcpt_count(&server, &all[2]), 1);
    assert_eq!(server.received_count(), 5);
    assert_eq!(campaign.final_status(&all[2]).as_deref(), Some("unknown"));
    assert_sent_means_received_once(&campaign, &server);

    // --resend --row N: that row only, whatever its status.
    campaign.send(&["--resend", "--row", "4"]).expect_code(0);
    assert_eq!(deliveries_to(&server, &all[2]), 2);
    assert_eq!(campaign.final_status(&all[2]).as_deref(), Some("sent"));
    assert_eq!(server.received_count(), 6);

    // --resend alone: every letter again.
    let before = campaign.log_rows().len();
    campaign.send(&["--resend"]).expect_code(0);
    assert_eq!(server.received_count(), 11);
    for email in &all {
        let expected = if *email == all[2] { 3 } else { 2 };
        assert_eq!(deliveries_to(&server, email), expected, "{email}");
    }
    assert_eq!(campaign.log_rows().len(), before + 5);
    assert_eq!(campaign.count_last("sent"), 5);
}

#[test]
fn limit_sends_that_many_of_the_letters_not_yet_done() {
    let list = recipients(7);
    let all = emails(&list);
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign
        .send(&["--limit", "0"])
        .expect_code(0)
        .expect_stdout("nothing to send: --limit 0 selects no letter");
    assert_eq!(server.connections_opened(), 0);
    for (run, expected) in [(1, 3), (2, 6), (3, 7)] {
        campaign.send(&["--limit", "3"]).expect_code(0);
        assert_eq!(server.received_count(), expected, "after run {run}");
        assert_eq!(campaign.count_last("sent"), expected);
    }
    // In row order: the first run took rows 2 to 4.
    let first_three: Vec<String> = server.received()[..3]
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    for email in &all[..3] {
        assert!(first_three.contains(email), "{first_three:?}");
    }
    campaign
        .send(&["--limit", "3"])
        .expect_code(0)
        .expect_stdout("nothing to send: the 7 letters selected already went out according to delivery-log.csv (sent or unknown");
    assert_eq!(server.received_count(), 7);
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn row_selects_letters_and_a_missing_row_is_refused() {
    let list = recipients(5);
    let all = emails(&list);
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&list);

    campaign
        .send(&["--row", "9"])
        .expect_code(2)
        .expect_stderr("has no recipient in row 9 (its recipients are in rows 2 to 6)");
    assert_eq!(server.connections_opened(), 0);

    campaign.send(&["--row", "3", "--row", "5"]).expect_code(0);
    let rows: Vec<usize> = campaign.log_rows().iter().map(|r| r.row).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.contains(&3) && rows.contains(&5), "{rows:?}");
    assert_eq!(deliveries_to(&server, &all[1]), 1);
    assert_eq!(deliveries_to(&server, &all[3]), 1);
    assert_eq!(server.received_count(), 2);

    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 5);
    assert_sent_means_received_once(&campaign, &server);
}

/// Starts `envoi send --yes` in the background.
fn spawn_send(campaign: &TestCampaign, output: Stdio) -> Child {
    campaign
        .process(&["send", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(output)
        .spawn()
        .expect("start envoi")
}

/// Waits until the server has accepted `n` messages in all, failing the test if envoi ends or
/// a minute passes first.
fn wait_until_received(server: &SmtpServer, child: &mut Child, n: usize) {
    wait_until(child, &format!("the relay had {n} letters"), || {
        server.wait_for(n, Duration::from_millis(20))
    });
}

/// Polls `done` until it holds, failing the test if envoi ends or a minute passes first; envoi
/// is still running when it returns.
fn wait_until(child: &mut Child, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if let Some(status) = child.try_wait().expect("poll envoi") {
            panic!("envoi ended ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "not {what} after a minute");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        child.try_wait().expect("poll envoi").is_none(),
        "envoi must still be sending when it is stopped"
    );
}

/// A relay that takes a while over every letter, so that a run can be stopped part-way.
fn slow_server() -> SmtpServer {
    plain_server(at_phase(
        |p| matches!(p, Phase::DataEnd { .. }),
        Fault::Delay(Duration::from_millis(20)),
    ))
}

/// Ctrl-C, as `kill -INT` sends it (Unix only).
#[cfg(unix)]
fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Every recipient ends `sent` and received exactly once, or `unknown` and received at most
/// once; the journal is empty and the log has no torn line.
#[track_caller]
fn assert_everyone_accounted_for(campaign: &TestCampaign, server: &SmtpServer, all: &[String]) {
    let last = campaign.last_rows();
    assert_eq!(last.len(), all.len(), "every recipient is in the log");
    for email in all {
        let row = &last[email];
        assert!(
            row.status == "sent" || row.status == "unknown",
            "{email}: {row:?}"
        );
    }
    assert_sent_means_received_once(campaign, server);
    let log = campaign.read("delivery-log.csv");
    assert!(log.ends_with('\n'));
    assert_eq!(log.lines().count(), campaign.log_rows().len() + 1);
    assert_eq!(campaign.read("delivery-log.csv.inflight"), "");
}

#[test]
fn killed_at_any_instant_no_letter_goes_out_twice() {
    let list = recipients(300);
    let all = emails(&list);
    let server = slow_server();
    let campaign = RelayConfig::plain(&server).concurrency(4).campaign(&list);

    // Three runs killed (SIGKILL: no chance to clean up) at different points.
    let mut stderr = String::new();
    for received in [15, 110, 190] {
        let mut child = spawn_send(&campaign, Stdio::piped());
        wait_until_received(&server, &mut child, received);
        child.kill().expect("SIGKILL envoi");
        let output = child.wait_with_output().expect("reap envoi");
        stderr.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    assert!(server.received_count() < all.len());

    let run = campaign.send(&[]);
    run.expect_code(0);
    stderr.push_str(&run.stderr);
    assert_everyone_accounted_for(&campaign, &server, &all);
    // Only letters in flight at a kill can be unknown: at most one per connection per kill.
    let unknown = campaign.count_last("unknown");
    assert!(unknown <= 3 * 4, "{unknown} unknown");
    for (email, row) in campaign.last_rows() {
        if row.status == "unknown" {
            assert!(
                row.detail
                    .contains("envoi stopped while handing this letter"),
                "{row:?}"
            );
            assert!(!row.message_id.is_empty(), "{row:?}");
            // Each was reported when the next run opened the log.
            let warning = format!("({email}) was being handed to the relay");
            assert!(stderr.contains(&warning), "{email}\n{stderr}");
        }
    }
    assert_eq!(
        server.received_count(),
        campaign.count_last("sent") + unknown_received(&campaign, &server)
    );
}

/// How many of the recipients logged `unknown` the relay did receive.
fn unknown_received(campaign: &TestCampaign, server: &SmtpServer) -> usize {
    campaign
        .last_rows()
        .iter()
        .filter(|(_, row)| row.status == "unknown")
        .map(|(email, _)| deliveries_to(server, email))
        .sum()
}

#[cfg(unix)]
#[test]
fn ctrl_c_finishes_the_letters_in_flight_and_loses_nothing() {
    let list = recipients(120);
    let all = emails(&list);
    let server = slow_server();
    let campaign = RelayConfig::plain(&server).concurrency(4).campaign(&list);

    let mut child = spawn_send(&campaign, Stdio::piped());
    wait_until_received(&server, &mut child, 20);
    interrupt(&child);
    let output = child.wait_with_output().expect("envoi ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stopping: finishing the letters in flight"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped: interrupted"), "{stderr}");

    // Every letter the relay took is logged sent; nothing is unknown, nothing half-done.
    let sent = campaign.count_last("sent");
    assert_eq!(campaign.log_rows().len(), sent);
    assert_eq!(server.received_count(), sent);
    assert!(sent < all.len());
    assert_sent_means_received_once(&campaign, &server);
    assert_eq!(campaign.read("delivery-log.csv.inflight"), "");

    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), all.len());
    assert_everyone_accounted_for(&campaign, &server, &all);
    assert_eq!(campaign.count_last("unknown"), 0);
}

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_quits_at_once_and_still_sends_nothing_twice() {
    let list = recipients(120);
    let all = emails(&list);
    // A very slow relay, which counts the letters whose data it has: once one is there, it is
    // in flight (its intent is on disk) for the next 2 s, long enough on a loaded machine.
    let handed_over = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handed_over);
    let (slow, plan) = Switch::new(Faults::from_fn(move |step| {
        matches!(step.phase, Phase::DataEnd { .. }).then(|| {
            counter.fetch_add(1, Ordering::SeqCst);
            Fault::Delay(Duration::from_millis(2000))
        })
    }));
    let server = plain_server(plan);
    let campaign = RelayConfig::plain(&server).concurrency(4).campaign(&list);

    let mut child = spawn_send(&campaign, Stdio::piped());
    // The first letters are logged; the next ones are at the relay, waiting for its answer.
    wait_until(
        &mut child,
        "letters were in flight after some were sent",
        || {
            server.received_count() >= 4
                && handed_over.load(Ordering::SeqCst) > server.received_count()
        },
    );
    interrupt(&child);
    // Two signals sent back to back can merge into one before the process sees the first:
    // leave the first a moment to land.
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let output = child.wait_with_output().expect("envoi ends");
    assert_eq!(output.status.code(), Some(3));
    slow.off();

    // The letters in flight were not waited for: the next run finds them in the journal.
    campaign
        .send(&[])
        .expect_code(0)
        .expect_stderr("was being handed to the relay when envoi last stopped; logged as unknown");
    assert_everyone_accounted_for(&campaign, &server, &all);
    assert!(campaign.count_last("unknown") >= 1);
}

#[test]
fn a_torn_log_line_is_removed_and_a_damaged_one_stops_the_run() {
    let list = recipients(3);
    let all = emails(&list);
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&["--row", "2"]).expect_code(0);
    let clean = campaign.read("delivery-log.csv");

    // A line someone edited by hand: that recipient may have been sent, so nothing is.
    let mut log = clean.clone();
    log.push_str("yesterday,3,person1@org1.example,Organisation 1,deliverd,,,,1\n");
    campaign.file("delivery-log.csv", &log);
    campaign
        .send(&[])
        .expect_code(2)
        .expect_stderr("delivery-log.csv, line 3: \"deliverd\" is not a delivery status")
        .expect_stderr(
            "envoi cannot tell whether this recipient was already sent, so it sends nothing",
        );
    assert_eq!(server.received_count(), 1);
    assert_eq!(campaign.read("delivery-log.csv"), log, "left as it was");

    // A crash cut the last line short: that is repaired, and the run goes on.
    let mut log = clean;
    log.push_str("2024-01-19T10:00:00Z,4,person2@org2.example,Organisation 2,se");
    campaign.file("delivery-log.csv", &log);
    campaign
        .send(&[])
        .expect_code(0)
        .expect_stderr("removed an incomplete last line left by an interrupted run")
        .expect_stderr("line 3");
    assert_eq!(server.received_count(), 3);
    assert_eq!(deliveries_to(&server, &all[0]), 1);
    assert_sent_means_received_once(&campaign, &server);
    let text = campaign.read("delivery-log.csv");
    assert!(!text.contains(",se\n") && !text.ends_with(",se"), "{text}");
}

#[test]
fn a_crashed_run_whose_journal_is_gone_stops_the_next_send() {
    let list = recipients(60);
    let all = emails(&list);
    let server = slow_server();
    let campaign = RelayConfig::plain(&server).concurrency(2).campaign(&list);
    let mut child = spawn_send(&campaign, Stdio::null());
    wait_until_received(&server, &mut child, 3);
    child.kill().expect("kill envoi");
    child.wait().expect("envoi ends");
    std::fs::remove_file(campaign.path().join("delivery-log.csv.inflight"))
        .expect("a crashed run leaves its journal");

    let log = campaign.read("delivery-log.csv");
    // The relay finishes taking what was in flight when envoi died (its 20 ms per letter).
    let mut received = server.received_count();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = server.received_count();
        if now == received {
            break;
        }
        received = now;
    }
    campaign
        .send(&[])
        .expect_code(2)
        .expect_stderr("delivery-log.csv: the last run with this log did not end cleanly")
        .expect_stderr("delivery-log.csv.inflight is gone")
        .expect_stderr("then delete");
    assert_eq!(server.received_count(), received, "nothing was sent");
    assert_eq!(
        campaign.read("delivery-log.csv"),
        log,
        "nothing was written"
    );

    // Having checked with the relay, the user deletes the lock file to go on.
    std::fs::remove_file(campaign.path().join("delivery-log.csv.lock")).expect("lock file");
    campaign.send(&[]).expect_code(0);
    assert_eq!(campaign.last_rows().len(), all.len());
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_for_the_rate_limit_stops_promptly() {
    let list = recipients(3);
    let server = plain_server(Faults::none());
    // One letter every 30 s: after the first, envoi waits.
    let campaign = RelayConfig::plain(&server)
        .rate("2/min")
        .concurrency(1)
        .campaign(&list);
    let mut child = spawn_send(&campaign, Stdio::piped());
    wait_until_received(&server, &mut child, 1);
    let interrupted = Instant::now();
    interrupt(&child);
    let output = child.wait_with_output().expect("envoi ends");
    assert_eq!(output.status.code(), Some(3));
    assert!(
        interrupted.elapsed() < Duration::from_secs(20),
        "envoi waited out the rate limit instead of stopping"
    );
    assert_eq!(server.received_count(), 1);
    let rows = campaign.log_rows();
    assert_eq!(
        rows.len(),
        1,
        "letters not started are not logged: {rows:?}"
    );
    assert_eq!(rows[0].status, "sent");
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn a_second_send_on_the_same_log_is_refused_while_the_first_runs() {
    let list = recipients(200);
    let all = emails(&list);
    let server = slow_server();
    let campaign = RelayConfig::plain(&server).concurrency(2).campaign(&list);
    let mut first = spawn_send(&campaign, Stdio::piped());
    wait_until_received(&server, &mut first, 5);

    let second = campaign.send(&[]);
    second
        .expect_code(2)
        .expect_stderr("is being written by another `envoi send`");
    // The first run is not disturbed, and the second sent nothing.
    let output = first.wait_with_output().expect("envoi ends");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(server.received_count(), all.len());
    assert_everyone_accounted_for(&campaign, &server, &all);
    assert_eq!(campaign.count_last("unknown"), 0);
}
