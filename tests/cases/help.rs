//! `--help`: each command lists the options it uses, in the order of the work, and no other.

use crate::support::campaign::TestCampaign;

/// The option names in a help text, in order.
fn options(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-h, ").or(Some(l))?;
            let l = l.strip_prefix("-y, ").unwrap_or(l);
            l.starts_with("--")
                .then(|| l.split([' ', '=']).next().unwrap().to_owned())
        })
        .collect()
}

fn help(args: &[&str]) -> Vec<String> {
    let campaign = TestCampaign::new();
    let run = campaign.run(args);
    run.expect_code(0);
    options(&run.stdout)
}

#[test]
fn init_report_and_track_list_only_what_they_use() {
    assert_eq!(help(&["init", "--help"]), ["--dir", "--help"]);
    assert_eq!(
        help(&["report", "--help"]),
        ["--dir", "--log", "--csv", "--help"]
    );
    assert_eq!(
        help(&["track", "--help"]),
        ["--dir", "--maildir", "--mbox", "--log", "--help"]
    );
}

/// The campaign-file options, which every command that reads the campaign lists after its own.
const CAMPAIGN_FILES: [&str; 3] = ["--config", "--recipients", "--template"];
/// The relay options, listed last by the commands that talk to the relay.
const RELAY: [&str; 4] = ["--smtp-host", "--smtp-port", "--security", "--smtp-user"];

/// `own`, then the campaign files, then (if `relay`) the relay options.
fn expected(own: &[&str], relay: bool) -> Vec<String> {
    let relay: &[&str] = if relay { &RELAY } else { &[] };
    [own, &CAMPAIGN_FILES, relay]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn commands_list_their_own_options_first_then_the_campaign_files_then_the_relay() {
    assert_eq!(
        help(&["send", "-h"]),
        expected(
            &[
                "--dir",
                "--dry-run",
                "--test-to",
                "--row",
                "--limit",
                "--resend",
                "--skip-bad-rows",
                "--yes",
                "--log",
                "--help",
            ],
            true
        )
    );
    assert_eq!(
        help(&["check", "-h"]),
        expected(&["--dir", "--smtp", "--help"], true)
    );
    // preview never talks to the relay.
    assert_eq!(
        help(&["preview", "-h"]),
        expected(
            &["--dir", "--out", "--format", "--row", "--limit", "--help"],
            false
        )
    );
}

/// Campaign files and relay options also work before the command; after it, they win.
#[test]
fn campaign_files_and_relay_options_may_also_come_before_the_command() {
    let campaign = TestCampaign::new();
    campaign.file("other.csv", campaign.read("recipients.csv"));
    std::fs::remove_file(campaign.path().join("recipients.csv")).unwrap();
    campaign
        .run(&["--recipients", "other.csv", "check"])
        .expect_code(0);
    campaign
        .run(&[
            "--recipients",
            "missing.csv",
            "check",
            "--recipients",
            "other.csv",
        ])
        .expect_code(0);
    let run = campaign.run(&[
        "--recipients",
        "other.csv",
        "check",
        "--recipients",
        "missing.csv",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("missing.csv") || run.stdout.contains("missing.csv"),
        "{}",
        run.stderr
    );
}
