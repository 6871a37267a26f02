//! `envoi preview`: letters on the terminal, or `.eml` files plus a gallery to look at.

use std::io::Write;
use std::ops::ControlFlow;

use lettre::message::Mailbox;

use crate::cli::{GlobalArgs, PreviewArgs, PreviewFormat};
use crate::commands::problem_list::ProblemList;
use crate::commands::{Outcome, plural};
use crate::compose::Composed;
use crate::error::{Error, Problem};
use crate::pipeline::{Letter, Pipeline, RowFilter};

mod gallery;

use gallery::Gallery;

pub fn execute(global: &GlobalArgs, args: &PreviewArgs) -> Result<Outcome, Error> {
    let pipeline = Pipeline::open(global.campaign_paths(), None)?.with_signing()?;
    let filter = RowFilter::new(&args.selection.rows, args.selection.limit);
    pipeline.require_recipients()?;
    pipeline.check_rows_exist(&filter)?;
    let mut sink: Box<dyn Sink> = match &args.out {
        Some(dir) => Box::new(Gallery::create(&global.relative(dir))?),
        None => Box::new(Terminal {
            format: args.format,
            out: std::io::stdout().lock(),
        }),
    };
    let (mut shown, mut bad) = (0usize, 0usize);
    // Printed after the letters: a problem on many rows is one line naming its rows.
    let mut list = ProblemList::default();
    pipeline.each_letter(&filter, None, |letter| {
        let flow = match &letter.result {
            Ok(composed) => {
                shown += 1;
                sink.letter(composed)?
            }
            Err(problems) => {
                problems.iter().for_each(|p| list.add(p.clone()));
                bad += 1;
                sink.problems(&letter, problems)?
            }
        };
        Ok::<_, Error>(match flow {
            Flow::Continue => ControlFlow::Continue(()),
            Flow::Stop => ControlFlow::Break(()),
        })
    })?;
    sink.finish(shown)?;
    list.lines().for_each(|line| eprintln!("{line}"));
    if bad > 0 {
        return Err(Error::Reported(format!(
            "{} could not be rendered (problems above); run envoi check for the full list",
            plural(bad, "letter")
        )));
    }
    Ok(Outcome::Done)
}

/// Whether the sink wants more letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The reader has gone (`envoi preview | head`): their choice, not an error.
    Stop,
}

/// Where previewed letters go.
trait Sink {
    fn letter(&mut self, composed: &Composed) -> Result<Flow, Error>;
    fn problems(&mut self, _letter: &Letter, _problems: &[Problem]) -> Result<Flow, Error> {
        Ok(Flow::Continue)
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
    fn letter(&mut self, c: &Composed) -> Result<Flow, Error> {
        let result = match self.format {
            PreviewFormat::Raw => self
                .out
                .write_all(&c.bytes)
                .and_then(|_| self.out.write_all(b"\r\n")),
            PreviewFormat::Text => self.out.write_all(readable(c).as_bytes()),
        };
        to_flow(result)
    }

    fn finish(&mut self, _shown: usize) -> Result<(), Error> {
        to_flow(self.out.flush()).map(|_| ())
    }
}

/// A closed pipe stops the output quietly, as `cat` or ripgrep do; any other failure to
/// write is an error.
fn to_flow(result: std::io::Result<()>) -> Result<Flow, Error> {
    match result {
        Ok(()) => Ok(Flow::Continue),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
        Err(e) => Err(Error::io("standard output", "cannot write", e)),
    }
}

/// `Name <address>` as a person writes it: without the quotes the header needs around a name
/// with commas or parentheses.
pub fn mailbox(m: &Mailbox) -> String {
    match m.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} <{}>", m.email),
        None => m.email.to_string(),
    }
}

fn mailboxes(ms: &[Mailbox]) -> String {
    ms.iter().map(mailbox).collect::<Vec<_>>().join(", ")
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
    s += &format!("From:        {}\n", mailbox(&c.from));
    s += &format!("To:          {}\n", mailbox(&c.to));
    if !c.cc.is_empty() {
        s += &format!("Cc:          {}\n", mailboxes(&c.cc));
    }
    if !c.bcc.is_empty() {
        s += &format!("Bcc:         {}\n", mailboxes(&c.bcc));
    }
    if let Some(r) = &c.reply_to {
        s += &format!("Reply-To:    {}\n", mailbox(r));
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
