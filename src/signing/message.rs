//! The composed message as signing sees it: header fields, byte for byte, and the body.

use super::SignError;

/// One header field as it stands in the message, folded lines and final CRLF included.
pub struct Field<'a> {
    /// The field name as written.
    pub name: &'a str,
    /// Everything after the colon, folding included, without the final CRLF.
    pub value: &'a [u8],
    /// The whole field with its final CRLF.
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// Content-Type, Content-Transfer-Encoding and the other headers that describe the body,
    /// which move into the signed part when the body is wrapped.
    pub fn is_content_header(&self) -> bool {
        self.name.len() > 8 && self.name[..8].eq_ignore_ascii_case("content-")
    }
}

/// The header fields and the body of a CRLF message.
pub fn split_message(message: &[u8]) -> Result<(Vec<Field<'_>>, &[u8]), SignError> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(SignError::Malformed("no blank line after the headers"))?;
    let (head, body) = (&message[..end + 2], &message[end + 4..]);
    let mut fields = Vec::new();
    let mut start = 0;
    while start < head.len() {
        // A field runs until a line that does not start with white space (a fold).
        let mut stop = start;
        loop {
            let line_end = head[stop..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(head.len(), |n| stop + n + 2);
            stop = line_end;
            if stop >= head.len() || !matches!(head[stop], b' ' | b'\t') {
                break;
            }
        }
        let raw = &head[start..stop];
        let colon = raw
            .iter()
            .position(|&b| b == b':')
            .ok_or(SignError::Malformed("a header line without a colon"))?;
        let name = std::str::from_utf8(&raw[..colon])
            .map_err(|_| SignError::Malformed("a header name that is not ASCII"))?;
        let value = raw[colon + 1..]
            .strip_suffix(b"\r\n")
            .unwrap_or(&raw[colon + 1..]);
        fields.push(Field {
            name: name.trim_end(),
            value,
            raw,
        });
        start = stop;
    }
    Ok((fields, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_folding_and_the_body_starts_after_the_blank_line() {
        let message = b"From: a@x.example\r\nSubject: one\r\n two\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
        let (fields, body) = split_message(message).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["From", "Subject", "Content-Type"]);
        assert_eq!(fields[1].raw, b"Subject: one\r\n two\r\n");
        assert_eq!(fields[1].value, b" one\r\n two");
        assert!(fields[2].is_content_header() && !fields[0].is_content_header());
        assert_eq!(body, b"body\r\n");
        assert!(split_message(b"From: a\r\n").is_err());
    }
}
