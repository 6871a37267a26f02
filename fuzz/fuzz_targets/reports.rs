//! Any bytes as a delivery report, against the fixture log of `tests/fixtures/reports/`: parsing
//! never panics; every notice names an address and a well-formed status (or none); `track`
//! records at most one row per notice, each ending with the report's id, and reading the same
//! report again records nothing (idempotency). A panic inside mail-parser is caught by envoi
//! (that message is unreadable, the run goes on), so only such a panic is let through. The
//! field-group parsers take the bytes as text too. The seed corpus is the hand-written fixture
//! reports.
#![no_main]

use envoi::delivery_log::{DeliveryLog, History};
use envoi::tracking::fields::is_enhanced_status;
use envoi::tracking::ledger::report_id_of;
use envoi::tracking::{Applied, RawMessage, Tracker, dsn, mdn, parse};
use libfuzzer_sys::fuzz_target;

const LOG: &str = include_str!("../../tests/fixtures/reports/delivery-log.csv");

fuzz_target!(|bytes: &[u8]| {
    envoi_fuzz::tolerate_mail_parser_panics();
    let text = String::from_utf8_lossy(bytes);
    if let Ok(status) = dsn::parse(&text) {
        assert!(!status.notices.is_empty());
    }
    let _ = mdn::parse(&text);

    let raw = RawMessage {
        origin: "fuzz.eml".into(),
        bytes: bytes.to_vec(),
    };
    let Ok(Some(report)) = parse(&raw) else {
        return;
    };
    assert!(!report.id.is_empty());
    for notice in &report.notices {
        assert!(!notice.final_recipient.is_empty(), "{notice:?}");
        assert!(
            notice.status.is_empty() || is_enhanced_status(&notice.status),
            "{notice:?}"
        );
    }

    let dir = envoi_fuzz::scratch_dir("reports");
    let path = dir.join("delivery-log.csv");
    std::fs::write(&path, LOG).expect("write log");
    let _ = std::fs::remove_file(dir.join("delivery-log.csv.inflight"));
    let recorded = |expect_none: bool| {
        let (log, _) = DeliveryLog::open(&path).expect("open the log");
        let history = History::read(&path).expect("read the log");
        let mut tracker = Tracker::new(&history);
        let (applied, _) = tracker.read(&raw, &log).expect("record");
        log.close().expect("close");
        assert!(applied.len() == report.notices.len());
        let rows: Vec<_> = applied
            .into_iter()
            .filter_map(|a| match a {
                Applied::Recorded(entry) => Some(entry),
                _ => None,
            })
            .collect();
        for entry in &rows {
            assert_eq!(
                report_id_of(&entry.detail),
                Some(report.id.as_str()),
                "{entry:?}"
            );
        }
        assert!(
            !expect_none || rows.is_empty(),
            "a second reading recorded {rows:?}"
        );
    };
    recorded(false);
    recorded(true);
});
