//! A GFM table in the text part: columns padded to their widest cell, aligned as the table's
//! delimiter row says, the header underlined.

use pulldown_cmark::Alignment;
use unicode_width::UnicodeWidthStr;

use super::without_value_marks;

/// Between two columns.
const GAP: &str = "  ";

/// The cells of a table as they are written, laid out when the table ends.
#[derive(Debug)]
pub(super) struct TextTable {
    alignments: Vec<Alignment>,
    rows: Vec<Vec<String>>,
    row: Vec<String>,
}

impl TextTable {
    pub(super) fn new(alignments: Vec<Alignment>) -> TextTable {
        TextTable {
            alignments,
            rows: Vec::new(),
            row: Vec::new(),
        }
    }

    /// A cell's text as written; it is one line.
    pub(super) fn push_cell(&mut self, text: &str) {
        let text = without_value_marks(text);
        self.row
            .push(text.split_whitespace().collect::<Vec<_>>().join(" "));
    }

    pub(super) fn end_row(&mut self) {
        self.rows.push(std::mem::take(&mut self.row));
    }

    /// The header row, a rule of dashes under each column, then the body rows. Widths are
    /// display columns (a CJK character takes two), so the columns line up in a monospaced
    /// font; trailing spaces are left for the writer to trim.
    pub(super) fn lines(&self) -> Vec<String> {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.alignments.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![1; columns];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.width());
            }
        }
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        for (i, row) in self.rows.iter().enumerate() {
            let cells = (0..columns).map(|c| {
                let cell = row.get(c).map_or("", String::as_str);
                let align = self.alignments.get(c).copied().unwrap_or(Alignment::None);
                pad(cell, widths[c], align)
            });
            lines.push(cells.collect::<Vec<_>>().join(GAP));
            if i == 0 {
                let rule = widths.iter().map(|&w| "-".repeat(w));
                lines.push(rule.collect::<Vec<_>>().join(GAP));
            }
        }
        lines
    }
}

fn pad(cell: &str, width: usize, align: Alignment) -> String {
    let room = width.saturating_sub(cell.width());
    let (before, after) = match align {
        Alignment::Right => (room, 0),
        Alignment::Center => (room / 2, room - room / 2),
        Alignment::Left | Alignment::None => (0, room),
    };
    format!("{}{cell}{}", " ".repeat(before), " ".repeat(after))
}
