//! The text/plain part: Markdown events written as readable plain text.

use pulldown_cmark::{Event, HeadingLevel, LinkType, Tag, TagEnd};
use unicode_width::UnicodeWidthStr;

use super::table::TextTable;
use super::{TEXT_WIDTH, without_value_marks};

/// The length of the line that stands for a horizontal rule in the text part.
pub(super) const RULE_WIDTH: usize = 24;

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
pub(super) struct TextWriter {
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
    /// The table being written: its cells are collected, then laid out when it ends.
    table: Option<TextTable>,
    /// Where the current table cell's text starts.
    cell_start: usize,
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
            table: None,
            cell_start: 0,
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

    pub(super) fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text)
            | Event::Code(text)
            | Event::Html(text)
            | Event::InlineHtml(text)
            | Event::InlineMath(text)
            | Event::DisplayMath(text) => self.write_text(&text),
            // A table cell is one line.
            Event::SoftBreak | Event::HardBreak if self.table.is_some() => self.write_text(" "),
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
            Tag::Table(alignments) => {
                self.request(Sep::Blank);
                self.begin_content();
                self.table = Some(TextTable::new(alignments));
            }
            Tag::TableCell => self.cell_start = self.out.len(),
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
            TagEnd::TableCell => {
                let cell = self.out.split_off(self.cell_start);
                if let Some(table) = &mut self.table {
                    table.push_cell(&cell);
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(table) = &mut self.table {
                    table.end_row();
                }
            }
            TagEnd::Table => {
                if let Some(table) = self.table.take() {
                    for (i, line) in table.lines().iter().enumerate() {
                        if i > 0 {
                            self.line_break();
                            self.begin_content();
                        }
                        self.out.push_str(line);
                    }
                }
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
        let text = without_value_marks(&self.out[link.start..]).into_owned();
        let url = without_value_marks(&link.url).into_owned();
        let (text, url) = (text.as_str(), url.as_str());
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

    /// A line of `=` (level 1) or `-` as long as the heading's longest line, in columns. A
    /// heading wider than the text is wrapped at spaces first (outside quotes and lists,
    /// whose prefixes it would have to repeat).
    fn underline(&mut self, level: HeadingLevel, start: usize) {
        let heading = without_value_marks(&self.out[start..]).into_owned();
        if self.containers.is_empty() && heading.lines().any(|l| l.width() > TEXT_WIDTH) {
            self.out.truncate(start);
            self.out.push_str(&wrap(&heading, TEXT_WIDTH));
        }
        let width = without_value_marks(&self.out[start..])
            .lines()
            .map(UnicodeWidthStr::width)
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

    /// Trailing spaces and the markers of CSV values removed from every line, exactly one
    /// final newline.
    pub(super) fn finish(self) -> String {
        let mut text = String::with_capacity(self.out.len() + 1);
        for line in self.out.lines() {
            text.push_str(without_value_marks(line).trim_end_matches([' ', '\t']));
            text.push('\n');
        }
        let trimmed_len = text.trim_end_matches('\n').len();
        text.truncate(trimmed_len);
        text.push('\n');
        text
    }
}

/// Each line of `text` filled with words up to `width` columns; a longer word stands alone.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        let mut used = 0;
        for word in line.split_whitespace() {
            let w = word.width();
            if used > 0 && used + 1 + w > width {
                out.push('\n');
                used = 0;
            } else if used > 0 {
                out.push(' ');
                used += 1;
            }
            out.push_str(word);
            used += w;
        }
        out.push('\n');
    }
    out.pop();
    out
}
