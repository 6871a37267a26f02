//! `send`, `check` and `preview` compose on every core, and the letters still come out in row
//! order: the plan, the dry-run listing, the spool and the problem list are what one thread
//! makes. Driven through the library with a set number of threads, and through the binary
//! (which takes one per core).

use std::num::NonZeroUsize;
use std::ops::ControlFlow;

use envoi::Error;
use envoi::campaign::CampaignPaths;
use envoi::pipeline::{Letter, Pipeline, RowFilter};
use envoi::spool::Spool;

use crate::support::campaign::TestCampaign;
use crate::support::relay::{RelayConfig, plain_server};
use crate::support::smtp_server::Faults;

const ROWS: usize = 200;
/// Spreadsheet rows with an address that is not one (rows start at 2, after the header).
const BAD: [usize; 2] = [61, 141];

/// `ROWS` recipients; every ninth has a long salutation, so that its letter takes longer to
/// compose than its neighbours' and the threads finish out of order.
fn recipients() -> String {
    let mut csv = String::from("email,organisation,name,salutation,language\n");
    for i in 0..ROWS {
        let email = match BAD.contains(&(i + 2)) {
            true => format!("person{i}@@org{i}.example"),
            false => format!("person{i}@org{i}.example"),
        };
        let salutation = match i % 9 {
            0 => "Dear colleague and friend ".repeat(800),
            _ => "Dear colleague".to_owned(),
        };
        csv.push_str(&format!(
            "{email},Organisation {i},Person {i},{salutation},\n"
        ));
    }
    csv
}

/// What of a letter must not depend on the threads: its row, address, and bytes or problems.
fn summary(letter: Letter) -> (usize, String, Result<Vec<u8>, Vec<String>>) {
    let result = match letter.result {
        Ok(composed) => Ok(composed.bytes),
        Err(problems) => Err(problems.iter().map(ToString::to_string).collect()),
    };
    (letter.row, letter.email, result)
}

fn spooled(spool: &mut Spool) -> Vec<(usize, Vec<u8>)> {
    spool
        .letters()
        .unwrap()
        .map(|letter| {
            let letter = letter.unwrap();
            (letter.row, letter.bytes)
        })
        .collect()
}

#[test]
fn letters_and_the_spool_are_in_row_order_on_any_number_of_threads() {
    let campaign = TestCampaign::new();
    campaign.file("recipients.csv", recipients());
    let paths = CampaignPaths {
        dir: campaign.path().to_path_buf(),
        ..CampaignPaths::default()
    };
    // One pipeline, so that every letter carries the same date.
    let mut pipeline = Pipeline::open(paths, None).unwrap();
    let all = RowFilter::default();
    let mut one_spool = Spool::new();
    let one_thread: Vec<_> = pipeline
        .letters(&all)
        .unwrap()
        .inspect(|l| l.result.iter().for_each(|c| one_spool.push(c).unwrap()))
        .map(summary)
        .collect();
    assert_eq!(one_thread.len(), ROWS);
    let rows: Vec<usize> = one_thread.iter().map(|l| l.0).collect();
    assert_eq!(rows, (2..ROWS + 2).collect::<Vec<_>>());
    for (row, _, result) in &one_thread {
        assert_eq!(result.is_err(), BAD.contains(row), "row {row}");
    }

    for threads in [2, 3, 8] {
        pipeline = pipeline.with_threads(NonZeroUsize::new(threads).unwrap());
        let (mut letters, mut spool) = (Vec::new(), Spool::new());
        pipeline
            .each_letter(&all, None, |letter| {
                if let Ok(composed) = &letter.result {
                    spool.push(composed).unwrap();
                }
                letters.push(summary(letter));
                Ok::<_, Error>(ControlFlow::Continue(()))
            })
            .unwrap();
        assert!(letters == one_thread, "{threads} threads: other letters");
        assert!(
            spooled(&mut spool) == spooled(&mut one_spool),
            "{threads} threads: another spool"
        );
    }

    // --row and --limit select the same letters.
    let some = RowFilter::new(&[5, 61, 70, 100, 150], Some(3));
    let mut rows = Vec::new();
    pipeline
        .each_letter(&some, None, |letter| {
            rows.push(letter.row);
            Ok::<_, Error>(ControlFlow::Continue(()))
        })
        .unwrap();
    assert_eq!(rows, vec![5, 61, 70]);
}

#[test]
fn the_dry_run_lists_the_rows_in_order() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&recipients());
    let run = campaign.send(&["--dry-run", "--skip-bad-rows", "--limit", "150"]);
    run.expect_code(0);
    let listed: Vec<String> = run
        .stdout_lines()
        .into_iter()
        .filter(|l| l.starts_with("row "))
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = (0..ROWS)
        .map(|i| {
            let row = i + 2;
            let (what, email) = if BAD.contains(&row) {
                ("has problems, skipped", String::new())
            } else if i - BAD.iter().filter(|&&b| b < row).count() < 150 {
                ("would send", format!("person{i}@org{i}.example"))
            } else {
                (
                    "beyond --limit, not this run",
                    format!("person{i}@org{i}.example"),
                )
            };
            format!("row {row:>5}  {what}  {email}")
        })
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(server.connections_opened(), 0);
}

#[test]
fn bad_rows_in_the_middle_still_refuse_the_run_with_their_rows_in_order() {
    let server = plain_server(Faults::none());
    let campaign = RelayConfig::plain(&server).campaign(&recipients());
    let run = campaign.send(&[]);
    run.expect_code(2).expect_stderr(
        "2 letters have problems (listed above); nothing was sent. Correct them, or send the others with --skip-bad-rows",
    );
    let problems: Vec<&str> = run
        .stdout_lines()
        .into_iter()
        .filter(|l| l.contains("is not an email address"))
        .collect();
    assert_eq!(problems.len(), 2, "{:?}", run.stdout_lines());
    for (line, (row, i)) in problems.iter().zip([(61, 59), (141, 139)]) {
        assert!(
            line.starts_with(&format!(
                "recipients.csv, row {row}, column \"email\": \"person{i}@@org{i}.example\" is not an email address"
            )),
            "{line}"
        );
    }
    assert_eq!(server.connections_opened(), 0);
    assert!(campaign.log_rows().is_empty());
}
