//! Signing: the last stage before delivery. A composed message gets an S/MIME signature
//! (RFC 8551, detached `multipart/signed`) over its whole body, then a DKIM signature
//! (RFC 6376, relaxed/relaxed) over the result, so that both verify as delivered.
//!
//! [`Signer::load`] reads the `[signing]` files once per run and validates them (see [`check`]);
//! `compose` calls [`Signer::sign`] on every message's bytes, test copies included.

mod check;
mod dkim;
mod keys;
mod message;
mod smime;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lettre::Address;

use crate::config::{Rate, SigningSection};
use crate::error::{Location, Problem};
use crate::secret::Secret;

pub use check::VALIDITY_MARGIN;
use dkim::DkimSigner;
pub use dkim::SIGNED_HEADERS;
use keys::{KeyError, PrivateKey};
use smime::SmimeSigner;

/// The environment variable that holds the PKCS#12 password.
pub const SMIME_PASSWORD_ENV: &str = "ENVOI_SMIME_PASSWORD";

/// Why a message could not be signed (the set-up was checked, so this is rare).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the composed message is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature cannot be encoded: {0}")]
    Encoding(#[from] x509_cert::der::Error),
    #[error("the S/MIME signature cannot be built: {0}")]
    Cms(String),
    #[error("the signing key refused to sign: {0}")]
    Key(#[from] rsa::signature::Error),
}

impl From<cms::builder::Error> for SignError {
    fn from(e: cms::builder::Error) -> Self {
        SignError::Cms(e.to_string())
    }
}

/// The keys of a run, loaded and checked.
pub struct Signer {
    smime: Option<(SmimeSigner, PathBuf)>,
    dkim: Option<(DkimSigner, PathBuf)>,
    /// envoi.toml as the user named it, for problems with a setting.
    config: PathBuf,
}

/// Never shows key material.
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("smime", &self.smime.as_ref().map(|(_, file)| file))
            .field("dkim", &self.dkim.as_ref().map(|(_, file)| file))
            .finish()
    }
}

impl Signer {
    /// Reads and checks the `[signing]` set-up; `None` when it asks for no signature. Paths are
    /// relative to `dir` (the campaign folder) and named as written in messages. Every problem
    /// is listed.
    pub fn load(
        section: &SigningSection,
        dir: &Path,
        config_display: &Path,
        now: SystemTime,
    ) -> Result<Option<Signer>, Vec<Problem>> {
        let mut problems = Vec::new();
        let smime = load_smime(section, dir, config_display, now, &mut problems);
        let dkim = load_dkim(section, dir, config_display, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok((smime.is_some() || dkim.is_some()).then(|| Signer {
            smime,
            dkim,
            config: config_display.to_path_buf(),
        }))
    }

    /// `message` (CRLF, as composed) signed: S/MIME first, then DKIM over the final bytes.
    pub fn sign(&self, message: &[u8], date: SystemTime) -> Result<Vec<u8>, SignError> {
        let signed;
        let message = match &self.smime {
            Some((smime, _)) => {
                signed = smime.sign(message, date)?;
                &signed
            }
            None => message,
        };
        match &self.dkim {
            Some((dkim, _)) => dkim.sign(message, date),
            None => Ok(message.to_vec()),
        }
    }

    /// What is wrong with signing letters from `from`: a certificate for another address, a
    /// DKIM domain that does not cover it.
    pub fn problems_with_sender(&self, from: &Address) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some((smime, file)) = &self.smime
            && let Err(e) = check::names_address(smime.certificate(), from.as_ref())
        {
            problems.push(Problem::new(Location::file(file), e.to_string()));
        }
        if let Some((dkim, _)) = &self.dkim
            && !check::domain_covers(&dkim.domain, from.domain())
        {
            problems.push(Problem::new(
                Location::file(&self.config).setting("signing", "dkim_domain"),
                format!(
                    "dkim_domain \"{}\" is neither the From address's domain ({}) nor a parent of it, so receivers would not count the signature for {from}; set dkim_domain = \"{}\"",
                    dkim.domain,
                    from.domain(),
                    from.domain()
                ),
            ));
        }
        problems
    }

    /// A problem if the certificate expires before a run of `letters` at `rate`, started
    /// `now`, is over, plus [`VALIDITY_MARGIN`]. The run's expected duration is the time the
    /// rate limit alone needs (none without a rate): retries and a slow relay are what the
    /// margin is for.
    pub fn expiry_problem(
        &self,
        now: SystemTime,
        letters: usize,
        rate: Option<Rate>,
    ) -> Option<Problem> {
        let (smime, file) = self.smime.as_ref()?;
        let duration = rate.map_or(Duration::ZERO, |r| {
            r.interval() * u32::try_from(letters).unwrap_or(u32::MAX)
        });
        check::valid_until(smime.certificate(), now + duration + VALIDITY_MARGIN)
            .err()
            .map(|e| Problem::new(Location::file(file), e.to_string()))
    }

    /// What `check` shows: the certificate's subject, issuer and expiry, and the DKIM record.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some((smime, file)) = &self.smime {
            let certificate = smime.certificate();
            lines.push(format!(
                "S/MIME: {} (certificate \"{}\", issued by \"{}\", valid until {})",
                file.display(),
                check::subject(certificate),
                check::issuer(certificate),
                check::expiry(certificate)
            ));
        }
        if let Some((dkim, file)) = &self.dkim {
            lines.push(format!(
                "DKIM: {} signs for {}; publish this DNS record: {} TXT \"{}\"",
                file.display(),
                dkim.domain,
                dkim.dns_name(),
                dkim.dns_record()
            ));
        }
        lines
    }
}

/// Reads a key or certificate file, naming it in the problem.
fn read(dir: &Path, display: &Path, problems: &mut Vec<Problem>) -> Option<Vec<u8>> {
    std::fs::read(dir.join(display))
        .map_err(|e| problems.push(file_problem(display, KeyError::Read(e))))
        .ok()
}

fn file_problem(display: &Path, error: KeyError) -> Problem {
    Problem::new(Location::file(display), error.to_string())
}

fn load_smime(
    section: &SigningSection,
    dir: &Path,
    config_display: &Path,
    now: SystemTime,
    problems: &mut Vec<Problem>,
) -> Option<(SmimeSigner, PathBuf)> {
    let at = |key: &str| Location::file(config_display).setting("signing", key);
    let (key, chain, display) = match (&section.smime, &section.smime_cert, &section.smime_key) {
        (None, None, None) => return None,
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            problems.push(Problem::new(
                at("smime"),
                "set either smime (a PKCS#12 file) or smime_cert and smime_key (PEM files), not both",
            ));
            return None;
        }
        (Some(p12), None, None) => {
            let password = match smime_password(section) {
                Ok(password) => password,
                Err(e) => {
                    problems.push(Problem::new(at("password_command"), e.to_string()));
                    return None;
                }
            };
            let bytes = read(dir, p12, problems)?;
            match keys::pkcs12(&bytes, password.as_ref()) {
                Ok((key, chain)) => (key, chain, p12.clone()),
                Err(e) => {
                    problems.push(file_problem(p12, e));
                    return None;
                }
            }
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            problems.push(Problem::new(
                at(if section.smime_cert.is_none() { "smime_cert" } else { "smime_key" }),
                "smime_cert (the PEM certificate) and smime_key (its PEM private key) go together; set both, or smime = \"office.p12\" instead",
            ));
            return None;
        }
        (None, Some(cert), Some(key_file)) => {
            let chain = read(dir, cert, problems).and_then(|bytes| {
                keys::pem_certificates(&bytes)
                    .map_err(|e| problems.push(file_problem(cert, e)))
                    .ok()
            });
            let key = read(dir, key_file, problems).and_then(|bytes| {
                keys::pem_private_key(&bytes)
                    .map_err(|e| problems.push(file_problem(key_file, e)))
                    .ok()
            });
            (key?, chain?, cert.clone())
        }
    };
    let PrivateKey::Rsa(key) = key else {
        problems.push(Problem::new(
            Location::file(section.smime_key.as_ref().unwrap_or(&display)),
            "holds an Ed25519 key; S/MIME signatures need an RSA key (Ed25519 serves DKIM only)",
        ));
        return None;
    };
    let certificate = &chain[0];
    let checks = [
        check::key_matches(certificate, &key),
        check::valid_at(certificate, now),
        check::allows_email_signing(certificate),
    ];
    let before = problems.len();
    for e in checks.into_iter().filter_map(Result::err) {
        problems.push(Problem::new(Location::file(&display), e.to_string()));
    }
    (problems.len() == before).then(|| (SmimeSigner::new(key, chain), display))
}

/// The PKCS#12 password: `ENVOI_SMIME_PASSWORD`, else `password_command`, else none (a file
/// without a password).
fn smime_password(section: &SigningSection) -> Result<Option<Secret>, crate::secret::SecretError> {
    crate::secret::read_secret(SMIME_PASSWORD_ENV, section.password_command.as_ref())
}

fn load_dkim(
    section: &SigningSection,
    dir: &Path,
    config_display: &Path,
    problems: &mut Vec<Problem>,
) -> Option<(DkimSigner, PathBuf)> {
    let at = |key: &str| Location::file(config_display).setting("signing", key);
    let (domain, selector, key_file) = match (
        &section.dkim_domain,
        &section.dkim_selector,
        &section.dkim_key,
    ) {
        (None, None, None) => return None,
        (Some(d), Some(s), Some(k)) => (d.trim(), s.trim(), k),
        (d, s, _) => {
            let missing = if d.is_none() {
                "dkim_domain"
            } else if s.is_none() {
                "dkim_selector"
            } else {
                "dkim_key"
            };
            problems.push(Problem::new(
                    at(missing),
                    format!(
                        "{missing} is missing; DKIM needs dkim_domain, dkim_selector and dkim_key (a PEM private key) together"
                    ),
                ));
            return None;
        }
    };
    let label = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if !label(domain) {
        problems.push(Problem::new(
            at("dkim_domain"),
            format!("\"{domain}\" is not a domain name such as \"ombudsman.example\""),
        ));
    }
    if !label(selector) {
        problems.push(Problem::new(
            at("dkim_selector"),
            format!(
                "\"{selector}\" is not a DKIM selector such as \"envoi\" (letters, digits, dashes)"
            ),
        ));
    }
    let bytes = read(dir, key_file, problems)?;
    let key = keys::pem_private_key(&bytes)
        .map_err(|e| problems.push(file_problem(key_file, e)))
        .ok()?;
    if let PrivateKey::Rsa(rsa) = &key {
        use rsa::traits::PublicKeyParts;
        if rsa.size() * 8 < 1024 {
            problems.push(file_problem(
                key_file,
                KeyError::BadKey(format!(
                    "an RSA key of {} bits is too short for DKIM; use 2048 bits",
                    rsa.size() * 8
                )),
            ));
            return None;
        }
    }
    Some((
        DkimSigner::new(key, domain.to_owned(), selector.to_owned()),
        key_file.clone(),
    ))
}
