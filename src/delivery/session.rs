//! One open, authenticated connection and the mail transactions on it.
//!
//! lettre's high-level transport fails a whole message on any refused recipient and cannot
//! tell "lost before the data was handed over" (safe to retry) from "lost after" (delivery
//! unknown), so this drives lettre's low-level [`SmtpConnection`] step by step.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{MailBodyParameter, MailParameter};

use crate::compose::Composed;
use crate::config::tracking::TrackingSettings;
use crate::delivery::capabilities::Capabilities;
use crate::delivery::dsn;
use crate::delivery::reply::{Attempt, Meaning, Phase, Reply, describe_error, reply_of};
use crate::error::Error;

/// An open, authenticated connection.
pub struct Session {
    pub(crate) conn: SmtpConnection,
    pub(crate) capabilities: Capabilities,
    /// The return path and the reports to ask for (see `delivery::dsn`).
    pub(crate) tracking: Arc<TrackingSettings>,
    /// The letter whose envelope went out behind the previous letter's content (see
    /// [`Session::send`]), and that envelope: the relay owes its replies, and this session must
    /// send that letter next, or be dropped.
    pub(crate) ahead: Option<Ahead>,
}

/// A later transaction of a letter whose recipients did not fit in one (see [`Session::send`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FurtherTransaction {
    /// The addresses this transaction was for, in envelope order.
    pub recipients: Vec<Address>,
    /// The relay's acceptance, or the failed attempt that kept the letter from these addresses.
    pub outcome: Result<Reply, Attempt>,
    /// Addresses of this transaction the relay refused (the others got the letter).
    pub refused: Vec<(Address, Reply)>,
}

/// How the recipients of one transaction fared.
#[derive(Default)]
struct Recipients {
    /// Answered in this transaction (accepted or refused), in envelope order.
    answered: Vec<Address>,
    refused: Vec<(Address, Reply)>,
    /// Not sent in this transaction because the relay took no more (`452 4.5.3`). With
    /// PIPELINING every RCPT is answered, so these need not be the last addresses.
    deferred: Vec<Address>,
    accepted: usize,
}

impl Recipients {
    /// One RCPT's reply; `Err` when the transaction cannot go on.
    fn judge(&mut self, address: &Address, addressee: bool, reply: Answer) -> Result<(), Failure> {
        let failure = match reply {
            Ok(_) => {
                self.accepted += 1;
                self.answered.push(address.clone());
                return Ok(());
            }
            Err(failure) => failure,
        };
        match failure {
            Failure::Refused(reply) => match reply.meaning(Phase::Rcpt) {
                // The relay took at least one address, so the next transaction makes progress.
                Meaning::TooManyRecipients if self.accepted > 0 => {
                    self.deferred.push(address.clone());
                    Ok(())
                }
                // A refused Cc or Bcc does not stop the letter to the addressee.
                Meaning::Refused | Meaning::Misconfigured if !addressee => {
                    self.answered.push(address.clone());
                    self.refused.push((address.clone(), reply));
                    Ok(())
                }
                _ => Err(Failure::Refused(reply)),
            },
            lost => Err(lost),
        }
    }
}

/// The commands of one transaction before its content.
struct Envelope {
    mail: Mail,
    rcpts: Vec<Rcpt>,
}

/// The whole envelope as one write: MAIL, every RCPT, DATA (RFC 2920 3.1: DATA ends a group).
impl std::fmt::Display for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.mail)?;
        for rcpt in &self.rcpts {
            write!(f, "{rcpt}")?;
        }
        write!(f, "{Data}")
    }
}

/// How [`Session::open_data`] ended.
enum Opened {
    /// The relay answered DATA with `354`: the content may follow.
    Data(Recipients),
    /// A later transaction whose every address was refused; the session is reset.
    NothingToSend(Recipients),
    Failed(Attempt),
}

/// The relay's answer to one command.
type Answer = Result<lettre::transport::smtp::response::Response, Failure>;

/// Why a command did not succeed.
enum Failure {
    /// The relay said no.
    Refused(Reply),
    /// No reply: the connection was lost or the relay stopped answering (in words).
    Lost(String),
}

impl From<lettre::transport::smtp::Error> for Failure {
    fn from(e: lettre::transport::smtp::Error) -> Failure {
        match reply_of(&e) {
            Some(reply) => Failure::Refused(reply),
            None => Failure::Lost(describe_error(&e)),
        }
    }
}

impl Session {
    /// What the relay said it can do, from its EHLO reply on this (encrypted) connection.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// One letter: MAIL, RCPT for every address, DATA, then — after `before_data` has made the
    /// intent durable — the content. The connection stays usable after `Accepted` and
    /// `Permanent`; after anything else the caller drops it.
    ///
    /// `next`, the letter the caller will send next on this session: where the relay offers
    /// PIPELINING, its envelope goes out in the same write as this letter's content (RFC 2920
    /// 3.1 lets message content open a group), so its replies are waiting when it is sent and
    /// a round trip per letter is saved. No content goes with it: the relay answers its DATA
    /// with `354` and waits, and if the session ends before that letter is sent the connection
    /// is dropped, which makes the relay discard the unfinished message (RFC 5321 4.1.1.4).
    /// After this call, [`sent_ahead`](Self::sent_ahead) says whether that happened.
    ///
    /// When the relay takes no more recipients in a transaction (`452 4.5.3 too many
    /// recipients` to a Cc or Bcc, RFC 5321 3.5.3 and 4.5.3.1.10), the same bytes (same
    /// Message-ID) go to the remaining addresses in further transactions on this connection,
    /// each address exactly once:
    ///
    /// * An address is put in exactly one transaction, so within a run nothing repeats.
    /// * The letter's intent is made durable once, before the first transaction's data, and
    ///   its one log row is written after the last transaction; the row lists what each
    ///   address got. A crash in between leaves the intent without a row, which the next run
    ///   records `unknown` and does not send again unless asked: an address may then miss the
    ///   letter (the log says the delivery is unknown) but never gets it twice.
    /// * A later transaction that fails (the connection drops, a refusal) is not retried: the
    ///   letter is already `sent` to the addressee, and a retry of the whole letter would send
    ///   the first addresses again. Its addresses are named in the row and in a warning.
    pub fn send(
        &mut self,
        message: &Composed,
        before_data: impl FnOnce() -> Result<(), Error>,
        next: Option<&Composed>,
    ) -> Attempt {
        let opened = match self.ahead.take() {
            None => None,
            Some(ahead) if ahead.message_id == message.message_id => Some(ahead.envelope),
            Some(Ahead { message_id: id, .. }) => {
                // The caller broke the contract; the relay waits in DATA for another letter.
                self.close_broken();
                return Attempt::Transient {
                    reply: None,
                    no_answer: false,
                    reason: format!(
                        "the connection was opened for the letter {id}, not this one; trying again on a new one"
                    ),
                };
            }
        };
        // International addresses (RFC 6531): nothing mangled may reach the relay.
        if let Some(address) = self.refused_without_smtputf8(message) {
            if opened.is_some() {
                self.close_broken();
            }
            return Attempt::Unsendable {
                reason: format!(
                    "not sent: the address {address} has characters other than ASCII before the @, which needs a relay that offers SMTPUTF8, and the relay ({}) does not offer it; send this letter through a relay that does, or use an ASCII address",
                    self.server_name()
                ),
            };
        }
        let all: Vec<Address> = message.envelope_recipients().cloned().collect();
        let first = First {
            before_data,
            opened,
            next,
        };
        let (reply, first) = match self.transaction(message, &all, Some(first)) {
            Ok(done) => done,
            Err(attempt) => return attempt,
        };
        let mut further = Vec::new();
        let mut pending = first.deferred;
        while !pending.is_empty() {
            let batch = std::mem::take(&mut pending);
            match self.transaction(message, &batch, None::<First<fn() -> Result<(), Error>>>) {
                Ok((reply, leg)) => {
                    // `deferred` is set only after the relay took at least one address, so
                    // every round makes progress.
                    pending = leg.deferred;
                    further.push(FurtherTransaction {
                        recipients: leg.answered,
                        outcome: Ok(reply),
                        refused: leg.refused,
                    });
                }
                Err(attempt) => {
                    further.push(FurtherTransaction {
                        recipients: batch,
                        outcome: Err(attempt),
                        refused: Vec::new(),
                    });
                    break;
                }
            }
        }
        Attempt::Accepted {
            reply,
            refused: first.refused,
            further,
        }
    }

    /// Whether a letter for `message` is waiting on this session: its envelope went out with
    /// the previous letter's content, and [`send`](Self::send) must be called for it next.
    pub fn sent_ahead(&self, message: &Composed) -> bool {
        self.ahead
            .as_ref()
            .is_some_and(|ahead| ahead.message_id == message.message_id)
    }

    /// The address that keeps `message` from this relay: one that needs SMTPUTF8, which the
    /// relay does not offer.
    fn refused_without_smtputf8<'m>(&self, message: &'m Composed) -> Option<&'m Address> {
        message
            .address_needing_smtputf8()
            .filter(|_| !self.capabilities.smtputf8)
    }

    /// One transaction to `recipients`. `first` is given for the letter's first transaction,
    /// whose first address is the addressee (its refusal is the letter's).
    fn transaction(
        &mut self,
        message: &Composed,
        recipients: &[Address],
        mut first: Option<First<impl FnOnce() -> Result<(), Error>>>,
    ) -> Result<(Reply, Recipients), Attempt> {
        // The envelope sent ahead is the one this letter's replies answer: not built again.
        let opened = first.as_mut().and_then(|f| f.opened.take());
        let opened_ahead = opened.is_some();
        let envelope = opened.unwrap_or_else(|| self.envelope(message, recipients));
        let outcome = match self.open_data(&envelope, recipients, first.is_some(), opened_ahead) {
            Opened::Data(outcome) => outcome,
            Opened::NothingToSend(outcome) => {
                return Ok((Reply::from_parts(250, "nothing to send"), outcome));
            }
            Opened::Failed(attempt) => return Err(attempt),
        };

        let mut next_envelope = None;
        if let Some(First {
            before_data, next, ..
        }) = first
        {
            if let Err(e) = before_data() {
                // Nothing may go out that the log cannot record. Dropping the connection before
                // the final dot makes the relay discard the partial message.
                self.conn.abort();
                return Err(Attempt::Fatal {
                    reply: None,
                    reason: e.to_string(),
                });
            }
            // Only a letter that ends in this transaction can have the next one behind it.
            next_envelope = next
                .filter(|next| {
                    self.capabilities.pipelining
                        && outcome.deferred.is_empty()
                        && self.refused_without_smtputf8(next).is_none()
                })
                .map(|next| {
                    let all: Vec<Address> = next.envelope_recipients().cloned().collect();
                    Ahead {
                        message_id: next.message_id.clone(),
                        envelope: self.envelope(next, &all),
                    }
                });
        }
        let handed_over = match std::str::from_utf8(&message.bytes) {
            Ok(text) => match next_envelope {
                Some(ahead) => {
                    let sent = self
                        .conn
                        .command(DataThen(DataContent(text), &ahead.envelope));
                    self.ahead = Some(ahead);
                    sent
                }
                None => self.conn.command(DataContent(text)),
            },
            // Not reachable with lettre's formatting (text is UTF-8, attachments base64), but
            // lettre's own path is correct for any bytes, only slower.
            Err(_) => self.conn.message(&message.bytes),
        };
        match handed_over {
            Ok(response) => Ok((Reply::from_response(&response), outcome)),
            Err(e) => Err(match reply_of(&e) {
                Some(reply) => Attempt::classify(
                    reply,
                    Phase::DataEnd,
                    "the relay did not accept the message",
                ),
                None => {
                    self.close_broken();
                    Attempt::Unknown {
                        reason: format!(
                            "the connection was lost after the letter was sent, before the relay confirmed it ({})",
                            describe_error(&e)
                        ),
                    }
                }
            }),
        }
    }

    /// MAIL (with the parameters this relay and letter call for), then RCPT for every address.
    fn envelope(&self, message: &Composed, recipients: &[Address]) -> Envelope {
        let mut params = Vec::new();
        if !message.bytes.is_ascii() {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if message.address_needing_smtputf8().is_some() {
            params.push(MailParameter::SmtpUtfEight);
        }
        let dsn = dsn::asks(&self.tracking, self.capabilities.dsn);
        if dsn {
            params.extend(dsn::mail_parameters(message));
        }
        let sender = dsn::envelope_sender(&self.tracking, message);
        Envelope {
            mail: Mail::new(Some(sender), params),
            rcpts: recipients
                .iter()
                .map(|address| {
                    let rcpt_params = match dsn {
                        true => dsn::rcpt_parameters(&self.tracking, address),
                        false => Vec::new(),
                    };
                    Rcpt::new(address.clone(), rcpt_params)
                })
                .collect(),
        }
    }

    /// MAIL, RCPT for every address and DATA, up to the relay's `354`.
    ///
    /// Where the relay offers PIPELINING (RFC 2920) the commands go out in one write and the
    /// replies are read afterwards, in order: one round trip instead of one per command.
    /// Otherwise each command waits for the previous one's reply, and the commands after a
    /// failure are never sent. Either way the replies are judged in the same order by the same
    /// rules, so the outcome is the same; the only difference is that a pipelined DATA may be
    /// answered `354` although the transaction failed (the addressee refused, a Cc accepted).
    /// The relay then waits for content that must not go out, and the connection is dropped:
    /// a relay discards a message whose final dot never came (RFC 5321 4.1.1.4).
    ///
    /// `opened_ahead`: the envelope already went out (see [`send`](Self::send)); only the
    /// replies are read.
    fn open_data(
        &mut self,
        envelope: &Envelope,
        recipients: &[Address],
        first_transaction: bool,
        opened_ahead: bool,
    ) -> Opened {
        let mut pipelined = match opened_ahead {
            true => Some(self.pipeline(envelope, false)),
            false => self
                .capabilities
                .pipelining
                .then(|| self.pipeline(envelope, true)),
        };
        // Only a pipelined DATA can be open when the transaction fails.
        let data_open = pipelined
            .as_ref()
            .is_some_and(|replies| replies.back().is_some_and(Result::is_ok));
        // The next reply: read ahead when pipelined, else asked for now.
        let mut answer =
            |conn: &mut SmtpConnection, command: &dyn std::fmt::Display| match &mut pipelined {
                Some(replies) => replies.pop_front().unwrap_or_else(|| {
                    Err(Failure::Lost(
                        "the connection ended before this reply".to_owned(),
                    ))
                }),
                None => conn.command(command).map_err(Failure::from),
            };

        if let Err(failure) = answer(&mut self.conn, &envelope.mail) {
            return Opened::Failed(self.failed_before_data(
                failure,
                Phase::Mail,
                "the sender",
                data_open,
            ));
        }
        let mut outcome = Recipients::default();
        for (i, (address, rcpt)) in recipients.iter().zip(&envelope.rcpts).enumerate() {
            let addressee = i == 0 && first_transaction;
            let reply = answer(&mut self.conn, rcpt);
            if let Err(failure) = outcome.judge(address, addressee, reply) {
                let what = format!("the recipient {address}");
                return Opened::Failed(self.failed_before_data(
                    failure,
                    Phase::Rcpt,
                    &what,
                    data_open,
                ));
            }
            if !self.capabilities.pipelining && !outcome.deferred.is_empty() {
                // The relay takes no more in this transaction: asking would only cost round
                // trips.
                outcome.deferred.extend_from_slice(&recipients[i + 1..]);
                break;
            }
        }
        if outcome.accepted == 0 {
            // Later transaction whose addresses were all refused: nothing to send. A pipelined
            // DATA without recipients was refused by the relay (RFC 2920 3.1) unless it is
            // broken, and then it waits for content: drop the connection.
            if data_open {
                self.close_broken();
            } else {
                let _ = self.conn.command(Rset);
            }
            return Opened::NothingToSend(outcome);
        }
        match answer(&mut self.conn, &Data) {
            Ok(_) => Opened::Data(outcome),
            Err(failure) => {
                Opened::Failed(self.failed_before_data(failure, Phase::Data, "the message", false))
            }
        }
    }

    /// Writes the whole envelope at once (unless `write` is false: it went out ahead) and reads
    /// every reply, in order. Stops reading only when no reply can come any more (the
    /// connection is lost or the relay stopped answering): the relay answers each command, so
    /// a reply left unread would be taken for the answer to the next command.
    fn pipeline(&mut self, envelope: &Envelope, write: bool) -> VecDeque<Answer> {
        let expected = envelope.rcpts.len() + 2;
        let mut replies = VecDeque::with_capacity(expected);
        let first = match write {
            true => self.conn.command(envelope),
            false => self.conn.read_response(),
        };
        replies.push_back(first.map_err(Failure::from));
        while replies.len() < expected && !matches!(replies.back(), Some(Err(Failure::Lost(_)))) {
            replies.push_back(self.conn.read_response().map_err(Failure::from));
        }
        replies
    }

    /// A failure before any data went out: safe to retry, unless the relay said no for good.
    /// `data_open`: the relay answered a pipelined DATA with `354` and waits for the content.
    fn failed_before_data(
        &mut self,
        failure: Failure,
        phase: Phase,
        what: &str,
        data_open: bool,
    ) -> Attempt {
        match failure {
            Failure::Refused(reply) => {
                let attempt = Attempt::classify(reply, phase, &format!("the relay refused {what}"));
                if data_open {
                    // Anything sent now would be message content; no QUIT can be answered.
                    self.close_broken();
                } else if matches!(attempt, Attempt::Permanent { .. }) {
                    // Keep the connection for the next message.
                    if self.conn.command(Rset).is_err() {
                        self.close_broken();
                    }
                } else {
                    self.conn.abort();
                }
                attempt
            }
            Failure::Lost(error) => {
                self.close_broken();
                Attempt::Transient {
                    reply: None,
                    no_answer: true,
                    reason: format!(
                        "no usable answer from the relay to {} ({what}): {error}",
                        phase.command(),
                    ),
                }
            }
        }
    }

    /// Closes a connection that failed without a reply (lost, or the relay stopped answering).
    /// `abort` says QUIT and reads the answer; a relay that stopped answering would hold that
    /// for a whole `timeout` more, so the answer is waited for only briefly.
    fn close_broken(&mut self) {
        close_broken(&mut self.conn);
    }

    /// Whether the connection can carry another message.
    pub fn is_usable(&self) -> bool {
        !self.conn.has_broken()
    }

    /// Says goodbye politely; errors do not matter any more. With a letter opened ahead the
    /// relay waits for content, which QUIT would be taken for: the connection is dropped.
    pub fn quit(mut self) {
        match self.ahead {
            Some(_) => self.close_broken(),
            None => {
                let _ = self.conn.quit();
            }
        }
    }

    /// The relay's greeting name, for `check --smtp`.
    pub fn server_name(&self) -> &str {
        &self.capabilities.name
    }

    pub fn is_encrypted(&self) -> bool {
        self.conn.is_encrypted()
    }
}

/// See [`Session::close_broken`].
pub(crate) fn close_broken(conn: &mut SmtpConnection) {
    let _ = conn.set_timeout(Some(Duration::from_millis(10)));
    conn.abort();
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

/// A letter's content, then the next letter's envelope, in one write (see [`Session::send`]).
struct DataThen<'a>(DataContent<'a>, &'a Envelope);

impl std::fmt::Display for DataThen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.0, self.1)
    }
}

/// What only a letter's first transaction has: the intent's confirmation before the content,
/// its envelope if that went out ahead, and the letter to send ahead behind its content.
struct First<'a, F> {
    before_data: F,
    opened: Option<Envelope>,
    next: Option<&'a Composed>,
}

/// A letter whose envelope went out behind the previous letter's content.
pub(crate) struct Ahead {
    message_id: String,
    envelope: Envelope,
}

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
}
