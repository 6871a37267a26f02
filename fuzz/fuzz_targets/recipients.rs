//! Any bytes as `recipients.csv`: the loader never panics, accepts only rows it can vouch for,
//! and every problem names the file and, for a row, its spreadsheet row.
#![no_main]

use std::path::Path;

use envoi::Error;
use envoi::recipients::Recipients;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "recipients.csv";

fuzz_target!(|data: &[u8]| {
    let path = envoi_fuzz::scratch_dir("recipients").join(NAME);
    std::fs::write(&path, data).expect("write recipients");
    let recipients = match Recipients::open(&path, Path::new(NAME)) {
        Ok(recipients) => recipients,
        Err(Error::Input(problem)) => {
            assert_eq!(problem.location.file, Path::new(NAME), "{problem}");
            let whole_file = problem.message.starts_with("the file is empty");
            assert!(
                whole_file || problem.location.row.is_some() || problem.message.contains(" row "),
                "a file-level problem that names no row: {problem}"
            );
            return;
        }
        Err(other) => panic!("unexpected error for a readable file: {other}"),
    };
    // Rows can only be as many as there are line feeds (plus an unterminated last line).
    let max_row = data.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut last_row = 1;
    for result in recipients {
        match result {
            Ok(recipient) => {
                let row = recipient.row();
                assert!(
                    row > last_row && row <= max_row,
                    "row {row} after {last_row}"
                );
                last_row = row;
                assert!(
                    lettre_address_ok(recipient.email()),
                    "{:?}",
                    recipient.email()
                );
                for (name, value) in recipient.columns() {
                    assert_eq!(value, value.trim(), "column {name} is not trimmed");
                    assert!(value.len() <= envoi::recipients::MAX_CELL_BYTES);
                }
            }
            Err(problems) => {
                assert!(!problems.is_empty());
                let row = problems[0]
                    .location
                    .row
                    .expect("a row problem names its row");
                assert!(
                    row > last_row && row <= max_row,
                    "row {row} after {last_row}"
                );
                last_row = row;
                for problem in &problems {
                    assert_eq!(problem.location.file, Path::new(NAME), "{problem}");
                    assert_eq!(problem.location.row, Some(row), "{problem}");
                    assert!(!problem.to_string().contains('\n'), "{problem}");
                }
            }
        }
    }
});

/// An accepted address is one bare address, exactly as compose will put it in To.
fn lettre_address_ok(email: &str) -> bool {
    !email.contains(['\r', '\n', '<', '>'])
        // The domain goes out in A-label form, so the parsed address may differ from the cell
        // (in case, or in script); it must parse, and as a bare address.
        && envoi::compose::parse_mailbox(email).is_ok_and(|m| m.name.is_none())
        // Nor does it hold a character the cell would not show.
        && envoi::compose::InvisibleCharacter::check(email).is_ok()
}
