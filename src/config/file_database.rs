//! The `[[database]]` table as written: its keys, with `[database.prune]` and
//! `[database.backup]`, before validation in [`super::file`]. A file of its
//! own so that the top-level sections and their resolution stay readable.

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::maintenance::{FileCleanup, FileVacuum};
use super::modes::{Compression, Detail, IntegrityMode};
use super::offsite::FileOffsite;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDatabase {
    pub(super) name: Spanned<String>,
    pub(super) path: Spanned<String>,
    #[serde(default)]
    pub(super) integrity_check: IntegrityMode,
    #[serde(default)]
    pub(super) detail: Detail,
    pub(super) backup: Option<FileBackup>,
    pub(super) archive_dir: Option<String>,
    #[serde(default)]
    pub(super) prune: FilePrune,
    #[serde(default)]
    pub(super) tune: super::tune::FileTune,
    #[serde(default)]
    pub(super) vacuum: FileVacuum,
    #[serde(default)]
    pub(super) cleanup: Vec<FileCleanup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePrune {
    #[serde(default)]
    pub(super) enabled: bool,
    pub(super) unused_after: Option<HumanDuration>,
    pub(super) unused_max_usage: Option<Spanned<i64>>,
    pub(super) low_confidence: Option<Spanned<f64>>,
    pub(super) never_used_after: Option<HumanDuration>,
    pub(super) trajectory_retention: Option<HumanDuration>,
    pub(super) verification_retention: Option<HumanDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileBackup {
    pub(super) dir: String,
    pub(super) retention: Option<HumanDuration>,
    pub(super) monthly_retention: Option<HumanDuration>,
    pub(super) max_age: Option<HumanDuration>,
    #[serde(default)]
    pub(super) compression: Compression,
    pub(super) level: Option<Spanned<i64>>,
    #[serde(default = "quick")]
    pub(super) verify: IntegrityMode,
    pub(super) verify_newest: Option<Spanned<i64>>,
    pub(super) timeout: Option<HumanDuration>,
    pub(super) offsite: Option<FileOffsite>,
    pub(super) incremental_interval: Option<HumanDuration>,
    pub(super) full_interval: Option<HumanDuration>,
}

fn quick() -> IntegrityMode {
    IntegrityMode::Quick
}
