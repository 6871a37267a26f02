//! An in-process SMTP relay for envoi's integration tests.
//!
//! envoi's promises about delivery (retry 4xx, fail 5xx, stop on refused authentication or
//! quota, log `unknown` when the connection is lost after the data was sent) are only worth
//! something if they hold against a real relay over real sockets. A mock of lettre's transport
//! would test our assumptions about SMTP instead of SMTP. So this is a small but real server:
//! it listens on `127.0.0.1`, speaks RFC 5321 with STARTTLS (RFC 3207), implicit TLS
//! (RFC 8314), AUTH PLAIN / LOGIN / XOAUTH2 (RFC 4954), and records everything it accepts.
//!
//! What real relays do to a sender now and then (greylisting, unknown users, quota, a dropped
//! connection right after the data, a relay that stops answering) is injected on purpose and
//! deterministically: [`ServerConfig::faults`] is asked at every [`Step`] of every session and
//! may answer with a [`Fault`]. [`Faults`] builds the common plans, [`RandomFaults`] a seeded
//! mix for soak tests that is the same on every run.
//!
//! Nothing here can hang a test: every read has a timeout, lines are bounded, a [`Fault::Hang`]
//! ends after [`ServerConfig::hang_limit`], and dropping the [`SmtpServer`] closes every
//! connection and joins every thread it started.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::pki::{self, CertKind};

/// The name the server greets with; the valid test certificate is issued for it.
pub const HOSTNAME: &str = "localhost";
/// The message size limit the server advertises (`SIZE`) and enforces.
pub const MAX_MESSAGE_BYTES: usize = 52_428_800;
/// The longest line (command or data) the server reads; longer ones end the session.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The refusal of an address that is not ASCII in a transaction without SMTPUTF8 (Postfix's).
const NEEDS_SMTPUTF8: &str = "5.6.7 Must declare SMTPUTF8 to send an internationalized address";

/// How the server offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(clippy::enum_variant_names)] // `StartTls` is named after the SMTP command.
pub enum Tls {
    /// Plain text only.
    #[default]
    None,
    /// Plain text first, upgraded with STARTTLS. `advertise: false` models a relay (or a
    /// man in the middle) that no longer offers STARTTLS: the command is refused too.
    StartTls { advertise: bool },
    /// TLS from the first byte (port 465 style).
    Implicit,
}

/// What the server is asked to be.
#[derive(Clone)]
pub struct ServerConfig {
    /// How TLS is offered.
    pub tls: Tls,
    /// Which certificate TLS presents.
    pub cert: CertKind,
    /// `(user, password)`: when set, AUTH is required before MAIL. For XOAUTH2 the password is
    /// the bearer token.
    pub auth: Option<(String, String)>,
    /// The fault plan, asked at every step; see [`Faults`].
    pub faults: FaultFn,
    /// A session whose client sends nothing for this long is closed.
    pub read_timeout: Duration,
    /// The longest a [`Fault::Hang`] holds a connection.
    pub hang_limit: Duration,
    /// Connections open at once beyond this are greeted `421 4.7.0 too many connections` and
    /// closed (Postfix's `smtpd_client_connection_count_limit`).
    pub connection_limit: Option<u64>,
    /// RCPTs in one transaction beyond this are answered `452 4.5.3 Error: too many
    /// recipients` (Postfix's `smtpd_recipient_limit`).
    pub recipient_limit: Option<usize>,
    /// The AUTH mechanisms advertised, when not the ones the server implements; a relay that
    /// offers only, say, `CRAM-MD5 NTLM` (it then refuses every AUTH with 504).
    pub advertised_auth: Option<&'static str>,
    /// Whether EHLO offers DSN (RFC 3461), as Postfix does.
    pub dsn: bool,
    /// Whether SMTPUTF8 (RFC 6531) is offered. Either way, an address that is not ASCII is
    /// refused in a transaction that did not declare it (`553 5.6.7`, as Postfix does).
    pub smtputf8: bool,
    /// Whether EHLO offers PIPELINING (RFC 2920), as Postfix does. The server reads commands
    /// from its buffer either way, so a client may send several in one write.
    pub pipelining: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tls: Tls::None,
            cert: CertKind::Valid,
            auth: None,
            faults: Faults::none(),
            read_timeout: Duration::from_secs(30),
            hang_limit: Duration::from_secs(60),
            connection_limit: None,
            recipient_limit: None,
            advertised_auth: None,
            dsn: true,
            smtputf8: true,
            pipelining: true,
        }
    }
}

impl ServerConfig {
    /// With this TLS mode.
    pub fn with_tls(self, tls: Tls) -> Self {
        ServerConfig { tls, ..self }
    }

    /// Presenting this certificate.
    pub fn with_cert(self, cert: CertKind) -> Self {
        ServerConfig { cert, ..self }
    }

    /// Requiring AUTH with these credentials.
    pub fn with_auth(self, user: &str, password: &str) -> Self {
        let auth = Some((user.to_owned(), password.to_owned()));
        ServerConfig { auth, ..self }
    }

    /// With this fault plan.
    pub fn with_faults(self, faults: FaultFn) -> Self {
        ServerConfig { faults, ..self }
    }

    /// Not offering SMTPUTF8, so refusing addresses that are not ASCII.
    pub fn without_smtputf8(self) -> Self {
        ServerConfig {
            smtputf8: false,
            ..self
        }
    }

    /// Not offering PIPELINING: a client must wait for each reply.
    pub fn without_pipelining(self) -> Self {
        ServerConfig {
            pipelining: false,
            ..self
        }
    }

    /// Taking at most `limit` connections at once.
    pub fn with_connection_limit(self, limit: u64) -> Self {
        let connection_limit = Some(limit);
        ServerConfig {
            connection_limit,
            ..self
        }
    }

    /// Taking at most `limit` recipients per transaction.
    pub fn with_recipient_limit(self, limit: usize) -> Self {
        let recipient_limit = Some(limit);
        ServerConfig {
            recipient_limit,
            ..self
        }
    }

    /// Offering DSN in EHLO, or not.
    pub fn with_dsn(self, dsn: bool) -> Self {
        ServerConfig { dsn, ..self }
    }
}

/// A point in a session where a fault can be injected, with its context.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Where the session is.
    pub phase: Phase<'a>,
    /// The connection's number on this server, from 1 in order of acceptance.
    pub connection: u64,
    /// The number of the connection's current (or last) mail transaction: the server numbers
    /// MAIL commands from 1 across all connections, in order of arrival; 0 before the
    /// connection's first MAIL. A retried message gets a new number.
    pub message: u64,
    /// Whether the connection is encrypted at this point.
    pub tls: bool,
}

/// Where a session is when the fault plan is asked.
#[derive(Debug, Clone, Copy)]
pub enum Phase<'a> {
    /// Just accepted; a fault replaces the 220 greeting.
    Connect,
    /// HELO or EHLO (asked again after STARTTLS).
    Ehlo,
    /// AUTH, before any credentials are exchanged.
    Auth { mechanism: &'a str },
    /// MAIL FROM, with the reverse path.
    Mail { from: &'a str },
    /// RCPT TO, with the recipient.
    Rcpt { to: &'a str },
    /// The DATA command, before the 354.
    Data,
    /// After the final dot, before the message is accepted.
    DataEnd {
        from: &'a str,
        rcpt: &'a [String],
        data: &'a [u8],
    },
}

/// What goes wrong at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Reply this instead of the normal reply; the step has no effect (no transaction, no
    /// recipient, no message recorded...). Meant for 4xx/5xx, e.g. `451 4.3.0`, `550 5.1.1`,
    /// `552 5.3.4`, `535 5.7.8`. A 421 also closes the connection.
    Reply(u16, String),
    /// Close the connection without replying. At `DataEnd` the message is not recorded.
    Drop,
    /// At `DataEnd`: record the message (a real relay may have queued it), then close without
    /// replying, so the sender cannot know. At any other step it acts as [`Fault::Drop`].
    DropAfterAccept,
    /// Stop answering: read and ignore whatever comes until the client closes, the server
    /// stops, or [`ServerConfig::hang_limit`] passes; then close.
    Hang,
    /// Wait this long, then carry on normally (a slow relay).
    Delay(Duration),
}

/// A fault plan: asked at every [`Step`], `None` means behave normally.
pub type FaultFn = Arc<dyn Fn(&Step<'_>) -> Option<Fault> + Send + Sync>;

/// Constructors for common fault plans.
pub struct Faults;

impl Faults {
    /// A well-behaved relay.
    pub fn none() -> FaultFn {
        Arc::new(|_| None)
    }

    /// Any plan, from a closure (this only helps type inference).
    pub fn from_fn(plan: impl Fn(&Step<'_>) -> Option<Fault> + Send + Sync + 'static) -> FaultFn {
        Arc::new(plan)
    }

    /// The `n`th mail transaction (see [`Step::message`]) meets `fault` after its final dot.
    pub fn on_message(n: u64, fault: Fault) -> FaultFn {
        Self::from_fn(move |step| {
            let at_data_end = matches!(step.phase, Phase::DataEnd { .. });
            (at_data_end && step.message == n).then(|| fault.clone())
        })
    }

    /// Every RCPT TO whose address contains `pattern` meets `fault`.
    pub fn on_recipient(pattern: &str, fault: Fault) -> FaultFn {
        let pattern = pattern.to_owned();
        Self::from_fn(move |step| match step.phase {
            Phase::Rcpt { to } if to.contains(&pattern) => Some(fault.clone()),
            _ => None,
        })
    }

    /// The first fault any of `plans` asks for.
    pub fn first_of(plans: Vec<FaultFn>) -> FaultFn {
        Self::from_fn(move |step| plans.iter().find_map(|plan| plan(step)))
    }
}

/// A seeded, reproducible mix of faults for soak tests. Each message's fate depends only on
/// `(seed, message number)`, so a failing run can be replayed exactly.
///
/// After the final dot one draw picks, with these probabilities, a `451 4.3.0` (`p_4xx`), a
/// `550 5.1.1` (`p_5xx`), a [`Fault::DropAfterAccept`] (`p_drop_after_data`) or a
/// [`Fault::Delay`] of `delay` (`p_delay`); their sum should not exceed 1. Independently,
/// when `every_n_421` is not 0, every message whose number is a multiple of it gets
/// `421 4.3.2` at MAIL and its connection is closed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomFaults {
    pub seed: u64,
    pub p_4xx: f64,
    pub p_5xx: f64,
    pub p_drop_after_data: f64,
    pub every_n_421: u64,
    pub p_delay: f64,
    pub delay: Duration,
}

impl Default for RandomFaults {
    fn default() -> Self {
        RandomFaults {
            seed: 0,
            p_4xx: 0.0,
            p_5xx: 0.0,
            p_drop_after_data: 0.0,
            every_n_421: 0,
            p_delay: 0.0,
            delay: Duration::from_millis(100),
        }
    }
}

impl RandomFaults {
    /// The fault plan.
    pub fn plan(self) -> FaultFn {
        Faults::from_fn(move |step| self.fault_at(step))
    }

    fn fault_at(&self, step: &Step<'_>) -> Option<Fault> {
        match step.phase {
            Phase::Mail { .. }
                if self.every_n_421 != 0 && step.message.is_multiple_of(self.every_n_421) =>
            {
                Some(Fault::Reply(421, "4.3.2 Service shutting down".into()))
            }
            Phase::DataEnd { .. } => {
                let bands = [
                    (
                        self.p_4xx,
                        Fault::Reply(451, "4.3.0 Temporary failure".into()),
                    ),
                    (
                        self.p_5xx,
                        Fault::Reply(550, "5.1.1 Mailbox unavailable".into()),
                    ),
                    (self.p_drop_after_data, Fault::DropAfterAccept),
                    (self.p_delay, Fault::Delay(self.delay)),
                ];
                let mut draw = unit_interval(splitmix64(self.seed ^ splitmix64(step.message)));
                bands.into_iter().find_map(|(p, fault)| {
                    draw -= p;
                    (draw < 0.0).then_some(fault)
                })
            }
            _ => None,
        }
    }
}

/// Sebastiano Vigna's splitmix64: a bijective 64-bit mixer, good enough to drive test faults.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits to `[0, 1)`.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A message the server accepted (or, with [`Fault::DropAfterAccept`], silently kept).
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// What followed `MAIL FROM:<..>` (`RET=HDRS ENVID=..`), as sent.
    pub mail_params: String,
    /// What followed each `RCPT TO:<..>` (`NOTIFY=.. ORCPT=..`), in `rcpt_to`'s order.
    pub rcpt_params: Vec<String>,
    /// The message as transmitted, dot-unstuffed. Per RFC 5321 the CRLF before the final
    /// `.` belongs to the data, so lettre (which always sends `CRLF . CRLF` after the
    /// message) delivers the message bytes plus one CRLF.
    pub data: Vec<u8>,
    /// The id given in `250 2.0.0 Ok: queued as <ID>` (upper-case hex, unique per process).
    pub queue_id: String,
    pub at: Instant,
    /// The connection it came on (see [`Step::connection`]).
    pub connection: u64,
}

impl Received {
    /// The data as text (lossy), for assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A running server. Dropping it stops it.
pub struct SmtpServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// Binds `127.0.0.1` on a free port and starts accepting, one thread per connection.
    pub fn start(config: ServerConfig) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test SMTP server");
        let addr = listener.local_addr().expect("test SMTP server address");
        let tls = (config.tls != Tls::None).then(|| tls_config(config.cert));
        let shared = Arc::new(Shared {
            config,
            tls,
            state: Mutex::default(),
            state_changed: Condvar::new(),
            received: Mutex::default(),
            received_changed: Condvar::new(),
            transcripts: Mutex::default(),
            counters: Counters::default(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(listener, shared))
        };
        SmtpServer {
            shared,
            addr,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message accepted so far, in order of acceptance.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    pub fn received_count(&self) -> usize {
        lock(&self.shared.received).len()
    }

    /// Waits until at least `n` messages were accepted; false if `timeout` passed first.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let received = lock(&self.shared.received);
        let (received, _) = self
            .shared
            .received_changed
            .wait_timeout_while(received, timeout, |received| received.len() < n)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        received.len() >= n
    }

    /// Commands that arrived while the one before them was still unanswered (the client
    /// sent them in the same write): 0 for a client that waits for every reply.
    pub fn commands_sent_ahead(&self) -> u64 {
        self.shared.counters.commands_ahead.load(Ordering::SeqCst)
    }

    /// Messages whose final dot arrived with the next command behind it, before the message's
    /// reply went out (a client sending the next envelope with the content, RFC 2920 3.1).
    pub fn commands_behind_content(&self) -> u64 {
        self.shared.counters.behind_content.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections_opened(&self) -> u64 {
        self.shared
            .counters
            .connections_opened
            .load(Ordering::SeqCst)
    }

    /// The most connections open at once. A connection counts from its acceptance until the
    /// server closes it or sees it closed (a 221 or 421 reply releases it just before it is
    /// sent), so a client that drops a connection without QUIT and reconnects at once may be
    /// over-counted for an instant.
    pub fn max_concurrent_connections(&self) -> u64 {
        self.shared.counters.max_open.load(Ordering::SeqCst)
    }

    /// Successful AUTH exchanges.
    pub fn auth_successes(&self) -> u64 {
        self.shared.counters.auth_successes.load(Ordering::SeqCst)
    }

    /// Connections refused for being over [`ServerConfig::connection_limit`].
    pub fn connections_refused(&self) -> u64 {
        self.shared
            .counters
            .connections_refused
            .load(Ordering::SeqCst)
    }

    /// AUTH exchanges answered with 535.
    pub fn auth_failures(&self) -> u64 {
        self.shared.counters.auth_failures.load(Ordering::SeqCst)
    }

    /// The command lines a connection sent, without line endings; AUTH payloads read
    /// `<redacted>` and message data is not included.
    pub fn transcript(&self, connection: u64) -> Vec<String> {
        let transcripts = lock(&self.shared.transcripts);
        transcripts.get(&connection).cloned().unwrap_or_default()
    }

    /// The command lines of all connections, in connection order.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.shared.transcripts)
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// Closes every connection and joins every thread. Also done on drop.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        {
            let mut state = lock(&self.shared.state);
            state.stopping = true;
            for stream in state.live.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.state_changed.notify_all();
        // Wake the blocking accept(); the loop sees `stopping` and ends.
        let _ = TcpStream::connect(self.addr);
        let _ = acceptor.join();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// State shared by the acceptor, the sessions and the test.
struct Shared {
    config: ServerConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Mutex<State>,
    state_changed: Condvar,
    received: Mutex<Vec<Received>>,
    received_changed: Condvar,
    transcripts: Mutex<BTreeMap<u64, Vec<String>>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    connections_opened: AtomicU64,
    open_now: AtomicU64,
    max_open: AtomicU64,
    /// MAIL commands so far: the source of [`Step::message`].
    messages: AtomicU64,
    auth_successes: AtomicU64,
    /// Connections greeted with 421 for being over [`ServerConfig::connection_limit`].
    connections_refused: AtomicU64,
    auth_failures: AtomicU64,
    /// See [`SmtpServer::commands_sent_ahead`].
    commands_ahead: AtomicU64,
    /// See [`SmtpServer::commands_behind_content`].
    behind_content: AtomicU64,
}

/// Under one lock so that no connection can be registered after `stop` closed the others.
#[derive(Default)]
struct State {
    stopping: bool,
    /// A handle on each open connection's socket, for `stop` to shut it down.
    live: HashMap<u64, TcpStream>,
}

impl Shared {
    /// Counts a new connection; `None` when the server is stopping.
    fn register(self: &Arc<Self>, stream: &TcpStream) -> Option<Registration> {
        let handle = stream.try_clone().ok()?;
        let mut state = lock(&self.state);
        if state.stopping {
            return None;
        }
        let id = self
            .counters
            .connections_opened
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        state.live.insert(id, handle);
        let open = self.counters.open_now.fetch_add(1, Ordering::SeqCst) + 1;
        self.counters.max_open.fetch_max(open, Ordering::SeqCst);
        Some(Registration {
            shared: Arc::clone(self),
            id,
        })
    }

    /// Sleeps for `duration` unless the server stops first; false if it did.
    fn pause(&self, duration: Duration) -> bool {
        let state = lock(&self.state);
        let (state, _) = self
            .state_changed
            .wait_timeout_while(state, duration, |state| !state.stopping)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        !state.stopping
    }

    fn log_command(&self, connection: u64, line: String) {
        lock(&self.transcripts)
            .entry(connection)
            .or_default()
            .push(line);
    }

    /// Keeps a message and returns its queue id.
    fn record(&self, connection: u64, transaction: &Transaction, data: &[u8]) -> String {
        static QUEUE_IDS: AtomicU64 = AtomicU64::new(1);
        // splitmix64 is a bijection, so distinct counters give distinct, random-looking ids.
        let queue_id = format!(
            "{:016X}",
            splitmix64(QUEUE_IDS.fetch_add(1, Ordering::SeqCst))
        );
        lock(&self.received).push(Received {
            mail_from: transaction.from.clone(),
            rcpt_to: transaction.rcpt.clone(),
            mail_params: transaction.mail_params.clone(),
            rcpt_params: transaction.rcpt_params.clone(),
            data: data.to_vec(),
            queue_id: queue_id.clone(),
            at: Instant::now(),
            connection,
        });
        self.received_changed.notify_all();
        queue_id
    }
}

/// A connection's place in the server's bookkeeping; dropping it releases the place.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.shared.state).live.remove(&self.id);
        self.shared.counters.open_now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn tls_config(cert: CertKind) -> Arc<rustls::ServerConfig> {
    let identity = pki::identity(cert);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.private_key())
        .expect("test certificate and key match");
    Arc::new(config)
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Some(registration) = shared.register(&stream) else {
            break;
        };
        sessions.retain(|session| !session.is_finished());
        sessions.push(thread::spawn(move || Session::serve(stream, registration)));
    }
    for session in sessions {
        let _ = session.join();
    }
}

/// Anything a session can talk through: the plain socket or a TLS stream over it.
trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// Whether a session goes on after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The envelope of the mail transaction in progress.
#[derive(Clone, Default)]
struct Transaction {
    from: String,
    rcpt: Vec<String>,
    mail_params: String,
    rcpt_params: Vec<String>,
    /// MAIL FROM declared SMTPUTF8.
    smtputf8: bool,
}

/// One client connection, from greeting to close.
struct Session {
    shared: Arc<Shared>,
    id: u64,
    /// `None` once the connection no longer counts as open.
    registration: Option<Registration>,
    /// The socket itself, for timeouts and shutdown whatever `stream` wraps it in.
    socket: TcpStream,
    stream: BufReader<Box<dyn ReadWrite>>,
    encrypted: bool,
    greeted: bool,
    authenticated: bool,
    message: u64,
    transaction: Option<Transaction>,
}

impl Session {
    fn serve(socket: TcpStream, registration: Registration) {
        let shared = Arc::clone(&registration.shared);
        if socket
            .set_read_timeout(Some(shared.config.read_timeout))
            .is_err()
        {
            return;
        }
        let Ok(plain) = socket.try_clone() else {
            return;
        };
        let mut session = Session {
            id: registration.id,
            shared,
            registration: Some(registration),
            socket,
            stream: BufReader::new(Box::new(plain)),
            encrypted: false,
            greeted: false,
            authenticated: false,
            message: 0,
            transaction: None,
        };
        // An I/O error only means the client went away or timed out: the session just ends.
        let _ = session.run();
        session.release();
        let _ = session.socket.shutdown(Shutdown::Both);
    }

    fn run(&mut self) -> io::Result<()> {
        if self.shared.config.tls == Tls::Implicit {
            self.start_tls()?;
        }
        let open = self.shared.counters.open_now.load(Ordering::SeqCst);
        let over_limit = self
            .shared
            .config
            .connection_limit
            .is_some_and(|l| open > l);
        let flow = match self.inject(Phase::Connect)? {
            Some(flow) => flow,
            None if over_limit => {
                self.shared
                    .counters
                    .connections_refused
                    .fetch_add(1, Ordering::SeqCst);
                self.reply(421, "4.7.0 Error: too many connections from 127.0.0.1")?
            }
            None => self.reply(220, &format!("{HOSTNAME} ESMTP envoi test relay"))?,
        };
        if flow == Flow::Close {
            return Ok(());
        }
        while let Some(line) = self.read_line()? {
            if !self.stream.buffer().is_empty() {
                // The next command is already here, before this one's reply went out.
                self.shared
                    .counters
                    .commands_ahead
                    .fetch_add(1, Ordering::SeqCst);
            }
            let line = String::from_utf8_lossy(&line);
            if self.command(line.trim_end_matches(['\r', '\n']))? == Flow::Close {
                break;
            }
        }
        Ok(())
    }

    /// Stops counting this connection as open (idempotent).
    fn release(&mut self) {
        self.registration = None;
    }

    fn command(&mut self, line: &str) -> io::Result<Flow> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        let logged = if verb == "AUTH" {
            redact_auth(arg)
        } else {
            line.to_owned()
        };
        self.shared.log_command(self.id, logged);
        match verb.as_str() {
            "EHLO" => self.hello(arg, true),
            "HELO" => self.hello(arg, false),
            "STARTTLS" => self.starttls(),
            "AUTH" => self.auth(arg),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => self.data(),
            "RSET" => {
                self.transaction = None;
                self.reply(250, "2.0.0 Ok")
            }
            "NOOP" => self.reply(250, "2.0.0 Ok"),
            "QUIT" => self.reply(221, "2.0.0 Bye"),
            _ => self.reply(502, "5.5.2 Error: command not recognized"),
        }
    }

    fn hello(&mut self, client: &str, extended: bool) -> io::Result<Flow> {
        if client.trim().is_empty() {
            return self.reply(501, "5.5.4 Syntax: EHLO hostname");
        }
        if let Some(flow) = self.inject(Phase::Ehlo)? {
            return Ok(flow);
        }
        self.greeted = true;
        self.transaction = None;
        if !extended {
            return self.reply(250, HOSTNAME);
        }
        let mut lines = vec![
            format!("{HOSTNAME} greets {client}"),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            format!("SIZE {MAX_MESSAGE_BYTES}"),
        ];
        if self.shared.config.smtputf8 {
            lines.push("SMTPUTF8".into());
        }
        if self.starttls_offered() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            let offered = self.shared.config.advertised_auth;
            lines.push(format!("AUTH {}", offered.unwrap_or("PLAIN LOGIN XOAUTH2")));
        }
        if self.shared.config.dsn {
            lines.push("DSN".into());
        }
        if self.shared.config.pipelining {
            lines.push("PIPELINING".into());
        }
        self.reply_lines(250, &lines)
    }

    fn starttls_offered(&self) -> bool {
        self.shared.config.tls == Tls::StartTls { advertise: true } && !self.encrypted
    }

    /// Credentials only ever travel encrypted when the server has TLS at all.
    fn auth_offered(&self) -> bool {
        self.shared.config.auth.is_some() && (self.encrypted || self.shared.config.tls == Tls::None)
    }

    fn starttls(&mut self) -> io::Result<Flow> {
        if !self.starttls_offered() {
            return self.reply(454, "4.7.0 TLS not available");
        }
        self.reply(220, "2.0.0 Ready to start TLS")?;
        self.start_tls()?;
        // RFC 3207: forget everything learnt before TLS; the client must greet again.
        self.greeted = false;
        self.transaction = None;
        Ok(Flow::Continue)
    }

    /// Wraps the socket in TLS. Anything the client sent ahead in plain text is dropped with
    /// the old buffer, as RFC 3207 requires.
    fn start_tls(&mut self) -> io::Result<()> {
        let config = self.shared.tls.clone().expect("TLS configured");
        let tls = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let stream = rustls::StreamOwned::new(tls, self.socket.try_clone()?);
        self.stream = BufReader::new(Box::new(stream));
        self.encrypted = true;
        Ok(())
    }

    fn auth(&mut self, arg: &str) -> io::Result<Flow> {
        let Some((user, password)) = self.shared.config.auth.clone() else {
            return self.reply(503, "5.5.1 Error: authentication not enabled");
        };
        if !self.auth_offered() {
            return self.reply(538, "5.7.11 Encryption required for authentication");
        }
        if !self.greeted || self.authenticated || self.transaction.is_some() {
            return self.reply(503, "5.5.1 Error: AUTH not allowed now");
        }
        let mut words = arg.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next();
        let advertised = self.shared.config.advertised_auth;
        let offered = advertised.is_none_or(|list| list.split(' ').any(|m| m == mechanism));
        if !["PLAIN", "LOGIN", "XOAUTH2"].contains(&mechanism.as_str()) || !offered {
            return self.reply(504, "5.5.4 Unrecognized authentication type");
        }
        if let Some(flow) = self.inject(Phase::Auth {
            mechanism: &mechanism,
        })? {
            return Ok(flow);
        }
        let Some(offered) = self.read_credentials(&mechanism, initial)? else {
            return self.reply(501, "5.5.2 Authentication cancelled or not base64");
        };
        if offered == (user, password) {
            self.authenticated = true;
            self.shared
                .counters
                .auth_successes
                .fetch_add(1, Ordering::SeqCst);
            self.reply(235, "2.7.0 Authentication successful")
        } else {
            self.shared
                .counters
                .auth_failures
                .fetch_add(1, Ordering::SeqCst);
            self.reply(535, "5.7.8 Error: authentication failed")
        }
    }

    /// The `(user, password)` the client offers; `None` if it cancelled or sent something
    /// that is not base64. A malformed payload yields empty credentials, which never match.
    fn read_credentials(
        &mut self,
        mechanism: &str,
        initial: Option<&str>,
    ) -> io::Result<Option<(String, String)>> {
        Ok(match mechanism {
            "LOGIN" => {
                let Some(user) = self.sasl_answer(initial, "Username:")? else {
                    return Ok(None);
                };
                self.sasl_answer(None, "Password:")?
                    .map(|password| (text(&user), text(&password)))
            }
            "XOAUTH2" => self.sasl_answer(initial, "")?.map(|a| parse_xoauth2(&a)),
            _ => self.sasl_answer(initial, "")?.map(|a| parse_plain(&a)),
        })
    }

    /// One SASL round: the client's initial response if it gave one, else its answer to a
    /// 334 `challenge`; decoded. `None` if it cancelled (`*`) or the answer is not base64.
    fn sasl_answer(
        &mut self,
        initial: Option<&str>,
        challenge: &str,
    ) -> io::Result<Option<Vec<u8>>> {
        let answer = match initial {
            Some(initial) => initial.to_owned(),
            None => {
                self.reply(334, &BASE64.encode(challenge))?;
                let line = self.read_line()?.ok_or(io::ErrorKind::UnexpectedEof)?;
                self.shared.log_command(self.id, REDACTED.into());
                text(&line).trim().to_owned()
            }
        };
        Ok(match answer.as_str() {
            "*" => None,
            "=" => Some(Vec::new()),
            encoded => BASE64.decode(encoded).ok(),
        })
    }

    fn mail(&mut self, arg: &str) -> io::Result<Flow> {
        if !self.greeted {
            return self.reply(503, "5.5.1 Error: send HELO/EHLO first");
        }
        if self.shared.config.auth.is_some() && !self.authenticated {
            return self.reply(530, "5.7.0 Authentication required");
        }
        if self.transaction.is_some() {
            return self.reply(503, "5.5.1 Error: nested MAIL command");
        }
        let Some((from, mail_params)) = path_and_params(arg, "FROM:") else {
            return self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>");
        };
        let smtputf8 = mail_params
            .split_whitespace()
            .any(|p| p.eq_ignore_ascii_case("SMTPUTF8"));
        if smtputf8 && !self.shared.config.smtputf8 {
            return self.reply(555, "5.5.4 Unsupported option: SMTPUTF8");
        }
        if !from.is_ascii() && !smtputf8 {
            return self.reply(553, NEEDS_SMTPUTF8);
        }
        self.message = self.shared.counters.messages.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(flow) = self.inject(Phase::Mail { from: &from })? {
            return Ok(flow);
        }
        self.transaction = Some(Transaction {
            from,
            rcpt: Vec::new(),
            mail_params,
            rcpt_params: Vec::new(),
            smtputf8,
        });
        self.reply(250, "2.1.0 Ok")
    }

    fn rcpt(&mut self, arg: &str) -> io::Result<Flow> {
        if self.transaction.is_none() {
            return self.reply(503, "5.5.1 Error: need MAIL command");
        }
        let Some((to, params)) = path_and_params(arg, "TO:") else {
            return self.reply(501, "5.5.4 Syntax: RCPT TO:<address>");
        };
        if !to.is_ascii() && !self.transaction.as_ref().is_some_and(|t| t.smtputf8) {
            return self.reply(553, NEEDS_SMTPUTF8);
        }
        // The limit first, as Postfix counts before it looks at the address.
        let taken = self.transaction.as_ref().map_or(0, |t| t.rcpt.len());
        let limit = self.shared.config.recipient_limit;
        if limit.is_some_and(|l| taken >= l) {
            return self.reply(452, "4.5.3 Error: too many recipients");
        }
        if let Some(flow) = self.inject(Phase::Rcpt { to: &to })? {
            return Ok(flow);
        }
        if let Some(transaction) = &mut self.transaction {
            transaction.rcpt.push(to);
            transaction.rcpt_params.push(params);
        }
        self.reply(250, "2.1.5 Ok")
    }

    fn data(&mut self) -> io::Result<Flow> {
        match &self.transaction {
            None => return self.reply(503, "5.5.1 Error: need MAIL command"),
            Some(transaction) if transaction.rcpt.is_empty() => {
                return self.reply(503, "5.5.1 Error: need RCPT command");
            }
            Some(_) => {}
        }
        if let Some(flow) = self.inject(Phase::Data)? {
            return Ok(flow);
        }
        self.reply(354, "End data with <CR><LF>.<CR><LF>")?;
        let data = self.read_data()?;
        if !self.stream.buffer().is_empty() {
            self.shared
                .counters
                .behind_content
                .fetch_add(1, Ordering::SeqCst);
        }
        // Kept in `self.transaction` while the fault plan is asked: `DropAfterAccept` records it.
        let transaction = self.transaction.clone().unwrap_or_default();
        let (from, rcpt) = (&transaction.from, &transaction.rcpt);
        let Some(data) = data else {
            self.transaction = None;
            return self.reply(552, "5.3.4 Message size exceeds fixed maximum message size");
        };
        let end = Phase::DataEnd {
            from,
            rcpt,
            data: &data,
        };
        let injected = self.inject(end);
        self.transaction = None;
        if let Some(flow) = injected? {
            return Ok(flow);
        }
        let queue_id = self.shared.record(self.id, &transaction, &data);
        self.reply(250, &format!("2.0.0 Ok: queued as {queue_id}"))
    }

    /// Reads message data up to the final dot, dot-unstuffed; `None` if it was too big (it is
    /// still read to the end, so the session stays in step).
    fn read_data(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut data = Vec::new();
        let mut too_big = false;
        loop {
            let line = self.read_line()?.ok_or(io::ErrorKind::UnexpectedEof)?;
            if line == b".\r\n" || line == b".\n" {
                return Ok((!too_big).then_some(data));
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            too_big |= data.len() + line.len() > MAX_MESSAGE_BYTES;
            if !too_big {
                data.extend_from_slice(line);
            }
        }
    }

    /// Asks the fault plan about `phase` and carries the fault out. `Some(flow)` when the
    /// fault took the step's place, `None` when the step should proceed normally.
    fn inject(&mut self, phase: Phase<'_>) -> io::Result<Option<Flow>> {
        let step = Step {
            phase,
            connection: self.id,
            message: self.message,
            tls: self.encrypted,
        };
        let Some(fault) = (self.shared.config.faults)(&step) else {
            return Ok(None);
        };
        match fault {
            Fault::Reply(code, text) => self.reply(code, &text).map(Some),
            Fault::Delay(duration) => Ok((!self.shared.pause(duration)).then_some(Flow::Close)),
            Fault::Drop => Ok(Some(Flow::Close)),
            Fault::DropAfterAccept => {
                if let (Phase::DataEnd { data, .. }, Some(transaction)) = (phase, &self.transaction)
                {
                    self.shared.record(self.id, transaction, data);
                }
                Ok(Some(Flow::Close))
            }
            Fault::Hang => {
                self.hang();
                Ok(Some(Flow::Close))
            }
        }
    }

    /// Reads and ignores input until the client closes, the server stops (which shuts the
    /// socket down) or the hang limit passes.
    fn hang(&mut self) {
        let deadline = Instant::now() + self.shared.config.hang_limit;
        let mut ignored = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.socket.set_read_timeout(Some(left)).is_err() {
                return;
            }
            if matches!(self.stream.read(&mut ignored), Ok(0) | Err(_)) {
                return;
            }
        }
    }

    /// One line including its line ending; `None` at end of stream. A line longer than
    /// [`MAX_LINE_BYTES`] is answered with 500 and ends the session.
    fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let limit = MAX_LINE_BYTES as u64;
        (&mut self.stream)
            .take(limit)
            .read_until(b'\n', &mut line)?;
        if line.ends_with(b"\n") {
            return Ok(Some(line));
        }
        if line.len() < MAX_LINE_BYTES {
            return Ok(None);
        }
        self.reply(500, "5.5.0 Error: line too long")?;
        Err(io::ErrorKind::InvalidData.into())
    }

    fn reply(&mut self, code: u16, text: &str) -> io::Result<Flow> {
        self.reply_lines(code, &[text])
    }

    /// Sends a (multi-line) reply. 221 and 421 close the connection.
    fn reply_lines(&mut self, code: u16, lines: &[impl AsRef<str>]) -> io::Result<Flow> {
        let flow = if matches!(code, 221 | 421) {
            // Released before the reply goes out, so a client that reconnects as soon as it
            // reads it is not counted twice.
            self.release();
            Flow::Close
        } else {
            Flow::Continue
        };
        let mut reply = String::new();
        for (i, line) in lines.iter().enumerate() {
            let separator = if i + 1 < lines.len() { '-' } else { ' ' };
            let _ = write!(reply, "{code}{separator}{}\r\n", line.as_ref());
        }
        let stream = self.stream.get_mut();
        stream.write_all(reply.as_bytes())?;
        stream.flush()?;
        Ok(flow)
    }
}

const REDACTED: &str = "<redacted>";

/// `AUTH PLAIN <payload>` → `AUTH PLAIN <redacted>`: the transcript never holds a secret.
fn redact_auth(arg: &str) -> String {
    let mut words = arg.split_whitespace();
    let mechanism = words.next().unwrap_or("");
    match words.next() {
        Some(_) => format!("AUTH {mechanism} {REDACTED}"),
        None => format!("AUTH {mechanism}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// SASL PLAIN: `authzid NUL authcid NUL password`.
fn parse_plain(answer: &[u8]) -> (String, String) {
    match answer.split(|&b| b == 0).collect::<Vec<_>>()[..] {
        [_authzid, user, password] => (text(user), text(password)),
        _ => Default::default(),
    }
}

/// XOAUTH2: `user=USER ^A auth=Bearer TOKEN ^A ^A`.
fn parse_xoauth2(answer: &[u8]) -> (String, String) {
    let answer = text(answer);
    let field = |name: &str| {
        answer
            .split('\x01')
            .find_map(|field| field.strip_prefix(name))
            .unwrap_or_default()
            .to_owned()
    };
    (field("user="), field("auth=Bearer "))
}

/// The address in `FROM:<address> PARAMS` (or `TO:`); parameters such as `SIZE=` or
/// `BODY=8BITMIME` are accepted and ignored.
/// `FROM:<address> PARAMS` → the address and the parameters (trimmed).
fn path_and_params(arg: &str, keyword: &str) -> Option<(String, String)> {
    let (head, rest) = arg.split_at_checked(keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let (address, params) = rest.trim_start().strip_prefix('<')?.split_once('>')?;
    Some((address.to_owned(), params.trim().to_owned()))
}
