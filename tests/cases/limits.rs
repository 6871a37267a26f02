//! Resource limits: a huge recipients file streams in bounded memory; an attachment over the
//! size limit, a cell over 1 MB and a template that includes itself are each refused with a
//! clear problem, never a crash, a hang or a letter.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::campaign::{LETTER, TestCampaign, many_recipients};
use crate::support::smtp_server::{ServerConfig, SmtpServer};

/// The peak resident memory `check` may reach on a million rows.
const MAX_RSS_KB: u64 = 200 * 1024;

/// `VmHWM` (peak resident set) of a running process, in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

use crate::support::run::output_text;

#[test]
#[ignore = "a million rows: run in release by .ci/hardening"]
fn a_million_rows_are_checked_in_bounded_memory() {
    const ROWS: usize = 1_000_000;
    let campaign = TestCampaign::new();
    {
        let file = std::fs::File::create(campaign.path().join("recipients.csv")).unwrap();
        let mut writer = std::io::BufWriter::new(file);
        writer.write_all(many_recipients(ROWS).as_bytes()).unwrap();
        writer.flush().unwrap();
    }
    let size = std::fs::metadata(campaign.path().join("recipients.csv"))
        .unwrap()
        .len();
    assert!(size > 50_000_000, "the file is {size} bytes");

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("envoi"))
        .arg("--dir")
        .arg(campaign.path())
        .arg("check")
        .env("ENVOI_TODAY", "2024-01-19")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Sample the peak while it runs: once the process is gone, so is its /proc entry. The
    // pipes are drained by threads so that the child never blocks on a full pipe.
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (drain(Box::new(stdout)), drain(Box::new(stderr)));
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1200),
            "check of a million rows took over 20 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert_eq!(status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains(&format!("{ROWS} letters ready")),
        "{out}\n{err}"
    );
    assert!(peak > 0, "no memory sample was taken");
    assert!(
        peak < MAX_RSS_KB,
        "check peaked at {} MB of resident memory on {ROWS} rows",
        peak / 1024
    );
    eprintln!(
        "check: {ROWS} rows in {:.1} s, peak RSS {} MB",
        started.elapsed().as_secs_f64(),
        peak / 1024
    );
}

#[test]
fn an_attachment_over_the_size_limit_is_refused_and_nothing_is_sent() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = TestCampaign::with_port(server.port());
    // 50 MB, sparse: the size is what matters, and it costs no disk.
    std::fs::create_dir_all(campaign.path().join("attachments")).unwrap();
    std::fs::File::create(campaign.path().join("attachments/annex.pdf"))
        .unwrap()
        .set_len(50 * 1024 * 1024)
        .unwrap();
    campaign.file(
        "templates/letter.hbs",
        LETTER.replacen(
            "+++\n",
            "+++\nattachments = [\"attachments/annex.pdf\"]\n",
            1,
        ),
    );
    let out = campaign.envoi(&["check"]).output().unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("templates/letter.hbs: attachments: attachments total 52.4 MB")
            && text.contains("keep attachments under 18 MB"),
        "{text}"
    );
    // The same problem on every row is listed once, with its rows.
    assert!(
        text.contains("(rendering recipients.csv rows 2 and 3)\n") && !text.contains(" row 2)"),
        "{text}"
    );

    let out = campaign.envoi(&["send", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert_eq!(server.received_count(), 0);
    assert!(campaign.log_rows().is_empty());
}

#[test]
fn a_cell_over_1_mb_is_refused_naming_its_row_and_column() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = TestCampaign::with_port(server.port());
    let huge = "Ə".repeat(5 * 1024 * 1024); // 10 MB of UTF-8
    campaign.file(
        "recipients.csv",
        format!(
            "email,organisation,name,salutation,language\n\
             sg@un.example,United Nations,António Guterres,Your Excellency,\n\
             sg@coe.example,\"{huge}\",Marija Pejčinović Burić,Dear Secretary General,\n"
        ),
    );
    let expected = "recipients.csv, row 3, column \"organisation\": this cell holds 10.5 MB of text, more than the 1 MB a cell may hold";
    let out = campaign.envoi(&["check"]).output().unwrap();
    let text = output_text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.contains(expected), "{}", &text[..text.len().min(2000)]);
    // The cell is named, not echoed: the output stays small.
    assert!(text.len() < 10_000, "check printed {} bytes", text.len());

    let out = campaign.envoi(&["send", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(server.received_count(), 0);

    // Told to skip bad rows, the good row goes and the big one is logged as skipped.
    let out = campaign
        .envoi(&["send", "--yes", "--skip-bad-rows"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_eq!(server.received_count(), 1);
    // A row refused while reading carries no trusted address: it is logged by its row.
    let rows = campaign.log_rows();
    let skipped: Vec<_> = rows.iter().filter(|r| r.status == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{rows:?}");
    assert_eq!(skipped[0].row, 3);
    assert!(skipped[0].detail.contains("more than the 1 MB"), "{rows:?}");
    let log = campaign.read("delivery-log.csv");
    assert!(log.len() < 10_000, "the log holds {} bytes", log.len());
}

/// `check` on the campaign must end within a minute with exit 2 and `expected` in its output.
fn refused_quickly(campaign: &TestCampaign, expected: &str) {
    let started = Instant::now();
    let out = campaign
        .envoi(&["check"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_partial_that_includes_itself_is_an_error_not_a_hang() {
    let campaign = TestCampaign::new();
    campaign.file(
        "templates/statement.md",
        "The statement.\n\n{{> statement}}\n",
    );
    refused_quickly(
        &campaign,
        "templates/statement.md, line 3: the template includes itself, which would never end (templates/statement.md, line 3 → templates/statement.md); remove that inclusion",
    );
    // Through another partial.
    campaign
        .file("templates/statement.md", "The statement.\n\n{{> annex}}\n")
        .file("templates/annex.md", "Annex.\n\n{{> statement}}\n");
    refused_quickly(
        &campaign,
        "(templates/annex.md, line 3 → templates/statement.md, line 3 → templates/annex.md); remove one of these inclusions",
    );
}

#[test]
fn a_block_partial_that_includes_itself_is_an_error_not_a_crash() {
    // Before it was refused, this overflowed the stack and killed envoi with SIGABRT (134).
    let campaign = TestCampaign::new();
    campaign.file(
        "templates/statement.md",
        "The statement.\n{{#> statement}}{{/statement}}\n",
    );
    refused_quickly(
        &campaign,
        "templates/statement.md, line 2: the template includes itself, which would never end",
    );
    // A partial that includes the letter's body by the name it is registered under.
    campaign
        .file(
            "templates/statement.md",
            "The statement.\n\n{{> letter/body}}\n",
        )
        .file("templates/annex.md", "");
    refused_quickly(
        &campaign,
        "templates/statement.md, line 3: the templates include one another in a loop that would never end (templates/letter.hbs, line ",
    );
    // `{{> body}}` names no template: the body is not a partial.
    campaign.file("templates/statement.md", "The statement.\n\n{{> body}}\n");
    refused_quickly(
        &campaign,
        "the template includes {{> body}} but there is no body.md beside it",
    );
}

#[test]
fn an_inline_partial_that_includes_itself_is_an_error_not_a_crash() {
    // Before it was refused, this overflowed the stack and killed envoi with SIGABRT.
    let campaign = TestCampaign::new();
    campaign.file(
        "templates/letter.hbs",
        "+++\nsubject = \"S\"\n+++\n{{#*inline \"loop\"}}again {{> loop}}{{/inline}}\n{{> loop}}\n",
    );
    refused_quickly(
        &campaign,
        "templates/letter.hbs, line 4: inline partials and other decorators",
    );
}

#[test]
fn a_block_partial_without_a_loop_renders_its_content() {
    let campaign = TestCampaign::new();
    campaign
        .file(
            "templates/statement.md",
            "{{#> layout}}Inside the block.{{/layout}}\n",
        )
        .file(
            "templates/layout.md",
            "Before. {{> @partial-block}} After.\n",
        );
    let out = campaign
        .envoi(&["preview", "--limit", "1"])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Before. Inside the block. After."), "{text}");
}
