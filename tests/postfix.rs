//! Interop through a real Postfix relay: envoi sends the campaign bundled at the repository
//! root, and every letter Postfix delivered is read back and checked against the campaign
//! files and the delivery log.
//!
//! Built only with the `postfix` feature, which `.ci/postfix-interop` turns on after it has
//! started a Postfix instance on loopback that delivers every message into one Maildir. The
//! script tells this test where through `ENVOI_POSTFIX_PORT` and `ENVOI_POSTFIX_MAILDIR`;
//! without them the test fails, because being asked to run it without a relay is a broken CI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::{Message, MessageParser, MimeHeaders};

/// How long Postfix may take to deliver everything once envoi has finished (it usually needs
/// well under a second; the margin is for a loaded CI machine).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The tests share one Maildir and each reads what it holds: one at a time.
static MAILDIR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What the bundled campaign should have produced for one recipients.csv row.
#[derive(Debug)]
struct Letter {
    row: usize,
    email: String,
    /// The To display name: the `name` column, or the organisation when it is empty.
    to_name: String,
    cc: Vec<String>,
    salutation: String,
    subject: String,
}

impl Letter {
    /// To, then Cc: the addresses Postfix delivers a copy of this letter to.
    fn envelope(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.email.as_str()).chain(self.cc.iter().map(String::as_str))
    }
}

/// The last delivery-log row for one recipient.
#[derive(Debug, Clone)]
struct LogRow {
    row: String,
    status: String,
    code: String,
    detail: String,
    message_id: String,
}

#[test]
fn bundled_campaign_goes_through_postfix_intact() {
    let _alone = MAILDIR.lock().unwrap_or_else(|e| e.into_inner());
    let port = required_env("ENVOI_POSTFIX_PORT");
    let maildir = PathBuf::from(required_env("ENVOI_POSTFIX_MAILDIR"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));

    let letters = expected_letters(repo);
    let (from_name, from_address) = expected_from(repo);
    let statement = statement_paragraphs(repo);
    let envelope_count: usize = letters.iter().map(|l| l.envelope().count()).sum();
    assert!(
        letters.iter().any(|l| !l.to_name.is_ascii()),
        "the bundled recipients.csv should hold non-ASCII names, which this test checks are decoded exactly"
    );
    assert!(
        letters.iter().any(|l| !l.cc.is_empty()),
        "the bundled recipients.csv should hold Cc rows, which this test checks are delivered"
    );
    assert_eq!(
        maildir_files(&maildir).len(),
        0,
        "{} should be empty before the test sends; .ci/postfix-interop empties it",
        maildir.display()
    );

    let campaign = tempfile::tempdir().expect("temp dir");
    for entry in ["envoi.toml", "recipients.csv", "templates", "attachments"] {
        let source = repo.join(entry);
        if source.exists() {
            copy_recursively(&source, &campaign.path().join(entry));
        }
    }

    println!(
        "sending {} letters ({envelope_count} copies with Cc) through Postfix on 127.0.0.1:{port}",
        letters.len()
    );
    let started = Instant::now();
    let mut envoi = Command::new(env!("CARGO_BIN_EXE_envoi"));
    for var in [
        "ENVOI_SMTP_HOST",
        "ENVOI_SMTP_PORT",
        "ENVOI_SMTP_SECURITY",
        "ENVOI_SMTP_USER",
        "ENVOI_SMTP_PASSWORD",
    ] {
        envoi.env_remove(var);
    }
    let output = envoi
        .arg("--dir")
        .arg(campaign.path())
        .args(["--smtp-port", &port, "send", "--yes"])
        .stdin(Stdio::null())
        .output()
        .expect("run envoi");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "envoi send failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!(
        "envoi send finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let log = last_log_rows(&campaign.path().join("delivery-log.csv"));
    let files = wait_for_deliveries(&maildir, envelope_count);
    let raw: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read delivered message"))
        .collect();
    let mut delivered: HashMap<String, Vec<Message>> = HashMap::new();
    for (file, bytes) in files.iter().zip(&raw) {
        let message = MessageParser::default()
            .parse(bytes)
            .unwrap_or_else(|| panic!("{} is not a parseable message", file.display()));
        // Postfix's virtual delivery agent names the envelope recipient of each copy.
        let recipient = message
            .header_raw("Delivered-To")
            .unwrap_or_else(|| panic!("{} has no Delivered-To header", file.display()))
            .trim()
            .to_lowercase();
        delivered.entry(recipient).or_default().push(message);
    }

    for letter in &letters {
        let logged = log.get(&letter.email).unwrap_or_else(|| {
            panic!(
                "row {}: {} is not in the delivery log",
                letter.row, letter.email
            )
        });
        let what = format!("row {} ({})", letter.row, letter.email);
        assert_eq!(logged.row, letter.row.to_string(), "{what}: log row number");
        assert_eq!(
            logged.status, "sent",
            "{what}: log status; detail: {}",
            logged.detail
        );
        assert_eq!(logged.code, "250 2.0.0", "{what}: log code");
        let queue_id = queue_id(&logged.detail).unwrap_or_else(|| {
            panic!(
                "{what}: no Postfix queue id in the log detail {:?}",
                logged.detail
            )
        });

        for recipient in letter.envelope() {
            let copies = delivered
                .remove(&recipient.to_lowercase())
                .unwrap_or_default();
            let what = format!("{what}, copy for {recipient}");
            assert_eq!(copies.len(), 1, "{what}: number of copies delivered");
            let message = &copies[0];

            let to = message.to().and_then(|a| a.first()).expect("To header");
            assert_eq!(
                to.address(),
                Some(letter.email.as_str()),
                "{what}: To address"
            );
            assert_eq!(to.name(), Some(letter.to_name.as_str()), "{what}: To name");
            let cc: Vec<&str> = message
                .cc()
                .map(|a| a.iter().filter_map(|a| a.address()).collect())
                .unwrap_or_default();
            assert_eq!(cc, letter.cc, "{what}: Cc addresses");
            let from = message.from().and_then(|a| a.first()).expect("From header");
            assert_eq!(
                from.address(),
                Some(from_address.as_str()),
                "{what}: From address"
            );
            assert_eq!(from.name(), Some(from_name.as_str()), "{what}: From name");
            assert_eq!(
                message.subject(),
                Some(letter.subject.as_str()),
                "{what}: Subject"
            );
            assert_eq!(
                message.message_id().map(|id| format!("<{id}>")).as_deref(),
                Some(logged.message_id.as_str()),
                "{what}: Message-ID against the delivery log"
            );
            let received_id = message.received().and_then(|r| r.id.as_deref());
            assert_eq!(
                received_id,
                Some(queue_id),
                "{what}: the queue id in Postfix's Received header against the log detail"
            );

            let text = normalise(&message.body_text(0).expect("text part"));
            assert!(
                text.contains(&normalise(&letter.salutation)),
                "{what}: the text part lacks the salutation {:?}",
                letter.salutation
            );
            for paragraph in &statement {
                assert!(
                    text.contains(paragraph),
                    "{what}: the text part lacks the statement paragraph {paragraph:?}"
                );
            }
            let html = message
                .html_part(0)
                .filter(|p| {
                    p.content_type()
                        .is_some_and(|t| t.ctype() == "text" && t.subtype() == Some("html"))
                })
                .and_then(|p| p.text_contents())
                .unwrap_or_else(|| panic!("{what}: no text/html part"));
            assert!(
                normalise(html).contains(&escape_html(&statement[0])),
                "{what}: the HTML part lacks the statement"
            );
        }
    }
    let unexpected: Vec<&String> = delivered.keys().collect();
    assert!(
        unexpected.is_empty(),
        "Postfix delivered letters to addresses the campaign does not name: {unexpected:?}"
    );
    println!(
        "all {envelope_count} copies of {} letters delivered and checked",
        letters.len()
    );
}

/// The value of an environment variable the CI script sets, or a failure saying how to run.
fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the Postfix relay that `bash .ci/postfix-interop` starts (run that script, as root, instead of cargo test --features postfix)"
        )
    })
}

/// One [`Letter`] per recipients.csv row, with the subject of the template its language picks.
fn expected_letters(repo: &Path) -> Vec<Letter> {
    let mut reader = csv::Reader::from_path(repo.join("recipients.csv")).expect("recipients.csv");
    let headers = reader.headers().expect("recipients.csv header").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("recipients.csv has no {name} column"))
    };
    let (email, organisation, name, salutation, language, cc) = (
        column("email"),
        column("organisation"),
        column("name"),
        column("salutation"),
        column("language"),
        column("cc"),
    );
    reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            let record = record.expect("recipients.csv row");
            let cell = |i: usize| record.get(i).unwrap_or("").trim().to_owned();
            let to_name = match cell(name) {
                n if n.is_empty() => cell(organisation),
                n => n,
            };
            Letter {
                // The header is row 1, as a spreadsheet shows it.
                row: i + 2,
                email: cell(email),
                to_name,
                cc: cell(cc)
                    .split([',', ';'])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
                salutation: cell(salutation),
                subject: template_subject(repo, &cell(language)),
            }
        })
        .collect()
}

/// The subject in the front matter of `letter.<lang>.hbs`, or of `letter.hbs` if there is none.
fn template_subject(repo: &Path, language: &str) -> String {
    let localised = repo.join(format!("templates/letter.{language}.hbs"));
    let path = if !language.is_empty() && localised.exists() {
        localised
    } else {
        repo.join("templates/letter.hbs")
    };
    let template = std::fs::read_to_string(&path).expect("letter template");
    let front = template
        .strip_prefix("+++\n")
        .and_then(|t| t.split_once("\n+++"))
        .map(|(front, _)| front)
        .unwrap_or_else(|| panic!("{} has no +++ front matter", path.display()));
    let table: toml::Table = toml::from_str(front).expect("front matter is TOML");
    let subject = table["subject"]
        .as_str()
        .expect("subject is a string")
        .to_owned();
    assert!(
        !subject.contains("{{"),
        "{}: this test compares the subject literally, so it must not use template variables",
        path.display()
    );
    subject
}

/// The display name and address of `[sender] from` in envoi.toml.
fn expected_from(repo: &Path) -> (String, String) {
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo.join("envoi.toml")).expect("envoi.toml"))
            .expect("envoi.toml is TOML");
    let from = config["sender"]["from"].as_str().expect("[sender] from");
    let (name, address) = from.rsplit_once('<').expect("from is \"Name <address>\"");
    (
        name.trim().to_owned(),
        address.trim_end_matches('>').trim().to_owned(),
    )
}

/// The statement's plain paragraphs (no Markdown markup, so they read the same in the text
/// part), whitespace-normalised.
fn statement_paragraphs(repo: &Path) -> Vec<String> {
    let statement =
        std::fs::read_to_string(repo.join("templates/statement.md")).expect("statement.md");
    let paragraphs: Vec<String> = statement
        .split("\n\n")
        .map(normalise)
        .filter(|p| !p.is_empty() && !p.contains(['#', '*', '_', '\\', '[', ']', '<', '>', '`']))
        .collect();
    assert!(
        paragraphs.len() >= 3,
        "statement.md should have several plain paragraphs to look for, found {}",
        paragraphs.len()
    );
    paragraphs
}

/// Text with every run of whitespace made one space, so line endings and wrapping never matter.
fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The escaping the HTML part applies to text.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Postfix's queue id from its reply to the message data, "Ok: queued as 4TqX5v1Pz9z1xyZ".
fn queue_id(detail: &str) -> Option<&str> {
    let (_, rest) = detail.split_once("queued as ")?;
    rest.split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .filter(|id| !id.is_empty())
}

/// The last row of the delivery log for each email (the log is append-only; the last row is
/// the recipient's status).
fn last_log_rows(path: &Path) -> HashMap<String, LogRow> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = HashMap::new();
    for record in reader.records() {
        let record = record.expect("delivery log row");
        let cell = |i: usize| record.get(i).unwrap_or("").to_owned();
        // timestamp,row,email,organisation,status,code,detail,message_id,attempts
        rows.insert(
            cell(2),
            LogRow {
                row: cell(1),
                status: cell(4),
                code: cell(5),
                detail: cell(6),
                message_id: cell(7),
            },
        );
    }
    rows
}

/// Waits until the Maildir holds `expected` messages, then a moment longer so that a duplicate
/// delivery would show up too; returns the message files.
fn wait_for_deliveries(maildir: &Path, expected: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let count = maildir_files(maildir).len();
        if count >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {} s, Postfix has delivered {count} of {expected} messages into {}",
            DELIVERY_TIMEOUT.as_secs(),
            maildir.display()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(2));
    maildir_files(maildir)
}

/// The delivered messages: files in the Maildir's `new` and `cur` folders.
fn maildir_files(maildir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Copies a file, or a folder and everything in it.
fn copy_recursively(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("create folder");
        for entry in std::fs::read_dir(from).expect("read folder") {
            let entry = entry.expect("folder entry");
            copy_recursively(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

// Shared with tests/cases/signing.rs, which uses all of it.
#[path = "support/signing.rs"]
#[allow(dead_code)]
mod signing_pki;

/// Signed letters through Postfix: S/MIME and DKIM signatures still verify as Postfix delivered
/// them (with its Return-Path, Delivered-To and Received headers on top), test copies too, and a
/// tampered copy fails every verifier. Its letters go to `signing.example` addresses, which it
/// removes from the Maildir afterwards; [`MAILDIR`] keeps it from running beside the bundled
/// campaign's test, which counts every file there.
mod signing {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::signing_pki as pki;
    use pki::{P12_PASSWORD, dkimpy_verify, openssl_verify, pki_bytes, published_record, tampered};

    const LETTER: &str = "+++\nsubject = \"Signed statement for {{organisation}}\"\nattachments = [\"attachments/statement.pdf\"]\n+++\n{{salutation}},\n\nI have the honour to transmit to {{organisation}} the following statement, signed.\n";
    const RECIPIENTS: &str = "email,organisation,salutation\nregistry@signing.example,UN Registry,Dear Registrar\nembassy@signing.example,Embassy,Excellency\n";

    #[test]
    fn signed_letters_verify_as_postfix_delivered_them() {
        let _alone = super::MAILDIR.lock().unwrap_or_else(|e| e.into_inner());
        let port = super::required_env("ENVOI_POSTFIX_PORT");
        let maildir = PathBuf::from(super::required_env("ENVOI_POSTFIX_MAILDIR"));

        let campaign = tempfile::tempdir().expect("temp dir");
        let dir = campaign.path();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        write(
            "envoi.toml",
            format!("[campaign]\nid = \"signing-interop\"\n\n[sender]\nfrom = \"Commissioner for Human Rights <ombudsman@ombudsman.example>\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\n[signing]\nsmime = \"certs/office.p12\"\ndkim_domain = \"ombudsman.example\"\ndkim_selector = \"envoi\"\ndkim_key = \"certs/dkim.pem\"\n").as_bytes(),
        );
        write("templates/letter.hbs", LETTER.as_bytes());
        write("recipients.csv", RECIPIENTS.as_bytes());
        write(
            "attachments/statement.pdf",
            b"%PDF-1.7\n\x80\x81 signed statement\n",
        );
        write("certs/office.p12", &pki_bytes("valid.p12"));
        write("certs/dkim.pem", &pki_bytes("dkim-rsa.pem"));

        let check = envoi(dir, &["check"]);
        let (name, record) = published_record(&check);
        envoi(dir, &["send", "--yes"]);
        envoi(dir, &["send", "--yes", "--test-to", "desk@signing.example"]);

        let files = wait_for(&maildir, 4);
        for file in &files {
            let message = std::fs::read(file).expect("read delivered letter");
            let what = file.display();
            let text = String::from_utf8_lossy(&message);
            assert!(
                text.contains("Delivered-To: "),
                "{what} was not delivered by Postfix"
            );
            for tool in ["smime", "cms"] {
                let verdict = openssl_verify(tool, &message);
                assert!(
                    verdict.ok,
                    "{what}: openssl {tool} -verify: {}",
                    verdict.output
                );
                assert!(
                    !openssl_verify(tool, &tampered(&message)).ok,
                    "{what}: openssl {tool} accepted a tampered copy"
                );
            }
            let verdict = dkimpy_verify(&message, &name, &record);
            assert!(verdict.ok, "{what}: dkimpy: {}", verdict.output);
            assert!(
                !dkimpy_verify(&tampered(&message), &name, &record).ok,
                "{what}: dkimpy accepted a tampered copy"
            );
        }
        // Leave the Maildir as the bundled campaign's test expects it.
        for file in files {
            std::fs::remove_file(&file)
                .unwrap_or_else(|e| panic!("remove {}: {e}", file.display()));
        }
    }

    /// Runs envoi on the campaign with the PKCS#12 password; panics unless it exits 0 without
    /// showing the password. Returns its standard output.
    fn envoi(dir: &Path, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_envoi"))
            .arg("--dir")
            .arg(dir)
            .args(args)
            .env("ENVOI_SMIME_PASSWORD", P12_PASSWORD)
            .env_remove("ENVOI_SMTP_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("run envoi");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "envoi {args:?} failed:\n{stdout}\n{stderr}"
        );
        assert!(
            !stdout.contains(P12_PASSWORD) && !stderr.contains(P12_PASSWORD),
            "the password shows"
        );
        stdout
    }

    /// The Maildir files of this test's letters (to `signing.example`), once `expected` are
    /// there and a moment has passed in which a duplicate would have shown.
    fn wait_for(maildir: &Path, expected: usize) -> Vec<PathBuf> {
        let ours = || -> Vec<PathBuf> {
            super::maildir_files(maildir)
                .into_iter()
                .filter(|f| {
                    std::fs::read(f).is_ok_and(|m| {
                        String::from_utf8_lossy(&m)
                            .lines()
                            .take_while(|l| !l.is_empty())
                            .any(|l| {
                                l.starts_with("Delivered-To: ")
                                    && l.trim_end().ends_with("@signing.example")
                            })
                    })
                })
                .collect()
        };
        let deadline = Instant::now() + super::DELIVERY_TIMEOUT;
        while ours().len() < expected {
            assert!(
                Instant::now() < deadline,
                "Postfix delivered {} of {expected} signed letters",
                ours().len()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        std::thread::sleep(Duration::from_secs(2));
        let files = ours();
        assert_eq!(files.len(), expected, "signed letters delivered");
        files
    }
}
