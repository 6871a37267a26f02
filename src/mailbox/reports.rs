//! Reading a folder: every message, oldest first, fetched a batch at a time with
//! `BODY.PEEK[]` so that reading marks nothing as seen.

use std::collections::VecDeque;

use super::connection::{self, Session};
use super::{MailboxError, describe_imap_error};
use crate::config::tracking::MailboxSettings;
use crate::secret::Secret;
use crate::tracking::RawMessage;

/// How many messages one `UID FETCH` asks for: few enough to keep memory flat on a folder of
/// thousands of reports, enough to keep round trips few.
const FETCH_BATCH: usize = 50;

/// The messages of one folder, fetched as they are read, on a session of their own.
pub struct FolderMessages {
    session: Session,
    server: String,
    folder: String,
    /// UIDs not fetched yet, ascending.
    pending: VecDeque<u32>,
    fetched: VecDeque<RawMessage>,
}

/// Logs in, opens `[mailbox] folder` read-only and lists its messages. Everything that can
/// refuse (the server, its certificate, the login, the folder) has refused by the time this
/// returns, before the caller writes anything. A folder that does not exist is
/// [`MailboxError::NoFolder`].
pub fn folder_messages(
    settings: &MailboxSettings,
    password: &Secret,
) -> Result<FolderMessages, MailboxError> {
    let server = connection::describe(settings);
    let folder = settings.folder.as_str();
    let mut session = connection::open(settings, password)?;
    examine(&mut session, &server, folder)?;
    let mut uids: Vec<u32> = session
        .uid_search("ALL")
        .map_err(|e| failed(&server, folder, "list", &e))?
        .into_iter()
        .collect();
    uids.sort_unstable();
    Ok(FolderMessages {
        session,
        server,
        folder: folder.to_owned(),
        pending: uids.into(),
        fetched: VecDeque::new(),
    })
}

impl FolderMessages {
    /// How many messages the folder held when it was opened.
    pub fn remaining(&self) -> usize {
        self.pending.len() + self.fetched.len()
    }

    fn fetch_batch(&mut self) -> Result<(), MailboxError> {
        let batch: Vec<u32> = (0..FETCH_BATCH)
            .map_while(|_| self.pending.pop_front())
            .collect();
        let set = batch
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let fetches = self
            .session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .map_err(|e| failed(&self.server, &self.folder, "read", &e))?;
        for fetch in fetches.iter() {
            // A message expunged meanwhile by another client simply is not there.
            if let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) {
                self.fetched.push_back(RawMessage {
                    origin: format!("{} UID {uid}", self.folder),
                    bytes: body.to_vec(),
                });
            }
        }
        // Flag changes and new-message counts pushed by the server are not needed.
        self.session.take_all_unsolicited().for_each(drop);
        Ok(())
    }
}

impl Iterator for FolderMessages {
    type Item = Result<RawMessage, MailboxError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.fetched.is_empty() {
            if self.pending.is_empty() {
                return None;
            }
            if let Err(e) = self.fetch_batch() {
                self.pending.clear();
                return Some(Err(e));
            }
        }
        self.fetched.pop_front().map(Ok)
    }
}

impl Drop for FolderMessages {
    fn drop(&mut self) {
        let _ = self.session.logout();
    }
}

/// `EXAMINE`: selects read-only. The folder is looked up with `LIST` first, because servers
/// word "no such folder" freely (Dovecot's NO even echoes the name in UTF-8).
pub(super) fn examine(
    session: &mut Session,
    server: &str,
    folder: &str,
) -> Result<(), MailboxError> {
    let name = super::folder_name::encode(folder);
    let listed = session
        .list(Some(""), Some(&name))
        .map_err(|e| failed(server, folder, "look up", &e))?;
    let exists = listed.iter().any(|n| {
        n.name() == name
            || (name.eq_ignore_ascii_case("INBOX") && n.name().eq_ignore_ascii_case("INBOX"))
    });
    if !exists {
        return Err(MailboxError::NoFolder {
            server: server.to_owned(),
            folder: folder.to_owned(),
        });
    }
    session
        .examine(&name)
        .map_err(|e| failed(server, folder, "open", &e))?;
    Ok(())
}

pub(super) fn failed(server: &str, folder: &str, doing: &str, e: &imap::Error) -> MailboxError {
    MailboxError::Protocol {
        server: server.to_owned(),
        reason: format!(
            "could not {doing} the folder \"{folder}\": {}",
            describe_imap_error(e)
        ),
    }
}
