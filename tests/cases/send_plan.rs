//! The send plan end to end: `--dry-run` says what a send would do and writes nothing, and a
//! recipients file that changes while `send` waits for "yes" is refused, not sent from.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::relay::{RelayConfig, deliveries_to, emails, plain_server, recipients};
use crate::support::smtp_server::Faults;

#[test]
fn a_dry_run_says_what_a_send_would_do_and_writes_nothing() {
    let list = recipients(4);
    let all = emails(&list);
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&["--row", "3"]).expect_code(0);
    let log = campaign.read("delivery-log.csv");

    // No --yes needed: nothing goes out.
    let run = campaign.run(&["send", "--dry-run"]);
    run.expect_code(0)
        .expect_stdout(&format!("row     2  would send  {}", all[0]))
        .expect_stdout(&format!(
            "row     3  already sent, not sent again  {}",
            all[1]
        ))
        .expect_stdout("dry run: 3 letters would be sent via ")
        .expect_stdout("1 already went out according to delivery-log.csv")
        .expect_stdout("nothing was sent, nothing written");
    assert_eq!(server.received_count(), 1);
    assert_eq!(
        campaign.read("delivery-log.csv"),
        log,
        "the log is untouched"
    );
    assert!(!campaign.path().join("delivery-log.csv.inflight").exists());

    // Without a log at all, a dry run creates none.
    let fresh = RelayConfig::plain(&server).campaign(&list);
    fresh.run(&["send", "--dry-run"]).expect_code(0);
    for name in [
        "delivery-log.csv",
        "delivery-log.csv.inflight",
        "delivery-log.csv.lock",
    ] {
        assert!(!fresh.path().join(name).exists(), "{name}");
    }
    assert_eq!(server.received_count(), 1);

    // A clean send removes the empty journal.
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 4);
    assert!(!campaign.path().join("delivery-log.csv.inflight").exists());
}

/// Runs `envoi send` on a pseudo-terminal (util-linux `script`), so that it asks for "yes";
/// `before_yes` runs once the question is on the screen. Returns the exit code and the screen.
#[cfg(unix)]
fn send_on_a_terminal(
    campaign: &crate::support::campaign::TestCampaign,
    before_yes: impl FnOnce(),
) -> (Option<i32>, String) {
    let envoi = campaign.process(&["send"]);
    let mut line = format!("'{}'", envoi.get_program().to_string_lossy());
    for arg in envoi.get_args() {
        line.push_str(&format!(" '{}'", arg.to_string_lossy()));
    }
    let mut script = std::process::Command::new("script");
    script.args(["-qfec", &line, "/dev/null"]);
    for (key, value) in envoi.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let mut child = script
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux script");
    let screen = Arc::new(Mutex::new(Vec::new()));
    let reader = std::thread::spawn({
        let screen = Arc::clone(&screen);
        let mut out = child.stdout.take().unwrap();
        move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&screen.lock().unwrap()).contains("Type yes to send:") {
        assert!(Instant::now() < deadline, "envoi never asked for yes");
        assert!(
            child.try_wait().unwrap().is_none(),
            "envoi ended before asking"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    before_yes();
    child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    (status.code(), text)
}

#[cfg(unix)]
#[test]
fn a_row_inserted_while_send_waits_for_yes_is_refused_and_nothing_goes_twice() {
    let list = recipients(3);
    let all = emails(&list);
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&["--row", "2"]).expect_code(0);
    assert_eq!(deliveries_to(&server, &all[0]), 1);

    // Unchanged, the terminal's "yes" sends the rest.
    let (code, screen) = send_on_a_terminal(&campaign, || {});
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(server.received_count(), 3);

    // A new campaign whose first row is sent; a row is inserted above it while envoi waits.
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&["--row", "2"]).expect_code(0);
    let received = server.received_count();
    let log = campaign.read("delivery-log.csv");
    let (code, screen) = send_on_a_terminal(&campaign, || {
        let mut lines: Vec<&str> = list.lines().collect();
        let inserted = lines[1].replace(&all[0], "inserted@org9.example");
        lines.insert(1, &inserted);
        campaign.file("recipients.csv", lines.join("\n") + "\n");
    });
    assert_eq!(code, Some(2), "{screen}");
    assert!(
        screen.contains("recipients.csv: changed since envoi planned this run"),
        "{screen}"
    );
    assert!(screen.contains("nothing was sent"), "{screen}");
    assert_eq!(server.received_count(), received, "nothing was sent");
    assert_eq!(deliveries_to(&server, &all[0]), 2, "once per campaign");
    assert_eq!(
        campaign.read("delivery-log.csv"),
        log,
        "nothing was written"
    );
}
