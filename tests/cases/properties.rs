//! Property tests: whatever Unicode a row holds (Azerbaijani, Arabic with direction marks,
//! Cyrillic, emoji, combining marks, very long words), the composed message reads back with
//! exactly that text, keeps its shape, and folds its headers within RFC 5322 and RFC 2047.
//! Plus the regression tests for what fuzzing found. Driven through the library, on a campaign
//! folder built for each case.

use proptest::prelude::*;

use envoi::campaign::CampaignPaths;
use envoi::compose::Composed;
use envoi::pipeline::{Letter, Pipeline, RowFilter};

#[allow(dead_code)] // shared with the fuzz targets, which use all of it
#[path = "../../fuzz/src/checks.rs"]
mod checks;

const BASELINE: [&str; 6] = [
    "base@x.example",
    "Ann Example",
    "Org",
    "Dear Ann",
    "Note",
    "Office",
];

/// Composes the baseline row and `row` (same columns as [`checks::COLUMNS`]).
fn compose(row: [&str; 6]) -> (Composed, Letter) {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Vec<String>> = [BASELINE, row]
        .iter()
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect();
    let csv = checks::recipients_csv(&checks::COLUMNS, &rows);
    checks::write_campaign(dir.path(), checks::LETTER, checks::STATEMENT, &csv);
    let pipeline = Pipeline::open(
        CampaignPaths {
            dir: dir.path().to_path_buf(),
            ..CampaignPaths::default()
        },
        None,
    )
    .expect("campaign opens");
    let all = RowFilter::default();
    let mut letters: Vec<Letter> = pipeline.letters(&all).unwrap().collect();
    assert_eq!(letters.len(), 2, "a value added or removed a row");
    let letter = letters.pop().unwrap();
    let baseline = letters.pop().unwrap().result.expect("baseline composes");
    (baseline, letter)
}

/// Composes `row` and checks every property; returns the composed letter.
fn composes_faithfully(row: [&str; 6]) -> Result<Composed, TestCaseError> {
    let (baseline, letter) = compose(row);
    let composed = match letter.result {
        Ok(composed) => composed,
        Err(problems) => {
            let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(TestCaseError::fail(format!("refused: {all:?}")));
        }
    };
    let fail = |e: String| TestCaseError::fail(e);
    checks::same_shape(&baseline, &composed).map_err(fail)?;
    checks::round_trips(&composed).map_err(fail)?;
    checks::headers_are_well_folded(&composed.bytes).map_err(fail)?;
    // And what was read back is what the row held, untouched by rendering.
    let [_, name, organisation, _, note, sender] = row.map(str::trim);
    let subject = format!("Statement for {organisation}: {note}");
    prop_assert_eq!(composed.subject.as_str(), subject.trim());
    if !name.is_empty() {
        prop_assert_eq!(composed.to.name.as_deref(), Some(name));
        prop_assert_eq!(
            composed.cc[0].name.clone(),
            Some(format!("Office of {name}"))
        );
    }
    if !sender.is_empty() {
        prop_assert_eq!(composed.from.name.as_deref(), Some(sender));
    }
    prop_assert_eq!(&composed.headers[0].1, note);
    prop_assert!(
        checks::normalise_newlines(&composed.text).contains(note),
        "the text part lost {:?}:\n{}",
        note,
        composed.text
    );
    Ok(composed)
}

/// Text a spreadsheet cell could hold, from the scripts and traps that matter here.
fn cell() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("Azərbaycan Respublikasının İnsan Hüquqları üzrə Müvəkkili".to_owned()),
        Just("Şəhla Əliyeva-Ğəniyeva".to_owned()),
        Just("\u{200F}مفوض حقوق الإنسان\u{200E} (ombudsman)".to_owned()),
        Just("\u{202B}نص\u{202C}".to_owned()),
        Just("Уполномоченный по правам человека".to_owned()),
        Just("👩🏽‍⚖️ 🇦🇿 ✉️".to_owned()),
        Just("e\u{301}\u{302}\u{323} a\u{308}".to_owned()),
        Just("Smith, John \"JJ\" <not@an.address>; (x)".to_owned()),
        Just("=?utf-8?b?RXZpbA==?= =?".to_owned()),
        "[a-z]{70,1200}",
        "[əüçşığö]{30,400}",
        "[ -~]{0,40}",
        "\\PC{0,30}",
        Just("  ".to_owned()),
    ];
    proptest::collection::vec(piece, 0..4).prop_map(|pieces| pieces.concat())
}

/// `\PC` is any character that is not a control character: envoi refuses those in headers.
fn visible(value: String) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_unicode_text_survives_compose_and_parse(
        name in cell(), organisation in cell(), salutation in cell(), note in cell(),
        sender in cell(),
    ) {
        let (name, organisation, salutation, note, sender) =
            (visible(name), visible(organisation), visible(salutation), visible(note), visible(sender));
        composes_faithfully(["r@x.example", &name, &organisation, &salutation, &note, &sender])?;
    }

    #[test]
    fn folding_never_breaks_an_encoded_word(
        subject in proptest::collection::vec(cell(), 1..6).prop_map(|v| visible(v.join(" "))),
    ) {
        let composed = composes_faithfully(["r@x.example", "", &subject, "", &subject, ""])?;
        prop_assert!(composed.bytes.len() > subject.len());
    }
}

// Regression tests: each was a failure found by `cargo fuzz run compose` (see SECURITY.md).

#[test]
fn a_control_character_in_a_cell_is_a_problem_naming_its_row_and_column() {
    // A NUL in a Cc display name made lettre drop the address from the Cc header while it
    // stayed in the envelope: a hidden recipient.
    let (_, letter) = compose(["r@x.example", "\u{1}!\0", "Org", "", "", ""]);
    let problems: Vec<String> = letter
        .result
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.contains(&"recipients.csv, row 3, column \"name\": this cell contains an invisible control character (U+0001), which cannot go into the cc header; retype the cell in the spreadsheet".to_owned()),
        "{problems:?}"
    );
}

#[test]
fn a_name_with_a_comma_or_an_address_stays_one_cc() {
    for name in [
        "Smith, John",
        "x <evil@evil.example>, y",
        "a@b.example; c@d.example",
    ] {
        let composed = composes_faithfully(["r@x.example", name, "Org", "", "", ""]).unwrap();
        let cc: Vec<String> = composed.cc.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(
            cc,
            ["cc@ombudsman.example", "archive@ombudsman.example"],
            "{name}"
        );
    }
}

#[test]
fn spaces_in_display_names_and_next_to_encoded_words_are_kept() {
    composes_faithfully(["r@x.example", ",  @", "\u{6db}  ;t", "", "a  b", "x  y"]).unwrap();
}

#[test]
fn text_shaped_like_an_encoded_word_reads_back_literally() {
    let literal = "=?utf-8?b?RXZpbA==?=";
    let composed =
        composes_faithfully(["r@x.example", literal, literal, "", literal, literal]).unwrap();
    assert!(!composed.subject.contains("Evil"));
}

#[test]
fn very_long_words_are_folded_within_998_octets() {
    let long = "a".repeat(1200);
    let composed = composes_faithfully(["r@x.example", &long, &long, "", &long, &long]).unwrap();
    assert!(composed.bytes.len() > 4 * 1200);
}

#[test]
fn a_backslash_quote_in_a_name_is_kept() {
    // Found by the property test: the unescaping meant for quoted names in templates ate the
    // backslash of a row value.
    composes_faithfully(["r@x.example", "\\\"", "", "", "", "C:\\\"x\\\""]).unwrap();
}

#[test]
fn a_bad_date_format_in_a_template_is_a_problem_not_a_crash() {
    // Found by `cargo fuzz run template`: chrono's formatter failed and envoi panicked.
    let dir = tempfile::tempdir().unwrap();
    let csv = checks::recipients_csv(&["email"], &[vec!["r@x.example".to_owned()]]);
    let letter = "+++\nsubject = \"On {{date \\\"%Q\\\"}}\"\n+++\nDear all,\n";
    checks::write_campaign(dir.path(), letter, "", &csv);
    let paths = CampaignPaths {
        dir: dir.path().to_path_buf(),
        ..CampaignPaths::default()
    };
    let pipeline = Pipeline::open(paths, None).unwrap();
    let all = RowFilter::default();
    let letter = pipeline.letters(&all).unwrap().next().unwrap();
    let problems: Vec<String> = letter
        .result
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "templates/letter.hbs, line 2: \"%Q\" is not a date format; use codes such as %e %B %Y (day, month, year) (rendering recipients.csv row 2)"
        ]
    );
}

#[test]
fn a_row_value_holding_the_mime_boundary_cannot_start_a_part() {
    // Found by `cargo fuzz run template`: boundaries derive from the Message-ID, so they can be
    // predicted, and a body line starting with one ended the text part early.
    let plain = composes_faithfully(["r@x.example", "", "Org", "Dear all", "", ""]).unwrap();
    let text = String::from_utf8_lossy(&plain.bytes).into_owned();
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a multipart boundary")
        .to_owned();
    let hostile = format!("--{boundary}");
    let composed = composes_faithfully(["r@x.example", "", "Org", &hostile, "", ""]).unwrap();
    let bytes = String::from_utf8_lossy(&composed.bytes).into_owned();
    assert!(
        !bytes.contains(&format!("boundary=\"{boundary}\"")),
        "the boundary did not change"
    );
}
