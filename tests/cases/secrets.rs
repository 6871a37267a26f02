//! The relay password is never printed, logged or written: not on success, not when the relay
//! refuses it, not with the most verbose logging and backtraces, not in `--help`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::support::campaign::{RECIPIENTS, TestCampaign};
use crate::support::relay::{
    PASSWORD, PASSWORD_ENV, RelayConfig, Run, USER, recipients, starttls_server,
};
use crate::support::smtp_server::{Faults, ServerConfig, SmtpServer, Tls};

/// The forms a leaked password could take: as typed, and base64 as AUTH PLAIN, LOGIN and
/// XOAUTH2 carry it.
fn leak_forms() -> Vec<String> {
    vec![
        PASSWORD.to_owned(),
        BASE64.encode(PASSWORD),
        BASE64.encode(format!("\0{USER}\0{PASSWORD}")),
        BASE64.encode(format!("user={USER}\x01auth=Bearer {PASSWORD}\x01\x01")),
    ]
}

/// Verbose logging and backtraces on, as a user asked to "send the logs" might run it.
const VERBOSE: [(&str, &str); 2] = [("RUST_LOG", "trace"), ("RUST_BACKTRACE", "1")];

#[track_caller]
fn assert_nowhere(run: &Run, campaign: &TestCampaign) {
    for form in leak_forms() {
        assert!(
            !run.stdout.contains(&form),
            "stdout leaks the password:\n{run}"
        );
        assert!(
            !run.stderr.contains(&form),
            "stderr leaks the password:\n{run}"
        );
        for (path, text) in campaign.all_files() {
            assert!(
                !text.contains(&form),
                "{} leaks the password",
                path.display()
            );
        }
    }
}

/// `args` with the password in the environment and verbose settings.
fn run_with_password(campaign: &TestCampaign, args: &[&str]) -> Run {
    campaign.run_env(args, &[VERBOSE[0], VERBOSE[1], (PASSWORD_ENV, PASSWORD)])
}

#[test]
fn a_successful_run_shows_the_password_nowhere() {
    for auth in ["plain", "login", "xoauth2"] {
        let server = starttls_server(Faults::none());
        let campaign = RelayConfig::starttls(&server)
            .auth(auth)
            .campaign(&recipients(3));
        let check = run_with_password(&campaign, &["check", "--smtp"]);
        check.expect_code(0);
        assert_nowhere(&check, &campaign);
        let run = run_with_password(&campaign, &["send", "--yes"]);
        run.expect_code(0);
        assert_eq!(server.received_count(), 3);
        // A clean run leaves no journal behind (nor, then, a password in one).
        assert!(!campaign.path().join("delivery-log.csv.inflight").exists());
        assert_nowhere(&run, &campaign);
        let report = campaign.run(&["report"]);
        assert_nowhere(&report, &campaign);
    }
}

#[test]
fn a_refused_password_is_not_shown_either() {
    // The relay expects another password, so it refuses the one envoi has.
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_auth(USER, "the-relay-wants-this-one"),
    );
    let campaign = RelayConfig::starttls(&server).campaign(RECIPIENTS);
    let check = run_with_password(&campaign, &["check", "--smtp"]);
    check.expect_code(2).expect_stdout("refused to log in");
    assert_nowhere(&check, &campaign);
    let run = run_with_password(&campaign, &["send", "--yes"]);
    run.expect_code(3).expect_stderr("refused to log in");
    assert_eq!(server.received_count(), 0);
    assert!(server.auth_failures() >= 2);
    assert!(!campaign.log_rows().is_empty());
    assert_nowhere(&run, &campaign);
}

#[test]
fn a_password_from_password_command_is_shown_nowhere() {
    // The secret lives outside the campaign folder; envoi.toml names only the command.
    let vault = tempfile::tempdir().unwrap();
    let secret_file = vault.path().join("smtp-password");
    std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();
    let command = format!("cat {}", secret_file.display());

    let server = starttls_server(Faults::none());
    let campaign = RelayConfig::starttls(&server)
        .password_command(&command)
        .campaign(RECIPIENTS);
    let run = campaign.run_env(&["send", "--yes"], &VERBOSE);
    run.expect_code(0);
    assert_eq!(server.received_count(), 2);
    assert_nowhere(&run, &campaign);

    // And when the relay refuses it.
    let refusing = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_auth(USER, "the-relay-wants-this-one"),
    );
    let campaign = RelayConfig::starttls(&refusing)
        .password_command(&command)
        .campaign(RECIPIENTS);
    let run = campaign.run_env(&["send", "--yes"], &VERBOSE);
    run.expect_code(3);
    assert_eq!(refusing.received_count(), 0);
    assert_nowhere(&run, &campaign);
}

#[test]
fn help_does_not_show_the_password() {
    let campaign = TestCampaign::new();
    for args in [
        &["--help"][..],
        &["send", "--help"],
        &["check", "--help"],
        &["-h"],
        &["send", "-h"],
    ] {
        let run = run_with_password(&campaign, args);
        run.expect_code(0).expect_stdout("Usage:");
        assert_nowhere(&run, &campaign);
    }
}
