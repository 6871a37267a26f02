//! Folder names as IMAP writes them: modified UTF-7 (RFC 3501 5.1.3), so that a French
//! office's "Éléments envoyés" reaches the server as `&AMk-l&AOk-ments envoy&AOk-s`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// The name as sent in IMAP commands.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut wide: Vec<u16> = Vec::new();
    let flush = |wide: &mut Vec<u16>, out: &mut String| {
        if wide.is_empty() {
            return;
        }
        let bytes: Vec<u8> = wide.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&STANDARD_NO_PAD.encode(bytes).replace('/', ","));
        out.push('-');
        wide.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut wide, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            wide.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut wide, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn modified_utf7_as_rfc_3501_writes_it() {
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode("Sent Items"), "Sent Items");
        assert_eq!(encode("R&D"), "R&-D");
        assert_eq!(encode("Éléments envoyés"), "&AMk-l&AOk-ments envoy&AOk-s");
        // RFC 3501's own example.
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode("Отправленные"), "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-");
    }
}
