//! The HTML part: the rendered fragment inside a complete document, set in the letter's
//! direction, with each value from recipients.csv in a `<span dir="auto">`.

use pulldown_cmark::{CowStr, Event, Tag, TagEnd, html};

use super::{VALUE_END, VALUE_START, escape_html, find_value_mark, is_right_to_left};
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
    Isolate {
        events,
        open: 0,
        in_image: 0,
        closes: 0,
        after: None,
        marked: None,
    }
}

/// The state of [`isolate_values`]. Most events map to one event; the few that become several
/// (a marked text, the end of a block with spans open) are handed out from `marked` and
/// `closes`/`after` on the following calls, so nothing is allocated per event (a `Vec` per
/// event doubled the Markdown stage).
struct Isolate<'a, I> {
    events: I,
    /// Spans opened in the current block and not closed yet.
    open: usize,
    in_image: usize,
    /// `</span>`s owed before `after`, the end of a block.
    closes: usize,
    after: Option<Event<'a>>,
    /// The part of a marked text not handed out yet.
    marked: Option<CowStr<'a>>,
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for Isolate<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        loop {
            if self.closes > 0 {
                self.closes -= 1;
                return Some(Event::InlineHtml(SPAN_CLOSE.into()));
            }
            if let Some(end) = self.after.take() {
                return Some(end);
            }
            if let Some(rest) = self.marked.take() {
                match self.cut(rest) {
                    Some(event) => return Some(event),
                    None => continue,
                }
            }
            let event = self.events.next()?;
            return Some(match event {
                Event::Text(text) if self.in_image == 0 => match find_value_mark(&text) {
                    None => Event::Text(text),
                    Some(_) => match self.cut(text) {
                        Some(event) => event,
                        None => continue,
                    },
                },
                Event::Text(text) => Event::Text(unmarked(text)),
                Event::Code(text) => Event::Code(unmarked(text)),
                Event::Html(text) => Event::Html(unmarked(text)),
                Event::InlineHtml(text) => Event::InlineHtml(unmarked(text)),
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Link {
                    link_type,
                    dest_url: unmarked(dest_url),
                    title: unmarked(title),
                    id,
                }),
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => {
                    self.in_image += 1;
                    Event::Start(Tag::Image {
                        link_type,
                        dest_url: unmarked(dest_url),
                        title: unmarked(title),
                        id,
                    })
                }
                Event::End(TagEnd::Image) => {
                    self.in_image = self.in_image.saturating_sub(1);
                    Event::End(TagEnd::Image)
                }
                Event::Start(Tag::Paragraph) => Event::Html("<p dir=\"auto\">".into()),
                Event::Start(Tag::Heading { level, .. }) => {
                    Event::Html(format!("<{level} dir=\"auto\">").into())
                }
                Event::Start(Tag::Item) => Event::Html("<li dir=\"auto\">".into()),
                Event::End(end) if is_block(end) => {
                    self.closes = std::mem::take(&mut self.open);
                    self.after = Some(match end {
                        TagEnd::Paragraph => Event::Html("</p>\n".into()),
                        TagEnd::Heading(level) => Event::Html(format!("</{level}>\n").into()),
                        TagEnd::Item => Event::Html("</li>\n".into()),
                        other => Event::End(other),
                    });
                    continue;
                }
                other => other,
            });
        }
    }
}

impl<'a, I> Isolate<'a, I> {
    /// The next piece of a marked text: the text up to the next marker, or the marker as a
    /// span's start or end (`None` for an end with no span open, which is dropped). What is
    /// left goes back to `marked`. A borrowed text is cut into borrowed pieces.
    fn cut(&mut self, text: CowStr<'a>) -> Option<Event<'a>> {
        let Some(at) = find_value_mark(&text) else {
            return (!text.is_empty()).then_some(Event::Text(text));
        };
        let after = at + VALUE_START.len_utf8();
        if at > 0 {
            let (piece, rest) = split(text, at, at);
            self.marked = Some(rest);
            return Some(Event::Text(piece));
        }
        let opens = text[at..].starts_with(VALUE_START);
        self.marked = Some(split(text, 0, after).1);
        if opens {
            self.open += 1;
            Some(Event::InlineHtml(SPAN_OPEN.into()))
        } else if self.open > 0 {
            self.open -= 1;
            Some(Event::InlineHtml(SPAN_CLOSE.into()))
        } else {
            None
        }
    }
}

/// `text[..end]` and `text[start..]`, borrowed from the Markdown where `text` is.
fn split(text: CowStr<'_>, end: usize, start: usize) -> (CowStr<'_>, CowStr<'_>) {
    match text {
        CowStr::Borrowed(text) => (text[..end].into(), text[start..].into()),
        owned => (
            CowStr::from(owned[..end].to_owned()),
            CowStr::from(owned[start..].to_owned()),
        ),
    }
}

fn unmarked(text: CowStr<'_>) -> CowStr<'_> {
    if find_value_mark(&text).is_some() {
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
