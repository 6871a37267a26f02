//! `[tracking]` and `[mailbox]`: asking the relay for delivery reports, and the IMAP mailbox
//! where the reports arrive and where sent letters are filed.
//!
//! Kept apart from the relay and sending sections: the only thing they share is the SMTP
//! password, which the mailbox falls back to when it has none of its own.

use std::path::{Path, PathBuf};

use lettre::Address;
use serde::Deserialize;

use super::{Security, ValueError, is_loopback};
use crate::error::{Location, Problem};
use crate::secret::{PasswordCommand, PasswordSource};

/// `[tracking]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingSection {
    pub dsn: Option<bool>,
    pub notify: Option<Vec<String>>,
    pub return_path: Option<String>,
    pub read_receipts: Option<bool>,
}

server_section! {
    /// `[mailbox]` as written.
    pub struct MailboxSection {
        pub folder: Option<String>,
        pub sent_folder: Option<String>,
        /// Seconds to wait for any one answer from the IMAP server.
        pub timeout: Option<u64>,
    }
}

/// What `NOTIFY=` asks for (RFC 3461 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// The `NOTIFY` value: `FAILURE,DELAY`, or `NEVER` when nothing is asked for.
    pub fn parameter(&self) -> String {
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .into_iter()
        .filter_map(|(on, word)| on.then_some(word))
        .collect();
        if words.is_empty() {
            "NEVER".to_owned()
        } else {
            words.join(",")
        }
    }
}

/// The envelope sender: a fixed address, or one per letter when `{token}` is in its local part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath {
    template: String,
}

/// Why a `return_path` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnPathError {
    #[error("\"{0}\" is not an email address; write it as bounces@your-office.example")]
    NoAt(String),
    #[error(
        "\"{text}\" has {{token}} in its domain; put it in the part before the @, e.g. bounces+{{token}}@{domain}"
    )]
    TokenInDomain { text: String, domain: String },
    #[error("\"{0}\" has {{token}} more than once; use it once")]
    TokenTwice(String),
    #[error(
        "\"{text}\" is not an email address; write it as bounces@your-office.example or bounces+{{token}}@your-office.example"
    )]
    Invalid {
        text: String,
        #[source]
        source: lettre::address::AddressError,
    },
}

/// Why a folder name cannot be put in an IMAP command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FolderNameError {
    #[error("the folder name is empty; write the folder's name, e.g. \"INBOX\" or \"Sent\"")]
    Empty,
    #[error(
        "\"{}\" holds a quote, a backslash or a control character, which envoi cannot name in IMAP; rename the folder",
        .0.escape_default()
    )]
    Unquotable(String),
}

impl ReturnPath {
    pub const TOKEN: &'static str = "{token}";

    /// Checks the setting: an address whose local part may hold `{token}` once.
    pub fn parse(text: &str) -> Result<ReturnPath, ReturnPathError> {
        let text = text.trim();
        let (local, domain) = text
            .rsplit_once('@')
            .ok_or_else(|| ReturnPathError::NoAt(text.to_owned()))?;
        if domain.contains(Self::TOKEN) {
            return Err(ReturnPathError::TokenInDomain {
                text: text.to_owned(),
                domain: domain.replace(Self::TOKEN, ""),
            });
        }
        if local.matches(Self::TOKEN).count() > 1 {
            return Err(ReturnPathError::TokenTwice(text.to_owned()));
        }
        let path = ReturnPath {
            template: text.to_owned(),
        };
        // A token is 32 hex digits; the address must stay valid with one in it.
        path.for_token("0123456789abcdef0123456789abcdef")
            .map_err(|source| ReturnPathError::Invalid {
                text: text.to_owned(),
                source,
            })?;
        Ok(path)
    }

    /// True when every letter gets its own address (VERP).
    pub fn is_per_letter(&self) -> bool {
        self.template.contains(Self::TOKEN)
    }

    /// The envelope sender of the letter whose token this is.
    pub fn for_token(&self, token: &str) -> Result<Address, lettre::address::AddressError> {
        self.template.replace(Self::TOKEN, token).parse()
    }

    /// The setting as written.
    pub fn as_str(&self) -> &str {
        &self.template
    }
}

/// `[tracking]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingSettings {
    /// Ask for DSN where the relay offers it.
    pub dsn: bool,
    pub notify: Notify,
    /// `None`: the envelope sender is the From address.
    pub return_path: Option<ReturnPath>,
    pub read_receipts: bool,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        TrackingSettings {
            dsn: true,
            notify: Notify {
                success: false,
                failure: true,
                delay: true,
            },
            return_path: None,
            read_receipts: false,
        }
    }
}

/// `[mailbox]`, validated.
#[derive(Debug, Clone)]
pub struct MailboxSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: PasswordSource,
    pub ca_file: Option<PathBuf>,
    /// Where reports are looked for.
    pub folder: String,
    /// Where sent letters are filed, when set.
    pub sent_folder: Option<String>,
    pub timeout: std::time::Duration,
}

/// The IMAP port that goes with a kind of security (RFC 8314: 993 implicit TLS, 143 otherwise).
pub fn imap_default_port(security: Security) -> u16 {
    match security {
        Security::Tls => 993,
        Security::StartTls | Security::None => 143,
    }
}

impl TrackingSection {
    pub fn settings(&self, display: &Path) -> Result<TrackingSettings, Vec<Problem>> {
        let mut problems = Vec::new();
        let at = |key: &str| Location::file(display).setting("tracking", key);
        let mut settings = TrackingSettings::default();
        if let Some(dsn) = self.dsn {
            settings.dsn = dsn;
        }
        if let Some(read_receipts) = self.read_receipts {
            settings.read_receipts = read_receipts;
        }
        if let Some(words) = &self.notify {
            let mut notify = Notify::default();
            let mut never = false;
            for word in words {
                match word.trim().to_ascii_lowercase().as_str() {
                    "success" => notify.success = true,
                    "failure" => notify.failure = true,
                    "delay" => notify.delay = true,
                    "never" => never = true,
                    other => problems.push(Problem::new(
                        at("notify"),
                        format!(
                            "\"{other}\" is not one of \"success\", \"failure\", \"delay\" or \"never\""
                        ),
                    )),
                }
            }
            if never && notify != Notify::default() {
                problems.push(Problem::new(
                    at("notify"),
                    "\"never\" cannot be combined with other values; use [\"never\"] alone, or list what to be told about",
                ));
            }
            settings.notify = notify;
        }
        if let Some(text) = &self.return_path {
            match ReturnPath::parse(text) {
                Ok(path) => settings.return_path = Some(path),
                Err(e) => problems.push(Problem::new(at("return_path"), e.to_string())),
            }
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

impl MailboxSection {
    /// The mailbox settings. `smtp_password_command` is the fallback password source.
    pub fn settings(
        &self,
        smtp_password_command: Option<&PasswordCommand>,
        display: &Path,
    ) -> Result<MailboxSettings, Vec<Problem>> {
        let mut problems = Vec::new();
        let at = |key: &str| Location::file(display).setting("mailbox", key);
        let security = match self.security.as_deref() {
            None => Security::Tls,
            Some(text) => text.parse().unwrap_or_else(|e: ValueError| {
                problems.push(Problem::new(at("security"), e.to_string()));
                Security::Tls
            }),
        };
        let host = self.host.as_deref().map(str::trim).unwrap_or_default();
        if host.is_empty() {
            problems.push(Problem::new(
                at("host"),
                "no IMAP server is set; add host = \"imap.your-office.example\" under [mailbox]",
            ));
        }
        if security == Security::None && !host.is_empty() && !is_loopback(host) {
            problems.push(Problem::new(
                at("security"),
                format!(
                    "security = \"none\" would send the mailbox password unencrypted, so it is allowed only for a server on this machine (127.0.0.1, ::1, localhost), not \"{host}\"; use \"tls\" or \"starttls\""
                ),
            ));
        }
        let port = self.port.unwrap_or_else(|| imap_default_port(security));
        if port == 0 {
            problems.push(Problem::new(at("port"), "port 0 is not a valid port"));
        }
        let username = self.username.as_deref().map(str::trim).unwrap_or_default();
        if username.is_empty() {
            problems.push(Problem::new(
                at("username"),
                "no user name is set; add username = \"office@your-office.example\" under [mailbox]",
            ));
        }
        let folder = self.folder.as_deref().unwrap_or("INBOX");
        for (key, value) in [
            ("folder", Some(folder)),
            ("sent_folder", self.sent_folder.as_deref()),
        ] {
            if let Some(value) = value
                && let Err(e) = check_folder_name(value)
            {
                problems.push(Problem::new(at(key), e.to_string()));
            }
        }
        let timeout = self.timeout.unwrap_or(super::DEFAULT_TIMEOUT_SECS);
        if timeout == 0 {
            problems.push(Problem::new(
                at("timeout"),
                "timeout = 0 would wait forever for a dead server; use a number of seconds such as 60",
            ));
        }
        if let Some(Err(e)) = self.password_command.as_ref().map(PasswordCommand::words) {
            problems.push(Problem::new(at("password_command"), e.to_string()));
        }
        let password = PasswordSource::detect_imap(self.password_command.as_ref())
            .unwrap_or_else(|| PasswordSource::detect(smtp_password_command));
        if problems.is_empty() {
            Ok(MailboxSettings {
                host: host.to_owned(),
                port,
                security,
                username: username.to_owned(),
                password,
                ca_file: self.ca_file.clone(),
                folder: folder.to_owned(),
                sent_folder: self.sent_folder.clone(),
                timeout: std::time::Duration::from_secs(timeout),
            })
        } else {
            Err(problems)
        }
    }
}

/// A folder name envoi can put in an IMAP command as a quoted string.
fn check_folder_name(name: &str) -> Result<(), FolderNameError> {
    if name.trim().is_empty() {
        return Err(FolderNameError::Empty);
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(FolderNameError::Unquotable(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("envoi.toml")).unwrap()
    }

    fn tracking(text: &str) -> Result<TrackingSettings, Vec<String>> {
        config(text)
            .tracking
            .settings(Path::new("envoi.toml"))
            .map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    fn mailbox(text: &str) -> Result<MailboxSettings, Vec<String>> {
        config(text)
            .mailbox
            .unwrap_or_default()
            .settings(None, Path::new("envoi.toml"))
            .map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn tracking_defaults_ask_for_failures_and_delays() {
        let t = tracking("").unwrap();
        assert!(t.dsn && !t.read_receipts && t.return_path.is_none());
        assert_eq!(t.notify.parameter(), "FAILURE,DELAY");
        let t = tracking("[tracking]\nnotify = [\"success\", \"failure\"]\n").unwrap();
        assert_eq!(t.notify.parameter(), "SUCCESS,FAILURE");
        let t = tracking("[tracking]\nnotify = [\"never\"]\n").unwrap();
        assert_eq!(t.notify.parameter(), "NEVER");
    }

    #[test]
    fn bad_tracking_values_name_section_and_key() {
        let problems =
            tracking("[tracking]\nnotify = [\"sucess\"]\nreturn_path = \"bounces\"\n").unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("envoi.toml, [tracking] notify: \"sucess\" is not one of"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with(
                "envoi.toml, [tracking] return_path: \"bounces\" is not an email address"
            ),
            "{problems:?}"
        );
        let problems = tracking("[tracking]\nnotify = [\"never\", \"delay\"]\n").unwrap_err();
        assert!(problems[0].contains("cannot be combined"), "{problems:?}");
        let problems = tracking("[tracking]\nreturn_path = \"b@{token}.example\"\n").unwrap_err();
        assert!(problems[0].contains("in its domain"), "{problems:?}");
        let err =
            Config::parse("[tracking]\ndsn = \"yes\"\n", Path::new("envoi.toml")).unwrap_err();
        assert!(err.to_string().starts_with("envoi.toml, line 2"), "{err}");
    }

    #[test]
    fn a_token_in_the_return_path_makes_it_per_letter() {
        let t = tracking("[tracking]\nreturn_path = \"bounces+{token}@office.example\"\n").unwrap();
        let path = t.return_path.unwrap();
        assert!(path.is_per_letter());
        assert_eq!(
            path.for_token("00ff").unwrap().to_string(),
            "bounces+00ff@office.example"
        );
        let t = tracking("[tracking]\nreturn_path = \"bounces@office.example\"\n").unwrap();
        assert!(!t.return_path.unwrap().is_per_letter());
    }

    #[test]
    fn mailbox_defaults_and_ports() {
        let m = mailbox("[mailbox]\nhost = \"imap.example\"\nusername = \"u\"\n").unwrap();
        assert_eq!(
            (m.port, m.security, m.folder.as_str()),
            (993, Security::Tls, "INBOX")
        );
        assert_eq!(m.sent_folder, None);
        let m = mailbox(
            "[mailbox]\nhost = \"127.0.0.1\"\nusername = \"u\"\nsecurity = \"none\"\nsent_folder = \"Sent\"\n",
        )
        .unwrap();
        assert_eq!((m.port, m.sent_folder.as_deref()), (143, Some("Sent")));
    }

    #[test]
    fn bad_mailbox_values_name_section_and_key() {
        let problems = mailbox(
            "[mailbox]\nhost = \"imap.example\"\nsecurity = \"none\"\nfolder = \"a\\\"b\"\ntimeout = 0\n",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems[0].starts_with("envoi.toml, [mailbox] security: security = \"none\""),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("envoi.toml, [mailbox] username:"),
            "{problems:?}"
        );
        assert!(
            problems[2].starts_with("envoi.toml, [mailbox] folder:"),
            "{problems:?}"
        );
        assert!(
            problems[3].starts_with("envoi.toml, [mailbox] timeout:"),
            "{problems:?}"
        );
        let problems = mailbox("[mailbox]\nsecurity = \"ssl3\"\nusername = \"u\"\n").unwrap_err();
        assert!(
            problems[0].starts_with("envoi.toml, [mailbox] security:"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("envoi.toml, [mailbox] host: no IMAP server"),
            "{problems:?}"
        );
    }
}
