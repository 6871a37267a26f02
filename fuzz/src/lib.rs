//! Helpers for envoi's fuzz targets: a scratch folder per process and the property checks.

pub mod checks;

use std::path::PathBuf;
use std::sync::OnceLock;

/// A folder for this fuzzing process, on a RAM disk where there is one (the targets write files
/// on every run), removed by nobody: libFuzzer ends the process with `exit`.
pub fn scratch_dir(name: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let root = ["/dev/shm", "/tmp"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let base = root.join(format!("envoi-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&base).expect("scratch folder");
        base
    });
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Lets a panic raised inside mail-parser unwind to envoi, which catches it and reports that
/// one message as unreadable (`tracking::report`); any other panic still aborts, as libFuzzer
/// needs. mail-parser's own debug assertions fire on some damaged MIME that its release build
/// reads as best it can, and cargo-fuzz builds every crate with debug assertions. Call it at
/// the start of every run: the hook is installed once.
pub fn tolerate_mail_parser_panics() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("mail-parser-"));
            if !in_mail_parser {
                libfuzzer_hook(info);
            }
        }));
    });
}
