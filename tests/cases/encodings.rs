//! CSV as spreadsheets save it: UTF-16 "Unicode Text" is read, a declared encoding is read as
//! that, and any other file that is not UTF-8 is refused with one message, never guessed.
//! The fixtures are made here, byte by byte, as Excel and LibreOffice write them.

use crate::cases::bad_input::{campaign_and_relay, refused_before_any_letter};
use crate::support::mail;

const TEMPLATE: &str = "+++\nsubject = \"Statement for {{organisation}}\"\n+++\n{{salutation}},\n\nTo {{organisation}}, attention {{name}}.\n";

/// Three addressees whose names need more than ASCII, in a spreadsheet's column order.
const ROWS: [[&str; 4]; 3] = [
    [
        "sg@coe.example",
        "Conseil de l'Europe",
        "Marija Pejčinović Burić",
        "Madame la Secrétaire générale",
    ],
    [
        "info@ombudsman.example",
        "Azərbaycan Respublikasının Ombudsmanı",
        "Səbinə Əliyeva",
        "Hörmətli xanım",
    ],
    [
        "office@ohchr.example",
        "Управление Верховного комиссара",
        "Фолькер Тюрк",
        "Уважаемый господин",
    ],
];

/// The rows as Excel's "Unicode Text" has them: tab separated, CRLF, in UTF-16 with a BOM.
fn unicode_text(big_endian: bool) -> Vec<u8> {
    let mut text = String::from("email\torganisation\tname\tsalutation\r\n");
    for row in ROWS {
        text.push_str(&row.join("\t"));
        text.push_str("\r\n");
    }
    let mut bytes = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        bytes.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    bytes
}

/// The letters the relay received, as (recipient, text part).
fn received_texts(relay: &crate::support::smtp_server::SmtpServer) -> Vec<(String, String)> {
    let mut texts: Vec<(String, String)> = relay
        .received()
        .iter()
        .map(|r| (r.rcpt_to.join(","), mail::text(&mail::parse(&r.data))))
        .collect();
    texts.sort();
    texts
}

#[test]
fn utf16_unicode_text_is_read_and_every_name_arrives_intact() {
    for big_endian in [false, true] {
        let (campaign, relay) = campaign_and_relay();
        campaign
            .file("templates/letter.hbs", TEMPLATE)
            .file("recipients.csv", unicode_text(big_endian));
        campaign
            .run(&["check"])
            .expect_code(0)
            .expect_stdout("3 letters ready");
        campaign.run(&["send", "--yes"]).expect_code(0);
        let texts = received_texts(&relay);
        assert_eq!(texts.len(), 3);
        for row in ROWS {
            let (_, text) = texts
                .iter()
                .find(|(to, _)| to.contains(row[0]))
                .unwrap_or_else(|| panic!("a letter to {}", row[0]));
            assert!(
                text.starts_with(&format!(
                    "{},\n\nTo {}, attention {}.",
                    row[3], row[1], row[2]
                )),
                "{text}"
            );
        }
    }
}

#[test]
fn a_declared_encoding_reads_the_file_as_that() {
    let (campaign, relay) = campaign_and_relay();
    // Windows-1252, as Excel's plain "CSV (Comma delimited)" writes French on a Western PC.
    let text = "email;organisation;name;salutation\r\nsg@coe.example;Conseil de l'Europe;Hélène Dupré;Madame la Secrétaire générale\r\nfr@un.example;Délégation permanente;François Müller;Monsieur l'Ambassadeur\r\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    let config = campaign.read("envoi.toml").replace(
        "id = \"test-campaign\"",
        "id = \"test-campaign\"\nencoding = \"windows-1252\"",
    );
    campaign
        .file("envoi.toml", config)
        .file("templates/letter.hbs", TEMPLATE)
        .file("recipients.csv", bytes);
    campaign.run(&["send", "--yes"]).expect_code(0);
    let texts = received_texts(&relay);
    assert_eq!(texts.len(), 2);
    assert!(
        texts[0].1.contains(
            "Monsieur l'Ambassadeur,\n\nTo Délégation permanente, attention François Müller."
        ),
        "{}",
        texts[0].1
    );
    assert!(
        texts[1].1.contains("attention Hélène Dupré."),
        "{}",
        texts[1].1
    );
}

#[test]
fn a_cyrillic_file_is_refused_once_naming_its_encoding() {
    let (campaign, relay) = campaign_and_relay();
    let mut text = String::from("email,organisation,name,salutation,language\n");
    for i in 0..50 {
        text.push_str(&format!(
            "r{i}@ombudsman.example,Уполномоченный по правам человека,Иван Петров,Уважаемый коллега,\n"
        ));
    }
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
    campaign.file("recipients.csv", bytes);
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv, row 2: this row is the first that is not UTF-8 text, so the file is in another encoding: it seems to be windows-1251 (Cyrillic). Never guessed: re-save it as UTF-8: in Excel, Save As \"CSV UTF-8 (Comma delimited)\"; in LibreOffice, Save As \"Text CSV\" with Character set \"Unicode (UTF-8)\"; or, if windows-1251 is right, add encoding = \"windows-1251\" under [campaign] in envoi.toml",
    );
}

#[test]
fn utf16_without_a_bom_is_named_not_read_as_nul_characters() {
    let (campaign, relay) = campaign_and_relay();
    let bytes: Vec<u8> = unicode_text(false)[2..].to_vec();
    campaign.file("recipients.csv", bytes);
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv, row 1: this row is the first that is not UTF-8 text, so the file is in another encoding: it seems to be UTF-16LE (Unicode text without a byte order mark). Never guessed: re-save it as UTF-8: in Excel, Save As \"CSV UTF-8 (Comma delimited)\"; in LibreOffice, Save As \"Text CSV\" with Character set \"Unicode (UTF-8)\"; or, if UTF-16LE is right, add encoding = \"UTF-16LE\" under [campaign] in envoi.toml",
    );
}

#[test]
fn a_bad_encoding_setting_is_refused() {
    let (campaign, relay) = campaign_and_relay();
    let good = campaign.read("envoi.toml");
    let with = |setting: &str| {
        good.replace(
            "id = \"test-campaign\"",
            &format!("id = \"test-campaign\"\nencoding = \"{setting}\""),
        )
    };
    campaign.file("envoi.toml", with("latin-9x"));
    refused_before_any_letter(
        &campaign,
        &relay,
        "envoi.toml, [campaign] encoding: \"latin-9x\" is not the name of a text encoding; use a standard name such as \"windows-1252\" (Western European), \"windows-1250\" (Central European), \"windows-1251\" (Cyrillic) or \"shift_jis\", or remove the setting for UTF-8",
    );

    // A setting that contradicts a UTF-8 file would garble it: refused too.
    campaign.file("envoi.toml", with("windows-1252"));
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv: the file is UTF-8 text, but encoding = \"windows-1252\" under [campaign] in envoi.toml says otherwise, and reading it so would garble every accented letter; remove the setting",
    );

    // Bytes that the declared encoding does not have are named by their row.
    campaign.file("envoi.toml", with("shift_jis"));
    campaign.file(
        "recipients.csv",
        b"email,organisation\nsg@un.example,United Nations\nsg@jp.example,\x93\xfa\x96\x7b\nsg@coe.example,\x81\n",
    );
    refused_before_any_letter(
        &campaign,
        &relay,
        "recipients.csv, row 4: this row is not valid Shift_JIS text, the encoding that encoding under [campaign] in envoi.toml names; correct the setting, or re-save it as UTF-8: in Excel, Save As \"CSV UTF-8 (Comma delimited)\"; in LibreOffice, Save As \"Text CSV\" with Character set \"Unicode (UTF-8)\" and remove the setting",
    );
}
