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
use std::process::Stdio;
use std::time::{Duration, Instant};

use mail_parser::{Message, MessageParser, MimeHeaders};

#[path = "support/process.rs"]
mod process;
use process::envoi_command;

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
    /// The salutation the text part must contain; `None` where the letter's template writes
    /// its own opening (the Arabic letter: the column holds English forms).
    salutation: Option<String>,
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
    let output = envoi_command(campaign.path())
        .args(["send", "--smtp-port", &port, "--yes"])
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
            if let Some(salutation) = &letter.salutation {
                assert!(
                    text.contains(&normalise(salutation)),
                    "{what}: the text part lacks the salutation {salutation:?}"
                );
            }
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
            let template = letter_template(repo, &cell(language));
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
                salutation: template_text(&template)
                    .contains("{{salutation}}")
                    .then(|| cell(salutation)),
                subject: template_subject(&template),
            }
        })
        .collect()
}

/// `letter.<lang>.hbs`, or `letter.hbs` if there is none: the template a row's language picks.
fn letter_template(repo: &Path, language: &str) -> PathBuf {
    let localised = repo.join(format!("templates/letter.{language}.hbs"));
    if !language.is_empty() && localised.exists() {
        localised
    } else {
        repo.join("templates/letter.hbs")
    }
}

fn template_text(path: &Path) -> String {
    std::fs::read_to_string(path).expect("letter template")
}

/// The subject in the front matter of a letter template.
fn template_subject(path: &Path) -> String {
    let template = template_text(path);
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
    use std::process::Stdio;
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
        let output = super::envoi_command(dir)
            .args(args)
            .env("ENVOI_SMIME_PASSWORD", P12_PASSWORD)
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

/// Issue 8 against Postfix: the relays of `.ci/postfix-interop`'s extra services (connection
/// limit, recipient limit, TLS-only with a SASL login and an `openssl req -x509` certificate,
/// relay access denied). Each test sends to addresses in a domain of its own and reads back,
/// from the shared Maildir, only the copies delivered to that domain.
mod relay_behaviour {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::process::{Output, Stdio};
    use std::time::{Duration, Instant};

    use mail_parser::MessageParser;

    use super::{LogRow, copy_recursively, last_log_rows, maildir_files, required_env};

    /// A campaign folder: the bundled templates, these recipients, this `[smtp]` and `[send]`.
    struct Campaign {
        dir: tempfile::TempDir,
    }

    impl Campaign {
        fn new(smtp: &str, concurrency: usize, recipients: &str) -> Campaign {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
            let dir = tempfile::tempdir().expect("temp dir");
            copy_recursively(&repo.join("templates"), &dir.path().join("templates"));
            std::fs::write(dir.path().join("recipients.csv"), recipients).unwrap();
            let toml = format!(
                "[campaign]\nid = \"postfix-relay-behaviour\"\n\n[sender]\nfrom = \"Ombudsman <ombudsman@ombudsman.example>\"\n\n[smtp]\n{smtp}\ntimeout = 10\n\n[send]\nconcurrency = {concurrency}\nmax_attempts = 3\nretry_delay = \"100ms\"\n"
            );
            std::fs::write(dir.path().join("envoi.toml"), toml).unwrap();
            Campaign { dir }
        }

        fn send(&self, env: &[(&str, &str)]) -> Output {
            super::envoi_command(self.dir.path())
                .envs(env.iter().copied())
                .args(["send", "--yes"])
                .stdin(Stdio::null())
                .output()
                .expect("run envoi")
        }

        /// Sends, asserts the exit code, and returns everything envoi printed.
        fn send_expecting(&self, env: &[(&str, &str)], code: i32) -> String {
            let output = self.send(env);
            let all = text(&output);
            assert_eq!(output.status.code(), Some(code), "{all}");
            all
        }

        fn log(&self) -> HashMap<String, LogRow> {
            last_log_rows(&self.dir.path().join("delivery-log.csv"))
        }

        fn write(&self, name: &str, content: &str) {
            std::fs::write(self.dir.path().join(name), content).unwrap();
        }
    }

    fn plain(port_var: &str) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"",
            required_env(port_var)
        )
    }

    /// `n` recipients `p{i}@{domain}`.
    fn recipients(domain: &str, n: usize) -> String {
        let mut csv = String::from("email,organisation,name,salutation,language\n");
        for i in 0..n {
            csv.push_str(&format!(
                "p{i}@{domain},Organisation {i},Person {i},Dear colleague,en\n"
            ));
        }
        csv
    }

    fn text(output: &Output) -> String {
        format!(
            "{}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Delivered-To address → Message-IDs of the copies Postfix delivered to `domain`, once
    /// `expected` copies are there (and a moment more, so that an extra copy would show).
    fn delivered_to(domain: &str, expected: usize) -> HashMap<String, Vec<String>> {
        let maildir = PathBuf::from(required_env("ENVOI_POSTFIX_MAILDIR"));
        let read = || {
            let mut by_address: HashMap<String, Vec<String>> = HashMap::new();
            for file in maildir_files(&maildir) {
                let bytes = std::fs::read(&file).unwrap();
                let message = MessageParser::default().parse(&bytes).unwrap();
                let to = message
                    .header_raw("Delivered-To")
                    .unwrap_or_default()
                    .trim()
                    .to_lowercase();
                if to.ends_with(&format!("@{domain}")) {
                    let id = message.message_id().unwrap_or_default().to_owned();
                    by_address.entry(to).or_default().push(format!("<{id}>"));
                }
            }
            by_address
        };
        let deadline = Instant::now() + super::DELIVERY_TIMEOUT;
        while read().values().map(Vec::len).sum::<usize>() < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(1));
        read()
    }

    #[test]
    fn postfix_connection_limit_lowers_the_concurrency() {
        let domain = "limits.postfix.test";
        let campaign = Campaign::new(
            &plain("ENVOI_POSTFIX_LIMITS_PORT"),
            4,
            &recipients(domain, 16),
        );
        let all = campaign.send_expecting(&[], 0);
        assert_eq!(
            all.matches("the relay accepts fewer connections than concurrency = 4")
                .count(),
            1,
            "{all}"
        );
        assert!(all.contains("421 4.7.0"), "{all}");
        let log = campaign.log();
        let delivered = delivered_to(domain, 16);
        for i in 0..16 {
            let email = format!("p{i}@{domain}");
            let row = &log[&email];
            assert_eq!(row.status, "sent", "{email}: {row:?}");
            assert_eq!(
                delivered.get(&email),
                Some(&vec![row.message_id.clone()]),
                "{email}"
            );
        }
    }

    #[test]
    fn postfix_recipient_limit_sends_the_rest_in_further_transactions() {
        let domain = "rcpt.postfix.test";
        let csv = format!(
            "email,organisation,name,salutation,language,cc,bcc\nto@{domain},Org,Name,Dear colleague,en,a@{domain};b@{domain};c@{domain},bcc@{domain}\n"
        );
        let campaign = Campaign::new(&plain("ENVOI_POSTFIX_RECIPIENTS_PORT"), 1, &csv);
        campaign.send_expecting(&[], 0);
        let row = campaign.log()[&format!("to@{domain}")].clone();
        assert_eq!(row.status, "sent", "{row:?}");
        assert!(
            row.detail.contains("transaction 2 sent the same letter to"),
            "{row:?}"
        );
        assert!(
            row.detail.contains("transaction 3 sent the same letter to"),
            "{row:?}"
        );
        let delivered = delivered_to(domain, 5);
        for local in ["to", "a", "b", "c", "bcc"] {
            let email = format!("{local}@{domain}");
            // Exactly one copy each, all the same letter.
            assert_eq!(
                delivered.get(&email),
                Some(&vec![row.message_id.clone()]),
                "{email}"
            );
        }
        assert_eq!(delivered.len(), 5, "{delivered:?}");
    }

    fn tls_smtp(username: Option<&str>) -> String {
        let mut smtp = format!(
            "host = \"localhost\"\nport = {}\nsecurity = \"starttls\"\nca_file = \"relay.pem\"",
            required_env("ENVOI_POSTFIX_TLS_PORT")
        );
        if let Some(user) = username {
            smtp.push_str(&format!("\nusername = \"{user}\""));
        }
        smtp
    }

    fn pinned(campaign: &Campaign) {
        let cert = std::fs::read_to_string(required_env("ENVOI_POSTFIX_TLS_CERT")).unwrap();
        campaign.write("relay.pem", &cert);
    }

    #[test]
    fn postfix_openssl_x509_certificate_is_trusted_as_a_pin_and_the_login_works() {
        let domain = "pin.postfix.test";
        let user = required_env("ENVOI_POSTFIX_SASL_USER");
        let campaign = Campaign::new(&tls_smtp(Some(&user)), 2, &recipients(domain, 4));
        pinned(&campaign);
        let password = required_env("ENVOI_POSTFIX_SASL_PASSWORD");
        campaign.send_expecting(&[("ENVOI_SMTP_PASSWORD", password.as_str())], 0);
        let log = campaign.log();
        let delivered = delivered_to(domain, 4);
        for i in 0..4 {
            let email = format!("p{i}@{domain}");
            assert_eq!(log[&email].status, "sent");
            assert_eq!(
                delivered.get(&email),
                Some(&vec![log[&email].message_id.clone()])
            );
        }
    }

    #[test]
    fn postfix_wrong_password_costs_one_failed_login() {
        let domain = "badpw.postfix.test";
        let user = required_env("ENVOI_POSTFIX_SASL_USER");
        let campaign = Campaign::new(&tls_smtp(Some(&user)), 4, &recipients(domain, 8));
        pinned(&campaign);
        let maillog = PathBuf::from(required_env("ENVOI_POSTFIX_MAILLOG"));
        let failures = || {
            std::fs::read_to_string(&maillog)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("authentication failed"))
                .count()
        };
        let before = failures();
        let all = campaign.send_expecting(&[("ENVOI_SMTP_PASSWORD", "not the password")], 3);
        assert!(
            all.contains(&format!("the relay refused to log in as \"{user}\"")),
            "{all}"
        );
        assert!(!all.contains("not the password"), "{all}");
        // Postfix logs each failed AUTH; give its log writer a moment.
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            failures() - before,
            1,
            "failed logins in {}",
            maillog.display()
        );
        assert!(delivered_to(domain, 0).is_empty());
    }

    #[test]
    fn postfix_must_issue_starttls_says_to_set_security_starttls() {
        let smtp = format!(
            "host = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"",
            required_env("ENVOI_POSTFIX_TLS_PORT")
        );
        let campaign = Campaign::new(&smtp, 2, &recipients("clear.postfix.test", 3));
        let all = campaign.send_expecting(&[], 3);
        assert!(
            all.contains("530 5.7.0 Must issue a STARTTLS command first"),
            "{all}"
        );
        assert!(all.contains("set security = \"starttls\""), "{all}");
    }

    #[test]
    fn postfix_relay_access_denied_stops_the_run_after_three_letters() {
        let domain = "denied.postfix.test";
        let campaign = Campaign::new(
            &plain("ENVOI_POSTFIX_DENIED_PORT"),
            1,
            &recipients(domain, 8),
        );
        let all = campaign.send_expecting(&[], 3);
        assert!(
            all.contains("the relay refused 3 letters in a row with the same reply (554 5.7.1"),
            "{all}"
        );
        assert!(all.contains("Relay access denied"), "{all}");
        let log = campaign.log();
        assert_eq!(log.len(), 3, "{log:?}");
        assert!(log.values().all(|r| r.status == "failed"), "{log:?}");
    }
}

// Shared with tests/cases/attachment_bytes.rs and the other integration tests.
#[path = "support/attachment_files.rs"]
mod attachment_files;
#[path = "support/mail.rs"]
#[allow(dead_code)]
mod mail;

/// Letters whose bytes or addresses relays are tempted to change, through Postfix: attachments
/// with bare LF, bare CR, NUL, a 1,000-octet line, clean CRLF text, UTF-8 text and binary arrive
/// byte for byte; an international domain goes in A-label form and is delivered, and so is a
/// non-ASCII local part, with SMTPUTF8 (Postfix 3.x offers it). Its letters go to
/// `attachments.example` and `xn--bak-lua.example` addresses, which it removes from the Maildir
/// afterwards, under [`MAILDIR`].
mod letters_arrive_intact {
    use std::path::{Path, PathBuf};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use super::{attachment_files, mail};

    const LETTER: &str = "+++\nsubject = \"Statement for {{organisation}}\"\n+++\n{{salutation}},\n\nThe statement is attached.\n";

    #[test]
    fn attachments_and_international_addresses_arrive_intact() {
        let _alone = super::MAILDIR.lock().unwrap_or_else(|e| e.into_inner());
        let port = super::required_env("ENVOI_POSTFIX_PORT");
        let maildir = PathBuf::from(super::required_env("ENVOI_POSTFIX_MAILDIR"));

        let campaign = tempfile::tempdir().expect("temp dir");
        let dir = campaign.path();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("envoi.toml"),
            format!("[campaign]\nid = \"intact-interop\"\n\n[sender]\nfrom = \"Büro <office@büro.example>\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n"),
        )
        .unwrap();
        std::fs::write(dir.join("templates/letter.hbs"), LETTER).unwrap();
        std::fs::write(
            dir.join("recipients.csv"),
            format!(
                "email,organisation,salutation,attachments\nregistry@attachments.example,UN Registry,Dear Registrar,{}\ninfo@bakı.example,Baku Office,Dear colleagues,\njörg@bakı.example,Baku Office,Dear Jörg,\n",
                attachment_files::attachments_cell()
            ),
        )
        .unwrap();
        attachment_files::write_into(dir);

        let output = super::envoi_command(dir)
            .args(["send", "--yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run envoi");
        assert!(
            output.status.success(),
            "envoi send failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );

        let delivered = wait_for(&maildir, 3);
        let to = |address: &str| {
            delivered
                .iter()
                .find(|(to, _)| to == address)
                .map(|(_, bytes)| bytes.as_slice())
                .unwrap_or_else(|| panic!("nothing delivered to {address}"))
        };
        let message = mail::parse(to("registry@attachments.example"));
        let attached: Vec<(String, Vec<u8>)> = mail::attachments(&message)
            .into_iter()
            .map(|a| (a.name, a.bytes))
            .collect();
        attachment_files::assert_intact(&attached, "through Postfix into its Maildir");
        for address in ["info@xn--bak-lua.example", "jörg@xn--bak-lua.example"] {
            let message = mail::parse(to(address));
            let mailboxes = mail::mailboxes(message.to());
            assert_eq!(mailboxes.len(), 1, "{address}");
            assert_eq!(mailboxes[0].1, address);
            let from = mail::mailboxes(message.from());
            assert_eq!(from[0].1, "office@xn--bro-hoa.example", "{address}");
        }
        // Leave the Maildir as the bundled campaign's test expects it.
        for file in ours(&maildir) {
            std::fs::remove_file(&file)
                .unwrap_or_else(|e| panic!("remove {}: {e}", file.display()));
        }
    }

    /// This test's letters in the Maildir.
    fn ours(maildir: &Path) -> Vec<PathBuf> {
        super::maildir_files(maildir)
            .into_iter()
            .filter(|f| delivered_to(f).is_some())
            .collect()
    }

    /// The Delivered-To of a file, when it is one of this test's addresses.
    fn delivered_to(file: &Path) -> Option<String> {
        let bytes = std::fs::read(file).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let to = text
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Delivered-To: "))?
            .trim()
            .to_owned();
        (to.ends_with("@attachments.example") || to.ends_with("@xn--bak-lua.example")).then_some(to)
    }

    /// Once `expected` of this test's letters are there and a moment has passed in which a
    /// duplicate would have shown: (Delivered-To, bytes) of each.
    fn wait_for(maildir: &Path, expected: usize) -> Vec<(String, Vec<u8>)> {
        let deadline = Instant::now() + super::DELIVERY_TIMEOUT;
        while ours(maildir).len() < expected {
            assert!(
                Instant::now() < deadline,
                "Postfix delivered {} of {expected} letters",
                ours(maildir).len()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        std::thread::sleep(Duration::from_secs(2));
        let files = ours(maildir);
        assert_eq!(files.len(), expected, "letters delivered");
        files
            .iter()
            .map(|f| {
                (
                    delivered_to(f).unwrap(),
                    as_sent(&std::fs::read(f).unwrap()),
                )
            })
            .collect()
    }

    /// A Maildir file back in the form it had on the wire. Postfix's virtual agent stores
    /// lines with the local newline (LF), as Maildir readers expect; the letter went out with
    /// CRLF on every line (the attachments whose bytes hold a bare LF or CR travel in base64),
    /// so every LF here was a CRLF.
    fn as_sent(stored: &[u8]) -> Vec<u8> {
        let mut wire = Vec::with_capacity(stored.len() + stored.len() / 32);
        for &byte in stored {
            if byte == b'\n' && wire.last() != Some(&b'\r') {
                wire.push(b'\r');
            }
            wire.push(byte);
        }
        wire
    }
}
