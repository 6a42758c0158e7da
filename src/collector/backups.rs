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

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use sha2::{Digest, Sha256};

use super::backup_owner::belongs_to;
use super::{CollectError, Collector};
use crate::config::Compression;
use crate::metrics::{unix_seconds, MetricSet};
use crate::store::space::filesystem_of;

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
/// is still the whole folder's).
fn list_own(
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

pub struct BackupsCollector {
    dir: PathBuf,
    max_age: Duration,
    cache: Mutex<ChecksumCache>,
    /// In a folder shared with other databases: this database's name and
    /// theirs (see `backup_owner`).
    owner: Option<(String, Vec<String>)>,
}

impl BackupsCollector {
    pub fn new(dir: &Path, max_age: Duration) -> Self {
        Self {
            dir: dir.to_path_buf(),
            max_age,
            cache: Mutex::new(ChecksumCache::default()),
            owner: None,
        }
    }

    /// Counts only `database`'s files when `others` keep backups in the same
    /// folder; with no others, every file in the folder counts.
    pub fn shared(mut self, database: &str, others: Vec<String>) -> Self {
        self.owner = (!others.is_empty()).then(|| (database.to_string(), others));
        self
    }

    /// Lists the folder's backups, newest first, hashing only what changed.
    pub fn scan(&self, deadline: Instant) -> Result<(Vec<BackupFile>, u64), CollectError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let own = |name: &str| match &self.owner {
            Some((database, others)) => belongs_to(name, database, others),
            None => true,
        };
        Ok(list_own(&self.dir, deadline, &mut cache, own)?)
    }
}

/// A backup caretaker wrote for one database, named
/// `<database>-<YYYYMMDDTHHMMSS.mmmZ>.db.zst` (or `.db.gz`) after the UTC
/// time it was taken (older versions wrote whole seconds,
/// `<YYYYMMDDTHHMMSSZ>`, which are still recognised). Retention, verification and restore only ever consider these,
/// so a folder shared by several databases or holding hand-made copies is safe.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseBackup {
    pub path: PathBuf,
    pub size: u64,
    /// The time in its name.
    pub taken: SystemTime,
    /// The sidecar exists and matches the file's SHA-256.
    pub verified: bool,
}

/// The file name of `database`'s backup taken at `taken`.
pub fn backup_file_name(database: &str, taken: SystemTime, compression: Compression) -> String {
    let ext = match compression {
        Compression::Zstd => "zst",
        Compression::Gzip => "gz",
    };
    let stamp = DateTime::<Utc>::from(taken).format(STAMP_MILLIS);
    format!("{database}-{stamp}.db.{ext}")
}

/// The UTC stamp in backup names: milliseconds, so that two backups taken
/// in one second have names of their own.
const STAMP_MILLIS: &str = "%Y%m%dT%H%M%S%.3fZ";

/// The stamp of names written by older versions: whole seconds.
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// The time in a name [`backup_file_name`] wrote for `database`; `None` for
/// any other file (including dates that do not exist).
pub fn parse_backup_file_name(database: &str, name: &str) -> Option<SystemTime> {
    let rest = name.strip_prefix(database)?.strip_prefix('-')?;
    let stamp = rest
        .strip_suffix(".db.zst")
        .or_else(|| rest.strip_suffix(".db.gz"))?;
    // Digits everywhere but at the `T`, the `.` and the `Z`.
    let (format, separators): (&str, &[usize]) = match stamp.len() {
        16 => (STAMP, &[8, 15]),
        20 if stamp.as_bytes()[15] == b'.' => (STAMP_MILLIS, &[8, 15, 19]),
        _ => return None,
    };
    let digits = stamp
        .bytes()
        .enumerate()
        .all(|(i, c)| separators.contains(&i) || c.is_ascii_digit());
    if !digits {
        return None;
    }
    let t = NaiveDateTime::parse_from_str(stamp, format).ok()?.and_utc();
    Some(t.into())
}

/// `database`'s backups in `dir`, newest first; none when `dir` is missing.
pub fn database_backups(
    dir: &Path,
    database: &str,
    deadline: Instant,
) -> std::io::Result<Vec<DatabaseBackup>> {
    let files = match list_folder(dir, deadline, &mut ChecksumCache::default()) {
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

/// UTC calendar fields of `t`: (year, month, day, hour, minute, second).
pub fn utc_fields(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let t = DateTime::<Utc>::from(t);
    (
        i64::from(t.year()),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
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
