//! Which migration files a run applies: the folder's `*.sql` files in file
//! name order, less those `migrations_applied` records as `success`. A
//! `NAME.down.sql` file is never pending: it is the rollback of `NAME.sql`
//! and runs only when asked for by name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::MigrateError;

/// The suffix of a rollback file.
pub const DOWN_SUFFIX: &str = ".down.sql";

/// One file to apply, and the name it is recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The name recorded in `migrations_applied` (`NAME.sql`, also for its rollback).
    pub name: String,
    /// The file whose statements run (`NAME.sql`, or `NAME.down.sql` for a rollback).
    pub path: PathBuf,
    /// Its text, read once: the copy and the live database run the same
    /// statements even if the file is edited meanwhile.
    pub sql: String,
}

impl MigrationFile {
    /// Reads `path`, to be recorded as `name`.
    pub fn read(name: String, path: PathBuf) -> Result<Self, MigrateError> {
        let sql = std::fs::read_to_string(&path)
            .map_err(|e| MigrateError::Refused(format!("cannot read {}: {e}", path.display())))?;
        Ok(Self { name, path, sql })
    }
}

/// The forward migrations among `names`, in file name order, less `applied`.
pub fn pending(names: &[String], applied: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(".sql") && !n.ends_with(DOWN_SUFFIX))
        .filter(|n| !applied.contains(*n))
        .cloned()
        .collect();
    out.sort();
    out
}

/// The names of the files of `dir` (not folders); a name that is not UTF-8
/// is refused rather than skipped, so no migration is silently left out.
pub fn file_names(dir: &Path) -> Result<Vec<String>, MigrateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        MigrateError::Refused(format!(
            "cannot read the migrations folder {}: {e}",
            dir.display()
        ))
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            Err(raw) => {
                return Err(MigrateError::Refused(format!(
                    "{}: a file name that is not UTF-8 ({raw:?}); rename it",
                    dir.display()
                )))
            }
        }
    }
    Ok(names)
}

/// The file names `migrations_applied` records as `success`; none when the
/// table does not exist yet.
pub fn applied(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'migrations_applied')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(BTreeSet::new());
    }
    let mut stmt =
        conn.prepare("SELECT filename FROM migrations_applied WHERE status = 'success'")?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// The migration `name` (with or without `.sql`) to roll back: it must be
/// applied, and its `NAME.down.sql` must be in `dir`.
pub fn rollback_target(
    dir: &Path,
    name: &str,
    applied: &BTreeSet<String>,
) -> Result<MigrationFile, MigrateError> {
    let stem = name.strip_suffix(".sql").unwrap_or(name);
    if stem.is_empty() || stem.contains('/') || stem.ends_with(".down") {
        return Err(MigrateError::Refused(format!(
            "--rollback takes a migration's name (NAME or NAME.sql), not {name:?}"
        )));
    }
    let recorded = format!("{stem}.sql");
    if !applied.contains(&recorded) {
        return Err(MigrateError::Refused(format!(
            "{recorded} is not applied (migrations_applied has no `success` row for it)"
        )));
    }
    let path = dir.join(format!("{stem}{DOWN_SUFFIX}"));
    if !path.is_file() {
        return Err(MigrateError::Refused(format!(
            "no rollback file {} for {recorded}",
            path.display()
        )));
    }
    MigrationFile::read(recorded, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pending_is_sorted_forward_files_not_yet_applied() {
        let files = names(&[
            "003_c.sql",
            "001_a.sql",
            "001_a.down.sql",
            "002_b.sql",
            "README.md",
            "004_d.SQL.bak",
        ]);
        let applied: BTreeSet<String> = ["001_a.sql".to_string()].into();
        assert_eq!(
            pending(&files, &applied),
            names(&["002_b.sql", "003_c.sql"])
        );
        assert_eq!(
            pending(&files, &BTreeSet::new()),
            names(&["001_a.sql", "002_b.sql", "003_c.sql"])
        );
    }

    #[test]
    fn a_rollback_needs_an_applied_migration_and_its_down_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("001_a.down.sql"), "DROP TABLE a;").expect("write");
        let applied: BTreeSet<String> = ["001_a.sql".to_string(), "002_b.sql".to_string()].into();
        let target = rollback_target(dir.path(), "001_a", &applied).expect("target");
        assert_eq!(target.name, "001_a.sql");
        assert_eq!(target.path, dir.path().join("001_a.down.sql"));
        assert_eq!(
            rollback_target(dir.path(), "001_a.sql", &applied).expect("target"),
            target
        );
        assert!(rollback_target(dir.path(), "002_b", &applied).is_err());
        assert!(rollback_target(dir.path(), "003_c", &applied).is_err());
        assert!(rollback_target(dir.path(), "001_a.down", &applied).is_err());
    }
}
