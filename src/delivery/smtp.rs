//! One SMTP session with the relay: connect, secure, authenticate, then one transaction per
//! message, each classified as SPEC's "Sending" requires.
//!
//! lettre's high-level transport fails a whole message on any refused recipient and cannot
//! tell "lost before the data was handed over" (safe to retry) from "lost after" (delivery
//! unknown), so this drives lettre's low-level [`SmtpConnection`] step by step.

use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use crate::compose::Composed;
use crate::config::{AuthMechanism, Security, SmtpSettings};
use crate::secret::Secret;

/// A reply from the relay, as the delivery log shows it: `250 2.0.0` and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl Reply {
    fn from_response(response: &Response) -> Reply {
        let code = response.code().to_string().parse().unwrap_or(0);
        Self::from_parts(code, &response.message().collect::<Vec<_>>().join(" "))
    }

    /// Builds a reply from a code and text such as `5.1.1 user unknown`.
    pub fn from_parts(code: u16, text: &str) -> Reply {
        let text = text.trim();
        let (enhanced, rest) = match text.split_once(' ') {
            Some((first, rest)) if is_enhanced_status(first) => (Some(first.to_owned()), rest),
            _ if is_enhanced_status(text) => (Some(text.to_owned()), ""),
            _ => (None, text),
        };
        Reply {
            code,
            enhanced,
            text: rest.trim().to_owned(),
        }
    }

    /// The `code` column of the delivery log.
    pub fn code_column(&self) -> String {
        match &self.enhanced {
            Some(e) => format!("{} {e}", self.code),
            None => self.code.to_string(),
        }
    }

    /// True for a reply that means no further message can go out in this run.
    pub fn stops_the_run(&self) -> bool {
        if matches!(self.code, 530 | 534 | 535 | 538 | 454) && self.is_auth_related() {
            return true;
        }
        let text = self.text.to_ascii_lowercase();
        let mailbox_full =
            self.enhanced.as_deref() == Some("5.2.2") || self.enhanced.as_deref() == Some("4.2.2");
        !mailbox_full
            && (self.code >= 400)
            && (text.contains("quota")
                || text.contains("limit exceeded")
                || text.contains("sending limit")
                || text.contains("too many messages"))
    }

    fn is_auth_related(&self) -> bool {
        self.code != 454
            || self
                .enhanced
                .as_deref()
                .is_some_and(|e| e.ends_with(".7.0") || e.ends_with(".7.8"))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code_column(), self.text)
    }
}

fn is_enhanced_status(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// What happened to one message in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The relay took the message. `refused` lists Cc/Bcc addresses it would not take.
    Accepted {
        reply: Reply,
        refused: Vec<(Address, Reply)>,
    },
    /// Not handed over; worth another try on a fresh connection.
    Transient {
        reply: Option<Reply>,
        reason: String,
    },
    /// Refused for good.
    Permanent { reply: Reply },
    /// The data went out but no answer came back: it may or may not have been delivered.
    Unknown { reason: String },
    /// No further message can go out in this run (authentication, quota, TLS trust).
    Fatal {
        reply: Option<Reply>,
        reason: String,
    },
}

/// How to reach the relay; shared by every worker.
pub struct Relay {
    settings: SmtpSettings,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    mechanisms: Vec<Mechanism>,
    hello: ClientId,
}

impl Relay {
    /// Prepares TLS parameters and credentials. Errors are for the user, without the secret.
    pub fn new(settings: &SmtpSettings, secret: Option<Secret>) -> Result<Relay, String> {
        let tls = match settings.security {
            Security::None => None,
            Security::Tls | Security::StartTls => Some(tls_parameters(settings)?),
        };
        let credentials = match (&settings.username, secret) {
            (Some(user), Some(secret)) => {
                Some(Credentials::new(user.clone(), secret.expose().to_owned()))
            }
            (Some(user), None) => {
                return Err(format!(
                    "username \"{user}\" is set but no password: set ENVOI_SMTP_PASSWORD or password_command in [smtp]"
                ));
            }
            (None, _) => None,
        };
        let mechanisms = match settings.auth {
            Some(AuthMechanism::Plain) => vec![Mechanism::Plain],
            Some(AuthMechanism::Login) => vec![Mechanism::Login],
            Some(AuthMechanism::Xoauth2) => vec![Mechanism::Xoauth2],
            None => vec![Mechanism::Plain, Mechanism::Login],
        };
        let hello = match &settings.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        Ok(Relay {
            settings: settings.clone(),
            tls,
            credentials,
            mechanisms,
            hello,
        })
    }

    /// `host:port (security)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}:{} ({})",
            self.settings.host, self.settings.port, self.settings.security
        )
    }

    /// Opens a session: greeting, EHLO, TLS, AUTH. Failures are classified like a message
    /// attempt, so the caller retries or stops in one place.
    pub fn connect(&self) -> Result<Session, Attempt> {
        let implicit = match self.settings.security {
            Security::Tls => self.tls.as_ref(),
            _ => None,
        };
        let timeout = Some(self.settings.timeout);
        let mut conn = SmtpConnection::connect(
            (self.settings.host.as_str(), self.settings.port),
            timeout,
            &self.hello,
            implicit,
            None,
        )
        .map_err(|e| self.connect_failure(&e, "connecting to"))?;

        if self.settings.security == Security::StartTls {
            let tls = self.tls.as_ref().expect("starttls has TLS parameters");
            if !conn.server_info().supports_feature(Extension::StartTls) {
                conn.abort();
                return Err(Attempt::Fatal {
                    reply: None,
                    reason: format!(
                        "the relay {} does not offer STARTTLS, so the connection cannot be encrypted; envoi will not send in the clear (check the port, or use security = \"tls\")",
                        self.describe()
                    ),
                });
            }
            conn.starttls(tls, &self.hello)
                .map_err(|e| self.connect_failure(&e, "starting TLS with"))?;
        }

        if let Some(credentials) = &self.credentials
            && let Err(e) = conn.auth(&self.mechanisms, credentials)
        {
            conn.abort();
            return Err(match e.status() {
                Some(_) if e.is_transient() && !auth_refused(&e) => Attempt::Transient {
                    reply: reply_of(&e),
                    reason: format!(
                        "the relay could not log in just now: {}",
                        describe_error(&e)
                    ),
                },
                _ => Attempt::Fatal {
                    reply: reply_of(&e),
                    reason: format!(
                        "the relay refused to log in as \"{}\": {}; check the user name and password",
                        self.settings.username.as_deref().unwrap_or(""),
                        describe_error(&e)
                    ),
                },
            });
        }
        Ok(Session { conn })
    }

    fn connect_failure(&self, e: &lettre::transport::smtp::Error, doing: &str) -> Attempt {
        if let Some(tls) = tls_cause(e) {
            // Trust problems do not fix themselves; retrying would only hide them.
            return Attempt::Fatal {
                reply: None,
                reason: format!(
                    "{doing} the relay {} failed: {}",
                    self.describe(),
                    tls_problem(tls, &self.settings.host)
                ),
            };
        }
        let reason = format!(
            "{doing} the relay {} failed: {}",
            self.describe(),
            describe_error(e)
        );
        if e.is_tls() {
            // Trust problems do not fix themselves; retrying would only hide them.
            Attempt::Fatal {
                reply: None,
                reason: format!(
                    "{reason}. The relay's certificate could not be verified; if the relay uses a private CA, name it with ca_file in [smtp]"
                ),
            }
        } else if e.is_permanent() {
            Attempt::Fatal {
                reply: reply_of(e),
                reason,
            }
        } else {
            Attempt::Transient {
                reply: reply_of(e),
                reason,
            }
        }
    }
}

/// The TLS failure behind a lettre error, if that is what it is. rustls shakes hands at the
/// first read or write, so lettre reports a refused certificate as a network error with the
/// rustls error inside an `io::Error`.
fn tls_cause(e: &lettre::transport::smtp::Error) -> Option<&rustls::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let inside_io = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(tls) = cause.downcast_ref::<rustls::Error>().or(inside_io) {
            return Some(tls);
        }
        source = cause.source();
    }
    None
}

/// A TLS failure in words, with what to do about it.
fn tls_problem(tls: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as Cert;
    let rustls::Error::InvalidCertificate(cert) = tls else {
        return format!("TLS could not be set up ({tls})");
    };
    let private_ca = "if the relay uses a private CA, name it with ca_file in [smtp]";
    match cert {
        Cert::Expired | Cert::ExpiredContext { .. } => {
            "the relay's certificate has expired; ask the relay's administrator to renew it"
                .to_owned()
        }
        Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
            "the relay's certificate is not valid yet; check this computer's date and time"
                .to_owned()
        }
        Cert::NotValidForName | Cert::NotValidForNameContext { .. } => format!(
            "the relay's certificate is not issued for \"{host}\"; set host in [smtp] to the name the relay's certificate gives"
        ),
        Cert::UnknownIssuer
        | Cert::BadSignature
        | Cert::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the relay's certificate could not be verified: no authority this computer trusts signed it; {private_ca}"
        ),
        other => format!("the relay's certificate could not be verified ({other:?}); {private_ca}"),
    }
}

fn auth_refused(e: &lettre::transport::smtp::Error) -> bool {
    reply_of(e).is_some_and(|r| matches!(r.code, 535 | 530 | 534 | 538))
}

/// A relay reply carried by a lettre error, if there was one.
fn reply_of(e: &lettre::transport::smtp::Error) -> Option<Reply> {
    let code = e.status()?;
    let code: u16 = code.to_string().parse().ok()?;
    let text = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default();
    Some(Reply::from_parts(code, &text))
}

/// Whether the relay simply did not answer in time. lettre reports a socket read timeout as a
/// plain network error (`WouldBlock` on Unix, `TimedOut` on Windows), so look at the cause too.
fn is_timeout(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        {
            return true;
        }
        source = cause.source();
    }
    e.is_timeout()
}

/// A lettre error in words, with its cause.
fn describe_error(e: &lettre::transport::smtp::Error) -> String {
    if let Some(reply) = reply_of(e) {
        return reply.to_string();
    }
    if is_timeout(e) {
        return "no answer within the timeout".to_owned();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(settings.host.clone());
    if let Some(ca_file) = &settings.ca_file {
        let pem = std::fs::read(ca_file)
            .map_err(|e| format!("ca_file \"{}\" cannot be read: {e}", ca_file.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "ca_file \"{}\" is not a PEM certificate: {e}",
                ca_file.display()
            )
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("TLS cannot be set up: {e}"))
}

/// An open, authenticated connection.
pub struct Session {
    conn: SmtpConnection,
}

impl Session {
    /// One message: MAIL, RCPT for every address, DATA, then — after `before_data` has made the
    /// intent durable — the content. The connection stays usable after `Accepted` and
    /// `Permanent`; after anything else the caller drops it.
    pub fn send(
        &mut self,
        message: &Composed,
        before_data: impl FnOnce() -> Result<(), String>,
    ) -> Attempt {
        let mut params = Vec::new();
        if !message.bytes.is_ascii() {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if let Err(e) = self
            .conn
            .command(Mail::new(Some(message.from.email.clone()), params))
        {
            return self.refused_before_data(&e, "the relay refused the sender");
        }

        let mut refused = Vec::new();
        for (i, address) in message.envelope_recipients().enumerate() {
            if let Err(e) = self.conn.command(Rcpt::new(address.clone(), vec![])) {
                let main_recipient = i == 0;
                match reply_of(&e) {
                    // A refused Cc or Bcc does not stop the letter to the addressee.
                    Some(reply)
                        if e.is_permanent() && !main_recipient && !reply.stops_the_run() =>
                    {
                        refused.push((address.clone(), reply));
                    }
                    _ => {
                        return self.refused_before_data(
                            &e,
                            &format!("the relay refused the recipient {address}"),
                        );
                    }
                }
            }
        }

        if let Err(e) = self.conn.command(Data) {
            return self.refused_before_data(&e, "the relay refused to take the message");
        }
        if let Err(reason) = before_data() {
            // Nothing may go out that the log cannot record. Dropping the connection before the
            // final dot makes the relay discard the partial message.
            self.conn.abort();
            return Attempt::Fatal {
                reply: None,
                reason,
            };
        }
        let handed_over = match std::str::from_utf8(&message.bytes) {
            Ok(text) => self.conn.command(DataContent(text)),
            // Not reachable with lettre's formatting (text is UTF-8, attachments base64), but
            // lettre's own path is correct for any bytes, only slower.
            Err(_) => self.conn.message(&message.bytes),
        };
        match handed_over {
            Ok(response) => Attempt::Accepted {
                reply: Reply::from_response(&response),
                refused,
            },
            Err(e) => match reply_of(&e) {
                Some(reply) => classify_reply(reply, "the relay did not accept the message"),
                None => {
                    self.close_broken();
                    Attempt::Unknown {
                        reason: format!(
                            "the connection was lost after the letter was sent, before the relay confirmed it ({})",
                            describe_error(&e)
                        ),
                    }
                }
            },
        }
    }

    /// A failure before any data went out: safe to retry, unless the relay said no for good.
    fn refused_before_data(&mut self, e: &lettre::transport::smtp::Error, what: &str) -> Attempt {
        match reply_of(e) {
            Some(reply) => {
                let attempt = classify_reply(reply, what);
                if matches!(attempt, Attempt::Permanent { .. }) {
                    // Keep the connection for the next message.
                    if self.conn.command(Rset).is_err() {
                        self.conn.abort();
                    }
                } else {
                    self.conn.abort();
                }
                attempt
            }
            None => {
                self.close_broken();
                Attempt::Transient {
                    reply: None,
                    reason: format!("{what}: {}", describe_error(e)),
                }
            }
        }
    }

    /// Closes a connection that failed without a reply (lost, or the relay stopped answering).
    /// `abort` says QUIT and reads the answer; a relay that stopped answering would hold that
    /// for a whole `timeout` more, so the answer is waited for only briefly.
    fn close_broken(&mut self) {
        let _ = self.conn.set_timeout(Some(Duration::from_millis(10)));
        self.conn.abort();
    }

    /// Whether the connection can carry another message.
    pub fn is_usable(&self) -> bool {
        !self.conn.has_broken()
    }

    /// Says goodbye politely; errors do not matter any more.
    pub fn quit(mut self) {
        let _ = self.conn.quit();
    }

    /// The relay's greeting name, for `check --smtp`.
    pub fn server_name(&self) -> String {
        self.conn.server_info().name().to_owned()
    }

    pub fn is_encrypted(&self) -> bool {
        self.conn.is_encrypted()
    }
}

/// The message content of a DATA transaction, dot-stuffed and followed by the final `.` line,
/// written to the relay in ONE write.
///
/// lettre's `SmtpConnection::message` writes the content and the final `\r\n.\r\n` in two
/// writes, on a socket without `TCP_NODELAY` (which its blocking API cannot set). Nagle's
/// algorithm then holds the five-byte terminator until the relay acknowledges the content, and
/// the relay delays that acknowledgement (40 ms on Linux) because it is waiting for the rest:
/// every message cost 40 ms of idle wait, capping one connection at about 25 letters/s.
/// `SmtpConnection::command` writes its whole argument at once, then reads the reply exactly
/// as `message` does.
struct DataContent<'a>(&'a str);

impl std::fmt::Display for DataContent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // RFC 5321 4.5.2: a line that starts with "." gets one more. Byte for byte what
        // lettre's codec sends: lines are CRLF-terminated, and CRLF . CRLF always follows.
        let mut rest = self.0;
        if rest.starts_with('.') {
            f.write_str(".")?;
        }
        while let Some(at) = rest.find("\r\n.") {
            f.write_str(&rest[..at + 2])?;
            f.write_str(".")?;
            rest = &rest[at + 2..];
        }
        f.write_str(rest)?;
        f.write_str("\r\n.\r\n")
    }
}

fn classify_reply(reply: Reply, what: &str) -> Attempt {
    if reply.stops_the_run() {
        Attempt::Fatal {
            reason: format!(
                "{what}: {reply}; the run stops here (sending quota or authentication)"
            ),
            reply: Some(reply),
        }
    } else if (400..500).contains(&reply.code) {
        Attempt::Transient {
            reason: format!("{what}: {reply}"),
            reply: Some(reply),
        }
    } else {
        Attempt::Permanent { reply }
    }
}

/// What `check` can tell without contacting the relay: the TLS setup (CA file) works.
pub fn check_settings(settings: &SmtpSettings) -> Result<(), String> {
    if settings.security != Security::None {
        tls_parameters(settings)?;
    }
    Ok(())
}

/// `envoi check --smtp`: connect, secure, log in, quit. Returns a one-line description.
pub fn probe(settings: &SmtpSettings) -> Result<String, String> {
    let secret = settings.password.read()?;
    let relay = Relay::new(settings, secret)?;
    let session = relay.connect().map_err(|a| match a {
        Attempt::Fatal { reason, .. } | Attempt::Transient { reason, .. } => reason,
        other => format!("{other:?}"),
    })?;
    let summary = format!(
        "connected to {} ({}), {}{}",
        relay.describe(),
        session.server_name(),
        if session.is_encrypted() {
            "encrypted"
        } else {
            "NOT encrypted (loopback only)"
        },
        if settings.username.is_some() {
            ", logged in"
        } else {
            ", no login configured"
        }
    );
    session.quit();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_content_is_dot_stuffed_and_terminated_like_lettres() {
        let cases = [
            "Subject: x\r\n\r\n.hidden\r\nok\r\n..two\r\n",
            ".first\r\n.\r\nlast",
            "bare\n.lf is not a line start\r\n",
            "",
        ];
        assert_eq!(
            DataContent(cases[0]).to_string(),
            "Subject: x\r\n\r\n..hidden\r\nok\r\n...two\r\n\r\n.\r\n"
        );
        for case in cases {
            // What lettre's two-write path puts on the wire, as one string.
            let mut lettre = String::new();
            let mut line_start = true;
            for c in case.chars() {
                if line_start && c == '.' {
                    lettre.push('.');
                }
                lettre.push(c);
                line_start = c == '\n' && lettre.ends_with("\r\n");
            }
            lettre.push_str("\r\n.\r\n");
            assert_eq!(DataContent(case).to_string(), lettre, "{case:?}");
        }
    }

    #[test]
    fn replies_split_the_enhanced_status() {
        let r = Reply::from_parts(250, "2.0.0 Ok: queued as 4F2A1");
        assert_eq!(r.code_column(), "250 2.0.0");
        assert_eq!(r.text, "Ok: queued as 4F2A1");
        let r = Reply::from_parts(550, "mailbox unavailable");
        assert_eq!(r.code_column(), "550");
    }

    #[test]
    fn quota_and_auth_stop_the_run_but_a_full_mailbox_does_not() {
        assert!(Reply::from_parts(535, "5.7.8 Authentication credentials invalid").stops_the_run());
        assert!(Reply::from_parts(550, "5.7.1 Daily sending quota exceeded").stops_the_run());
        assert!(Reply::from_parts(452, "4.7.1 sending limit exceeded").stops_the_run());
        assert!(!Reply::from_parts(552, "5.2.2 mailbox over quota").stops_the_run());
        assert!(!Reply::from_parts(550, "5.1.1 user unknown").stops_the_run());
        assert!(!Reply::from_parts(451, "4.3.0 try again").stops_the_run());
    }
}
