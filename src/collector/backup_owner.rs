//! Which files of a backup folder belong to which database.
//!
//! Several databases may keep their backups in one folder. Counted as one,
//! each database's `caretaker_backup_files` included the others' backups,
//! so a database whose own backups were gone still looked backed up and
//! `CaretakerBackupMissing` never fired. In a shared folder a file belongs
//! to the database its name starts with (`<name>-`, `<name>.` or `<name>_`,
//! as caretaker and the runbooks name backups), the longest such name when
//! one database's name starts with another's. A folder used by one database
//! keeps counting every file in it, hand-made copies included. Retention,
//! verification and restore only ever touch caretaker's own names (see
//! `backups::parse_backup_file_name`), which are exact per database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Config;

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

/// The other databases whose backups share `dir`.
pub fn sharing(config: &Config, database: &str, dir: &Path) -> Vec<String> {
    shared_folders(config)
        .remove(&folder_identity(dir))
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n != database)
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
