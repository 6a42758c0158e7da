//! What the backup folder holds, and whether it can be trusted.
//!
//! A backup counts only when its `.sha256` sidecar (the `sha256sum` format the
//! runbooks write) matches the file: a half-written or tampered file is
//! "unverified", never a backup. Hashes are cached by file identity (size and
//! modification time), so a large folder is hashed once, not every interval.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::host::filesystem_of;
use super::{CollectError, Collector};
use crate::metrics::{unix_seconds, MetricSet};

/// Suffix of checksum sidecars.
pub const CHECKSUM_SUFFIX: &str = ".sha256";

/// True for names that are never backups: sidecars, hidden and temporary files.
pub fn is_backup_name(name: &str) -> bool {
    !(name.starts_with('.')
        || name.ends_with(CHECKSUM_SUFFIX)
        || name.ends_with(".tmp")
        || name.ends_with(".partial"))
}

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

pub struct BackupsCollector {
    dir: PathBuf,
    max_age: Duration,
    /// path -> (identity when hashed, verified)
    cache: Mutex<HashMap<PathBuf, (Identity, bool)>>,
}

impl BackupsCollector {
    pub fn new(dir: &Path, max_age: Duration) -> Self {
        Self {
            dir: dir.to_path_buf(),
            max_age,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Lists the folder's backups, newest first, hashing only what changed.
    pub fn scan(&self, deadline: Instant) -> Result<(Vec<BackupFile>, u64), CollectError> {
        let mut files = Vec::new();
        let mut total = 0u64;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            total += meta.len();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_backup_name(&name) {
                continue;
            }
            let path = entry.path();
            let modified = meta.modified()?;
            let sidecar = self.dir.join(format!("{name}{CHECKSUM_SUFFIX}"));
            let sidecar_time = std::fs::metadata(&sidecar).and_then(|m| m.modified()).ok();
            let identity = (meta.len(), modified, sidecar_time);
            let verified = match cache.get(&path) {
                Some((id, ok)) if *id == identity => *ok,
                _ => {
                    if Instant::now() >= deadline {
                        return Err(CollectError::Other(
                            "deadline passed while hashing backups".into(),
                        ));
                    }
                    let ok = sidecar_time.is_some() && checksum_matches(&path, &sidecar)?;
                    cache.insert(path.clone(), (identity, ok));
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
        cache.retain(|p, _| files.iter().any(|f| &f.path == p));
        files.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| b.path.cmp(&a.path))
        });
        Ok((files, total))
    }
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Reads a `sha256sum` sidecar (`<hex>  <name>`) and compares it with the file.
pub fn checksum_matches(path: &Path, sidecar: &Path) -> std::io::Result<bool> {
    let text = std::fs::read_to_string(sidecar)?;
    let expected = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if expected.len() != 64 {
        return Ok(false);
    }
    Ok(sha256_file(path)? == expected)
}

impl Collector for BackupsCollector {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let mut set = MetricSet::new();
        set.gauge(
            "caretaker_backup_max_age_seconds",
            "Configured age after which the newest backup is overdue",
            vec![],
            self.max_age.as_secs_f64(),
        );
        if let Some(fs) = filesystem_of(&self.dir) {
            set.gauge(
                "caretaker_backup_filesystem_size_bytes",
                "Size of the filesystem holding the backup folder",
                vec![],
                fs.size as f64,
            );
            set.gauge(
                "caretaker_backup_filesystem_avail_bytes",
                "Space available to caretaker on the filesystem holding the backup folder",
                vec![],
                fs.avail as f64,
            );
        }
        let (files, total) = match self.scan(deadline) {
            Ok(scan) => scan,
            Err(CollectError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                set.gauge(
                    "caretaker_backup_dir_accessible",
                    "1 if the backup folder could be listed",
                    vec![],
                    0.0,
                );
                set.gauge(
                    "caretaker_backup_files",
                    "Backups whose .sha256 sidecar matches",
                    vec![],
                    0.0,
                );
                return Ok(set);
            }
            Err(e) => return Err(e),
        };
        set.gauge(
            "caretaker_backup_dir_accessible",
            "1 if the backup folder could be listed",
            vec![],
            1.0,
        );
        let verified: Vec<&BackupFile> = files.iter().filter(|f| f.verified).collect();
        set.gauge(
            "caretaker_backup_files",
            "Backups whose .sha256 sidecar matches",
            vec![],
            verified.len() as f64,
        );
        set.gauge(
            "caretaker_backup_unverified_files",
            "Files in the backup folder without a matching .sha256 sidecar",
            vec![],
            (files.len() - verified.len()) as f64,
        );
        set.gauge(
            "caretaker_backup_dir_size_bytes",
            "Total size of the files in the backup folder",
            vec![],
            total as f64,
        );
        if let Some(newest) = verified.first() {
            set.gauge(
                "caretaker_backup_last_success_timestamp_seconds",
                "Modification time of the newest verified backup",
                vec![],
                unix_seconds(newest.modified),
            );
            set.gauge(
                "caretaker_backup_last_size_bytes",
                "Size of the newest verified backup",
                vec![],
                newest.size as f64,
            );
        }
        if let Some(oldest) = verified.last() {
            set.gauge(
                "caretaker_backup_oldest_timestamp_seconds",
                "Modification time of the oldest verified backup",
                vec![],
                unix_seconds(oldest.modified),
            );
        }
        if let Some(newest) = files.first() {
            set.gauge(
                "caretaker_backup_last_verified_ok",
                "1 if the newest file in the backup folder matches its checksum",
                vec![],
                if newest.verified { 1.0 } else { 0.0 },
            );
        }
        Ok(set)
    }
}
