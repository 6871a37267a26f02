//! The relay password (or OAuth2 token), held so that it cannot leak.
//!
//! A [`Secret`] has no `Display`, its `Debug` prints `[redacted]`, and its memory is wiped on
//! drop. It comes from `ENVOI_SMTP_PASSWORD` or from `password_command`, never from a file or a
//! command-line flag (both end up in shell history, process lists or backups).

use std::fmt;
use std::process::{Command, Stdio};

use serde::Deserialize;
use zeroize::Zeroizing;

/// The environment variable that holds the relay password.
pub const PASSWORD_ENV: &str = "ENVOI_SMTP_PASSWORD";
/// The environment variable that holds the IMAP mailbox password (`[mailbox]`).
pub const IMAP_PASSWORD_ENV: &str = "ENVOI_IMAP_PASSWORD";

/// A password or token. Deliberately not `Display`.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The only way to read the value: name the call site so reviewers can find every use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret could not be read. The text names the source (variable or command), never the
/// value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("password_command \"{line}\" cannot be split into words: {source}")]
    Split {
        line: String,
        #[source]
        source: shell_words::ParseError,
    },
    #[error(
        "password_command \"{line}\" has a backslash, which the one-line form reads as an escape \
         (C:\\Tools\\pw.exe would become C:Toolspw.exe); write the command as a list of words \
         instead, such as password_command = ['C:\\Tools\\pw.exe', 'smtp']"
    )]
    Backslash { line: String },
    #[error("password_command is empty; name the program that prints the password")]
    EmptyCommand,
    #[error("{name} is set but empty")]
    EmptyVariable { name: String },
    #[error("{name} is not valid UTF-8 text")]
    VariableNotText { name: String },
    #[error("password_command \"{program}\" could not be run: {source}")]
    Run {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("password_command \"{program}\" failed ({status}); run it yourself to see why")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
    },
    #[error("password_command \"{program}\" printed something that is not UTF-8")]
    OutputNotText { program: String },
    #[error("password_command \"{program}\" printed nothing on its first line")]
    NothingPrinted { program: String },
}

/// Where the password comes from, in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `ENVOI_SMTP_PASSWORD` is set.
    Environment,
    /// `ENVOI_IMAP_PASSWORD` is set (for the mailbox only).
    ImapEnvironment,
    /// `password_command` in envoi.toml: run without a shell, first line of its output.
    Command(PasswordCommand),
    /// Nothing configured.
    None,
}

/// `password_command` as envoi.toml holds it: one line, split into words as a Unix shell
/// would (quotes group, a backslash escapes), or a list of words taken exactly as written.
/// The list is the form for Windows paths, whose backslashes a shell would read as escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCommand {
    Line(String),
    Words(Vec<String>),
}

impl PasswordCommand {
    /// The program and its arguments. A line whose splitting would drop a backslash is refused
    /// rather than guessed at: `C:\Tools\pw.exe` would become `C:Toolspw.exe`.
    pub fn words(&self) -> Result<Vec<String>, SecretError> {
        let words = match self {
            PasswordCommand::Words(words) => words.clone(),
            PasswordCommand::Line(line) => {
                let words = shell_words::split(line).map_err(|source| SecretError::Split {
                    line: line.clone(),
                    source,
                })?;
                let backslashes = |text: &str| text.matches('\\').count();
                if words.iter().map(|w| backslashes(w)).sum::<usize>() < backslashes(line) {
                    return Err(SecretError::Backslash { line: line.clone() });
                }
                words
            }
        };
        match words.first() {
            Some(program) if !program.trim().is_empty() => Ok(words),
            _ => Err(SecretError::EmptyCommand),
        }
    }
}

impl<'de> Deserialize<'de> for PasswordCommand {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PasswordCommand;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a command line such as \"pass show smtp\" or a list of words such as \
                     ['C:\\Tools\\pw.exe', 'smtp']",
                )
            }
            fn visit_str<E: serde::de::Error>(self, line: &str) -> Result<Self::Value, E> {
                Ok(PasswordCommand::Line(line.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut words = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    words.push(word);
                }
                Ok(PasswordCommand::Words(words))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl PasswordSource {
    /// Picks the source: the environment variable wins over `password_command`.
    pub fn detect(password_command: Option<&PasswordCommand>) -> Self {
        if std::env::var_os(PASSWORD_ENV).is_some() {
            PasswordSource::Environment
        } else if let Some(cmd) = password_command {
            PasswordSource::Command(cmd.clone())
        } else {
            PasswordSource::None
        }
    }

    /// The mailbox's own source, if it has one: `ENVOI_IMAP_PASSWORD`, then its
    /// `password_command`. Without one, the mailbox uses the relay's password.
    pub fn detect_imap(password_command: Option<&PasswordCommand>) -> Option<Self> {
        if std::env::var_os(IMAP_PASSWORD_ENV).is_some() {
            Some(PasswordSource::ImapEnvironment)
        } else {
            password_command.map(|cmd| PasswordSource::Command(cmd.clone()))
        }
    }

    /// Reads the secret. Errors describe the source, never the value.
    pub fn read(&self) -> Result<Option<Secret>, SecretError> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::Environment => read_variable(PASSWORD_ENV).map(Some),
            PasswordSource::ImapEnvironment => read_variable(IMAP_PASSWORD_ENV).map(Some),
            PasswordSource::Command(cmd) => run_password_command(cmd).map(Some),
        }
    }
}

fn read_variable(name: &str) -> Result<Secret, SecretError> {
    let name = name.to_owned();
    match std::env::var(&name) {
        Ok(value) if value.is_empty() => Err(SecretError::EmptyVariable { name }),
        Ok(value) => Ok(Secret::new(value)),
        Err(_) => Err(SecretError::VariableNotText { name }),
    }
}

/// Another secret (the PKCS#12 password, say): the variable `env` if it is set, else
/// `password_command`, else none. Errors describe the source, never the value.
pub fn read_secret(
    env: &str,
    password_command: Option<&PasswordCommand>,
) -> Result<Option<Secret>, SecretError> {
    match (std::env::var_os(env), password_command) {
        (Some(_), _) => read_variable(env).map(Some),
        (None, Some(cmd)) => run_password_command(cmd).map(Some),
        (None, None) => Ok(None),
    }
}

/// Runs `password_command` without a shell (so quoting in envoi.toml cannot inject commands)
/// and returns the first line of its standard output.
fn run_password_command(cmd: &PasswordCommand) -> Result<Secret, SecretError> {
    let words = cmd.words()?;
    let (program, args) = words.split_first().ok_or(SecretError::EmptyCommand)?;
    let program_name = || program.clone();
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| SecretError::Run {
            program: program_name(),
            source,
        })?;
    if !output.status.success() {
        return Err(SecretError::Failed {
            program: program_name(),
            status: output.status,
        });
    }
    // Wrap at once so the raw bytes are wiped too.
    let stdout = Zeroizing::new(output.stdout);
    let text = std::str::from_utf8(&stdout).map_err(|_| SecretError::OutputNotText {
        program: program_name(),
    })?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(SecretError::NothingPrinted {
            program: program_name(),
        });
    }
    Ok(Secret::new(first.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    fn line(text: &str) -> PasswordSource {
        PasswordSource::Command(PasswordCommand::Line(text.into()))
    }

    #[cfg(unix)]
    #[test]
    fn command_first_line_without_a_shell() {
        let secret = line("printf 'top secret\\nsecond line\\n'")
            .read()
            .unwrap()
            .unwrap();
        assert_eq!(secret.expose(), "top secret");
        // No shell: a `;` is just an argument to printf, not a second command.
        assert_eq!(
            line("printf 'a;b'").read().unwrap().unwrap().expose(),
            "a;b"
        );
        // The list form takes each word as it is, quotes and backslashes included.
        let words = PasswordCommand::Words(vec!["printf".into(), "%s".into(), "C:\\x 'y'".into()]);
        let secret = PasswordSource::Command(words).read().unwrap().unwrap();
        assert_eq!(secret.expose(), "C:\\x 'y'");
    }

    #[cfg(unix)]
    #[test]
    fn failing_command_is_a_clear_error() {
        let err = line("false").read().unwrap_err().to_string();
        assert!(err.contains("password_command \"false\" failed"), "{err}");
        let err = line("no-such-program-envoi")
            .read()
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not be run"), "{err}");
        // The operating system's reason stays reachable as the cause.
        let err = line("no-such-program-envoi").read().unwrap_err();
        let cause = std::error::Error::source(&err).expect("an io::Error cause");
        assert!(cause.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn a_line_that_would_lose_a_backslash_is_refused_not_guessed() {
        let err = PasswordCommand::Line("C:\\Tools\\pw.exe smtp".into())
            .words()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("write the command as a list of words"),
            "{err}"
        );
        // Inside single quotes a backslash is kept, so the line is fine.
        let words = PasswordCommand::Line("printf 'a\\nb'".into())
            .words()
            .unwrap();
        assert_eq!(words, ["printf", "a\\nb"]);
        let words = PasswordCommand::Words(vec!["C:\\Tools\\pw.exe".into(), "smtp".into()]);
        assert_eq!(words.words().unwrap()[0], "C:\\Tools\\pw.exe");
        for empty in [
            PasswordCommand::Line(" ".into()),
            PasswordCommand::Words(vec![]),
        ] {
            assert!(empty.words().unwrap_err().to_string().contains("is empty"));
        }
    }
}
