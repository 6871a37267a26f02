//! `envoi send` against the in-process SMTP server: the happy paths.

use crate::support::campaign::TestCampaign;
use crate::support::pki;
use crate::support::smtp_server::{ServerConfig, SmtpServer, Tls};

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
