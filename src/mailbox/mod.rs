//! The mailbox: the IMAP folder where delivery reports arrive (read by `envoi track`), and the
//! Sent folder where every letter the relay accepted is filed.
//!
//! envoi only reads and appends: it logs in, `EXAMINE`s folders (read-only, so not even the
//! `\Seen` flag changes), `UID SEARCH`es, `UID FETCH`es `BODY.PEEK[]`, and `APPEND`s copies to
//! the Sent folder. It never stores flags, expunges, moves or deletes.
//!
//! # Why the `imap` crate (3.0.0-alpha.15, `default-features = false`)
//!
//! - It is synchronous, like the rest of envoi (threads, one blocking session each, see
//!   `delivery`). `async-imap` 0.12 would bring an async runtime (tokio or async-std) into a
//!   program that has none, for one connection at a time.
//! - Without default features it brings no TLS of its own: envoi hands it a rustls 0.23
//!   stream built here ([`connection::Stream`]), verified with the same trust rules as the SMTP
//!   relay (system roots plus `ca_file`). The crate's own TLS features would pull native-tls
//!   or a second rustls set-up with its own rules.
//! - It has the few commands envoi needs, typed (LOGIN, EXAMINE, UID SEARCH, UID FETCH,
//!   APPEND with flags and internal date), and it builds on this toolchain.
//! - `imap-next` 0.3 is a sans-I/O protocol state machine: correct and flexible, but envoi
//!   would have to write the client loop (tags, literals, continuation requests) itself, which
//!   is the part worth taking from a library.
//!
//! The alpha is pinned exactly in Cargo.lock; the surface used is small ([`connection`],
//! [`reports`], [`sent`]).

pub mod connection;
pub mod filing;
mod folder_name;
pub mod reports;
pub mod sent;
mod trust;

use crate::config::tracking::MailboxSettings;
use crate::error::{Error, Location};

pub use connection::Session;
pub use reports::folder_messages;
pub use sent::{SentFolder, sent_copy};

/// What can go wrong with the mailbox. None of these messages holds the password.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("the mailbox {server} cannot be reached: {source}")]
    Unreachable {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the mailbox {server} is not trusted: {reason}")]
    Untrusted { server: String, reason: String },
    #[error("TLS cannot be set up for the mailbox {server}: {reason}")]
    TlsSetup { server: String, reason: String },
    #[error(
        "the mailbox {server} does not offer STARTTLS, so the connection cannot be encrypted; envoi will not log in in the clear (check the port, or use security = \"tls\")"
    )]
    NoStartTls { server: String },
    #[error(
        "the mailbox {server} refused to log in as \"{username}\" ({reason}); check username in [mailbox] and the password (ENVOI_IMAP_PASSWORD or password_command)"
    )]
    LoginRefused {
        server: String,
        username: String,
        reason: String,
    },
    #[error("the folder \"{folder}\" does not exist in the mailbox {server}")]
    NoFolder { server: String, folder: String },
    #[error("the mailbox {server} failed: {reason}")]
    Protocol { server: String, reason: String },
}

impl MailboxError {
    /// The command-level error: a folder that does not exist is a configuration problem (exit
    /// 2, naming the setting); anything else stops the command (exit 3).
    pub fn into_error(self, config: &std::path::Path, folder_key: &str) -> Error {
        match self {
            MailboxError::NoFolder { .. } => Error::input(
                Location::file(config).setting("mailbox", folder_key),
                format!(
                    "{self}; correct {folder_key} in [mailbox] (folder names are case-sensitive, except INBOX)"
                ),
            ),
            MailboxError::TlsSetup { .. } => Error::input(
                Location::file(config).setting("mailbox", "ca_file"),
                self.to_string(),
            ),
            other => Error::Stopped(other.to_string()),
        }
    }
}

/// An IMAP error in words, without the debug dumps some of its variants print.
pub(crate) fn describe_imap_error(e: &imap::Error) -> String {
    match e {
        imap::Error::Io(io) => io.to_string(),
        imap::Error::No(no) => format!("the server said NO: {}", no.information),
        imap::Error::Bad(bad) => format!("the server said BAD: {}", bad.information),
        imap::Error::Bye(bye) => format!("the server closed the session: {}", bye.information),
        imap::Error::ConnectionLost => "the connection was lost".to_owned(),
        imap::Error::Append => "the server did not accept the message".to_owned(),
        imap::Error::Parse(_) | imap::Error::Unexpected(_) | imap::Error::TagMismatch(_) => {
            "the server sent an answer envoi cannot read".to_owned()
        }
        other => other.to_string(),
    }
}

/// Reads the password: `ENVOI_IMAP_PASSWORD`, `password_command`, or the SMTP password.
pub fn password(
    settings: &MailboxSettings,
    config: &std::path::Path,
) -> Result<crate::secret::Secret, Error> {
    let at = Location::file(config).setting("mailbox", "password_command");
    match settings.password.read() {
        Ok(Some(secret)) => Ok(secret),
        Ok(None) => Err(Error::input(
            at,
            "no password for the mailbox: set ENVOI_IMAP_PASSWORD, or password_command in [mailbox] (or the SMTP password, which the mailbox falls back to)",
        )),
        Err(e) => Err(Error::input(at, e.to_string())),
    }
}
