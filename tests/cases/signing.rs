//! Signed letters (S/MIME and DKIM) through the in-process SMTP server, verified with
//! `openssl smime -verify`, `openssl cms -verify` and dkimpy; and every bad signing set-up
//! `check` and `send` refuse, with its message and exit code.

use crate::support::campaign::{TestCampaign, config};
use crate::support::run::{Run, run};
use crate::support::signing::{
    DOMAIN, OFFICE, P12_PASSWORD, SELECTOR, dkimpy_verify, openssl_verify, pki_bytes,
    published_record, tampered,
};
use crate::support::smtp_server::{ServerConfig, SmtpServer};

/// A campaign sending to `port` with the files `files` (name in the PKI folder → name in the
/// campaign) copied in and `signing` as its `[signing]` section.
fn signed_campaign(port: u16, signing: &str, files: &[(&str, &str)]) -> TestCampaign {
    let campaign = TestCampaign::with_port(port);
    for (from, to) in files {
        campaign.file(to, pki_bytes(from));
    }
    campaign.file(
        "envoi.toml",
        format!("{}\n[signing]\n{signing}\n", config(port)),
    );
    campaign
}

const P12_AND_RSA_DKIM: &str = "smime = \"certs/office.p12\"\ndkim_domain = \"ombudsman.example\"\ndkim_selector = \"envoi\"\ndkim_key = \"certs/dkim.pem\"";

/// `envoi check`, then `envoi <args>`, with the PKCS#12 password in the environment.
fn envoi(campaign: &TestCampaign, args: &[&str]) -> Run {
    let mut cmd = campaign.envoi(args);
    cmd.env("ENVOI_SMIME_PASSWORD", P12_PASSWORD);
    let run = run(cmd);
    assert!(
        !run.stdout.contains(P12_PASSWORD) && !run.stderr.contains(P12_PASSWORD),
        "the password shows in the output:\n{run}"
    );
    run
}

/// Every delivered message verifies with all three verifiers; a tampered copy with none.
fn assert_all_verify(messages: &[Vec<u8>], check_output: &str, smime: bool) {
    assert!(!messages.is_empty(), "nothing was delivered");
    let (name, record) = published_record(check_output);
    assert_eq!(name, format!("{SELECTOR}._domainkey.{DOMAIN}"));
    for message in messages {
        let text = String::from_utf8_lossy(message);
        let forged = tampered(message);
        if smime {
            for tool in ["smime", "cms"] {
                let verdict = openssl_verify(tool, message);
                assert!(
                    verdict.ok,
                    "openssl {tool} -verify failed: {}\n{text}",
                    verdict.output
                );
                let verdict = openssl_verify(tool, &forged);
                assert!(
                    !verdict.ok,
                    "openssl {tool} -verify accepted a tampered letter"
                );
            }
        }
        let verdict = dkimpy_verify(message, &name, &record);
        assert!(verdict.ok, "dkimpy failed: {}\n{text}", verdict.output);
        assert!(
            !dkimpy_verify(&forged, &name, &record).ok,
            "dkimpy accepted a tampered letter"
        );
    }
}

/// What a signed campaign's `check` printed and what the server received from its `send`.
struct Sent {
    check: Run,
    messages: Vec<Vec<u8>>,
}

/// Runs `check` (which must pass) and `send --yes` plus `options` on a two-letter campaign
/// signed with `signing` and `files`, after `prepare`; every delivered letter must verify with
/// every verifier (`smime`: S/MIME ones too) and a tampered copy with none.
fn send_signed(
    signing: &str,
    files: &[(&str, &str)],
    options: &[&str],
    prepare: impl FnOnce(&TestCampaign),
    smime: bool,
) -> Sent {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = signed_campaign(server.port(), signing, files);
    prepare(&campaign);
    let check = envoi(&campaign, &["check"]);
    check.expect_code(0);
    let send: Vec<&str> = ["send", "--yes"].iter().chain(options).copied().collect();
    envoi(&campaign, &send).expect_code(0);
    let messages: Vec<Vec<u8>> = server.received().into_iter().map(|r| r.data).collect();
    assert_eq!(messages.len(), 2, "letters delivered");
    assert_all_verify(&messages, &check.stdout, smime);
    Sent { check, messages }
}

const DKIM_ONLY: &str =
    "dkim_domain = \"ombudsman.example\"\ndkim_selector = \"envoi\"\ndkim_key = \"certs/dkim.pem\"";

#[test]
fn smime_and_dkim_signed_letters_with_attachments_verify_as_delivered() {
    let with_attachment = |campaign: &TestCampaign| {
        campaign
            .file(
                "templates/letter.hbs",
                crate::support::campaign::LETTER.replace(
                    "+++\n{{salutation}}",
                    "attachments = [\"attachments/statement.pdf\"]\n+++\n{{salutation}}",
                ),
            )
            .file(
                "attachments/statement.pdf",
                b"%PDF-1.7\n\x80\x81binary\x00 statement\n",
            );
    };
    let sent = send_signed(
        P12_AND_RSA_DKIM,
        &[
            ("valid.p12", "certs/office.p12"),
            ("dkim-rsa.pem", "certs/dkim.pem"),
        ],
        &[],
        with_attachment,
        true,
    );
    sent.check
        .expect_stdout("S/MIME: certs/office.p12 (certificate \"EMAIL=ombudsman@ombudsman.example,CN=Commissioner for Human Rights\"")
        .expect_stdout("issued by \"CN=envoi test SMIME CA\"")
        .expect_stdout("valid until 20")
        .expect_stdout("envoi._domainkey.ombudsman.example TXT \"v=DKIM1; k=rsa; p=MII");
    for message in &sent.messages {
        let text = String::from_utf8_lossy(message);
        let (head, _) = text.split_once("\r\n\r\n").expect("headers");
        assert!(
            head.starts_with("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;"),
            "{head}"
        );
        assert!(
            head.contains("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n micalg=sha-256;"),
            "{head}"
        );
        for outer in [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
        ] {
            let header = format!("\r\n{outer}: ");
            assert!(
                head.contains(&header),
                "{outer} is not on the outer message:\n{head}"
            );
        }
        assert!(text.contains("Content-Type: multipart/mixed;"), "{text}");
        assert!(text.contains("filename=\"statement.pdf\""), "{text}");
    }
}

#[test]
fn legacy_pkcs12_and_ed25519_dkim_verify_too() {
    let sent = send_signed(
        P12_AND_RSA_DKIM,
        &[
            ("valid-legacy.p12", "certs/office.p12"),
            ("dkim-ed25519.pem", "certs/dkim.pem"),
        ],
        &[],
        |_| {},
        true,
    );
    sent.check.expect_stdout("TXT \"v=DKIM1; k=ed25519; p=");
    let first = String::from_utf8_lossy(&sent.messages[0]).into_owned();
    assert!(
        first.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"),
        "{first}"
    );
}

#[test]
fn pem_key_and_certificate_sign_test_copies() {
    let sent = send_signed(
        &format!(
            "smime_cert = \"certs/office.pem\"\nsmime_key = \"certs/office.key\"\n{DKIM_ONLY}"
        ),
        &[
            ("valid-chain.pem", "certs/office.pem"),
            ("valid.key", "certs/office.key"),
            ("dkim-rsa.pem", "certs/dkim.pem"),
        ],
        &["--test-to", "desk@ombudsman.example"],
        |_| {},
        true,
    );
    let first = String::from_utf8_lossy(&sent.messages[0]).into_owned();
    assert!(first.contains("X-Envoi-Test: test copy"), "{first}");
}

#[test]
fn dkim_alone_signs_the_unwrapped_letter() {
    let sent = send_signed(
        DKIM_ONLY,
        &[("dkim-rsa.pem", "certs/dkim.pem")],
        &[],
        |_| {},
        false,
    );
    let first = String::from_utf8_lossy(&sent.messages[0]).into_owned();
    assert!(!first.contains("multipart/signed"), "{first}");
    assert!(
        first.contains("Content-Type: multipart/alternative;"),
        "{first}"
    );
}

/// `check` and `send` refuse `signing` with `files`, with one line naming `place` and saying
/// `what`, exit 2, and nothing sent.
#[track_caller]
fn refused(signing: &str, files: &[(&str, &str)], password: Option<&str>, place: &str, what: &str) {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = signed_campaign(server.port(), signing, files);
    for args in [&["check"][..], &["send", "--yes"]] {
        let mut cmd = campaign.envoi(args);
        if let Some(password) = password {
            cmd.env("ENVOI_SMIME_PASSWORD", password);
        }
        let run = run(cmd);
        run.expect_code(2);
        let line = run
            .stdout
            .lines()
            .chain(run.stderr.lines())
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line says {what:?}:\n{run}"));
        // A problem found while checking the set-up, or the one error that stopped `send`.
        let problem = line.strip_prefix("error: ").unwrap_or(line);
        assert!(
            problem.starts_with(&format!("{place}: ")),
            "{line:?} does not name {place:?}"
        );
        for secret in [P12_PASSWORD, "wrong-password-xyz"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "password in output:\n{run}"
            );
        }
    }
    assert_eq!(server.received_count(), 0, "a letter went out");
}

const P12: &str = "smime = \"certs/office.p12\"";

#[test]
fn a_missing_or_unreadable_file_is_named() {
    refused(
        P12,
        &[],
        Some(P12_PASSWORD),
        "certs/office.p12",
        "cannot be read",
    );
    refused(
        "smime = \"certs/office.p12\"",
        &[("valid.pem", "certs/office.p12")],
        Some(P12_PASSWORD),
        "certs/office.p12",
        "is not a PKCS#12 file envoi can read",
    );
}

#[test]
fn a_wrong_or_missing_password_is_named_and_never_shown() {
    refused(
        P12,
        &[("valid.p12", "certs/office.p12")],
        Some("wrong-password-xyz"),
        "certs/office.p12",
        "the password is wrong",
    );
    refused(
        P12,
        &[("valid.p12", "certs/office.p12")],
        None,
        "certs/office.p12",
        "is protected by a password: set ENVOI_SMIME_PASSWORD",
    );
    refused(
        "smime = \"certs/office.p12\"\npassword_command = \"printf wrong-password-xyz\"",
        &[("valid.p12", "certs/office.p12")],
        None,
        "certs/office.p12",
        "the password is wrong",
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate() {
    refused(
        "smime_cert = \"certs/office.pem\"\nsmime_key = \"certs/office.key\"",
        &[
            ("valid.pem", "certs/office.pem"),
            ("other.key", "certs/office.key"),
        ],
        None,
        "certs/office.pem",
        "the private key does not belong to the certificate",
    );
}

#[test]
fn an_expired_certificate_and_one_that_expires_during_the_run() {
    refused(
        P12,
        &[("expired.p12", "certs/office.p12")],
        Some(P12_PASSWORD),
        "certs/office.p12",
        "expired on",
    );
    // Valid for two days: the run's margin of a week reaches past it.
    refused(
        P12,
        &[("short.p12", "certs/office.p12")],
        Some(P12_PASSWORD),
        "certs/office.p12",
        "expires on",
    );
}

#[test]
fn a_certificate_for_another_address_or_not_for_email() {
    refused(
        P12,
        &[("other.p12", "certs/office.p12")],
        Some(P12_PASSWORD),
        "certs/office.p12",
        &format!("is for someone@other.example, not for the From address {OFFICE}"),
    );
    refused(
        P12,
        &[("server.p12", "certs/office.p12")],
        Some(P12_PASSWORD),
        "certs/office.p12",
        "lacks emailProtection",
    );
}

#[test]
fn ecdsa_and_encrypted_keys_are_refused_clearly() {
    refused(
        "smime_cert = \"certs/office.pem\"\nsmime_key = \"certs/office.key\"",
        &[
            ("valid.pem", "certs/office.pem"),
            ("ecdsa.key", "certs/office.key"),
        ],
        None,
        "certs/office.key",
        "holds an ECDSA key, which envoi cannot sign with",
    );
    let dkim = DKIM_ONLY;
    refused(
        dkim,
        &[("ecdsa.key", "certs/dkim.pem")],
        None,
        "certs/dkim.pem",
        "holds an ECDSA key",
    );
    refused(
        dkim,
        &[("encrypted.key", "certs/dkim.pem")],
        None,
        "certs/dkim.pem",
        "holds an encrypted PEM private key",
    );
    refused(
        dkim,
        &[("valid.pem", "certs/dkim.pem")],
        None,
        "certs/dkim.pem",
        "holds no unencrypted PEM private key",
    );
}

#[test]
fn dkim_settings_must_be_complete_and_cover_the_from_domain() {
    refused(
        "dkim_domain = \"other.example\"\ndkim_selector = \"envoi\"\ndkim_key = \"certs/dkim.pem\"",
        &[("dkim-rsa.pem", "certs/dkim.pem")],
        None,
        "envoi.toml, [signing] dkim_domain",
        "dkim_domain \"other.example\" is neither the From address's domain (ombudsman.example) nor a parent of it",
    );
    refused(
        "dkim_domain = \"ombudsman.example\"\ndkim_key = \"certs/dkim.pem\"",
        &[("dkim-rsa.pem", "certs/dkim.pem")],
        None,
        "envoi.toml, [signing] dkim_selector",
        "dkim_selector is missing",
    );
    refused(
        "smime = \"certs/office.p12\"\nsmime_cert = \"certs/office.pem\"",
        &[],
        None,
        "envoi.toml, [signing] smime",
        "not both",
    );
}
