//! TLS and relay trust: a relay whose certificate cannot be trusted, and a relay that stops
//! offering STARTTLS, are refused with a clear error before any letter (or password) is sent,
//! for STARTTLS and implicit TLS alike.

use crate::support::campaign::{TestCampaign, config};
use crate::support::pki::{self, CertKind};
use crate::support::smtp_server::{ServerConfig, SmtpServer, Tls};

const USER: &str = "ombudsman@ombudsman.example";
const PASSWORD: &str = "tls-trust-pässword";

/// A campaign that trusts the test CA and logs in, against `server` as `localhost`.
fn campaign(server: &SmtpServer, security: &str) -> TestCampaign {
    let campaign = TestCampaign::with_port(server.port());
    pki::write_ca_pem(&campaign.path().join("ca.pem")).unwrap();
    campaign.file(
        "envoi.toml",
        config(server.port())
            .replace("host = \"127.0.0.1\"", "host = \"localhost\"")
            .replace(
                "security = \"none\"",
                &format!("security = \"{security}\"\nusername = \"{USER}\"\nca_file = \"ca.pem\""),
            ),
    );
    campaign
}

/// Runs `send` and checks that it was refused with `expected` in its words, and that the relay
/// got no letter, no login and no MAIL command.
fn refused(server: &SmtpServer, campaign: &TestCampaign, expected: &str) {
    let out = campaign
        .envoi(&["send", "--yes"])
        .env("ENVOI_SMTP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let text = crate::support::run::output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.to_lowercase().contains(&expected.to_lowercase()),
        "expected {expected:?} in:\n{text}"
    );
    assert!(
        !text.contains(PASSWORD),
        "the password was printed:\n{text}"
    );
    assert_eq!(server.received_count(), 0, "a letter went out: {text}");
    assert_eq!(
        server.auth_successes() + server.auth_failures(),
        0,
        "{text}"
    );
    let commands = server.commands();
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("MAIL") || c.starts_with("AUTH")),
        "{commands:?}"
    );
    // Nothing is logged as sent; what was attempted is logged as failed, with the reason.
    let rows = campaign.log_rows();
    assert!(rows.iter().all(|r| r.status == "failed"), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.detail.to_lowercase().contains(&expected.to_lowercase())),
        "{rows:?}"
    );
}

fn server(tls: Tls, cert: CertKind) -> SmtpServer {
    SmtpServer::start(
        ServerConfig::default()
            .with_tls(tls)
            .with_cert(cert)
            .with_auth(USER, PASSWORD),
    )
}

const STARTTLS: Tls = Tls::StartTls { advertise: true };

#[test]
fn a_valid_certificate_is_accepted_with_both_kinds_of_tls() {
    // The control: the same setup with a good certificate sends.
    for (tls, security) in [(STARTTLS, "starttls"), (Tls::Implicit, "tls")] {
        let server = server(tls, CertKind::Valid);
        let campaign = campaign(&server, security);
        let out = campaign
            .envoi(&["send", "--yes"])
            .env("ENVOI_SMTP_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(server.received_count(), 2);
    }
}

#[test]
fn an_untrusted_certificate_is_refused_starttls() {
    let server = server(STARTTLS, CertKind::Untrusted);
    refused(&server, &campaign(&server, "starttls"), "certificate");
}

#[test]
fn an_untrusted_certificate_is_refused_implicit_tls() {
    let server = server(Tls::Implicit, CertKind::Untrusted);
    refused(&server, &campaign(&server, "tls"), "certificate");
}

#[test]
fn an_expired_certificate_is_refused_starttls() {
    let server = server(STARTTLS, CertKind::Expired);
    refused(&server, &campaign(&server, "starttls"), "certificate");
}

#[test]
fn an_expired_certificate_is_refused_implicit_tls() {
    let server = server(Tls::Implicit, CertKind::Expired);
    refused(&server, &campaign(&server, "tls"), "certificate");
}

#[test]
fn a_certificate_for_another_host_is_refused_starttls() {
    let server = server(STARTTLS, CertKind::WrongHost);
    refused(&server, &campaign(&server, "starttls"), "certificate");
}

#[test]
fn a_certificate_for_another_host_is_refused_implicit_tls() {
    let server = server(Tls::Implicit, CertKind::WrongHost);
    refused(&server, &campaign(&server, "tls"), "certificate");
}

#[test]
fn a_relay_that_stops_offering_starttls_is_refused() {
    // A downgrade (a man in the middle stripping STARTTLS): envoi must not fall back to plain
    // text, nor send the password in the clear.
    let server = server(Tls::StartTls { advertise: false }, CertKind::Valid);
    refused(
        &server,
        &campaign(&server, "starttls"),
        "does not offer STARTTLS",
    );
}

#[test]
fn a_plain_text_relay_is_refused_when_starttls_is_required() {
    let server = server(Tls::None, CertKind::Valid);
    refused(
        &server,
        &campaign(&server, "starttls"),
        "does not offer STARTTLS",
    );
}
