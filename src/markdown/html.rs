//! The HTML part: the rendered fragment inside a complete document, set in the letter's
//! direction, with each value from recipients.csv in a `<span dir="auto">`.

use pulldown_cmark::{CowStr, Event, Tag, TagEnd, html};

use super::{VALUE_END, VALUE_START, escape_html, is_right_to_left};
use crate::locale::is_language_tag;

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
.letter[dir=\"rtl\"] blockquote { padding-left: 0; border-left: 0; padding-right: 1em; border-right: 3px solid #c8c8c8; }
.letter pre, .letter code { font-family: Consolas, \"Courier New\", monospace; font-size: 0.9em; }
.letter pre { white-space: pre-wrap; }
.letter hr { border: 0; border-top: 1px solid #c8c8c8; margin: 2em 0; }
.letter a { color: #1f4e8c; }
.letter table { border-collapse: collapse; margin: 0 0 1em; }
.letter th, .letter td { border: 1px solid #c8c8c8; padding: 0.2em 0.6em; vertical-align: top; }
.letter th { background: #f3f3f3; }
.letter p, .letter h1, .letter h2, .letter h3, .letter h4, .letter h5, .letter h6, .letter li { text-align: start; }
";

/// The essentials, inline on the letter's container; `text-align` follows the direction
/// (written out, since some mail clients ignore `start`).
const LETTER_STYLE: &str = "font-family: Georgia, 'Times New Roman', Times, serif; \
font-size: 12pt; line-height: 1.5; color: #1a1a1a; max-width: 40em; margin: 0 auto; \
padding: 2em 1em;";

/// The document around a rendered fragment. A right-to-left language puts `dir="rtl"` on
/// `<html>` and on the letter's `<div>` (webmail keeps only the body, so both).
pub(super) fn document(fragment: &str, title: &str, lang: Option<&str>) -> String {
    let lang = lang.filter(|l| is_language_tag(l));
    let lang_attr = match lang {
        Some(lang) => format!(" lang=\"{}\"", escape_html(lang)),
        None => String::new(),
    };
    let (dir_attr, align) = match lang {
        Some(lang) if is_right_to_left(lang) => (" dir=\"rtl\"", "right"),
        _ => ("", "left"),
    };
    format!(
        "<!DOCTYPE html>\n\
         <html{lang_attr}{dir_attr}>\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         <style>\n{LETTER_CSS}</style>\n\
         </head>\n\
         <body>\n\
         <div class=\"letter\"{dir_attr} style=\"{LETTER_STYLE} text-align: {align};\">\n\
         {fragment}\
         </div>\n\
         </body>\n\
         </html>\n",
        title = escape_html(title),
    )
}

/// Renders the events as HTML, each value from recipients.csv isolated in a
/// `<span dir="auto">`.
pub(super) fn fragment<'a>(events: impl Iterator<Item = Event<'a>>, size_hint: usize) -> String {
    let mut out = String::with_capacity(size_hint + size_hint / 2);
    html::push_html(&mut out, isolate_values(events));
    out
}

const SPAN_OPEN: &str = "<span dir=\"auto\">";
const SPAN_CLOSE: &str = "</span>";

/// Turns the FSI … PDI around each value into a span. Where markup cannot hold one (code,
/// raw HTML, an image's alt text, a link's address) the markers are simply dropped; a span
/// left open at the end of a block is closed there, so the markup always nests.
///
/// Paragraphs, headings and list items get `dir="auto"` too: each takes the direction of its
/// first letter, so the English statement inside an Arabic cover letter reads left to right
/// while the letter around it reads right to left.
fn isolate_values<'a>(events: impl Iterator<Item = Event<'a>>) -> impl Iterator<Item = Event<'a>> {
    let mut open = 0usize;
    let mut in_image = 0usize;
    events.flat_map(move |event| {
        let mut out = Vec::with_capacity(1);
        match event {
            Event::Text(text) if in_image == 0 && text.contains([VALUE_START, VALUE_END]) => {
                let mut rest: &str = &text;
                while let Some(at) = rest.find([VALUE_START, VALUE_END]) {
                    if at > 0 {
                        out.push(Event::Text(CowStr::from(rest[..at].to_owned())));
                    }
                    if rest[at..].starts_with(VALUE_START) {
                        out.push(Event::InlineHtml(SPAN_OPEN.into()));
                        open += 1;
                    } else if open > 0 {
                        out.push(Event::InlineHtml(SPAN_CLOSE.into()));
                        open -= 1;
                    }
                    rest = &rest[at + VALUE_START.len_utf8()..];
                }
                if !rest.is_empty() {
                    out.push(Event::Text(CowStr::from(rest.to_owned())));
                }
            }
            Event::Text(text) => out.push(Event::Text(unmarked(text))),
            Event::Code(text) => out.push(Event::Code(unmarked(text))),
            Event::Html(text) => out.push(Event::Html(unmarked(text))),
            Event::InlineHtml(text) => out.push(Event::InlineHtml(unmarked(text))),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => out.push(Event::Start(Tag::Link {
                link_type,
                dest_url: unmarked(dest_url),
                title: unmarked(title),
                id,
            })),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                in_image += 1;
                out.push(Event::Start(Tag::Image {
                    link_type,
                    dest_url: unmarked(dest_url),
                    title: unmarked(title),
                    id,
                }));
            }
            Event::End(TagEnd::Image) => {
                in_image = in_image.saturating_sub(1);
                out.push(Event::End(TagEnd::Image));
            }
            Event::Start(Tag::Paragraph) => out.push(Event::Html("<p dir=\"auto\">".into())),
            Event::Start(Tag::Heading { level, .. }) => {
                out.push(Event::Html(format!("<{level} dir=\"auto\">").into()));
            }
            Event::Start(Tag::Item) => out.push(Event::Html("<li dir=\"auto\">".into())),
            Event::End(end) if is_block(end) => {
                out.extend(std::iter::repeat_n(
                    Event::InlineHtml(SPAN_CLOSE.into()),
                    open,
                ));
                open = 0;
                out.push(match end {
                    TagEnd::Paragraph => Event::Html("</p>\n".into()),
                    TagEnd::Heading(level) => Event::Html(format!("</{level}>\n").into()),
                    TagEnd::Item => Event::Html("</li>\n".into()),
                    other => Event::End(other),
                });
            }
            other => out.push(other),
        }
        out
    })
}

fn unmarked(text: CowStr<'_>) -> CowStr<'_> {
    if text.contains([VALUE_START, VALUE_END]) {
        CowStr::from(text.replace([VALUE_START, VALUE_END], ""))
    } else {
        text
    }
}

/// Ends of blocks that an inline span may not cross.
fn is_block(end: TagEnd) -> bool {
    matches!(
        end,
        TagEnd::Paragraph
            | TagEnd::Heading(_)
            | TagEnd::TableCell
            | TagEnd::Item
            | TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::HtmlBlock
    )
}
