//! Test certificates: a private CA and server certificates for every TLS situation envoi must
//! handle (valid, expired, wrong host name, not from the CA).
//!
//! Generated once per test process with `rcgen`; nothing is read from or left on disk unless a
//! test writes the CA with [`write_ca_pem`] (as a campaign's `ca_file` would name it).

use std::io;
use std::path::Path;
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The host name that [`CertKind::WrongHost`] is issued for; it is not `localhost`.
pub const WRONG_HOST: &str = "other.example";

/// Which certificate a test server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertKind {
    /// Signed by the test CA, valid now, for `localhost` and `127.0.0.1`.
    #[default]
    Valid,
    /// Signed by the test CA for the right names, but expired in 2021.
    Expired,
    /// Signed by the test CA, valid now, but only for [`WRONG_HOST`].
    WrongHost,
    /// Right names and dates, but self-signed: no client trusts it.
    Untrusted,
    /// What `openssl req -x509` makes: self-signed, marked as a CA (basic constraints
    /// CA:TRUE), for `localhost` and `127.0.0.1`. Trusted only as a pin ([`leaf_pem`]).
    SelfSignedCa,
    /// The same, but for [`WRONG_HOST`] only.
    SelfSignedCaWrongHost,
}

/// A server certificate chain and its private key, ready for rustls.
#[derive(Debug)]
pub struct ServerIdentity {
    /// The leaf certificate (the CA itself is the client's trust anchor, not sent).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf certificate, PEM encoded.
    leaf_pem: String,
    key_pkcs8: Vec<u8>,
}

impl ServerIdentity {
    /// The private key, as rustls takes it (a fresh copy each time).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()).into()
    }
}

/// The test CA certificate, PEM encoded: what a campaign's `ca_file` would contain.
pub fn ca_pem() -> &'static str {
    &pki().ca_pem
}

/// Writes the test CA certificate (PEM) to `path`, for envoi's `ca_file` setting.
pub fn write_ca_pem(path: &Path) -> io::Result<()> {
    std::fs::write(path, ca_pem())
}

/// The certificate a server of this kind presents, PEM encoded: what a user would put in
/// `ca_file` to pin it.
pub fn leaf_pem(kind: CertKind) -> &'static str {
    &identity(kind).leaf_pem
}

/// The certificate and key of the given kind.
pub fn identity(kind: CertKind) -> &'static ServerIdentity {
    let pki = pki();
    match kind {
        CertKind::Valid => &pki.valid,
        CertKind::Expired => &pki.expired,
        CertKind::WrongHost => &pki.wrong_host,
        CertKind::Untrusted => &pki.untrusted,
        CertKind::SelfSignedCa => &pki.self_signed_ca,
        CertKind::SelfSignedCaWrongHost => &pki.self_signed_ca_wrong_host,
    }
}

struct Pki {
    ca_pem: String,
    valid: ServerIdentity,
    expired: ServerIdentity,
    wrong_host: ServerIdentity,
    untrusted: ServerIdentity,
    self_signed_ca: ServerIdentity,
    self_signed_ca_wrong_host: ServerIdentity,
}

/// Key generation is the slow part, so every test shares one set.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let (ca_pem, ca) = new_ca();
        let expired = {
            let mut params = leaf_params(&["localhost", "127.0.0.1"]);
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
            sign(params, Some(&ca))
        };
        Pki {
            ca_pem,
            valid: sign(leaf_params(&["localhost", "127.0.0.1"]), Some(&ca)),
            expired,
            wrong_host: sign(leaf_params(&[WRONG_HOST]), Some(&ca)),
            untrusted: sign(leaf_params(&["localhost", "127.0.0.1"]), None),
            self_signed_ca: sign(openssl_x509_params(&["localhost", "127.0.0.1"]), None),
            self_signed_ca_wrong_host: sign(openssl_x509_params(&[WRONG_HOST]), None),
        }
    })
}

fn new_ca() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "envoi test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("generate CA key");
    let cert = params.self_signed(&key).expect("self-sign CA");
    (cert.pem(), Issuer::new(params, key))
}

/// A server certificate's parameters; validity defaults to 1975..4096 (rcgen's default).
fn leaf_params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("valid subject names");
    params
        .distinguished_name
        .push(DnType::CommonName, &names[0]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params
}

/// What `openssl req -x509 -addext subjectAltName=...` produces: a server certificate that is
/// also marked as a CA.
fn openssl_x509_params(names: &[&str]) -> CertificateParams {
    let mut params = leaf_params(names);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![];
    params.extended_key_usages = vec![];
    params
}

/// Signs with `issuer`, or self-signs when there is none.
fn sign(params: CertificateParams, issuer: Option<&Issuer<'static, KeyPair>>) -> ServerIdentity {
    let key = KeyPair::generate().expect("generate server key");
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer),
        None => params.self_signed(&key),
    }
    .expect("sign server certificate");
    ServerIdentity {
        chain: vec![cert.der().clone()],
        leaf_pem: cert.pem(),
        key_pkcs8: key.serialize_der(),
    }
}
