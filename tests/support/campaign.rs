//! Campaign folders for tests: a temporary folder with envoi.toml, recipients.csv and
//! templates, plus helpers to run the real binary on it and read what it wrote.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A minimal valid letter; tests replace pieces with [`TestCampaign::file`].
pub const LETTER: &str = "+++\nsubject = \"Statement for {{organisation}}\"\n+++\n{{salutation}},\n\nI have the honour to transmit to {{organisation}} the following statement.\n\n{{> statement}}\n";
pub const STATEMENT: &str = "## Statement\n\nThe statement text.\n";
pub const RECIPIENTS: &str = "email,organisation,name,salutation,language\nsg@un.example,United Nations,António Guterres,Your Excellency,\nsg@coe.example,Council of Europe,Marija Pejčinović Burić,Dear Secretary General,\n";

/// Runs against a relay on 127.0.0.1:`port` with no TLS (loopback only).
pub fn config(port: u16) -> String {
    format!(
        "[campaign]\nid = \"test-campaign\"\n\n[sender]\nfrom = \"Commissioner for Human Rights (Ombudsman) <ombudsman@ombudsman.example>\"\nreply_to = \"office@ombudsman.example\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout = 5\n\n[send]\nconcurrency = 2\nmax_attempts = 3\nretry_delay = \"50ms\"\n"
    )
}

pub struct TestCampaign {
    pub dir: tempfile::TempDir,
}

impl TestCampaign {
    /// A campaign with the default letter, statement and two recipients.
    pub fn new() -> TestCampaign {
        Self::with_port(2525)
    }

    pub fn with_port(port: u16) -> TestCampaign {
        let campaign = TestCampaign {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        campaign
            .file("envoi.toml", config(port))
            .file("templates/letter.hbs", LETTER)
            .file("templates/statement.md", STATEMENT)
            .file("recipients.csv", RECIPIENTS);
        campaign
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders), replacing any earlier content.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> &Self {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// `envoi --dir <campaign> <args>`, with a clean environment for the SMTP variables.
    pub fn envoi(&self, args: &[&str]) -> Command {
        super::run::envoi_in(self.dir.path(), args)
    }

    /// The same command as [`envoi`](Self::envoi), as a plain `std::process::Command`, for
    /// tests that must spawn envoi and signal it while it runs.
    pub fn process(&self, args: &[&str]) -> std::process::Command {
        super::run::process_in(self.dir.path(), args)
    }

    /// The `.eml` files `preview --out` wrote, sorted by name.
    pub fn emls(&self, out: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join(out))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
    }

    /// The delivery log's rows as (row, email, status, code, detail).
    pub fn log_rows(&self) -> Vec<LogRow> {
        self.rows_of("delivery-log.csv")
    }

    /// The rows of a log file in the campaign folder (`track --log` may write another one).
    pub fn rows_of(&self, log: &str) -> Vec<LogRow> {
        let text = self.read(log);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        reader
            .records()
            .filter_map(|r| r.ok())
            .map(|r| LogRow {
                row: r[1].parse().unwrap_or(0),
                email: r[2].to_owned(),
                status: r[4].to_owned(),
                code: r[5].to_owned(),
                detail: r[6].to_owned(),
                message_id: r[7].to_owned(),
                attempts: r[8].parse().unwrap_or(0),
            })
            .collect()
    }

    /// The last status per email, as `envoi send` would read it.
    pub fn final_status(&self, email: &str) -> Option<String> {
        self.log_rows()
            .into_iter()
            .rfind(|r| r.email.eq_ignore_ascii_case(email))
            .map(|r| r.status)
    }
}

#[derive(Debug, Clone)]
pub struct LogRow {
    pub row: usize,
    pub email: String,
    pub status: String,
    pub code: String,
    pub detail: String,
    pub message_id: String,
    pub attempts: u32,
}

/// `n` recipients with non-Latin names, for volume tests.
pub fn many_recipients(n: usize) -> String {
    let mut csv = String::from("email,organisation,name,salutation,language\n");
    let names = [
        "Səbinə Əliyeva",
        "Иван Петров",
        "ليلى حداد",
        "Élise Fontaine",
        "John Smith",
    ];
    for i in 0..n {
        csv.push_str(&format!(
            "r{i}@org{}.example,Organisation {i},{},Dear colleague,\n",
            i % 97,
            names[i % names.len()]
        ));
    }
    csv
}
