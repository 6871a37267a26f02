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
