//! What makes a signing set-up usable: the certificate fits the key, is valid, allows email
//! protection and names the sender; the DKIM domain covers the sender's domain.
//!
//! Each function returns a [`CertificateProblem`], whose text follows the file's name.

use std::time::{Duration, SystemTime};

use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use x509_cert::Certificate;
use x509_cert::der::asn1::Ia5StringRef;
use x509_cert::der::oid::db::{rfc3280, rfc5280};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};

/// How long after the run's expected end the certificate must still be valid: the office
/// sends test copies first, retries failed letters later, and recipients check a signature
/// when they read it, with a certificate that should not have expired by then.
pub const VALIDITY_MARGIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// What makes a certificate unusable for signing this campaign's letters.
#[derive(Debug, thiserror::Error)]
pub enum CertificateProblem {
    #[error(
        "the private key does not belong to the certificate \"{subject}\"; use the key that was made with this certificate"
    )]
    KeyMismatch { subject: String },
    #[error(
        "the certificate \"{subject}\" is not valid before {from}; wait until then or use another certificate"
    )]
    NotYetValid { subject: String, from: String },
    #[error("the certificate \"{subject}\" expired on {on}; renew it with the CA that issued it")]
    Expired { subject: String, on: String },
    #[error(
        "the certificate \"{subject}\" expires on {on}, before this run and the {days} days after it are over (recipients check a signature when they read the letter); renew it first"
    )]
    ExpiresDuringRun {
        subject: String,
        on: String,
        days: u64,
    },
    #[error(
        "the certificate \"{subject}\" is not for email (its extended key usage lacks emailProtection); ask the CA for an S/MIME certificate"
    )]
    NotForEmail { subject: String },
    #[error(
        "the certificate \"{subject}\" does not allow signing (its key usage lacks digitalSignature); ask the CA for an S/MIME signing certificate"
    )]
    NoSigning { subject: String },
    /// A key usage extension that does not parse.
    #[error(transparent)]
    Extension(#[from] x509_cert::der::Error),
    #[error(
        "the certificate \"{subject}\" is for {named}, not for the From address {from}; recipients' mail programs would call the signature invalid, so use a certificate for {from}"
    )]
    OtherAddress {
        subject: String,
        named: String,
        from: String,
    },
}

/// The key is the one the certificate was issued for.
pub fn key_matches(
    certificate: &Certificate,
    key: &RsaPrivateKey,
) -> Result<(), CertificateProblem> {
    let ours = key.to_public_key().to_public_key_der().ok();
    let theirs = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .ok();
    if ours.is_some() && ours.as_ref().map(|d| d.as_bytes()) == theirs.as_deref() {
        Ok(())
    } else {
        Err(CertificateProblem::KeyMismatch {
            subject: subject(certificate),
        })
    }
}

/// Valid at `now`.
pub fn valid_at(certificate: &Certificate, now: SystemTime) -> Result<(), CertificateProblem> {
    let validity = &certificate.tbs_certificate.validity;
    if now < validity.not_before.to_system_time() {
        return Err(CertificateProblem::NotYetValid {
            subject: subject(certificate),
            from: date(validity.not_before.to_system_time()),
        });
    }
    if now > validity.not_after.to_system_time() {
        return Err(CertificateProblem::Expired {
            subject: subject(certificate),
            on: date(validity.not_after.to_system_time()),
        });
    }
    Ok(())
}

/// Still valid at `until` (the run's expected end plus [`VALIDITY_MARGIN`]).
pub fn valid_until(certificate: &Certificate, until: SystemTime) -> Result<(), CertificateProblem> {
    let not_after = certificate
        .tbs_certificate
        .validity
        .not_after
        .to_system_time();
    if until > not_after {
        return Err(CertificateProblem::ExpiresDuringRun {
            subject: subject(certificate),
            on: date(not_after),
            days: VALIDITY_MARGIN.as_secs() / 86_400,
        });
    }
    Ok(())
}

/// The certificate may sign email: its extended key usage, if it has one, includes email
/// protection, and its key usage, if it has one, digital signatures.
pub fn allows_email_signing(certificate: &Certificate) -> Result<(), CertificateProblem> {
    for extension in certificate.tbs_certificate.extensions.iter().flatten() {
        let value = extension.extn_value.as_bytes();
        if extension.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE {
            let usages = ExtendedKeyUsage::from_der(value)?;
            if !usages.0.iter().any(|oid| {
                *oid == rfc5280::ID_KP_EMAIL_PROTECTION || *oid == rfc5280::ANY_EXTENDED_KEY_USAGE
            }) {
                return Err(CertificateProblem::NotForEmail {
                    subject: subject(certificate),
                });
            }
        } else if extension.extn_id == rfc5280::ID_CE_KEY_USAGE {
            let KeyUsage(usage) = KeyUsage::from_der(value)?;
            if !usage.contains(KeyUsages::DigitalSignature)
                && !usage.contains(KeyUsages::NonRepudiation)
            {
                return Err(CertificateProblem::NoSigning {
                    subject: subject(certificate),
                });
            }
        }
    }
    Ok(())
}

/// The email addresses the certificate is for: its rfc822Name subject alternative names and
/// any emailAddress in its subject.
pub fn addresses(certificate: &Certificate) -> Vec<String> {
    let tbs = &certificate.tbs_certificate;
    let mut found = Vec::new();
    for extension in tbs.extensions.iter().flatten() {
        if extension.extn_id == rfc5280::ID_CE_SUBJECT_ALT_NAME
            && let Ok(names) = SubjectAltName::from_der(extension.extn_value.as_bytes())
        {
            for name in names.0 {
                if let GeneralName::Rfc822Name(address) = name {
                    found.push(address.to_string());
                }
            }
        }
    }
    for rdn in tbs.subject.0.iter() {
        for attribute in rdn.0.iter() {
            if attribute.oid == rfc3280::EMAIL_ADDRESS
                && let Ok(address) = Ia5StringRef::try_from(&attribute.value)
            {
                found.push(address.to_string());
            }
        }
    }
    // The same address is often in both places.
    let mut seen = std::collections::HashSet::new();
    found.retain(|a| seen.insert(a.to_ascii_lowercase()));
    found
}

/// The certificate names `from` (compared without regard to case).
pub fn names_address(certificate: &Certificate, from: &str) -> Result<(), CertificateProblem> {
    let addresses = addresses(certificate);
    if addresses.iter().any(|a| a.eq_ignore_ascii_case(from)) {
        return Ok(());
    }
    let named = if addresses.is_empty() {
        "no email address".to_owned()
    } else {
        addresses.join(", ")
    };
    Err(CertificateProblem::OtherAddress {
        subject: subject(certificate),
        named,
        from: from.to_owned(),
    })
}

/// `dkim_domain` is the From address's domain or a parent of it (RFC 6376 relaxed alignment, as
/// DMARC checks it).
pub fn domain_covers(dkim_domain: &str, from_domain: &str) -> bool {
    let (d, f) = (
        dkim_domain.trim_end_matches('.').to_ascii_lowercase(),
        from_domain.trim_end_matches('.').to_ascii_lowercase(),
    );
    f == d || f.ends_with(&format!(".{d}"))
}

pub fn subject(certificate: &Certificate) -> String {
    certificate.tbs_certificate.subject.to_string()
}

pub fn issuer(certificate: &Certificate) -> String {
    certificate.tbs_certificate.issuer.to_string()
}

pub fn expiry(certificate: &Certificate) -> String {
    date(
        certificate
            .tbs_certificate
            .validity
            .not_after
            .to_system_time(),
    )
}

/// `2026-12-02 04:52 UTC`.
fn date(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dkim_domain_may_be_a_parent_of_the_from_domain() {
        assert!(domain_covers("ombudsman.example", "ombudsman.example"));
        assert!(domain_covers("ombudsman.example", "mail.ombudsman.example"));
        assert!(domain_covers("Ombudsman.Example.", "ombudsman.example"));
        assert!(!domain_covers("ombudsman.example", "notombudsman.example"));
        assert!(!domain_covers(
            "mail.ombudsman.example",
            "ombudsman.example"
        ));
    }
}
