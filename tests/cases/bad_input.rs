//! Bad input, one case at a time: each is named in exactly the words the user reads (file, row
//! as a spreadsheet numbers it, column, template line), exits 2, and nothing is sent or written.
//! Every `send` here goes to a live relay that must see no connection at all.

use crate::support::campaign::{TestCampaign, config};
use crate::support::run::Run;
use crate::support::smtp_server::{ServerConfig, SmtpServer};

pub(crate) const CHECK_AGAIN: &str = "nothing was sent. Correct them and run envoi check again";

/// A relay and a campaign that sends to it.
pub(crate) fn campaign_and_relay() -> (TestCampaign, SmtpServer) {
    let relay = SmtpServer::start(ServerConfig::default());
    (TestCampaign::with_port(relay.port()), relay)
}

#[track_caller]
pub(crate) fn assert_nothing_sent(relay: &SmtpServer) {
    assert_eq!(relay.connections_opened(), 0, "no connection to the relay");
    assert_eq!(relay.received_count(), 0);
}

/// Runs `args`, which must exit 2 and leave every file of the campaign as it was.
#[track_caller]
pub(crate) fn refused(campaign: &TestCampaign, args: &[&str]) -> Run {
    let before = campaign.files();
    let run = campaign.run(args);
    run.expect_code(2);
    assert_eq!(campaign.files(), before, "envoi {args:?} wrote nothing");
    run
}

/// A problem that stops the campaign before any letter: `check`, `preview --out` and `send`
/// each say exactly `error: <message>` and nothing else.
#[track_caller]
pub(crate) fn refused_before_any_letter(
    campaign: &TestCampaign,
    relay: &SmtpServer,
    message: &str,
) {
    for args in [
        &["check"][..],
        &["preview", "--out", "out"],
        &["send", "--yes"],
    ] {
        let run = refused(campaign, args);
        assert_eq!(run.stderr, format!("error: {message}\n"), "envoi {args:?}");
        assert_eq!(run.stdout, "", "envoi {args:?}");
    }
    assert_nothing_sent(relay);
}

/// Problems in letters: `check` prints exactly `problems` (a template problem once, then how
/// many more rows have it) and `summary`; `send` lists them too and refuses to start; `preview`
/// shows the letters it can, lists the problems, and exits 2 as well.
#[track_caller]
pub(crate) fn refused_letters(
    campaign: &TestCampaign,
    relay: &SmtpServer,
    problems: &[&str],
    summary: &str,
) {
    let check = refused(campaign, &["check"]);
    assert_eq!(check.stdout_lines(), problems);
    assert_eq!(check.stderr, format!("error: {summary}\n"));

    // send and preview list the same problems, folded the same way.
    let send = refused(campaign, &["send", "--yes"]);
    assert_eq!(send.stdout_lines(), problems, "send lists what check lists");
    let preview = campaign.run(&["preview", "--out", "out"]);
    preview.expect_code(2);
    let (summary_line, listed) = preview
        .stderr_lines()
        .split_last()
        .map(|(l, r)| (*l, r.to_vec()))
        .unwrap();
    assert_eq!(listed, problems, "preview lists what check lists");
    assert!(summary_line.starts_with("error: "), "{summary_line}");
    assert!(
        send.stderr
            .ends_with("nothing was sent. Correct them, or send the others with --skip-bad-rows\n"),
        "{}",
        send.stderr
    );
    assert_nothing_sent(relay);
}

/// How `check` lists a template problem that `rows` (2 or more) repeat, from its line for
/// the first row: "... (rendering recipients.csv rows 2 and 3)".
fn folded(first: &str, rows: usize) -> String {
    let (head, row) = first
        .rsplit_once(" row ")
        .expect("a template problem names its row");
    let row: usize = row.trim_end_matches(')').parse().unwrap();
    let named: Vec<String> = (row..row + rows).map(|r| r.to_string()).collect();
    let (last, rest) = named.split_last().unwrap();
    format!("{head} rows {} and {last})", rest.join(", "))
}

const LETTER_HEAD: &str = "+++\nsubject = \"Statement for {{organisation}}\"\n+++\n";

// ─── Templates ──────────────────────────────────────────────────────────────────────────────

#[test]
fn an_unknown_variable_is_named_with_its_template_line_and_row() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "templates/letter.hbs",
        "+++\nsubject = \"Statement for {{organisaton}}\"\n+++\n{{salutation}},\n\nDear {{nmae}},\n",
    );
    // Both are typos of a column, so each names the column meant.
    let columns = "(its columns: email, organisation, name, salutation, language)";
    let subject = format!(
        "templates/letter.hbs, line 2: the template uses {{{{organisaton}}}} but recipients.csv has no column \"organisaton\"; did you mean {{{{organisation}}}}? correct the template or add the column {columns} (rendering recipients.csv row 2)"
    );
    let body = format!(
        "templates/letter.hbs, line 6, column 6: the template uses {{{{nmae}}}} but recipients.csv has no column \"nmae\"; did you mean {{{{name}}}}? correct the template or add the column {columns} (rendering recipients.csv row 2)"
    );
    refused_letters(
        &campaign,
        &relay,
        &[&folded(&subject, 2), &folded(&body, 2)],
        &format!("4 problems found (0 of 2 letters ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn an_unknown_variable_given_to_a_helper_is_named_too() {
    let (campaign, relay) = campaign_and_relay();
    campaign
        .file(
            "templates/letter.hbs",
            format!("{LETTER_HEAD}Dear {{{{upper nmae}}}},\n"),
        )
        .file(
            "recipients.csv",
            "email,organisation\nsg@un.example,United Nations\n",
        );
    refused_letters(
        &campaign,
        &relay,
        &[
            "templates/letter.hbs, line 4, column 6: the template uses {{nmae}} but recipients.csv has no column \"nmae\" (its columns: email, organisation); add the column or correct the template (rendering recipients.csv row 2)",
        ],
        &format!("1 problem found (0 of 1 letter ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn a_template_syntax_error_names_file_line_and_column() {
    let (campaign, relay) = campaign_and_relay();
    let hint = "template syntax error: the {{...}} here is not complete or not valid; check that every {{ is closed by }}, and every {{#if ...}} or {{#each ...}} by its {{/if}} or {{/each}}";
    campaign.file(
        "templates/letter.hbs",
        format!("{LETTER_HEAD}{{{{salutation}}}},\n\nTo {{{{organisation}}\n"),
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        &format!("templates/letter.hbs, line 6, column 18: {hint}"),
    );

    campaign.file(
        "templates/letter.hbs",
        format!("{LETTER_HEAD}{{{{#if name}}}}\n{{{{name}}}}\n{{{{/fi}}}}\n"),
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "templates/letter.hbs, line 6, column 1: template syntax error: helper \"if\" was opened, but \"fi\" is closing",
    );

    // In the front matter the line is the key's (TOML gives no column inside a value).
    campaign.file(
        "templates/letter.hbs",
        "+++\nsubject = \"Statement for {{organisation}\"\n+++\nText\n",
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        &format!("templates/letter.hbs, line 2: {hint}"),
    );
}

#[test]
fn front_matter_must_be_there_and_hold_only_known_keys() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "templates/letter.hbs",
        "+++\nsubject = \"Statement\"\nattachment = [\"attachments/a.pdf\"]\n+++\nText\n",
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "templates/letter.hbs, line 3: front matter: unknown field `attachment`, expected one of `subject`, `from`, `reply_to`, `cc`, `bcc`, `attachments`, `headers`; did you mean `attachments`?",
    );

    campaign.file("templates/letter.hbs", "Dear {{salutation}},\n\nText\n");
    refused_before_any_letter(
        &campaign,
        &relay,
        "templates/letter.hbs, line 1: the letter must start with front matter: a line +++, then at least subject = \"...\", then a line +++",
    );
}

#[test]
fn a_partial_that_includes_itself_is_refused_instead_of_recursing() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "templates/statement.md",
        "The statement.\n\n{{> statement}}\n",
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "templates/statement.md, line 3: the template includes itself, which would never end (templates/statement.md, line 3 → templates/statement.md); remove that inclusion",
    );

    // Through another partial, inside a block: the loop is named, with each file and line.
    campaign
        .file("templates/statement.md", "The statement.\n\n{{> annex}}\n")
        .file(
            "templates/annex.md",
            "The annex.\n\n{{#if name}}{{> statement}}{{/if}}\n",
        );
    refused_before_any_letter(
        &campaign,
        &relay,
        "templates/statement.md, line 3: the templates include one another in a loop that would never end (templates/annex.md, line 3 → templates/statement.md, line 3 → templates/annex.md); remove one of these inclusions",
    );
}

#[test]
fn a_missing_partial_is_named_with_the_file_that_includes_it() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file("templates/statement.md", "The statement.\n\n{{> annex}}\n");
    let first = "templates/statement.md, line 3, column 1: the template includes {{> annex}} but there is no annex.md beside it; create it or correct the name (rendering recipients.csv row 2)";
    refused_letters(
        &campaign,
        &relay,
        &[&folded(first, 2)],
        &format!("2 problems found (0 of 2 letters ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn headers_that_envoi_writes_itself_or_that_are_not_header_names_are_refused() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "templates/letter.hbs",
        "+++\nsubject = \"Statement\"\n\n[headers]\nTo = \"someone@else.example\"\n\"X Bad Name\" = \"x\"\n+++\nText\n",
    );
    let to = "templates/letter.hbs: headers.To: To cannot be set here: envoi writes it from the row's email column (with its name or organisation); remove To from [headers] (rendering recipients.csv row 2)";
    let name = "templates/letter.hbs: headers.X Bad Name: is not a valid header name (letters, digits and dashes only) (rendering recipients.csv row 2)";
    refused_letters(
        &campaign,
        &relay,
        &[&folded(to, 2), &folded(name, 2)],
        &format!("4 problems found (0 of 2 letters ready); {CHECK_AGAIN}"),
    );
}

// ─── recipients.csv ─────────────────────────────────────────────────────────────────────────

#[test]
fn short_and_long_rows_are_named_by_row() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "recipients.csv",
        "email,organisation,name,salutation,language\n\
         sg@un.example,United Nations,,Your Excellency\n\
         sg@coe.example,Council of Europe,,Dear Secretary General,en,extra\n\
         sg@osce.example,OSCE,,Dear Secretary General,en\n",
    );
    refused_letters(
        &campaign,
        &relay,
        &[
            "recipients.csv, row 2: this row has 4 cells but the header has 5; a cell is missing or two were merged: check the separators in this row",
            "recipients.csv, row 3: column F has no name in the header row but this row has \"extra\" in it; give column F a name in row 1 or empty the cell",
        ],
        &format!("2 problems found (1 of 3 letters ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn an_unterminated_quote_names_where_the_cell_starts() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "recipients.csv",
        "email,organisation\nsg@un.example,United Nations\nsg@coe.example,\"Council of Europe\nsg@osce.example,OSCE\n",
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv: a quoted cell starting in row 3, column B is never closed; add the missing closing quote (\") in that cell",
    );
}

#[test]
fn a_file_that_is_not_utf8_is_one_problem_for_the_file() {
    let (campaign, relay) = campaign_and_relay();
    let mut csv = b"email,organisation,name,salutation,language\nsg@un.example,United Nations,,Dear,\nsg@coe.example,Conseil de l'".to_vec();
    csv.extend_from_slice(b"Europe \xe0 Strasbourg,,Dear,\nsg@osce.example,Organisation pour la s\xe9curit\xe9,,Dear,\n"); // Latin-1, as an old export writes it
    campaign.file("recipients.csv", csv);
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv, row 3: this row is the first that is not UTF-8 text, so the file is in another encoding: it seems to be windows-1252 (Western European). Never guessed: re-save it as UTF-8: in Excel, Save As \"CSV UTF-8 (Comma delimited)\"; in LibreOffice, Save As \"Text CSV\" with Character set \"Unicode (UTF-8)\"; or, if windows-1252 is right, add encoding = \"windows-1252\" under [campaign] in envoi.toml",
    );
}

#[test]
fn an_empty_file_or_one_without_an_email_column_or_with_two_columns_of_one_name() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file("recipients.csv", "");
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv: the file is empty: it needs a header row with at least an `email` column",
    );

    campaign.file(
        "recipients.csv",
        "organisation,name\nUnited Nations,António Guterres\n",
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv, row 1: there is no email column (the columns found are \"organisation\", \"name\"); add a column named email, with one address per row",
    );

    campaign.file(
        "recipients.csv",
        "email,name,organisation,name\nsg@un.example,A,United Nations,B\n",
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv, row 1: columns B and D are both named \"name\"; each column needs its own name: rename or delete one of them",
    );
}

#[test]
fn a_file_with_a_header_and_no_rows_says_there_are_no_recipients() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "recipients.csv",
        "email,organisation,name,salutation,language\n\n\n",
    );
    let message = "recipients.csv: has a header row but no recipients; add one row per addressee";
    let check = refused(&campaign, &["check"]);
    assert_eq!(check.stdout_lines(), [message]);
    assert_eq!(
        check.stderr,
        format!("error: 1 problem found (0 of 0 letters ready); {CHECK_AGAIN}\n")
    );
    for args in [&["preview", "--out", "out"][..], &["send", "--yes"]] {
        let run = refused(&campaign, args);
        assert_eq!(run.stderr, format!("error: {message}\n"), "envoi {args:?}");
    }
    assert_nothing_sent(&relay);
}

#[test]
fn every_address_problem_of_every_row_is_listed() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "recipients.csv",
        "email,organisation,name,salutation,language,cc\n\
         sg@un.example,United Nations,,Your Excellency,en,\n\
         SG@UN.example,United Nations (again),,Your Excellency,en,\n\
         sg(at)coe.example,Council of Europe,,Dear Secretary General,en,\n\
         sg@osce.example,OSCE,,Dear Secretary General,english please,\n\
         info@ohchr.example,OHCHR,,Dear High Commissioner,en,\"desk@ohchr.example; desk@@ohchr\"\n",
    );
    refused_letters(
        &campaign,
        &relay,
        &[
            "recipients.csv, row 3, column \"email\": \"SG@UN.example\" is also in row 2; each addressee must appear once: delete one of the rows",
            "recipients.csv, row 4, column \"email\": \"sg(at)coe.example\" is not an email address; correct it in the spreadsheet",
            "recipients.csv, row 5, column \"language\": \"english please\" is not a language code; use a code such as fr, de or pt-BR, as in the template name letter.fr.hbs",
            "recipients.csv, row 6, column \"cc\": \"desk@@ohchr\" is not a valid email address: the part before the @ is not valid (a second @, a space or a comma?); correct it in the spreadsheet (addresses separated by , or ;)",
        ],
        &format!("4 problems found (1 of 5 letters ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn an_invisible_character_in_an_address_is_refused_naming_row_column_and_character() {
    let (campaign, relay) = campaign_and_relay();
    // As pasted from a web page or a word processor. The zero width space in a domain used to
    // vanish in the A-label form, so the letter went out to an address the cell does not show.
    campaign.file(
        "recipients.csv",
        "email,organisation,salutation,cc\n\
         sg@un.example,United Nations,Excellency,\n\
         info@ohchr\u{200B}.example,OHCHR,Excellency,\n\
         \u{FEFF}desk@coe.example,Council of Europe,Excellency,\n\
         office@osce.exam\u{00AD}ple,OSCE,Excellency,\n\
         sg@nato\u{00A0}.example,NATO,Excellency,\n\
         sg@oas.example,OAS,Excellency,\"archive@oas.example; desk@oas\u{200D}.example\"\n",
    );
    refused_letters(
        &campaign,
        &relay,
        &[
            "recipients.csv, row 3, column \"email\": \"info@ohchr[U+200B].example\" contains an invisible character U+200B (zero width space); retype the address",
            "recipients.csv, row 4, column \"email\": \"[U+FEFF]desk@coe.example\" contains an invisible character U+FEFF (zero width no-break space, or byte order mark); retype the address",
            "recipients.csv, row 5, column \"email\": \"office@osce.exam[U+00AD]ple\" contains an invisible character U+00AD (soft hyphen); retype the address",
            "recipients.csv, row 6, column \"email\": \"sg@nato[U+00A0].example\" contains an invisible character U+00A0 (no-break space); retype the address",
            "recipients.csv, row 7, column \"cc\": \"desk@oas[U+200D].example\" contains an invisible character U+200D (zero width joiner); retype the address",
        ],
        &format!("5 problems found (1 of 6 letters ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn a_line_break_in_a_cell_that_goes_into_a_header_names_the_column() {
    let (campaign, relay) = campaign_and_relay();
    // The quoted cell spans two lines of the file but is one spreadsheet row: the next row
    // is still row 3.
    campaign.file(
        "recipients.csv",
        "email,organisation,name,salutation,language\n\
         sg@un.example,\"United Nations\nSecretariat\",António Guterres,Your Excellency,\n\
         not-an-address,Council of Europe,,Dear Secretary General,\n",
    );
    refused_letters(
        &campaign,
        &relay,
        &[
            "recipients.csv, row 2, column \"organisation\": this cell contains a line break, which would end up in the Subject header; make it one line in the spreadsheet",
            "recipients.csv, row 3, column \"email\": \"not-an-address\" is not an email address; correct it in the spreadsheet",
        ],
        &format!("2 problems found (0 of 2 letters ready); {CHECK_AGAIN}"),
    );
}

// ─── Attachments ────────────────────────────────────────────────────────────────────────────

/// A file outside the campaign folder, canonical as messages show it.
fn outside_file(outside: &tempfile::TempDir) -> String {
    let path = outside.path().join("secret.pdf");
    std::fs::write(&path, b"%PDF-1.4 not for you").unwrap();
    path.canonicalize().unwrap().to_string_lossy().into_owned()
}

const COPY_IT: &str = "copy the file into attachments/ or allow its folder with attachment_dirs under [campaign] in envoi.toml";

#[cfg(unix)]
#[test]
fn attachments_from_a_row_must_exist_inside_the_campaign_folder() {
    let (campaign, relay) = campaign_and_relay();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside_file(&outside);
    campaign.file("attachments/statement.pdf", b"%PDF-1.4");
    std::os::unix::fs::symlink(&secret, campaign.path().join("attachments/link.pdf")).unwrap();
    campaign.file(
        "recipients.csv",
        format!(
            "email,organisation,attachments\n\
             a@un.example,UN,attachments/statement.pdf; attachments/missing.pdf\n\
             b@un.example,UN,../secret.pdf\n\
             c@un.example,UN,{secret}\n\
             d@un.example,UN,attachments/link.pdf\n\
             e@un.example,UN,attachments/statement.pdf\n"
        ),
    );
    campaign.file("templates/letter.hbs", format!("{LETTER_HEAD}Text\n"));
    refused_letters(
        &campaign,
        &relay,
        &[
            "recipients.csv, row 2, column \"attachments\": attachment \"attachments/missing.pdf\" does not exist; check the file name (paths are relative to the campaign folder)",
            "recipients.csv, row 3, column \"attachments\": attachment \"../secret.pdf\" points outside the campaign folder; copy the file into attachments/ (or allow its folder with attachment_dirs under [campaign] in envoi.toml)",
            &format!(
                "recipients.csv, row 4, column \"attachments\": attachment \"{secret}\" is outside the campaign folder (it leads to {secret}); {COPY_IT}"
            ),
            &format!(
                "recipients.csv, row 5, column \"attachments\": attachment \"attachments/link.pdf\" is outside the campaign folder (it leads to {secret}); {COPY_IT}"
            ),
        ],
        &format!("4 problems found (1 of 5 letters ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn a_mistyped_attachment_gets_the_nearest_file_of_its_folder() {
    let (campaign, relay) = campaign_and_relay();
    campaign
        .file("attachments/statement.pdf", b"%PDF-1.4")
        .file("attachments/annex.pdf", b"%PDF-1.4")
        .file(
            "templates/letter.hbs",
            "+++\nsubject = \"Statement\"\nattachments = [\"attachments/statment.pdf\"]\n+++\nText\n",
        )
        .file(
            "recipients.csv",
            "email,organisation,attachments\na@un.example,UN,attachments\\Annexe.pdf\n",
        );
    refused_letters(
        &campaign,
        &relay,
        &[
            "templates/letter.hbs: attachments: attachment \"attachments/statment.pdf\" does not exist; did you mean \"attachments/statement.pdf\"? correct the file name (paths are relative to the campaign folder) (rendering recipients.csv row 2)",
            "recipients.csv, row 2, column \"attachments\": attachment \"attachments\\Annexe.pdf\" does not exist; did you mean \"attachments\\annex.pdf\"? correct the file name (paths are relative to the campaign folder)",
        ],
        &format!("2 problems found (0 of 1 letter ready); {CHECK_AGAIN}"),
    );
}

#[test]
fn an_attachment_of_the_letter_outside_the_campaign_is_one_template_problem() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "templates/letter.hbs",
        "+++\nsubject = \"Statement\"\nattachments = [\"../statement.pdf\"]\n+++\nText\n",
    );
    let first = "templates/letter.hbs: attachments: attachment \"../statement.pdf\" points outside the campaign folder; copy the file into attachments/ (or allow its folder with attachment_dirs under [campaign] in envoi.toml) (rendering recipients.csv row 2)";
    refused_letters(
        &campaign,
        &relay,
        &[&folded(first, 2)],
        &format!("2 problems found (0 of 2 letters ready); {CHECK_AGAIN}"),
    );
}

// ─── envoi.toml ─────────────────────────────────────────────────────────────────────────────

#[test]
fn envoi_toml_syntax_errors_and_unknown_keys_name_line_and_column() {
    let (campaign, relay) = campaign_and_relay();
    let good = config(relay.port());
    campaign.file(
        "envoi.toml",
        good.replace("host = \"127.0.0.1\"", "host = \"127.0.0.1"),
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "envoi.toml, line 9, column 18: invalid basic string, expected `\"`",
    );

    campaign.file("envoi.toml", good.replace("reply_to = ", "replyto = "));
    refused_before_any_letter(
        &campaign,
        &relay,
        "envoi.toml, line 6, column 1: unknown field `replyto`, expected `from` or `reply_to`; did you mean `reply_to`?",
    );
}

#[test]
fn a_missing_envoi_toml_says_how_to_make_one() {
    let (campaign, relay) = campaign_and_relay();
    std::fs::remove_file(campaign.path().join("envoi.toml")).unwrap();
    refused_before_any_letter(
        &campaign,
        &relay,
        "envoi.toml: not found; run `envoi init` to create a campaign, or name the file with --config",
    );
}

#[test]
fn sending_settings_are_checked_before_anything_is_sent() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "envoi.toml",
        config(relay.port()).replace("concurrency = 2", "concurrency = 0\nrate = \"30 a minute\""),
    );
    let problems = [
        "envoi.toml, [send] rate: rate \"30 a minute\" is not of the form COUNT/PERIOD, e.g. \"30/min\", \"5/s\", \"1000/h\" (or \"unlimited\")",
        "envoi.toml, [send] concurrency: concurrency = 0 is out of range; use 1 to 64 connections (most relays allow 2 to 10)",
    ];
    let check = refused(&campaign, &["check"]);
    assert_eq!(check.stdout_lines(), problems);
    assert_eq!(
        check.stderr,
        format!("error: 2 problems found (2 of 2 letters ready); {CHECK_AGAIN}\n")
    );
    let send = refused(&campaign, &["send", "--yes"]);
    assert_eq!(
        send.stderr_lines(),
        [
            problems[0],
            problems[1],
            "error: 2 problems found; nothing was sent"
        ]
    );
    assert_nothing_sent(&relay);
}

#[test]
fn a_password_command_line_that_would_lose_its_backslashes_is_refused() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "envoi.toml",
        config(relay.port()).replace(
            "timeout = 5",
            "timeout = 5\npassword_command = 'C:\\Tools\\pw.exe smtp'",
        ),
    );
    let problem = "envoi.toml, [smtp] password_command: password_command \"C:\\Tools\\pw.exe smtp\" has a backslash, which the one-line form reads as an escape (C:\\Tools\\pw.exe would become C:Toolspw.exe); write the command as a list of words instead, such as password_command = ['C:\\Tools\\pw.exe', 'smtp']";
    let check = refused(&campaign, &["check"]);
    assert_eq!(check.stdout_lines(), [problem]);
    let send = refused(&campaign, &["send", "--yes"]);
    assert_eq!(
        send.stderr_lines(),
        [problem, "error: 1 problem found; nothing was sent"]
    );
    assert_nothing_sent(&relay);

    // In double quotes the backslashes are TOML escapes: the hint says how to write the path.
    campaign.file(
        "envoi.toml",
        config(relay.port()).replace(
            "timeout = 5",
            "timeout = 5\npassword_command = [\"C:\\Tools\\pw.exe\"]",
        ),
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "envoi.toml, line 13, column 25: missing escaped value, expected `b`, `e`, `f`, `n`, `r`, `\\`, `\"`, `x`, `u`, `U`; in a \"double-quoted\" TOML string a backslash starts an escape: write a Windows path in 'single quotes' ('C:\\Tools\\pw.exe') or with forward slashes",
    );
    assert_nothing_sent(&relay);
}

#[test]
fn security_none_is_refused_for_a_relay_that_is_not_on_this_machine() {
    let (campaign, relay) = campaign_and_relay();
    campaign.file(
        "envoi.toml",
        config(relay.port()).replace("host = \"127.0.0.1\"", "host = \"smtp.ombudsman.example\""),
    );
    let problem = "envoi.toml, [smtp] security: security = \"none\" is allowed only for a relay on this machine (127.0.0.1, ::1, localhost), not \"smtp.ombudsman.example\"; use \"starttls\" or \"tls\"";
    let check = refused(&campaign, &["check"]);
    assert_eq!(check.stdout_lines(), [problem]);
    assert_eq!(
        check.stderr,
        format!("error: 1 problem found (2 of 2 letters ready); {CHECK_AGAIN}\n")
    );
    let send = refused(&campaign, &["send", "--yes"]);
    assert_eq!(
        send.stderr_lines(),
        [problem, "error: 1 problem found; nothing was sent"]
    );
    assert_nothing_sent(&relay);
}

// ─── The command line ───────────────────────────────────────────────────────────────────────

#[test]
fn a_row_that_does_not_exist_is_refused() {
    let (campaign, relay) = campaign_and_relay();
    for args in [
        &["preview", "--row", "99"][..],
        &["preview", "--out", "out", "--row", "2", "--row", "99"],
        &["send", "--yes", "--row", "99"],
    ] {
        let run = refused(&campaign, args);
        assert_eq!(
            run.stderr,
            "error: recipients.csv: has no recipient in row 99 (its recipients are in rows 2 to 3); check --row\n",
            "envoi {args:?}"
        );
    }
    assert_nothing_sent(&relay);
}
