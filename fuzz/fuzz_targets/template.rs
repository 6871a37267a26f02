//! Any letter template (subject, an extra header, the body and a partial) rendered with any
//! row values: loading either works or fails with a problem naming the template line; rendering
//! either gives a message that parses back with well-folded headers, or problems naming the row.
#![no_main]

use arbitrary::Arbitrary;
use envoi::campaign::CampaignPaths;
use envoi::pipeline::{Pipeline, RowFilter};
use envoi::{Error, Problem};
use envoi_fuzz::checks;
use libfuzzer_sys::fuzz_target;

/// Keeps templates small: the point is odd syntax and values, not huge ones.
const MAX_TEXT: usize = 400;

#[derive(Debug, Arbitrary)]
struct Input {
    subject: String,
    header: String,
    body: String,
    statement: String,
    name: String,
    organisation: String,
    note: String,
}

fn short(text: &str) -> &str {
    match text.char_indices().nth(MAX_TEXT) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A TOML basic string holding `text` exactly.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn load_problem_is_placed(problem: &Problem) -> bool {
    problem.location.line.is_some()
}

fuzz_target!(|input: Input| {
    let dir = envoi_fuzz::scratch_dir("template");
    let letter = format!(
        "+++\nsubject = {}\n[headers]\nX-Note = {}\n+++\n{}",
        toml_string(short(&input.subject)),
        toml_string(short(&input.header)),
        short(&input.body)
    );
    let csv = checks::recipients_csv(
        &["email", "name", "organisation", "note"],
        &[vec![
            "fuzz@x.example".to_owned(),
            short(&input.name).to_owned(),
            short(&input.organisation).to_owned(),
            short(&input.note).to_owned(),
        ]],
    );
    checks::write_campaign(&dir, &letter, short(&input.statement), &csv);
    let paths = CampaignPaths {
        dir,
        ..CampaignPaths::default()
    };
    let pipeline = match Pipeline::open(paths, None) {
        Ok(pipeline) => pipeline,
        Err(Error::Input(problem)) => {
            assert!(load_problem_is_placed(&problem), "{problem}\n{input:?}");
            return;
        }
        Err(Error::Problems(problems)) => {
            for problem in &problems {
                assert!(load_problem_is_placed(problem), "{problem}\n{input:?}");
            }
            return;
        }
        Err(other) => panic!("{other}\n{input:?}"),
    };
    let all = RowFilter::default();
    for letter in pipeline.letters(&all).expect("recipients open") {
        match letter.result {
            Ok(composed) => {
                checks::round_trips(&composed).unwrap_or_else(|e| panic!("{e}\n{input:?}"));
                checks::headers_are_well_folded(&composed.bytes)
                    .unwrap_or_else(|e| panic!("{e}\n{input:?}"));
            }
            Err(problems) => {
                for problem in &problems {
                    checks::names_row_or_line(problem, letter.row)
                        .unwrap_or_else(|e| panic!("{e}\n{input:?}"));
                }
            }
        }
    }
});
