//! Delivery tracking end to end, through a real Postfix and a real Dovecot.
//!
//! Built only with the `mailinterop` feature, which `.ci/mail-interop` turns on once it has
//! started both servers on loopback: Postfix (DSN, and asynchronous bounces for unknown
//! org.test mailboxes) and Dovecot (IMAPS with a CA-signed certificate, plain IMAP, the
//! office's Maildir). The script passes where they are in `ENVOI_TRACK_*` variables; without
//! them the tests fail, because being asked to run them without the servers is a broken CI.
//!
//! The tests share one mailbox, so the script runs them one at a time (`--test-threads 1`).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::campaign::{LETTER, STATEMENT, TestCampaign};
use support::run::Run;

/// How long Postfix may take to write its reports once envoi has finished (well under a second
/// usually; the margin is for a loaded CI machine).
const REPORT_TIMEOUT: Duration = Duration::from_secs(60);

/// The servers, as `.ci/mail-interop` started them.
struct Servers {
    smtp_port: String,
    imaps_port: String,
    imap_port: String,
    ca: PathBuf,
    user: String,
    password: String,
    /// The office's Maildir: INBOX, with `.Sent` inside.
    maildir: PathBuf,
}

impl Servers {
    fn from_env() -> Servers {
        Servers {
            smtp_port: required_env("ENVOI_TRACK_SMTP_PORT"),
            imaps_port: required_env("ENVOI_TRACK_IMAPS_PORT"),
            imap_port: required_env("ENVOI_TRACK_IMAP_PORT"),
            ca: PathBuf::from(required_env("ENVOI_TRACK_CA")),
            user: required_env("ENVOI_TRACK_IMAP_USER"),
            password: required_env("ENVOI_TRACK_IMAP_PASSWORD"),
            maildir: PathBuf::from(required_env("ENVOI_TRACK_MAILDIR")),
        }
    }

    /// envoi.toml for a campaign that sends through Postfix and tracks in Dovecot over IMAPS.
    /// `mailbox` overrides `[mailbox]` keys (`("port", "1")`).
    fn config(&self, campaign_id: &str, mailbox: &[(&str, &str)]) -> String {
        let mut keys: BTreeMap<&str, String> = BTreeMap::from([
            ("host", "\"127.0.0.1\"".to_owned()),
            ("port", self.imaps_port.clone()),
            ("security", "\"tls\"".to_owned()),
            ("username", format!("\"{}\"", self.user)),
            ("ca_file", format!("\"{}\"", self.ca.display())),
            ("folder", "\"INBOX\"".to_owned()),
            ("sent_folder", "\"Sent\"".to_owned()),
            ("timeout", "10".to_owned()),
        ]);
        for (key, value) in mailbox {
            match *value {
                "" => keys.remove(key),
                v => keys.insert(key, v.to_owned()),
            };
        }
        let mailbox: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        format!(
            "[campaign]\nid = \"{campaign_id}\"\n\n[sender]\nfrom = \"Commissioner for Human Rights <office@office.test>\"\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\ntimeout = 10\n\n\
             [send]\nconcurrency = 2\nmax_attempts = 2\nretry_delay = \"100ms\"\n\n\
             [tracking]\nnotify = [\"success\", \"failure\", \"delay\"]\nreturn_path = \"bounces+{{token}}@office.test\"\n\n\
             [mailbox]\n{mailbox}",
            self.smtp_port
        )
    }

    /// A campaign folder with `recipients` and this config.
    /// Give each a [`unique`] id, so that a rerun on the same mailbox starts afresh.
    fn campaign(
        &self,
        campaign_id: &str,
        recipients: &str,
        mailbox: &[(&str, &str)],
    ) -> TestCampaign {
        let campaign = TestCampaign::with_port(0);
        campaign
            .file("envoi.toml", self.config(campaign_id, mailbox))
            .file("templates/letter.hbs", LETTER)
            .file("templates/statement.md", STATEMENT)
            .file("recipients.csv", recipients);
        campaign
    }

    fn run(&self, campaign: &TestCampaign, args: &[&str]) -> Run {
        campaign.run_env(args, &[("ENVOI_IMAP_PASSWORD", self.password.as_str())])
    }

    /// Every message file in a Maildir folder (`new` and `cur`).
    fn messages(&self, folder: &Path) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(folder.join(sub)) {
                files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        }
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// The copies in Sent of the letters with these Message-IDs, per Message-ID.
    fn sent_copies(&self, message_ids: &[String]) -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut copies: BTreeMap<String, Vec<Vec<u8>>> = message_ids
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        for message in self.messages(&self.maildir.join(".Sent")) {
            let id = header(&message, "Message-ID").unwrap_or_default();
            if let Some(list) = copies.get_mut(id.trim()) {
                list.push(message);
            }
        }
        copies
    }

    /// Waits until INBOX holds a report naming each of these tokens.
    fn wait_for_reports(&self, tokens: &[String]) {
        let started = Instant::now();
        loop {
            let inbox = self.messages(&self.maildir);
            let missing: Vec<&String> = tokens
                .iter()
                .filter(|t| !inbox.iter().any(|m| contains(m, t)))
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < REPORT_TIMEOUT,
                "Postfix wrote no report within {REPORT_TIMEOUT:?} for the letters {missing:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The letter token of a Message-ID: its 32 hex digits.
fn token(message_id: &str) -> String {
    message_id
        .trim_matches(['<', '>'])
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A header's raw value. Dovecot stores messages with LF line ends, so this reads either.
fn header(message: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or("");
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    unfolded.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run this test through .ci/mail-interop, which starts Postfix and Dovecot")
    })
}

/// The last log row per address.
fn last_rows(campaign: &TestCampaign) -> BTreeMap<String, support::campaign::LogRow> {
    campaign
        .log_rows()
        .into_iter()
        .map(|r| (r.email.to_lowercase(), r))
        .collect()
}

const EXISTING: [&str; 2] = ["un@org.test", "osce@org.test"];
const UNKNOWN: [&str; 2] = ["gone@org.test", "renamed@org.test"];

fn recipients() -> String {
    let mut csv = String::from("email,organisation,salutation,bcc\n");
    for (i, email) in EXISTING.iter().chain(UNKNOWN.iter()).enumerate() {
        let bcc = if i == 0 { "embassy@org.test" } else { "" };
        csv.push_str(&format!("{email},Organisation {i},Dear colleague,{bcc}\n"));
    }
    csv
}

#[test]
fn sent_copies_are_filed_once_with_their_bcc() {
    let servers = Servers::from_env();
    let campaign = servers.campaign(&unique("sent-copies"), &recipients(), &[]);
    let run = servers.run(&campaign, &["send", "--yes"]);
    run.expect_code(0)
        .expect_stdout("Sent folder: 4 copies filed");

    let rows = last_rows(&campaign);
    let ids: Vec<String> = rows.values().map(|r| r.message_id.clone()).collect();
    assert_eq!(ids.len(), 4, "{rows:?}");
    for (id, copies) in servers.sent_copies(&ids) {
        assert_eq!(copies.len(), 1, "{id} should be in Sent once");
    }
    let first = &rows["un@org.test"].message_id;
    let copy = &servers.sent_copies(std::slice::from_ref(first))[first][0];
    assert_eq!(
        header(copy, "Bcc").as_deref().map(str::trim),
        Some("embassy@org.test"),
        "the copy in Sent shows the Bcc, as a mail client's does"
    );

    // A resume, and a resend of one letter: no second copy.
    servers
        .run(&campaign, &["send", "--yes"])
        .expect_code(0)
        .expect_stdout("Sent folder: 0 copies filed");
    servers
        .run(&campaign, &["send", "--yes", "--resend", "--row", "2"])
        .expect_code(0)
        .expect_stdout("Sent folder: 0 copies filed, 1 already there");
    for (id, copies) in servers.sent_copies(&ids) {
        assert_eq!(copies.len(), 1, "{id} should still be in Sent once");
    }
}

#[test]
fn a_copy_that_could_not_be_filed_is_filed_by_the_next_run() {
    let servers = Servers::from_env();
    let recipients = "email,organisation,salutation\nun@org.test,United Nations,Excellency\n";
    // The mailbox is out of reach while sending: the letter goes, its status is sent.
    let id = unique("late-copy");
    let campaign = servers.campaign(&id, recipients, &[("port", "1")]);
    let run = servers.run(&campaign, &["send", "--yes"]);
    run.expect_code(0)
        .expect_stderr("copies are not filed in Sent now (the next send or track files them)");
    let rows = last_rows(&campaign);
    assert_eq!(rows["un@org.test"].status, "sent");
    let message_id = rows["un@org.test"].message_id.clone();
    let copies = || servers.sent_copies(std::slice::from_ref(&message_id))[&message_id].len();
    assert_eq!(copies(), 0);

    // The next run, with the mailbox back, files it, and only once (over plain IMAP this time:
    // security = "none" is allowed on loopback).
    let plain = [
        ("port", servers.imap_port.as_str()),
        ("security", "\"none\""),
        ("ca_file", ""),
    ];
    campaign.file("envoi.toml", servers.config(&id, &plain));
    servers
        .run(&campaign, &["send", "--yes"])
        .expect_code(0)
        .expect_stdout("Sent folder: 1 copy filed");
    servers
        .run(&campaign, &["send", "--yes"])
        .expect_code(0)
        .expect_stdout("Sent folder: 0 copies filed");
    assert_eq!(copies(), 1);
    assert_eq!(
        campaign.log_rows().len(),
        1,
        "filing never writes to the log"
    );
}

#[test]
fn a_sent_folder_that_does_not_exist_is_named_and_nothing_is_sent() {
    let servers = Servers::from_env();
    let recipients = "email,organisation,salutation\nun@org.test,United Nations,Excellency\n";
    let campaign = servers.campaign(
        &unique("no-folder"),
        recipients,
        &[("sent_folder", "\"Envoyés\"")],
    );
    let run = servers.run(&campaign, &["send", "--yes"]);
    run.expect_code(2)
        .expect_stderr("[mailbox] sent_folder: the folder \"Envoyés\" does not exist");
    assert!(!campaign.path().join("delivery-log.csv").exists());
}

#[test]
fn every_letter_ends_delivered_or_bounced_and_a_second_track_adds_nothing() {
    let servers = Servers::from_env();
    let campaign = servers.campaign(&unique("end-to-end"), &recipients(), &[]);
    servers.run(&campaign, &["send", "--yes"]).expect_code(0);
    let sent = last_rows(&campaign);
    assert!(sent.values().all(|r| r.status == "sent"), "{sent:?}");
    std::fs::copy(
        campaign.path().join("delivery-log.csv"),
        campaign.path().join("maildir-log.csv"),
    )
    .unwrap();
    let tokens: Vec<String> = sent.values().map(|r| token(&r.message_id)).collect();
    servers.wait_for_reports(&tokens);

    // Over IMAP (IMAPS, verified against the CA that signed Dovecot's certificate).
    let before: Vec<String> = servers
        .messages(&servers.maildir)
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    servers.run(&campaign, &["track"]).expect_code(0);
    let check = |rows: &BTreeMap<String, support::campaign::LogRow>| {
        for email in EXISTING {
            let row = &rows[email];
            assert_eq!(row.status, "delivered", "{row:?}");
            assert!(row.code.contains("2.0.0"), "{row:?}");
        }
        for email in UNKNOWN {
            let row = &rows[email];
            assert_eq!(row.status, "bounced", "{row:?}");
            assert!(row.code.contains("5.1.1"), "{row:?}");
            assert!(!row.detail.is_empty(), "{row:?}");
        }
    };
    check(&last_rows(&campaign));
    let rows_after_first = campaign.log_rows().len();
    assert_eq!(rows_after_first, 8, "one report row per letter");

    // Again: every report is recognised as applied.
    servers
        .run(&campaign, &["track"])
        .expect_code(0)
        .expect_stdout("Nothing new to record");
    assert_eq!(campaign.log_rows().len(), rows_after_first);

    // Reading never changed the mailbox: same messages, none flagged seen by envoi.
    let after: Vec<String> = servers
        .messages(&servers.maildir)
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert_eq!(before, after, "track changed the mailbox");

    // Over the Maildir, from the log as it was after the send: the same outcome.
    let maildir = servers.maildir.display().to_string();
    servers
        .run(
            &campaign,
            &["track", "--maildir", &maildir, "--log", "maildir-log.csv"],
        )
        .expect_code(0);
    let by_maildir: BTreeMap<_, _> = campaign
        .rows_of("maildir-log.csv")
        .into_iter()
        .map(|row| (row.email.to_lowercase(), row))
        .collect();
    check(&by_maildir);

    // Sent: one copy per letter, none added by the resume or by track.
    servers.run(&campaign, &["send", "--yes"]).expect_code(0);
    let ids: Vec<String> = sent.values().map(|r| r.message_id.clone()).collect();
    for (id, copies) in servers.sent_copies(&ids) {
        assert_eq!(copies.len(), 1, "{id} should be in Sent once");
    }
}

/// What is wrong, the `[mailbox]` keys that make it so, the password given, what envoi says.
type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);

#[test]
fn a_mailbox_that_cannot_be_reached_stops_track_and_logs_nothing() {
    let servers = Servers::from_env();
    let cases: [Refusal; 3] = [
        (
            "unreachable",
            vec![("port", "1")],
            None,
            "cannot be reached",
        ),
        (
            "wrong password",
            vec![],
            Some("not-the-password"),
            "refused to log in as \"office\"",
        ),
        ("untrusted", vec![("ca_file", "")], None, "is not trusted"),
    ];
    for (what, keys, password, said) in cases {
        let campaign = servers.campaign(
            &unique("refused"),
            "email,organisation,salutation\nun@org.test,UN,Excellency\n",
            &keys,
        );
        servers.run(&campaign, &["send", "--yes"]);
        let log = campaign.read("delivery-log.csv");
        let password = password.unwrap_or(&servers.password);
        let run = campaign.run_env(&["track"], &[("ENVOI_IMAP_PASSWORD", password)]);
        assert_eq!(run.code, Some(3), "{what}: {run}");
        assert!(run.stderr.contains(said), "{what}: {run}");
        assert!(
            !run.stderr.contains(password) && !run.stdout.contains(password),
            "{what}: the password was shown"
        );
        assert_eq!(
            campaign.read("delivery-log.csv"),
            log,
            "{what}: track wrote to the log"
        );
    }
}

#[test]
fn a_folder_that_does_not_exist_is_named_and_nothing_is_logged() {
    let servers = Servers::from_env();
    let campaign = servers.campaign(
        &unique("no-reports-folder"),
        "email,organisation,salutation\nun@org.test,UN,Excellency\n",
        &[("folder", "\"Bounces\"")],
    );
    servers.run(&campaign, &["send", "--yes"]).expect_code(0);
    let log = campaign.read("delivery-log.csv");
    servers
        .run(&campaign, &["track"])
        .expect_code(2)
        .expect_stderr("envoi.toml, [mailbox] folder: the folder \"Bounces\" does not exist");
    assert_eq!(campaign.read("delivery-log.csv"), log);
}
