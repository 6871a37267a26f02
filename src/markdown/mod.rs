//! Markdown → the two bodies of every letter: an HTML document and readable plain text.
//!
//! The letter body is Markdown written by the office; values from recipients.csv reach it
//! through [`escape_literal`], so that a cell can never turn into markup, a link or a heading.
//! CommonMark plus GFM tables (a statement with figures needs them); no footnotes or smart
//! punctuation: what the author writes is what both parts show.
//!
//! [`escape_literal`] also wraps each value in Unicode isolates (FSI … PDI). The HTML part turns
//! them into `<span dir="auto">`, so an Arabic name in an English letter (or an English name in
//! an Arabic one) keeps its own direction; the text part drops them.

use pulldown_cmark::{Event, Options, Parser};

mod direction;
mod html;
mod table;
mod text;

pub use direction::is_right_to_left;
use text::TextWriter;

/// Opens a value from recipients.csv in the Markdown (U+2068 FIRST STRONG ISOLATE).
const VALUE_START: char = '\u{2068}';
/// Closes it (U+2069 POP DIRECTIONAL ISOLATE).
const VALUE_END: char = '\u{2069}';

/// The text part is wrapped nowhere but in headings, whose underline would otherwise run to
/// the heading's full length (150 `=` for the bundled statement's title).
const TEXT_WIDTH: usize = 72;

fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(markdown, Options::ENABLE_TABLES)
}

/// The HTML part: a complete, self-contained HTML document (UTF-8 meta, `lang` attribute,
/// a little inline CSS suited to a formal letter: serif, max-width ~40em, readable line height).
///
/// `title` is HTML-escaped; `lang` is used only if it looks like a language tag (letters,
/// digits and `-`), and is otherwise left out. A right-to-left language
/// ([`is_right_to_left`]) sets the whole letter right to left.
pub fn to_html_document(markdown: &str, title: &str, lang: Option<&str>) -> String {
    html::document(&to_html_fragment(markdown), title, lang)
}

/// Both parts of a letter from one parse of its Markdown: `(to_text, to_html_document)`.
/// Parsing was a fifth of the time it took to compose a letter, and each part parsed anew.
pub fn to_text_and_html_document(
    markdown: &str,
    title: &str,
    lang: Option<&str>,
) -> (String, String) {
    let events: Vec<Event<'_>> = parser(markdown).collect();
    let mut writer = TextWriter::default();
    for event in events.iter().cloned() {
        writer.event(event);
    }
    let fragment = html::fragment(events.into_iter(), markdown.len());
    (writer.finish(), html::document(&fragment, title, lang))
}

/// Just the rendered fragment (used by the preview index).
pub fn to_html_fragment(markdown: &str) -> String {
    html::fragment(parser(markdown), markdown.len())
}

/// The text/plain part: readable plain text, no Markdown punctuation left over.
///
/// Paragraphs are separated by one blank line, headings are underlined (`=` for level 1,
/// `-` below) and wrapped at 72 columns, links become `text <url>`, lists use `- ` and `1. `
/// indented two spaces per level, block quotes `> `, tables are aligned columns; line breaks,
/// code and raw HTML are kept as written. The result uses `\n`, has no trailing spaces and
/// ends with exactly one `\n`.
pub fn to_text(markdown: &str) -> String {
    let mut writer = TextWriter::default();
    for event in parser(markdown) {
        writer.event(event);
    }
    writer.finish()
}

/// Escape a value so that Markdown renders it as literal text.
///
/// Every ASCII punctuation character is backslash-escaped (CommonMark allows that for all
/// of them), so no cell can open emphasis, a link, raw HTML, an entity, a list or a table
/// cell. Line breaks in the value become hard line breaks with the following indentation
/// dropped, so a multi-line cell keeps its lines but can never start a heading, a code block
/// or a new paragraph. Surrounding whitespace is dropped (it could otherwise make an indented
/// code block or a hard break). Backslash escapes are not processed inside code spans, so a
/// value placed between backticks in a template shows its backslashes.
///
/// A non-empty value is wrapped in FSI … PDI (see the module comment); isolates inside the
/// value itself are dropped, so the markers always pair up.
pub fn escape_literal(value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(value.len() + value.len() / 4 + 6);
    out.push(VALUE_START);
    let mut chars = value.chars().peekable();
    let mut after_break = false;
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\\n");
                after_break = true;
            }
            ' ' | '\t' if after_break => {}
            VALUE_START | VALUE_END => {}
            c => {
                after_break = false;
                if c.is_ascii_punctuation() {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out.push(VALUE_END);
    out
}

/// `text` without the markers of CSV values.
fn without_value_marks(text: &str) -> std::borrow::Cow<'_, str> {
    if find_value_mark(text).is_some() {
        text.replace([VALUE_START, VALUE_END], "").into()
    } else {
        text.into()
    }
}

/// Where the first marker of a CSV value is in `text`. Both are three bytes in UTF-8,
/// E2 81 A8 and E2 81 A9: a byte search for the lead byte and a look at the next two is many
/// times faster than decoding every character, and this runs over every text of every letter.
fn find_value_mark(text: &str) -> Option<usize> {
    const _: () = assert!(VALUE_START.len_utf8() == 3 && VALUE_END.len_utf8() == 3);
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = memchr::memchr(0xE2, &bytes[from..]) {
        let at = from + found;
        if bytes.get(at + 1) == Some(&0x81) && matches!(bytes.get(at + 2), Some(0xA8 | 0xA9)) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::text::RULE_WIDTH;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_parse_gives_both_parts_exactly() {
        let bundled = concat!(
            include_str!("../../templates/letter.fr.hbs"),
            "\n",
            include_str!("../../templates/statement.md"),
            "\n# Heading\n\n1. one\n2. [two](https://x.example)\n\n> quoted `code`\n\n---\n"
        );
        for lang in [None, Some("fr"), Some("bad\"tag")] {
            assert_eq!(
                to_text_and_html_document(bundled, "Sujet <&>", lang),
                (
                    to_text(bundled),
                    to_html_document(bundled, "Sujet <&>", lang)
                )
            );
        }
    }

    /// A letter body with a CSV value put where a template would put it.
    fn letter_with(value: &str) -> String {
        format!(
            "Dear {},\n\nPlease find the statement below.\n",
            escape_literal(value)
        )
    }

    #[test]
    fn paragraphs_are_separated_by_one_blank_line() {
        assert_eq!(
            to_text("First.\n\n\n\nSecond.\n\nThird."),
            "First.\n\nSecond.\n\nThird.\n"
        );
    }

    #[test]
    fn headings_are_underlined_by_level() {
        assert_eq!(
            to_text("# Statement\n\nText.\n\n## Annex\n\n### Note"),
            "Statement\n=========\n\nText.\n\nAnnex\n-----\n\nNote\n----\n"
        );
        // Setext headings too.
        assert_eq!(to_text("Title\n====="), "Title\n=====\n");
    }

    #[test]
    fn heading_underlines_count_characters_not_bytes() {
        for (markdown, heading, rule) in [
            ("# Əliyev ağır gün", "Əliyev ağır gün", '='),
            ("## Заявление Омбудсмена", "Заявление Омбудсмена", '-'),
            ("# بيان المفوض", "بيان المفوض", '='),
        ] {
            let width = heading.chars().count();
            assert!(heading.len() > width, "the test needs multi-byte text");
            let expected = format!("{heading}\n{}\n", rule.to_string().repeat(width));
            assert_eq!(to_text(markdown), expected);
        }
    }

    #[test]
    fn emphasis_markers_are_dropped() {
        assert_eq!(
            to_text("*one* **two** _three_ ***four***"),
            "one two three four\n"
        );
    }

    #[test]
    fn links_show_text_then_url() {
        assert_eq!(
            to_text("See [the United Nations](https://un.example/) now."),
            "See the United Nations <https://un.example/> now.\n"
        );
        // Nothing repeated when the text is the address.
        assert_eq!(
            to_text("[https://un.example](https://un.example)"),
            "https://un.example\n"
        );
        assert_eq!(to_text("<https://un.example>"), "https://un.example\n");
        assert_eq!(
            to_text("<office@ombudsman.example>"),
            "office@ombudsman.example\n"
        );
        // Emphasis inside the link text is dropped too.
        assert_eq!(
            to_text("[**OSCE**](https://osce.example)"),
            "OSCE <https://osce.example>\n"
        );
        assert_eq!(
            to_text("![Seal](seal.png)"),
            "Seal <seal.png>\n",
            "an image shows its description and file"
        );
    }

    #[test]
    fn bullet_and_ordered_lists() {
        assert_eq!(
            to_text("* one\n* two\n+ three"),
            "- one\n- two\n\n- three\n"
        );
        assert_eq!(
            to_text("1. one\n2. two\n3. three"),
            "1. one\n2. two\n3. three\n"
        );
        assert_eq!(to_text("7) seven\n8) eight"), "7. seven\n8. eight\n");
    }

    #[test]
    fn nested_lists_are_indented_by_two_spaces() {
        assert_eq!(
            to_text("- UN\n  - OHCHR\n    - Geneva\n  - UNHCR\n- EU"),
            "- UN\n  - OHCHR\n    - Geneva\n  - UNHCR\n- EU\n"
        );
        assert_eq!(
            to_text("1. Council of Europe\n   - Secretary General\n2. OSCE"),
            "1. Council of Europe\n  - Secretary General\n2. OSCE\n"
        );
    }

    #[test]
    fn loose_lists_keep_their_blank_lines_and_item_paragraphs_are_indented() {
        assert_eq!(
            to_text("- one\n\n- two\n\n  more about two\n- three"),
            "- one\n\n- two\n\n  more about two\n\n- three\n"
        );
    }

    #[test]
    fn lists_are_separated_from_paragraphs() {
        assert_eq!(
            to_text("Addressees:\n\n- UN\n- EU\n\nEnd."),
            "Addressees:\n\n- UN\n- EU\n\nEnd.\n"
        );
    }

    #[test]
    fn block_quotes_are_prefixed() {
        assert_eq!(
            to_text("Before.\n\n> Quoted line\n> continued.\n>\n> Second paragraph.\n\nAfter."),
            "Before.\n\n> Quoted line\n> continued.\n>\n> Second paragraph.\n\nAfter.\n"
        );
        assert_eq!(to_text("> - a\n> - b"), "> - a\n> - b\n");
        assert_eq!(to_text("> outer\n>\n> > inner"), "> outer\n>\n> > inner\n");
        assert_eq!(to_text("- item\n\n  > quoted"), "- item\n\n  > quoted\n");
    }

    #[test]
    fn line_breaks_keep_the_authors_lines() {
        assert_eq!(
            to_text("**Name**\\\nTitle  \nOffice\nCity"),
            "Name\nTitle\nOffice\nCity\n"
        );
    }

    #[test]
    fn code_is_kept_verbatim() {
        assert_eq!(
            to_text("Run `envoi check *now*`."),
            "Run envoi check *now*.\n"
        );
        assert_eq!(
            to_text("Text.\n\n```\nfn main() {\n    let x = *y;\n}\n```\n\nMore."),
            "Text.\n\nfn main() {\n    let x = *y;\n}\n\nMore.\n"
        );
        assert_eq!(to_text("    indented **code**"), "indented **code**\n");
        assert_eq!(to_text("> ```\n> a\n>\n> b\n> ```"), "> a\n>\n> b\n");
    }

    #[test]
    fn horizontal_rule_is_a_line_of_dashes() {
        let dashes = "-".repeat(RULE_WIDTH);
        assert_eq!(
            to_text("Above.\n\n* * *\n\nBelow."),
            format!("Above.\n\n{dashes}\n\nBelow.\n")
        );
    }

    #[test]
    fn html_is_kept_literally() {
        assert_eq!(to_text("a <b>bold</b> c"), "a <b>bold</b> c\n");
        assert_eq!(
            to_text("Text.\n\n<div class=\"x\">\ninside\n</div>\n\nAfter."),
            "Text.\n\n<div class=\"x\">\ninside\n</div>\n\nAfter.\n"
        );
    }

    #[test]
    fn escaped_characters_appear_literally() {
        assert_eq!(
            to_text("\\*not emphasis\\* \\[not a link\\] \\# 1\\. \\<b\\>"),
            "*not emphasis* [not a link] # 1. <b>\n"
        );
        assert_eq!(to_text("AT&amp;T &lt;3"), "AT&T <3\n");
    }

    #[test]
    fn text_ends_with_one_newline_without_trailing_spaces_or_cr() {
        let text =
            to_text("# Title  \r\n\r\nLine one   \r\nline two\t\r\n\r\n> quote\r\n>\r\n\r\n\r\n");
        assert_eq!(text, "Title\n=====\n\nLine one\nline two\n\n> quote\n");
        for sample in ["", "x", "x\n\n\n", "- a\n\n  ```\n  b   \n  ```\n"] {
            let text = to_text(sample);
            assert!(
                text.ends_with('\n') && !text.ends_with("\n\n"),
                "{sample:?} → {text:?}"
            );
            assert!(!text.contains('\r'));
            assert!(text.lines().all(|l| l == l.trim_end()), "{text:?}");
        }
    }

    #[test]
    fn fragment_is_commonmark_html_with_each_block_in_its_own_direction() {
        assert_eq!(
            to_html_fragment("# Title\n\nHello *world*, [UN](https://un.example).\n\n- a\n- b"),
            "<h1 dir=\"auto\">Title</h1>\n<p dir=\"auto\">Hello <em>world</em>, <a href=\"https://un.example\">UN</a>.</p>\n<ul>\n<li dir=\"auto\">a</li>\n<li dir=\"auto\">b</li>\n</ul>\n"
        );
    }

    #[test]
    fn html_document_shape() {
        let doc = to_html_document("# Déclaration\n\nTexte.", "Objet : A & B <C>", Some("fr"));
        assert!(
            doc.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n"),
            "{doc}"
        );
        assert!(doc.contains("<meta charset=\"utf-8\">"));
        assert!(doc.contains("<title>Objet : A &amp; B &lt;C&gt;</title>"));
        assert!(doc.contains("serif") && doc.contains("max-width: 40em"));
        assert!(doc.contains("line-height: 1.5"));
        let body_start = doc.find("<body>").expect("a body");
        let fragment = to_html_fragment("# Déclaration\n\nTexte.");
        let at = doc
            .find(&fragment)
            .expect("the fragment inside the document");
        assert!(at > body_start);
        assert!(doc.ends_with("</div>\n</body>\n</html>\n"));
        assert_eq!(doc.matches("<html").count(), 1);
    }

    #[test]
    fn html_document_lang_is_validated() {
        for lang in [
            None,
            Some(""),
            Some("en\" onload=\"alert(1)"),
            Some("fr fr"),
            Some("ə"),
        ] {
            let doc = to_html_document("x", "t", lang);
            assert!(doc.contains("\n<html>\n"), "{lang:?}: {doc}");
            assert!(!doc.contains("onload"));
        }
        let doc = to_html_document("x", "t", Some("az-Latn"));
        assert!(doc.contains("<html lang=\"az-Latn\">"));
    }

    #[test]
    fn escaped_script_is_text_in_both_parts() {
        let body = letter_with("<script>alert('x')</script>");
        let html = to_html_fragment(&body);
        assert!(
            html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script"));
        let text = to_text(&body);
        assert!(
            text.starts_with("Dear <script>alert('x')</script>,\n"),
            "{text}"
        );
    }

    #[test]
    fn escaped_link_and_emphasis_stay_literal() {
        let value = "[click](javascript:alert(1)) **bold** _it_ `code` <https://x.example> &amp;";
        let body = letter_with(value);
        let html = to_html_fragment(&body);
        for tag in ["<a", "<strong", "<em", "<code"] {
            assert!(!html.contains(tag), "{tag} in {html}");
        }
        assert!(html.contains("&amp;amp;"), "an entity stays text: {html}");
        assert_eq!(
            to_text(&body).lines().next(),
            Some(format!("Dear {value},").as_str())
        );
    }

    #[test]
    fn escaped_newlines_cannot_start_blocks() {
        let value = "Office\n# Heading\n\n    code\n- item\n1. item\n> quote\n---\n===";
        let body = letter_with(value);
        let html = to_html_fragment(&body);
        for tag in ["<h1", "<h2", "<pre", "<ul", "<ol", "<blockquote", "<hr"] {
            assert!(!html.contains(tag), "{tag} in {html}");
        }
        assert!(
            html.starts_with(
                "<p dir=\"auto\">Dear <span dir=\"auto\">Office<br />\n# Heading<br />\n<br />\ncode<br />"
            ),
            "{html}"
        );
        let text = to_text(&body);
        assert!(
            text.starts_with(
                "Dear Office\n# Heading\n\ncode\n- item\n1. item\n> quote\n---\n===,\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn escape_literal_handles_line_endings_and_surrounding_space() {
        let isolated = |s: &str| format!("\u{2068}{s}\u{2069}");
        assert_eq!(escape_literal("  a\r\nb\rc\n  "), isolated("a\\\nb\\\nc"));
        assert_eq!(escape_literal("O'Reilly"), isolated("O\\'Reilly"));
        assert_eq!(
            escape_literal("Pejčinović Burić"),
            isolated("Pejčinović Burić")
        );
        assert_eq!(escape_literal("a\\b"), isolated("a\\\\b"));
        // An empty cell adds nothing, and isolates typed in a cell cannot unbalance the span.
        assert_eq!(escape_literal("  "), "");
        assert_eq!(escape_literal("\u{2069}x\u{2068}"), isolated("x"));
    }

    const FIGURES: &str = "\
| Victims  | Number |  Note  |
|:---------|-------:|:------:|
| Killed   |    150 | Baku   |
| Injured  |    744 |        |
| Detained |    841 | عربي   |
";

    #[test]
    fn a_table_is_aligned_text_in_the_text_part() {
        assert_eq!(
            to_text(&format!("Figures:\n\n{FIGURES}\nEnd.")),
            "Figures:\n\n\
             Victims   Number  Note\n\
             --------  ------  ----\n\
             Killed       150  Baku\n\
             Injured      744\n\
             Detained     841  عربي\n\
             \nEnd.\n"
        );
        // Widths are display columns: a wide character takes two.
        assert_eq!(
            to_text("| a | b |\n|---|---|\n| 文字 | x |\n| y | z |"),
            "a     b\n----  -\n文字  x\ny     z\n"
        );
        // Inside a quote every line carries the prefix.
        assert_eq!(
            to_text("> | a | b |\n> |---|---|\n> | 1 | 2 |"),
            "> a  b\n> -  -\n> 1  2\n"
        );
    }

    #[test]
    fn a_table_is_an_html_table() {
        let html = to_html_fragment(FIGURES);
        assert!(
            html.starts_with("<table><thead><tr><th style=\"text-align: left\">Victims</th>"),
            "{html}"
        );
        assert!(
            html.contains("<td style=\"text-align: right\">150</td>"),
            "{html}"
        );
        // A value with a | stays in its cell.
        let row = format!("| a | b |\n|---|---|\n| {} | x |", escape_literal("1 | 2"));
        assert!(
            to_html_fragment(&row).contains("<td><span dir=\"auto\">1 | 2</span></td><td>x</td>")
        );
    }

    #[test]
    fn long_headings_wrap_and_the_underline_fits_the_longest_line() {
        let heading = "word ".repeat(28);
        let text = to_text(&format!("# {heading}\n\nText."));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].len(), 69, "{text}");
        assert_eq!(lines[2], "=".repeat(69));
        assert!(
            lines[1].len() <= 72 && lines[2].chars().all(|c| c == '='),
            "{text}"
        );
        assert_eq!(lines[3], "");
        // Underlines measure display columns and ignore the markers of CSV values.
        let value = escape_literal("文字");
        assert_eq!(to_text(&format!("## {value}")), "文字\n----\n");
    }

    #[test]
    fn a_right_to_left_letter_says_so_on_html_and_on_the_letter() {
        let doc = to_html_document("نص.", "موضوع", Some("ar"));
        assert!(doc.contains("<html lang=\"ar\" dir=\"rtl\">"), "{doc}");
        assert!(
            doc.contains("<div class=\"letter\" dir=\"rtl\" style=\""),
            "{doc}"
        );
        assert!(doc.contains("text-align: right;"), "{doc}");
        assert!(!doc.contains("text-align: left"), "{doc}");
        let doc = to_html_document("Text.", "Subject", Some("fr"));
        assert!(
            doc.contains("<html lang=\"fr\">") && doc.contains("<div class=\"letter\" style="),
            "{doc}"
        );
        assert!(doc.contains("text-align: left;"), "{doc}");
    }

    #[test]
    fn value_marks_are_found_among_other_three_byte_characters() {
        assert_eq!(find_value_mark("plain"), None);
        // U+2014, U+201C and U+2067 share the lead byte E2 (and U+2067 the second byte too).
        assert_eq!(find_value_mark("a\u{2014}\u{201C}\u{2067}b"), None);
        assert_eq!(find_value_mark("\u{2014}\u{2068}x"), Some(3));
        assert_eq!(find_value_mark("x\u{2069}"), Some(1));
        assert_eq!(find_value_mark("\u{2014}"), None);
    }

    #[test]
    fn values_get_their_own_direction_where_markup_can_hold_it() {
        let name = escape_literal("حسين إبراهيم طه");
        let slug = escape_literal("oic-ar");
        let html = to_html_fragment(&format!(
            "Dear {name},\n\n[{name}](https://x.example/{slug}) `{name}` ![{name}](a.png)"
        ));
        assert!(
            html.starts_with("<p dir=\"auto\">Dear <span dir=\"auto\">حسين إبراهيم طه</span>,</p>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://x.example/oic-ar\"><span dir=\"auto\">"),
            "{html}"
        );
        assert!(html.contains("<code>حسين إبراهيم طه</code>"), "{html}");
        assert!(html.contains("alt=\"حسين إبراهيم طه\""), "{html}");
        assert!(!html.contains(['\u{2068}', '\u{2069}']), "{html}");
        assert!(!to_text(&format!("# {name}\n\n{name}")).contains(['\u{2068}', '\u{2069}']));
    }

    proptest! {
        #[test]
        fn any_one_line_value_renders_as_itself(value in "[!-~ əöüçşğıÜЖ文]{0,40}") {
            let value = value.trim();
            prop_assume!(!value.is_empty());
            let escaped = escape_literal(value);
            prop_assert_eq!(to_text(&escaped), format!("{value}\n"));
            let html = to_html_fragment(&escaped);
            let inner = html
                .strip_prefix("<p dir=\"auto\"><span dir=\"auto\">")
                .and_then(|h| h.strip_suffix("</span></p>\n"))
                .expect("a single paragraph");
            let unescaped = inner
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&");
            prop_assert_eq!(unescaped, value);
        }
    }

    /// The bundled statement, as the text part shows it: every paragraph of the statement
    /// of 19 January 2024 is there, whole, with the signature block and date.
    #[test]
    fn bundled_statement_renders_every_paragraph() {
        let source = include_str!("../../templates/statement.md");
        assert!(
            !source.contains("{{"),
            "the statement is a Handlebars partial"
        );
        let text = to_text(source);
        // Wrapped at 72 columns, so that its underline is not 150 `=` long.
        let title = "Statement by the Commissioner for Human Rights (Ombudsman) of the\n\
                     Republic of Azerbaijan regarding the 34th anniversary of the January 20,\n\
                     1990 Tragedy";
        let underline = "=".repeat(title.lines().map(|l| l.chars().count()).max().unwrap());
        assert!(underline.len() <= 72);
        assert!(
            text.starts_with(&format!("{title}\n{underline}\n\n")),
            "{text}"
        );
        let paragraphs: Vec<&str> = text.split("\n\n").collect();
        // Opening words and closing words of each paragraph of the statement, in order.
        let expected = [
            (
                "34 years have passed since the events of January 20",
                "glorious history of Azerbaijan.",
            ),
            (
                "On the night from January 19 to 20, 1990, Soviet forces",
                "committed brutal massacres against the people.",
            ),
            (
                "As a result of this act of terror",
                "another 841 were unlawfully detained.",
            ),
            (
                "The Great Leader Heydar Aliyev, as always",
                "20th January was declared a National Day of Mourning.",
            ),
            (
                "As a result of this military aggression",
                "other international legal documents were severely violated.",
            ),
            (
                "Despite numerous calls to international organizations",
                "have not been brought to justice.",
            ),
            (
                "As the Commissioner for Human Rights of the Republic of Azerbaijan, I call on",
                "to hold the accused accountable before the court of justice.",
            ),
            (
                "Sabina Aliyeva\nThe Commissioner for Human Rights of the Republic of Azerbaijan (Ombudsman)",
                "(Ombudsman)",
            ),
            ("19 January 2024", "19 January 2024"),
            (
                "The statement has been issued to the UN Secretary-General (UNSG)",
                "and diaspora organizations of Azerbaijan.\n",
            ),
        ];
        assert_eq!(paragraphs.len(), expected.len() + 1, "{paragraphs:#?}");
        for (paragraph, (start, end)) in paragraphs[1..].iter().zip(expected) {
            assert!(
                paragraph.starts_with(start) && paragraph.ends_with(end),
                "{paragraph:?}"
            );
        }
        assert!(
            text.contains("UN International Children's Emergency Fund (UNICEF), UN Educational"),
            "the line break inside UNICEF's name is repaired"
        );
        assert!(!text.contains('*') && !text.contains('\\'));
    }
}
