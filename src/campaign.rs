//! The campaign folder: where every file of a run is, and which files letters may attach.
//!
//! Paths given on the command line are relative to `--dir`. Messages name files relative to the
//! campaign folder too, because that is how the user sees them.

use std::path::{Component, Path, PathBuf};

use crate::config::tracking::{MailboxSettings, TrackingSettings};
use crate::config::{Config, SendPolicy, SmtpOverrides, SmtpSettings};
use crate::error::{Error, Location, Problem};
use crate::recipients::{Recipients, RecipientsOptions, encoding_for_label};

pub const DEFAULT_CONFIG: &str = "envoi.toml";
pub const DEFAULT_RECIPIENTS: &str = "recipients.csv";
pub const DEFAULT_TEMPLATE: &str = "templates/letter.hbs";
pub const DEFAULT_LOG: &str = "delivery-log.csv";

/// Which files make up the campaign, as the user named them.
#[derive(Debug, Clone)]
pub struct CampaignPaths {
    pub dir: PathBuf,
    pub config: PathBuf,
    /// `None`: `recipients` under `[campaign]` in envoi.toml, else `recipients.csv`.
    pub recipients: Option<PathBuf>,
    pub template: PathBuf,
}

impl Default for CampaignPaths {
    fn default() -> Self {
        CampaignPaths {
            dir: PathBuf::from("."),
            config: PathBuf::from(DEFAULT_CONFIG),
            recipients: None,
            template: PathBuf::from(DEFAULT_TEMPLATE),
        }
    }
}

/// An opened campaign: its folder, its parsed config and where its files are.
#[derive(Debug)]
pub struct Campaign {
    dir: PathBuf,
    /// The campaign folder, canonical, for confinement checks.
    root: PathBuf,
    paths: CampaignPaths,
    /// The recipients file as the user named it (flag, setting or default).
    recipients: PathBuf,
    recipients_options: RecipientsOptions,
    pub config: Config,
    /// Canonical folders outside the campaign that attachments may come from.
    allowed_dirs: Vec<PathBuf>,
}

impl Campaign {
    pub fn open(paths: CampaignPaths) -> Result<Campaign, Error> {
        let dir = paths.dir.clone();
        let root = dir.canonicalize().map_err(|e| {
            Error::input(
                Location::file(&dir),
                format!("the campaign folder cannot be opened ({e}); check --dir"),
            )
        })?;
        if !root.is_dir() {
            return Err(Error::input(
                Location::file(&dir),
                "is not a folder; --dir names the campaign folder",
            ));
        }
        let config = Config::load(&dir.join(&paths.config), &paths.config)?;
        let mut allowed_dirs = Vec::new();
        for allowed in &config.campaign.attachment_dirs {
            let canonical = dir.join(allowed).canonicalize().map_err(|e| {
                Error::input(
                    Location::file(&paths.config).setting("campaign", "attachment_dirs"),
                    format!("folder \"{}\" cannot be opened: {e}", allowed.display()),
                )
            })?;
            allowed_dirs.push(canonical);
        }
        let recipients = paths
            .recipients
            .clone()
            .or_else(|| config.campaign.recipients.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RECIPIENTS));
        let recipients_options = recipients_options(&config, &paths.config)?;
        Ok(Campaign {
            dir,
            root,
            paths,
            recipients,
            recipients_options,
            config,
            allowed_dirs,
        })
    }

    /// The campaign folder as the user gave it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path relative to the campaign folder, for reading.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.dir.join(relative)
    }

    pub fn config_display(&self) -> &Path {
        &self.paths.config
    }

    pub fn recipients_display(&self) -> &Path {
        &self.recipients
    }

    /// Opens the recipients file with the `[campaign]` settings that say how to read it.
    pub fn open_recipients(&self) -> Result<Recipients, Error> {
        Recipients::open_with(
            &self.path(&self.recipients),
            &self.recipients,
            &self.recipients_options,
        )
    }

    pub fn template_display(&self) -> &Path {
        &self.paths.template
    }

    /// The relay settings with overrides applied; `ca_file` is relative to the campaign folder.
    pub fn smtp_settings(&self, overrides: &SmtpOverrides) -> Result<SmtpSettings, Vec<Problem>> {
        let mut settings = self.config.smtp_settings(overrides, &self.paths.config)?;
        if let Some(ca) = &settings.ca_file {
            settings.ca_file = Some(self.dir.join(ca));
        }
        Ok(settings)
    }

    pub fn send_policy(&self) -> Result<SendPolicy, Vec<Problem>> {
        self.config.send_policy(&self.paths.config)
    }

    /// `[tracking]`, validated.
    pub fn tracking_settings(&self) -> Result<TrackingSettings, Vec<Problem>> {
        self.config.tracking.settings(&self.paths.config)
    }

    /// `[mailbox]`, validated, or `None` when envoi.toml has no such section; `ca_file` is
    /// relative to the campaign folder.
    pub fn mailbox_settings(&self) -> Result<Option<MailboxSettings>, Vec<Problem>> {
        let Some(section) = &self.config.mailbox else {
            return Ok(None);
        };
        let mut settings = section.settings(
            self.config.smtp.password_command.as_ref(),
            &self.paths.config,
        )?;
        if let Some(ca) = &settings.ca_file {
            settings.ca_file = Some(self.dir.join(ca));
        }
        Ok(Some(settings))
    }

    /// The identifier that keeps Message-IDs stable: `[campaign] id`, or else the template's
    /// path (stable as long as the campaign keeps its layout).
    pub fn id(&self) -> String {
        self.config
            .campaign
            .id
            .clone()
            .unwrap_or_else(|| self.paths.template.to_string_lossy().into_owned())
    }

    /// Resolves an attachment path (relative to the campaign folder) and checks that it stays
    /// inside the campaign folder or an allowed folder, following symlinks. The error text says
    /// what to do; the caller adds the location.
    pub fn resolve_attachment(&self, relative: &str) -> Result<PathBuf, AttachmentError> {
        // A path typed on Windows (`attachments\annex.pdf`) names the same file everywhere: a
        // backslash in a file name is no use to anyone, a campaign moved to another machine is.
        let portable = relative.replace('\\', "/");
        let rel = Path::new(&portable);
        if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::Prefix(_))) {
            // Absolute paths are allowed only into an allowed folder.
            return self.confine(rel, relative);
        }
        if rel.components().any(|c| c == Component::ParentDir) && self.allowed_dirs.is_empty() {
            return Err(AttachmentError::ParentDir {
                shown: relative.to_owned(),
            });
        }
        self.confine(&self.dir.join(rel), relative)
    }

    fn confine(&self, path: &Path, shown: &str) -> Result<PathBuf, AttachmentError> {
        let shown = shown.to_owned();
        let canonical = path.canonicalize().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => AttachmentError::Missing {
                nearest: nearest_file(path, &shown),
                shown: shown.clone(),
            },
            _ => AttachmentError::Unreadable {
                shown: shown.clone(),
                source,
            },
        })?;
        let inside = canonical.starts_with(&self.root)
            || self.allowed_dirs.iter().any(|d| canonical.starts_with(d));
        if !inside {
            return Err(AttachmentError::Outside {
                shown,
                target: canonical,
            });
        }
        if !canonical.is_file() {
            return Err(AttachmentError::NotAFile { shown });
        }
        Ok(canonical)
    }
}

/// Why an attachment path cannot be used. `shown` is the path as the template or the row wrote
/// it; the caller adds where that was.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error(
        "attachment \"{shown}\" points outside the campaign folder; copy the file into attachments/ (or allow its folder with attachment_dirs under [campaign] in envoi.toml)"
    )]
    ParentDir { shown: String },
    /// `nearest`: the file of that folder whose name is nearest, for a "did you mean".
    #[error("attachment \"{shown}\" does not exist; {}", missing_hint(.nearest.as_deref()))]
    Missing {
        shown: String,
        nearest: Option<String>,
    },
    #[error("attachment \"{shown}\" cannot be opened: {source}")]
    Unreadable {
        shown: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "attachment \"{shown}\" is outside the campaign folder (it leads to {}); copy the file into attachments/ or allow its folder with attachment_dirs under [campaign] in envoi.toml",
        target.display()
    )]
    Outside { shown: String, target: PathBuf },
    #[error("attachment \"{shown}\" is not a file")]
    NotAFile { shown: String },
}

/// What to do about a missing attachment: the name it was probably meant to be, if any.
fn missing_hint(nearest: Option<&str>) -> String {
    match nearest {
        Some(near) => format!(
            "did you mean \"{near}\"? correct the file name (paths are relative to the campaign folder)"
        ),
        None => "check the file name (paths are relative to the campaign folder)".to_owned(),
    }
}

/// For an attachment that does not exist, the file in the same folder whose name is nearest to
/// it, written the way the user wrote the path (`attachments/anex.pdf` -> `attachments/annex.pdf`).
fn nearest_file(path: &Path, shown: &str) -> Option<String> {
    let wanted = path.file_name()?.to_str()?;
    let names: Vec<String> = std::fs::read_dir(path.parent()?)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    let near = crate::text::nearest(wanted, names.iter().map(String::as_str))?;
    let folder = shown.rfind(['/', '\\']).map_or("", |end| &shown[..=end]);
    Some(format!("{folder}{near}"))
}

/// The `[campaign]` settings for the recipients file, checked.
fn recipients_options(config: &Config, display: &Path) -> Result<RecipientsOptions, Error> {
    let encoding = match &config.campaign.encoding {
        None => None,
        Some(label) => Some(encoding_for_label(label).ok_or_else(|| {
            Error::input(
                Location::file(display).setting("campaign", "encoding"),
                format!(
                    "\"{label}\" is not the name of a text encoding; use a standard name such as \
                     \"windows-1252\" (Western European), \"windows-1250\" (Central European), \
                     \"windows-1251\" (Cyrillic) or \"shift_jis\", or remove the setting for UTF-8"
                ),
            )
        })?),
    };
    Ok(RecipientsOptions {
        encoding,
        sheet: config.campaign.sheet.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(dir: &Path, extra: &str) -> Campaign {
        std::fs::write(dir.join("envoi.toml"), extra).unwrap();
        Campaign::open(CampaignPaths {
            dir: dir.to_path_buf(),
            ..CampaignPaths::default()
        })
        .unwrap()
    }

    #[test]
    fn attachments_stay_inside_the_campaign() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("campaign");
        std::fs::create_dir_all(dir.join("attachments")).unwrap();
        std::fs::write(dir.join("attachments/a.pdf"), b"%PDF").unwrap();
        std::fs::write(outer.path().join("secret.txt"), b"x").unwrap();
        let c = campaign(&dir, "");
        assert!(c.resolve_attachment("attachments/a.pdf").is_ok());
        let err = c
            .resolve_attachment("../secret.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the campaign folder"), "{err}");
        let abs = outer.path().join("secret.txt");
        let err = c
            .resolve_attachment(abs.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the campaign folder"), "{err}");
        let err = c
            .resolve_attachment("attachments/missing.pdf")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "attachment \"attachments/missing.pdf\" does not exist; check the file name (paths are relative to the campaign folder)"
        );
        // A typo gets the nearest file of that folder, written as the path was.
        let err = c
            .resolve_attachment("attachments\\A.pfd")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "attachment \"attachments\\A.pfd\" does not exist; did you mean \"attachments\\a.pdf\"? correct the file name (paths are relative to the campaign folder)"
        );
        assert_eq!(
            c.resolve_attachment("attachments\\a.pdf").ok(),
            c.resolve_attachment("attachments/a.pdf").ok()
        );
        let err = c.resolve_attachment("attachments").unwrap_err().to_string();
        assert!(err.contains("not a file"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_campaign_is_refused() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("campaign");
        std::fs::create_dir_all(dir.join("attachments")).unwrap();
        std::fs::write(outer.path().join("secret.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(
            outer.path().join("secret.txt"),
            dir.join("attachments/link"),
        )
        .unwrap();
        let c = campaign(&dir, "");
        let err = c
            .resolve_attachment("attachments/link")
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the campaign folder"), "{err}");
    }

    #[test]
    fn an_allowed_folder_may_be_used() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("campaign");
        let shared = outer.path().join("shared");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("annex.pdf"), b"%PDF").unwrap();
        let c = campaign(&dir, "[campaign]\nattachment_dirs = [\"../shared\"]\n");
        assert!(c.resolve_attachment("../shared/annex.pdf").is_ok());
    }

    #[test]
    fn a_missing_config_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Campaign::open(CampaignPaths {
            dir: dir.path().to_path_buf(),
            ..CampaignPaths::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("envoi init"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
