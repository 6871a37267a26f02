//! `envoi init`: a sample campaign that passes `check` as written, and never a file overwritten.

use crate::support::campaign::TestCampaign;

/// The files of the sample, as `init` lists them.
const SAMPLE: [&str; 7] = [
    "envoi.toml",
    "recipients.csv",
    "templates/letter.hbs",
    "templates/letter.fr.hbs",
    "templates/statement.md",
    "attachments/README.txt",
    ".gitignore",
];

/// What `check` says of the sample statement until it is replaced: warnings, exit 0.
const SAMPLE_WARNINGS: [&str; 4] = [
    "warning: templates/statement.md, line 1: \"Title of your statement\" is the sample text envoi init wrote, and 3 letters still contain it; replace it with your own text before sending",
    "warning: templates/statement.md, line 3: \"Replace this text with your statement.\" is the sample text envoi init wrote, and 3 letters still contain it; replace it with your own text before sending",
    "warning: templates/statement.md, line 11: \"Name of the signatory\" is the sample text envoi init wrote, and 3 letters still contain it; replace it with your own text before sending",
    "warning: templates/statement.md, line 12: \"Title of the signatory\" is the sample text envoi init wrote, and 3 letters still contain it; replace it with your own text before sending",
];

#[test]
fn init_writes_a_sample_campaign_that_passes_check_and_renders() {
    let campaign = TestCampaign::empty();
    let init = campaign.run(&["init"]);
    init.expect_code(0);
    let dir = campaign.path().display().to_string();
    let created: Vec<String> = SAMPLE
        .iter()
        .map(|f| format!("created {dir}/{f}"))
        .collect();
    assert_eq!(init.stdout_lines()[..SAMPLE.len()], created);
    assert_eq!(
        init.stdout_lines()[SAMPLE.len()..],
        [
            "",
            &format!(
                "Next: edit {dir}/envoi.toml, {dir}/recipients.csv and {dir}/templates/statement.md, then run: envoi --dir {dir} check"
            ),
            &format!(
                "To use a spreadsheet instead of recipients.csv (.xlsx, .xls or .ods, with the same columns in its first row), put it in {dir} and add under [campaign] in envoi.toml: recipients = \"addressees.xlsx\" (and sheet = \"Sheet1\" for a sheet other than the first)"
            ),
        ]
    );
    let mut files = campaign.files();
    files.sort();
    let mut expected: Vec<String> = SAMPLE.iter().map(|f| (*f).to_owned()).collect();
    expected.sort();
    assert_eq!(files, expected);

    // The sample passes, but says its statement is still the placeholder.
    let check = campaign.run(&["check"]);
    check.expect_code(0);
    let mut expected = SAMPLE_WARNINGS.to_vec();
    expected.push("3 letters ready; no problems found");
    assert_eq!(check.stdout_lines(), expected);
    assert_eq!(campaign.preview_out().len(), 3);
}

#[test]
fn check_stops_warning_once_the_sample_statement_is_replaced() {
    let campaign = TestCampaign::empty();
    campaign.run(&["init"]).expect_code(0);
    // One placeholder left, in the French letter only (there is one French row).
    campaign
        .file(
            "templates/statement.md",
            "# Statement on the budget\n\nThe Office welcomes the budget.\n",
        )
        .file(
            "templates/letter.fr.hbs",
            campaign
                .read("templates/letter.fr.hbs")
                .replace("Bureau de l'Ombudsman\n", "Name of the signatory\n"),
        );
    let check = campaign.run(&["check"]);
    check.expect_code(0);
    assert_eq!(
        check.stdout_lines(),
        [
            "warning: templates/letter.fr.hbs, line 27: \"Name of the signatory\" is the sample text envoi init wrote, and 1 letter still contains it; replace it with your own text before sending",
            "3 letters ready; no problems found",
        ]
    );
}

#[test]
fn the_sample_gitignore_keeps_the_outbox_and_the_delivery_log_out_of_git() {
    let campaign = TestCampaign::empty();
    campaign.run(&["init"]).expect_code(0);
    let ignored: Vec<String> = campaign
        .read(".gitignore")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        ignored,
        [
            "/outbox/",
            "/delivery-log.csv",
            "/delivery-log.csv.inflight",
            "/delivery-log.csv.lock"
        ]
    );
}

#[test]
fn init_into_a_named_folder_creates_it() {
    let parent = TestCampaign::empty();
    let target = parent.path().join("new campaign");
    let init = parent.run(&["init", target.to_str().unwrap()]);
    init.expect_code(0);
    for file in SAMPLE {
        assert!(target.join(file).is_file(), "{file}");
    }
}

#[test]
fn a_second_init_keeps_every_existing_file_and_adds_only_missing_ones() {
    let campaign = TestCampaign::empty();
    campaign.run(&["init"]).expect_code(0);
    let edited = "email,organisation\nme@office.example,My office\n";
    campaign.file("recipients.csv", edited);
    std::fs::remove_file(campaign.path().join("templates/letter.fr.hbs")).unwrap();
    let before: Vec<(String, Vec<u8>)> = SAMPLE
        .iter()
        .filter(|f| **f != "templates/letter.fr.hbs")
        .map(|f| {
            (
                (*f).to_owned(),
                std::fs::read(campaign.path().join(f)).unwrap(),
            )
        })
        .collect();

    let again = campaign.run(&["init"]);
    again.expect_code(0);
    let dir = campaign.path().display().to_string();
    assert!(
        again
            .stdout_lines()
            .contains(&format!("created {dir}/templates/letter.fr.hbs").as_str()),
        "{}",
        again.stdout
    );
    for (file, content) in &before {
        assert!(
            again.stdout_lines().contains(
                &format!("kept    {dir}/{file} (it already exists; not overwritten)").as_str()
            ),
            "{file} reported as kept:\n{}",
            again.stdout
        );
        assert_eq!(
            &std::fs::read(campaign.path().join(file)).unwrap(),
            content,
            "{file} unchanged"
        );
    }
    assert_eq!(campaign.read("recipients.csv"), edited);
}
