//! S/MIME signing (RFC 8551): the letter's MIME body becomes the first part of a detached
//! `multipart/signed`, and a CMS SignedData over exactly those bytes the second.
//!
//! The outer headers (From, To, Subject, Date, Message-ID, MIME-Version...) stay on the outer
//! message; the signed part carries the letter's Content-* headers and its body. The CRLF
//! before each boundary line belongs to the boundary (RFC 2046 5.1.1), so the signed bytes end
//! where that CRLF starts.

use std::time::SystemTime;

use base64::Engine;
use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, AttributeValue};
use x509_cert::der::asn1::{SetOfVec, UtcTime};
use x509_cert::der::oid::db::{rfc5911, rfc5912};
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::SignError;
use super::message::{Field, split_message};

/// The text before the first part, for mail readers that do not know multipart/signed.
const PREAMBLE: &str = "This is a cryptographically signed message in MIME format.";

pub struct SmimeSigner {
    key: rsa::pkcs1v15::SigningKey<Sha256>,
    /// The holder's certificate first, then the rest of its chain, as the file gave them.
    chain: Vec<Certificate>,
}

impl SmimeSigner {
    pub fn new(key: RsaPrivateKey, chain: Vec<Certificate>) -> Self {
        SmimeSigner {
            key: rsa::pkcs1v15::SigningKey::new(key),
            chain,
        }
    }

    /// The holder's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.chain[0]
    }

    /// The whole message, signed: outer headers, then `multipart/signed` with the letter's
    /// body and the signature.
    pub fn sign(&self, message: &[u8], date: SystemTime) -> Result<Vec<u8>, SignError> {
        let (fields, body) = split_message(message)?;
        let (content, outer): (Vec<&Field>, Vec<&Field>) =
            fields.iter().partition(|f| f.is_content_header());
        let mut signed = Vec::with_capacity(body.len() + 256);
        for field in &content {
            signed.extend_from_slice(field.raw);
        }
        signed.extend_from_slice(b"\r\n");
        signed.extend_from_slice(body);

        let signature = self.signature(&signed, date)?;
        // Derived from the content's hash, so it cannot occur in the content it separates.
        let digest = Sha256::digest(&signed);
        let boundary: String = std::iter::once("sig-".to_owned())
            .chain(digest[..12].iter().map(|b| format!("{b:02x}")))
            .collect();

        let mut out = Vec::with_capacity(signed.len() + signature.len() * 4 / 3 + 1024);
        for field in &outer {
            out.extend_from_slice(field.raw);
        }
        out.extend_from_slice(
            format!(
                "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n micalg=sha-256; boundary=\"{boundary}\"\r\n\r\n{PREAMBLE}\r\n\r\n--{boundary}\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&signed);
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\nContent-Description: S/MIME Cryptographic Signature\r\n\r\n"
            )
            .as_bytes(),
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(&signature);
        for line in encoded.as_bytes().chunks(76) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Ok(out)
    }

    /// A detached CMS SignedData (DER) over `content`: SHA-256, RSA PKCS#1 v1.5, the signed
    /// attributes content-type, message-digest and signing-time, and the whole chain.
    fn signature(&self, content: &[u8], date: SystemTime) -> Result<Vec<u8>, SignError> {
        let digest = Sha256::digest(content);
        let content_info = EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        };
        let holder = &self.certificate().tbs_certificate;
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: holder.issuer.clone(),
            serial_number: holder.serial_number.clone(),
        });
        let sha256 = AlgorithmIdentifierOwned {
            oid: rfc5912::ID_SHA_256,
            parameters: None,
        };
        let mut signer_info =
            SignerInfoBuilder::new(&self.key, sid, sha256.clone(), &content_info, Some(&digest))?;
        signer_info.add_signed_attribute(signing_time(date)?)?;
        let mut signed_data = SignedDataBuilder::new(&content_info);
        signed_data.add_digest_algorithm(sha256)?;
        for certificate in &self.chain {
            signed_data.add_certificate(CertificateChoices::Certificate(certificate.clone()))?;
        }
        signed_data.add_signer_info::<_, rsa::pkcs1v15::Signature>(signer_info)?;
        Ok(signed_data.build()?.to_der()?)
    }
}

/// The signing-time attribute (RFC 5652 11.3) at the letter's Date, not whenever the CPU got
/// to it, so the signature and the header agree.
fn signing_time(date: SystemTime) -> Result<Attribute, SignError> {
    let time = UtcTime::from_system_time(date)?;
    let mut values = SetOfVec::new();
    values.insert(AttributeValue::from_der(&time.to_der()?)?)?;
    Ok(Attribute {
        oid: rfc5911::ID_SIGNING_TIME,
        values,
    })
}
