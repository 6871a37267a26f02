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
/// `valid.pem` + `valid.key`, `valid-chain.pem`, `expired.p12`, `short.p12`, `other.p12`,
/// `server.p12`, `other.key`, `dkim-rsa.pem`, `dkim-ed25519.pem`, `ecdsa.key`,
/// `encrypted.key`.
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
    let ssl = |line: &str, subject: &[&str]| openssl(dir, &words(line, subject));
    ssl(
        "req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 3650 \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        &["-subj", "/CN=envoi test root CA"],
    );
    let office = "/CN=Commissioner for Human Rights/emailAddress=ombudsman@ombudsman.example";
    let other = "/CN=Someone Else/emailAddress=someone@other.example";
    // name, subject, issuer, extensions section, days (-1: it expired yesterday)
    for (name, subject, issuer, section, days) in [
        (
            "intermediate",
            "/CN=envoi test SMIME CA",
            "root",
            "intermediate",
            3650,
        ),
        ("valid", office, "intermediate", "smime", 365),
        ("expired", office, "intermediate", "smime", -1),
        ("short", office, "intermediate", "smime", 2),
        ("other", other, "intermediate", "other", 365),
        ("server", office, "intermediate", "server", 365),
    ] {
        ssl(
            &format!("req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr"),
            &["-subj", subject],
        );
        ssl(
            &format!(
                "x509 -req -in {name}.csr -CA {issuer}.pem -CAkey {issuer}.key -CAcreateserial \
                 -days {days} -extfile ext.cnf -extensions {section} -out {name}.pem"
            ),
            &[],
        );
    }
    // The holder's key and certificate with the intermediate CA, as PKCS#12.
    let p12 = |name: &str, out: &str, options: &str| {
        ssl(
            &format!(
                "pkcs12 -export -inkey {name}.key -in {name}.pem -certfile intermediate.pem \
                 -name office -out {out} {options}"
            ),
            &[],
        )
    };
    let password = format!("-passout pass:{P12_PASSWORD}");
    for name in ["valid", "expired", "short", "other", "server"] {
        p12(name, &format!("{name}.p12"), &password);
    }
    p12("valid", "valid-legacy.p12", &format!("{password} -legacy"));
    // The PEM form: the holder's certificate, then its chain.
    let chain: String = ["valid.pem", "intermediate.pem"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).expect("read generated PEM"))
        .collect();
    std::fs::write(dir.join("valid-chain.pem"), chain).expect("write valid-chain.pem");
    for line in [
        "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim-rsa.pem",
        "genpkey -algorithm ed25519 -out dkim-ed25519.pem",
        "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ecdsa.key",
        "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes-256-cbc -pass pass:x -out encrypted.key",
    ] {
        ssl(line, &[]);
    }
}

/// The words of `line` (split at white space), then `more` as they are.
fn words<'a>(line: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    line.split_whitespace()
        .chain(more.iter().copied())
        .collect()
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
