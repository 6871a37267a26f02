//! The spool of one `send`: every planned letter, composed once while the run checks and plans,
//! is written here, and delivery streams from it.
//!
//! Why a file and not memory, nor composing again: a run of 100,000 letters must not hold
//! 100,000 messages (peak memory stays flat), and composing twice read and encoded every
//! attachment twice, rendered and signed every letter twice, and read `recipients.csv` again
//! while sending. With the spool, what goes out is byte for byte what was checked, planned
//! against the log and shown for confirmation.
//!
//! The first [`IN_MEMORY`] bytes stay in memory, so a small run touches no disk; past that
//! the spool moves to an anonymous temporary file in the system's temporary folder
//! ([`tempfile`]), which the system removes when it is closed, however the run ends. It holds
//! the letters as they go out (addresses, texts, attachments, signatures: what the relay
//! receives), never a password or a key. One record per letter: a line of JSON with what delivery and the log
//! need, then the message's length (8 bytes, little-endian) and its bytes.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Cursor, Read, Seek, Write};
use std::path::PathBuf;

use lettre::Address;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use crate::compose::Composed;

/// How much of the spool stays in memory before it moves to a file: bounded, so memory stays
/// flat whatever the number of rows.
pub const IN_MEMORY: usize = 4 << 20;

/// Buffer size for the spool file: a few large reads and writes rather than many small ones.
const BUFFER: usize = 256 << 10;

const WHERE: &str = "the temporary spool of composed letters";

/// Why the spool could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot write {WHERE}: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot read {WHERE}: {0}")]
    Read(#[source] std::io::Error),
    #[error("{WHERE} is damaged: {0}")]
    Damaged(String),
}

/// A mailbox as stored: name and address apart, so that reading it back needs no parsing of
/// a quoted header form.
#[derive(Serialize, Deserialize)]
struct Person {
    name: Option<String>,
    address: String,
}

impl Person {
    fn of(mailbox: &Mailbox) -> Person {
        Person {
            name: mailbox.name.clone(),
            address: mailbox.email.to_string(),
        }
    }

    fn mailbox(self) -> Result<Mailbox, SpoolError> {
        let address: Address = self.address.parse().map_err(|_| {
            SpoolError::Damaged(format!("the address {} does not read back", self.address))
        })?;
        Ok(Mailbox::new(self.name, address))
    }
}

/// What delivery, the log and the confirmation need of a letter besides its bytes. The
/// letter's text, HTML and attachment list are not kept: the bytes carry them.
#[derive(Serialize, Deserialize)]
struct Record {
    row: usize,
    email: String,
    organisation: String,
    message_id: String,
    from: Person,
    to: Person,
    cc: Vec<Person>,
    bcc: Vec<Person>,
    reply_to: Option<Person>,
    subject: String,
    headers: Vec<(String, String)>,
    template: PathBuf,
    language: Option<String>,
}

/// Letters written by the planning pass, read back to send. Letters are pushed first, then
/// read (pushing after reading is not supported).
pub struct Spool {
    store: Store,
    len: usize,
    in_memory: usize,
}

enum Store {
    Memory(Vec<u8>),
    File(BufWriter<File>),
}

impl Spool {
    pub fn new() -> Spool {
        Spool {
            store: Store::Memory(Vec::new()),
            len: 0,
            in_memory: IN_MEMORY,
        }
    }

    /// How many letters it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, letter: &Composed) -> Result<(), SpoolError> {
        let record = Record {
            row: letter.row,
            email: letter.email.clone(),
            organisation: letter.organisation.clone(),
            message_id: letter.message_id.clone(),
            from: Person::of(&letter.from),
            to: Person::of(&letter.to),
            cc: letter.cc.iter().map(Person::of).collect(),
            bcc: letter.bcc.iter().map(Person::of).collect(),
            reply_to: letter.reply_to.as_ref().map(Person::of),
            subject: letter.subject.clone(),
            headers: letter.headers.clone(),
            template: letter.template.clone(),
            language: letter.language.clone(),
        };
        let mut head =
            serde_json::to_vec(&record).map_err(|e| SpoolError::Damaged(e.to_string()))?;
        head.push(b'\n');
        head.extend_from_slice(&(letter.bytes.len() as u64).to_le_bytes());
        if let Store::Memory(memory) = &self.store
            && memory.len() + head.len() + letter.bytes.len() > self.in_memory
        {
            let mut file =
                BufWriter::with_capacity(BUFFER, tempfile::tempfile().map_err(SpoolError::Write)?);
            file.write_all(memory).map_err(SpoolError::Write)?;
            self.store = Store::File(file);
        }
        match &mut self.store {
            Store::Memory(memory) => {
                memory.extend_from_slice(&head);
                memory.extend_from_slice(&letter.bytes);
            }
            Store::File(file) => {
                file.write_all(&head).map_err(SpoolError::Write)?;
                file.write_all(&letter.bytes).map_err(SpoolError::Write)?;
            }
        }
        self.len += 1;
        Ok(())
    }

    /// The letters, from the first, in the order they were written. Each call starts again
    /// from the first (the confirmation shows the first; delivery then reads them all).
    pub fn letters(&mut self) -> Result<SpoolReader<'_>, SpoolError> {
        let source: Box<dyn BufRead + Send + '_> = match &mut self.store {
            Store::Memory(memory) => Box::new(Cursor::new(memory.as_slice())),
            Store::File(file) => {
                file.flush().map_err(SpoolError::Write)?;
                // A second handle on the same file: it shares the position, so rewind it.
                let mut file = file.get_ref().try_clone().map_err(SpoolError::Read)?;
                file.rewind().map_err(SpoolError::Read)?;
                Box::new(BufReader::with_capacity(BUFFER, file))
            }
        };
        Ok(SpoolReader {
            source,
            left: self.len,
        })
    }
}

impl Default for Spool {
    fn default() -> Spool {
        Spool::new()
    }
}

/// Streams a spool's letters back, one at a time.
pub struct SpoolReader<'a> {
    source: Box<dyn BufRead + Send + 'a>,
    left: usize,
}

impl SpoolReader<'_> {
    fn read(&mut self) -> Result<Composed, SpoolError> {
        let mut line = String::new();
        self.source.read_line(&mut line).map_err(SpoolError::Read)?;
        let record: Record =
            serde_json::from_str(&line).map_err(|e| SpoolError::Damaged(e.to_string()))?;
        let mut len = [0u8; 8];
        self.source.read_exact(&mut len).map_err(SpoolError::Read)?;
        let len = usize::try_from(u64::from_le_bytes(len))
            .map_err(|_| SpoolError::Damaged("a letter's length is out of range".into()))?;
        let mut bytes = vec![0u8; len];
        self.source
            .read_exact(&mut bytes)
            .map_err(SpoolError::Read)?;
        Ok(Composed {
            row: record.row,
            email: record.email,
            organisation: record.organisation,
            message_id: record.message_id,
            from: record.from.mailbox()?,
            to: record.to.mailbox()?,
            cc: record
                .cc
                .into_iter()
                .map(Person::mailbox)
                .collect::<Result<_, _>>()?,
            bcc: record
                .bcc
                .into_iter()
                .map(Person::mailbox)
                .collect::<Result<_, _>>()?,
            reply_to: record.reply_to.map(Person::mailbox).transpose()?,
            subject: record.subject,
            headers: record.headers,
            text: String::new(),
            html: String::new(),
            attachments: Vec::new(),
            template: record.template,
            language: record.language,
            bytes,
        })
    }
}

impl Iterator for SpoolReader<'_> {
    type Item = Result<Composed, SpoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let letter = self.read();
        if letter.is_err() {
            // Nothing after a damaged record can be trusted to start where it should.
            self.left = 0;
        }
        Some(letter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(row: usize, size: usize) -> Composed {
        let from: Mailbox = "Médiateur <office@office.example>".parse().unwrap();
        let to = Mailbox::new(
            Some("Ville, \"Mairie\"".into()),
            "maire@ville.example".parse().unwrap(),
        );
        Composed {
            row,
            email: "maire@ville.example".into(),
            organisation: "Ville".into(),
            message_id: format!("<{row}.envoi@office.example>"),
            from: from.clone(),
            to,
            cc: vec![from.clone()],
            bcc: vec![from.clone()],
            reply_to: Some(from),
            subject: "Déclaration".into(),
            headers: vec![("X-Campaign".into(), "c".into())],
            text: "text".into(),
            html: "html".into(),
            attachments: Vec::new(),
            template: "templates/letter.hbs".into(),
            language: Some("fr".into()),
            bytes: (0..size).map(|i| (i % 251) as u8).collect(),
        }
    }

    fn round_trip(mut spool: Spool) {
        let sent: Vec<Composed> = (2..12).map(|row| letter(row, row * 1000)).collect();
        for l in &sent {
            spool.push(l).unwrap();
        }
        assert_eq!(spool.len(), 10);
        // The first again for the confirmation, then all of them.
        let first = spool.letters().unwrap().next().unwrap().unwrap();
        assert_eq!(first.row, 2);
        let back: Vec<Composed> = spool.letters().unwrap().map(Result::unwrap).collect();
        assert_eq!(back.len(), sent.len());
        for (a, b) in sent.iter().zip(&back) {
            assert_eq!(a.bytes, b.bytes);
            assert_eq!(
                (a.row, &a.email, &a.message_id),
                (b.row, &b.email, &b.message_id)
            );
            assert_eq!(
                (&a.from, &a.to, &a.cc, &a.bcc),
                (&b.from, &b.to, &b.cc, &b.bcc)
            );
            assert_eq!(
                (&a.reply_to, &a.subject, &a.headers),
                (&b.reply_to, &b.subject, &b.headers)
            );
            assert_eq!((&a.template, &a.language), (&b.template, &b.language));
        }
    }

    #[test]
    fn letters_come_back_as_they_went_in_from_memory() {
        let spool = Spool::new();
        round_trip(spool);
    }

    #[test]
    fn letters_come_back_as_they_went_in_from_the_file_past_the_memory_bound() {
        let mut spool = Spool::new();
        spool.in_memory = 5000;
        round_trip(spool);
    }

    #[test]
    fn a_damaged_spool_is_an_error_and_ends_the_letters() {
        let mut spool = Spool::new();
        spool.push(&letter(2, 10)).unwrap();
        spool.push(&letter(3, 10)).unwrap();
        if let Store::Memory(memory) = &mut spool.store {
            memory[0] = b'x';
        }
        let got: Vec<_> = spool.letters().unwrap().collect();
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0], Err(SpoolError::Damaged(_))));
    }
}
