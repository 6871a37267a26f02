//! How to reach the relay: connect, secure, read its capabilities, log in.

use std::sync::Arc;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::SmtpConnection;
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::{ClientId, Extension};

use crate::config::tracking::TrackingSettings;
use crate::config::{AuthMechanism, Security, SmtpSettings};
use crate::delivery::capabilities::Capabilities;
use crate::delivery::reply::{Attempt, describe_error, reply_of};
use crate::delivery::session::{Session, close_broken};
use crate::delivery::tls::{RelayTls, TlsSetupError, tls_cause, tls_problem};
use crate::secret::Secret;

/// Why the relay settings cannot be used, found before connecting.
#[derive(Debug, thiserror::Error)]
pub enum RelaySetupError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(
        "username \"{user}\" is set but no password: set ENVOI_SMTP_PASSWORD or password_command in [smtp]"
    )]
    NoPassword { user: String },
}

/// Why `envoi check --smtp` could not log in.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The password could not be read (the text says from where).
    #[error(transparent)]
    Password(#[from] crate::secret::SecretError),
    #[error(transparent)]
    Setup(#[from] RelaySetupError),
    /// Connecting, securing or logging in failed; the reason is for the user.
    #[error("{0}")]
    Connect(String),
}

/// The mechanisms envoi can log in with, as the relay names them.
const SUPPORTED_MECHANISMS: [(&str, Mechanism); 3] = [
    ("PLAIN", Mechanism::Plain),
    ("LOGIN", Mechanism::Login),
    ("XOAUTH2", Mechanism::Xoauth2),
];

/// How to reach the relay; shared by every worker.
pub struct Relay {
    settings: SmtpSettings,
    tls: Option<RelayTls>,
    credentials: Option<Credentials>,
    mechanisms: Vec<Mechanism>,
    hello: ClientId,
    /// The return path and the reports to ask for (see `delivery::dsn`).
    tracking: Arc<TrackingSettings>,
}

impl Relay {
    /// Prepares TLS parameters and credentials. Errors are for the user, without the secret.
    pub fn new(settings: &SmtpSettings, secret: Option<Secret>) -> Result<Relay, RelaySetupError> {
        let tls = match settings.security {
            Security::None => None,
            Security::Tls | Security::StartTls => {
                Some(RelayTls::new(&settings.host, settings.ca_file.as_deref())?)
            }
        };
        let credentials = match (&settings.username, secret) {
            (Some(user), Some(secret)) => {
                Some(Credentials::new(user.clone(), secret.expose().to_owned()))
            }
            (Some(user), None) => return Err(RelaySetupError::NoPassword { user: user.clone() }),
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
            tracking: Arc::new(TrackingSettings::default()),
        })
    }

    /// Sets `[tracking]`: the return path and the delivery reports to ask for.
    pub fn with_tracking(mut self, tracking: TrackingSettings) -> Relay {
        self.tracking = Arc::new(tracking);
        self
    }

    pub fn tracking(&self) -> &TrackingSettings {
        &self.tracking
    }

    /// `host:port (security)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}:{} ({})",
            self.settings.host, self.settings.port, self.settings.security
        )
    }

    /// Whether connecting includes a login (which a wrong password must not repeat).
    pub fn logs_in(&self) -> bool {
        self.credentials.is_some()
    }

    /// Opens a session: greeting, EHLO, TLS, EHLO, AUTH. Failures are classified like a
    /// message attempt, so the caller retries or stops in one place.
    pub fn connect(&self) -> Result<Session, Attempt> {
        let implicit = match self.settings.security {
            Security::Tls => self.tls.as_ref().map(|t| &t.parameters),
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
            conn.starttls(&tls.parameters, &self.hello)
                .map_err(|e| self.connect_failure(&e, "starting TLS with"))?;
        }
        if let Some(tls) = &self.tls
            && let Err(e) = tls.verify_session(&conn)
        {
            conn.abort();
            let doing = match self.settings.security {
                Security::StartTls => "starting TLS with",
                _ => "connecting to",
            };
            return Err(self.untrusted(&e, doing));
        }

        // lettre's own EHLO reply is parsed into a `ServerInfo` that keeps neither SIZE nor
        // DSN nor unknown AUTH mechanisms, so ask again and keep the whole reply (one round
        // trip per connection, not per letter).
        let capabilities = match conn.command(Ehlo::new(self.hello.clone())) {
            Ok(response) => Capabilities::from_response(&response),
            Err(e) => {
                close_broken(&mut conn);
                return Err(self.connect_failure(&e, "greeting"));
            }
        };
        if let Some(credentials) = &self.credentials {
            self.log_in(&mut conn, &capabilities, credentials)?;
        }
        Ok(Session {
            conn,
            capabilities,
            tracking: Arc::clone(&self.tracking),
            ahead: None,
        })
    }

    fn log_in(
        &self,
        conn: &mut SmtpConnection,
        capabilities: &Capabilities,
        credentials: &Credentials,
    ) -> Result<(), Attempt> {
        let user = self.settings.username.as_deref().unwrap_or("");
        let usable: Vec<Mechanism> = self
            .mechanisms
            .iter()
            .copied()
            .filter(|m| {
                SUPPORTED_MECHANISMS
                    .iter()
                    .any(|(name, known)| known == m && capabilities.offers_auth(name))
            })
            .collect();
        if usable.is_empty() {
            conn.abort();
            let reason = if capabilities.auth_mechanisms.is_empty() {
                let hint = if !conn.is_encrypted() && capabilities.starttls {
                    "; it offers STARTTLS: set security = \"starttls\" in [smtp], relays usually offer the login only on an encrypted connection"
                } else {
                    "; check host and port in [smtp], or remove username if this relay takes mail without a login"
                };
                format!(
                    "the relay {} offers no login (AUTH) on this connection, so envoi cannot log in as \"{user}\"{hint}",
                    self.describe()
                )
            } else {
                let wanted: Vec<&str> = SUPPORTED_MECHANISMS
                    .iter()
                    .filter(|(_, m)| self.mechanisms.contains(m))
                    .map(|(name, _)| *name)
                    .collect();
                format!(
                    "the relay {} offers the login mechanisms {} and envoi can use {}; set auth in [smtp] to one both know, or ask the relay's administrator to enable {}",
                    self.describe(),
                    capabilities.auth_mechanisms.join(", "),
                    wanted.join(", "),
                    wanted.join(" or ")
                )
            };
            return Err(Attempt::Fatal {
                reply: None,
                reason,
            });
        }
        let Err(e) = conn.auth(&usable, credentials) else {
            return Ok(());
        };
        let Some(reply) = reply_of(&e) else {
            close_broken(conn);
            return Err(Attempt::Transient {
                reply: None,
                no_answer: true,
                reason: format!("the relay did not answer the login: {}", describe_error(&e)),
            });
        };
        conn.abort();
        if reply.asks_for_starttls() {
            return Err(Attempt::Fatal {
                reason: format!(
                    "the relay {} requires encryption before the login ({reply}); set security = \"starttls\" in [smtp] (or \"tls\" on port 465)",
                    self.describe()
                ),
                reply: Some(reply),
            });
        }
        let refused = matches!(reply.code, 530 | 534 | 535 | 538) || e.is_permanent();
        if refused {
            return Err(Attempt::Fatal {
                reason: format!(
                    "the relay refused to log in as \"{user}\": {reply}; check the user name and password"
                ),
                reply: Some(reply),
            });
        }
        Err(Attempt::Transient {
            reason: format!("the relay could not log in just now: {reply}"),
            reply: Some(reply),
            no_answer: false,
        })
    }

    fn untrusted(&self, tls: &rustls::Error, doing: &str) -> Attempt {
        // Trust problems do not fix themselves; retrying would only hide them.
        Attempt::Fatal {
            reply: None,
            reason: format!(
                "{doing} the relay {} failed: {}",
                self.describe(),
                tls_problem(tls, &self.settings.host)
            ),
        }
    }

    fn connect_failure(&self, e: &lettre::transport::smtp::Error, doing: &str) -> Attempt {
        if let Some(tls) = tls_cause(e) {
            return self.untrusted(tls, doing);
        }
        let reason = format!(
            "{doing} the relay {} failed: {}",
            self.describe(),
            describe_error(e)
        );
        if e.is_tls() {
            Attempt::Fatal {
                reply: None,
                reason: format!(
                    "{reason}. The relay's certificate could not be verified; if the relay uses a private CA or its own certificate, name it with ca_file in [smtp]"
                ),
            }
        } else if let Some(reply) = reply_of(e) {
            Attempt::classify_connect(reply, reason)
        } else {
            Attempt::Transient {
                reply: None,
                no_answer: true,
                reason,
            }
        }
    }
}

/// What `check` can tell without contacting the relay: the TLS setup (CA file) works.
pub fn check_settings(settings: &SmtpSettings) -> Result<(), TlsSetupError> {
    if settings.security != Security::None {
        RelayTls::new(&settings.host, settings.ca_file.as_deref())?;
    }
    Ok(())
}

/// What `envoi check --smtp` learnt of the relay.
pub struct Probed {
    /// One line: where, encrypted or not, logged in or not, the size limit.
    pub summary: String,
    pub capabilities: Capabilities,
}

/// `envoi check --smtp`: connect, secure, log in, quit.
pub fn probe(settings: &SmtpSettings) -> Result<Probed, ProbeError> {
    let secret = settings.password.read().map_err(ProbeError::Password)?;
    let relay = Relay::new(settings, secret)?;
    let session = relay
        .connect()
        .map_err(|attempt| ProbeError::Connect(attempt.reason()))?;
    let caps = session.capabilities();
    let summary = format!(
        "connected to {} ({}), {}{}{}",
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
        },
        match caps.size_limit {
            Some(limit) => format!(", takes letters up to {} MB", limit / 1_000_000),
            None => String::new(),
        }
    );
    let capabilities = caps.clone();
    session.quit();
    Ok(Probed {
        summary,
        capabilities,
    })
}
