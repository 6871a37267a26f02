//! Soak: thousands of letters over 8 connections through a relay that misbehaves the way real
//! ones do (4xx, 5xx, connections dropped after the data, a 421 every few hundred messages,
//! slow replies). Afterwards the log and the relay must agree letter for letter.

use std::time::Duration;

use crate::cases::accounting;
use crate::support::campaign::{TestCampaign, config, many_recipients};
use crate::support::smtp_server::{Fault, Faults, RandomFaults, ServerConfig, SmtpServer};

/// The relay's misbehaviour, the same on every run for a given seed.
pub fn faults(seed: u64) -> RandomFaults {
    RandomFaults {
        seed,
        p_4xx: 0.03,
        p_5xx: 0.01,
        p_drop_after_data: 0.005,
        every_n_421: 250,
        p_delay: 0.02,
        delay: Duration::from_millis(40),
    }
}

/// A campaign of `n` letters sending over 8 connections, retrying quickly.
pub fn campaign(server: &SmtpServer, n: usize) -> (TestCampaign, Vec<String>) {
    let campaign = TestCampaign::with_port(server.port());
    let recipients = many_recipients(n);
    let emails = recipients
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_owned())
        .collect();
    campaign.file("recipients.csv", recipients).file(
        "envoi.toml",
        config(server.port())
            .replace("timeout = 5", "timeout = 3")
            .replace("concurrency = 2", "concurrency = 8")
            .replace("max_attempts = 3", "max_attempts = 5")
            .replace("retry_delay = \"50ms\"", "retry_delay = \"10ms\""),
    );
    (campaign, emails)
}

fn soak(n: usize, seed: u64) {
    // Besides the random mix, the 50th transaction surely loses its connection after the data.
    let plan = Faults::first_of(vec![
        Faults::on_message(50, Fault::DropAfterAccept),
        faults(seed).plan(),
    ]);
    let server = SmtpServer::start(ServerConfig::default().with_faults(plan));
    let (campaign, emails) = campaign(&server, n);
    let out = campaign.envoi(&["send", "--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Some letters fail (5xx) or end unknown (dropped after the data): exit 1, never a stop.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let first = accounting::check(&campaign, &server, &emails, true);
    eprintln!("soak of {n}: {first:?}");
    assert!(first.by_status.get("sent").copied().unwrap_or(0) > n * 9 / 10);
    assert!(first.by_status.contains_key("failed"), "{first:?}");
    assert!(first.unknown_arrived >= 1, "{first:?}");
    assert!(server.max_concurrent_connections() <= 8);

    // A second run retries the failed letters only; nothing sent or unknown goes again.
    let out = campaign.envoi(&["send", "--yes"]).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = accounting::check(&campaign, &server, &emails, false);
    assert!(second.by_status["sent"] >= first.by_status["sent"]);
    assert_eq!(
        second.by_status.get("unknown"),
        first.by_status.get("unknown")
    );
}

#[test]
fn soak_300_letters_with_faults() {
    soak(300, 7);
}

#[test]
#[ignore = "10,000 letters: run in release by .ci/hardening"]
fn soak_10000_letters_with_faults() {
    soak(10_000, 2024);
}
