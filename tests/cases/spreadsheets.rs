//! Recipients from a spreadsheet: `.xlsx`, `.ods` and `.xls` read cell by cell as the
//! spreadsheet shows them, with every rule of recipients.csv and problems named by sheet, row
//! and column letter. The workbooks are made by tests/fixtures/spreadsheets/make.py.

use crate::cases::bad_input::{
    CHECK_AGAIN, campaign_and_relay, refused_before_any_letter, refused_letters,
};
use crate::support::mail;
use crate::support::run::fixtures;

const LETTER: &str = "+++\nsubject = \"Statement for {{organisation}}\"\n+++\n{{salutation}},\n\nDATA {{name}}|{{phone}}|{{postcode}}|{{since}}|{{total}}|{{region}}|{{fee}}\n";

fn workbook(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("spreadsheets").join(name)).expect("fixture workbook")
}

/// What each letter's DATA line must read, per recipient, for the "Addressees" sheet (the
/// total is a formula's cached value; in the .xls, which xlwt writes, a plain number).
fn expected() -> Vec<(&'static str, String)> {
    let total = |cached: &str| cached.to_owned();
    vec![
        (
            "sg@coe.example",
            format!(
                "DATA Marija Pejčinović Burić|4930123456|67075|2024-01-19|{}|Europe|1234.5",
                total("134150")
            ),
        ),
        (
            "info@ombudsman.example",
            format!(
                "DATA Səbinə Əliyeva|994124981234|1000|1990-01-20|{}|Europe|0.25",
                total("2000")
            ),
        ),
        (
            "office@ohchr.example",
            format!(
                "DATA مفوض حقوق الإنسان|41229179220|1211|2023-10-17|{}|Geneva|100",
                total("2422")
            ),
        ),
    ]
}

#[test]
fn every_format_reads_cells_as_the_spreadsheet_shows_them() {
    for file in ["addressees.xlsx", "addressees.ods", "addressees.xls"] {
        let (campaign, relay) = campaign_and_relay();
        campaign
            .file("templates/letter.hbs", LETTER)
            .file(file, workbook(file));
        std::fs::remove_file(campaign.path().join("recipients.csv")).unwrap();
        let check = campaign.run(&["--recipients", file, "check"]);
        check.expect_code(0).expect_stdout("3 letters ready");
        campaign
            .run(&["--recipients", file, "send", "--yes"])
            .expect_code(0);
        let received = relay.received();
        assert_eq!(received.len(), 3, "{file}");
        for (email, line) in expected() {
            let letter = received
                .iter()
                .find(|r| r.rcpt_to.iter().any(|to| to == email))
                .unwrap_or_else(|| panic!("{file}: a letter to {email}"));
            let text = mail::text(&mail::parse(&letter.data));
            assert!(text.contains(&line), "{file}: {line}\n{text}");
        }
        // Rows are numbered as the sheet numbers them: the empty row 4 is skipped.
        let rows: Vec<usize> = campaign.log_rows().iter().map(|r| r.row).collect();
        let mut rows = rows;
        rows.sort();
        assert_eq!(rows, [2, 3, 5], "{file}");
    }
}

#[test]
fn the_recipients_setting_and_the_sheet_setting_choose_the_file_and_sheet() {
    let (campaign, relay) = campaign_and_relay();
    let config = campaign.read("envoi.toml").replace(
        "id = \"test-campaign\"",
        "id = \"test-campaign\"\nrecipients = \"addressees.ods\"\nsheet = \"Second round\"",
    );
    campaign
        .file("envoi.toml", config)
        .file("templates/letter.hbs", LETTER)
        .file("addressees.ods", workbook("addressees.ods"));
    campaign
        .run(&["check"])
        .expect_code(0)
        .expect_stdout("1 letter ready");
    campaign.run(&["send", "--yes"]).expect_code(0);
    let received = relay.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["second@round.example"]);
}

#[test]
fn an_unknown_sheet_lists_the_sheets_and_the_nearest() {
    let (campaign, relay) = campaign_and_relay();
    let config = campaign.read("envoi.toml").replace(
        "id = \"test-campaign\"",
        "id = \"test-campaign\"\nrecipients = \"addressees.xlsx\"\nsheet = \"Adresses\"",
    );
    campaign
        .file("envoi.toml", config)
        .file("addressees.xlsx", workbook("addressees.xlsx"));
    refused_before_any_letter(
        &campaign,
        &relay,
        "addressees.xlsx: has no sheet named \"Adresses\" (set by sheet under [campaign] in envoi.toml); its sheets are \"Addressees\", \"Second round\"; did you mean \"Addressees\"? correct the setting",
    );
    // A name that is not close to any sheet gets the list alone.
    let config = campaign.read("envoi.toml").replace("Adresses", "Budget");
    campaign.file("envoi.toml", config);
    refused_before_any_letter(
        &campaign,
        &relay,
        "addressees.xlsx: has no sheet named \"Budget\" (set by sheet under [campaign] in envoi.toml); its sheets are \"Addressees\", \"Second round\": correct the setting",
    );
}

#[test]
fn a_file_that_is_not_a_spreadsheet_is_refused() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file("addressees.xlsx", "email,name\na@x.example,Ann\n");
    let config = campaign.read("envoi.toml").replace(
        "id = \"test-campaign\"",
        "id = \"test-campaign\"\nrecipients = \"addressees.xlsx\"",
    );
    campaign.file("envoi.toml", config);
    let check = campaign.run(&["check"]);
    check.expect_code(2);
    assert!(
        check
            .stderr
            .starts_with("error: addressees.xlsx: cannot be read as a spreadsheet (")
            && check.stderr.ends_with(
                "); open it in Excel or LibreOffice and save it again (as .xlsx, .xls or .ods)\n"
            ),
        "{}",
        check.stderr
    );
    assert_eq!(relay.connections_opened(), 0);
}

#[test]
fn every_row_rule_applies_and_names_sheet_row_and_column() {
    let (campaign, relay) = campaign_and_relay();
    campaign
        .file(
            "templates/letter.hbs",
            "+++\nsubject = \"Statement for {{organisation}}\"\n+++\nTotal {{total}}.\n",
        )
        .file("problems.xlsx", workbook("problems.xlsx"));
    let config = campaign.read("envoi.toml").replace(
        "id = \"test-campaign\"",
        "id = \"test-campaign\"\nrecipients = \"problems.xlsx\"",
    );
    campaign.file("envoi.toml", config);
    let at = |row: usize, column: &str| {
        format!("problems.xlsx, sheet \"Addressees\", row {row}, column {column}")
    };
    refused_letters(
        &campaign,
        &relay,
        &[
            &format!(
                "{}: \"SG@UN.example\" is also in row 2; each addressee must appear once: delete one of the rows",
                at(3, "A \"email\"")
            ),
            &format!(
                "{}: \"info@ombudsman,example\" is not an email address; there is a comma where a dot belongs: info@ombudsman.example",
                at(4, "A \"email\"")
            ),
            &format!(
                "{}: \"info@institute\" is not a complete address: its domain \"institute\" has no dot (an address ends in a domain such as institute.org); correct it in the spreadsheet",
                at(5, "A \"email\"")
            ),
            &format!(
                "{}: \"english please\" is not a language code; use a code such as fr, de or pt-BR, as in the template name letter.fr.hbs",
                at(6, "C \"language\"")
            ),
            &format!(
                "{}: \"desk@@coe\" is not a valid email address: the part before the @ is not valid (a second @, a space or a comma?); correct it in the spreadsheet (addresses separated by , or ;)",
                at(7, "D \"cc\"")
            ),
            &format!(
                "{}: attachment \"attachments/annex.pdf\" does not exist; check the file name (paths are relative to the campaign folder)",
                at(8, "E \"attachments\"")
            ),
            &format!(
                "{}: this cell shows the error #DIV/0!: its formula could not be computed; correct the formula, or type the value, in the spreadsheet",
                at(9, "F \"total\"")
            ),
        ],
        &format!("7 problems found (1 of 8 letters ready); {CHECK_AGAIN}"),
    );
}
