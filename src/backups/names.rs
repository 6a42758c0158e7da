//! What backups are called, and which files of a folder belong to which
//! database.
//!
//! caretaker names a backup `<database>-<YYYYMMDDTHHMMSS.mmmZ>.db.zst` (or
//! `.db.gz`) after the UTC time it was taken; older versions wrote whole
//! seconds (`<YYYYMMDDTHHMMSSZ>`), which are still recognised. Retention,
//! verification and restore only ever consider these names, which are exact
//! per database, so a folder shared by several databases or holding hand-made
//! copies is safe.
//!
//! Several databases may keep their backups in one folder. Counted as one,
//! each database's `caretaker_backup_files` included the others' backups,
//! so a database whose own backups were gone still looked backed up and
//! `CaretakerBackupMissing` never fired. In a shared folder a file belongs
//! to the database its name starts with (`<name>-`, `<name>.` or `<name>_`,
//! as caretaker and the runbooks name backups), the longest such name when
//! one database's name starts with another's. A folder used by one database
//! keeps counting every file in it, hand-made copies included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};

use super::sidecar::CHECKSUM_SUFFIX;
use crate::config::{Compression, Config};

/// True for names that are never backups: sidecars, manifests, hidden and temporary files.
pub fn is_backup_name(name: &str) -> bool {
    !(name.starts_with('.')
        || name.ends_with(CHECKSUM_SUFFIX)
        || name.ends_with(".tmp")
        || name.ends_with(".partial")
        || name.ends_with(super::manifest::MANIFEST_SUFFIX))
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

/// Backup folders used by more than one database, with their names (sorted).
pub fn shared_folders(config: &Config) -> BTreeMap<PathBuf, Vec<String>> {
    let mut by_folder: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for db in &config.databases {
        if let Some(backup) = &db.backup {
            by_folder
                .entry(folder_identity(&backup.dir))
                .or_default()
                .push(db.name.clone());
        }
    }
    by_folder.retain(|_, names| {
        names.sort();
        names.len() > 1
    });
    by_folder
}

/// The other databases whose backups share `dir`, looked up in `shared`
/// ([`shared_folders`], worked out once for every database: per database it
/// resolved every folder again, a million `canonicalize` calls at 1,000).
pub fn sharing(shared: &BTreeMap<PathBuf, Vec<String>>, database: &str, dir: &Path) -> Vec<String> {
    shared
        .get(&folder_identity(dir))
        .into_iter()
        .flatten()
        .filter(|n| *n != database)
        .cloned()
        .collect()
}

/// One path per folder: symbolic links and `.` resolved where it exists.
fn folder_identity(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.components().collect())
}

/// True when the file `name` in a folder shared with `others` belongs to
/// `database`.
pub fn belongs_to(name: &str, database: &str, others: &[String]) -> bool {
    let named_after = |db: &str| {
        name.strip_prefix(db)
            .is_some_and(|rest| rest.starts_with(['-', '.', '_']))
    };
    named_after(database)
        && !others
            .iter()
            .any(|o| o.len() > database.len() && named_after(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_belongs_to_the_longest_database_name_it_starts_with() {
        let others = ["memory-2".to_string(), "agents".to_string()];
        for own in [
            "memory-20261105T020304.000Z.db.zst",
            "memory-1.db.zst",
            "memory.db.20251015-020000.backup.gz",
        ] {
            assert!(belongs_to(own, "memory", &others), "{own}");
        }
        for not_own in [
            "memory-2-20261105T020304.000Z.db.zst",
            "agents-20261105T020304.000Z.db.zst",
            "memoryx-1.db.zst",
            "backup.db.zst",
        ] {
            assert!(!belongs_to(not_own, "memory", &others), "{not_own}");
        }
        assert!(belongs_to(
            "memory-2-20261105T020304.000Z.db.zst",
            "memory-2",
            &["memory".to_string()]
        ));
    }
}
