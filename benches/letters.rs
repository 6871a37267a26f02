//! Rendering and composing letters through the library API, on the bundled campaign's
//! templates (the repository root) and synthetic recipients with non-ASCII names, with and
//! without an attachment.
//!
//! `cargo bench --bench letters -- --warm-up-time 1 --measurement-time 3`
//!
//! Each group works on a campaign folder made in a temporary directory: the root's
//! `envoi.toml` and `templates/`, a `recipients.csv` of [`ROWS`] rows cycling through the three
//! languages of the bundled letter, and for the attachment case a 200 KB PDF-like file that
//! every row attaches.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use envoi::campaign::CampaignPaths;
use envoi::compose;
use envoi::pipeline::{Pipeline, RowFilter};
use envoi::recipients::{Recipient, Recipients};
use envoi::template::{RenderedLetter, Templates};

/// Rows per synthetic campaign: enough to cycle through every language and name many times.
const ROWS: usize = 300;

/// The size of the attachment, a typical scanned statement.
const ATTACHMENT_BYTES: usize = 200 * 1024;

const GIVEN: [&str; 6] = ["Səbinə", "Zoë", "Jürgen", "Ηλέκτρα", "Łukasz", "Дмитрий"];
const FAMILY: [&str; 5] = ["Əliyeva", "Ångström", "Müller", "Παπαδοπούλου", "Соколов"];
const LANGUAGES: [&str; 3] = ["en", "fr", "az"];

/// A campaign folder in a temporary directory, removed when dropped.
struct Campaign {
    dir: tempfile::TempDir,
}

impl Campaign {
    fn new(with_attachment: bool) -> Campaign {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("temporary directory");
        fs::copy(root.join("envoi.toml"), dir.path().join("envoi.toml")).expect("envoi.toml");
        fs::create_dir(dir.path().join("templates")).expect("templates folder");
        for entry in fs::read_dir(root.join("templates")).expect("bundled templates") {
            let entry = entry.expect("template entry");
            fs::copy(
                entry.path(),
                dir.path().join("templates").join(entry.file_name()),
            )
            .expect("copy template");
        }
        let mut csv = String::from("email,organisation,name,title,salutation,language");
        if with_attachment {
            fs::create_dir(dir.path().join("attachments")).expect("attachments folder");
            let mut pdf = b"%PDF-1.7\n".to_vec();
            pdf.extend((0..ATTACHMENT_BYTES).map(|i| (i * 7919 % 251) as u8));
            fs::write(dir.path().join("attachments/statement.pdf"), pdf).expect("attachment");
            csv.push_str(",attachments");
        }
        csv.push('\n');
        for i in 0..ROWS {
            let name = format!("{} {}", GIVEN[i % GIVEN.len()], FAMILY[i % FAMILY.len()]);
            csv.push_str(&format!(
                "r{i}@org{}.example,\"Société d'Études № {i}\",{name},\"Director, Human Rights Department\",Dear {name},{}",
                i % 97,
                LANGUAGES[i % LANGUAGES.len()]
            ));
            if with_attachment {
                csv.push_str(",attachments/statement.pdf");
            }
            csv.push('\n');
        }
        fs::write(dir.path().join("recipients.csv"), csv).expect("recipients.csv");
        Campaign { dir }
    }

    fn paths(&self) -> CampaignPaths {
        CampaignPaths {
            dir: self.dir.path().to_path_buf(),
            config: PathBuf::from("envoi.toml"),
            recipients: Some(PathBuf::from("recipients.csv")),
            template: PathBuf::from("templates/letter.hbs"),
        }
    }

    fn pipeline(&self) -> Pipeline {
        Pipeline::open(self.paths(), None).expect("the synthetic campaign opens")
    }

    /// Adds a `[signing]` section: S/MIME with a self-signed RSA-2048 certificate for the
    /// bundled From address, and RSA-2048 DKIM with the same key, made with the openssl
    /// command line (which must be installed).
    fn sign(&self) {
        let dir = self.dir.path();
        let status = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-keyout", "office.key", "-out", "office.pem", "-subj"])
            .arg("/CN=Commissioner for Human Rights/emailAddress=ombudsman@ombudsman.example")
            .args([
                "-addext",
                "subjectAltName=email:ombudsman@ombudsman.example",
            ])
            .args(["-addext", "extendedKeyUsage=emailProtection"])
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl made no certificate");
        let mut config = fs::read_to_string(dir.join("envoi.toml")).expect("envoi.toml");
        config.push_str(
            "\n[signing]\nsmime_cert = \"office.pem\"\nsmime_key = \"office.key\"\n\
             dkim_domain = \"ombudsman.example\"\ndkim_selector = \"envoi\"\ndkim_key = \"office.key\"\n",
        );
        fs::write(dir.join("envoi.toml"), config).expect("envoi.toml");
    }

    /// Every row, read once, so that a benchmark times only the stage it names.
    fn recipients(&self) -> Vec<Recipient> {
        Recipients::open(
            &self.dir.path().join("recipients.csv"),
            Path::new("recipients.csv"),
        )
        .expect("recipients open")
        .map(|row| row.expect("every synthetic row is valid"))
        .collect()
    }
}

/// Loading the templates, and rendering one letter (front matter, Handlebars, partials).
fn templates(c: &mut Criterion) {
    let campaign = Campaign::new(false);
    let recipients = campaign.recipients();
    let headers: Vec<String> = [
        "email",
        "organisation",
        "name",
        "title",
        "salutation",
        "language",
    ]
    .map(String::from)
    .to_vec();
    let template = campaign.dir.path().join("templates/letter.hbs");
    let display = Path::new("templates/letter.hbs");
    let csv = Path::new("recipients.csv");

    let mut group = c.benchmark_group("templates");
    group.bench_function("load", |b| {
        b.iter(|| Templates::load(&template, display, &headers, csv).expect("templates load"))
    });
    let templates = Templates::load(&template, display, &headers, csv).expect("templates load");
    group.throughput(Throughput::Elements(1));
    let mut next = recipients.iter().cycle();
    group.bench_function("render one letter", |b| {
        b.iter(|| {
            let recipient = next.next().expect("cycle never ends");
            templates.render(black_box(recipient)).expect("renders")
        })
    });
    group.finish();
}

/// Composing one rendered letter into an RFC 5322 message: Markdown to text and HTML, MIME,
/// quoted-printable, and the attachment read and base64-encoded.
fn composing(c: &mut Criterion) {
    compose_each_case(c, "compose", Campaign::pipeline);
}

/// The same with an S/MIME signature (RSA-2048, SHA-256, over the whole letter) and then DKIM
/// (RSA-2048, relaxed/relaxed): next to `compose/...`, the cost of signing.
fn signing(c: &mut Criterion) {
    compose_each_case(c, "compose signed", |campaign| {
        campaign.sign();
        campaign
            .pipeline()
            .with_signing()
            .expect("the signing set-up loads")
    });
}

/// `group/without attachment` and `group/with attachment`: composing one letter after another
/// through the pipeline `open` makes of the synthetic campaign.
fn compose_each_case(c: &mut Criterion, group: &str, open: impl Fn(&Campaign) -> Pipeline) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(1));
    for (label, with_attachment) in [("without attachment", false), ("with attachment", true)] {
        let campaign = Campaign::new(with_attachment);
        let pipeline = open(&campaign);
        let letters: Vec<(Recipient, RenderedLetter)> = campaign
            .recipients()
            .into_iter()
            .map(|r| {
                let letter = pipeline.templates.render(&r).expect("renders");
                (r, letter)
            })
            .collect();
        let mut next = letters.iter().cycle();
        group.bench_function(label, |b| {
            b.iter(|| {
                let (recipient, letter) = next.next().expect("cycle never ends");
                compose::compose(
                    &pipeline.campaign,
                    &pipeline.settings,
                    black_box(recipient),
                    black_box(letter),
                )
                .expect("composes")
            })
        });
    }
    group.finish();
}

/// The whole stream that `preview` and `send` walk: read a row, render, compose.
fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    let all = RowFilter::default();
    for (label, with_attachment) in [("without attachment", false), ("with attachment", true)] {
        let campaign = Campaign::new(with_attachment);
        let pipeline = campaign.pipeline();
        group.bench_function(format!("{ROWS} letters {label}"), |b| {
            b.iter(|| {
                let bytes: usize = pipeline
                    .letters(&all)
                    .expect("recipients open")
                    .map(|l| l.result.expect("composes").bytes.len())
                    .sum();
                black_box(bytes)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, templates, composing, signing, pipeline);
criterion_main!(benches);
