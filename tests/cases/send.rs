//! `envoi send` against the in-process SMTP server: the happy paths.

use crate::support::campaign::{RECIPIENTS, TestCampaign};
use crate::support::pki::{self, CertKind};
use crate::support::relay::{
    PASSWORD, PASSWORD_ENV, RelayConfig, USER, assert_sent_means_received_once, plain_server,
    recipients, starttls_server,
};
use crate::support::smtp_server::{Faults, ServerConfig, SmtpServer, Tls};

#[test]
fn sends_every_letter_once_and_logs_it() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = TestCampaign::with_port(server.port());
    campaign.envoi(&["send", "--yes"]).assert().code(0);
    assert_eq!(server.received_count(), 2);
    let rows = campaign.log_rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.status == "sent" && r.code == "250 2.0.0"),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| r.detail.contains("queued as")),
        "{rows:?}"
    );

    // A second run sends nothing again.
    campaign.envoi(&["send", "--yes"]).assert().code(0);
    assert_eq!(server.received_count(), 2);
}

#[test]
fn starttls_and_auth_with_a_private_ca() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_auth("ombudsman@ombudsman.example", "s3cret-pässword"),
    );
    let campaign = TestCampaign::with_port(server.port());
    pki::write_ca_pem(&campaign.path().join("ca.pem")).unwrap();
    campaign.file(
        "envoi.toml",
        crate::support::campaign::config(server.port())
            .replace("host = \"127.0.0.1\"", "host = \"localhost\"")
            .replace("security = \"none\"", "security = \"starttls\"\nusername = \"ombudsman@ombudsman.example\"\nca_file = \"ca.pem\""),
    );
    let out = campaign
        .envoi(&["send", "--yes"])
        .env("ENVOI_SMTP_PASSWORD", "s3cret-pässword")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(server.received_count(), 2);
}

/// Sends the default campaign through `config` and checks that both letters arrived, over
/// TLS, after one successful login per connection, with `mechanism` (as the transcript shows).
fn sends_securely(server: &SmtpServer, config: RelayConfig, mechanism: &str, env: &[(&str, &str)]) {
    let campaign = config.campaign(RECIPIENTS);
    let run = campaign.run_env(&["send", "--yes"], env);
    run.expect_code(0);
    assert_eq!(server.received_count(), 2, "{run}");
    assert_eq!(server.auth_failures(), 0);
    assert_eq!(server.auth_successes(), server.connections_opened());
    assert!(
        server
            .commands()
            .iter()
            .filter(|c| c.starts_with("AUTH"))
            .all(|c| c.starts_with(&format!("AUTH {mechanism}"))),
        "{:?}",
        server.commands()
    );
    let rows = campaign.log_rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.status == "sent" && r.attempts == 1),
        "{rows:?}"
    );
    assert_sent_means_received_once(&campaign, server);
}

#[test]
fn starttls_with_auth_plain_login_and_xoauth2() {
    for (auth, mechanism) in [
        ("plain", "PLAIN"),
        ("login", "LOGIN"),
        ("xoauth2", "XOAUTH2"),
    ] {
        let server = starttls_server(Faults::none());
        let config = RelayConfig::starttls(&server).auth(auth);
        sends_securely(&server, config, mechanism, &[(PASSWORD_ENV, PASSWORD)]);
        // STARTTLS came before any credentials on every connection.
        for c in 1..=server.connections_opened() {
            let transcript = server.transcript(c);
            let tls = transcript.iter().position(|l| l == "STARTTLS");
            let auth = transcript.iter().position(|l| l.starts_with("AUTH"));
            assert!(tls.is_some() && tls < auth, "{transcript:?}");
        }
    }
}

#[test]
fn implicit_tls_with_the_default_mechanism() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::Implicit)
            .with_auth(USER, PASSWORD),
    );
    let config = RelayConfig::implicit_tls(&server);
    sends_securely(&server, config, "PLAIN", &[(PASSWORD_ENV, PASSWORD)]);
    assert!(!server.commands().iter().any(|c| c == "STARTTLS"));
}

#[test]
fn password_from_password_command() {
    let server = starttls_server(Faults::none());
    let config = RelayConfig::starttls(&server).password_command(&format!("printf {PASSWORD}"));
    sends_securely(&server, config, "PLAIN", &[]);
}

/// The list form runs the program named exactly as written: a backslash in its path (as in
/// every Windows path) is kept, where the one-line form would read it as an escape.
#[cfg(unix)]
#[test]
fn password_command_as_a_list_of_words_keeps_backslashes() {
    use std::os::unix::fs::PermissionsExt;
    let server = starttls_server(Faults::none());
    let config = RelayConfig::starttls(&server);
    let campaign = config.campaign(RECIPIENTS);
    let script = campaign.path().join("C:\\Tools").join("pw.sh");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(&script, "#!/bin/sh\nprintf '%s\\n' \"$1\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let toml = config.toml().replace(
        "[send]",
        &format!(
            "password_command = ['{}', '{PASSWORD}']\n\n[send]",
            script.display()
        ),
    );
    campaign.file("envoi.toml", toml);
    let run = campaign.run(&["send", "--yes"]);
    run.expect_code(0);
    assert_eq!(server.received_count(), 2, "{run}");
    assert_eq!(server.auth_successes(), server.connections_opened());
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[test]
fn wrong_password_stops_the_run_and_sends_nothing() {
    let server = starttls_server(Faults::none());
    let campaign = RelayConfig::starttls(&server).campaign(&recipients(5));
    let run = campaign.run_env(&["send", "--yes"], &[(PASSWORD_ENV, "not-the-password")]);
    run.expect_code(3)
        .expect_stderr("refused to log in as \"ombudsman@ombudsman.example\"")
        .expect_stderr("535 5.7.8");
    assert_eq!(server.received_count(), 0);
    assert!(server.auth_failures() >= 1);
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
    // The letters tried say why; the others are not in the log, so the next run sends them all.
    let rows = campaign.log_rows();
    assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row.status, "failed", "{row:?}");
        assert_eq!(row.code, "535 5.7.8", "{row:?}");
        assert!(
            row.detail.contains("check the user name and password"),
            "{row:?}"
        );
    }
    campaign.send(&[]).expect_code(0);
    assert_eq!(server.received_count(), 5);
    assert_eq!(campaign.count_last("sent"), 5);
    assert_sent_means_received_once(&campaign, &server);
}

#[test]
fn check_smtp_logs_in_without_sending() {
    let server = starttls_server(Faults::none());
    let campaign = RelayConfig::starttls(&server).campaign(RECIPIENTS);
    campaign
        .run_env(&["check", "--smtp"], &[(PASSWORD_ENV, PASSWORD)])
        .expect_code(0)
        .expect_stdout("relay: connected to localhost:")
        .expect_stdout("encrypted, logged in");
    assert_eq!(server.auth_successes(), 1);

    let run = campaign.run_env(&["check", "--smtp"], &[(PASSWORD_ENV, "wrong")]);
    run.expect_code(2)
        .expect_stdout("refused to log in")
        .expect_stdout("535 5.7.8");
    assert_eq!(server.auth_failures(), 1);
    assert_eq!(server.received_count(), 0);
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
    assert!(!campaign.path().join("delivery-log.csv").exists());
}

#[test]
fn security_none_with_a_username_is_refused() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server)
        .username(USER)
        .campaign(RECIPIENTS);
    for args in [&["check"][..], &["check", "--smtp"], &["send", "--yes"]] {
        campaign
            .run_env(args, &[(PASSWORD_ENV, PASSWORD)])
            .expect_code(2)
            .expect_stdout_or_stderr("security = \"none\" sends the password unencrypted");
    }
    assert_eq!(server.connections_opened(), 0);
    assert_eq!(server.received_count(), 0);
}

#[test]
fn a_relay_without_starttls_is_refused_clearly() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: false })
            .with_auth(USER, PASSWORD),
    );
    let campaign = RelayConfig::starttls(&server).campaign(RECIPIENTS);
    campaign
        .run_env(&["check", "--smtp"], &[(PASSWORD_ENV, PASSWORD)])
        .expect_code(2)
        .expect_stdout("does not offer STARTTLS");
    let run = campaign.send(&[]);
    run.expect_code(3).expect_stderr("does not offer STARTTLS");
    assert_eq!(server.received_count(), 0);
    assert_eq!(server.auth_successes() + server.auth_failures(), 0);
    assert!(
        !server
            .commands()
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL"))
    );
    for row in campaign.log_rows() {
        assert_eq!(row.status, "failed", "{row:?}");
        assert!(row.detail.contains("does not offer STARTTLS"), "{row:?}");
    }
}

#[test]
fn a_certificate_that_cannot_be_verified_stops_the_run() {
    for (cert, why) in [
        (
            CertKind::Untrusted,
            "the relay's certificate could not be verified: no authority this computer trusts signed it; if the relay uses a private CA or its own certificate, name that certificate (PEM) with ca_file",
        ),
        (CertKind::Expired, "the relay's certificate has expired"),
        (
            CertKind::WrongHost,
            "the relay's certificate is not issued for \"localhost\"",
        ),
    ] {
        let server = SmtpServer::start(
            ServerConfig::default()
                .with_tls(Tls::StartTls { advertise: true })
                .with_cert(cert)
                .with_auth(USER, PASSWORD),
        );
        let campaign = RelayConfig::starttls(&server).campaign(&recipients(3));
        let run = campaign.send(&[]);
        run.expect_code(3).expect_stderr(&format!(
            "stopped: starting TLS with the relay localhost:{} (starttls) failed: {why}",
            server.port()
        ));
        assert_eq!(server.received_count(), 0, "{cert:?}");
        assert_eq!(server.auth_successes() + server.auth_failures(), 0);
        // Not retried: a trust problem does not fix itself. Each worker tried once at most.
        assert!(server.connections_opened() <= 2, "{cert:?}");
        let rows = campaign.log_rows();
        assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
        for row in &rows {
            assert_eq!(
                (row.status.as_str(), row.attempts),
                ("failed", 1),
                "{row:?}"
            );
            assert!(row.detail.contains(why), "{row:?}");
        }
    }

    // The same with implicit TLS, where the handshake comes before the greeting.
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::Implicit)
            .with_cert(CertKind::Expired)
            .with_auth(USER, PASSWORD),
    );
    let campaign = RelayConfig::implicit_tls(&server).campaign(RECIPIENTS);
    campaign
        .send(&[])
        .expect_code(3)
        .expect_stderr("the relay's certificate has expired");
    campaign
        .run_env(&["check", "--smtp"], &[(PASSWORD_ENV, PASSWORD)])
        .expect_code(2)
        .expect_stdout("the relay's certificate has expired");
    assert_eq!(server.received_count(), 0);
}

#[test]
fn without_a_terminal_send_needs_yes() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(RECIPIENTS);
    campaign
        .run(&["send"])
        .expect_code(2)
        .expect_stderr("add --yes to send");
    assert_eq!(server.connections_opened(), 0);
    assert!(campaign.log_rows().is_empty());
}
