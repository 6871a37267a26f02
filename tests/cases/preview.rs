//! `envoi preview` on the terminal: a readable letter, or the raw message; `--row` and `--limit`
//! select; `--out` replaces an earlier preview; and a very large file streams through.

use std::process::Stdio;

use crate::support::campaign::{TestCampaign, many_recipients};
use crate::support::mail;

const NO_RELAY: u16 = 2525;

/// The rows a text preview shows, from its `──── row N · ... ────` lines.
fn rows_shown(stdout: &str) -> Vec<usize> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("──── row "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn the_text_format_shows_headers_the_text_part_and_the_attachments() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    let run = campaign.run(&["preview", "--row", "3"]);
    run.expect_code(0);
    assert_eq!(run.stderr, "");
    let message_id = mail::parse(&campaign.raw_letter(3))
        .message_id()
        .map(|id| format!("<{id}>"))
        .unwrap();
    assert_eq!(
        run.stdout,
        format!(
            "──── row 3 · Council of Europe ────
From:        Commissioner for Human Rights <ombudsman@ombudsman.example>
To:          Council of Europe <info@coe.example>
Cc:          registry@ombudsman.example, Press Office <press@ombudsman.example>
Bcc:         archive@ombudsman.example, audit@ombudsman.example
Reply-To:    office@ombudsman.example
Subject:     Statement of 19 January 2024 for Council of Europe
X-Campaign:  statement-2024-01-19
X-Recipient-Category: COE
Message-ID:  {message_id}
Template:    templates/letter.hbs
Attachment:  statement.pdf (application/pdf, 148 bytes)
Attachment:  annex.txt (text/plain, 43 bytes)
Attachment:  photo.png (image/png, 69 bytes)

Dear Secretary General,

I have the honour to transmit to Council of Europe the statement attached to this letter.

"
        )
    );
}

#[test]
fn the_raw_format_prints_the_message_as_it_will_be_sent() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    let raw = campaign.raw_letter(2);
    let message = mail::parse(&raw);
    assert_eq!(
        message.subject(),
        Some("Statement of 19 January 2024 for United Nations")
    );
    assert_eq!(mail::attachments(&message).len(), 2);
    // The same bytes as the .eml that --out writes, but for the Date line (and the CRLF that
    // separates one printed message from the next).
    let eml = &campaign.preview_out()[0];
    let raw = raw.strip_suffix(b"\r\n").expect("a message ends with CRLF");
    assert_eq!(
        String::from_utf8_lossy(&mail::without_date(raw)),
        String::from_utf8_lossy(&mail::without_date(eml))
    );
}

#[test]
fn row_and_limit_select_the_letters() {
    let campaign = TestCampaign::new();
    campaign.file("recipients.csv", many_recipients(6)); // rows 2 to 7

    let shown = |args: &[&str]| {
        let run = campaign.run(args);
        run.expect_code(0);
        rows_shown(&run.stdout)
    };
    assert_eq!(shown(&["preview"]), [2, 3, 4, 5, 6, 7]);
    assert_eq!(shown(&["preview", "--row", "5", "--row", "3"]), [3, 5]);
    assert_eq!(shown(&["preview", "--limit", "2"]), [2, 3]);
    assert_eq!(
        shown(&[
            "preview", "--row", "4", "--row", "6", "--row", "7", "--limit", "2"
        ]),
        [4, 6]
    );

    let raw = campaign.run(&["preview", "--format", "raw", "--limit", "3"]);
    raw.expect_code(0);
    let ids = raw
        .stdout
        .lines()
        .filter(|l| l.starts_with("Message-ID: "))
        .count();
    assert_eq!(ids, 3, "three messages");

    campaign
        .run(&["preview", "--out", "out", "--row", "6"])
        .expect_code(0);
    let written: Vec<String> = campaign
        .emls("out")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, ["00006-r4_org4.example.eml"]);
}

#[test]
fn a_new_preview_replaces_the_letters_of_the_last_one_and_nothing_else() {
    let campaign = TestCampaign::new();
    assert_eq!(campaign.preview_out().len(), 2);
    campaign.file("out/notes.txt", "my own notes");
    // The second recipient leaves the list: its letter must not linger in out/.
    let csv = campaign.read("recipients.csv");
    let first_row_only: Vec<&str> = csv.lines().take(2).collect();
    campaign.file("recipients.csv", first_row_only.join("\n") + "\n");

    let emls = campaign.preview_out();
    assert_eq!(emls.len(), 1);
    assert_eq!(campaign.read("out/notes.txt"), "my own notes");
    let index = campaign.read("out/index.html");
    assert!(index.contains("00002-sg_un.example.html"));
    assert!(!index.contains("00003-"), "{index}");
}

/// 20,000 rows in a debug build, written to /dev/null: the pipeline streams, so this takes
/// seconds and flat memory. Only completion is asserted, not time.
#[test]
fn twenty_thousand_rows_stream_through_preview() {
    let campaign = TestCampaign::new();
    campaign.file("recipients.csv", many_recipients(20_000));
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("envoi"))
        .arg("--dir")
        .arg(campaign.path())
        .args(["preview", "--format", "raw"])
        .env("ENVOI_TODAY", "2024-01-19")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run envoi");
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(status.stderr.is_empty());
}
