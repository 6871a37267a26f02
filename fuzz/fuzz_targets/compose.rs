//! Any row values through a letter that uses them in the subject, the From and Cc display
//! names, an extra header and the body: the message always parses back; it has exactly the
//! headers, recipients and MIME parts of a baseline letter; every value reads back as composed;
//! and a row that cannot be composed is refused with problems that name its row.
#![no_main]

use arbitrary::Arbitrary;
use envoi::campaign::CampaignPaths;
use envoi::pipeline::{Pipeline, RowFilter};
use envoi_fuzz::checks;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Row {
    name: String,
    organisation: String,
    salutation: String,
    note: String,
    sender: String,
}

/// The campaign, opened once. A pipeline keeps the reader it opened the recipients with, so it
/// is not `Sync`: one per thread (libFuzzer runs the target on one), leaked to live as long.
fn pipeline() -> &'static Pipeline {
    thread_local! {
        static PIPELINE: &'static Pipeline = Box::leak(Box::new(open_pipeline()));
    }
    PIPELINE.with(|pipeline| *pipeline)
}

fn open_pipeline() -> Pipeline {
    let dir = envoi_fuzz::scratch_dir("compose");
    let baseline = row(
        "base@x.example",
        ["Ann Example", "Org", "Dear Ann", "Note", "Office"],
    );
    let csv = checks::recipients_csv(&checks::COLUMNS, &[baseline]);
    checks::write_campaign(&dir, checks::LETTER, checks::STATEMENT, &csv);
    Pipeline::open(
        CampaignPaths {
            dir,
            ..CampaignPaths::default()
        },
        None,
    )
    .expect("the fuzz campaign opens")
}

fn row(email: &str, values: [&str; 5]) -> Vec<String> {
    std::iter::once(email)
        .chain(values)
        .map(str::to_owned)
        .collect()
}

fuzz_target!(|input: Row| {
    let pipeline = pipeline();
    let values = [
        input.name.as_str(),
        &input.organisation,
        &input.salutation,
        &input.note,
        &input.sender,
    ];
    let rows = [
        row(
            "base@x.example",
            ["Ann Example", "Org", "Dear Ann", "Note", "Office"],
        ),
        row("fuzz@x.example", values),
    ];
    let csv = checks::recipients_csv(&checks::COLUMNS, &rows);
    std::fs::write(pipeline.campaign.path("recipients.csv"), &csv).expect("write recipients");

    let all = RowFilter::default();
    let mut letters = pipeline.letters(&all).expect("recipients open");
    let baseline = letters
        .next()
        .expect("baseline row")
        .result
        .expect("the baseline letter composes");
    let Some(letter) = letters.next() else {
        return; // the values made the row blank: nothing to send, nothing to check
    };
    assert_eq!(letter.row, 3, "{input:?}");
    assert!(letters.next().is_none(), "a value added a row: {input:?}");
    let composed = match letter.result {
        Ok(composed) => composed,
        Err(problems) => {
            assert!(!problems.is_empty());
            for problem in &problems {
                if let Err(e) = checks::names_row_or_line(problem, 3) {
                    panic!("{e}\ninput: {input:?}");
                }
            }
            return;
        }
    };
    let fail = |e: String| -> ! { panic!("{e}\ninput: {input:?}") };
    checks::same_shape(&baseline, &composed).unwrap_or_else(|e| fail(e));
    checks::round_trips(&composed).unwrap_or_else(|e| fail(e));
    checks::headers_are_well_folded(&composed.bytes).unwrap_or_else(|e| fail(e));
    // Front-matter values are not escaped: the subject holds the cells exactly as typed.
    let expected = format!(
        "Statement for {}: {}",
        input.organisation.trim(),
        input.note.trim()
    );
    assert_eq!(composed.subject, expected.trim(), "{input:?}");
});
