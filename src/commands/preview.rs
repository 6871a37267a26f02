//! `envoi preview`: letters on the terminal, or `.eml` files plus an `index.html` to look at.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, PreviewArgs, PreviewFormat};
use crate::commands::{Outcome, plural};
use crate::compose::Composed;
use crate::error::{Error, Problem};
use crate::markdown::escape_html;
use crate::pipeline::{Letter, Pipeline, RowFilter};

pub fn execute(global: &GlobalArgs, args: &PreviewArgs) -> Result<Outcome, Error> {
    let pipeline = Pipeline::open(global.campaign_paths(), None)?.with_signing()?;
    let filter = RowFilter::new(&args.selection.rows, args.selection.limit);
    pipeline.require_recipients()?;
    pipeline.check_rows_exist(&filter)?;
    let mut sink: Box<dyn Sink> = match &args.out {
        Some(dir) => Box::new(Outbox::create(&global.dir.join(dir), dir)?),
        None => Box::new(Terminal {
            format: args.format,
            out: std::io::stdout().lock(),
        }),
    };
    let (mut shown, mut bad) = (0usize, 0usize);
    for letter in pipeline.letters(&filter)? {
        match &letter.result {
            Ok(composed) => {
                sink.letter(composed)?;
                shown += 1;
            }
            Err(problems) => {
                for p in problems {
                    eprintln!("{p}");
                }
                sink.problems(&letter, problems)?;
                bad += 1;
            }
        }
    }
    sink.finish(shown)?;
    if bad > 0 {
        return Err(Error::Reported(format!(
            "{} could not be rendered (problems above); run envoi check for the full list",
            plural(bad, "letter")
        )));
    }
    Ok(Outcome::Done)
}

/// Where previewed letters go.
trait Sink {
    fn letter(&mut self, composed: &Composed) -> Result<(), Error>;
    fn problems(&mut self, _letter: &Letter, _problems: &[Problem]) -> Result<(), Error> {
        Ok(())
    }
    fn finish(&mut self, _shown: usize) -> Result<(), Error> {
        Ok(())
    }
}

struct Terminal<W: Write> {
    format: PreviewFormat,
    out: W,
}

impl<W: Write> Sink for Terminal<W> {
    fn letter(&mut self, c: &Composed) -> Result<(), Error> {
        let result = match self.format {
            PreviewFormat::Raw => self
                .out
                .write_all(&c.bytes)
                .and_then(|_| self.out.write_all(b"\r\n")),
            PreviewFormat::Text => self.out.write_all(readable(c).as_bytes()),
        };
        // A closed pipe (`envoi preview | head`) is the reader's choice, not an error.
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            other => other.map_err(|e| Error::io("standard output", "cannot write", e)),
        }
    }
}

/// A letter as a person reads it: the headers that matter, the text part, the attachments.
pub fn readable(c: &Composed) -> String {
    let mut s = format!(
        "──── row {} · {} ────\n",
        c.row,
        if c.organisation.is_empty() {
            &c.email
        } else {
            &c.organisation
        }
    );
    let list = |ms: &[lettre::message::Mailbox]| {
        ms.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    s += &format!("From:        {}\n", c.from);
    s += &format!("To:          {}\n", c.to);
    if !c.cc.is_empty() {
        s += &format!("Cc:          {}\n", list(&c.cc));
    }
    if !c.bcc.is_empty() {
        s += &format!("Bcc:         {}\n", list(&c.bcc));
    }
    if let Some(r) = &c.reply_to {
        s += &format!("Reply-To:    {r}\n");
    }
    s += &format!("Subject:     {}\n", c.subject);
    for (name, value) in &c.headers {
        // In the same column as the other values; a long name still gets one space.
        s += &format!("{:<12} {value}\n", format!("{name}:"));
    }
    s += &format!("Message-ID:  {}\n", c.message_id);
    s += &format!("Template:    {}\n", c.template.display());
    for a in &c.attachments {
        s += &format!(
            "Attachment:  {} ({}, {})\n",
            a.name,
            a.content_type,
            human_size(a.size)
        );
    }
    s += "\n";
    s += &c.text;
    s += "\n";
    s
}

pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / 1024.0 / 1024.0),
    }
}

/// `--out DIR`: one `.eml` and one `.html` page per letter, and an `index.html` listing them,
/// written as the letters come so that memory stays flat.
struct Outbox {
    dir: PathBuf,
    shown_dir: PathBuf,
    index: BufWriter<File>,
    first: Option<String>,
}

impl Outbox {
    fn create(dir: &Path, shown: &Path) -> Result<Outbox, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(shown, "cannot create folder", e))?;
        remove_previous_preview(dir)
            .map_err(|e| Error::io(shown, "cannot clear the old preview", e))?;
        let index_path = dir.join("index.html");
        let index =
            File::create(&index_path).map_err(|e| Error::io(&index_path, "cannot write", e))?;
        let mut outbox = Outbox {
            dir: dir.to_path_buf(),
            shown_dir: shown.to_path_buf(),
            index: BufWriter::new(index),
            first: None,
        };
        outbox.write_index(INDEX_HEAD)?;
        Ok(outbox)
    }

    fn write_index(&mut self, text: &str) -> Result<(), Error> {
        self.index
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(self.shown_dir.join("index.html"), "cannot write", e))
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Error::io(self.shown_dir.join(name), "cannot write", e))
    }
}

impl Sink for Outbox {
    fn letter(&mut self, c: &Composed) -> Result<(), Error> {
        let stem = file_stem(c.row, &c.email);
        self.write_file(&format!("{stem}.eml"), &c.bytes)?;
        self.write_file(&format!("{stem}.html"), letter_page(c, &stem).as_bytes())?;
        self.first.get_or_insert_with(|| format!("{stem}.html"));
        let who = if c.organisation.is_empty() {
            &c.email
        } else {
            &c.organisation
        };
        self.write_index(&format!(
            "<li><a href=\"{stem}.html\" target=\"letter\"><span class=row>{}</span> {}<br><small>{}</small></a></li>\n",
            c.row,
            escape_html(who),
            escape_html(&c.to.to_string()),
        ))
    }

    fn problems(&mut self, letter: &Letter, problems: &[Problem]) -> Result<(), Error> {
        let list: String = problems
            .iter()
            .map(|p| format!("<br><small>{}</small>", escape_html(&p.to_string())))
            .collect();
        self.write_index(&format!(
            "<li class=bad><span class=row>{}</span> {} — not rendered{list}</li>\n",
            letter.row,
            escape_html(&letter.email)
        ))
    }

    fn finish(&mut self, shown: usize) -> Result<(), Error> {
        let first = self.first.clone().unwrap_or_else(|| "about:blank".into());
        self.write_index(&format!(
            "</ol></nav><iframe name=letter src=\"{first}\" title=\"letter\"></iframe></body></html>\n"
        ))?;
        self.index
            .flush()
            .map_err(|e| Error::io(self.shown_dir.join("index.html"), "cannot write", e))?;
        println!(
            "wrote {} to {}; open {} in a browser to see them",
            plural(shown, "letter"),
            self.shown_dir.display(),
            self.shown_dir.join("index.html").display()
        );
        Ok(())
    }
}

const INDEX_HEAD: &str = "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>envoi preview</title>\n<style>\nbody{margin:0;display:flex;height:100vh;font-family:system-ui,sans-serif}\nnav{width:22em;overflow:auto;border-right:1px solid #ccc;padding:.5em}\nol{list-style:none;padding:0;margin:0}li{margin:.2em 0}\na{display:block;padding:.3em;color:#123;text-decoration:none;border-radius:4px}a:hover{background:#eef}\n.row{color:#888;font-variant-numeric:tabular-nums}.bad{color:#a00;padding:.3em}\niframe{flex:1;border:0;height:100%}\n</style></head><body><nav><h1 style=\"font-size:1.1em\">Letters</h1><ol>\n";

/// One letter's page: its envelope headers, then the HTML part exactly as sent.
fn letter_page(c: &Composed, stem: &str) -> String {
    let mut rows = vec![("From", c.from.to_string()), ("To", c.to.to_string())];
    if !c.cc.is_empty() {
        rows.push((
            "Cc",
            c.cc.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if !c.bcc.is_empty() {
        rows.push((
            "Bcc",
            c.bcc
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(r) = &c.reply_to {
        rows.push(("Reply-To", r.to_string()));
    }
    rows.push(("Subject", c.subject.clone()));
    for a in &c.attachments {
        rows.push((
            "Attachment",
            format!("{} ({}, {})", a.name, a.content_type, human_size(a.size)),
        ));
    }
    let table: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{}</td></tr>", escape_html(v)))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>{}</title><style>body{{margin:0;font-family:system-ui,sans-serif}}table{{margin:1em;border-collapse:collapse}}th{{text-align:right;white-space:nowrap;color:#555;padding:.15em .8em;vertical-align:top}}iframe{{width:100%;height:80vh;border:0;border-top:1px solid #ccc}}</style></head><body><table>{table}<tr><th>File</th><td><a href=\"{stem}.eml\">{stem}.eml</a></td></tr></table><iframe sandbox srcdoc=\"{}\"></iframe></body></html>\n",
        escape_html(&c.subject),
        escape_html(&c.html)
    )
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
