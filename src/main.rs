//! envoi's binary: parse the command line, run the command, map the result to an exit code.
//!
//! Everything else lives in the library (`src/lib.rs` explains the pipeline): a campaign folder
//! and `envoi.toml` → recipients → templates → composed messages → delivery (SMTP, rate, retry)
//! → delivery log → report. Exit codes: 0 done, 1 some letters not sent, 2 bad input (nothing
//! sent), 3 run stopped (what was sent is logged).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = envoi::cli::Cli::parse();
    match envoi::cli::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(err) => {
            // The summary alone ("2 problems found") would not say what to correct.
            for problem in err.problems() {
                eprintln!("{problem}");
            }
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
