//! The merged cells of an `.ods` sheet, which calamine does not report: a cell with
//! `table:number-columns-spanned` / `table:number-rows-spanned` in `content.xml` covers the
//! cells to its right and below.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::Dimensions;
use quick_xml::events::{BytesStart, Event};

/// What went wrong reading `content.xml`.
#[derive(Debug, thiserror::Error)]
pub(super) enum OdsError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("{0}")]
    Xml(#[from] quick_xml::Error),
    #[error("an attribute of content.xml: {0}")]
    Attribute(#[from] quick_xml::events::attributes::AttrError),
}

/// The merged regions of the sheet named `sheet`, positions 0-based as calamine's.
pub(super) fn of_sheet(path: &Path, sheet: &str) -> Result<Vec<Dimensions>, OdsError> {
    let mut archive = zip::ZipArchive::new(BufReader::new(File::open(path)?))?;
    let content = BufReader::new(archive.by_name("content.xml")?);
    let mut reader = quick_xml::Reader::from_reader(content);
    let mut buffer = Vec::new();
    let mut merges = Vec::new();
    let mut in_sheet = false;
    let (mut row, mut column) = (0u32, 0u32);
    // Rows and cells can nest (table:table-row-group, text inside cells): count depth only of
    // what matters, and never go into a table inside a cell.
    loop {
        buffer.clear();
        let event = reader.read_event_into(&mut buffer)?;
        let (element, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) if in_sheet && e.name().as_ref() == "table:table" => break,
            Event::End(e) if in_sheet && e.name().as_ref() == "table:table-row" => {
                row += 1;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match element.name().as_ref() {
            "table:table" if !in_sheet => {
                in_sheet = attribute(element, "table:name")?.as_deref() == Some(sheet);
            }
            "table:table-row" if in_sheet => {
                column = 0;
                let repeated = number(element, "table:number-rows-repeated")?.max(1);
                if empty {
                    row += repeated;
                } else {
                    // The End of the row adds the last one.
                    row += repeated - 1;
                }
            }
            "table:table-cell" | "table:covered-table-cell" if in_sheet => {
                let columns = number(element, "table:number-columns-spanned")?.max(1);
                let rows = number(element, "table:number-rows-spanned")?.max(1);
                if columns > 1 || rows > 1 {
                    merges.push(Dimensions {
                        start: (row, column),
                        end: (row + rows - 1, column + columns - 1),
                    });
                }
                column += number(element, "table:number-columns-repeated")?.max(1);
            }
            _ => {}
        }
    }
    Ok(merges)
}

fn attribute(element: &BytesStart<'_>, name: &str) -> Result<Option<String>, OdsError> {
    let version = quick_xml::XmlVersion::Implicit1_0;
    Ok(match element.try_get_attribute(name)? {
        Some(attribute) => Some(attribute.normalized_value(version)?.into_owned()),
        None => None,
    })
}

/// A count attribute; 0 when absent or not a number (then the caller's default applies).
fn number(element: &BytesStart<'_>, name: &str) -> Result<u32, OdsError> {
    Ok(attribute(element, name)?
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0))
}
