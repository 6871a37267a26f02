//! Signing test material, made with the openssl command line at test time: a root CA, an
//! intermediate S/MIME CA, the office's certificates (valid, expired, short-lived, for another
//! address, without emailProtection) as PEM and as PKCS#12 (OpenSSL 3's default and
//! `-legacy`), and DKIM keys. Plus the independent verifiers: `openssl smime -verify`,
//! `openssl cms -verify` and dkimpy.
//!
//! Standalone (no `super::`), so that tests/postfix.rs can include it too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The From address of the test campaigns, which the valid certificate names.
pub const OFFICE: &str = "ombudsman@ombudsman.example";
/// The PKCS#12 password. Tests assert it never shows in envoi's output.
pub const P12_PASSWORD: &str = "Tr0ub4dor-envoi-p12";
/// The DKIM selector and domain the tests configure.
pub const SELECTOR: &str = "envoi";
pub const DOMAIN: &str = "ombudsman.example";

/// The folder with every generated file, made once per test process.
pub fn pki_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("signing-pki")
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the PKI folder");
        generate(&dir);
        dir
    })
}

/// A generated file: `root.pem` (the trust anchor), `valid.p12`, `valid-legacy.p12`,
/// `valid.pem` + `valid.key`, `expired.p12`, `short.p12`, `other.p12`, `server.p12`,
/// `dkim-rsa.pem`, `dkim-ed25519.pem`, `ecdsa.key`.
pub fn pki_file(name: &str) -> PathBuf {
    pki_dir().join(name)
}

/// The bytes of a generated file.
pub fn pki_bytes(name: &str) -> Vec<u8> {
    std::fs::read(pki_file(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

const EXTENSIONS: &str = "\
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[smime]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = emailProtection
subjectAltName = email:ombudsman@ombudsman.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[other]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = emailProtection
subjectAltName = email:someone@other.example

[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = email:ombudsman@ombudsman.example
";

fn generate(dir: &Path) {
    std::fs::write(dir.join("ext.cnf"), EXTENSIONS).expect("write ext.cnf");
    let ssl = |args: &[&str]| openssl(dir, args);
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=envoi test root CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    issue(
        dir,
        "intermediate",
        "/CN=envoi test SMIME CA",
        "root",
        "intermediate",
        "3650",
    );
    let office = "/CN=Commissioner for Human Rights/emailAddress=ombudsman@ombudsman.example";
    issue(dir, "valid", office, "intermediate", "smime", "365");
    issue(dir, "expired", office, "intermediate", "smime", "-1");
    issue(dir, "short", office, "intermediate", "smime", "2");
    issue(
        dir,
        "other",
        "/CN=Someone Else/emailAddress=someone@other.example",
        "intermediate",
        "other",
        "365",
    );
    issue(dir, "server", office, "intermediate", "server", "365");
    for name in ["valid", "expired", "short", "other", "server"] {
        pkcs12(dir, name, &format!("{name}.p12"), &[]);
    }
    pkcs12(dir, "valid", "valid-legacy.p12", &["-legacy"]);
    pkcs12(dir, "valid", "valid-nopass.p12", &["-passout", "pass:"]);
    // The PEM form: the holder's certificate, then its chain.
    let chain = [
        pki_text(dir, "valid.pem"),
        pki_text(dir, "intermediate.pem"),
    ]
    .concat();
    std::fs::write(dir.join("valid-chain.pem"), chain).expect("write valid-chain.pem");
    ssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "dkim-rsa.pem",
    ]);
    ssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        "dkim-ed25519.pem",
    ]);
    ssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "ecdsa.key",
    ]);
    ssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-aes-256-cbc",
        "-pass",
        "pass:whatever",
        "-out",
        "encrypted.key",
    ]);
}

fn pki_text(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).expect("read generated PEM")
}

/// A key and a certificate `name.pem` for `subject`, signed by `issuer` with the extensions of
/// `section`, valid for `days` from now (`-1`: it expired yesterday).
fn issue(dir: &Path, name: &str, subject: &str, issuer: &str, section: &str, days: &str) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-CAcreateserial",
            "-days",
            days,
            "-extfile",
            "ext.cnf",
            "-extensions",
            section,
            "-out",
            &pem,
        ],
    );
}

/// `name.key` + `name.pem` + the intermediate as a PKCS#12 file.
fn pkcs12(dir: &Path, name: &str, out: &str, extra: &[&str]) {
    let password = format!("pass:{P12_PASSWORD}");
    let mut args = vec![
        "pkcs12",
        "-export",
        "-inkey",
        &format!("{name}.key"),
        "-in",
        &format!("{name}.pem"),
        "-certfile",
        "intermediate.pem",
        "-name",
        "office",
        "-out",
        out,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    if !extra.contains(&"-passout") {
        args.extend(["-passout".to_owned(), password]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (it must be installed)");
    assert!(
        output.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("")
    );
}

/// What a verifier said.
#[derive(Debug)]
pub struct Verdict {
    pub ok: bool,
    pub output: String,
}

/// `openssl <tool> -verify -CAfile root.pem` on a message (`tool`: `smime` or `cms`). The
/// intermediate CA is not given: it must come from the signature itself.
pub fn openssl_verify(tool: &str, message: &[u8]) -> Verdict {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("letter.eml");
    std::fs::write(&input, message).expect("write the letter");
    let root = pki_file("root.pem");
    let output = Command::new("openssl")
        .args([tool, "-verify", "-in"])
        .arg(&input)
        .arg("-CAfile")
        .arg(&root)
        .args(["-out", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    Verdict {
        ok: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// dkimpy, with a DNS function that serves `record` (the TXT text) for `name`
/// (`selector._domainkey.domain`) and nothing else.
pub fn dkimpy_verify(message: &[u8], name: &str, record: &str) -> Verdict {
    const SCRIPT: &str = r#"
import sys, dkim
name, record = sys.argv[1].encode(), sys.argv[2].encode()
def dns(qname, timeout=5):
    return record if qname.rstrip(b".") == name else None
message = sys.stdin.buffer.read()
ok = dkim.verify(message, dnsfunc=dns)
print("pass" if ok else "fail")
sys.exit(0 if ok else 1)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, name, record])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (with dkimpy: pip install dkimpy pynacl)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write to dkimpy");
    let output = child.wait_with_output().expect("dkimpy finished");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("ModuleNotFoundError"),
        "dkimpy is not installed: pip install dkimpy pynacl\n{text}"
    );
    Verdict {
        ok: output.status.success() && text.trim() == "pass",
        output: text,
    }
}

/// The DNS name and TXT record that `envoi check` told the user to publish.
pub fn published_record(check_output: &str) -> (String, String) {
    let line = check_output
        .lines()
        .find(|l| l.contains("publish this DNS record: "))
        .unwrap_or_else(|| panic!("check printed no DKIM record:\n{check_output}"));
    let record = line.split("publish this DNS record: ").nth(1).unwrap();
    let (name, txt) = record.split_once(" TXT ").expect("NAME TXT \"...\"");
    (name.to_owned(), txt.trim_matches('"').to_owned())
}

/// `message` with one character of its letter text changed, as a forger would.
pub fn tampered(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message).into_owned();
    let at = text
        .find("honour")
        .expect("the letter text says \"honour\"");
    let mut forged = text.into_bytes();
    forged[at] = b'H';
    forged
}
