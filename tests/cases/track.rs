//! `envoi track`: the fixture reports of `tests/fixtures/reports/` (see its README), read from a
//! Maildir, an mbox and .eml files, matched to the letters of a delivery log.

use std::path::Path;

use crate::support::campaign::{LogRow, TestCampaign};
use crate::support::relay::{RelayConfig, emails, plain_server, recipients};
use crate::support::run::fixtures;
use crate::support::smtp_server::Faults;

fn report(name: &str) -> Vec<u8> {
    let path = fixtures().join("reports").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A campaign folder holding the fixture log (rows 2 to 11 sent), and nothing else.
fn tracked() -> TestCampaign {
    let campaign = TestCampaign::empty();
    campaign.file("delivery-log.csv", report("delivery-log.csv"));
    campaign
}

/// A Maildir at `dir` in the campaign: `new/` holds the first message, `cur/` the rest (names
/// without the `:2,S` flag suffix, which Windows file names cannot hold).
fn maildir(campaign: &TestCampaign, dir: &str, names: &[&str]) {
    std::fs::create_dir_all(campaign.path().join(dir).join("tmp")).expect("tmp");
    for (i, name) in names.iter().enumerate() {
        let (sub, file) = if i == 0 {
            ("new", format!("176457{i:04}.M1P1.mail"))
        } else {
            ("cur", format!("176457{i:04}.M1P1.mail"))
        };
        campaign.file(&format!("{dir}/{sub}/{file}"), report(name));
    }
    std::fs::create_dir_all(campaign.path().join(dir).join("cur")).expect("cur");
}

/// An mbox at `file` in the campaign, with `From ` lines and `>From ` quoting.
fn mbox(campaign: &TestCampaign, file: &str, names: &[&str]) {
    let mut bytes = Vec::new();
    for name in names {
        bytes.extend_from_slice(b"From MAILER-DAEMON Tue Dec  1 09:00:32 2026\n");
        for line in String::from_utf8(report(name))
            .expect("UTF-8 fixture")
            .lines()
        {
            if line.starts_with("From ") {
                bytes.push(b'>');
            }
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        bytes.push(b'\n');
    }
    campaign.file(file, bytes);
}

/// The rows `track` appended: those after the fixture log's.
fn added(campaign: &TestCampaign) -> Vec<LogRow> {
    campaign.log_rows().into_iter().skip(10).collect()
}

fn row_for<'a>(rows: &'a [LogRow], row: usize, status: &str) -> &'a LogRow {
    rows.iter()
        .find(|r| r.row == row && r.status == status)
        .unwrap_or_else(|| panic!("no {status} row for row {row}: {rows:#?}"))
}

/// Every file under `dir` with its bytes: to prove track left the mail as it was.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push((
                    path.display().to_string(),
                    std::fs::read(&path).expect("read"),
                ));
            }
        }
    }
    files.sort();
    files
}

const MAILDIR: [&str; 6] = [
    "postfix-bounce.eml",
    "sendmail-delayed.eml",
    "qmail-bounce.eml",
    "exim-bounce-verp.eml",
    "auto-reply.eml",
    "malformed-dsn.eml",
];
const MBOX: [&str; 7] = [
    "m365-ndr.eml",
    "gmail-dsn.eml",
    "exim-delay.eml",
    "exchange2003-ndr.eml",
    "postfix-delivered.eml",
    "global-dsn-utf8.eml",
    "gmail-legacy-unmatched.eml",
];

fn every_source(campaign: &TestCampaign) -> Vec<&'static str> {
    maildir(campaign, "bounces", &MAILDIR);
    mbox(campaign, "archive.mbox", &MBOX);
    campaign.file("mdn-read.eml", report("mdn-read.eml"));
    campaign.file("mdn-copy-deleted.eml", report("mdn-copy-deleted.eml"));
    vec![
        "track",
        "--maildir",
        "bounces",
        "--mbox",
        "archive.mbox",
        "mdn-read.eml",
        "mdn-copy-deleted.eml",
    ]
}

#[test]
fn every_report_shape_is_matched_to_its_letter_and_recorded_once() {
    let campaign = tracked();
    let args = every_source(&campaign);
    let mail_before = snapshot(&campaign.path().join("bounces"));

    let run = campaign.run(&args);
    run.expect_code(0)
        .expect_stdout("Read 15 messages: 13 reports, 1 not a report, 1 skipped.");
    let rows = added(&campaign);
    assert_eq!(rows.len(), 11, "{rows:#?}\n{run}");

    // Postfix, matched by its envelope id.
    let un = row_for(&rows, 2, "bounced");
    assert_eq!(un.email, "registry@un.example");
    assert_eq!(un.code, "5.1.1");
    assert_eq!(
        un.detail,
        "550 5.1.1 <registry@un.example>: Recipient address rejected: User unknown in local recipient table; remote server mx.un.example; reported by mail.ombudsman.example (report <20261201090032.7B2C11E0A4@mail.ombudsman.example>)"
    );
    assert_eq!(
        un.message_id,
        "<57c6851ce6dbf0ae85b3c365004b60e7.envoi@ombudsman.example>"
    );
    // Sendmail's delay warning (returned headers), then Postfix's success report.
    let delayed = row_for(&rows, 3, "delayed");
    assert_eq!(delayed.code, "4.4.1");
    assert!(delayed.detail.starts_with("delayed; remote server mx2.coe.example; reported by relay.coe.example (report <202612011200.5B1A0bXk012345@relay.coe.example>)"), "{}", delayed.detail);
    let delivered = row_for(&rows, 3, "delivered");
    assert_eq!(delivered.code, "2.0.0");
    assert!(
        delivered
            .detail
            .starts_with("250 2.0.0 Ok: queued as 9F8E7D; remote server mx1.coe.example"),
        "{}",
        delivered.detail
    );
    // qmail, matched by the Message-ID of the returned copy.
    let osce = row_for(&rows, 4, "bounced");
    assert_eq!(osce.code, "5.1.1");
    assert!(osce.detail.starts_with("Sorry, no mailbox here by that name. (#5.1.1); reported by mx.osce.example (report sha256:"), "{}", osce.detail);
    // Exim, with nothing but the VERP token of its envelope recipient.
    let embassy = row_for(&rows, 5, "bounced");
    assert_eq!(embassy.code, "5.2.2");
    assert_eq!(
        embassy.detail,
        "552 5.2.2 Mailbox full: embassy@embassy-fr.example; remote server mailstore.embassy-fr.example; reported by mx.embassy-fr.example (report <E1tQx7A-000Jk2-3D@mx.embassy-fr.example>)"
    );
    // Microsoft 365 and Gmail: standard reports with vendor quirks.
    let nhri = row_for(&rows, 6, "bounced");
    assert_eq!(nhri.code, "5.1.10");
    assert!(nhri.detail.starts_with("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup; reported by AM6PR01MB1234.eurprd01.prod.exchangelabs.com"), "{}", nhri.detail);
    let diaspora = row_for(&rows, 7, "bounced");
    assert_eq!(diaspora.code, "5.1.1");
    assert!(
        diaspora
            .detail
            .contains("550-5.1.1 The email account that you tried to reach does not exist."),
        "{}",
        diaspora.detail
    );
    assert!(
        diaspora
            .detail
            .contains("remote server gmail-smtp-in.l.google.com; reported by googlemail.com"),
        "{}",
        diaspora.detail
    );
    // A read receipt.
    let read = row_for(&rows, 8, "read");
    assert_eq!(read.code, "");
    assert_eq!(
        read.detail,
        "displayed; reported by Mozilla Thunderbird 128.5.0 (report <a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d@ennhri.example>)"
    );
    // Exim's delay warning, Exchange 2003 (by address alone), a utf-8 address (RFC 6533).
    assert_eq!(row_for(&rows, 9, "delayed").code, "4.7.1");
    let ohchr = row_for(&rows, 10, "bounced");
    assert_eq!(ohchr.code, "5.1.1");
    assert!(
        ohchr.detail.starts_with(
            "The e-mail account does not exist at the organization this message was sent to."
        ),
        "{}",
        ohchr.detail
    );
    assert!(
        ohchr.detail.contains("reported by gw.ohchr.example"),
        "{}",
        ohchr.detail
    );
    assert_eq!(row_for(&rows, 11, "bounced").email, "jöran@bücher.example");

    // What was not recorded, and why.
    run.expect_stdout("Unmatched: 1 (no letter of delivery-log.csv has its envelope id, Message-ID, VERP token or address); nothing recorded for it:")
        .expect_stdout("  archive.mbox, message 7: Gmail bounce from google.com: bounced 5.1.1 for old.contact@mission.example")
        .expect_stdout("mdn-copy-deleted.eml: about a copy of row 2's letter (registry@un.example): read receipt from Microsoft Outlook 16.0: delivered for deputy@un.example")
        .expect_stderr("1764570005.M1P1.mail: skipped, not a readable report: recipient 1 of its delivery-status part has no Action");
    assert!(
        run.stderr.contains("warning: bounces"),
        "the warning names the file:\n{run}"
    );
    assert_eq!(
        snapshot(&campaign.path().join("bounces")),
        mail_before,
        "track never touches mail"
    );

    // Idempotent: a second run over the same mail adds nothing.
    let again = campaign.run(&args);
    again
        .expect_code(0)
        .expect_stdout("Nothing new to record in delivery-log.csv.")
        .expect_stdout("Added nothing: 10 already recorded by an earlier run; 1 the letter's status had already moved past it.");
    assert_eq!(added(&campaign).len(), 11, "{again}");
}

#[test]
fn late_and_repeated_reports_add_nothing() {
    let campaign = tracked();
    // The success report first, then the delay warning it overtook, then the success again.
    campaign.file("a.eml", report("postfix-delivered.eml"));
    campaign.file("b.eml", report("sendmail-delayed.eml"));
    let run = campaign.run(&["track", "a.eml", "b.eml", "a.eml"]);
    run.expect_code(0)
        .expect_stdout("Added nothing: 1 already recorded by an earlier run; 1 the letter's status had already moved past it.");
    let rows = added(&campaign);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].status, "delivered");
}

#[test]
fn a_report_from_before_a_resend_is_not_applied_to_the_new_letter() {
    let campaign = tracked();
    let mut log = campaign.read("delivery-log.csv");
    log.push_str("2026-12-03T08:00:00Z,2,registry@un.example,United Nations,sent,250 2.0.0,Ok: queued as 5Yr1,<57c6851ce6dbf0ae85b3c365004b60e7.envoi@ombudsman.example>,1\n");
    campaign.file("delivery-log.csv", log);
    campaign.file("old-bounce.eml", report("postfix-bounce.eml"));
    campaign
        .run(&["track", "old-bounce.eml"])
        .expect_code(0)
        .expect_stdout("Added nothing: 1 dated before the letter was last sent.");
    assert_eq!(campaign.log_rows().len(), 11);
}

#[test]
fn a_letter_sent_through_a_real_relay_is_matched_by_its_message_id() {
    let server = plain_server(Faults::none());
    let list = recipients(2);
    let all = emails(&list);
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&[]).expect_code(0);
    let sent = campaign.rows_for(&all[1]);
    let message_id = &sent[0].message_id;
    let received = server.received();
    let letter = received
        .iter()
        .find(|m| m.rcpt_to.iter().any(|r| r == &all[1]))
        .expect("the relay got the letter");
    let headers = String::from_utf8_lossy(&letter.data);
    let headers = headers.split("\r\n\r\n").next().expect("headers");
    assert!(headers.contains(message_id.as_str()), "{headers}");
    let bounce = format!(
        "From: MAILER-DAEMON@relay.example\r\nTo: ombudsman@ombudsman.example\r\nMessage-ID: <bounce-1@relay.example>\r\nDate: Tue, 1 Dec 2099 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n\r\nFinal-Recipient: rfc822; someone-else@org1.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n--b--\r\n"
    );
    campaign.file("bounce.eml", bounce);
    campaign.run(&["track", "bounce.eml"]).expect_code(0);
    assert_eq!(campaign.final_status(&all[1]).as_deref(), Some("bounced"));
    assert_eq!(campaign.final_status(&all[0]).as_deref(), Some("sent"));
}

#[test]
fn sources_that_do_not_exist_are_named_and_nothing_is_recorded() {
    let campaign = tracked();
    let log = campaign.read("delivery-log.csv");
    std::fs::create_dir_all(campaign.path().join("plain-folder")).expect("folder");
    let cases: [(&[&str], &str); 5] = [
        (
            &["track", "--maildir", "bounces"],
            "bounces: not found (named with --maildir); check the path (it is relative to the campaign folder, --dir)",
        ),
        (
            &["track", "--mbox", "archive.mbox"],
            "archive.mbox: not found (named with --mbox)",
        ),
        (
            &["track", "missing.eml"],
            "missing.eml: not found; check the path",
        ),
        (
            &["track", "--maildir", "plain-folder"],
            "plain-folder: is not a Maildir folder (it has no cur/ or new/ folder)",
        ),
        (
            &["track"],
            "envoi.toml, [mailbox]: no mailbox is set up to read reports from; add a [mailbox] section, or name Maildir folders (--maildir DIR), mbox files (--mbox FILE) or .eml files",
        ),
    ];
    for (args, message) in cases {
        campaign.run(args).expect_code(2).expect_stderr(message);
    }
    let two = campaign.run(&["track", "--maildir", "bounces", "missing.eml"]);
    two.expect_code(2)
        .expect_stderr("bounces: not found")
        .expect_stderr("missing.eml: not found")
        .expect_stderr("2 problems found");
    assert_eq!(
        campaign.read("delivery-log.csv"),
        log,
        "nothing was written"
    );

    let no_log = TestCampaign::empty();
    no_log.file("x.eml", report("postfix-bounce.eml"));
    no_log
        .run(&["track", "x.eml"])
        .expect_code(2)
        .expect_stderr("delivery-log.csv: not found; reports are matched to the letters of the delivery log written by envoi send");
    assert!(!no_log.path().join("delivery-log.csv").exists());
}

#[test]
fn hostile_and_broken_messages_are_skipped_and_the_run_goes_on() {
    let campaign = tracked();
    campaign.file("empty.eml", b"");
    campaign.file(
        "binary.eml",
        (0u8..=255).cycle().take(5000).collect::<Vec<u8>>(),
    );
    campaign.file(
        "qmail-without-address.eml",
        "From: MAILER-DAEMON@x.example\n\nHi. This is the qmail-send program at x.example.\nSomething odd.\n",
    );
    // Found by fuzzing: it made the mail parser panic (in a debug build).
    campaign.file("damaged-mime.eml", report("damaged-mime.eml"));
    campaign.file("ok.eml", report("postfix-bounce.eml"));
    let run = campaign.run(&[
        "track",
        "empty.eml",
        "binary.eml",
        "qmail-without-address.eml",
        "damaged-mime.eml",
        "ok.eml",
    ]);
    run.expect_code(0)
        .expect_stderr("warning: empty.eml: skipped, not a readable report: is not a mail message")
        .expect_stderr("warning: qmail-without-address.eml: skipped, not a readable report: reads like a qmail bounce but names no address that failed or was delayed");
    if cfg!(debug_assertions) {
        // Only a debug build's mail-parser panics on it; a release build reads what it can.
        run.expect_stderr("warning: damaged-mime.eml: skipped, not a readable report: could not be read: its MIME structure is damaged");
    }
    assert_eq!(added(&campaign).len(), 1, "{run}");
}

#[test]
fn report_lists_bounces_delays_and_letters_not_confirmed_and_writes_a_spreadsheet() {
    let campaign = tracked();
    for name in [
        "postfix-bounce.eml",
        "sendmail-delayed.eml",
        "mdn-read.eml",
        "postfix-delivered.eml",
    ] {
        campaign.file(name, report(name));
    }
    campaign
        .run(&[
            "track",
            "postfix-bounce.eml",
            "sendmail-delayed.eml",
            "mdn-read.eml",
        ])
        .expect_code(0);
    let run = campaign.run(&["report", "--csv", "status.csv"]);
    run.expect_code(0)
        .expect_stdout("delivery-log.csv: 10 recipients")
        .expect_stdout("  sent          7\n")
        .expect_stdout("  delayed       1\n")
        .expect_stdout("  bounced       1\n")
        .expect_stdout("  read          1\n")
        .expect_stdout("Bounced (correct the address in the recipients file, then envoi send --resend --row N):\n  row    2  bounced  United Nations <registry@un.example>: 5.1.1 550 5.1.1 <registry@un.example>: Recipient address rejected")
        .expect_stdout("Delayed (the servers are still trying):\n  row    3  delayed  Council of Europe <info@coe.example>: 4.4.1 delayed; remote server mx2.coe.example")
        .expect_stdout("Not confirmed delivered yet (7: sent, no report since):\n  row    4  OSCE <secretariat@osce.example>\n")
        .expect_stdout("Wrote the last status of 10 recipients to status.csv.");
    assert!(
        !run.stdout.contains("row    8  ENNHRI"),
        "a read letter is confirmed:\n{run}"
    );

    let bytes = std::fs::read(campaign.path().join("status.csv")).expect("the CSV");
    assert!(bytes.starts_with(
        b"\xEF\xBB\xBFrow,organisation,email,status,since,code,detail,attempts,message_id\r\n"
    ));
    let text = String::from_utf8(bytes[3..].to_vec()).expect("UTF-8");
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines.len(),
        12,
        "header, 10 recipients, and the empty end: {text}"
    );
    assert!(
        lines[1].starts_with("2,United Nations,registry@un.example,bounced,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(",5.1.1,550 5.1.1 <registry@un.example>: Recipient address rejected: User unknown in local recipient table; remote server mx.un.example; reported by mail.ombudsman.example (report <20261201090032.7B2C11E0A4@mail.ombudsman.example>),1,<57c6851ce6dbf0ae85b3c365004b60e7.envoi@ombudsman.example>"), "{}", lines[1]);
    assert!(
        lines[10].starts_with(
            "11,Bücherverband,jöran@bücher.example,sent,2026-12-01T09:00:19Z,250 2.0.0,"
        ),
        "{}",
        lines[10]
    );

    // Once the delivery report comes, the delayed letter is delivered.
    campaign
        .run(&["track", "postfix-delivered.eml"])
        .expect_code(0);
    let run = campaign.run(&["report"]);
    run.expect_code(0).expect_stdout("  delivered     1\n");
    assert!(!run.stdout.contains("Delayed"), "{run}");
}

#[test]
fn a_bounce_whose_text_reads_as_a_formula_is_written_as_text() {
    let campaign = tracked();
    let bounce = String::from_utf8(report("postfix-bounce.eml"))
        .expect("UTF-8")
        .replace(
            "Diagnostic-Code: smtp; 550 5.1.1",
            "Diagnostic-Code: smtp; =HYPERLINK(\"http://evil.example\") 550 5.1.1",
        );
    campaign.file("bounce.eml", bounce);
    campaign.run(&["track", "bounce.eml"]).expect_code(0);
    let rows = added(&campaign);
    assert!(
        rows[0].detail.starts_with("'=HYPERLINK("),
        "{}",
        rows[0].detail
    );
}

#[test]
fn send_leaves_tracked_letters_alone_and_resends_a_corrected_bounced_address() {
    let server = plain_server(Faults::none());
    let list = recipients(4);
    let all = emails(&list);
    let campaign = RelayConfig::plain(&server).campaign(&list);
    campaign.send(&[]).expect_code(0);
    let mut log = campaign.read("delivery-log.csv");
    for (i, status) in ["delivered", "bounced", "delayed", "read"]
        .iter()
        .enumerate()
    {
        let sent = &campaign.rows_for(&all[i])[0];
        log.push_str(&format!(
            // Dated before the resend below, as reports about the first sending are.
            "2026-01-01T00:00:0{i}Z,{},{},Organisation {i},{status},5.0.0,a report (report <r{i}@x.example>),{},1\n",
            sent.row, all[i], sent.message_id
        ));
    }
    campaign.file("delivery-log.csv", log);
    let received = server.received_count();

    campaign.send(&[]).expect_code(0).expect_stdout(
        "nothing to send: the 4 letters selected already went out according to delivery-log.csv",
    );
    campaign
        .send(&["--row", "3"])
        .expect_code(0)
        .expect_stdout("nothing to send");
    assert_eq!(
        server.received_count(),
        received,
        "no letter went out again"
    );

    // The office corrects the bounced address (row 3) and sends that row again.
    campaign.file(
        "recipients.csv",
        list.replace(&all[1], "person1@new.example"),
    );
    campaign.send(&["--resend", "--row", "3"]).expect_code(0);
    assert_eq!(server.received_count(), received + 1);
    let last = server.received().pop().expect("the resent letter");
    assert_eq!(last.rcpt_to, vec!["person1@new.example".to_string()]);
    assert_eq!(
        campaign.final_status("person1@new.example").as_deref(),
        Some("sent")
    );
    campaign
        .run(&["report"])
        .expect_code(0)
        .expect_stdout("  bounced       0\n")
        .expect_stdout("Bounced, and sent again since to a corrected address (not counted above): row 3 (person1@org1.example)");
}
