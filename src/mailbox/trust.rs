//! INTERIM: replaced by the relay's shared trust function before landing.
use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

pub fn client_config(_host: &str, ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("ca_file \"{}\" cannot be read: {e}", ca.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("ca_file \"{}\": {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file \"{}\": {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub fn tls_problem(tls: &rustls::Error, _host: &str) -> String {
    format!(
        "the certificate could not be verified ({tls}); if the server uses a private CA, name it with ca_file in [mailbox]"
    )
}
