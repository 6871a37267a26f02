//! Running envoi and reading what it said, and campaigns copied from `tests/fixtures/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use super::campaign::TestCampaign;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// `None` when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The raw standard output, for `preview --format raw`.
    pub stdout_bytes: Vec<u8>,
    pub elapsed: Duration,
}

impl Run {
    /// Standard output, line by line.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Standard error, line by line.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// Panics, showing the whole output, unless envoi exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "unexpected exit code:\n{self}");
        self
    }

    /// Panics unless stderr holds `text`.
    #[track_caller]
    pub fn expect_stderr(&self, text: &str) -> &Run {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}:\n{self}");
        self
    }

    /// Panics unless stdout or stderr holds `text`.
    #[track_caller]
    pub fn expect_stdout_or_stderr(&self, text: &str) -> &Run {
        let found = self.stdout.contains(text) || self.stderr.contains(text);
        assert!(found, "output lacks {text:?}:\n{self}");
        self
    }

    /// Panics unless stdout holds `text`.
    #[track_caller]
    pub fn expect_stdout(&self, text: &str) -> &Run {
        assert!(self.stdout.contains(text), "stdout lacks {text:?}:\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:.1} s\n--- stdout\n{}--- stderr\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// `envoi --dir <dir> <args>`, with the SMTP variables of the environment removed and today
/// fixed at 2024-01-19 (`ENVOI_TODAY`), so that runs are reproducible.
pub fn envoi_in(dir: &Path, args: &[&str]) -> Command {
    Command::from_std(process_in(dir, args))
}

/// [`envoi_in`] as a plain `std::process::Command`, for tests that spawn and signal envoi.
pub fn process_in(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = super::process::envoi_command(dir);
    cmd.args(args).env("ENVOI_TODAY", "2024-01-19");
    cmd
}

/// Runs a command to the end. One that hangs is killed after [`RUN_TIMEOUT`] and fails the
/// test instead of stalling the suite.
pub fn run(mut cmd: Command) -> Run {
    let started = Instant::now();
    let output = cmd.timeout(RUN_TIMEOUT).output().expect("run envoi");
    let elapsed = started.elapsed();
    assert!(
        output.status.code().is_some() || elapsed < RUN_TIMEOUT,
        "{cmd:?} did not exit by itself within {RUN_TIMEOUT:?}"
    );
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        stdout_bytes: output.stdout,
        elapsed,
    }
}

/// The campaign bundled at the repository root (read, never written to by these tests).
pub fn bundled_campaign() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Far beyond any run of these tests, even on a loaded machine; only a hang reaches it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The folder of the golden campaigns.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

impl TestCampaign {
    /// An empty temporary folder.
    pub fn empty() -> TestCampaign {
        TestCampaign {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A copy of `tests/fixtures/<name>/` in a temporary folder (so runs never write into the
    /// repository), its relay set to 127.0.0.1:`port`.
    pub fn fixture(name: &str, port: u16) -> TestCampaign {
        let campaign = TestCampaign::empty();
        copy_tree(&fixtures().join(name), campaign.path());
        let config = campaign.read("envoi.toml");
        assert!(
            config.contains("port = 2525"),
            "fixture {name}: envoi.toml sets port = 2525"
        );
        campaign.file(
            "envoi.toml",
            config.replace("port = 2525", &format!("port = {port}")),
        );
        campaign
    }

    /// Runs `envoi --dir <campaign> <args>` to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs envoi with extra environment variables, e.g. `(PASSWORD_ENV, PASSWORD)`, and no
    /// standard input (so it never waits for a confirmation).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.process(args);
        cmd.envs(env.iter().copied());
        cmd.stdin(std::process::Stdio::null());
        run(Command::from_std(cmd))
    }

    /// Runs `preview --out out` (which must succeed) and returns each `.eml` written, by row.
    pub fn preview_out(&self) -> Vec<Vec<u8>> {
        self.run(&["preview", "--out", "out"]).expect_code(0);
        self.emls("out")
            .iter()
            .map(|p| std::fs::read(p).expect("read .eml"))
            .collect()
    }

    /// One row's message exactly as composed, from `preview --format raw --row N`.
    pub fn raw_letter(&self, row: usize) -> Vec<u8> {
        let run = self.run(&["preview", "--format", "raw", "--row", &row.to_string()]);
        run.expect_code(0);
        run.stdout_bytes
    }

    /// Every file under the campaign folder, relative and sorted: to prove a run wrote nothing.
    pub fn files(&self) -> Vec<String> {
        let mut files = Vec::new();
        list_tree(self.path(), self.path(), &mut files);
        files.sort();
        files
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("create folder");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

fn list_tree(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() && !path.is_symlink() {
            list_tree(root, &path, out);
        } else {
            let relative = path.strip_prefix(root).expect("inside the root");
            out.push(relative.to_string_lossy().into_owned());
        }
    }
}

/// A finished process's stdout and stderr together, for assertion messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
