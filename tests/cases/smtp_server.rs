//! Self-tests of the test SMTP server, driven by lettre's low-level client over real sockets:
//! if these hold, envoi's delivery tests can trust what the server says and records.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, TlsParameters,
};
use lettre::transport::smtp::commands::{Auth, Data, Mail, Rcpt, Starttls};
use lettre::transport::smtp::extension::{ClientId, Extension};
use lettre::transport::smtp::response::Response;

use crate::support::pki::{self, CertKind};
use crate::support::smtp_server::{
    Fault, FaultFn, Faults, Phase, RandomFaults, ServerConfig, SmtpServer, Step, Tls,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const USER: &str = "ombudsman@ombudsman.example";
const PASSWORD: &str = "correct horse battery staple";
const FROM: &str = "ombudsman@ombudsman.example";

fn client_id() -> ClientId {
    ClientId::Domain("client.example".into())
}

/// Trusts the test CA only (not the system roots), given as PEM.
fn tls_parameters(ca_pem: &[u8]) -> TlsParameters {
    let ca = Certificate::from_pem(ca_pem).expect("test CA parses");
    TlsParameters::builder("localhost".into())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(ca)
        .build_rustls()
        .expect("TLS parameters")
}

fn connect(server: &SmtpServer) -> SmtpConnection {
    SmtpConnection::connect(server.addr(), Some(TIMEOUT), &client_id(), None, None)
        .expect("connect in plain text")
}

fn connect_implicit_tls(server: &SmtpServer) -> Result<SmtpConnection, SmtpError> {
    let tls = tls_parameters(pki::ca_pem().as_bytes());
    SmtpConnection::connect(server.addr(), Some(TIMEOUT), &client_id(), Some(&tls), None)
}

fn connect_starttls(server: &SmtpServer) -> SmtpConnection {
    let mut conn = connect(server);
    let tls = tls_parameters(pki::ca_pem().as_bytes());
    conn.starttls(&tls, &client_id()).expect("STARTTLS");
    conn
}

fn address(text: &str) -> Address {
    text.parse().expect("valid test address")
}

fn envelope(to: &[&str]) -> Envelope {
    let to = to.iter().map(|to| address(to)).collect();
    Envelope::new(Some(address(FROM)), to).expect("valid envelope")
}

fn mail(conn: &mut SmtpConnection) -> Result<Response, SmtpError> {
    conn.command(Mail::new(Some(address(FROM)), vec![]))
}

fn rcpt(conn: &mut SmtpConnection, to: &str) -> Result<Response, SmtpError> {
    conn.command(Rcpt::new(address(to), vec![]))
}

/// One whole transaction, command by command, without lettre's abort-on-error of `send`.
fn transaction(conn: &mut SmtpConnection, to: &str, body: &[u8]) -> Result<Response, SmtpError> {
    mail(conn)?;
    rcpt(conn, to)?;
    conn.command(Data)?;
    conn.message(body)
}

/// The reply code of a refused command; `None` when the failure was not a reply at all.
fn code(result: Result<Response, SmtpError>) -> Option<u16> {
    result
        .expect_err("the server should refuse")
        .status()
        .map(u16::from)
}

fn first_line(response: &Response) -> String {
    response.first_line().unwrap_or_default().to_owned()
}

/// What the server records for a message that lettre sent: the bytes plus the CRLF that
/// precedes the final dot (RFC 5321: it ends the last line).
fn as_recorded(body: &[u8]) -> Vec<u8> {
    [body, b"\r\n"].concat()
}

#[test]
fn plain_session_records_the_exact_message_and_envelope() {
    let server = SmtpServer::start(ServerConfig::default());
    let mut conn = connect(&server);
    let info = conn.server_info();
    assert!(info.supports_feature(Extension::EightBitMime));
    assert!(info.supports_feature(Extension::SmtpUtfEight));
    assert!(!info.supports_feature(Extension::StartTls));
    assert_eq!(info.get_auth_mechanism(&[Mechanism::Plain]), None);

    // Lines that start with dots, a lone dot and 8-bit text: dot-stuffing and 8BITMIME.
    let body = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nÉtat: fin".as_bytes();
    let to = ["a@one.example", "cc@two.example"];
    let response = conn.send(&envelope(&to), body).expect("message accepted");
    conn.quit().expect("QUIT");

    let received = server.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.data, as_recorded(body));
    assert_eq!(message.mail_from, FROM);
    assert_eq!(message.rcpt_to, to);
    assert_eq!(message.connection, 1);
    assert_eq!(
        first_line(&response),
        format!("2.0.0 Ok: queued as {}", message.queue_id)
    );
    assert_eq!(
        server.transcript(1),
        [
            "EHLO client.example",
            &format!("MAIL FROM:<{FROM}> BODY=8BITMIME"),
            "RCPT TO:<a@one.example>",
            "RCPT TO:<cc@two.example>",
            "DATA",
            "QUIT",
        ]
    );
}

#[test]
fn raw_session_covers_helo_rset_noop_and_dot_unstuffing() {
    let server = SmtpServer::start(ServerConfig::default());
    let mut raw = RawClient::connect(&server);
    assert!(raw.reply().starts_with("220 localhost"));
    assert_eq!(
        raw.talk("MAIL FROM:<a@one.example>"),
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    assert_eq!(raw.talk("HELO client.example"), "250 localhost");
    assert_eq!(raw.talk("MAIL FROM:<a@one.example>"), "250 2.1.0 Ok");
    assert_eq!(raw.talk("RCPT TO:<b@two.example>"), "250 2.1.5 Ok");
    assert_eq!(raw.talk("RSET"), "250 2.0.0 Ok");
    assert_eq!(raw.talk("DATA"), "503 5.5.1 Error: need MAIL command");
    assert_eq!(raw.talk("NOOP"), "250 2.0.0 Ok");
    assert_eq!(
        raw.talk("VRFY b"),
        "502 5.5.2 Error: command not recognized"
    );
    assert_eq!(raw.talk("MAIL FROM:<>"), "250 2.1.0 Ok");
    assert_eq!(raw.talk("RCPT TO:<b@two.example>"), "250 2.1.5 Ok");
    assert!(raw.talk("DATA").starts_with("354 "));
    assert!(
        raw.talk("..one dot\r\n...two dots\r\n.")
            .starts_with("250 2.0.0 Ok: queued as ")
    );
    assert_eq!(raw.talk("QUIT"), "221 2.0.0 Bye");

    let received = server.received();
    assert_eq!(received[0].data, b".one dot\r\n..two dots\r\n");
    assert_eq!(
        received[0].mail_from, "",
        "the null reverse path is kept as empty"
    );
}

#[test]
fn starttls_then_every_mechanism_accepts_the_right_password() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_auth(USER, PASSWORD),
    );
    let credentials = Credentials::new(USER.into(), PASSWORD.into());
    let mechanisms = [Mechanism::Plain, Mechanism::Login, Mechanism::Xoauth2];
    for mechanism in mechanisms {
        let mut conn = connect(&server);
        assert!(conn.can_starttls());
        assert_eq!(conn.server_info().get_auth_mechanism(&mechanisms), None);
        let early = Auth::new(Mechanism::Plain, credentials.clone(), None).unwrap();
        assert_eq!(code(conn.command(early)), Some(538), "no AUTH before TLS");

        conn.starttls(&tls_parameters(pki::ca_pem().as_bytes()), &client_id())
            .expect("STARTTLS");
        assert!(conn.is_encrypted());
        assert!(conn.server_info().supports_auth_mechanism(mechanism));
        let response = conn
            .auth(&[mechanism], &credentials)
            .expect("right password");
        assert_eq!(u16::from(response.code()), 235);
        conn.send(&envelope(&["a@one.example"]), b"Subject: hi\r\n\r\nhello")
            .expect("authenticated send");
    }
    assert_eq!(server.auth_successes(), 3);
    assert_eq!(server.auth_failures(), 0);
    assert_eq!(server.received_count(), 3);

    let plain_payload = lettre_plain_payload(USER, PASSWORD);
    for command in server.commands() {
        assert!(!command.contains(PASSWORD) && !command.contains(&plain_payload));
    }
    // What each connection sent between its second EHLO (after STARTTLS) and MAIL.
    let auth_exchange = |connection| -> Vec<String> {
        let transcript = server.transcript(connection).into_iter();
        let after_tls = transcript
            .skip_while(|command| command != "STARTTLS")
            .skip(2);
        after_tls
            .take_while(|command| !command.starts_with("MAIL"))
            .collect()
    };
    assert_eq!(auth_exchange(1), ["AUTH PLAIN <redacted>"]);
    assert_eq!(auth_exchange(2), ["AUTH LOGIN", "<redacted>", "<redacted>"]);
    assert_eq!(auth_exchange(3), ["AUTH XOAUTH2 <redacted>"]);
}

/// The base64 initial response lettre sends for AUTH PLAIN, to prove it is not transcribed.
fn lettre_plain_payload(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

#[test]
fn wrong_password_gets_535_and_mail_stays_refused_with_530() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_auth(USER, PASSWORD),
    );
    let wrong = Credentials::new(USER.into(), "wrong".into());
    for mechanism in [Mechanism::Plain, Mechanism::Login, Mechanism::Xoauth2] {
        let mut conn = connect_starttls(&server);
        assert_eq!(code(conn.auth(&[mechanism], &wrong)), Some(535));
    }
    // lettre hangs up after some failed exchanges, so ask on a fresh connection.
    let mut conn = connect_starttls(&server);
    assert_eq!(code(mail(&mut conn)), Some(530));
    assert_eq!(server.auth_failures(), 3);
    assert_eq!(server.auth_successes(), 0);
    assert_eq!(server.received_count(), 0);
}

#[test]
fn auth_fault_refuses_even_the_right_password() {
    let auth_down = Faults::from_fn(|step| {
        matches!(step.phase, Phase::Auth { mechanism: "PLAIN" })
            .then(|| Fault::Reply(454, "4.7.0 Temporary authentication failure".into()))
    });
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::Implicit)
            .with_auth(USER, PASSWORD)
            .with_faults(auth_down),
    );
    let mut conn = connect_implicit_tls(&server).expect("TLS handshake");
    let right = Credentials::new(USER.into(), PASSWORD.into());
    assert_eq!(code(conn.auth(&[Mechanism::Plain], &right)), Some(454));
    assert_eq!(server.auth_successes() + server.auth_failures(), 0);
}

#[test]
fn withheld_starttls_is_neither_advertised_nor_accepted_and_auth_stays_hidden() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: false })
            .with_auth(USER, PASSWORD),
    );
    let mut conn = connect(&server);
    assert!(!conn.can_starttls());
    assert_eq!(
        conn.server_info().get_auth_mechanism(&[Mechanism::Plain]),
        None
    );
    assert_eq!(code(conn.command(Starttls)), Some(454));
}

#[test]
fn implicit_tls_session_authenticates_and_delivers() {
    let server = SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::Implicit)
            .with_auth(USER, PASSWORD),
    );
    let mut conn = connect_implicit_tls(&server).expect("TLS handshake with the test CA");
    assert!(conn.is_encrypted());
    assert!(!conn.can_starttls());
    conn.auth(
        &[Mechanism::Plain],
        &Credentials::new(USER.into(), PASSWORD.into()),
    )
    .expect("right password");
    let body = b"Subject: tls\r\n\r\nover TLS";
    conn.send(&envelope(&["a@one.example"]), body)
        .expect("send");
    assert_eq!(server.received()[0].data, as_recorded(body));
}

#[test]
fn ca_file_written_to_disk_is_trusted_and_bad_certificates_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("relay-ca.pem");
    pki::write_ca_pem(&ca_file).unwrap();
    let tls = tls_parameters(&std::fs::read(&ca_file).unwrap());

    let connect_to = |cert| {
        let server = SmtpServer::start(
            ServerConfig::default()
                .with_tls(Tls::Implicit)
                .with_cert(cert),
        );
        SmtpConnection::connect(server.addr(), Some(TIMEOUT), &client_id(), Some(&tls), None)
    };
    assert!(connect_to(CertKind::Valid).is_ok());
    let refusals = [
        (CertKind::Expired, "certificate expired"),
        (CertKind::WrongHost, "not valid for name"),
        (CertKind::Untrusted, "unknownissuer"),
    ];
    for (cert, reason) in refusals {
        let error = connect_to(cert)
            .err()
            .unwrap_or_else(|| panic!("{cert:?} was trusted"));
        let error = error.to_string().to_lowercase();
        assert!(error.contains(reason), "{cert:?}: {error}");
    }
}

#[test]
fn reply_fault_replaces_the_reply_and_the_step_has_no_effect() {
    let bounce = Fault::Reply(550, "5.1.1 No such user".into());
    let server = SmtpServer::start(
        ServerConfig::default().with_faults(Faults::on_recipient("nobody", bounce)),
    );
    let mut conn = connect(&server);
    mail(&mut conn).unwrap();
    let refused = rcpt(&mut conn, "nobody@two.example");
    assert!(refused.as_ref().is_err_and(SmtpError::is_permanent));
    assert_eq!(code(refused), Some(550));
    rcpt(&mut conn, "a@one.example").unwrap();
    conn.command(Data).unwrap();
    conn.message(b"Subject: x\r\n\r\nx").unwrap();

    assert_eq!(server.received()[0].rcpt_to, ["a@one.example"]);
    assert!(
        server
            .commands()
            .contains(&"RCPT TO:<nobody@two.example>".to_owned())
    );
}

#[test]
fn nth_message_fault_hits_only_that_message() {
    let greylist = Fault::Reply(451, "4.3.0 Try again later".into());
    let server =
        SmtpServer::start(ServerConfig::default().with_faults(Faults::on_message(2, greylist)));
    let mut conn = connect(&server);
    let outcomes: Vec<_> = (1..=3)
        .map(|n| transaction(&mut conn, "a@one.example", format!("n{n}").as_bytes()))
        .collect();
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert!(outcomes[1].as_ref().is_err_and(SmtpError::is_transient));

    let texts: Vec<_> = server.received().iter().map(|m| m.text()).collect();
    assert_eq!(texts, ["n1\r\n", "n3\r\n"]);
}

#[test]
fn reply_421_closes_the_connection() {
    let shutting_down = Faults::from_fn(|step| {
        matches!(step.phase, Phase::Mail { .. })
            .then(|| Fault::Reply(421, "4.3.2 Service shutting down".into()))
    });
    let server = SmtpServer::start(ServerConfig::default().with_faults(shutting_down));
    let mut conn = connect(&server);
    assert_eq!(code(mail(&mut conn)), Some(421));
    assert!(!conn.test_connected(), "the server hung up after 421");
}

#[test]
fn connect_fault_replaces_the_greeting() {
    let busy = Faults::from_fn(|step| {
        matches!(step.phase, Phase::Connect).then(|| Fault::Reply(421, "4.3.2 Too busy".into()))
    });
    let server = SmtpServer::start(ServerConfig::default().with_faults(busy));
    let error = SmtpConnection::connect(server.addr(), Some(TIMEOUT), &client_id(), None, None)
        .err()
        .expect("the greeting is refused");
    assert_eq!(error.status().map(u16::from), Some(421));
}

#[test]
fn drop_at_data_end_loses_the_message() {
    let server =
        SmtpServer::start(ServerConfig::default().with_faults(Faults::on_message(1, Fault::Drop)));
    let mut conn = connect(&server);
    assert_eq!(code(transaction(&mut conn, "a@one.example", b"lost")), None);
    assert!(!server.wait_for(1, Duration::from_millis(200)));
}

#[test]
fn drop_after_accept_keeps_the_message_but_never_answers() {
    let fault = Faults::on_message(1, Fault::DropAfterAccept);
    let server = SmtpServer::start(ServerConfig::default().with_faults(fault));
    let mut conn = connect(&server);
    assert_eq!(code(transaction(&mut conn, "a@one.example", b"kept")), None);
    assert!(server.wait_for(1, TIMEOUT));
    assert_eq!(server.received()[0].data, as_recorded(b"kept"));
}

#[test]
fn hang_holds_the_reply_until_the_client_gives_up_and_stop_ends_it() {
    let hang =
        Faults::from_fn(|step| matches!(step.phase, Phase::Mail { .. }).then_some(Fault::Hang));
    let mut server = SmtpServer::start(ServerConfig::default().with_faults(hang));
    let mut conn = connect(&server);
    conn.set_timeout(Some(Duration::from_millis(300))).unwrap();
    let started = Instant::now();
    assert_eq!(
        code(mail(&mut conn)),
        None,
        "no reply, only the client's timeout"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // The client still holds the connection open: stopping must not wait for the hang.
    let stopping = Instant::now();
    server.stop();
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

#[test]
fn delay_slows_the_reply_then_carries_on() {
    let slow = Faults::from_fn(|step| {
        matches!(step.phase, Phase::Mail { .. }).then_some(Fault::Delay(Duration::from_millis(300)))
    });
    let server = SmtpServer::start(ServerConfig::default().with_faults(slow));
    let mut conn = connect(&server);
    let started = Instant::now();
    let response = mail(&mut conn).expect("slow but normal");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(first_line(&response), "2.1.0 Ok");
}

/// What `plan` decides at `phase` of message number `message`.
fn ask(plan: &FaultFn, phase: Phase<'_>, message: u64) -> Option<Fault> {
    let step = Step {
        phase,
        connection: 1,
        message,
        tls: false,
    };
    plan(&step)
}

const DATA_END: Phase<'static> = Phase::DataEnd {
    from: FROM,
    rcpt: &[],
    data: b"x",
};

/// The fates of messages 1 to 2000 after their final dot.
fn fates(plan: &FaultFn) -> Vec<Option<Fault>> {
    (1..=2000).map(|n| ask(plan, DATA_END, n)).collect()
}

#[test]
fn random_faults_are_reproducible_and_follow_their_rates() {
    let mix = RandomFaults {
        seed: 42,
        p_4xx: 0.10,
        p_5xx: 0.05,
        p_drop_after_data: 0.05,
        every_n_421: 10,
        p_delay: 0.10,
        ..RandomFaults::default()
    };
    let fates_42 = fates(&mix.plan());
    assert_eq!(fates_42, fates(&mix.plan()), "same seed, same faults");
    assert_ne!(fates_42, fates(&RandomFaults { seed: 7, ..mix }.plan()));

    let count =
        |wanted: fn(&Fault) -> bool| fates_42.iter().flatten().filter(|f| wanted(f)).count();
    let near = |count: usize, expected: usize| count.abs_diff(expected) < expected / 3;
    assert!(near(count(|f| matches!(f, Fault::Reply(451, _))), 200));
    assert!(near(count(|f| matches!(f, Fault::Reply(550, _))), 100));
    assert!(near(count(|f| *f == Fault::DropAfterAccept), 100));
    assert!(near(count(|f| matches!(f, Fault::Delay(_))), 200));

    let mail = Phase::Mail { from: FROM };
    let refused_at_mail: Vec<u64> = (1..=30)
        .filter(|&n| ask(&mix.plan(), mail, n).is_some())
        .collect();
    assert_eq!(refused_at_mail, [10, 20, 30]);
    assert!(
        fates(&RandomFaults::default().plan())
            .iter()
            .all(Option::is_none)
    );
}

#[test]
fn first_of_combines_plans() {
    let mix = RandomFaults {
        seed: 1,
        p_4xx: 0.5,
        ..RandomFaults::default()
    };
    let bounce = Fault::Reply(550, "5.1.1 No such user".into());
    let combined = Faults::first_of(vec![
        Faults::on_recipient("nobody", bounce.clone()),
        mix.plan(),
    ]);
    let rcpt = |to| Phase::Rcpt { to };
    assert_eq!(ask(&combined, rcpt("nobody@two.example"), 1), Some(bounce));
    assert_eq!(ask(&combined, rcpt("a@one.example"), 1), None);
    assert_eq!(fates(&combined), fates(&mix.plan()));
}

#[test]
fn sixteen_concurrent_connections_are_served_together() {
    const CLIENTS: usize = 16;
    let server = SmtpServer::start(ServerConfig::default());
    let all_connected = Arc::new(Barrier::new(CLIENTS));
    thread::scope(|scope| {
        for n in 0..CLIENTS {
            let (server, all_connected) = (&server, Arc::clone(&all_connected));
            scope.spawn(move || {
                let mut conn = connect(server);
                all_connected.wait();
                let to = format!("r{n}@one.example");
                conn.send(&envelope(&[&to]), b"Subject: c\r\n\r\nc")
                    .expect("send");
                conn.quit().expect("QUIT");
            });
        }
    });
    assert!(server.wait_for(CLIENTS, TIMEOUT));
    assert_eq!(server.connections_opened(), CLIENTS as u64);
    assert_eq!(server.max_concurrent_connections(), CLIENTS as u64);
    let queue_ids: HashSet<_> = server.received().into_iter().map(|m| m.queue_id).collect();
    assert_eq!(queue_ids.len(), CLIENTS, "queue ids are unique");
    assert!(
        queue_ids
            .iter()
            .all(|id| id.chars().all(|c| c.is_ascii_hexdigit()))
    );
}

#[test]
fn stop_closes_idle_connections_promptly() {
    let mut server = SmtpServer::start(ServerConfig::default());
    let mut conn = connect(&server);
    let stopping = Instant::now();
    server.stop();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert!(!conn.test_connected());
}

/// A bare socket client, for protocol details lettre would paper over.
struct RawClient {
    reader: BufReader<TcpStream>,
}

impl RawClient {
    fn connect(server: &SmtpServer) -> RawClient {
        let stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        RawClient {
            reader: BufReader::new(stream),
        }
    }

    /// Sends `lines` (CRLF added) and returns the one-line reply without its CRLF.
    fn talk(&mut self, lines: &str) -> String {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{lines}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }
}
