//! What a letter is, read back with mail-parser from what envoi writes: its MIME structure and
//! headers, that it is the same on every run, that cell values are text and never markup, that
//! every script survives, and what the templates can do.

use crate::support::campaign::TestCampaign;
use crate::support::mail::{self, Attached};
use crate::support::run::{bundled_campaign, envoi_in, fixtures, run};
use crate::support::smtp_server::{ServerConfig, SmtpServer};

/// preview never talks to the relay; this is only the port written into envoi.toml.
const NO_RELAY: u16 = 2525;

fn names(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
        .collect()
}

// ─── Structure ──────────────────────────────────────────────────────────────────────────────

#[test]
fn preview_out_writes_one_eml_per_recipient_and_an_index_linking_each_letter() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    let run = campaign.run(&["preview", "--out", "out"]);
    run.expect_code(0);
    // --out is relative to --dir, and the message says where the letters actually are.
    let out = campaign.path().join("out");
    assert_eq!(
        run.stdout,
        format!(
            "wrote 2 letters to {}; open {} in a browser to see them\n",
            out.display(),
            out.join("index.html").display()
        )
    );

    let mut written: Vec<String> = std::fs::read_dir(campaign.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "00002-sg_un.example.eml",
            "00002-sg_un.example.html",
            "00003-info_coe.example.eml",
            "00003-info_coe.example.html",
            "index.html"
        ]
    );

    let index = campaign.read("out/index.html");
    for (stem, organisation) in [
        ("00002-sg_un.example", "United Nations"),
        ("00003-info_coe.example", "Council of Europe"),
    ] {
        assert!(
            index.contains(&format!("<a href=\"{stem}.html\">")),
            "index links {stem}.html:\n{index}"
        );
        assert!(index.contains(organisation), "index names {organisation}");
        let page = campaign.read(&format!("out/{stem}.html"));
        assert!(
            page.contains(&format!("<a href=\"{stem}.eml\">")),
            "{stem}.html links its .eml"
        );
    }
}

#[test]
fn a_letter_with_attachments_is_mixed_and_carries_each_file_byte_for_byte() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    // Every byte value, long enough for many base64 lines: nothing may be altered on the way.
    let pdf: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    campaign.file("attachments/statement.pdf", &pdf);
    // A text file keeps its line ends, whatever they are: it is an attachment, not a body.
    let annex = "Annex — line 1\nline 2\r\nline 3 without an end"
        .as_bytes()
        .to_vec();
    campaign.file("attachments/annex.txt", &annex);
    let photo = std::fs::read(fixtures().join("full/attachments/photo.png")).unwrap();

    let emls = campaign.preview_out();
    // Row 3 attaches the letter's statement.pdf plus annex.txt and photo.png from its cell.
    let message = mail::parse(&emls[1]);
    assert_eq!(
        mail::structure(&message),
        "multipart/mixed[multipart/alternative[text/plain, text/html], application/pdf, text/plain, image/png]"
    );
    assert_eq!(
        mail::attachments(&message),
        vec![
            Attached {
                name: "statement.pdf".into(),
                mime_type: "application/pdf".into(),
                bytes: pdf,
            },
            Attached {
                name: "annex.txt".into(),
                mime_type: "text/plain".into(),
                bytes: annex,
            },
            Attached {
                name: "photo.png".into(),
                mime_type: "image/png".into(),
                bytes: photo,
            },
        ]
    );
}

#[test]
fn a_letter_without_attachments_is_multipart_alternative() {
    let campaign = TestCampaign::fixture("languages", NO_RELAY);
    let message = campaign.raw_letter(2);
    let message = mail::parse(&message);
    assert_eq!(
        mail::structure(&message),
        "multipart/alternative[text/plain, text/html]"
    );
    assert!(mail::attachments(&message).is_empty());
    assert_eq!(
        mail::text(&message),
        "Your Excellency,\n\nI have the honour to transmit the following statement.\n\nThe statement in English.\n"
    );
}

#[test]
fn headers_name_sender_recipient_copies_and_reply_address() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    let emls = campaign.preview_out();
    let (un, coe) = (mail::parse(&emls[0]), mail::parse(&emls[1]));

    // The front matter's from and reply_to win over envoi.toml's.
    let from = names(&[(
        "Commissioner for Human Rights",
        "ombudsman@ombudsman.example",
    )]);
    assert_eq!(mail::mailboxes(un.from()), from);
    assert_eq!(
        mail::mailboxes(un.reply_to()),
        names(&[("", "office@ombudsman.example")])
    );
    // To: the name column, or the organisation when the name is empty.
    assert_eq!(
        mail::mailboxes(un.to()),
        names(&[("António Guterres", "sg@un.example")])
    );
    assert_eq!(
        mail::mailboxes(coe.to()),
        names(&[("Council of Europe", "info@coe.example")])
    );
    // Cc: the front matter's list, then the row's cell split on both `,` and `;`.
    let letter_cc = [
        ("", "registry@ombudsman.example"),
        ("Press Office", "press@ombudsman.example"),
    ];
    let row_cc = [
        ("", "desk@un.example"),
        ("", "ops@un.example"),
        ("", "legal@un.example"),
    ];
    assert_eq!(
        mail::mailboxes(un.cc()),
        names(&[letter_cc.as_slice(), row_cc.as_slice()].concat())
    );
    assert_eq!(mail::mailboxes(coe.cc()), names(&letter_cc));
    assert_eq!(
        un.subject(),
        Some("Statement of 19 January 2024 for United Nations")
    );
    assert!(un.date().is_some(), "a Date header that parses");
    assert_eq!(
        un.header("X-Recipient-Category")
            .and_then(|v| v.as_text())
            .map(str::trim),
        Some("UN")
    );
    assert_eq!(
        mail::raw_header(&emls[0], "X-Campaign").as_deref(),
        Some("statement-2024-01-19")
    );
    assert_eq!(
        mail::raw_header(&emls[0], "MIME-Version").as_deref(),
        Some("1.0")
    );

    for (bytes, message) in [(&emls[0], &un), (&emls[1], &coe)] {
        // Bcc addresses are for the envelope only (see the send test below).
        assert_eq!(mail::raw_header(bytes, "Bcc"), None);
        assert!(message.bcc().is_none());
        let id = message.message_id().expect("a Message-ID");
        let (hash, domain) = id.split_once(".envoi@").expect("<hash.envoi@domain>");
        assert_eq!(domain, "ombudsman.example", "the sender's domain");
        assert_eq!(hash.len(), 32);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        for name in ["From", "To", "Subject", "Date", "Message-ID", "Reply-To"] {
            let count = mail::raw_headers(bytes)
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .count();
            assert_eq!(count, 1, "exactly one {name} header");
        }
    }
}

#[test]
fn bcc_addresses_reach_the_envelope_but_no_header_and_the_message_sent_is_the_one_previewed() {
    let server = SmtpServer::start(ServerConfig::default());
    let campaign = TestCampaign::fixture("full", server.port());
    let previewed = campaign.preview_out();
    campaign.run(&["send", "--yes"]).expect_code(0);

    let received = server.received();
    assert_eq!(received.len(), 2);
    let coe = received
        .iter()
        .find(|r| r.rcpt_to[0].contains("info@coe.example"))
        .expect("row 3 was sent");
    let mut envelope: Vec<String> = coe
        .rcpt_to
        .iter()
        .map(|a| a.trim_matches(['<', '>']).to_owned())
        .collect();
    envelope.sort();
    // To, the letter's Cc and Bcc, and the row's Bcc (row 3 has no Cc of its own).
    assert_eq!(
        envelope,
        [
            "archive@ombudsman.example",
            "audit@ombudsman.example",
            "info@coe.example",
            "press@ombudsman.example",
            "registry@ombudsman.example",
        ]
    );
    assert_eq!(mail::raw_header(&coe.data, "Bcc"), None);
    assert!(mail::parse(&coe.data).bcc().is_none());

    // What preview shows is what is sent (but for the Date, taken when each run starts).
    let sent = coe
        .data
        .strip_suffix(b"\r\n")
        .expect("lettre ends DATA with CRLF");
    assert_eq!(
        String::from_utf8_lossy(&mail::without_date(sent)),
        String::from_utf8_lossy(&mail::without_date(&previewed[1]))
    );
}

// ─── Determinism ────────────────────────────────────────────────────────────────────────────

#[test]
fn two_previews_are_byte_identical_except_the_date_line() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    let first = campaign.preview_out();
    let second = campaign.preview_out();
    assert_eq!(first.len(), 2);
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        let dates = mail::header_lines(a)
            .iter()
            .filter(|l| l.starts_with("Date: "))
            .count();
        assert_eq!(dates, 1, "one Date line, on one line");
        assert_eq!(
            String::from_utf8_lossy(&mail::without_date(a)),
            String::from_utf8_lossy(&mail::without_date(b))
        );
    }
}

#[test]
fn message_ids_are_stable_per_recipient_and_change_with_the_campaign_id() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    let message_ids = |campaign: &TestCampaign| -> Vec<String> {
        campaign
            .preview_out()
            .iter()
            .map(|eml| mail::parse(eml).message_id().unwrap().to_owned())
            .collect()
    };
    let first = message_ids(&campaign);
    assert_eq!(first, message_ids(&campaign), "stable across runs");
    assert_ne!(first[0], first[1], "one per recipient");

    let config = campaign.read("envoi.toml");
    campaign.file(
        "envoi.toml",
        config.replace("id = \"full\"", "id = \"full-second-wave\""),
    );
    let renamed = message_ids(&campaign);
    for (before, after) in first.iter().zip(&renamed) {
        assert_ne!(before, after, "a new campaign id gives new Message-IDs");
    }
}

// ─── Escaping ───────────────────────────────────────────────────────────────────────────────

#[test]
fn cell_values_are_escaped_in_html_and_exactly_as_typed_in_text_and_headers() {
    let campaign = TestCampaign::new();
    campaign
        .file(
            "recipients.csv",
            "email,organisation,name,salutation,note\n\
             sg@un.example,<b>Ombudsman & Co</b>,,Dear colleagues,\"**x** [a](javascript:x) <script>alert(1)</script>\"\n",
        )
        .file(
            "templates/letter.hbs",
            "+++\nsubject = \"Statement for {{organisation}}\"\n+++\n{{salutation}},\n\nTo {{organisation}}: the **statement**.\n\n{{note}}\n",
        );
    let bytes = campaign.raw_letter(2);
    let message = mail::parse(&bytes);

    // The template's own Markdown is Markdown; the cells' is text.
    assert_eq!(
        mail::text(&message),
        "Dear colleagues,\n\nTo <b>Ombudsman & Co</b>: the statement.\n\n**x** [a](javascript:x) <script>alert(1)</script>\n"
    );
    let html = mail::html(&message);
    assert!(
        html.contains(
            "<p dir=\"auto\">To <span dir=\"auto\">&lt;b&gt;Ombudsman &amp; Co&lt;/b&gt;</span>: the <strong>statement</strong>.</p>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<p dir=\"auto\"><span dir=\"auto\">**x** [a](javascript:x) &lt;script&gt;alert(1)&lt;/script&gt;</span></p>"),
        "{html}"
    );
    for never in ["<b>Ombudsman", "<strong>x", "href=\"javascript", "<script>"] {
        assert!(!html.contains(never), "{never} in\n{html}");
    }
    // Headers carry the value as typed (no name column: the organisation names the recipient).
    assert_eq!(
        message.subject(),
        Some("Statement for <b>Ombudsman & Co</b>")
    );
    assert_eq!(
        mail::mailboxes(message.to()),
        names(&[("<b>Ombudsman & Co</b>", "sg@un.example")])
    );
}

// ─── Unicode ────────────────────────────────────────────────────────────────────────────────

const RLM: char = '\u{200F}';

/// Rows in Azerbaijani, Russian, Arabic (a name ending in a right-to-left mark) and French, with
/// non-ASCII names in From, Reply-To, To and Cc.
fn unicode_campaign() -> TestCampaign {
    let campaign = TestCampaign::new();
    campaign
        .file(
            "envoi.toml",
            crate::support::campaign::config(NO_RELAY).replace(
                "from = \"Commissioner for Human Rights (Ombudsman) <ombudsman@ombudsman.example>\"\nreply_to = \"office@ombudsman.example\"",
                "from = \"Səbinə Əliyeva, Müvəkkil <ombudsman@ombudsman.example>\"\nreply_to = \"Aparat — Ofis <office@ombudsman.example>\"",
            ),
        )
        .file(
            "templates/letter.hbs",
            "+++\nsubject = \"Bəyanat: {{organisation}} — ğ ş ı ö ü ç\"\ncc = \"Ünal Öztürk <unal@ombudsman.example>\"\n+++\n{{salutation}},\n\n{{name}} — ğ ş ı ö ü ç Ə ə İ.\n",
        )
        .file(
            "recipients.csv",
            format!(
                "email,organisation,name,salutation,cc\n\
                 aliyeva@az.example,Azərbaycan Respublikası,Səbinə Əliyeva,Hörmətli Səbinə xanım,\"Ağa Şükürov <aga@az.example>; Gülçöhrə İsmayılova <gul@az.example>\"\n\
                 petrov@ru.example,Организация Объединённых Наций,Иван Петров,Уважаемый господин Петров,Мария Иванова <maria@ru.example>\n\
                 haddad@lb.example,المفوضية السامية,ليلى حداد{RLM},السيدة ليلى حداد المحترمة,\n\
                 fontaine@fr.example,Défenseur des droits,Élise Fontaine,Chère Madame,\"François Çavuşoğlu <fc@fr.example>\"\n"
            ),
        );
    campaign
}

#[test]
fn names_subjects_and_bodies_in_any_script_round_trip_exactly() {
    let campaign = unicode_campaign();
    let emls = campaign.preview_out();
    assert_eq!(emls.len(), 4);
    let rows = [
        (
            "Azərbaycan Respublikası",
            "Səbinə Əliyeva",
            "aliyeva@az.example",
            "Hörmətli Səbinə xanım",
            vec![
                ("Ağa Şükürov", "aga@az.example"),
                ("Gülçöhrə İsmayılova", "gul@az.example"),
            ],
        ),
        (
            "Организация Объединённых Наций",
            "Иван Петров",
            "petrov@ru.example",
            "Уважаемый господин Петров",
            vec![("Мария Иванова", "maria@ru.example")],
        ),
        (
            "المفوضية السامية",
            "ليلى حداد\u{200F}", // the right-to-left mark is part of the name
            "haddad@lb.example",
            "السيدة ليلى حداد المحترمة",
            vec![],
        ),
        (
            "Défenseur des droits",
            "Élise Fontaine",
            "fontaine@fr.example",
            "Chère Madame",
            vec![("François Çavuşoğlu", "fc@fr.example")],
        ),
    ];
    for (eml, (organisation, name, email, salutation, row_cc)) in emls.iter().zip(rows) {
        let message = mail::parse(eml);
        assert_eq!(
            mail::mailboxes(message.from()),
            names(&[("Səbinə Əliyeva, Müvəkkil", "ombudsman@ombudsman.example")])
        );
        assert_eq!(
            mail::mailboxes(message.reply_to()),
            names(&[("Aparat — Ofis", "office@ombudsman.example")])
        );
        assert_eq!(mail::mailboxes(message.to()), names(&[(name, email)]));
        let cc = [vec![("Ünal Öztürk", "unal@ombudsman.example")], row_cc].concat();
        assert_eq!(mail::mailboxes(message.cc()), names(&cc));
        assert_eq!(
            message.subject(),
            Some(format!("Bəyanat: {organisation} — ğ ş ı ö ü ç").as_str())
        );
        let body_line = format!("{name} — ğ ş ı ö ü ç Ə ə İ.");
        assert_eq!(
            mail::text(&message),
            format!("{salutation},\n\n{body_line}\n")
        );
        let html = mail::html(&message);
        let isolated = |value: &str| format!("<span dir=\"auto\">{value}</span>");
        assert!(
            html.contains(&format!("<p dir=\"auto\">{},</p>", isolated(salutation))),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<p dir=\"auto\">{} — ğ ş ı ö ü ç Ə ə İ.</p>",
                isolated(name)
            )),
            "{html}"
        );
    }
}

#[test]
fn raw_headers_are_ascii_with_addresses_outside_encoded_words() {
    let campaign = unicode_campaign();
    for eml in campaign.preview_out() {
        for line in mail::header_lines(&eml) {
            assert!(line.is_ascii(), "not ASCII: {line}");
            // RFC 5322's limit (78 is only advised, and lettre keeps `=?...?= <address>` whole).
            assert!(line.len() <= 998, "longer than 998 characters: {line}");
        }
        let message = mail::parse(&eml);
        for (header, list) in [
            ("From", message.from()),
            ("Reply-To", message.reply_to()),
            ("To", message.to()),
            ("Cc", message.cc()),
        ] {
            let raw = mail::raw_header(&eml, header).expect(header);
            assert!(
                raw.contains("=?utf-8?"),
                "{header} is RFC 2047 encoded: {raw}"
            );
            let plain = mail::outside_encoded_words(&raw);
            for (_, address) in mail::mailboxes(list) {
                assert!(
                    plain.contains(&format!("<{address}>")),
                    "{header}: <{address}> stands outside the encoded words in {raw}"
                );
            }
        }
    }
}

#[test]
fn a_long_non_ascii_subject_round_trips_in_short_ascii_lines() {
    let subject: String = "Bəyanat — Заявление — بيان — Déclaration — ğ ş ı ö ü ç. ".repeat(5);
    let subject = subject.trim_end();
    assert!(subject.chars().count() > 200);
    let campaign = TestCampaign::new();
    campaign.file(
        "templates/letter.hbs",
        format!("+++\nsubject = \"{subject}\"\n+++\nText.\n"),
    );
    let eml = campaign.raw_letter(2);
    let message = mail::parse(&eml);
    assert_eq!(message.subject(), Some(subject));
    let subject_lines: Vec<String> = mail::header_lines(&eml)
        .into_iter()
        .skip_while(|l| !l.starts_with("Subject:"))
        .take_while(|l| l.starts_with("Subject:") || l.starts_with(' '))
        .collect();
    assert!(subject_lines.len() > 3, "folded: {subject_lines:#?}");
    for line in &subject_lines {
        assert!(line.is_ascii() && line.len() <= 78, "{line}");
    }
}

// ─── Templates ──────────────────────────────────────────────────────────────────────────────

/// Golden output: `tests/fixtures/languages/expected/preview.txt`. After an intended change to
/// the preview format, regenerate it with `BLESS=1 cargo test --test main languages`.
#[test]
fn language_variants_of_the_letter_and_its_partials_are_chosen_per_row() {
    // en → plain; fr → letter.fr.hbs + statement.fr.md; fr-CA → falls back to fr;
    // de → plain letter + statement.de.md; es (no variant at all) and no language → plain.
    let campaign = TestCampaign::fixture("languages", NO_RELAY);
    let run = campaign.run(&["preview"]);
    run.expect_code(0);
    let golden = fixtures().join("languages/expected/preview.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&golden, &run.stdout).unwrap();
    }
    assert_eq!(run.stdout, std::fs::read_to_string(golden).unwrap());

    let used: Vec<String> = run
        .stdout_lines()
        .iter()
        .filter_map(|l| l.strip_prefix("Template:    "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        used,
        [
            "templates/letter.hbs",
            "templates/letter.fr.hbs",
            "templates/letter.fr.hbs",
            "templates/letter.hbs",
            "templates/letter.hbs",
            "templates/letter.hbs"
        ]
    );
    let fr_ca = mail::parse(&campaign.raw_letter(4)).into_owned();
    assert_eq!(
        mail::text(&fr_ca),
        "Excellence,\n\nJ'ai l'honneur de vous transmettre la déclaration suivante.\n\nLa déclaration en français.\n"
    );
    let de = mail::parse(&campaign.raw_letter(5)).into_owned();
    assert!(mail::text(&de).ends_with("\n\nDie Erklärung auf Deutsch.\n"));
}

#[test]
fn a_regional_variant_falls_back_to_its_language_file_by_file_whatever_the_case() {
    let campaign = TestCampaign::fixture("languages", NO_RELAY);
    // Only the statement has a Canadian variant, named as people write the tag; and a
    // Brazilian letter serves a row that writes the code in lower case.
    campaign
        .file(
            "templates/statement.fr-CA.md",
            "La déclaration, version canadienne.\n",
        )
        .file(
            "templates/letter.pt-BR.hbs",
            "+++\nsubject = \"Declaração para {{organisation}}\"\n+++\n{{> statement}}\n",
        );
    let mut csv = campaign.read("recipients.csv");
    csv.push_str("brasilia@embaixada.example,Embaixada do Brasil,Excelência,pt-br\n");
    campaign.file("recipients.csv", csv);

    let canada = mail::parse(&campaign.raw_letter(4)).into_owned();
    assert_eq!(
        mail::text(&canada),
        "Excellence,\n\nJ'ai l'honneur de vous transmettre la déclaration suivante.\n\nLa déclaration, version canadienne.\n",
        "letter.fr.hbs with statement.fr-CA.md"
    );
    let france = mail::parse(&campaign.raw_letter(3)).into_owned();
    assert!(mail::text(&france).ends_with("\nLa déclaration en français.\n"));
    let brazil = mail::parse(&campaign.raw_letter(8)).into_owned();
    assert_eq!(
        brazil.subject(),
        Some("Declaração para Embaixada do Brasil")
    );
    assert_eq!(mail::text(&brazil), "The statement in English.\n");
}

/// Compares `actual` with the golden file `name` under `tests/fixtures/`, or writes it when
/// `BLESS` is set (after an intended change, `BLESS=1 cargo test --test main golden`).
fn assert_golden(name: &str, actual: &str) {
    let golden = fixtures().join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&golden, actual).unwrap();
    }
    assert_eq!(
        actual,
        std::fs::read_to_string(&golden).unwrap(),
        "{name} (BLESS=1 to update it after an intended change)"
    );
}

/// A statement with figures: a GFM table is an HTML `<table>` with the columns' alignment,
/// and aligned columns in the text part (a value with a `|` stays in its cell).
#[test]
fn golden_a_table_in_both_parts() {
    let campaign = TestCampaign::fixture("tables", NO_RELAY);
    let message = mail::parse(&campaign.raw_letter(2)).into_owned();
    assert_golden("tables/expected/letter.txt", &mail::text(&message));
    assert_golden("tables/expected/letter.html", &mail::html(&message));
}

/// The bundled campaign's Arabic cover letter: right to left on `<html>` and on the letter,
/// each paragraph and each value from recipients.csv in its own direction.
#[test]
fn golden_the_arabic_letter_is_set_right_to_left() {
    let preview = run(envoi_in(
        bundled_campaign(),
        &["preview", "--format", "raw", "--row", "20"],
    ));
    preview.expect_code(0);
    let message = mail::parse(&preview.stdout_bytes).into_owned();
    let html = mail::html(&message);
    assert!(html.contains("<html lang=\"ar\" dir=\"rtl\">"), "{html}");
    assert!(html.contains("<div class=\"letter\" dir=\"rtl\""), "{html}");
    assert_golden("golden/letter-ar.html", &html);
}

#[test]
fn helpers_change_case_fill_empty_cells_and_write_dates_in_several_languages() {
    let campaign = TestCampaign::new();
    campaign
        .file(
            "recipients.csv",
            "email,organisation,name,salutation,since\n\
             sg@coe.example,Council of Europe,,Your Excellency,1990-01-20\n",
        )
        .file(
            "templates/letter.hbs",
            "+++\n\
             subject = \"{{upper organisation}} / {{lower organisation}}\"\n\
             +++\n\
             {{default name \"Sir or Madam\"}} / {{default salutation \"Dear colleague\"}}\n\n\
             {{date \"%e %B %Y\"}} / {{date \"%e %B %Y\" lang=\"fr\"}} / {{date \"%d.%m.%Y\"}}\n\n\
             {{format_date since \"%e %B %Y\"}} / {{format_date since \"%e %B %Y\" lang=\"fr\"}} / {{format_date since \"%e %B %Y\" lang=\"az\"}}\n",
        );
    // TestCampaign::envoi sets ENVOI_TODAY=2024-01-19.
    let message = mail::parse(&campaign.raw_letter(2)).into_owned();
    assert_eq!(
        message.subject(),
        Some("COUNCIL OF EUROPE / council of europe")
    );
    assert_eq!(
        mail::text(&message),
        "Sir or Madam / Your Excellency\n\n\
         19 January 2024 / 19 janvier 2024 / 19.01.2024\n\n\
         20 January 1990 / 20 janvier 1990 / 20 yanvar 1990\n"
    );

    let other_day = campaign
        .envoi(&["preview", "--format", "raw"])
        .env("ENVOI_TODAY", "2025-03-07")
        .output()
        .unwrap();
    let message = mail::parse(&other_day.stdout).into_owned();
    assert!(
        mail::text(&message).contains("\n7 March 2025 / 7 mars 2025 / 07.03.2025\n"),
        "ENVOI_TODAY fixes today"
    );
}

#[test]
fn dates_are_written_in_every_language_chrono_knows_and_an_unknown_one_is_a_problem() {
    let campaign = TestCampaign::new();
    campaign
        .file(
            "recipients.csv",
            "email,organisation,language\n\
             a@coe.example,Council of Europe,ru\n\
             b@coe.example,Council of Europe,fr-CA\n\
             c@coe.example,Council of Europe,uk\n\
             d@coe.example,Council of Europe,tlh\n",
        )
        .file(
            "templates/letter.hbs",
            "+++\nsubject = \"Statement\"\n+++\nDear colleagues,\n\n\
             {{date \"%e %B %Y\" lang=language}} / {{date \"%B\" lang=\"ar\"}}\n",
        );
    // TestCampaign::envoi sets ENVOI_TODAY=2024-01-19, a Friday.
    for (row, expected) in [
        (2, "19 января 2024 / يناير"),
        (3, "19 janvier 2024 / يناير"),
        (4, "19 січня 2024 / يناير"),
    ] {
        let message = mail::parse(&campaign.raw_letter(row)).into_owned();
        assert!(
            mail::text(&message).contains(expected),
            "row {row}: {}",
            mail::text(&message)
        );
    }
    let run = campaign.run(&["check"]);
    run.expect_code(2);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains(
            "templates/letter.hbs, line 6, column 1: lang=\"tlh\" is not a language envoi can write dates in; use a language code such as en, fr, fr-CA, az, ru or ar (rendering recipients.csv row 5)"
        ),
        "{said}"
    );
}

#[test]
fn front_matter_addresses_accept_a_string_or_a_list_and_envoi_toml_fills_the_rest() {
    let campaign = TestCampaign::fixture("full", NO_RELAY);
    let letter = campaign.read("templates/letter.hbs");
    let letter = letter
        .replace(
            "from = \"Commissioner for Human Rights <ombudsman@ombudsman.example>\"\n",
            "",
        )
        .replace("reply_to = \"office@ombudsman.example\"\n", "")
        .replace(
            "cc = [\"registry@ombudsman.example\", \"Press Office <press@ombudsman.example>\"]",
            "cc = \"registry@ombudsman.example\"",
        )
        .replace(
            "bcc = \"archive@ombudsman.example\"",
            "bcc = [\"archive@ombudsman.example\", \"board@ombudsman.example\"]",
        );
    campaign.file("templates/letter.hbs", &letter);

    let message = mail::parse(&campaign.raw_letter(3)).into_owned();
    assert_eq!(
        mail::mailboxes(message.from()),
        names(&[("Config Sender", "config@ombudsman.example")])
    );
    assert_eq!(
        mail::mailboxes(message.reply_to()),
        names(&[("", "config-replies@ombudsman.example")])
    );
    assert_eq!(
        mail::mailboxes(message.cc()),
        names(&[("", "registry@ombudsman.example")])
    );
    // The text preview lists the Bcc that the message itself must not carry.
    let run = campaign.run(&["preview", "--row", "3"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(
            "Bcc:         archive@ombudsman.example, board@ombudsman.example, audit@ombudsman.example\n"
        ),
        "{}",
        run.stdout
    );
}
