//! Backups: the one place that knows what a backup is.
//!
//! A backup of a database is a compressed copy in the database's backup
//! folder, named after the time it was taken, with a `.sha256` sidecar that
//! must match before it counts and a `.manifest.json` that says what it
//! holds, and with incremental snapshots a `<backup>.chain/` folder of deltas
//! on it; together they are one backup (listed, kept and deleted together).
//! Naming, listing, checksums, verification, retention, the pipeline that writes a backup and the restore that puts one
//! back all have to agree on that, so they live together here, behind
//! [`BackupSet`]: one database's backups in one folder. The exporter's
//! collector counts a set, the actions (`backup`, `verify_backups`,
//! `backup_retention`) and the command line (`caretaker restore`,
//! `caretaker backups`) call it.
//!
//! - [`names`]: backup file names, and which files of a shared folder
//!   belong to which database;
//! - [`sidecar`]: the `.sha256` sidecars;
//! - [`manifest`]: what a backup holds, beside it (local and offsite);
//! - [`listing`]: what a folder holds and whether each file verifies;
//! - [`verify`]: decompress and check (the runbooks' restore test);
//! - [`retention`]: which backups to keep, as a pure function;
//! - [`pipeline`]: writing a new backup (copy, check, compress, publish);
//! - [`temporaries`]: the hidden files of a run, and their crash cleanup;
//! - [`restore`]: putting a backup back in place of its database;
//! - [`drill`]: restoring the newest backups to a scratch folder and
//!   comparing them with their manifests (the `restore_drill` action);
//! - [`chain`]: incremental snapshots, deltas on top of a full backup.

pub mod chain;
pub mod drill;
pub mod listing;
pub mod manifest;
pub mod names;
pub mod offsite;
pub mod pipeline;
pub mod restore;
pub mod retention;
pub mod sidecar;
pub mod temporaries;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::config::{BackupConfig, Compression, DatabaseConfig, IntegrityMode};
use crate::progress::Reporter;
pub use listing::DatabaseBackup;
pub use pipeline::{Phases, Written};
use retention::{plan, BackupEntry};
use sidecar::sidecar_of;

/// One database's backups in its backup folder.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSet {
    dir: PathBuf,
    database: String,
}

/// Why writing or pruning backups stopped. Each variant is the action error
/// of the same name (see `actions`), with the same message.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A check before starting refused (no room, the name is taken).
    #[error("refused: {0}")]
    Refused(String),
    /// The deadline passed; every file of the run was removed.
    #[error("deadline exceeded: {0}")]
    Deadline(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

/// What one pass of retention removed (or would remove, in a dry run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    pub files: Vec<PathBuf>,
    /// Backups, sidecars and manifests together.
    pub bytes: u64,
}

impl BackupSet {
    /// `database`'s backups in `dir`.
    pub fn new(dir: &Path, database: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            database: database.to_string(),
        }
    }

    /// The set of a configured database; `None` without a backup folder.
    pub fn of(db: &DatabaseConfig) -> Option<Self> {
        db.backup.as_ref().map(|b| Self::new(&b.dir, &db.name))
    }

    /// The backup folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database whose backups these are.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The backups, newest first, with whether each checksum matches; none
    /// when the folder is missing.
    pub fn list(&self, deadline: Instant) -> std::io::Result<Vec<DatabaseBackup>> {
        listing::database_backups(&self.dir, &self.database, deadline)
    }

    /// The name of a backup taken at `now` that no file in the folder has
    /// yet: the time in it is moved on a millisecond at a time while taken.
    pub fn free_name(&self, now: SystemTime, compression: Compression) -> String {
        pipeline::free_name(&self.dir, &self.database, now, compression)
    }

    /// Whether `backup` (a file of this set) matches its sidecar.
    pub fn checksum_matches(&self, backup: &Path) -> std::io::Result<bool> {
        sidecar::checksum_matches(backup, &sidecar_of(backup))
    }

    /// Checks one backup end to end (see [`verify::verify_backup`]).
    pub fn verify(
        &self,
        backup: &Path,
        mode: IntegrityMode,
        deadline: Instant,
        progress: &Reporter,
    ) -> Result<(), String> {
        verify::verify_backup(backup, mode, deadline, progress)
    }

    /// Copies, checks, compresses and publishes a backup of `db` named
    /// `name` (see [`pipeline::write_backup`]); the folder must exist.
    pub fn write(
        &self,
        db: &DatabaseConfig,
        cfg: &BackupConfig,
        name: &str,
        deadline: Instant,
        progress: &Reporter,
    ) -> Result<Written, BackupError> {
        pipeline::write_backup(db, cfg, name, deadline, progress)
    }

    /// The backups [`retention::plan`] would delete at `now`.
    pub fn plan_retention(
        &self,
        cfg: &BackupConfig,
        now: SystemTime,
        deadline: Instant,
    ) -> std::io::Result<Vec<PathBuf>> {
        let entries: Vec<BackupEntry> = self
            .list(deadline)?
            .into_iter()
            .map(|b| {
                // A chain is kept or removed with its full backup, as old as
                // its newest link: never a delta without its base.
                let newest = chain::Chain::read(b.clone()).map_or(b.taken, |c| c.newest_point());
                BackupEntry {
                    path: b.path,
                    taken: newest.max(b.taken),
                    verified: b.verified,
                }
            })
            .collect();
        Ok(plan(&entries, now, cfg.retention, cfg.monthly_retention))
    }

    /// Applies [`plan_retention`](Self::plan_retention) and (unless
    /// `dry_run`) deletes: the chain's folder first, then the sidecar and the
    /// manifest, so a crash in between leaves an unverified file that the next pass removes, never a sidecar without
    /// its backup.
    pub fn apply_retention(
        &self,
        cfg: &BackupConfig,
        now: SystemTime,
        deadline: Instant,
        dry_run: bool,
    ) -> Result<Pruned, BackupError> {
        let doomed = self.plan_retention(cfg, now, deadline)?;
        let mut pruned = Pruned::default();
        for path in doomed {
            let sidecar = sidecar_of(&path);
            let manifest = manifest::manifest_of(&path);
            let chain_dir = chain::chain_dir_of(&path);
            let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let bytes =
                size(&path) + size(&sidecar) + size(&manifest) + listing::folder_bytes(&chain_dir);
            if !dry_run {
                // The chain first: its base alone is still a full backup.
                match std::fs::remove_dir_all(&chain_dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
                remove_if_present(&sidecar)?;
                remove_if_present(&manifest)?;
                remove_if_present(&path)?;
            }
            tracing::info!(file = %path.display(), dry_run, "backup past retention");
            pruned.bytes += bytes;
            pruned.files.push(path);
        }
        if !dry_run && !pruned.files.is_empty() {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(pruned)
    }

    /// Deletes the hidden temporaries a crash left in the folder (see
    /// [`temporaries::remove_stale_temporaries`]).
    pub fn remove_stale_temporaries(&self) -> std::io::Result<usize> {
        temporaries::remove_stale_temporaries(&self.dir)
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
