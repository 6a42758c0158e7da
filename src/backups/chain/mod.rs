//! Incremental snapshots: a chain of deltas on top of a full backup, so the
//! recovery point is `incremental_interval` (about a minute), not the backup
//! schedule, at the cost of the pages that changed.
//!
//! A chain is a full backup of the [`BackupSet`](super::BackupSet) (its id is
//! the backup's file name) and the folder `<backup>.chain/` beside it:
//! `000001.delta.zst` + `000001.json`, `000002...`, each delta the pages that
//! changed since the link before (see [`format`]), and `pages.xxh3`, the
//! page hashes of the newest state (see [`pages`]). A link exists once its
//! manifest does: the delta is renamed into place first, the manifest last,
//! each from a fsynced temporary, so a crash mid-delta leaves the chain as it
//! was. `checked.json` says when the database was last found unchanged: the
//! recovery point advances without a delta.
//!
//! - [`take`]: one snapshot (the daemon's loop runs it on the interval);
//! - [`rebuild`]: the database at one link, every link checked on the way;
//! - [`plan`]: the decisions (which link serves a moment, when a chain ends),
//!   as pure functions.
//!
//! Retention keeps or removes a chain with its full backup: a delta is never
//! kept without its base, nor a base removed while its deltas are kept.

pub mod format;
pub mod pages;
pub mod plan;
pub mod rebuild;
pub mod take;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::DatabaseBackup;
use format::{delta_name, parse_manifest_name, Manifest};

/// Suffix of a chain's folder, after its full backup's name.
pub const CHAIN_SUFFIX: &str = ".chain";

/// The name of the last unchanged check in a chain's folder.
pub const CHECKED_NAME: &str = "checked.json";

/// The folder of the chain on `base`.
pub fn chain_dir_of(base: &Path) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(CHAIN_SUFFIX);
    PathBuf::from(name)
}

/// One link: a delta and its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub manifest: Manifest,
    pub taken: SystemTime,
    pub delta: PathBuf,
}

/// A full backup and the links on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub base: DatabaseBackup,
    pub dir: PathBuf,
    /// Links 1, 2, ... up to the first gap or unreadable manifest.
    pub links: Vec<Link>,
    /// Why links after the last one listed cannot be used, if any exist.
    pub broken: Option<String>,
    /// When the newest state was last found unchanged.
    pub checked: Option<SystemTime>,
}

/// `checked.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    pub sequence: u64,
    pub checked_at: String,
}

impl Chain {
    /// The chain on `base`, links read from its folder (none without one).
    pub fn read(base: DatabaseBackup) -> std::io::Result<Self> {
        let dir = chain_dir_of(&base.path);
        let mut sequences = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let name = entry?.file_name();
                    if let Some(seq) = name.to_str().and_then(parse_manifest_name) {
                        sequences.push(seq);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sequences.sort_unstable();
        let mut links = Vec::new();
        let mut broken = None;
        for (want, seq) in (1u64..).zip(&sequences) {
            if *seq != want {
                broken = Some(format!("link {want} is missing"));
                break;
            }
            match read_manifest(&dir, *seq, &base) {
                Ok(link) => links.push(link),
                Err(why) => {
                    broken = Some(why);
                    break;
                }
            }
        }
        let checked = std::fs::read(dir.join(CHECKED_NAME))
            .ok()
            .and_then(|b| serde_json::from_slice::<Checked>(&b).ok())
            .filter(|c| c.sequence == links.len() as u64)
            .and_then(|c| {
                chrono::DateTime::parse_from_rfc3339(&c.checked_at)
                    .ok()
                    .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
            });
        Ok(Self {
            base,
            dir,
            links,
            broken,
            checked,
        })
    }

    /// Whether the chain's folder exists (a snapshot has started it).
    pub fn started(&self) -> bool {
        self.dir.is_dir()
    }

    /// The newest moment this chain can restore.
    pub fn newest_point(&self) -> SystemTime {
        let last = self.links.last().map_or(self.base.taken, |l| l.taken);
        self.checked.map_or(last, |c| c.max(last))
    }

    /// Bytes of the chain's folder (deltas, manifests, hashes).
    pub fn bytes(&self) -> u64 {
        super::listing::folder_bytes(&self.dir)
    }
}

fn read_manifest(dir: &Path, seq: u64, base: &DatabaseBackup) -> Result<Link, String> {
    let path = dir.join(format::manifest_name(seq));
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a manifest: {e}", path.display()))?;
    let base_name = base.path.file_name().and_then(|n| n.to_str());
    if manifest.sequence != seq || Some(manifest.chain.as_str()) != base_name {
        return Err(format!("{} belongs to another link", path.display()));
    }
    let taken = manifest
        .taken()
        .ok_or_else(|| format!("{} has no valid taken_at", path.display()))?;
    Ok(Link {
        taken,
        delta: dir.join(delta_name(seq)),
        manifest,
    })
}

/// Every full backup of `backups` with its chain, newest first.
pub fn chains(backups: Vec<DatabaseBackup>) -> std::io::Result<Vec<Chain>> {
    backups.into_iter().map(Chain::read).collect()
}
