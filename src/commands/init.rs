//! `envoi init [DIR]`: a small sample campaign to start from. Never overwrites a file.

use std::path::Path;

use crate::cli::{GlobalArgs, InitArgs};
use crate::commands::Outcome;
use crate::error::Error;

/// The sample campaign, compiled into the binary so `init` works anywhere.
const FILES: &[(&str, &str)] = &[
    ("envoi.toml", include_str!("../../assets/init/envoi.toml")),
    (
        "recipients.csv",
        include_str!("../../assets/init/recipients.csv"),
    ),
    (
        "templates/letter.hbs",
        include_str!("../../assets/init/templates/letter.hbs"),
    ),
    (
        "templates/letter.fr.hbs",
        include_str!("../../assets/init/templates/letter.fr.hbs"),
    ),
    (
        "templates/statement.md",
        include_str!("../../assets/init/templates/statement.md"),
    ),
    (
        "attachments/README.txt",
        include_str!("../../assets/init/attachments/README.txt"),
    ),
    // Not `assets/init/.gitignore`: that would apply to envoi's own repository.
    (".gitignore", include_str!("../../assets/init/gitignore")),
];

/// Lines of the sample statement that only say what to write there. `check` warns while a
/// letter still contains one, so the sample text is never sent by mistake.
pub const PLACEHOLDERS: &[&str] = &[
    "Title of your statement",
    "Replace this text with your statement.",
    "Name of the signatory",
    "Title of the signatory",
];

pub fn execute(global: &GlobalArgs, args: &InitArgs) -> Result<Outcome, Error> {
    let dir = args.dir.as_deref().unwrap_or(&global.dir);
    let (written, kept) = write_sample(dir)?;
    for name in &written {
        println!("created {}", dir.join(name).display());
    }
    for name in &kept {
        println!(
            "kept    {} (it already exists; not overwritten)",
            dir.join(name).display()
        );
    }
    println!(
        "\nNext: edit {0}, {1} and {2}, then run: envoi --dir {3} check",
        dir.join("envoi.toml").display(),
        dir.join("recipients.csv").display(),
        dir.join("templates/statement.md").display(),
        dir.display()
    );
    println!(
        "To use a spreadsheet instead of recipients.csv (.xlsx, .xls or .ods, with the same \
         columns in its first row), put it in {} and add under [campaign] in envoi.toml: \
         recipients = \"addressees.xlsx\" (and sheet = \"Sheet1\" for a sheet other than the first)",
        dir.display()
    );
    Ok(Outcome::Done)
}

/// Writes each sample file that does not exist yet; returns (written, kept).
pub fn write_sample(dir: &Path) -> Result<(Vec<&'static str>, Vec<&'static str>), Error> {
    let (mut written, mut kept) = (Vec::new(), Vec::new());
    for (name, content) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(parent, "cannot create folder", e))?;
        }
        // create_new: the existence check and the write are one step, so nothing is clobbered.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, content.as_bytes())
                    .map_err(|e| Error::io(&path, "cannot write", e))?;
                written.push(*name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => kept.push(*name),
            Err(e) => return Err(Error::io(&path, "cannot create", e)),
        }
    }
    Ok((written, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_in_the_sample_statement() {
        let (_, statement) = FILES
            .iter()
            .find(|(name, _)| *name == "templates/statement.md")
            .unwrap();
        for placeholder in PLACEHOLDERS {
            assert!(statement.contains(placeholder), "{placeholder}");
        }
    }
}
