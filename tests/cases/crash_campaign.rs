//! Crashes and an unwritable log. `envoi send` killed with SIGKILL at random instants and
//! resumed each time still ends with every letter sent once, or logged `unknown`; and when the
//! log cannot be written, envoi sends nothing it could not record.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cases::{accounting, soak};
use crate::support::campaign::TestCampaign;
use crate::support::smtp_server::{RandomFaults, ServerConfig, SmtpServer};

/// splitmix64, for reproducible kill instants.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn envoi(campaign: &TestCampaign) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("envoi"));
    cmd.arg("--dir")
        .arg(campaign.path())
        .args(["send", "--yes"])
        .env_remove("ENVOI_SMTP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Sends `n` letters, killing envoi `kills` times (each kill followed by a resume), then lets a
/// last run finish; then reconciles. A kill comes at a random instant: either a random time
/// into the run (often while it starts up or reconciles), or after a random number of letters
/// (up to `max_batch`) reached the relay in that run, so that most land mid-delivery.
fn crash_campaign(n: usize, kills: usize, max_batch: u64, seed: u64) {
    // A slow-ish relay (10 ms per letter) so that a run takes a while, with some faults.
    let faults = RandomFaults {
        seed,
        p_4xx: 0.02,
        p_5xx: 0.01,
        p_drop_after_data: 0.005,
        every_n_421: 0,
        p_delay: 0.965,
        delay: Duration::from_millis(10),
    };
    let server = SmtpServer::start(ServerConfig::default().with_faults(faults.plan()));
    let (campaign, emails) = soak::campaign(&server, n);
    let mut state = seed;
    let mut killed_mid_run = 0;
    for _ in 0..kills {
        let draw = next(&mut state);
        let batch = draw % (max_batch + 1);
        let delay = Duration::from_millis((draw >> 32) % 400);
        let before = server.received_count();
        let mut child = envoi(&campaign).spawn().unwrap();
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let due = if batch == 0 {
                started.elapsed() >= delay
            } else {
                server.received_count() >= before + batch as usize
            };
            if due || started.elapsed() > Duration::from_secs(60) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no handler, no cleanup
            killed_mid_run += 1;
        }
        child.wait().unwrap();
    }
    let status = envoi(&campaign).status().unwrap();
    assert!(matches!(status.code(), Some(0 | 1)), "final run: {status}");
    let result = accounting::check(&campaign, &server, &emails, false);
    eprintln!(
        "crash campaign of {n}: {killed_mid_run} of {kills} kills while envoi ran, {} received, {result:?}",
        server.received_count()
    );
    assert_eq!(killed_mid_run, kills, "a run ended before its kill");
    // The final run took every letter as far as it could go: none is left without a status.
    assert_eq!(result.by_status.values().sum::<usize>(), n);
}

#[test]
fn a_send_killed_and_resumed_three_times_loses_and_repeats_nothing() {
    crash_campaign(150, 3, 20, 11);
}

#[test]
#[ignore = "2,000 letters and twenty kills: run in release by .ci/hardening"]
fn a_send_killed_twenty_times_loses_and_repeats_nothing() {
    crash_campaign(2_000, 20, 80, 1990);
}

/// Makes a folder unwritable for as long as it lives. Root ignores permissions, so as root the
/// folder is made immutable (`chattr +i`) instead.
#[cfg(unix)]
struct ReadOnly(PathBuf);

#[cfg(unix)]
impl ReadOnly {
    fn new(dir: &Path) -> Option<ReadOnly> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let ok = if root {
            Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success())
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).is_ok()
        };
        // The proof that it took: a file cannot be created.
        let probe = dir.join(".probe");
        let guard = ReadOnly(dir.to_path_buf());
        (ok && std::fs::write(&probe, b"x").is_err()).then_some(guard)
    }
}

#[cfg(unix)]
impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

fn run(campaign: &TestCampaign, args: &[&str]) -> (Option<i32>, String) {
    let out = campaign.envoi(args).output().unwrap();
    let text = crate::support::run::output_text(&out);
    (out.status.code(), text)
}

#[cfg(unix)]
#[test]
fn a_read_only_campaign_folder_is_refused_before_anything_is_sent() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = TestCampaign::with_port(server.port());
    // Never a silent pass: a machine that cannot run this test fails it, saying why.
    let Some(_read_only) = ReadOnly::new(campaign.path()) else {
        panic!(
            "cannot make a folder read-only here (needs chmod as a normal user, or chattr as root on ext4); this test cannot run on this file system"
        );
    };
    let (code, text) = run(&campaign, &["send", "--yes"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("delivery-log.csv: cannot open the delivery log for writing"),
        "{text}"
    );
    assert_eq!(server.received_count(), 0);
}

#[test]
fn a_log_on_a_device_is_refused_before_anything_is_sent() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = TestCampaign::with_port(server.port());
    for device in ["/dev/full", "/dev/null"] {
        if !Path::new(device).exists() {
            continue;
        }
        let started = Instant::now();
        let (code, text) = run(&campaign, &["send", "--yes", "--log", device]);
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains(&format!("{device}: is not an ordinary file")),
            "{text}"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    assert_eq!(server.received_count(), 0);
    assert!(!Path::new("/dev/full.inflight").exists());
}

#[test]
fn a_log_that_fills_up_mid_run_stops_the_run_and_leaves_nothing_unrecorded() {
    // The file size limit (RLIMIT_FSIZE) stands in for a full disk: a write past it fails
    // (EFBIG; SIGXFSZ is ignored, as it is inherited through exec).
    // Never a silent pass: without prlimit the test fails, saying what to install.
    assert!(
        Command::new("prlimit").arg("--version").output().is_ok(),
        "prlimit is not installed (Debian package util-linux); this test needs it"
    );
    let server = SmtpServer::start(ServerConfig::default());
    let (campaign, emails) = soak::campaign(&server, 120);
    let script = "trap '' XFSZ; exec prlimit --fsize=12000 -- \"$0\" --dir \"$1\" send --yes";
    let out = Command::new("sh")
        .args(["-c", script])
        .arg(assert_cmd::cargo::cargo_bin("envoi"))
        .arg(campaign.path())
        .output()
        .unwrap();
    let text = crate::support::run::output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("stopping so that no letter is sent without a record"),
        "{text}"
    );
    let sent_before = server.received_count();
    assert!(sent_before > 0 && sent_before < 120, "{sent_before} sent");
    assert!(
        std::fs::metadata(campaign.path().join("delivery-log.csv"))
            .unwrap()
            .len()
            <= 12_000
    );

    // With room again, a resume records what was in flight as unknown and sends the rest:
    // every letter the relay has is accounted for, none twice.
    let (code, text) = run(&campaign, &["send", "--yes"]);
    assert!(matches!(code, Some(0 | 1)), "{text}");
    let result = accounting::check(&campaign, &server, &emails, false);
    assert_eq!(result.by_status.values().sum::<usize>(), 120, "{result:?}");
}
