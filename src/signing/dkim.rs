//! DKIM signing (RFC 6376), relaxed/relaxed, RSA-SHA256 or Ed25519-SHA256 (RFC 8463), over the
//! raw bytes envoi composed (and S/MIME wrapped): the last step before the relay.

use std::time::SystemTime;

use base64::Engine;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::{Digest, Sha256};

use super::SignError;
use super::keys::PrivateKey;
use super::message::split_message;

/// The headers signed, each once: a missing one is signed as absent, so that a relay or an
/// attacker cannot add it later (RFC 6376 5.4).
pub const SIGNED_HEADERS: [&str; 8] = [
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
];

pub struct DkimSigner {
    key: DkimKey,
    pub domain: String,
    pub selector: String,
}

enum DkimKey {
    Rsa(rsa::pkcs1v15::SigningKey<Sha256>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl DkimSigner {
    pub fn new(key: PrivateKey, domain: String, selector: String) -> Self {
        let key = match key {
            PrivateKey::Rsa(key) => DkimKey::Rsa(rsa::pkcs1v15::SigningKey::new(key)),
            PrivateKey::Ed25519(key) => DkimKey::Ed25519(key),
        };
        DkimSigner {
            key,
            domain,
            selector,
        }
    }

    /// The TXT record to publish at `selector._domainkey.domain`.
    pub fn dns_record(&self) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        match &self.key {
            DkimKey::Rsa(key) => {
                let public = key
                    .as_ref()
                    .to_public_key()
                    .to_public_key_der()
                    .map(|der| b64(der.as_bytes()))
                    .unwrap_or_default();
                format!("v=DKIM1; k=rsa; p={public}")
            }
            DkimKey::Ed25519(key) => {
                format!(
                    "v=DKIM1; k=ed25519; p={}",
                    b64(key.verifying_key().as_bytes())
                )
            }
        }
    }

    /// The DNS name the record goes under.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// `message` with a DKIM-Signature header in front.
    pub fn sign(&self, message: &[u8], date: SystemTime) -> Result<Vec<u8>, SignError> {
        let (fields, body) = split_message(message)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let body_hash = b64.encode(Sha256::digest(relaxed_body(body)));
        let algorithm = match self.key {
            DkimKey::Rsa(_) => "rsa-sha256",
            DkimKey::Ed25519(_) => "ed25519-sha256",
        };
        let time = date
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = format!(
            "v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={};\r\n\tt={time}; h={};\r\n\tbh={body_hash};\r\n\tb=",
            self.domain,
            self.selector,
            SIGNED_HEADERS.join(":"),
        );

        let mut hashed = Vec::with_capacity(1024);
        for name in SIGNED_HEADERS {
            // The last instance of a header is the one signed (RFC 6376 5.4.2).
            if let Some(field) = fields
                .iter()
                .rev()
                .find(|f| f.name.eq_ignore_ascii_case(name))
            {
                relaxed_header(&mut hashed, field.name, field.value);
                hashed.extend_from_slice(b"\r\n");
            }
        }
        relaxed_header(&mut hashed, "DKIM-Signature", header.as_bytes());
        let signature = match &self.key {
            DkimKey::Rsa(key) => key.try_sign(&hashed)?.to_vec(),
            // RFC 8463: Ed25519 signs the SHA-256 hash of the same data.
            DkimKey::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(&Sha256::digest(&hashed)).to_bytes().to_vec()
            }
        };
        let signature = b64.encode(signature);

        let mut out = Vec::with_capacity(message.len() + 1024);
        out.extend_from_slice(b"DKIM-Signature: ");
        out.extend_from_slice(header.as_bytes());
        for (i, chunk) in signature.as_bytes().chunks(70).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n\t");
            }
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(message);
        Ok(out)
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Relaxed header canonicalisation (RFC 6376 3.4.2): name in lower case, folds unfolded, runs
/// of white space one space, none at the ends of the value or around the colon.
fn relaxed_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend(name.trim().bytes().map(|b| b.to_ascii_lowercase()));
    out.push(b':');
    let start = out.len();
    let mut space = false;
    for &b in value.iter().filter(|&&b| b != b'\r' && b != b'\n') {
        if is_wsp(b) {
            space = true;
        } else {
            if space && out.len() > start {
                out.push(b' ');
            }
            space = false;
            out.push(b);
        }
    }
}

/// Relaxed body canonicalisation (RFC 6376 3.4.4): runs of white space one space, none at the
/// ends of lines, no empty lines at the end, and a final CRLF unless the body is empty.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut pending_empty_lines = 0;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut canonical = Vec::with_capacity(line.len());
        let mut space = false;
        for &b in line {
            if is_wsp(b) {
                space = true;
            } else {
                if space {
                    canonical.push(b' ');
                }
                space = false;
                canonical.push(b);
            }
        }
        if canonical.is_empty() {
            pending_empty_lines += 1;
            continue;
        }
        for _ in 0..pending_empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        pending_empty_lines = 0;
        out.extend_from_slice(&canonical);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of RFC 6376 3.4.5.
    #[test]
    fn relaxed_canonicalisation_follows_the_rfc_example() {
        let mut header = Vec::new();
        relaxed_header(&mut header, "A", b" X");
        header.extend_from_slice(b"\r\n");
        relaxed_header(&mut header, "B ", b" Y\t\r\n\tZ  ");
        assert_eq!(header, b"a:X\r\nb:Y Z");
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b"x\r\n\r\ny"), b"x\r\n\r\ny\r\n");
    }
}
