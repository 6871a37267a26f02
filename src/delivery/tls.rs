//! TLS to the relay: which certificates are trusted, and TLS failures in words.
//!
//! Trust is the system's roots, plus whatever `ca_file` holds. A certificate in `ca_file` is
//! trusted two ways:
//!
//! * as a **CA**: it may sign the relay's certificate (a private company CA);
//! * as a **pin**: when the relay presents that very certificate. Office relays often use a
//!   certificate made with `openssl req -x509`, which is marked as a CA and which webpki
//!   therefore refuses as a server certificate (`CaUsedAsEndEntity`) even when it is its own
//!   trust anchor. The user named it, so it is trusted, byte for byte; the host name must still
//!   be one of its names. Its validity dates are not checked: the pin, not a CA's promise, is
//!   the trust, and SECURITY.md says so.
//!
//! [`RelayTrust`] is that rule as a rustls [`ServerCertVerifier`]; [`client_config`] builds a
//! rustls `ClientConfig` with it for any client (the IMAP copy to Sent uses it too).
//!
//! lettre 0.11.23 cannot take a rustls `ClientConfig` (its `TlsParameters` is built only by its
//! own builder). So for SMTP with a `ca_file`, lettre is told to check the host name and the
//! handshake signature but not the chain, and [`verify_session`] runs [`RelayTrust`] on the
//! certificates the relay presented, before anything else is sent: lettre's own EHLO (which
//! carries only `hello_name`) goes out first; the login and every letter come after the check.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why TLS could not be set up before connecting.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("ca_file \"{}\" cannot be read: {source}", path.display())]
    CaFileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ca_file \"{}\" holds no PEM certificate (-----BEGIN CERTIFICATE-----); export the relay's certificate or its CA in PEM form", path.display())]
    CaFileEmpty { path: PathBuf },
    #[error("ca_file \"{}\" is not a PEM certificate: {source}", path.display())]
    CaFileNotPem {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS cannot be set up: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS cannot be set up: {0}; name the relay's certificate or CA with ca_file in [smtp]")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error("TLS cannot be set up: {0}")]
    Lettre(#[source] lettre::transport::smtp::Error),
}

/// The certificates in a PEM file, in order.
fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::CaFileUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsSetupError::CaFileNotPem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::CaFileEmpty {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's roots, as lettre loads them.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

/// The trust rule for the relay's certificate; see the module documentation.
#[derive(Debug)]
pub struct RelayTrust {
    /// The certificates of `ca_file`, each trusted when presented as is.
    pins: Vec<CertificateDer<'static>>,
    /// The system's roots plus `ca_file`'s certificates as CAs.
    chain: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl RelayTrust {
    pub fn new(ca_file: Option<&Path>) -> Result<RelayTrust, TlsSetupError> {
        let provider = provider();
        let mut roots = system_roots();
        let pins = match ca_file {
            Some(path) => read_pem_certificates(path)?,
            None => Vec::new(),
        };
        // A certificate webpki cannot use as a root (an unusual encoding) may still be a pin.
        roots.add_parsable_certificates(pins.iter().cloned());
        // With no root at all (a bare container, no ca_file) this fails and says so.
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()?;
        Ok(RelayTrust {
            pins,
            chain,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for RelayTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pins
            .iter()
            .any(|pin| pin.as_ref() == end_entity.as_ref())
        {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&cert, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.chain
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A rustls client configuration that trusts the system's roots and `ca_file` (as CAs and as
/// pins, see the module documentation). For any TLS client of envoi (SMTP checks, IMAP).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let trust = RelayTrust::new(ca_file)?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(trust))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// TLS for lettre, and the check [`verify_session`] must run on each session.
pub struct RelayTls {
    pub(crate) parameters: TlsParameters,
    /// Set when lettre checks only the host name and the handshake; see the module docs.
    after_handshake: Option<Arc<RelayTrust>>,
    host: String,
}

impl RelayTls {
    pub fn new(host: &str, ca_file: Option<&Path>) -> Result<RelayTls, TlsSetupError> {
        let builder = TlsParameters::builder(host.to_owned());
        let (builder, after_handshake) = match ca_file {
            None => (builder, None),
            Some(path) => {
                let trust = RelayTrust::new(Some(path))?;
                // The pin check needs the chain unchecked by lettre; the host name still is.
                (
                    builder.dangerous_accept_invalid_certs(true),
                    Some(Arc::new(trust)),
                )
            }
        };
        let parameters = builder.build_rustls().map_err(TlsSetupError::Lettre)?;
        Ok(RelayTls {
            parameters,
            after_handshake,
            host: host.to_owned(),
        })
    }

    /// Runs the trust rule on the certificates the relay presented on `conn`, when lettre did
    /// not. Call right after the TLS handshake, before the login.
    pub(crate) fn verify_session(&self, conn: &SmtpConnection) -> Result<(), rustls::Error> {
        let Some(trust) = &self.after_handshake else {
            return Ok(());
        };
        let chain = conn.certificate_chain().map_err(|e| {
            rustls::Error::General(format!("the relay's certificate cannot be read: {e}"))
        })?;
        let mut chain = chain.into_iter().map(CertificateDer::from);
        let end_entity = chain.next().ok_or(rustls::Error::NoCertificatesPresented)?;
        let intermediates: Vec<_> = chain.collect();
        let name = ServerName::try_from(self.host.as_str())
            .map_err(|_| rustls::Error::General(format!("\"{}\" is not a host name", self.host)))?
            .to_owned();
        trust.verify_server_cert(&end_entity, &intermediates, &name, &[], UnixTime::now())?;
        Ok(())
    }
}

/// The TLS failure behind a lettre error, if that is what it is. rustls shakes hands at the
/// first read or write, so lettre reports a refused certificate as a network error with the
/// rustls error inside an `io::Error`.
pub(crate) fn tls_cause(e: &lettre::transport::smtp::Error) -> Option<&rustls::Error> {
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

/// A name as rustls lists it in `NotValidForNameContext` (`DnsName("relay.example")`,
/// `IpAddress(192.0.2.1)`): just the name.
fn presented_name(listed: &str) -> &str {
    let inner = listed
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(listed);
    inner.trim_matches('"')
}

/// A TLS failure in words, with what to do about it; never Rust debug formatting.
pub fn tls_problem(tls: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as Cert;
    let rustls::Error::InvalidCertificate(cert) = tls else {
        return format!("TLS could not be set up: {}", tls_failure_in_words(tls));
    };
    let private_ca = "if the relay uses a private CA or its own certificate, name that certificate (PEM) with ca_file in [smtp]";
    match cert {
        Cert::Expired | Cert::ExpiredContext { .. } => {
            "the relay's certificate has expired; ask the relay's administrator to renew it"
                .to_owned()
        }
        Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
            "the relay's certificate is not valid yet; check this computer's date and time"
                .to_owned()
        }
        Cert::NotValidForNameContext { presented, .. } if !presented.is_empty() => format!(
            "the relay's certificate is not issued for \"{host}\" but for {}; set host in [smtp] to one of those names",
            presented
                .iter()
                .map(|n| format!("\"{}\"", presented_name(n)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Cert::NotValidForName | Cert::NotValidForNameContext { .. } => format!(
            "the relay's certificate is not issued for \"{host}\"; set host in [smtp] to the name the relay's certificate gives"
        ),
        Cert::UnknownIssuer
        | Cert::BadSignature
        | Cert::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the relay's certificate could not be verified: no authority this computer trusts signed it; {private_ca}"
        ),
        // webpki's CaUsedAsEndEntity: what `openssl req -x509` makes, presented by the relay
        // but not the certificate in ca_file.
        Cert::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            "the relay presents a self-signed CA certificate (as `openssl req -x509` makes) that this computer does not trust; to trust it, put exactly that certificate (PEM) in ca_file in [smtp]".to_owned()
        }
        Cert::Revoked => {
            "the relay's certificate has been revoked; ask the relay's administrator".to_owned()
        }
        // rustls describes the rest with Rust debug formatting (`Other(OtherError(..))`).
        _ => format!("the relay's certificate could not be verified; {private_ca}"),
    }
}

/// A TLS failure other than the certificate's, in words: rustls's own text shows enum names
/// (`received fatal alert: HandshakeFailure`, `peer is incompatible: Tls12NotOffered`).
fn tls_failure_in_words(tls: &rustls::Error) -> String {
    match tls {
        // envoi's own words (the certificate file, the host name).
        rustls::Error::General(text) => text.clone(),
        rustls::Error::AlertReceived(_) => "the relay broke off the TLS handshake".to_owned(),
        rustls::Error::PeerIncompatible(_) => "the relay offers no TLS version or cipher this computer accepts (envoi needs TLS 1.2 or later)".to_owned(),
        _ => "the TLS handshake with the relay failed; check that the port speaks TLS as security says (port 465: security = \"tls\"; port 587: security = \"starttls\")".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_told_in_words_never_debug_formatting() {
        use rustls::{AlertDescription, CertificateError, OtherError, PeerIncompatible};
        for (tls, debug) in [
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                "HandshakeFailure",
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered),
                "Tls12NotOffered",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownRevocationStatus),
                "UnknownRevocationStatus",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
                    std::sync::Arc::new(std::io::Error::other("x")),
                ))),
                "OtherError",
            ),
            (rustls::Error::DecryptError, "DecryptError"),
        ] {
            let words = tls_problem(&tls, "relay.example");
            assert!(
                !words.contains(debug) && !words.contains("Other("),
                "{words}"
            );
        }
    }

    #[test]
    fn presented_names_lose_their_debug_wrapping() {
        assert_eq!(
            presented_name("DnsName(\"relay.example\")"),
            "relay.example"
        );
        assert_eq!(presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(presented_name("relay.example"), "relay.example");
    }
}
