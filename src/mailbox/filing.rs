//! Filing copies in Sent while a send runs: one thread, one IMAP session, fed as the relay
//! accepts letters.
//!
//! The SMTP workers never wait for IMAP: they offer each accepted letter to a bounded queue
//! and go on. A copy that does not fit (IMAP slower than SMTP for a while), or that the
//! mailbox refuses, is simply not filed now; the catch-up that ends every `send` and `track`
//! ([`crate::commands::file_sent`]) files whatever the log says went out and the folder
//! lacks. Filing never touches the delivery log: a letter's status is what the relay said.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use super::MailboxError;
use super::sent::{SentFolder, sent_copy};
use crate::compose::Composed;
use crate::delivery::Observer;
use crate::delivery_log::Entry;

/// Copies waiting for the filing thread; past this, copies are left to the catch-up.
const QUEUE: usize = 64;

/// A copy on its way to the Sent folder.
struct Copy {
    message_id: String,
    bytes: Vec<u8>,
}

/// What the filing thread did.
#[derive(Debug, Default)]
pub struct Filed {
    /// Copies appended.
    pub filed: usize,
    /// Copies the folder already held (a resumed run).
    pub already: usize,
    /// Copies not filed now: the queue was full or the mailbox failed.
    pub left: usize,
    /// Why filing stopped, if it did.
    pub failure: Option<MailboxError>,
}

/// The filing thread and its queue.
pub struct Filer {
    queue: Mutex<Option<SyncSender<Copy>>>,
    overflow: std::sync::atomic::AtomicUsize,
    thread: JoinHandle<(Filed, SentFolder)>,
}

impl Filer {
    /// Starts filing into an open Sent folder.
    pub fn start(folder: SentFolder) -> Filer {
        let (tx, rx) = sync_channel::<Copy>(QUEUE);
        let thread = std::thread::spawn(move || file_all(folder, rx));
        Filer {
            queue: Mutex::new(Some(tx)),
            overflow: std::sync::atomic::AtomicUsize::new(0),
            thread,
        }
    }

    /// Offers a letter the relay accepted. Never blocks.
    pub fn offer(&self, letter: &Composed) {
        let copy = Copy {
            message_id: letter.message_id.clone(),
            bytes: sent_copy(letter),
        };
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(tx) = queue.as_ref() else { return };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(copy) {
            self.overflow
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Waits for the queue to drain; gives back the folder for the catch-up.
    pub fn finish(self) -> (Filed, Option<SentFolder>) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let overflow = self.overflow.load(std::sync::atomic::Ordering::Relaxed);
        match self.thread.join() {
            Ok((mut filed, folder)) => {
                filed.left += overflow;
                let usable = filed.failure.is_none();
                (filed, usable.then_some(folder))
            }
            // The thread panicked: nothing to give back; the catch-up will reconnect.
            Err(_) => (
                Filed {
                    left: overflow,
                    ..Filed::default()
                },
                None,
            ),
        }
    }
}

fn file_all(mut folder: SentFolder, rx: Receiver<Copy>) -> (Filed, SentFolder) {
    let mut filed = Filed::default();
    for copy in rx {
        if filed.failure.is_some() {
            filed.left += 1;
            continue;
        }
        match folder.file_once(&copy.message_id, &copy.bytes) {
            Ok(true) => filed.filed += 1,
            Ok(false) => filed.already += 1,
            Err(e) => {
                filed.left += 1;
                filed.failure = Some(e);
            }
        }
    }
    (filed, folder)
}

/// The run's observer, with every accepted letter also offered to the filing thread.
pub struct FilingObserver<'a> {
    pub inner: &'a dyn Observer,
    pub filer: &'a Filer,
}

impl Observer for FilingObserver<'_> {
    fn logged(&self, entry: &Entry, last: bool) {
        self.inner.logged(entry, last);
    }

    fn warn(&self, message: &str) {
        self.inner.warn(message);
    }

    fn accepted(&self, letter: &Composed) {
        self.filer.offer(letter);
    }
}
