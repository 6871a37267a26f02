//! The Sent folder: a copy of every letter the relay accepted, filed once.
//!
//! A copy is looked up by its Message-ID before it is appended, so a resumed or repeated run
//! never files a second one. Copies go in with `\Seen`, as a mail client files what it sent.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};
use imap::types::Flag;

use super::connection::{self, Session};
use super::reports::{examine, failed};
use super::{MailboxError, describe_imap_error};
use crate::compose::Composed;
use crate::config::tracking::MailboxSettings;
use crate::secret::Secret;

/// One session on the Sent folder.
pub struct SentFolder {
    session: Session,
    server: String,
    folder: String,
    /// The folder's name as IMAP writes it.
    wire_name: String,
}

impl SentFolder {
    /// Logs in and opens `sent_folder` read-only (APPEND needs no write selection), so that a
    /// folder that does not exist is known before anything is filed.
    pub fn open(settings: &MailboxSettings, password: &Secret) -> Result<SentFolder, MailboxError> {
        let folder = settings
            .sent_folder
            .clone()
            .unwrap_or_else(|| "Sent".to_owned());
        let server = connection::describe(settings);
        let mut session = connection::open(settings, password)?;
        examine(&mut session, &server, &folder)?;
        Ok(SentFolder {
            session,
            server,
            wire_name: super::folder_name::encode(&folder),
            folder,
        })
    }

    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// Whether a message with this Message-ID (with its angle brackets) is in the folder.
    pub fn contains(&mut self, message_id: &str) -> Result<bool, MailboxError> {
        let id = message_id.replace(['"', '\\', '\r', '\n'], "");
        let found = self
            .session
            .uid_search(format!("HEADER Message-ID \"{id}\""))
            .map_err(|e| failed(&self.server, &self.folder, "search", &e))?;
        self.session.take_all_unsolicited().for_each(drop);
        Ok(!found.is_empty())
    }

    /// Every Message-ID in the folder, to find at once which letters have no copy yet.
    pub fn message_ids(&mut self) -> Result<HashSet<String>, MailboxError> {
        let mut ids = HashSet::new();
        let uids = self
            .session
            .uid_search("ALL")
            .map_err(|e| failed(&self.server, &self.folder, "list", &e))?;
        if uids.is_empty() {
            return Ok(ids);
        }
        let fetches = self
            .session
            .uid_fetch("1:*", "(UID ENVELOPE)")
            .map_err(|e| failed(&self.server, &self.folder, "read", &e))?;
        for fetch in fetches.iter() {
            if let Some(id) = fetch.envelope().and_then(|e| e.message_id.as_deref()) {
                ids.insert(String::from_utf8_lossy(id).trim().to_owned());
            }
        }
        self.session.take_all_unsolicited().for_each(drop);
        Ok(ids)
    }

    /// Appends one copy with `\Seen`; `date` sets its arrival time (the time it was sent).
    pub fn append(
        &mut self,
        copy: &[u8],
        date: Option<DateTime<FixedOffset>>,
    ) -> Result<(), MailboxError> {
        let mut command = self.session.append(&self.wire_name, copy);
        command.flag(Flag::Seen);
        if let Some(date) = date {
            command.internal_date(date);
        }
        command.finish().map_err(|e| MailboxError::Protocol {
            server: self.server.clone(),
            reason: format!(
                "could not file a copy in \"{}\": {}",
                self.folder,
                describe_imap_error(&e)
            ),
        })?;
        Ok(())
    }

    /// Files the copy unless the folder already holds one. True when it filed.
    pub fn file_once(&mut self, message_id: &str, copy: &[u8]) -> Result<bool, MailboxError> {
        if self.contains(message_id)? {
            return Ok(false);
        }
        self.append(copy, None)?;
        Ok(true)
    }

    /// Logs out; errors do not matter any more.
    pub fn close(mut self) {
        let _ = self.session.logout();
    }
}

/// The copy a mail client files: the message exactly as sent, with a `Bcc:` header added so
/// that the office sees who else received it (the relay's copy never carries one).
pub fn sent_copy(letter: &Composed) -> Vec<u8> {
    if letter.bcc.is_empty() {
        return letter.bytes.clone();
    }
    let bcc = crate::compose::bcc_header(&letter.bcc);
    let mut copy = Vec::with_capacity(bcc.len() + letter.bytes.len());
    copy.extend_from_slice(bcc.as_bytes());
    copy.extend_from_slice(&letter.bytes);
    copy
}
