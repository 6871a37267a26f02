//! `envoi init`: a sample campaign that passes `check` as written, and never a file overwritten.

use crate::support::campaign::TestCampaign;

/// The files of the sample, as `init` lists them.
const SAMPLE: [&str; 6] = [
    "envoi.toml",
    "recipients.csv",
    "templates/letter.hbs",
    "templates/letter.fr.hbs",
    "templates/statement.md",
    "attachments/README.txt",
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
    assert!(
        init.stdout
            .ends_with(&format!("then run: envoi --dir {dir} check\n")),
        "{}",
        init.stdout
    );
    let mut files = campaign.files();
    files.sort();
    let mut expected: Vec<String> = SAMPLE.iter().map(|f| (*f).to_owned()).collect();
    expected.sort();
    assert_eq!(files, expected);

    let check = campaign.run(&["check"]);
    check.expect_code(0);
    assert_eq!(check.stdout, "3 letters ready; no problems found\n");
    assert_eq!(campaign.preview_out().len(), 3);
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
