//! What a backup folder holds, and whether each file can be trusted.
//!
//! The one listing of a backup folder: the collector counts it, and
//! retention, verification and restore pick their files from it. Hashes are
//! cached by file identity (size and modification time), so a large folder is
//! hashed once, not every interval.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::chain::CHAIN_SUFFIX;
use super::names::{is_backup_name, parse_backup_file_name};
use super::sidecar::{checksum_matches, CHECKSUM_SUFFIX};

/// One candidate file in the backup folder.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupFile {
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    /// The sidecar exists and matches the file's SHA-256.
    pub verified: bool,
}

type Identity = (u64, SystemTime, Option<SystemTime>);

/// Checksums already computed, by path and file identity (size, modification
/// time, sidecar time), so an unchanged file is hashed once.
#[derive(Debug, Default)]
pub struct ChecksumCache(HashMap<PathBuf, (Identity, bool)>);

/// Lists `dir`'s backups, newest first, with the total size of every file in
/// it. The one listing of the backup folder: the collector keeps a cache
/// across scans, the actions pass a fresh one. Hashing stops with
/// `ErrorKind::TimedOut` once `deadline` has passed.
pub fn list_folder(
    dir: &Path,
    deadline: Instant,
    cache: &mut ChecksumCache,
) -> std::io::Result<(Vec<BackupFile>, u64)> {
    list_own(dir, deadline, cache, |_| true)
}

/// [`list_folder`] of the backups whose names `own` accepts (the total
/// is still the whole folder's): the collector's count in a shared folder.
pub fn list_own(
    dir: &Path,
    deadline: Instant,
    cache: &mut ChecksumCache,
    own: impl Fn(&str) -> bool,
) -> std::io::Result<(Vec<BackupFile>, u64)> {
    let mut files = Vec::new();
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() && entry.file_name().to_string_lossy().ends_with(CHAIN_SUFFIX) {
            // A chain of incremental snapshots takes room in the folder too.
            total += folder_bytes(&entry.path());
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        total += meta.len();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_backup_name(&name) || !own(&name) {
            continue;
        }
        let path = entry.path();
        let modified = meta.modified()?;
        let sidecar = dir.join(format!("{name}{CHECKSUM_SUFFIX}"));
        let sidecar_time = std::fs::metadata(&sidecar).and_then(|m| m.modified()).ok();
        let identity = (meta.len(), modified, sidecar_time);
        let verified = match cache.0.get(&path) {
            Some((id, ok)) if *id == identity => *ok,
            _ => {
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "deadline passed while hashing backups",
                    ));
                }
                let ok = sidecar_time.is_some() && checksum_matches(&path, &sidecar)?;
                cache.0.insert(path.clone(), (identity, ok));
                ok
            }
        };
        files.push(BackupFile {
            path,
            size: meta.len(),
            modified,
            verified,
        });
    }
    cache.0.retain(|p, _| files.iter().any(|f| &f.path == p));
    files.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.path.cmp(&a.path))
    });
    Ok((files, total))
}

/// The total size of the files directly in `dir` (0 when unreadable).
pub(crate) fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    })
}

/// A backup caretaker wrote for one database (a name
/// [`parse_backup_file_name`] recognises). Retention, verification and
/// restore only ever consider these.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseBackup {
    pub path: PathBuf,
    pub size: u64,
    /// The time in its name.
    pub taken: SystemTime,
    /// The sidecar exists and matches the file's SHA-256.
    pub verified: bool,
}

/// `database`'s backups in `dir`, newest first; none when `dir` is missing.
pub fn database_backups(
    dir: &Path,
    database: &str,
    deadline: Instant,
) -> std::io::Result<Vec<DatabaseBackup>> {
    database_backups_cached(dir, database, deadline, &mut ChecksumCache::default())
}

/// [`database_backups`] with a cache kept across calls: the snapshot loop
/// lists the folder every interval and must not hash every backup each time.
pub fn database_backups_cached(
    dir: &Path,
    database: &str,
    deadline: Instant,
    cache: &mut ChecksumCache,
) -> std::io::Result<Vec<DatabaseBackup>> {
    let files = match list_folder(dir, deadline, cache) {
        Ok((files, _)) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut own: Vec<DatabaseBackup> = files
        .into_iter()
        .filter_map(|f| {
            let name = f.path.file_name()?.to_str()?;
            let taken = parse_backup_file_name(database, name)?;
            Some(DatabaseBackup {
                taken,
                size: f.size,
                verified: f.verified,
                path: f.path,
            })
        })
        .collect();
    own.sort_by(|a, b| b.taken.cmp(&a.taken).then_with(|| b.path.cmp(&a.path)));
    Ok(own)
}
