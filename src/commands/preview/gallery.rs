//! `preview --out DIR`: the gallery the office signs a campaign off with. One `.eml` and one
//! page per letter, and an `index.html` listing them, written as the letters come so that
//! memory stays flat.
//!
//! Each letter page is a page of its own (no frames around it): its headers as the recipient's
//! mail program shows them (From, To, Cc, Bcc, Reply-To, Subject, Date), its language, its
//! attachments as links, the `.eml`, then the HTML part. The HTML part sits in a sandboxed
//! frame (no scripts, so a raw-HTML template cannot run code in the gallery) that the page
//! sizes to the letter's full height, so the letter does not scroll inside the page; the
//! plain-text part is folded under it.
//!
//! Attachments are linked where they are, not copied: the gallery shows the very files that
//! will be sent, and a campaign with one annex for 20,000 letters does not make 20,000
//! copies. The links are relative when the file and the gallery share a root (so moving the
//! campaign folder keeps them working), else absolute `file://` URLs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use super::{Flow, Sink, human_size, mailbox, mailboxes, plural};
use crate::compose::Composed;
use crate::error::{Error, Problem};
use crate::markdown::escape_html;
use crate::pipeline::Letter;

/// Stands for the link to the next letter in a page written before that letter is known.
const NEXT_LINK: &str = "<!--envoi:next-->";

pub(super) struct Gallery {
    /// Where the gallery goes, as the user will find it (`--dir` joined with `--out`).
    dir: PathBuf,
    /// The same, canonical, to make relative links to attachments.
    canonical: PathBuf,
    index: BufWriter<File>,
    /// The last letter's page, waiting for the next letter's name.
    pending: Option<(String, String)>,
    previous: Option<String>,
    in_other_languages: usize,
    not_rendered: usize,
    problems: usize,
}

impl Gallery {
    pub(super) fn create(dir: &Path) -> Result<Gallery, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create folder", e))?;
        remove_previous_preview(dir)
            .map_err(|e| Error::io(dir, "cannot clear the old preview", e))?;
        let canonical = dir
            .canonicalize()
            .map_err(|e| Error::io(dir, "cannot open folder", e))?;
        let index_path = dir.join("index.html");
        let index =
            File::create(&index_path).map_err(|e| Error::io(&index_path, "cannot write", e))?;
        let mut gallery = Gallery {
            dir: dir.to_path_buf(),
            canonical,
            index: BufWriter::new(index),
            pending: None,
            previous: None,
            in_other_languages: 0,
            not_rendered: 0,
            problems: 0,
        };
        gallery.write_index(&format!(
            "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>envoi preview</title>\n\
             <style>{STYLE}{INDEX_STYLE}</style></head><body><main><ol>\n"
        ))?;
        Ok(gallery)
    }

    fn write_index(&mut self, text: &str) -> Result<(), Error> {
        self.index
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(self.dir.join("index.html"), "cannot write", e))
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, "cannot write", e))
    }

    /// Writes the waiting page, linking it to `next` (or to nothing: it was the last).
    fn flush_pending(&mut self, next: Option<&str>) -> Result<(), Error> {
        if let Some((name, page)) = self.pending.take() {
            let link = match next {
                Some(next) => format!(" · <a href=\"{next}\" rel=next>Next ›</a>"),
                None => String::new(),
            };
            self.write_file(&name, page.replacen(NEXT_LINK, &link, 1).as_bytes())?;
        }
        Ok(())
    }
}

impl Sink for Gallery {
    fn letter(&mut self, c: &Composed) -> Result<Flow, Error> {
        let stem = file_stem(c.row, &c.email);
        let page_name = format!("{stem}.html");
        self.write_file(&format!("{stem}.eml"), &c.bytes)?;
        self.flush_pending(Some(&page_name))?;
        let page = letter_page(c, &stem, self.previous.as_deref(), &self.canonical);
        self.pending = Some((page_name.clone(), page));
        self.previous = Some(page_name.clone());

        let language = match &c.language {
            Some(lang) => {
                self.in_other_languages += 1;
                format!(
                    " <span class=lang title=\"letter in another language\">{}</span>",
                    escape_html(lang)
                )
            }
            None => String::new(),
        };
        self.write_index(&format!(
            "<li><a href=\"{page_name}\"><span class=row>{}</span> <bdi>{}</bdi>{language}<br><small><bdi>{}</bdi></small></a></li>\n",
            c.row,
            escape_html(who(&c.organisation, &c.email)),
            escape_html(&mailbox(&c.to)),
        ))?;
        Ok(Flow::Continue)
    }

    fn problems(&mut self, letter: &Letter, problems: &[Problem]) -> Result<Flow, Error> {
        self.not_rendered += 1;
        self.problems += problems.len();
        let list: String = problems
            .iter()
            .map(|p| format!("<li>{}</li>", escape_html(&p.to_string())))
            .collect();
        self.write_index(&format!(
            "<li class=bad><span class=row>{}</span> <bdi>{}</bdi> — not rendered, {}<ul>{list}</ul></li>\n",
            letter.row,
            escape_html(who(&letter.organisation, &letter.email)),
            plural(problems.len(), "problem"),
        ))?;
        Ok(Flow::Continue)
    }

    fn finish(&mut self, shown: usize) -> Result<(), Error> {
        self.flush_pending(None)?;
        let mut summary = vec![plural(shown, "letter")];
        if self.in_other_languages > 0 {
            summary.push(format!("{} in another language", self.in_other_languages));
        }
        summary.push(match self.problems {
            0 => "no problems".to_owned(),
            n => format!(
                "<span class=bad>{} in {} not rendered</span>",
                plural(n, "problem"),
                plural(self.not_rendered, "letter")
            ),
        });
        // The summary is known only now; it comes last in the file and first on the screen.
        self.write_index(&format!(
            "</ol><header><h1>Letters to sign off</h1><p class=summary>{}</p></header></main></body></html>\n",
            summary.join(" · ")
        ))?;
        self.index
            .flush()
            .map_err(|e| Error::io(self.dir.join("index.html"), "cannot write", e))?;
        let said = writeln!(
            std::io::stdout(),
            "wrote {} to {}; open {} in a browser to see them",
            plural(shown, "letter"),
            self.dir.display(),
            self.dir.join("index.html").display()
        );
        match said {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Error::io("standard output", "cannot write", e))
            }
            _ => Ok(()),
        }
    }
}

fn who<'a>(organisation: &'a str, email: &'a str) -> &'a str {
    if organisation.is_empty() {
        email
    } else {
        organisation
    }
}

const STYLE: &str = "body{margin:0;font-family:system-ui,sans-serif;color:#1a1a1a;background:#f4f4f2}\
a{color:#1f4e8c}.row{color:#777;font-variant-numeric:tabular-nums}.bad{color:#a00}\
.lang{display:inline-block;font-size:.75em;font-weight:600;text-transform:uppercase;background:#1f4e8c;color:#fff;border-radius:3px;padding:0 .35em;margin-inline-start:.4em;vertical-align:.1em}";

const INDEX_STYLE: &str = concat!(
    "main{display:flex;flex-direction:column;max-width:60em;margin:0 auto;padding:1em}",
    "header{order:-1}h1{font-size:1.3em;margin:.5em 0 .2em}.summary{margin:0 0 1em;color:#444}",
    "ol{list-style:none;padding:0;margin:0;background:#fff;border:1px solid #ddd;border-radius:6px}",
    "li{border-top:1px solid #eee}li:first-child{border-top:0}",
    "li>a{display:block;padding:.45em .8em;text-decoration:none;color:inherit}li>a:hover{background:#eef3fb}",
    "li.bad{padding:.45em .8em}li.bad ul{margin:.3em 0 0;font-size:.9em}small{color:#555}",
);

/// One letter's page: its headers, its attachments, then the letter itself.
fn letter_page(c: &Composed, stem: &str, previous: Option<&str>, gallery: &Path) -> String {
    let mut rows = vec![
        ("From", escape_html(&mailbox(&c.from))),
        ("To", escape_html(&mailbox(&c.to))),
    ];
    if !c.cc.is_empty() {
        rows.push(("Cc", escape_html(&mailboxes(&c.cc))));
    }
    if !c.bcc.is_empty() {
        rows.push(("Bcc", escape_html(&mailboxes(&c.bcc))));
    }
    if let Some(r) = &c.reply_to {
        rows.push(("Reply-To", escape_html(&mailbox(r))));
    }
    rows.push(("Subject", escape_html(&c.subject)));
    if let Some(date) = header(&c.bytes, "Date") {
        rows.push(("Date", escape_html(&date)));
    }
    for (name, value) in &c.headers {
        rows.push((name.as_str(), escape_html(value)));
    }
    if let Some(lang) = &c.language {
        rows.push(("Language", escape_html(lang)));
    }
    rows.push(("Template", escape_html(&c.template.display().to_string())));
    for a in &c.attachments {
        rows.push((
            "Attachment",
            format!(
                "<a href=\"{}\">{}</a> ({}, {})",
                escape_html(&file_href(gallery, &a.path)),
                escape_html(&a.name),
                escape_html(&a.content_type),
                human_size(a.size)
            ),
        ));
    }
    rows.push((
        "Message",
        format!("<a href=\"{stem}.eml\">{stem}.eml</a> (as it will be sent)"),
    ));
    let table: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{}</th><td dir=auto>{v}</td></tr>", escape_html(k)))
        .collect();
    let previous = match previous {
        Some(p) => format!(" · <a href=\"{p}\" rel=prev>‹ Previous</a>"),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Row {row} · {who}</title><style>{STYLE}{PAGE_STYLE}</style></head><body>\
         <nav><a href=\"index.html\">All letters</a>{previous}{NEXT_LINK}</nav>\
         <table class=headers><tr><th>Row</th><td>{row}</td></tr>{table}</table>\
         <iframe class=letter title=\"The letter\" sandbox=\"allow-same-origin\" onload=\"fit(this)\" srcdoc=\"{html}\"></iframe>\
         <details><summary>Plain-text part</summary><pre dir=auto>{text}</pre></details>\
         <script>{FIT}</script></body></html>\n",
        row = c.row,
        who = escape_html(who(&c.organisation, &c.email)),
        html = escape_html(&c.html),
        text = escape_html(&c.text),
    )
}

const PAGE_STYLE: &str = "nav{padding:.6em 1em;background:#fff;border-bottom:1px solid #ddd}\
.headers{margin:1em auto;border-collapse:collapse;max-width:56em;width:calc(100% - 2em)}\
.headers th{text-align:end;white-space:nowrap;color:#555;font-weight:600;padding:.15em .8em;vertical-align:top;width:8em}\
.headers td{padding:.15em .8em;overflow-wrap:anywhere}\
iframe.letter{display:block;width:calc(100% - 2em);max-width:56em;min-height:70vh;margin:0 auto;border:1px solid #ddd;background:#fff;box-shadow:0 1px 4px #0001}\
details{max-width:56em;margin:1em auto 3em;padding:0 1em}pre{white-space:pre-wrap;background:#fff;border:1px solid #ddd;padding:1em}";

/// Makes the letter's frame as tall as the letter, so that only the page scrolls. The frame
/// runs no scripts; this one belongs to the gallery page.
const FIT: &str = "function fit(f){try{f.style.height=f.contentDocument.documentElement.scrollHeight+'px'}catch(e){}}\
addEventListener('resize',function(){document.querySelectorAll('iframe.letter').forEach(fit)});";

/// The value of header `name` in a message's header section, unfolded.
fn header(message: &[u8], name: &str) -> Option<String> {
    let head = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message, |end| &message[..end]);
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    while let Some(line) = lines.next() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.eq_ignore_ascii_case(name) {
            let mut value = value.trim().to_owned();
            for more in lines.by_ref().take_while(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(more.trim());
            }
            return Some(value);
        }
    }
    None
}

/// A link from a page in `gallery` (canonical) to the file at `target` (canonical).
fn file_href(gallery: &Path, target: &Path) -> String {
    let from: Vec<Component> = gallery.components().collect();
    let to: Vec<Component> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    // More in common than the root (or drive): a relative link survives moving the campaign.
    if common > 1 {
        let segments: Vec<String> = to[common..]
            .iter()
            .map(|c| percent_encode(&c.as_os_str().to_string_lossy()))
            .collect();
        return format!(
            "{}{}",
            "../".repeat(from.len() - common),
            segments.join("/")
        );
    }
    let path = target.to_string_lossy().replace('\\', "/");
    let path = path.trim_start_matches("//?/");
    let encoded: Vec<String> = path.split('/').map(percent_encode).collect();
    format!("file:///{}", encoded.join("/").trim_start_matches('/'))
}

/// Percent-encodes everything but unreserved characters and `:` (a Windows drive letter).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `00002-sg_un.example`: sorted by row, recognisable, safe on every file system.
fn file_stem(row: usize, email: &str) -> String {
    let safe: String = email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("{row:05}-{safe}")
}

/// Removes what an earlier preview wrote (and only that), so a deleted row does not linger.
fn remove_previous_preview(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.len() > 6
            && name.as_bytes()[..5].iter().all(u8::is_ascii_digit)
            && name.as_bytes()[5] == b'-'
            && (name.ends_with(".eml") || name.ends_with(".html"));
        if ours || name == "index.html" {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_linked_relative_to_the_gallery_when_they_share_a_root() {
        let gallery = Path::new("/work/campaign/outbox");
        assert_eq!(
            file_href(
                gallery,
                Path::new("/work/campaign/attachments/Annex 1 (é).pdf")
            ),
            "../attachments/Annex%201%20%28%C3%A9%29.pdf"
        );
        assert_eq!(
            file_href(gallery, Path::new("/work/campaign/outbox/a.pdf")),
            "a.pdf"
        );
        assert_eq!(
            file_href(gallery, Path::new("/srv/shared/a#1.pdf")),
            "file:///srv/shared/a%231.pdf"
        );
    }

    #[test]
    fn a_header_is_read_unfolded_from_the_message() {
        let message = b"From: a@x.example\r\nDate: Fri, 19 Jan 2024\r\n 10:00:00 +0000\r\nTo: b@x.example\r\n\r\nDate: not this\r\n";
        assert_eq!(
            header(message, "date").as_deref(),
            Some("Fri, 19 Jan 2024 10:00:00 +0000")
        );
        assert_eq!(header(message, "Cc"), None);
    }
}
