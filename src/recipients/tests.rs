//! The loader on whole files: CSV syntax and the row rules, as the user meets them.

use super::*;
use proptest::prelude::*;

const NAME: &str = "recipients.csv";

/// Writes `content` to a fresh file and hands the opened recipients to `f`.
fn with_file<T>(content: &[u8], f: impl FnOnce(Result<Recipients, Error>) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recipients.csv");
    std::fs::write(&path, content).unwrap();
    f(Recipients::open(&path, Path::new(NAME)))
}

/// Every good row of a file that opens.
fn good_rows(content: &str) -> Vec<Recipient> {
    with_file(content.as_bytes(), |opened| {
        opened
            .expect("file opens")
            .map(|row| row.unwrap_or_else(|p| panic!("unexpected problems: {p:?}")))
            .collect()
    })
}

/// Every row problem of a file that opens, as the user reads them.
fn row_problems(content: &[u8]) -> Vec<String> {
    with_file(content, |opened| {
        opened
            .expect("file opens")
            .filter_map(Result::err)
            .flatten()
            .map(|problem| problem.to_string())
            .collect()
    })
}

/// The message of a file that does not open.
fn open_error(content: &[u8]) -> String {
    with_file(content, |opened| {
        opened.expect_err("file must not open").to_string()
    })
}

fn row_numbers(content: &str) -> Vec<usize> {
    good_rows(content).iter().map(Recipient::row).collect()
}

#[test]
fn reads_rows_under_their_headers() {
    let rows = good_rows(
        "email,organisation,name\n\
         a@one.example,One Org,Ann\n\
         b@two.example,Two Org,Bob\n",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].row(), 2);
    assert_eq!(rows[0].email(), "a@one.example");
    assert_eq!(rows[0].get("organisation"), Some("One Org"));
    assert_eq!(rows[0].get("nope"), None);
    assert_eq!(rows[0].language(), None);
    assert_eq!(
        rows[1].columns().collect::<Vec<_>>(),
        [
            ("email", "b@two.example"),
            ("organisation", "Two Org"),
            ("name", "Bob")
        ]
    );
    assert_eq!(
        rows[1].to_json(),
        serde_json::json!({"email": "b@two.example", "organisation": "Two Org", "name": "Bob"})
    );
}

#[test]
fn header_only_yields_no_rows() {
    assert!(good_rows("email,name\n").is_empty());
    assert!(good_rows("email,name").is_empty());
}

#[test]
fn a_bom_is_not_part_of_the_first_header() {
    with_file(b"\xEF\xBB\xBFemail,name\na@x.example,Ann\n", |opened| {
        let mut recipients = opened.unwrap();
        assert_eq!(recipients.headers(), ["email", "name"]);
        let row = recipients.next().unwrap().unwrap();
        assert_eq!((row.row(), row.email()), (2, "a@x.example"));
    });
    // A quoted first cell right after the BOM is still a quoted cell.
    with_file(
        b"\xEF\xBB\xBF\"email\";name\n\"a@x.example\";Ann\n",
        |opened| {
            let mut recipients = opened.unwrap();
            assert_eq!(recipients.delimiter(), Some(b';'));
            assert_eq!(recipients.next().unwrap().unwrap().email(), "a@x.example");
        },
    );
}

#[test]
fn detects_semicolon_and_tab() {
    for (content, delimiter) in [
        ("email;name;title\na@x.example;Ann, Jr.;Dr\n", b';'),
        ("email\tname\ttitle\na@x.example\tAnn, Jr.\tDr\n", b'\t'),
    ] {
        with_file(content.as_bytes(), |opened| {
            let mut recipients = opened.unwrap();
            assert_eq!(recipients.delimiter(), Some(delimiter));
            let row = recipients.next().unwrap().unwrap();
            assert_eq!(row.get("name"), Some("Ann, Jr."));
            assert_eq!(row.get("title"), Some("Dr"));
        });
    }
}

#[test]
fn reads_crlf_files_without_stray_carriage_returns() {
    let rows = good_rows("email,name\r\na@x.example,Ann\r\n\r\nb@x.example,\"Bo\r\nB\"\r\n");
    assert_eq!(rows[0].get("name"), Some("Ann"));
    assert_eq!(rows[1].row(), 4);
    // Inside quotes the text is kept as it is.
    assert_eq!(rows[1].get("name"), Some("Bo\r\nB"));
}

#[test]
fn quoted_cells_keep_delimiters_quotes_and_line_breaks() {
    let rows = good_rows(
        "email,organisation,note\n\
         a@x.example,\"Office, Ltd\",\"He said \"\"yes\"\"\"\n\
         b@x.example,\"Two\nlines\",\"  padded  \"\n",
    );
    assert_eq!(rows[0].get("organisation"), Some("Office, Ltd"));
    assert_eq!(rows[0].get("note"), Some("He said \"yes\""));
    assert_eq!(rows[1].get("organisation"), Some("Two\nlines"));
    assert_eq!(rows[1].get("note"), Some("padded"));
}

#[test]
fn rows_are_numbered_as_a_spreadsheet_shows_them() {
    let lf = "email,note\n\
              a@x.example,\"line1\nline2\nline3\"\n\
              \n\
              \n\
              b@x.example,plain\n\
              ,\n\
              c@x.example,\"x\n\ny\"\n\
              d@x.example,z";
    assert_eq!(row_numbers(lf), [2, 5, 7, 8]);
    assert_eq!(row_numbers(&lf.replace('\n', "\r\n")), [2, 5, 7, 8]);
    // Blank lines before the header move everything down too.
    assert_eq!(row_numbers("\n\nemail\na@x.example\n"), [4]);
    // Problems carry the same numbers.
    assert_eq!(
        row_problems(b"email,note\na@x.example,\"1\n2\"\n\nnot-an-address,x\n"),
        [
            "recipients.csv, row 4, column \"email\": \"not-an-address\" is not an email address; correct it in the spreadsheet"
        ]
    );
}

#[test]
fn trims_header_names_and_values() {
    let rows =
        good_rows("  Email  ; Name ;organisation \n  a@x.example ;  Ann  ; \u{a0}Org\u{a0}\n");
    assert_eq!(rows[0].email(), "a@x.example");
    assert_eq!(rows[0].get("Name"), Some("Ann"));
    assert_eq!(rows[0].get("organisation"), Some("Org"));
    with_file(b" Email ,Name\n", |opened| {
        assert_eq!(opened.unwrap().headers(), ["email", "Name"]);
    });
}

#[test]
fn non_latin_values_round_trip_exactly() {
    let az = "Azərbaycan Respublikasının İnsan Hüquqları üzrə Müvəkkili (Ombudsman)";
    let ru = "Уполномоченный по правам человека";
    let ar = "مفوض حقوق الإنسان";
    let content = format!(
        "email,organisation,name\na@x.example,\"{az}\",{ru}\nb@x.example,{ar},Şəhla Əliyeva\n"
    );
    let rows = good_rows(&content);
    assert_eq!(rows[0].get("organisation"), Some(az));
    assert_eq!(rows[0].get("name"), Some(ru));
    assert_eq!(rows[1].get("organisation"), Some(ar));
    assert_eq!(rows[1].to_json()["name"], "Şəhla Əliyeva");
}

#[test]
fn a_file_that_is_not_utf8_is_one_problem_naming_its_first_row() {
    let message =
        open_error(b"email,name\na@x.example,Ann\nb@x.example,Caf\xe9\nc@x.example,\xe0 la\n");
    assert_eq!(
        message,
        "recipients.csv, row 3: this row is the first that is not UTF-8 text, so the file is in another encoding: it seems to be windows-1252 (Western European). Never guessed: re-save it as UTF-8: in Excel, Save As \"CSV UTF-8 (Comma delimited)\"; in LibreOffice, Save As \"Text CSV\" with Character set \"Unicode (UTF-8)\"; or, if windows-1252 is right, add encoding = \"windows-1252\" under [campaign] in envoi.toml"
    );
    assert!(
        open_error(b"email,N\xe4me\n")
            .starts_with("recipients.csv, row 1: this row is the first that is not UTF-8 text")
    );
}

#[test]
fn a_declared_encoding_reads_the_file_and_must_not_contradict_it() {
    let options = RecipientsOptions {
        encoding: encoding_for_label("windows-1252"),
        ..RecipientsOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    std::fs::write(&path, b"email;name\na@x.example;Caf\xe9 \x80\n").unwrap();
    let rows: Vec<_> = Recipients::open_with(&path, Path::new(NAME), &options)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows[0].get("name"), Some("Café €"));
    std::fs::write(&path, "email,name\na@x.example,Café\n").unwrap();
    let error = Recipients::open_with(&path, Path::new(NAME), &options).unwrap_err();
    assert_eq!(
        error.to_string(),
        "recipients.csv: the file is UTF-8 text, but encoding = \"windows-1252\" under [campaign] in envoi.toml says otherwise, and reading it so would garble every accented letter; remove the setting"
    );
}

#[test]
fn utf16_with_a_bom_is_read_as_excel_saves_unicode_text() {
    let text = "email\tname\torganisation\r\na@x.example\tƏli\t\"Tab\there\"\r\nb@x.example\tАнна\tمفوض\r\n";
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    for bytes in [le, be] {
        with_file(&bytes, |opened| {
            let recipients = opened.unwrap();
            assert_eq!(recipients.delimiter(), Some(b'\t'));
            assert_eq!(recipients.headers(), ["email", "name", "organisation"]);
            let rows: Vec<_> = recipients.map(Result::unwrap).collect();
            assert_eq!((rows[0].row(), rows[0].get("name")), (2, Some("Əli")));
            assert_eq!(rows[0].get("organisation"), Some("Tab\there"));
            assert_eq!(rows[1].get("organisation"), Some("مفوض"));
        });
    }
}

#[test]
fn email_column_is_required() {
    assert_eq!(
        open_error(b"name,organisation\nAnn,One\n"),
        "recipients.csv, row 1: there is no email column (the columns found are \"name\", \"organisation\"); add a column named email, with one address per row"
    );
    assert_eq!(
        open_error(b"a@x.example,Ann\n"),
        "recipients.csv, row 1: there is no email column (the columns found are \"a@x.example\", \"Ann\"); the first row looks like data: add a header row above it, with a column named email"
    );
    assert_eq!(
        open_error(b",,\n,x,\n"),
        "recipients.csv, row 2: there is no email column (the columns found are \"x\"); add a column named email, with one address per row"
    );
    assert_eq!(good_rows("EMAIL\na@x.example\n")[0].email(), "a@x.example");
}

#[test]
fn duplicate_header_names_are_refused() {
    assert_eq!(
        open_error(b"email,name,title,name\n"),
        "recipients.csv, row 1: columns B and D are both named \"name\"; each column needs its own name: rename or delete one of them"
    );
    assert_eq!(
        open_error(b"Email,name,E-mail,EMAIL\n"),
        "recipients.csv, row 1: columns A and D are both named \"email\"; each column needs its own name: rename or delete one of them"
    );
}

#[test]
fn unnamed_columns_must_stay_empty() {
    with_file(
        b"email,,name,,\na@x.example,,Ann,,\nb@x.example,, Bo\n",
        |opened| {
            let recipients = opened.unwrap();
            assert_eq!(recipients.headers(), ["email", "name"]);
            let rows: Vec<_> = recipients.map(Result::unwrap).collect();
            assert_eq!(
                rows[1].columns().collect::<Vec<_>>(),
                [("email", "b@x.example"), ("name", "Bo")]
            );
        },
    );
    assert_eq!(
        row_problems(b"email,name,,\na@x.example,Ann,,oops\n"),
        [
            "recipients.csv, row 2: column D has no name in the header row but this row has \"oops\" in it; give column D a name in row 1 or empty the cell"
        ]
    );
}

#[test]
fn empty_files_are_refused() {
    let message =
        "recipients.csv: the file is empty: it needs a header row with at least an `email` column";
    for content in [&b""[..], b"\xEF\xBB\xBF", b"\n \r\n\t\n", b",,,\n,\n"] {
        assert_eq!(open_error(content), message, "for {content:?}");
    }
}

#[test]
fn short_rows_are_problems() {
    assert_eq!(
        row_problems(b"email,name,title\na@x.example,Ann\n"),
        [
            "recipients.csv, row 2: this row has 2 cells but the header has 3; a cell is missing or two were merged: check the separators in this row"
        ]
    );
}

#[test]
fn long_rows_are_fine_while_the_extra_cells_are_empty() {
    assert_eq!(
        good_rows("email,name\na@x.example,Ann,, \n")[0].get("name"),
        Some("Ann")
    );
    assert_eq!(
        row_problems(b"email,name\na@x.example,Ann,,,Smith, Jr\n"),
        [
            "recipients.csv, row 2: column E has no name in the header row but this row has \"Smith\" in it; give column E a name in row 1 or empty the cell"
        ]
    );
}

#[test]
fn unclosed_quotes_are_refused_with_the_row_they_open_in() {
    assert_eq!(
        open_error(b"email,name\na@x.example,\"1\n2\"\n\nb@x.example,\"Ann\nc@x.example,Bob\n"),
        "recipients.csv: a quoted cell starting in row 4, column B is never closed; add the missing closing quote (\") in that cell"
    );
    assert_eq!(
        open_error(b"\"email,name\n"),
        "recipients.csv: a quoted cell starting in row 1, column A is never closed; add the missing closing quote (\") in that cell"
    );
    // A quote inside an unquoted cell is just a character.
    assert_eq!(
        good_rows("email,name\na@x.example,O\"Brien\n")[0].get("name"),
        Some("O\"Brien")
    );
}

#[test]
fn lone_carriage_returns_are_refused() {
    assert_eq!(
        open_error(b"email,name\ra@x.example,Ann\r"),
        "recipients.csv, row 1: this row contains a carriage return that does not end a line (old Mac line endings?); save the file as 'CSV UTF-8' in your spreadsheet"
    );
}

#[test]
fn bad_addresses_are_problems() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"a@x.example,",
            "the email cell is empty; fill in the address or delete the row",
        ),
        (
            b"jean@@x.example,",
            "\"jean@@x.example\" is not an email address; correct it in the spreadsheet",
        ),
        (
            b"\"Jean Dupont <jean@x.example>\",",
            "\"Jean Dupont <jean@x.example>\" is not a bare email address; put only the address in this column, and the person's name in the `name` column",
        ),
        (
            b"\"a@x.example, b@x.example\",",
            "\"a@x.example, b@x.example\" is not an email address; put one address per row; further addressees of the same letter go in the `cc` column",
        ),
        (
            b"\"a@x.example\nb@x.example\",",
            "\"a@x.example\nb@x.example\" runs over several lines; put the address on one line",
        ),
    ];
    for (index, (row, message)) in cases.into_iter().enumerate() {
        // The first case puts the empty cell under `email` by swapping the columns.
        let header: &[u8] = if index == 0 {
            b"name,email\n"
        } else {
            b"email,name\n"
        };
        let problems = row_problems(&[header, row, b"\n"].concat());
        let expected = Problem::new(Location::file(NAME).row(2).column("email"), message);
        assert_eq!(problems, [expected.to_string()]);
    }
}

#[test]
fn duplicate_addressees_point_at_the_first_row() {
    with_file(
        b"email\na@x.example\nb@x.example\nA@X.example\nc@x.example\n",
        |opened| {
            let results: Vec<_> = opened.unwrap().collect();
            assert_eq!(results.len(), 4);
            assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
            let problems = results[2].as_ref().unwrap_err();
            assert_eq!(
                problems[0].to_string(),
                "recipients.csv, row 4, column \"email\": \"A@X.example\" is also in row 2; each addressee must appear once: delete one of the rows"
            );
        },
    );
}

#[test]
fn language_codes_are_checked_and_lower_cased() {
    let rows = good_rows("email,Language\na@x.example,FR\nb@x.example,pt-BR\nc@x.example,\n");
    assert_eq!(rows[0].language(), Some("fr"));
    assert_eq!(rows[0].get("language"), Some("FR"));
    assert_eq!(rows[1].language(), Some("pt-br"));
    assert_eq!(rows[2].language(), None);
    for bad in [
        "../fr",
        "f",
        "fr/x",
        "fran",
        "fr-",
        "fr-x",
        "fr_FR",
        "fr-BR.hbs",
    ] {
        let content = format!("email,language\na@x.example,{bad}\n");
        assert_eq!(
            row_problems(content.as_bytes()),
            [format!(
                "recipients.csv, row 2, column \"language\": \"{bad}\" is not a language code; use a code such as fr, de or pt-BR, as in the template name letter.fr.hbs"
            )]
        );
    }
}

#[test]
fn a_row_lists_all_its_problems_and_later_rows_still_come() {
    with_file(
        b"email,name,language\nnope,Ann\nb@x.example,Bob,de\n",
        |opened| {
            let mut recipients = opened.unwrap();
            let problems = recipients.next().unwrap().unwrap_err();
            assert_eq!(problems.len(), 2);
            assert!(problems[0].message.starts_with("this row has 2 cells"));
            assert!(
                problems[1]
                    .message
                    .starts_with("\"nope\" is not an email address")
            );
            let next = recipients.next().unwrap().unwrap();
            assert_eq!((next.row(), next.language()), (3, Some("de")));
            assert!(recipients.next().is_none());
        },
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let error = Recipients::open(&dir.path().join("absent.csv"), Path::new(NAME)).unwrap_err();
    assert!(matches!(error, Error::Io { .. }));
    assert!(
        error
            .to_string()
            .starts_with("recipients.csv: could not read the recipients file: ")
    );
}

#[test]
fn oversized_cells_are_problems_naming_row_and_column() {
    let big = "x".repeat(MAX_CELL_BYTES + 1);
    let fits = "y".repeat(MAX_CELL_BYTES);
    let content = format!("email,note\na@x.example,{big}\nb@x.example,{fits}\n");
    with_file(content.as_bytes(), |opened| {
        let results: Vec<_> = opened.unwrap().collect();
        let problems = results[0].as_ref().unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].to_string(),
            "recipients.csv, row 2, column \"note\": this cell holds 1.0 MB of text, more than the 1 MB a cell may hold; shorten it in the spreadsheet (a long text belongs in a template partial or an attachment)"
        );
        assert_eq!(
            results[1].as_ref().unwrap().get("note"),
            Some(fits.as_str())
        );
    });
    // An oversized address is refused for its size, not echoed back in full.
    let content = format!("email\n{big}@x.example\n");
    let problems = row_problems(content.as_bytes());
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("recipients.csv, row 2, column \"email\": this cell holds"));
}

#[test]
fn row_numbers_hold_across_read_buffers() {
    // Far more than any read buffer, with quoted line breaks, blank lines and CRLF mixed in.
    let mut content = String::from("email,note\r\n");
    let mut expected = Vec::new();
    let mut row = 1;
    for i in 0..5_000 {
        row += 1;
        expected.push(row);
        content.push_str(&format!("r{i}@x.example,\"a,\"\"b\"\"\nc\r\nd\"\n"));
        if i % 7 == 0 {
            content.push_str("\r\n\n");
            row += 2;
        }
    }
    assert_eq!(row_numbers(&content), expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_panics_and_always_says_where(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(b','), Just(b';'), Just(b'\t'), Just(b'"'), Just(b'\n'), Just(b'\r'),
                Just(b' '), Just(b'@'), Just(0xEF), Just(0xBB), Just(0xBF), Just(0xFF),
                Just(b'e'), Just(b'a'), Just(b'.'), any::<u8>(),
            ],
            0..200,
        ),
        email_header in any::<bool>(),
    ) {
        // Half the inputs get a usable header, so that rows are exercised too.
        let content = if email_header { [&b"email,name,language\n"[..], &bytes].concat() } else { bytes };
        with_file(&content, |opened| {
            match opened {
                Ok(recipients) => {
                    let mut last_row = 1;
                    for result in recipients {
                        let row = match &result {
                            Ok(recipient) => recipient.row(),
                            Err(problems) => problems[0].location.row.unwrap_or(usize::MAX),
                        };
                        prop_assert!(row > last_row, "row {} after row {}", row, last_row);
                        last_row = row;
                        if let Err(problems) = result {
                            prop_assert!(!problems.is_empty());
                            for problem in problems {
                                prop_assert_eq!(problem.location.file.as_path(), Path::new(NAME));
                                prop_assert!(problem.location.row.is_some(), "{}", problem);
                            }
                        }
                    }
                }
                Err(error) => prop_assert!(error.to_string().starts_with(NAME), "{}", error),
            }
            Ok(())
        })?;
    }
}
