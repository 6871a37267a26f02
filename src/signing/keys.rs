//! Reading signing keys and certificates: a PKCS#12 file (what a CA issues to an office), or a
//! PEM private key and a PEM certificate file.
//!
//! p12-keystore decodes PKCS#12 with its own (newer) ASN.1 types, so keys and certificates
//! cross over as DER into the `x509-cert` / `rsa` types that the CMS builder takes.

use der::oid::ObjectIdentifier;
use der::oid::db::{rfc5912, rfc8410};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, PrivateKeyInfo};
use x509_cert::Certificate;
use x509_cert::der::{self, Decode};

use crate::secret::Secret;

/// A private key envoi can sign with.
pub enum PrivateKey {
    Rsa(RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// Why a key or certificate file cannot be used. Messages follow the file name.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot be read ({0}); check the path under [signing]")]
    Read(#[source] std::io::Error),
    #[error(
        "the password is wrong, or the file is damaged; check ENVOI_SMIME_PASSWORD (or password_command under [signing])"
    )]
    WrongPassword,
    #[error(
        "is protected by a password: set ENVOI_SMIME_PASSWORD, or password_command under [signing]"
    )]
    NeedsPassword,
    #[error(
        "is not a PKCS#12 file envoi can read ({0}); export the certificate again as .p12 with its private key"
    )]
    NotPkcs12(#[source] p12_keystore::error::Error),
    #[error(
        "holds no private key together with its certificate; export the certificate again with its private key"
    )]
    NoKeyWithCertificate,
    #[error(
        "holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)"
    )]
    NoPemKey,
    #[error(
        "holds an encrypted PEM private key, which envoi does not read; use a PKCS#12 file (smime = \"...p12\") with its password in ENVOI_SMIME_PASSWORD"
    )]
    EncryptedPem,
    #[error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoPemCertificate,
    #[error(
        "holds an ECDSA key, which envoi cannot sign with; use an RSA key (S/MIME or DKIM) or an Ed25519 key (DKIM)"
    )]
    Ecdsa,
    #[error(
        "holds a key of type {0}, which envoi cannot sign with; use an RSA key (S/MIME or DKIM) or an Ed25519 key (DKIM)"
    )]
    UnsupportedKey(ObjectIdentifier),
    #[error("holds a private key that cannot be decoded ({0})")]
    BadKey(String),
    #[error("holds a certificate that cannot be decoded ({0})")]
    BadCertificate(#[source] der::Error),
}

/// The private key and certificate chain (the holder's certificate first) of a PKCS#12 file.
pub fn pkcs12(
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<(PrivateKey, Vec<Certificate>), KeyError> {
    use p12_keystore::error::Error as P12;
    use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
    let keystore = KeyStore::from_pkcs12(
        bytes,
        password.map_or("", Secret::expose),
        Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| match e {
        // A wrong password shows as a MAC that does not match, or as garbage after decrypting.
        P12::MacError(_) | P12::UnpadError if password.is_none() => KeyError::NeedsPassword,
        P12::MacError(_) | P12::UnpadError => KeyError::WrongPassword,
        other => KeyError::NotPkcs12(other),
    })?;
    let (_, chain) = keystore
        .private_key_chain()
        .ok_or(KeyError::NoKeyWithCertificate)?;
    let key = pkcs8(chain.key().as_der())?;
    let certificates = chain
        .certs()
        .iter()
        .map(|c| Certificate::from_der(c.as_der()).map_err(KeyError::BadCertificate))
        .collect::<Result<Vec<_>, _>>()?;
    if certificates.is_empty() {
        return Err(KeyError::NoKeyWithCertificate);
    }
    Ok((key, certificates))
}

/// Every certificate of a PEM file, in order (the holder's certificate first, then its chain).
pub fn pem_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, KeyError> {
    let mut certificates = Vec::new();
    for item in rustls_pemfile::read_all(&mut &bytes[..]) {
        if let Ok(rustls_pemfile::Item::X509Certificate(der)) = item {
            certificates.push(Certificate::from_der(&der).map_err(KeyError::BadCertificate)?);
        }
    }
    if certificates.is_empty() {
        return Err(KeyError::NoPemCertificate);
    }
    Ok(certificates)
}

/// The first private key of a PEM file: PKCS#8 (RSA or Ed25519) or PKCS#1 (RSA).
pub fn pem_private_key(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
    // PKCS#8 "ENCRYPTED PRIVATE KEY", or a PKCS#1 key with "Proc-Type: 4,ENCRYPTED".
    if String::from_utf8_lossy(bytes).contains("ENCRYPTED") {
        return Err(KeyError::EncryptedPem);
    }
    for item in rustls_pemfile::read_all(&mut &bytes[..]) {
        match item {
            Ok(rustls_pemfile::Item::Pkcs8Key(der)) => return pkcs8(der.secret_pkcs8_der()),
            Ok(rustls_pemfile::Item::Pkcs1Key(der)) => {
                return RsaPrivateKey::from_pkcs1_der(der.secret_pkcs1_der())
                    .map(PrivateKey::Rsa)
                    .map_err(|e| KeyError::BadKey(e.to_string()));
            }
            Ok(rustls_pemfile::Item::Sec1Key(_)) => return Err(KeyError::Ecdsa),
            _ => {}
        }
    }
    Err(KeyError::NoPemKey)
}

/// A PKCS#8 private key, by its algorithm.
fn pkcs8(der: &[u8]) -> Result<PrivateKey, KeyError> {
    let info = PrivateKeyInfo::try_from(der).map_err(|e| KeyError::BadKey(e.to_string()))?;
    match info.algorithm.oid {
        rfc5912::RSA_ENCRYPTION => RsaPrivateKey::from_pkcs8_der(der)
            .map(PrivateKey::Rsa)
            .map_err(|e| KeyError::BadKey(e.to_string())),
        rfc8410::ID_ED_25519 => {
            // The key is an OCTET STRING inside the privateKey OCTET STRING (RFC 8410).
            let seed = der::asn1::OctetStringRef::from_der(info.private_key)
                .map_err(|e| KeyError::BadKey(e.to_string()))?;
            let seed: &[u8; 32] = seed
                .as_bytes()
                .try_into()
                .map_err(|_| KeyError::BadKey("an Ed25519 key is 32 bytes".into()))?;
            Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                seed,
            )))
        }
        rfc5912::ID_EC_PUBLIC_KEY => Err(KeyError::Ecdsa),
        other => Err(KeyError::UnsupportedKey(other)),
    }
}
