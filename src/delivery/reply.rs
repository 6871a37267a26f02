//! Relay replies and what they mean for the run: the one place where a reply code, its
//! enhanced status (RFC 3463) and, last, its text are turned into "retry", "reconnect",
//! "refused", "split the recipients" or "stop the run".
//!
//! Code and enhanced status come first because their meaning is standard; the text is read only
//! when they leave it open (no enhanced status, or a generic `x.0.0` / `x.7.1`), because texts
//! differ between relays and languages. The table is in [`Reply::meaning`]'s tests.

use lettre::Address;

use crate::delivery::session::FurtherTransaction;

/// A reply from the relay, as the delivery log shows it: `250 2.0.0` and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

/// The command a reply answered: the same code means different things at different steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The greeting, EHLO and STARTTLS: setting up a connection.
    Connect,
    Auth,
    Mail,
    Rcpt,
    Data,
    /// After the final dot.
    DataEnd,
}

impl Phase {
    /// The SMTP command, for messages.
    pub fn command(self) -> &'static str {
        match self {
            Phase::Connect => "the greeting",
            Phase::Auth => "AUTH",
            Phase::Mail => "MAIL FROM",
            Phase::Rcpt => "RCPT TO",
            Phase::Data => "DATA",
            Phase::DataEnd => "the end of the data",
        }
    }
}

/// What happened to one message in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The relay took the message. `refused` lists Cc/Bcc addresses it would not take;
    /// `further` the later transactions when not all recipients fit in one.
    Accepted {
        reply: Reply,
        refused: Vec<(Address, Reply)>,
        further: Vec<FurtherTransaction>,
    },
    /// Not handed over; worth another try on a fresh connection. `no_answer`: the relay did
    /// not answer at all (no connection, lost, stalled), which counts towards stopping the run.
    Transient {
        reply: Option<Reply>,
        reason: String,
        no_answer: bool,
    },
    /// Refused for good. `misconfigured`: the refusal is of the client or account, not of
    /// this letter (see [`Meaning::Misconfigured`]).
    Permanent { reply: Reply, misconfigured: bool },
    /// The data went out but no answer came back: it may or may not have been delivered.
    Unknown { reason: String },
    /// Not offered to the relay at all: it cannot take this letter as it is (an address needs
    /// SMTPUTF8, which it does not offer). The connection is untouched.
    Unsendable { reason: String },
    /// No further message can go out in this run (authentication, quota, TLS trust).
    Fatal {
        reply: Option<Reply>,
        reason: String,
    },
}

impl Attempt {
    /// A refusal of `what` (e.g. "the relay refused the sender") at `phase`, classified.
    pub fn classify(reply: Reply, phase: Phase, what: &str) -> Attempt {
        match reply.meaning(phase) {
            Meaning::StopsTheRun => {
                let why = if reply.asks_for_starttls() {
                    "the relay requires encryption: set security = \"starttls\" in [smtp] (or \"tls\" on port 465)"
                } else {
                    "the run stops here (sending quota or authentication)"
                };
                Attempt::Fatal {
                    reason: format!("{what}: {reply}; {why}"),
                    reply: Some(reply),
                }
            }
            Meaning::Misconfigured => Attempt::Permanent {
                reply,
                misconfigured: true,
            },
            Meaning::Refused => Attempt::Permanent {
                reply,
                misconfigured: false,
            },
            Meaning::TooManyRecipients if reply.code >= 500 => Attempt::Permanent {
                reply,
                misconfigured: false,
            },
            Meaning::TryAgain | Meaning::Reconnect | Meaning::TooManyRecipients => {
                Attempt::Transient {
                    reason: format!("{what}: {reply}"),
                    reply: Some(reply),
                    no_answer: false,
                }
            }
        }
    }

    /// A reply that refused a new connection (greeting or EHLO).
    pub fn classify_connect(reply: Reply, reason: String) -> Attempt {
        match reply.meaning(Phase::Connect) {
            Meaning::StopsTheRun | Meaning::Misconfigured => Attempt::Fatal {
                reply: Some(reply),
                reason,
            },
            _ if reply.code >= 500 => Attempt::Fatal {
                reply: Some(reply),
                reason,
            },
            _ => Attempt::Transient {
                reply: Some(reply),
                reason,
                no_answer: false,
            },
        }
    }

    /// Why the attempt did not go through, in words (for a refusal, the reply).
    pub fn reason(&self) -> String {
        match self {
            Attempt::Accepted { reply, .. } | Attempt::Permanent { reply, .. } => reply.to_string(),
            Attempt::Transient { reason, .. }
            | Attempt::Unknown { reason }
            | Attempt::Unsendable { reason }
            | Attempt::Fatal { reason, .. } => reason.clone(),
        }
    }

    /// Whether the relay refused a new connection because it has too many (a 4xx at the
    /// greeting, such as `421 4.7.0 too many connections`).
    pub fn is_connection_refusal(&self) -> bool {
        matches!(self, Attempt::Transient { reply: Some(r), .. } if (400..500).contains(&r.code))
    }
}

/// What a negative reply means for the letter, the connection and the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Try this letter again later, on a fresh connection (greylisting, a busy relay).
    TryAgain,
    /// The relay is closing this connection (`421`, "too many messages on this connection"):
    /// open another and go on. Not a quota.
    Reconnect,
    /// `452 4.5.3 too many recipients`: this transaction takes no more recipients; the rest go
    /// in another (RFC 5321 3.5.3, 4.5.3.1.10).
    TooManyRecipients,
    /// This address or letter is refused for good; the run goes on.
    Refused,
    /// The relay refuses this client or account rather than this letter (`554 5.7.1 Relay
    /// access denied`, a refused sender): every letter would meet it, so a few identical ones
    /// in a row stop the run.
    Misconfigured,
    /// No letter can go out in this run: the login is refused or required, or a sending quota
    /// is exhausted.
    StopsTheRun,
}

impl Reply {
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

    pub(crate) fn from_response(response: &lettre::transport::smtp::response::Response) -> Reply {
        let code = response.code().to_string().parse().unwrap_or(0);
        Self::from_parts(code, &response.message().collect::<Vec<_>>().join(" "))
    }

    /// The `code` column of the delivery log.
    pub fn code_column(&self) -> String {
        match &self.enhanced {
            Some(e) => format!("{} {e}", self.code),
            None => self.code.to_string(),
        }
    }

    /// The enhanced status without its class digit (`7.1` for `5.7.1`).
    fn subject_detail(&self) -> Option<&str> {
        self.enhanced.as_deref().and_then(|e| e.get(2..))
    }

    /// What this (negative) reply means, given the command it answered.
    pub fn meaning(&self, phase: Phase) -> Meaning {
        let transient = (400..500).contains(&self.code);
        let text = self.text.to_ascii_lowercase();
        let says = |words: &[&str]| words.iter().any(|w| text.contains(w));
        let quota_text = says(&["quota", "limit exceeded", "sending limit", "rate limit"]);
        // 1. The code alone, where it is unambiguous.
        match self.code {
            421 => return Meaning::Reconnect,
            530 | 534 | 535 | 538 => return Meaning::StopsTheRun,
            _ => {}
        }
        // 2. The enhanced status.
        match self.subject_detail() {
            Some("5.3") => return Meaning::TooManyRecipients,
            Some("7.8" | "7.9" | "7.11" | "7.12" | "7.13" | "7.14") => {
                return Meaning::StopsTheRun;
            }
            // Used by the big hosted relays for "sending quota exceeded".
            Some("4.5") if !transient => return Meaning::StopsTheRun,
            Some("2.2") | Some("1.1" | "1.2" | "1.3" | "1.6" | "1.10") => {
                return if transient {
                    Meaning::TryAgain
                } else {
                    Meaning::Refused
                };
            }
            Some("7.0") if self.code == 454 => return Meaning::StopsTheRun,
            Some("7.1") | Some("7.0") | Some("0.0") | None => {}
            Some(_) => {
                return if transient {
                    Meaning::TryAgain
                } else {
                    Meaning::Refused
                };
            }
        }
        // 3. The text, where code and status left it open.
        if quota_text {
            return Meaning::StopsTheRun;
        }
        if says(&["too many recipients"]) {
            return Meaning::TooManyRecipients;
        }
        if says(&["too many messages", "too many connections"]) {
            return Meaning::Reconnect;
        }
        let refuses_the_client = says(&[
            "relay access denied",
            "relaying denied",
            "relay not permitted",
            "unable to relay",
            "not permitted to relay",
        ]) || (phase == Phase::Mail
            && self.subject_detail() == Some("7.1"));
        if refuses_the_client && !transient {
            return Meaning::Misconfigured;
        }
        if transient {
            Meaning::TryAgain
        } else {
            Meaning::Refused
        }
    }

    /// `530 5.7.0 Must issue a STARTTLS command first` and the like.
    pub fn asks_for_starttls(&self) -> bool {
        self.code == 530 && self.text.to_ascii_lowercase().contains("starttls")
    }

    /// The reply with addresses blanked out, so that `554 5.7.1 <a@x>: Relay access denied`
    /// and the same refusal of `<b@y>` count as identical.
    pub fn without_addresses(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut in_brackets = false;
        for c in self.text.chars() {
            match c {
                '<' => in_brackets = true,
                '>' if in_brackets => {
                    in_brackets = false;
                    out.push_str("<>");
                }
                _ if !in_brackets => out.push(c),
                _ => {}
            }
        }
        format!("{} {}", self.code_column(), out)
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

/// A relay reply carried by a lettre error, if there was one.
pub(crate) fn reply_of(e: &lettre::transport::smtp::Error) -> Option<Reply> {
    let code = e.status()?;
    let code: u16 = code.to_string().parse().ok()?;
    let text = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default();
    Some(Reply::from_parts(code, &text))
}

/// Whether the relay simply did not answer in time. lettre reports a socket read timeout as a
/// plain network error (`WouldBlock` on Unix, `TimedOut` on Windows), so look at the cause too.
pub(crate) fn is_timeout(e: &lettre::transport::smtp::Error) -> bool {
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
pub(crate) fn describe_error(e: &lettre::transport::smtp::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_split_the_enhanced_status() {
        let r = Reply::from_parts(250, "2.0.0 Ok: queued as 4F2A1");
        assert_eq!(r.code_column(), "250 2.0.0");
        assert_eq!(r.text, "Ok: queued as 4F2A1");
        let r = Reply::from_parts(550, "mailbox unavailable");
        assert_eq!(r.code_column(), "550");
    }

    /// The classification table: the command answered, the reply, what it means.
    #[test]
    fn code_and_enhanced_status_decide_before_the_text() {
        use Meaning::*;
        use Phase::*;
        // One reply per line, so that the table reads as a table.
        #[rustfmt::skip]
        let table = [
            (Auth, "535 5.7.8 Authentication credentials invalid", StopsTheRun),
            (Auth, "530 5.7.0 Must issue a STARTTLS command first", StopsTheRun),
            (Auth, "454 4.7.0 Temporary authentication failure", StopsTheRun),
            (Mail, "550 5.7.1 Daily sending quota exceeded", StopsTheRun),
            (Mail, "554 5.4.5 Daily user sending limit exceeded", StopsTheRun),
            (Mail, "452 4.7.1 sending limit exceeded", StopsTheRun),
            (Mail, "550 sending quota reached", StopsTheRun),
            // A full mailbox is that recipient's problem, whatever the text says.
            (Rcpt, "552 5.2.2 mailbox over quota", Refused),
            (Rcpt, "452 4.2.2 mailbox over quota", TryAgain),
            (Rcpt, "550 5.1.1 user unknown", Refused),
            (Rcpt, "550 5.1.1 quota of unknown users exceeded", Refused),
            (Mail, "451 4.3.0 try again", TryAgain),
            (DataEnd, "451 4.7.1 Greylisted, try again later", TryAgain),
            // 421 closes the connection: reconnect, not a quota, whatever the text says.
            (Mail, "421 4.7.0 too many messages on this connection", Reconnect),
            (Mail, "421 4.7.0 message quota per connection reached", Reconnect),
            (Mail, "421 4.3.2 Service shutting down", Reconnect),
            (Connect, "421 4.7.0 too many connections", Reconnect),
            (Rcpt, "452 4.5.3 Error: too many recipients", TooManyRecipients),
            (Rcpt, "552 5.5.3 too many recipients", TooManyRecipients),
            (Rcpt, "452 too many recipients", TooManyRecipients),
            (Rcpt, "554 5.7.1 <a@b.example>: Relay access denied", Misconfigured),
            (Rcpt, "550 relaying denied", Misconfigured),
            (Mail, "553 5.7.1 Sender address rejected: not owned", Misconfigured),
            // At RCPT, 5.7.1 without "relay" is that recipient's policy.
            (Rcpt, "550 5.7.1 recipient does not accept your mail", Refused),
            (Rcpt, "450 4.7.1 Relay access denied, try later", TryAgain),
            (DataEnd, "552 5.3.4 Message size exceeds fixed limit", Refused),
            (DataEnd, "554 5.6.0 content rejected", Refused),
            (Data, "451 4.4.2 timeout", TryAgain),
        ];
        for (phase, reply, expected) in table {
            let (code, text) = reply.split_once(' ').unwrap();
            let meaning = Reply::from_parts(code.parse().unwrap(), text).meaning(phase);
            assert_eq!(meaning, expected, "{reply} at {phase:?}");
        }
    }

    #[test]
    fn identical_refusals_ignore_the_address() {
        let a = Reply::from_parts(554, "5.7.1 <a@x.example>: Relay access denied");
        let b = Reply::from_parts(554, "5.7.1 <b@y.example>: Relay access denied");
        assert_eq!(a.without_addresses(), b.without_addresses());
        assert_eq!(a.without_addresses(), "554 5.7.1 <>: Relay access denied");
        let c = Reply::from_parts(550, "5.7.1 <b@y.example>: Relay access denied");
        assert_ne!(a.without_addresses(), c.without_addresses());
    }
}
