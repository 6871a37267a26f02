//! Where reports are read from: Maildir folders, mbox files and `.eml` files. Files are only
//! ever opened for reading: nothing is deleted, moved, renamed or flagged (a Maildir message's
//! flags live in its file name, which stays as it is).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::RawMessage;
use crate::error::{Error, Location};

/// One place to read messages from: `shown` is the path as the user named it, `path` where it
/// is (relative to the campaign folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Maildir { shown: PathBuf, path: PathBuf },
    Mbox { shown: PathBuf, path: PathBuf },
    Eml { shown: PathBuf, path: PathBuf },
}

/// A message that could not be read from its source; the run goes on without it.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {action}: {source}")]
pub struct ReadWarning {
    pub origin: String,
    pub action: &'static str,
    #[source]
    pub source: std::io::Error,
}

impl Source {
    /// Checks that the source exists and is what it was named as, before anything is read.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            Source::Maildir { shown, path } => {
                if !path.is_dir() {
                    return Err(not_found(shown, path, "--maildir", "a Maildir folder"));
                }
                if !path.join("cur").is_dir() && !path.join("new").is_dir() {
                    return Err(Error::input(
                        Location::file(shown),
                        "is not a Maildir folder (it has no cur/ or new/ folder); name an mbox file with --mbox, or the Maildir folder itself",
                    ));
                }
                Ok(())
            }
            Source::Mbox { shown, path } => {
                if !path.is_file() {
                    return Err(not_found(shown, path, "--mbox", "an mbox file"));
                }
                Ok(())
            }
            Source::Eml { shown, path } => {
                if !path.is_file() {
                    return Err(not_found(shown, path, "", "an .eml file"));
                }
                Ok(())
            }
        }
    }

    /// The source's messages, in a stable order (a Maildir's `new/` then `cur/`, each by file
    /// name; an mbox's in file order).
    pub fn messages(&self) -> Box<dyn Iterator<Item = Result<RawMessage, ReadWarning>>> {
        match self {
            Source::Maildir { shown, path } => Box::new(maildir(shown, path).into_iter()),
            Source::Mbox { shown, path } => mbox(shown, path),
            Source::Eml { shown, path } => Box::new(std::iter::once(read_file(
                path,
                shown.display().to_string(),
            ))),
        }
    }
}

fn not_found(shown: &Path, path: &Path, flag: &str, what: &str) -> Error {
    let named = if flag.is_empty() {
        String::new()
    } else {
        format!(" (named with {flag})")
    };
    let message = if path.exists() {
        format!("is not {what}{named}")
    } else {
        format!("not found{named}; check the path (it is relative to the campaign folder, --dir)")
    };
    Error::input(Location::file(shown), message)
}

/// One message file.
fn read_file(path: &Path, origin: String) -> Result<RawMessage, ReadWarning> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(RawMessage { origin, bytes }),
        Err(source) => Err(ReadWarning {
            origin,
            action: "cannot read",
            source,
        }),
    }
}

/// A Maildir folder's messages: the files of `new/` and `cur/` (never `tmp/`, where messages
/// are still being written), skipping names that start with a dot.
fn maildir(shown: &Path, path: &Path) -> Vec<Result<RawMessage, ReadWarning>> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let dir = path.join(sub);
        if !dir.is_dir() {
            continue;
        }
        let mut names = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    match entry {
                        Ok(entry) if entry.path().is_file() => names.push(entry.file_name()),
                        Ok(_) => {}
                        Err(source) => out.push(Err(ReadWarning {
                            origin: shown.join(sub).display().to_string(),
                            action: "cannot list",
                            source,
                        })),
                    }
                }
            }
            Err(source) => out.push(Err(ReadWarning {
                origin: shown.join(sub).display().to_string(),
                action: "cannot list",
                source,
            })),
        }
        names.retain(|n| !n.to_string_lossy().starts_with('.'));
        names.sort();
        for name in names {
            let origin = shown.join(sub).join(&name).display().to_string();
            out.push(read_file(&dir.join(&name), origin));
        }
    }
    out
}

/// An mbox file's messages, read one at a time (an archive can be large). `>From ` quoting is
/// undone by mail-parser's reader.
fn mbox(shown: &Path, path: &Path) -> Box<dyn Iterator<Item = Result<RawMessage, ReadWarning>>> {
    let name = shown.display().to_string();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(source) => {
            return Box::new(std::iter::once(Err(ReadWarning {
                origin: name,
                action: "cannot read",
                source,
            })));
        }
    };
    let messages = mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(file));
    let mut failed = false;
    Box::new(
        messages
            .enumerate()
            // After a read error the rest of the file cannot be trusted to split right.
            .take_while(move |(_, m)| {
                let go = !failed;
                failed |= m.is_err();
                go
            })
            .map(move |(i, message)| {
                let origin = format!("{name}, message {}", i + 1);
                message
                    .map(|m| RawMessage {
                        origin: origin.clone(),
                        bytes: m.unwrap_contents(),
                    })
                    .map_err(|source| ReadWarning {
                        origin,
                        action: "cannot read",
                        source,
                    })
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(source: &Source) -> Vec<String> {
        source
            .messages()
            .map(|m| m.expect("readable").origin)
            .collect()
    }

    #[test]
    fn a_maildir_is_read_new_then_cur_in_name_order_and_left_as_it_was() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (sub, name) in [
            ("cur", "2.b"),
            ("cur", "1.a"),
            ("new", "3"),
            ("tmp", "4"),
            ("cur", ".hidden"),
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
            std::fs::write(dir.path().join(sub).join(name), b"Subject: x\n\n").expect("write");
        }
        let source = Source::Maildir {
            shown: "box".into(),
            path: dir.path().to_path_buf(),
        };
        source.check().expect("a Maildir");
        let sep = std::path::MAIN_SEPARATOR;
        assert_eq!(
            origins(&source),
            [
                format!("box{sep}new{sep}3"),
                format!("box{sep}cur{sep}1.a"),
                format!("box{sep}cur{sep}2.b")
            ]
        );
        assert!(dir.path().join("cur/2.b").exists() && dir.path().join("new/3").exists());
    }

    #[test]
    fn an_mbox_is_split_on_from_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("archive.mbox");
        std::fs::write(&path, b"From a@x Wed Dec  2 09:00:00 2026\nSubject: one\n\n>From here\n\nFrom b@x Wed Dec  2 09:00:01 2026\nSubject: two\n\nbody\n").expect("write");
        let source = Source::Mbox {
            shown: "archive.mbox".into(),
            path,
        };
        let messages: Vec<RawMessage> = source.messages().map(|m| m.expect("readable")).collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].origin, "archive.mbox, message 2");
        assert!(String::from_utf8_lossy(&messages[0].bytes).contains("\nFrom here"));
    }

    #[test]
    fn missing_sources_are_named() {
        let source = Source::Maildir {
            shown: "nowhere".into(),
            path: "/nonexistent/nowhere".into(),
        };
        let err = source.check().expect_err("missing");
        assert_eq!(
            err.to_string(),
            "nowhere: not found (named with --maildir); check the path (it is relative to the campaign folder, --dir)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let source = Source::Maildir {
            shown: "plain".into(),
            path: dir.path().to_path_buf(),
        };
        assert!(
            source
                .check()
                .expect_err("not a Maildir")
                .to_string()
                .contains("is not a Maildir folder")
        );
        let source = Source::Eml {
            shown: "plain".into(),
            path: dir.path().to_path_buf(),
        };
        assert_eq!(
            source.check().expect_err("a folder").to_string(),
            "plain: is not an .eml file"
        );
    }
}
