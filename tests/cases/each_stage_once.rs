//! One `send` reads the recipients file once and composes each letter once (issue 11): the
//! letters that go out are the ones checked and confirmed, and attachments are read and
//! encoded once. Run in-process, so that the library's per-thread counts can be read.

use clap::Parser;
use envoi::pipeline::stats::{self, Stats};

use crate::support::relay::{RelayConfig, plain_server, recipients};
use crate::support::smtp_server::Faults;

/// Runs `envoi --dir <campaign> <args>` on this thread; returns its exit code and the counts.
fn run(dir: &std::path::Path, args: &[&str]) -> (u8, Stats) {
    stats::take();
    let dir = dir.to_str().expect("a UTF-8 temporary path");
    let cli = envoi::cli::Cli::parse_from([&["envoi", "--dir", dir][..], args].concat());
    let code = match envoi::cli::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => err.exit_code(),
    };
    (code, stats::take())
}

#[test]
fn a_send_reads_the_recipients_once_and_composes_each_letter_once() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&recipients(5));

    let (code, counts) = run(
        campaign.path(),
        &["send", "--yes", "--row", "3", "--row", "5"],
    );
    assert_eq!(code, 0);
    assert_eq!(server.received_count(), 2);
    assert_eq!(
        counts,
        Stats {
            recipients_opened: 1,
            letters_composed: 2
        }
    );

    // The rest: the two sent are planned against the log but not sent again.
    let (code, counts) = run(campaign.path(), &["send", "--yes"]);
    assert_eq!(code, 0);
    assert_eq!(server.received_count(), 5);
    assert_eq!(
        counts,
        Stats {
            recipients_opened: 1,
            letters_composed: 5
        }
    );

    // The checks folded into that one pass still refuse before anything is sent.
    let (code, counts) = run(campaign.path(), &["send", "--yes", "--row", "9"]);
    assert_eq!(code, 2);
    assert_eq!(counts.recipients_opened, 1);
    let empty = RelayConfig::plain(&server).campaign(&recipients(0));
    let (code, counts) = run(empty.path(), &["send", "--yes"]);
    assert_eq!(code, 2);
    assert_eq!(counts.recipients_opened, 1);
    assert!(!empty.path().join("delivery-log.csv").exists());
    assert_eq!(server.received_count(), 5);
}
