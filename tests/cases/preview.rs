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

/// The gallery is what the office signs off: each letter's page shows what the recipient's mail
/// program will (Date, From as a person writes it, the attachments, openable), the index counts
/// problems and marks letters in another language, and no letter scrolls in a frame of a frame.
#[test]
fn the_gallery_shows_each_letter_as_it_will_arrive_and_the_index_counts_problems() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    campaign
        .file(
            "templates/letter.fr.hbs",
            "+++\nsubject = \"Déclaration pour {{organisation}}\"\nfrom = \"Commissaire (Ombudsman), Bureau <ombudsman@ombudsman.example>\"\n+++\n{{salutation}},\n\nTexte.\n",
        )
        .file(
            "recipients.csv",
            campaign.read("recipients.csv").replace("email,organisation,name,salutation,category,cc,bcc,attachments", "email,organisation,name,salutation,category,cc,bcc,attachments,language").replace("attachments/annex.txt\n", "attachments/annex.txt,\n").replace("attachments/photo.png\n", "attachments/photo.png,fr\n")
                + "broken@coe.example,Broken,,Dear,coe,,,attachments/missing.pdf,\n",
        );
    let run = campaign.run(&["preview", "--out", "out"]);
    run.expect_code(2);

    let page = campaign.read("out/00003-info_coe.example.html");
    // From without the quotes the header needs around a name with a comma.
    assert!(
        page.contains("<th>From</th><td dir=auto>Commissaire (Ombudsman), Bureau &lt;ombudsman@ombudsman.example&gt;</td>"),
        "{page}"
    );
    let eml = std::fs::read(campaign.path().join("out/00003-info_coe.example.eml")).unwrap();
    let date = mail::header_lines(&eml)
        .into_iter()
        .find_map(|l| l.strip_prefix("Date: ").map(str::to_owned))
        .unwrap();
    assert!(
        page.contains(&format!("<th>Date</th><td dir=auto>{date}</td>")),
        "{page}"
    );
    assert!(page.contains("<th>Language</th>"), "{page}");
    // Attachments are links to the campaign's own files, and the links resolve.
    for name in ["annex.txt", "photo.png"] {
        let href = format!("../attachments/{name}");
        assert!(
            page.contains(&format!("<a href=\"{href}\">{name}</a>")),
            "{page}"
        );
        assert!(campaign.path().join("out").join(&href).is_file(), "{href}");
    }
    // The letter is in one frame sized to it, on a page of its own; the index has no frames.
    assert_eq!(page.matches("<iframe").count(), 1, "{page}");
    assert!(
        page.contains("sandbox=\"allow-same-origin\""),
        "no scripts in the letter"
    );
    assert!(
        page.contains("<a href=\"00002-sg_un.example.html\" rel=prev>"),
        "{page}"
    );
    let first = campaign.read("out/00002-sg_un.example.html");
    assert!(
        first.contains("<a href=\"00003-info_coe.example.html\" rel=next>"),
        "{first}"
    );

    let index = campaign.read("out/index.html");
    assert!(!index.contains("<iframe"), "{index}");
    assert!(
        index.contains("<span class=lang title=\"letter in another language\">fr</span>"),
        "{index}"
    );
    assert_eq!(index.matches("class=lang").count(), 1, "{index}");
    assert!(
        index.contains("2 letters · 1 in another language · <span class=bad>1 problem in 1 letter not rendered</span>"),
        "{index}"
    );
    assert!(
        index.contains("attachment &quot;attachments/missing.pdf&quot; does not exist"),
        "{index}"
    );
}

/// `envoi preview | head -1`: the reader leaving is not an error, and envoi stops writing.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_preview_quietly() {
    use std::io::{BufRead, BufReader};
    let campaign = TestCampaign::new();
    // Far more than a pipe holds, so envoi is still writing when the reader goes.
    campaign.file("recipients.csv", many_recipients(2_000));
    let mut child = crate::support::run::process_in(campaign.path(), &["preview"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("──── row 2 "), "{first}");
    // The reader (and its end of the pipe) is gone here.
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
