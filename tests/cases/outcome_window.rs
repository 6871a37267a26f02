//! The window that one sync per letter opens: a letter's outcome row is written as soon as the
//! relay answers, and reaches the disk with the next letter's intent, before that letter's data.
//! `envoi send` killed with SIGKILL between one letter's `250` and the next letter's DATA, at
//! many instants, must leave every letter that reached the relay logged (`sent` or `unknown`)
//! and none sent twice.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cases::accounting;
use crate::support::campaign::{TestCampaign, config, many_recipients};
use crate::support::smtp_server::{Fault, Faults, Phase, ServerConfig, SmtpServer};

/// How long the relay holds each MAIL FROM and DATA command: the window a kill aims at.
const HOLD: Duration = Duration::from_millis(12);

fn envoi(campaign: &TestCampaign) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("envoi"));
    cmd.arg("--dir")
        .arg(campaign.path())
        .args(["send", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn a_kill_between_one_letters_250_and_the_next_letters_data_loses_and_repeats_nothing() {
    // Every MAIL FROM and DATA command after a connection's first letter is held a moment:
    // the previous letter's 250 has come, its outcome is written, and the next letter's data
    // has not gone out. `windows` counts how many times the relay entered such a hold.
    let windows = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(Mutex::new(Instant::now()));
    let plan = Faults::from_fn({
        let windows = Arc::clone(&windows);
        let opened = Arc::clone(&opened);
        move |step| {
            let in_window = matches!(step.phase, Phase::Mail { .. } | Phase::Data);
            (in_window && step.message > 1).then(|| {
                *opened.lock().unwrap() = Instant::now();
                windows.fetch_add(1, Ordering::SeqCst);
                Fault::Delay(HOLD)
            })
        }
    });
    let server = SmtpServer::start(ServerConfig::default().with_faults(plan));
    let n = 120;
    let recipients = many_recipients(n);
    let emails: Vec<String> = recipients
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_owned())
        .collect();
    let campaign = TestCampaign::with_port(server.port());
    campaign.file("recipients.csv", recipients).file(
        "envoi.toml",
        config(server.port()).replace("concurrency = 2", "concurrency = 3"),
    );

    let rounds = 14u64;
    let mut killed_in_window = 0;
    for round in 0..rounds {
        let before = server.received_count();
        let entered = windows.load(Ordering::SeqCst);
        let mut child = envoi(&campaign).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // A few letters into this run, and then inside a hold: a different instant of it
        // each round (0 to 11 ms in).
        let aim = Duration::from_micros(round * 850);
        loop {
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            let got_some = server.received_count() >= before + 1 + (round as usize % 4);
            if got_some && windows.load(Ordering::SeqCst) > entered {
                let since = opened.lock().unwrap().elapsed();
                if since >= aim {
                    break;
                }
                std::thread::sleep(aim - since);
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no handler, no cleanup
            killed_in_window += 1;
        }
        child.wait().unwrap();
    }
    let status = envoi(&campaign).status().unwrap();
    assert_eq!(status.code(), Some(0), "final run: {status}");

    // No duplicate, nothing the relay has that the log does not name, every letter accounted.
    let result = accounting::check(&campaign, &server, &emails, false);
    eprintln!(
        "{killed_in_window} of {rounds} kills inside the window, {} received, {result:?}",
        server.received_count()
    );
    assert_eq!(killed_in_window, rounds, "a run ended before its kill");
    assert_eq!(result.by_status.values().sum::<usize>(), n);
    // A kill in the window finds the previous letter's outcome written: it is logged sent, and
    // only letters whose data may have gone out are unknown, at most one per connection a kill.
    let unknown = result.by_status.get("unknown").copied().unwrap_or(0);
    assert!(
        unknown <= 3 * rounds as usize,
        "{unknown} unknown after {rounds} kills over 3 connections"
    );
    assert_eq!(
        result.unknown_arrived + result.by_status.get("sent").copied().unwrap_or(0),
        server.received_count(),
        "every letter the relay has is logged sent, or unknown"
    );
}
