//! Markdown → the two bodies of every letter: an HTML document and readable plain text.
//!
//! The letter body is Markdown written by the office; values from recipients.csv reach it
//! through [`escape_literal`], so that a cell can never turn into markup, a link or a heading.
//! Only CommonMark is enabled (no tables, footnotes or smart punctuation): what the author
//! writes is what both parts show.

use pulldown_cmark::{Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd, html};

/// Typography for a formal letter. Clients that drop `<style>` still get the inline style of
/// the letter's `<div>`, which carries the essentials.
const LETTER_CSS: &str = "\
body { margin: 0; padding: 0; background: #ffffff; }
.letter h1, .letter h2, .letter h3 { line-height: 1.3; margin: 1.5em 0 0.75em; }
.letter h1 { font-size: 1.3em; }
.letter h2 { font-size: 1.15em; }
.letter h3, .letter h4, .letter h5, .letter h6 { font-size: 1em; }
.letter p { margin: 0 0 1em; }
.letter blockquote { margin: 0 0 1em; padding-left: 1em; border-left: 3px solid #c8c8c8; }
.letter pre, .letter code { font-family: Consolas, \"Courier New\", monospace; font-size: 0.9em; }
.letter pre { white-space: pre-wrap; }
.letter hr { border: 0; border-top: 1px solid #c8c8c8; margin: 2em 0; }
.letter a { color: #1f4e8c; }
";

/// The essentials, inline on the letter's container.
const LETTER_STYLE: &str = "font-family: Georgia, 'Times New Roman', Times, serif; \
font-size: 12pt; line-height: 1.5; color: #1a1a1a; max-width: 40em; margin: 0 auto; \
padding: 2em 1em; text-align: left;";

/// The length of the line that stands for a horizontal rule in the text part.
const RULE_WIDTH: usize = 24;

fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(markdown, Options::empty())
}

/// The HTML part: a complete, self-contained HTML document (UTF-8 meta, `lang` attribute,
/// a little inline CSS suited to a formal letter: serif, max-width ~40em, readable line height).
///
/// `title` is HTML-escaped; `lang` is used only if it looks like a language tag (letters,
/// digits and `-`), and is otherwise left out.
pub fn to_html_document(markdown: &str, title: &str, lang: Option<&str>) -> String {
    html_document(&to_html_fragment(markdown), title, lang)
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
    let mut fragment = String::with_capacity(markdown.len() + markdown.len() / 2);
    html::push_html(&mut fragment, events.into_iter());
    (writer.finish(), html_document(&fragment, title, lang))
}

/// The document around a rendered fragment.
fn html_document(fragment: &str, title: &str, lang: Option<&str>) -> String {
    let lang_attr = match lang {
        Some(lang) if is_language_tag(lang) => format!(" lang=\"{}\"", escape_html(lang)),
        _ => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n\
         <html{lang_attr}>\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         <style>\n{LETTER_CSS}</style>\n\
         </head>\n\
         <body>\n\
         <div class=\"letter\" style=\"{LETTER_STYLE}\">\n\
         {fragment}\
         </div>\n\
         </body>\n\
         </html>\n",
        title = escape_html(title),
    )
}

/// Just the rendered fragment (used by the preview index).
pub fn to_html_fragment(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() + markdown.len() / 2);
    html::push_html(&mut out, parser(markdown));
    out
}

/// The text/plain part: readable plain text, no Markdown punctuation left over.
///
/// Paragraphs are separated by one blank line, headings are underlined (`=` for level 1,
/// `-` below), links become `text <url>`, lists use `- ` and `1. ` indented two spaces per
/// level, block quotes `> `; line breaks, code and raw HTML are kept as written. The result
/// uses `\n`, has no trailing spaces and ends with exactly one `\n`.
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
/// of them), so no cell can open emphasis, a link, raw HTML, an entity or a list. Line breaks
/// in the value become hard line breaks with the following indentation dropped, so a
/// multi-line cell keeps its lines but can never start a heading, a code block or a new
/// paragraph. Surrounding whitespace is dropped (it could otherwise make an indented code
/// block or a hard break). Backslash escapes are not processed inside code spans, so a value
/// placed between backticks in a template shows its backslashes.
pub fn escape_literal(value: &str) -> String {
    let value = value.trim();
    let mut out = String::with_capacity(value.len() + value.len() / 4);
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
            c => {
                after_break = false;
                if c.is_ascii_punctuation() {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out
}

/// Whether `lang` is safe and plausible as an HTML `lang` value (`en`, `fr`, `az-Latn`).
fn is_language_tag(lang: &str) -> bool {
    !lang.is_empty()
        && lang.len() <= 35
        && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
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

/// What separates the next piece of content from what is already written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Sep {
    /// Continue on the current line.
    #[default]
    None,
    /// Start a new line.
    Newline,
    /// Leave one blank line.
    Blank,
}

/// A block that prefixes each of its lines: a block quote (`> `) or a list item (its marker on
/// the first line, two spaces on the others).
#[derive(Debug)]
struct Container {
    kind: ContainerKind,
    /// The marker for the first line, until it is written.
    marker: Option<String>,
    /// Whether a line of this container has been written (blank separator lines only carry
    /// the prefixes of containers that have started).
    started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerKind {
    Quote,
    Item,
}

impl ContainerKind {
    /// The prefix of a line that does not carry the container's marker.
    fn indent(self) -> &'static str {
        match self {
            ContainerKind::Quote => "> ",
            ContainerKind::Item => "  ",
        }
    }
}

#[derive(Debug)]
struct ListState {
    /// The next number of an ordered list.
    next: Option<u64>,
    /// A loose list (its items hold paragraphs) separates items by a blank line.
    loose: bool,
    /// Whether an item of this list has begun (the first one is separated by the list itself).
    has_items: bool,
}

/// A link or image being written: where its text starts, and where it points.
#[derive(Debug)]
struct OpenLink {
    start: usize,
    url: String,
    link_type: LinkType,
}

/// Renders the event stream as plain text. Separation between blocks is requested when a
/// block starts or ends and written lazily before the next content, so that empty
/// separators never pile up and a container's first block sits right after its marker.
#[derive(Debug)]
struct TextWriter {
    out: String,
    containers: Vec<Container>,
    lists: Vec<ListState>,
    links: Vec<OpenLink>,
    /// Heading level and where its text starts.
    heading: Option<(HeadingLevel, usize)>,
    pending: Sep,
    /// At the start of a line whose prefixes are not written yet.
    line_start: bool,
    /// A container has just opened and holds nothing yet: its first block needs no separation.
    fresh: bool,
}

impl Default for TextWriter {
    fn default() -> Self {
        TextWriter {
            out: String::new(),
            containers: Vec::new(),
            lists: Vec::new(),
            links: Vec::new(),
            heading: None,
            pending: Sep::None,
            line_start: true,
            fresh: false,
        }
    }
}

impl TextWriter {
    /// Whether the innermost container is a list item (its blocks are the item's own).
    fn in_item(&self) -> bool {
        self.containers
            .last()
            .is_some_and(|c| c.kind == ContainerKind::Item)
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text)
            | Event::Code(text)
            | Event::Html(text)
            | Event::InlineHtml(text)
            | Event::InlineMath(text)
            | Event::DisplayMath(text) => self.write_text(&text),
            Event::SoftBreak | Event::HardBreak => self.line_break(),
            Event::Rule => {
                self.request(Sep::Blank);
                self.begin_content();
                self.out.push_str(&"-".repeat(RULE_WIDTH));
                self.request(Sep::Newline);
            }
            Event::FootnoteReference(label) => self.write_text(&format!("[{label}]")),
            Event::TaskListMarker(done) => self.write_text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => {
                // A paragraph directly inside an item makes its list loose.
                if self.in_item()
                    && let Some(list) = self.lists.last_mut()
                {
                    list.loose = true;
                }
                self.request(Sep::Blank);
            }
            Tag::Heading { level, .. } => {
                self.request(Sep::Blank);
                self.begin_content();
                self.heading = Some((level, self.out.len()));
            }
            Tag::BlockQuote(_) => {
                self.request(Sep::Blank);
                self.open_container(ContainerKind::Quote, None);
            }
            Tag::CodeBlock(_) | Tag::HtmlBlock => self.request(Sep::Blank),
            Tag::List(start) => {
                // A list inside a tight item follows its text on the next line.
                let in_tight_item = self.in_item() && self.lists.last().is_some_and(|l| !l.loose);
                self.request(if in_tight_item {
                    Sep::Newline
                } else {
                    Sep::Blank
                });
                self.lists.push(ListState {
                    next: start,
                    loose: false,
                    has_items: false,
                });
            }
            Tag::Item => {
                let (marker, sep) = match self.lists.last_mut() {
                    Some(list) => {
                        let marker = match list.next.as_mut() {
                            Some(n) => {
                                let marker = format!("{n}. ");
                                *n += 1;
                                marker
                            }
                            None => "- ".to_string(),
                        };
                        let sep = match (list.has_items, list.loose) {
                            (false, _) => Sep::None,
                            (true, false) => Sep::Newline,
                            (true, true) => Sep::Blank,
                        };
                        list.has_items = true;
                        (marker, sep)
                    }
                    None => ("- ".to_string(), Sep::Newline),
                };
                self.request(sep);
                self.open_container(ContainerKind::Item, Some(marker));
            }
            Tag::Link {
                link_type,
                dest_url,
                ..
            }
            | Tag::Image {
                link_type,
                dest_url,
                ..
            } => {
                self.begin_content();
                self.links.push(OpenLink {
                    start: self.out.len(),
                    url: dest_url.into_string(),
                    link_type,
                });
            }
            // Emphasis and the extensions left disabled carry no text of their own.
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::CodeBlock | TagEnd::HtmlBlock => self.request(Sep::Newline),
            TagEnd::Heading(_) => {
                if let Some((level, start)) = self.heading.take() {
                    self.underline(level, start);
                }
                self.request(Sep::Newline);
            }
            TagEnd::BlockQuote(_) | TagEnd::Item => {
                // An empty item still shows its marker.
                if self.containers.last().is_some_and(|c| c.marker.is_some()) {
                    self.begin_content();
                }
                self.containers.pop();
                self.fresh = false;
                self.request(Sep::Newline);
            }
            TagEnd::List(_) => {
                self.lists.pop();
                self.request(Sep::Newline);
            }
            TagEnd::Link | TagEnd::Image => {
                if let Some(link) = self.links.pop() {
                    self.finish_link(link);
                }
            }
            _ => {}
        }
    }

    /// `text <url>`, or just one of them when the other adds nothing.
    fn finish_link(&mut self, link: OpenLink) {
        let text = &self.out[link.start..];
        let url = link.url.as_str();
        let redundant = matches!(link.link_type, LinkType::Autolink | LinkType::Email)
            || text == url
            || url.is_empty();
        if text.is_empty() {
            self.out.push_str(url);
        } else if !redundant {
            self.out.push_str(" <");
            self.out.push_str(url);
            self.out.push('>');
        }
    }

    /// A line of `=` (level 1) or `-` as long as the heading's longest line, in characters.
    fn underline(&mut self, level: HeadingLevel, start: usize) {
        let width = self.out[start..]
            .lines()
            .map(|line| line.chars().count())
            .max()
            .unwrap_or(0);
        if width == 0 {
            return;
        }
        let rule = if level == HeadingLevel::H1 { '=' } else { '-' };
        self.line_break();
        self.begin_content();
        self.out.extend(std::iter::repeat_n(rule, width));
    }

    fn open_container(&mut self, kind: ContainerKind, marker: Option<String>) {
        self.containers.push(Container {
            kind,
            marker,
            started: false,
        });
        self.fresh = true;
    }

    /// Asks for at least `sep` before the next content, unless a container has just opened.
    fn request(&mut self, sep: Sep) {
        if !self.fresh {
            self.pending = self.pending.max(sep);
        }
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.line_start = true;
    }

    /// Writes any pending separation and the current line's prefixes.
    fn begin_content(&mut self) {
        let sep = std::mem::take(&mut self.pending);
        if !self.out.is_empty() && sep != Sep::None {
            if !self.line_start {
                self.line_break();
            }
            if sep == Sep::Blank {
                for container in self.containers.iter().filter(|c| c.started) {
                    self.out.push_str(container.kind.indent());
                }
                self.line_break();
            }
        }
        if self.line_start {
            for container in &mut self.containers {
                match container.marker.take() {
                    Some(marker) => self.out.push_str(&marker),
                    None => self.out.push_str(container.kind.indent()),
                }
                container.started = true;
            }
            self.line_start = false;
        }
        self.fresh = false;
    }

    /// Writes text that may span lines (code and HTML blocks), prefixing every line.
    fn write_text(&mut self, text: &str) {
        let mut lines = text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let last = lines.peek().is_none();
            if last && line.is_empty() {
                break;
            }
            self.begin_content();
            self.out.push_str(line);
            if !last {
                self.line_break();
            }
        }
    }

    /// Trailing spaces removed from every line, exactly one final newline.
    fn finish(self) -> String {
        let mut text = String::with_capacity(self.out.len() + 1);
        for line in self.out.lines() {
            text.push_str(line.trim_end_matches([' ', '\t']));
            text.push('\n');
        }
        let trimmed_len = text.trim_end_matches('\n').len();
        text.truncate(trimmed_len);
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_parse_gives_both_parts_exactly() {
        let bundled = concat!(
            include_str!("../templates/letter.fr.hbs"),
            "\n",
            include_str!("../templates/statement.md"),
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
    fn fragment_is_commonmark_html() {
        assert_eq!(
            to_html_fragment("# Title\n\nHello *world*, [UN](https://un.example)."),
            "<h1>Title</h1>\n<p>Hello <em>world</em>, <a href=\"https://un.example\">UN</a>.</p>\n"
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
        assert!(html.starts_with("<p>Dear Office<br />\n# Heading<br />\n<br />\ncode<br />"));
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
        assert_eq!(escape_literal("  a\r\nb\rc\n  "), "a\\\nb\\\nc");
        assert_eq!(escape_literal("O'Reilly"), "O\\'Reilly");
        assert_eq!(escape_literal("Pejčinović Burić"), "Pejčinović Burić");
        assert_eq!(escape_literal("a\\b"), "a\\\\b");
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
                .strip_prefix("<p>")
                .and_then(|h| h.strip_suffix("</p>\n"))
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
        let source = include_str!("../templates/statement.md");
        assert!(
            !source.contains("{{"),
            "the statement is a Handlebars partial"
        );
        let text = to_text(source);
        let title = "Statement by the Commissioner for Human Rights (Ombudsman) of the \
                     Republic of Azerbaijan regarding the 34th anniversary of the January 20, \
                     1990 Tragedy";
        let underline = "=".repeat(title.chars().count());
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
