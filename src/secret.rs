//! The relay password (or OAuth2 token), held so that it cannot leak.
//!
//! A [`Secret`] has no `Display`, its `Debug` prints `[redacted]`, and its memory is wiped on
//! drop. It comes from `ENVOI_SMTP_PASSWORD` or from `password_command`, never from a file or a
//! command-line flag (both end up in shell history, process lists or backups).

use std::fmt;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

/// The environment variable that holds the relay password.
pub const PASSWORD_ENV: &str = "ENVOI_SMTP_PASSWORD";

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

/// Where the password comes from, in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `ENVOI_SMTP_PASSWORD` is set.
    Environment,
    /// `password_command` in envoi.toml: run without a shell, first line of its output.
    Command(String),
    /// Nothing configured.
    None,
}

impl PasswordSource {
    /// Picks the source: the environment variable wins over `password_command`.
    pub fn detect(password_command: Option<&str>) -> Self {
        if std::env::var_os(PASSWORD_ENV).is_some() {
            PasswordSource::Environment
        } else if let Some(cmd) = password_command {
            PasswordSource::Command(cmd.to_owned())
        } else {
            PasswordSource::None
        }
    }

    /// Reads the secret. Errors describe the source, never the value.
    pub fn read(&self) -> Result<Option<Secret>, String> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::Environment => match std::env::var(PASSWORD_ENV) {
                Ok(value) if value.is_empty() => Err(format!("{PASSWORD_ENV} is set but empty")),
                Ok(value) => Ok(Some(Secret::new(value))),
                Err(_) => Err(format!("{PASSWORD_ENV} is not valid UTF-8 text")),
            },
            PasswordSource::Command(cmd) => run_password_command(cmd).map(Some),
        }
    }
}

/// Runs `password_command` without a shell (so quoting in envoi.toml cannot inject commands)
/// and returns the first line of its standard output.
fn run_password_command(cmd: &str) -> Result<Secret, String> {
    let words = shell_words::split(cmd)
        .map_err(|e| format!("password_command \"{cmd}\" cannot be split into words: {e}"))?;
    let (program, args) = words
        .split_first()
        .ok_or_else(|| "password_command is empty".to_owned())?;
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("password_command \"{program}\" could not be run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "password_command \"{program}\" failed ({}); run it yourself to see why",
            output.status
        ));
    }
    // Wrap at once so the raw bytes are wiped too.
    let stdout = Zeroizing::new(output.stdout);
    let text = std::str::from_utf8(&stdout).map_err(|_| {
        format!("password_command \"{program}\" printed something that is not UTF-8")
    })?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        return Err(format!(
            "password_command \"{program}\" printed nothing on its first line"
        ));
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

    #[test]
    fn command_first_line_without_a_shell() {
        let src = PasswordSource::Command("printf 'top secret\\nsecond line\\n'".into());
        let secret = src.read().unwrap().unwrap();
        assert_eq!(secret.expose(), "top secret");
        // No shell: a `;` is just an argument to printf, not a second command.
        let src = PasswordSource::Command("printf 'a;b'".into());
        assert_eq!(src.read().unwrap().unwrap().expose(), "a;b");
    }

    #[test]
    fn failing_command_is_a_clear_error() {
        let err = PasswordSource::Command("false".into()).read().unwrap_err();
        assert!(err.contains("password_command \"false\" failed"), "{err}");
        let err = PasswordSource::Command("no-such-program-envoi".into())
            .read()
            .unwrap_err();
        assert!(err.contains("could not be run"), "{err}");
    }
}
