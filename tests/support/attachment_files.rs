//! Files whose bytes mail software is tempted to change, attached by the attachment tests both
//! through the in-process server (`tests/cases/attachment_bytes.rs`) and through Postfix
//! (`tests/postfix.rs`): each must arrive byte for byte.

/// (file name under `attachments/`, bytes).
pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    let binary: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8))
        .collect();
    vec![
        (
            "bare-lf.txt",
            b"line one\nline two\n\n.\nFrom the end\n".to_vec(),
        ),
        ("bare-cr.txt", b"old Mac\rline endings\r".to_vec()),
        ("nul.txt", b"before a NUL\0after it\r\n".to_vec()),
        (
            "long-line.txt",
            [vec![b'x'; 1000], b"\r\nshort\r\n".to_vec()].concat(),
        ),
        (
            "clean-crlf.txt",
            b"clean text\r\n.\r\n..two dots\r\nFrom here\r\n\r\nno final line break".to_vec(),
        ),
        (
            "utf-8.txt",
            "Səbinə Əliyeva — “quoted” €\nДмитрий\r\n"
                .as_bytes()
                .to_vec(),
        ),
        ("statement.pdf", binary),
    ]
}

/// The `attachments` cell naming every file, `;`-separated.
pub fn attachments_cell() -> String {
    files()
        .iter()
        .map(|(name, _)| format!("attachments/{name}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Writes every file under `dir/attachments/`.
pub fn write_into(dir: &std::path::Path) {
    let folder = dir.join("attachments");
    std::fs::create_dir_all(&folder).expect("create attachments/");
    for (name, bytes) in files() {
        std::fs::write(folder.join(name), bytes).expect("write an attachment");
    }
}

/// Panics unless `attached` (name, decoded bytes, in order) is exactly [`files`].
pub fn assert_intact(attached: &[(String, Vec<u8>)], what: &str) {
    let expected = files();
    let names: Vec<&str> = attached.iter().map(|(n, _)| n.as_str()).collect();
    let expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names, "{what}: the attachments");
    for ((name, got), (_, bytes)) in attached.iter().zip(&expected) {
        if got != bytes {
            let at = got.iter().zip(bytes).position(|(a, b)| a != b);
            panic!(
                "{what}: {name} arrived as {} bytes, not its {} bytes (first difference at {at:?})",
                got.len(),
                bytes.len()
            );
        }
    }
}
