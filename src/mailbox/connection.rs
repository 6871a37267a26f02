//! One IMAP session: TCP, TLS (implicit or STARTTLS) over envoi's own rustls stream, LOGIN.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::MailboxError;
use crate::config::Security;
use crate::config::tracking::MailboxSettings;
use crate::secret::Secret;

/// The byte stream under the IMAP client: plain TCP (loopback only) or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A logged-in IMAP session.
pub type Session = imap::Session<Stream>;

/// `host:port (security)`, for messages.
pub fn describe(settings: &MailboxSettings) -> String {
    format!(
        "{}:{} ({})",
        settings.host, settings.port, settings.security
    )
}

/// Connects, secures and logs in. The password goes to the server and nowhere else: no error
/// built here contains it.
pub fn open(settings: &MailboxSettings, password: &Secret) -> Result<Session, MailboxError> {
    let server = describe(settings);
    let tcp = connect_tcp(settings).map_err(|source| MailboxError::Unreachable {
        server: server.clone(),
        source,
    })?;
    let unreachable = |e: imap::Error| classify(e, &server, settings);
    let client = match settings.security {
        Security::None => {
            let mut client = imap::Client::new(Stream::Plain(tcp));
            client.read_greeting().map_err(unreachable)?;
            client
        }
        Security::Tls => {
            let mut client = imap::Client::new(wrap_tls(tcp, settings, &server)?);
            client.read_greeting().map_err(unreachable)?;
            client
        }
        Security::StartTls => {
            let mut tcp = tcp;
            starttls(&mut tcp, &server).map_err(|e| match e {
                StartTls::Refused => MailboxError::NoStartTls {
                    server: server.clone(),
                },
                StartTls::Io(source) => MailboxError::Unreachable {
                    server: server.clone(),
                    source,
                },
            })?;
            let mut client = imap::Client::new(wrap_tls(tcp, settings, &server)?);
            // RFC 3501 6.2.1: no second greeting after STARTTLS.
            client.greeting_read = true;
            client
        }
    };
    client
        .login(&settings.username, password.expose())
        .map_err(|(e, _)| match e {
            imap::Error::No(no) => MailboxError::LoginRefused {
                server: server.clone(),
                username: settings.username.clone(),
                reason: no.information,
            },
            imap::Error::Bad(bad) => MailboxError::LoginRefused {
                server: server.clone(),
                username: settings.username.clone(),
                reason: bad.information,
            },
            other => classify(other, &server, settings),
        })
}

enum StartTls {
    Refused,
    Io(io::Error),
}

/// The greeting and `STARTTLS` (RFC 3501 6.2.1), spoken directly: the crate offers STARTTLS
/// only with its own TLS. Read a byte at a time, so nothing meant for TLS is buffered away.
fn starttls(tcp: &mut TcpStream, _server: &str) -> Result<(), StartTls> {
    let greeting = read_line(tcp).map_err(StartTls::Io)?;
    if !greeting.starts_with("* OK") {
        return Err(StartTls::Refused);
    }
    tcp.write_all(b"s1 STARTTLS\r\n").map_err(StartTls::Io)?;
    loop {
        let line = read_line(tcp).map_err(StartTls::Io)?;
        if let Some(status) = line.strip_prefix("s1 ") {
            return if status.starts_with("OK") {
                Ok(())
            } else {
                Err(StartTls::Refused)
            };
        }
    }
}

/// One line from the server, without its CRLF; at most 8 KB.
fn read_line(tcp: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 8192 {
        if tcp.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

fn connect_tcp(settings: &MailboxSettings) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for address in (settings.host.as_str(), settings.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, settings.timeout) {
            Ok(tcp) => {
                tcp.set_read_timeout(Some(settings.timeout))?;
                tcp.set_write_timeout(Some(settings.timeout))?;
                return Ok(tcp);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn wrap_tls(
    tcp: TcpStream,
    settings: &MailboxSettings,
    server: &str,
) -> Result<Stream, MailboxError> {
    let config: Arc<ClientConfig> = super::trust::client_config(settings.ca_file.as_deref())
        .map_err(|e| MailboxError::TlsSetup {
            server: server.to_owned(),
            reason: e.to_string(),
        })?;
    let name = ServerName::try_from(settings.host.clone()).map_err(|_| MailboxError::TlsSetup {
        server: server.to_owned(),
        reason: format!("\"{}\" is not a host name TLS can verify", settings.host),
    })?;
    let connection = ClientConnection::new(config, name).map_err(|e| MailboxError::TlsSetup {
        server: server.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Stream::Tls(Box::new(StreamOwned::new(connection, tcp))))
}

/// Sorts an error from the first exchanges: a refused certificate, or a server out of reach.
/// rustls shakes hands at the first read, so its verdict arrives inside an `io::Error`.
pub(super) fn classify(e: imap::Error, server: &str, settings: &MailboxSettings) -> MailboxError {
    if let imap::Error::Io(io) = &e
        && let Some(tls) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return MailboxError::Untrusted {
            server: server.to_owned(),
            reason: super::trust::tls_problem(tls, &settings.host),
        };
    }
    match e {
        imap::Error::Io(source) => MailboxError::Unreachable {
            server: server.to_owned(),
            source,
        },
        other => MailboxError::Protocol {
            server: server.to_owned(),
            reason: super::describe_imap_error(&other),
        },
    }
}
