//! Campaigns wired to the in-process relay, runs of the real binary, and what the delivery
//! tests ask of the server and the log.
//!
//! [`RelayConfig`] writes the `[smtp]` and `[send]` sections for a [`SmtpServer`], so tests
//! say only what differs ("implicit TLS", "concurrency 1", "rate 10/s") instead of copying
//! configuration strings. [`Run`] is one finished run of envoi with its exit code and output.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::campaign::{LogRow, TestCampaign};
use super::pki;
use super::smtp_server::{Fault, FaultFn, Faults, Phase, ServerConfig, SmtpServer, Tls};

/// The relay account of every TLS test.
pub const USER: &str = "ombudsman@ombudsman.example";
/// Its password: distinctive, so that a leak scan cannot match anything else by chance.
pub const PASSWORD: &str = "Kx9-never-print-pässwörd-7731";
/// The environment variable envoi reads the password from.
pub const PASSWORD_ENV: &str = "ENVOI_SMTP_PASSWORD";

/// A relay with STARTTLS that requires [`USER`] / [`PASSWORD`].
pub fn starttls_server(faults: FaultFn) -> SmtpServer {
    SmtpServer::start(
        ServerConfig::default()
            .with_tls(Tls::StartTls { advertise: true })
            .with_auth(USER, PASSWORD)
            .with_faults(faults),
    )
}

/// A plain-text loopback relay without authentication, with this fault plan.
pub fn plain_server(faults: FaultFn) -> SmtpServer {
    SmtpServer::start(ServerConfig::default().with_faults(faults))
}

/// The `[smtp]` and `[send]` settings of a test campaign.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    host: String,
    port: u16,
    security: &'static str,
    username: Option<String>,
    auth: Option<&'static str>,
    password_command: Option<String>,
    ca_file: bool,
    timeout: u64,
    rate: Option<String>,
    concurrency: usize,
    max_attempts: u32,
    retry_delay: String,
}

impl RelayConfig {
    /// Plain text to `127.0.0.1:port`, no login; fast retries.
    pub fn plain_port(port: u16) -> RelayConfig {
        RelayConfig {
            host: "127.0.0.1".into(),
            port,
            security: "none",
            username: None,
            auth: None,
            password_command: None,
            ca_file: false,
            timeout: 10,
            rate: None,
            concurrency: 2,
            max_attempts: 3,
            retry_delay: "50ms".into(),
        }
    }

    /// Plain text to this server, no login.
    pub fn plain(server: &SmtpServer) -> RelayConfig {
        Self::plain_port(server.port())
    }

    /// STARTTLS to `localhost` (the name on the test certificate), trusting the test CA, as
    /// [`USER`]. The password is the caller's business (see [`TestCampaign::run_env`]).
    pub fn starttls(server: &SmtpServer) -> RelayConfig {
        RelayConfig {
            host: "localhost".into(),
            security: "starttls",
            username: Some(USER.into()),
            ca_file: true,
            ..Self::plain(server)
        }
    }

    /// Implicit TLS (port 465 style) to `localhost`, as [`USER`].
    pub fn implicit_tls(server: &SmtpServer) -> RelayConfig {
        RelayConfig {
            security: "tls",
            ..Self::starttls(server)
        }
    }

    pub fn security(self, security: &'static str) -> Self {
        RelayConfig { security, ..self }
    }

    pub fn username(self, user: &str) -> Self {
        RelayConfig {
            username: Some(user.into()),
            ..self
        }
    }

    pub fn auth(self, mechanism: &'static str) -> Self {
        RelayConfig {
            auth: Some(mechanism),
            ..self
        }
    }

    pub fn password_command(self, command: &str) -> Self {
        RelayConfig {
            password_command: Some(command.into()),
            ..self
        }
    }

    /// Seconds to wait for any one reply.
    pub fn timeout(self, timeout: u64) -> Self {
        RelayConfig { timeout, ..self }
    }

    pub fn rate(self, rate: &str) -> Self {
        RelayConfig {
            rate: Some(rate.into()),
            ..self
        }
    }

    pub fn concurrency(self, concurrency: usize) -> Self {
        RelayConfig {
            concurrency,
            ..self
        }
    }

    pub fn max_attempts(self, max_attempts: u32) -> Self {
        RelayConfig {
            max_attempts,
            ..self
        }
    }

    pub fn retry_delay(self, retry_delay: &str) -> Self {
        RelayConfig {
            retry_delay: retry_delay.into(),
            ..self
        }
    }

    /// The whole `envoi.toml`.
    pub fn toml(&self) -> String {
        let mut smtp = format!(
            "host = \"{}\"\nport = {}\nsecurity = \"{}\"\ntimeout = {}\n",
            self.host, self.port, self.security, self.timeout
        );
        let optional = [
            ("username", self.username.as_deref()),
            ("auth", self.auth),
            ("password_command", self.password_command.as_deref()),
            ("ca_file", self.ca_file.then_some("ca.pem")),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                smtp.push_str(&format!("{key} = {}\n", toml_string(value)));
            }
        }
        let rate = self
            .rate
            .as_deref()
            .map(|r| format!("rate = \"{r}\"\n"))
            .unwrap_or_default();
        format!(
            "[campaign]\nid = \"test-campaign\"\n\n[sender]\nfrom = \"Commissioner for Human Rights (Ombudsman) <ombudsman@ombudsman.example>\"\nreply_to = \"office@ombudsman.example\"\n\n[smtp]\n{smtp}\n[send]\n{rate}concurrency = {}\nmax_attempts = {}\nretry_delay = \"{}\"\n",
            self.concurrency, self.max_attempts, self.retry_delay
        )
    }

    /// A campaign with the default letter, these recipients and this configuration (plus the
    /// test CA as `ca.pem` when TLS is on).
    pub fn campaign(&self, recipients: &str) -> TestCampaign {
        let campaign = TestCampaign::new();
        campaign
            .file("envoi.toml", self.toml())
            .file("recipients.csv", recipients);
        if self.ca_file {
            pki::write_ca_pem(&campaign.path().join("ca.pem")).expect("write the test CA");
        }
        campaign
    }
}

/// A TOML basic string, escaped.
fn toml_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The default campaign (two recipients) against a plain loopback relay.
pub fn relay_campaign(server: &SmtpServer) -> TestCampaign {
    RelayConfig::plain(server).campaign(super::campaign::RECIPIENTS)
}

pub use super::run::Run;

impl TestCampaign {
    /// `send --yes <args>` with the relay password in the environment.
    pub fn send(&self, args: &[&str]) -> Run {
        let args = [&["send", "--yes"][..], args].concat();
        self.run_env(&args, &[(PASSWORD_ENV, PASSWORD)])
    }

    /// The log's rows for one recipient, in order.
    /// The one log row for `email` (a letter sent in one attempt), with this status.
    #[track_caller]
    pub fn only_row(&self, email: &str, status: &str) -> LogRow {
        let rows = self.rows_for(email);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].status, status, "{rows:?}");
        rows[0].clone()
    }

    pub fn rows_for(&self, email: &str) -> Vec<LogRow> {
        self.log_rows()
            .into_iter()
            .filter(|r| r.email.eq_ignore_ascii_case(email))
            .collect()
    }

    /// The last row per recipient: their status as `send` reads it.
    pub fn last_rows(&self) -> BTreeMap<String, LogRow> {
        self.log_rows()
            .into_iter()
            .map(|r| (r.email.to_ascii_lowercase(), r))
            .collect()
    }

    /// How many recipients' last status is `status`.
    pub fn count_last(&self, status: &str) -> usize {
        self.last_rows()
            .values()
            .filter(|r| r.status == status)
            .count()
    }

    /// Every file in the campaign folder (recursively), as lossy text, with its path.
    pub fn all_files(&self) -> Vec<(std::path::PathBuf, String)> {
        let mut files = Vec::new();
        let mut dirs = vec![self.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir)
                .expect("read campaign folder")
                .flatten()
            {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    files.push((path, String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
        files
    }
}

/// The `email` column (the first) of a recipients CSV, in order.
pub fn emails(recipients_csv: &str) -> Vec<String> {
    recipients_csv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').next().unwrap_or_default().to_owned())
        .collect()
}

/// `n` recipients with plain ASCII cells: `person{i}@org{i}.example`, rows 2 to n+1.
pub fn recipients(n: usize) -> String {
    let mut csv = String::from("email,organisation,name,salutation,language\n");
    for i in 0..n {
        csv.push_str(&format!(
            "person{i}@org{i}.example,Organisation {i},Person {i},Dear colleague,\n"
        ));
    }
    csv
}

/// How many accepted messages name `email` in their envelope.
pub fn deliveries_to(server: &SmtpServer, email: &str) -> usize {
    server
        .received()
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(email)))
        .count()
}

/// The addresses of every `RCPT TO` the server was sent, in connection order.
pub fn rcpt_addresses(server: &SmtpServer) -> Vec<String> {
    server
        .commands()
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("RCPT TO:<")?;
            Some(rest.split_once('>')?.0.to_owned())
        })
        .collect()
}

/// How many `RCPT TO` commands named `email`.
pub fn rcpt_count(server: &SmtpServer, email: &str) -> usize {
    rcpt_addresses(server)
        .iter()
        .filter(|a| a.eq_ignore_ascii_case(email))
        .count()
}

/// Passes on at most `n` of the faults `plan` asks for, then lets everything through.
pub fn at_most(n: usize, plan: FaultFn) -> FaultFn {
    let used = AtomicUsize::new(0);
    Faults::from_fn(move |step| {
        let fault = plan(step)?;
        (used.fetch_add(1, Ordering::SeqCst) < n).then_some(fault)
    })
}

/// `fault` after the final dot of every message whose envelope names `email`.
pub fn at_data_end_to(email: &str, fault: Fault) -> FaultFn {
    let email = email.to_owned();
    Faults::from_fn(move |step| match step.phase {
        Phase::DataEnd { rcpt, .. } if rcpt.iter().any(|r| r.eq_ignore_ascii_case(&email)) => {
            Some(fault.clone())
        }
        _ => None,
    })
}

/// `fault` at the MAIL command of every mail transaction numbered `from` or later (see
/// [`Step::message`](super::smtp_server::Step::message)).
pub fn at_mail_from(from: u64, fault: Fault) -> FaultFn {
    Faults::from_fn(move |step| match step.phase {
        Phase::Mail { .. } if step.message >= from => Some(fault.clone()),
        _ => None,
    })
}

/// `fault` at every step that `when` picks.
pub fn at_phase(when: fn(&Phase<'_>) -> bool, fault: Fault) -> FaultFn {
    Faults::from_fn(move |step| when(&step.phase).then(|| fault.clone()))
}

/// A fault plan that can be switched off, so that the next run meets a healthy relay.
pub struct Switch(Arc<AtomicBool>);

impl Switch {
    /// `plan`, active until [`off`](Self::off).
    pub fn new(plan: FaultFn) -> (Switch, FaultFn) {
        let on = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&on);
        let plan = Faults::from_fn(move |step| {
            if flag.load(Ordering::SeqCst) {
                plan(step)
            } else {
                None
            }
        });
        (Switch(on), plan)
    }

    pub fn off(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Asserts the invariant every delivery test rests on: a recipient whose last status is `sent`
/// was received exactly once, `unknown` at most once, anything else (`failed`, `skipped`,
/// `dry-run`) never.
#[track_caller]
pub fn assert_sent_means_received_once(campaign: &TestCampaign, server: &SmtpServer) {
    for (email, row) in campaign.last_rows() {
        let received = deliveries_to(server, &email);
        match row.status.as_str() {
            "sent" => assert_eq!(received, 1, "{email} is logged sent: {row:?}"),
            "unknown" => assert!(received <= 1, "{email} received {received} times"),
            _ => assert_eq!(received, 0, "{email} is logged {}: {row:?}", row.status),
        }
    }
}
