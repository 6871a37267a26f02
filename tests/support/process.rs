//! Starting the envoi binary without the caller's own relay settings or passwords, which would
//! point a test at the developer's relay or log it in there. Shared by every test binary.

use std::path::Path;
use std::process::Command;

/// What the environment must not lend a test run.
pub const OUTSIDE_SETTINGS: [&str; 7] = [
    "ENVOI_SMTP_HOST",
    "ENVOI_SMTP_PORT",
    "ENVOI_SMTP_SECURITY",
    "ENVOI_SMTP_USER",
    "ENVOI_SMTP_PASSWORD",
    "ENVOI_IMAP_PASSWORD",
    "RUST_LOG",
];

/// `envoi --dir <dir>`, with [`OUTSIDE_SETTINGS`] removed.
pub fn envoi_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_envoi"));
    cmd.arg("--dir").arg(dir);
    for var in OUTSIDE_SETTINGS {
        cmd.env_remove(var);
    }
    cmd
}
