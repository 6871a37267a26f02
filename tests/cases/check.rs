//! `envoi check`: every problem of every row in one run, a problem repeated on many rows once
//! with its rows, a one-line summary; and the campaign bundled with envoi passes it.

use crate::support::campaign::TestCampaign;
use crate::support::run::{bundled_campaign, envoi_in, run};

#[test]
fn a_good_campaign_is_ready() {
    let campaign = TestCampaign::new();
    let check = campaign.run(&["check"]);
    check.expect_code(0);
    assert_eq!(check.stdout, "2 letters ready; no problems found\n");
    assert_eq!(check.stderr, "");
}

#[test]
fn every_bad_row_is_listed_in_one_run_then_one_summary_line() {
    let campaign = TestCampaign::new();
    campaign.file(
        "recipients.csv",
        "email,organisation,name,salutation,language\n\
         sg@un.example,United Nations,,Your Excellency,\n\
         sg@@coe.example,Council of Europe,,Dear Secretary General,\n\
         sg@osce.example,OSCE,,Dear Secretary General,\n\
         ,OHCHR,,Dear High Commissioner,\n\
         sg@osce.example,OSCE (copy),,Dear Secretary General,\n",
    );
    let check = campaign.run(&["check"]);
    check.expect_code(2);
    assert_eq!(
        check.stdout_lines(),
        [
            "recipients.csv, row 3, column \"email\": \"sg@@coe.example\" is not an email address; correct it in the spreadsheet",
            "recipients.csv, row 5, column \"email\": the email cell is empty; fill in the address or delete the row",
            "recipients.csv, row 6, column \"email\": \"sg@osce.example\" is also in row 4; each addressee must appear once: delete one of the rows",
        ]
    );
    assert_eq!(
        check.stderr,
        "error: 3 problems found (2 of 5 letters ready); nothing was sent. Correct them and run envoi check again\n"
    );
}

/// Six rows, and a template that uses {{titel}} on every one of them.
fn six_rows_and_a_template_typo() -> TestCampaign {
    let campaign = TestCampaign::new();
    campaign
        .file(
            "recipients.csv",
            crate::support::campaign::many_recipients(6),
        )
        .file(
            "templates/letter.hbs",
            "+++\nsubject = \"Statement\"\n+++\n{{salutation}},\n\n{{titel}} {{name}}\n",
        );
    campaign
}

#[test]
fn a_template_problem_on_every_row_is_one_line_listing_its_rows_and_row_problems_still_show() {
    let campaign = six_rows_and_a_template_typo();
    let mut csv = campaign.read("recipients.csv");
    csv.push_str("not-an-address,Organisation 6,John Smith,Dear colleague,\n");
    campaign.file("recipients.csv", csv);

    let check = campaign.run(&["check"]);
    check.expect_code(2);
    assert_eq!(
        check.stdout_lines(),
        [
            "templates/letter.hbs, line 6, column 1: the template uses {{titel}} but recipients.csv has no column \"titel\" (its columns: email, organisation, name, salutation, language); add the column or correct the template (rendering recipients.csv rows 2, 3, 4 and 3 more)",
            "recipients.csv, row 8, column \"email\": \"not-an-address\" is not an email address; correct it in the spreadsheet",
        ]
    );
    assert_eq!(
        check.stderr,
        "error: 7 problems found (0 of 7 letters ready); nothing was sent. Correct them and run envoi check again\n"
    );
}

#[test]
fn a_cell_problem_on_many_rows_is_one_line_naming_the_first_rows_and_how_many_more() {
    let campaign = TestCampaign::new();
    // Rows 2..=45; the email cell is empty on rows 4, 9, 12 and 14..=44 (31 rows).
    let mut csv = String::from("email,organisation\n");
    for row in 2..=45 {
        let empty = [4, 9, 12].contains(&row) || (14..=44).contains(&row);
        let email = if empty {
            String::new()
        } else {
            format!("r{row}@org.example")
        };
        csv.push_str(&format!("{email},Organisation {row}\n"));
    }
    csv.push_str("not-an-address,Organisation 46\n");
    campaign.file("recipients.csv", csv).file(
        "templates/letter.hbs",
        "+++\nsubject = \"Statement\"\n+++\nTo {{organisation}}\n",
    );

    let check = campaign.run(&["check"]);
    check.expect_code(2);
    assert_eq!(
        check.stdout_lines(),
        [
            "recipients.csv, rows 4, 9, 12 and 31 more, column \"email\": the email cell is empty; fill in the address or delete the row",
            "recipients.csv, row 46, column \"email\": \"not-an-address\" is not an email address; correct it in the spreadsheet",
        ]
    );
    assert_eq!(
        check.stderr,
        "error: 35 problems found (10 of 45 letters ready); nothing was sent. Correct them and run envoi check again\n"
    );
}

#[test]
fn the_bundled_campaign_passes_check() {
    let check = run(envoi_in(bundled_campaign(), &["check"]));
    check.expect_code(0);
    assert_eq!(check.stdout, "36 letters ready; no problems found\n");
    assert_eq!(check.stderr, "");
}

#[test]
fn every_letter_of_the_bundled_campaign_renders() {
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().to_str().unwrap();
    let preview = run(envoi_in(bundled_campaign(), &["preview", "--out", out_arg]));
    preview.expect_code(0);
    assert_eq!(preview.stderr, "", "no row has a problem");
    let emls = std::fs::read_dir(out.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count();
    assert_eq!(emls, 36);
}

/// `send` and `preview` print a problem repeated on many rows the way `check` does: one line
/// that names its rows, not one line per row.
#[test]
fn send_and_preview_list_a_repeated_problem_once_with_its_rows() {
    let campaign = six_rows_and_a_template_typo();
    let line = "templates/letter.hbs, line 6, column 1: the template uses {{titel}} but recipients.csv has no column \"titel\" (its columns: email, organisation, name, salutation, language); add the column or correct the template (rendering recipients.csv rows 2, 3, 4 and 3 more)";

    let send = campaign.run(&["send", "--yes"]);
    send.expect_code(2);
    assert_eq!(send.stdout_lines(), [line]);
    assert_eq!(
        send.stderr,
        "error: 6 letters have problems (listed above); nothing was sent. Correct them, or send the others with --skip-bad-rows\n"
    );

    let preview = campaign.run(&["preview"]);
    preview.expect_code(2);
    let stderr: Vec<&str> = preview.stderr.lines().collect();
    assert_eq!(
        stderr,
        [
            line,
            "error: 6 letters could not be rendered (problems above); run envoi check for the full list"
        ]
    );
}
