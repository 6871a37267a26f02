//! `envoi.toml`: the sender, the SMTP relay and the sending policy.
//!
//! The file holds no secrets (see [`crate::secret`]). Every `[smtp]` key can be overridden from
//! the command line or an `ENVOI_SMTP_*` variable; [`SmtpOverrides`] carries those, and
//! [`Config::smtp_settings`] applies them in the order flag > environment > file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Location, Problem};
use crate::secret::{PasswordCommand, PasswordSource};

/// A section naming a server envoi logs in to (`[smtp]`, `[mailbox]`): the keys both share,
/// then the section's own. A macro rather than a `#[serde(flatten)]` struct because flatten
/// drops `deny_unknown_fields`'s list of expected keys and the key's line and column from
/// toml's messages, which users need to find a typo.
macro_rules! server_section {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $type:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub host: Option<String>,
            pub port: Option<u16>,
            pub security: Option<String>,
            pub username: Option<String>,
            /// A string split like a shell command line, or a list of words (for Windows paths).
            pub password_command: Option<PasswordCommand>,
            pub ca_file: Option<PathBuf>,
            $($(#[$field_meta])* pub $field: $type,)*
        }
    };
}

pub mod tracking;

/// `envoi.toml` as written. Unknown keys are errors: a typo must not silently change behaviour.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub campaign: CampaignSection,
    #[serde(default)]
    pub sender: SenderSection,
    #[serde(default)]
    pub smtp: SmtpSection,
    #[serde(default)]
    pub send: SendSection,
    /// Delivery reports: DSN, return path, read receipts (see [`tracking`]).
    #[serde(default)]
    pub tracking: tracking::TrackingSection,
    /// The IMAP mailbox for reports and the Sent copy; absent means no mailbox.
    pub mailbox: Option<tracking::MailboxSection>,
    #[serde(default)]
    pub signing: SigningSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSection {
    /// Names the campaign in every Message-ID, so that IDs stay stable across runs.
    pub id: Option<String>,
    /// Folders outside the campaign folder that attachments may come from.
    #[serde(default)]
    pub attachment_dirs: Vec<PathBuf>,
    /// The recipients file (`.csv`, `.xlsx`, `.xls`, `.ods`) when `--recipients` names none.
    pub recipients: Option<PathBuf>,
    /// The sheet of a spreadsheet to read; default: the first.
    pub sheet: Option<String>,
    /// What a CSV file without a BOM is in when it is not UTF-8 (a WHATWG label).
    pub encoding: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSection {
    pub from: Option<String>,
    pub reply_to: Option<String>,
}

server_section! {
    /// `[smtp]` as written.
    pub struct SmtpSection {
        /// `plain`, `login` or `xoauth2`; default: whatever the relay offers of plain and login.
        pub auth: Option<String>,
        /// Seconds to wait for any one reply from the relay.
        pub timeout: Option<u64>,
        /// The name envoi gives itself in EHLO; default: this machine's host name.
        pub hello_name: Option<String>,
    }
}

/// `[signing]`: S/MIME and DKIM keys (see [`crate::signing`]). Paths are relative to the
/// campaign folder; the PKCS#12 password comes from `ENVOI_SMIME_PASSWORD` or
/// `password_command`, never from this file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSection {
    /// A PKCS#12 file (.p12/.pfx) with the S/MIME key and certificate chain.
    pub smime: Option<PathBuf>,
    /// Instead of `smime`: a PEM certificate file (the holder's certificate, then its chain)...
    pub smime_cert: Option<PathBuf>,
    /// ...and its PEM private key (unencrypted).
    pub smime_key: Option<PathBuf>,
    /// Prints the PKCS#12 password (run without a shell, first line of its output).
    pub password_command: Option<PasswordCommand>,
    pub dkim_domain: Option<String>,
    pub dkim_selector: Option<String>,
    /// An RSA or Ed25519 private key, PEM.
    pub dkim_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendSection {
    #[serde(default)]
    pub rate: Option<String>,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The wait before the first retry, doubled for each further one: "2s", "500ms", "1min".
    #[serde(default)]
    pub retry_delay: Option<String>,
}

impl Default for SendSection {
    fn default() -> Self {
        SendSection {
            rate: None,
            concurrency: default_concurrency(),
            max_attempts: default_max_attempts(),
            retry_delay: None,
        }
    }
}

fn default_concurrency() -> usize {
    4
}

fn default_max_attempts() -> u32 {
    5
}

/// Most relays cut idle clients after a few minutes and answer within seconds; a minute covers
/// a slow relay without letting a dead one stall the run.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
pub const MAX_CONCURRENCY: usize = 64;
pub const MAX_ATTEMPTS: u32 = 20;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Implicit TLS from the first byte (usually port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS before anything else (usually port 587).
    StartTls,
    /// No encryption: allowed only to a loopback relay, and never with a password.
    None,
}

impl Security {
    pub fn default_port(self) -> u16 {
        match self {
            Security::Tls => 465,
            Security::StartTls => 587,
            Security::None => 25,
        }
    }
}

/// A setting's value that envoi cannot read; the caller adds where it was (envoi.toml, a flag or
/// an `ENVOI_SMTP_*` variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("security \"{0}\" is not one of \"tls\", \"starttls\" or \"none\"")]
    Security(String),
    #[error("auth \"{0}\" is not one of \"plain\", \"login\" or \"xoauth2\"")]
    Auth(String),
    #[error(
        "rate \"{0}\" is not of the form COUNT/PERIOD, e.g. \"30/min\", \"5/s\", \"1000/h\" (or \"unlimited\")"
    )]
    RateForm(String),
    #[error("rate \"{0}\" allows no message at all; use at least 1")]
    RateZero(String),
    #[error("\"{0}\" is not a duration such as \"500ms\", \"2s\" or \"1min\"")]
    Duration(String),
}

impl FromStr for Security {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" | "ssl" | "implicit" => Ok(Security::Tls),
            "starttls" => Ok(Security::StartTls),
            "none" | "plain" => Ok(Security::None),
            other => Err(ValueError::Security(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
            Security::None => "none",
        })
    }
}

/// At most `count` messages per `per`. Sends are spaced evenly, `per / count` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// The spacing between two sends.
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

impl FromStr for Rate {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || ValueError::RateForm(s.to_owned());
        let (count, period) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(ValueError::RateZero(s.to_owned()));
        }
        let per = match period.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "m" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        Ok(Rate { count, per })
    }
}

/// Parses the `rate` setting: `None` means no limit.
pub fn parse_rate(value: Option<&str>) -> Result<Option<Rate>, ValueError> {
    match value.map(str::trim) {
        None | Some("unlimited") | Some("none") | Some("") => Ok(None),
        Some(v) => v.parse().map(Some),
    }
}

/// `[smtp]` values given on the command line or in `ENVOI_SMTP_*` variables.
#[derive(Debug, Clone, Default)]
pub struct SmtpOverrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub security: Option<String>,
    pub username: Option<String>,
}

/// The relay settings after overrides and defaults, validated.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: PasswordSource,
    pub ca_file: Option<PathBuf>,
    pub auth: Option<AuthMechanism>,
    pub timeout: Duration,
    pub hello_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    Plain,
    Login,
    Xoauth2,
}

impl FromStr for AuthMechanism {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "plain" => Ok(AuthMechanism::Plain),
            "login" => Ok(AuthMechanism::Login),
            "xoauth2" => Ok(AuthMechanism::Xoauth2),
            other => Err(ValueError::Auth(other.to_owned())),
        }
    }
}

/// The sending policy, validated.
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    pub rate: Option<Rate>,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_delay: Duration,
}

/// Two seconds: long enough for a greylisting or busy relay, short enough not to stall a run.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Parses "500ms", "2s", "1min", "1h".
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || ValueError::Duration(text.to_owned());
    let n: u64 = number.parse().map_err(|_| bad())?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "min" | "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(bad()),
    }
}

/// A "did you mean" for the TOML reader's "unknown field `prot`, expected one of `host`,
/// `port`, ..." (the only place that lists the keys a section takes), in envoi.toml and in a
/// letter's front matter.
pub(crate) fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, expected) = rest.split_once('`')?;
    let keys = expected.split('`').skip(1).step_by(2);
    let near = crate::text::nearest(key, keys)?;
    Some(format!("; did you mean `{near}`?"))
}

impl Config {
    /// Reads and parses `envoi.toml`. `display` names the file in messages.
    pub fn load(path: &Path, display: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::input(
                Location::file(display),
                "not found; run `envoi init` to create a campaign, or name the file with --config",
            ),
            std::io::ErrorKind::InvalidData => Error::input(
                Location::file(display),
                "is not UTF-8 text; save it as UTF-8",
            ),
            _ => Error::io(display, "cannot read", e),
        })?;
        Self::parse(&text, display)
    }

    /// Parses `envoi.toml` text; a syntax error or unknown key names its line and column.
    pub fn parse(text: &str, display: &Path) -> Result<Config, Error> {
        toml::from_str(text).map_err(|e| {
            let mut location = Location::file(display);
            if let Some(span) = e.span() {
                let (line, col) = line_col(text, span.start);
                location = location.line(line).col(col);
            }
            let mut message = e.message().trim().to_owned();
            if let Some(hint) = unknown_key_hint(&message) {
                message.push_str(&hint);
            }
            if message.contains("escape") {
                // Nearly always a Windows path in a "double-quoted" string.
                message.push_str(
                    "; in a \"double-quoted\" TOML string a backslash starts an escape: write a \
                     Windows path in 'single quotes' ('C:\\Tools\\pw.exe') or with forward \
                     slashes",
                );
            }
            Error::input(location, message)
        })
    }

    /// The relay settings, with overrides applied. Every problem is listed, not just the first.
    pub fn smtp_settings(
        &self,
        overrides: &SmtpOverrides,
        display: &Path,
    ) -> Result<SmtpSettings, Vec<Problem>> {
        let mut problems = Vec::new();
        let at = |key: &str| Location::file(display).setting("smtp", key);
        let smtp = &self.smtp;

        let security_text = overrides
            .security
            .clone()
            .or_else(|| smtp.security.clone())
            .unwrap_or_else(|| "starttls".into());
        let security = security_text.parse().unwrap_or_else(|e: ValueError| {
            problems.push(Problem::new(at("security"), e.to_string()));
            Security::StartTls
        });
        let host = overrides
            .host
            .clone()
            .or_else(|| smtp.host.clone())
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        if host.is_empty() {
            problems.push(Problem::new(
                at("host"),
                "no SMTP relay is set; add host = \"smtp.your-office.example\" under [smtp], or pass --smtp-host",
            ));
        }
        let port = overrides
            .port
            .or(smtp.port)
            .unwrap_or_else(|| security.default_port());
        if port == 0 {
            problems.push(Problem::new(at("port"), "port 0 is not a valid port"));
        }
        let username = overrides
            .username
            .clone()
            .or_else(|| smtp.username.clone())
            .filter(|u| !u.trim().is_empty());
        if let Some(Err(e)) = smtp.password_command.as_ref().map(PasswordCommand::words) {
            problems.push(Problem::new(at("password_command"), e.to_string()));
        }
        let password = PasswordSource::detect(smtp.password_command.as_ref());
        if security == Security::None {
            if username.is_some() {
                problems.push(Problem::new(
                    at("security"),
                    "security = \"none\" sends the password unencrypted, so envoi refuses to log in; use \"starttls\" or \"tls\", or remove username",
                ));
            }
            if !host.is_empty() && !is_loopback(&host) {
                problems.push(Problem::new(
                    at("security"),
                    format!(
                        "security = \"none\" is allowed only for a relay on this machine (127.0.0.1, ::1, localhost), not \"{host}\"; use \"starttls\" or \"tls\""
                    ),
                ));
            }
        }
        let auth = smtp.auth.as_deref().and_then(|a| {
            a.parse()
                .map_err(|e: ValueError| problems.push(Problem::new(at("auth"), e.to_string())))
                .ok()
        });
        let timeout = smtp.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout == 0 {
            problems.push(Problem::new(
                at("timeout"),
                "timeout = 0 would wait forever for a dead relay; use a number of seconds such as 60",
            ));
        }
        if problems.is_empty() {
            Ok(SmtpSettings {
                host,
                port,
                security,
                username,
                password,
                ca_file: smtp.ca_file.clone(),
                auth,
                timeout: Duration::from_secs(timeout),
                hello_name: smtp.hello_name.clone(),
            })
        } else {
            Err(problems)
        }
    }

    /// The `[send]` policy, validated.
    pub fn send_policy(&self, display: &Path) -> Result<SendPolicy, Vec<Problem>> {
        let mut problems = Vec::new();
        let at = |key: &str| Location::file(display).setting("send", key);
        let send = &self.send;
        let rate = parse_rate(send.rate.as_deref()).unwrap_or_else(|e| {
            problems.push(Problem::new(at("rate"), e.to_string()));
            None
        });
        if send.concurrency == 0 || send.concurrency > MAX_CONCURRENCY {
            problems.push(Problem::new(
                at("concurrency"),
                format!(
                    "concurrency = {} is out of range; use 1 to {MAX_CONCURRENCY} connections (most relays allow 2 to 10)",
                    send.concurrency
                ),
            ));
        }
        if send.max_attempts == 0 || send.max_attempts > MAX_ATTEMPTS {
            problems.push(Problem::new(
                at("max_attempts"),
                format!(
                    "max_attempts = {} is out of range; use 1 to {MAX_ATTEMPTS}",
                    send.max_attempts
                ),
            ));
        }
        let retry_delay = match send.retry_delay.as_deref() {
            None => DEFAULT_RETRY_DELAY,
            Some(text) => parse_duration(text).unwrap_or_else(|e| {
                problems.push(Problem::new(at("retry_delay"), e.to_string()));
                DEFAULT_RETRY_DELAY
            }),
        };
        if problems.is_empty() {
            Ok(SendPolicy {
                rate,
                concurrency: send.concurrency,
                max_attempts: send.max_attempts,
                retry_delay,
            })
        } else {
            Err(problems)
        }
    }
}

/// True for hosts that cannot leave this machine: loopback IPs and `localhost`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Error> {
        Config::parse(text, Path::new("envoi.toml"))
    }

    #[test]
    fn rate_spacing_is_exact() {
        let r: Rate = "30/min".parse().unwrap();
        assert_eq!(r.interval(), Duration::from_secs(2));
        let r: Rate = "4/s".parse().unwrap();
        assert_eq!(r.interval(), Duration::from_millis(250));
        assert_eq!(parse_rate(Some("unlimited")).unwrap(), None);
        let zero = parse_rate(Some("0/s")).unwrap_err();
        assert_eq!(zero, ValueError::RateZero("0/s".into()));
        assert!(zero.to_string().contains("at least 1"));
        let fast = parse_rate(Some("fast")).unwrap_err();
        assert!(fast.to_string().contains("COUNT/PERIOD"), "{fast}");
    }

    #[test]
    fn smtp_and_mailbox_share_their_server_keys_and_list_their_own_for_a_typo() {
        let config = parse(
            "[smtp]\nhost = \"smtp.example\"\nusername = \"u\"\n\n[mailbox]\nhost = \"imap.example\"\nport = 993\nsecurity = \"tls\"\n",
        )
        .unwrap();
        assert_eq!(config.smtp.host.as_deref(), Some("smtp.example"));
        let mailbox = config.mailbox.unwrap();
        assert_eq!(
            (mailbox.host.as_deref(), mailbox.port),
            (Some("imap.example"), Some(993))
        );
        let err = parse("[mailbox]\nhost = \"x\"\nfoldr = \"INBOX\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("envoi.toml, line 3, column 1:"), "{err}");
        assert!(
            err.contains("`ca_file`, `folder`, `sent_folder`, `timeout`"),
            "{err}"
        );
        assert!(err.contains("did you mean `folder`?"), "{err}");
        let err = parse("[smtp]\nhelo_name = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`ca_file`, `auth`, `timeout`, `hello_name`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = parse("[smtp]\nhost = \"x\"\nprot = 25\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("envoi.toml, line 3, column 1:"), "{text}");
        assert!(text.contains("prot"), "{text}");
        assert!(text.ends_with("; did you mean `port`?"), "{text}");
        assert_eq!(err.exit_code(), 2);
        let err = parse("[smtp]\nhots = \"x\"\nrandom = 1\n").unwrap_err();
        assert!(err.to_string().ends_with("did you mean `host`?"), "{err}");
        let err = parse("[smtp]\nxyzzy = 1\n").unwrap_err();
        assert!(!err.to_string().contains("did you mean"), "{err}");
    }

    #[test]
    fn a_windows_path_in_double_quotes_gets_a_hint() {
        let err = parse("[smtp]\nca_file = \"C:\\Certs\\ca.pem\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("envoi.toml, line 2, column"), "{text}");
        assert!(text.contains("in 'single quotes'"), "{text}");
        let config = parse("[smtp]\npassword_command = ['C:\\Tools\\pw.exe', 'smtp']\n").unwrap();
        assert_eq!(
            config.smtp.password_command.unwrap().words().unwrap(),
            ["C:\\Tools\\pw.exe", "smtp"]
        );
        let err = parse("[smtp]\npassword_command = 7\n").unwrap_err();
        assert!(err.to_string().contains("a list of words"), "{err}");
    }

    #[test]
    fn syntax_error_names_line() {
        let err = parse("[sender]\nfrom = \"unterminated\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn overrides_beat_the_file_and_ports_follow_security() {
        let config = parse("[smtp]\nhost = \"smtp.example\"\nsecurity = \"tls\"\n").unwrap();
        let s = config
            .smtp_settings(&SmtpOverrides::default(), Path::new("envoi.toml"))
            .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("smtp.example", 465, Security::Tls)
        );
        let o = SmtpOverrides {
            host: Some("127.0.0.1".into()),
            port: Some(2525),
            security: Some("none".into()),
            username: None,
        };
        let s = config.smtp_settings(&o, Path::new("envoi.toml")).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("127.0.0.1", 2525, Security::None)
        );
    }

    #[test]
    fn plaintext_is_refused_off_loopback_and_with_a_password() {
        let config =
            parse("[smtp]\nhost = \"smtp.example\"\nsecurity = \"none\"\nusername = \"u\"\n")
                .unwrap();
        let problems = config
            .smtp_settings(&SmtpOverrides::default(), Path::new("envoi.toml"))
            .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].to_string().contains("refuses to log in"));
        assert!(
            problems[1]
                .to_string()
                .contains("only for a relay on this machine")
        );
    }

    #[test]
    fn loopback_detection() {
        for h in ["127.0.0.1", "localhost", "::1", "[::1]", "127.5.5.5"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1", "smtp.example", "localhost.example"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn send_policy_bounds() {
        let config = parse("[send]\nconcurrency = 0\nmax_attempts = 99\nrate = \"x\"\n").unwrap();
        let problems = config.send_policy(Path::new("envoi.toml")).unwrap_err();
        assert_eq!(problems.len(), 3);
        let config = parse("").unwrap();
        let p = config.send_policy(Path::new("envoi.toml")).unwrap();
        assert_eq!((p.concurrency, p.max_attempts, p.rate), (4, 5, None));
    }
}
