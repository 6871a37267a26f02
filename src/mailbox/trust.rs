//! The mailbox's TLS trust: exactly the relay's (system roots, plus `ca_file` as CA and as a
//! pin), from [`crate::delivery::tls`], with its messages naming the mailbox and `[mailbox]`.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;

use crate::delivery::tls;

/// The relay's TLS set-up error, worded about the mailbox; the relay's error stays its source.
#[derive(Debug, thiserror::Error)]
#[error("{}", for_the_mailbox(&.0.to_string()))]
pub struct TlsSetupError(#[source] pub tls::TlsSetupError);

pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    tls::client_config(ca_file).map_err(TlsSetupError)
}

pub fn tls_problem(error: &rustls::Error, host: &str) -> String {
    for_the_mailbox(&tls::tls_problem(error, host))
}

/// The relay's wording, about the mailbox.
fn for_the_mailbox(text: &str) -> String {
    text.replace("[smtp]", "[mailbox]")
        .replace("the relay's", "the mailbox server's")
        .replace("the relay", "the mailbox server")
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_name_the_mailbox_and_its_section() {
        let error = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let text = super::tls_problem(&error, "imap.example");
        assert!(text.contains("the mailbox server's certificate"), "{text}");
        assert!(text.contains("ca_file in [mailbox]"), "{text}");
        assert!(
            !text.contains("relay") && !text.contains("[smtp]"),
            "{text}"
        );
    }
}
